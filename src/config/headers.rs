//! Request headers (gRPC metadata), whose values are kept out of every
//! `Debug` and `Display`: they are usually credentials.

use std::fmt;

use percent_encoding::percent_decode_str;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use super::{ExporterConfigError, ExporterConfigErrorKind, ValueOrigin};

/// A value that never shows itself: its `Debug` and `Display` print
/// `<redacted>`. Read it on purpose with [`expose`](Self::expose).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Redacted<T>(T);

impl<T> Redacted<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    pub(crate) fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The headers sent with every export request, as gRPC metadata.
///
/// Names are lowercase (gRPC metadata names are), each name appears once (a
/// later value for a name replaces the earlier one), and the order of first
/// appearance is kept. Values cannot be read back, and `Debug` shows only the
/// names:
///
/// ```
/// use otlp_sink::ExporterConfig;
///
/// let config = ExporterConfig::builder().with_header("Authorization", "Bearer s3cr3t").build_without_env()?;
/// assert!(config.headers().contains("authorization"));
/// assert_eq!(format!("{:?}", config.headers()), r#"{"authorization": <redacted>}"#);
/// # Ok::<(), otlp_sink::config::ExporterConfigError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Invariant: no two entries have the same name.
    entries: Vec<(AsciiMetadataKey, Redacted<AsciiMetadataValue>)>,
}

impl Headers {
    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The header names, lowercase, in order of first appearance.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.entries.iter().map(|(name, _)| name.as_str())
    }

    /// Whether a header of this name is set (names compare case-insensitively).
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(key, _)| key.as_str().eq_ignore_ascii_case(name))
    }

    /// Sets a header, replacing any earlier value of the same name in place.
    pub(crate) fn insert(&mut self, name: AsciiMetadataKey, value: AsciiMetadataValue) {
        let value = Redacted::new(value);
        match self.entries.iter_mut().find(|(key, _)| *key == name) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((name, value)),
        }
    }

    /// `self` with every header of `overrides` set on top: a name in both
    /// takes the value from `overrides`.
    pub(crate) fn overlaid_with(mut self, overrides: Headers) -> Headers {
        for (name, value) in overrides.entries {
            self.insert(name, value.0);
        }
        self
    }

    /// The headers as request metadata for tonic. Values are marked
    /// sensitive, so HTTP/2 header compression never indexes them.
    pub(crate) fn to_metadata(&self) -> MetadataMap {
        let mut metadata = MetadataMap::with_capacity(self.entries.len());
        for (name, value) in &self.entries {
            let mut value = value.expose().clone();
            value.set_sensitive(true);
            metadata.insert(name.clone(), value);
        }
        metadata
    }

    /// A header's value, for tests only: the public API never gives one back.
    #[cfg(test)]
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        let (_, value) = self.entries.iter().find(|(key, _)| key.as_str() == name)?;
        value.expose().to_str().ok()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(name, value)| (name.as_str(), value))).finish()
    }
}

/// Parses a header name: trimmed and lowercased. A name that fails is not put
/// in the error: a malformed entry may have a secret where the name belongs.
fn parse_name(origin: ValueOrigin, entry: Option<usize>, name: &str) -> Result<AsciiMetadataKey, ExporterConfigError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ExporterConfigError::header(origin, entry, None, ExporterConfigErrorKind::MalformedHeader));
    }
    AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|err| {
        ExporterConfigError::header(origin, entry, None, ExporterConfigErrorKind::InvalidHeaderName).with_source(err)
    })
}

fn parse_value(
    origin: ValueOrigin,
    entry: Option<usize>,
    name: &AsciiMetadataKey,
    value: &str,
) -> Result<AsciiMetadataValue, ExporterConfigError> {
    // Neither tonic's error nor the kind repeats the value, so the error stays
    // free of it.
    AsciiMetadataValue::try_from(value).map_err(|err| {
        ExporterConfigError::header(origin, entry, Some(name.as_str()), ExporterConfigErrorKind::InvalidHeaderValue)
            .with_source(err)
    })
}

/// Parses a headers variable: `name=value` entries separated by commas, as the
/// OTLP exporter specification writes them (the W3C Baggage format without
/// properties).
///
/// Names and values are trimmed of surrounding whitespace; names are
/// lowercased; values are then percent-decoded (so `%20` keeps a space that
/// trimming would drop). Empty entries (`a=1,,b=2`, a trailing comma) are
/// skipped. Only the first `=` separates: a value may contain `=`.
pub(crate) fn parse_env_headers(origin: ValueOrigin, raw: &str) -> Result<Headers, ExporterConfigError> {
    let mut headers = Headers::default();
    for (index, entry) in raw.split(',').enumerate() {
        let position = Some(index + 1);
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((name, value)) = entry.split_once('=') else {
            return Err(ExporterConfigError::header(origin, position, None, ExporterConfigErrorKind::MalformedHeader));
        };
        let name = parse_name(origin, position, name)?;
        let decoded = percent_decode_str(value.trim()).decode_utf8().map_err(|err| {
            ExporterConfigError::header(
                origin,
                position,
                Some(name.as_str()),
                ExporterConfigErrorKind::InvalidHeaderValue,
            )
            .with_source(err)
        })?;
        let value = parse_value(origin, position, &name, &decoded)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Checks headers set in code. Values are used as given: no trimming, no
/// percent-decoding. Names are lowercased.
pub(crate) fn parse_code_headers(entries: &[(String, Redacted<String>)]) -> Result<Headers, ExporterConfigError> {
    let origin = ValueOrigin::Code("headers");
    let mut headers = Headers::default();
    for (name, value) in entries {
        let name = parse_name(origin, None, name)?;
        let value = parse_value(origin, None, &name, value.expose())?;
        headers.insert(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    use proptest::prelude::*;

    const ORIGIN: ValueOrigin = ValueOrigin::Env("OTEL_EXPORTER_OTLP_HEADERS");

    fn parse(raw: &str) -> Result<Headers, ExporterConfigError> {
        parse_env_headers(ORIGIN, raw)
    }

    #[test]
    fn parses_trims_lowercases_and_percent_decodes() {
        let headers = parse(" Authorization = Bearer%20s3cr3t , x-tenant=acme%2Cinc,api-key=a=b==").unwrap();
        assert_eq!(headers.names().collect::<Vec<_>>(), ["authorization", "x-tenant", "api-key"]);
        assert_eq!(headers.value("authorization"), Some("Bearer s3cr3t"));
        assert_eq!(headers.value("x-tenant"), Some("acme,inc"), "an encoded comma does not split");
        assert_eq!(headers.value("api-key"), Some("a=b=="), "only the first = separates");
    }

    #[test]
    fn encoded_spaces_survive_trimming() {
        let headers = parse("k=%20padded%20").unwrap();
        assert_eq!(headers.value("k"), Some(" padded "));
    }

    #[test]
    fn empty_entries_are_skipped_and_an_empty_value_is_allowed() {
        let headers = parse(",a=1,, ,b=,").unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.value("a"), Some("1"));
        assert_eq!(headers.value("b"), Some(""));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn a_repeated_name_keeps_the_last_value_in_the_first_place() {
        let headers = parse("a=1,b=2,A=3").unwrap();
        assert_eq!(headers.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(headers.value("a"), Some("3"));
    }

    #[test]
    fn malformed_entries_are_errors_with_their_position() {
        let err = parse("a=1,just-a-token").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::MalformedHeader);
        assert_eq!(err.to_string(), "invalid OTEL_EXPORTER_OTLP_HEADERS (entry 2, value hidden): a header must be written name=value, with a non-empty name");

        let err = parse(" =value").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::MalformedHeader);
    }

    #[test]
    fn invalid_names_and_values_are_errors_with_their_cause() {
        let err = parse("bad name=1").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidHeaderName);
        assert!(err.source().unwrap().is::<tonic::metadata::errors::InvalidMetadataKey>());
        assert_eq!(err.header_name(), None, "an invalid name is not shown");

        let err = parse("x-bin=AAAA").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidHeaderName, "binary metadata is not supported");

        let err = parse("x-token=line%0Abreak").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidHeaderValue);
        assert_eq!(err.header_name(), Some("x-token"));
        assert!(err.source().unwrap().is::<tonic::metadata::errors::InvalidMetadataValue>());

        let err = parse("x-token=%FF").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidHeaderValue);
        assert!(err.source().unwrap().is::<std::str::Utf8Error>());
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let secret = "s3cr3t";
        let headers = parse("authorization=Bearer s3cr3t").unwrap();
        assert_eq!(format!("{headers:?}"), r#"{"authorization": <redacted>}"#);

        // Malformed lines with the secret in every position.
        for line in [
            "authorization: Bearer s3cr3t",
            "authorization Bearer s3cr3t=",
            "Bearer s3cr3t",
            "x-token=s3cr3t%0A",
            "x-token=s3cr3t%FF",
            "s3cr3t",
            "a=1,s3cr3t",
        ] {
            let err = parse(line).unwrap_err();
            let mut shown = format!("{err} {err:?}");
            let mut source = err.source();
            while let Some(cause) = source {
                shown.push_str(&format!(" {cause} {cause:?}"));
                source = cause.source();
            }
            assert!(!shown.contains(secret), "{line:?} leaked in {shown}");
            assert_eq!(err.value(), None);
        }
    }

    #[test]
    fn code_headers_are_taken_literally() {
        let entries = [("X-Key".to_string(), Redacted::new(" a%20b ".to_string()))];
        let headers = parse_code_headers(&entries).unwrap();
        assert_eq!(headers.value("x-key"), Some(" a%20b "));

        let bad = [("x-key".to_string(), Redacted::new("s3cr3t\n".to_string()))];
        let err = parse_code_headers(&bad).unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Code("headers"));
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidHeaderValue);
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }

    #[test]
    fn overlay_replaces_same_names_and_keeps_the_rest() {
        let base = parse("authorization=env,x-tenant=env").unwrap();
        let overrides = parse("authorization=code,x-extra=code").unwrap();
        let merged = base.overlaid_with(overrides);
        assert_eq!(merged.names().collect::<Vec<_>>(), ["authorization", "x-tenant", "x-extra"]);
        assert_eq!(merged.value("authorization"), Some("code"));
        assert_eq!(merged.value("x-tenant"), Some("env"));
    }

    #[test]
    fn metadata_holds_every_header_marked_sensitive() {
        let metadata = parse("authorization=Bearer%20t,x-tenant=acme").unwrap().to_metadata();
        assert_eq!(metadata.len(), 2);
        let auth = metadata.get("authorization").unwrap();
        assert_eq!(auth.to_str().unwrap(), "Bearer t");
        assert!(auth.is_sensitive());
        assert_eq!(metadata.get("x-tenant").unwrap().to_str().unwrap(), "acme");
    }

    #[test]
    fn contains_ignores_case() {
        let headers = parse("x-tenant=acme").unwrap();
        assert!(headers.contains("X-Tenant"));
        assert!(!headers.contains("x-other"));
    }

    proptest! {
        #[test]
        fn arbitrary_header_strings_never_panic(raw in any::<String>()) {
            match parse(&raw) {
                Ok(headers) => prop_assert!(headers.len() <= raw.split(',').count()),
                Err(err) => prop_assert_eq!(err.value(), None),
            }
        }

        #[test]
        fn header_like_strings_never_panic(raw in "[a-zA-Z0-9 =,%\\-_:\t\n\u{7f}\u{e9}]{0,40}") {
            if let Err(err) = parse(&raw) {
                prop_assert_eq!(err.value(), None);
            }
        }

        #[test]
        fn percent_encoded_values_round_trip(
            name in "[a-z0-9][a-z0-9_.-]{0,15}",
            value in "[ -~]{0,40}",
        ) {
            // The name must not end in -bin (binary metadata).
            prop_assume!(!name.ends_with("-bin"));
            let encoded = percent_encoding::utf8_percent_encode(&value, percent_encoding::NON_ALPHANUMERIC);
            let headers = parse(&format!("{name}={encoded}")).unwrap();
            prop_assert_eq!(headers.value(&name), Some(value.as_str()));
        }

        #[test]
        fn a_secret_never_leaks_from_a_bad_line(
            secret in "[A-Za-z0-9]{12,24}",
            shape in 0usize..5,
        ) {
            let line = match shape {
                0 => format!("authorization {secret}"),
                1 => secret.clone(),
                2 => format!("x-token={secret}%0A"),
                3 => format!("x-token={secret}%FE"),
                _ => format!("ok=1, bad key {secret}=1"),
            };
            let err = parse(&line).unwrap_err();
            let shown = format!("{err} {err:?}");
            prop_assert!(!shown.contains(&secret), "{} leaked in {}", secret, shown);
        }
    }
}
