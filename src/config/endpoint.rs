//! The collector's address: an absolute `http://` or `https://` URL, and
//! the OTLP/HTTP rule that appends a signal's path to a base URL.

use std::borrow::Cow;

use http::uri::Scheme;
use http::Uri;

use super::{ExporterConfigError, ExporterConfigErrorKind, ValueOrigin};

/// Parses an endpoint as the OTLP exporter specification defines it:
/// a URL with an `http` or `https` scheme and a host, maybe a port and a path,
/// and nothing else (no user information, query or fragment). Parsing keeps
/// it as given; OTLP/HTTP may later [append](append_path) a signal's path.
///
/// The scheme decides transport security: `https` is TLS, `http` is not.
pub(crate) fn parse_endpoint(origin: ValueOrigin, raw: &str) -> Result<Uri, ExporterConfigError> {
    let error = |kind| ExporterConfigError::new(origin, without_userinfo(raw), kind);
    let uri: Uri = raw.parse().map_err(|err| error(ExporterConfigErrorKind::InvalidUrl).with_source(err))?;
    match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTP || *scheme == Scheme::HTTPS => {}
        _ => return Err(error(ExporterConfigErrorKind::UnsupportedScheme)),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(error(ExporterConfigErrorKind::MissingHost));
    }
    // `Uri` accepts any digits as a port (and then reports no port at all),
    // and drops a fragment silently: both are checked on the text.
    if has_port_digits(uri.authority().map_or("", |a| a.as_str())) && uri.port_u16().is_none() {
        return Err(error(ExporterConfigErrorKind::InvalidPort));
    }
    let has_userinfo = uri.authority().is_some_and(|authority| authority.as_str().contains('@'));
    if has_userinfo || uri.query().is_some() || raw.contains('#') {
        return Err(error(ExporterConfigErrorKind::UnexpectedUrlPart));
    }
    Ok(uri)
}

/// `base` with `path` (`/v1/metrics`) appended to its path: any path `base`
/// has is kept, and a trailing slash on it does not make a double one.
pub(crate) fn append_path(base: &Uri, path: &str) -> Uri {
    let kept = base.path().trim_end_matches('/');
    let mut parts = base.clone().into_parts();
    parts.path_and_query =
        Some(format!("{kept}{path}").parse().expect("a URL's path followed by /v1/<signal> is a valid path"));
    Uri::from_parts(parts).expect("the parts of a valid URL with a valid path make a valid URL")
}

/// Whether an authority ends in `:digits`. An IPv6 host ends in `]`, so its
/// colons never match.
fn has_port_digits(authority: &str) -> bool {
    authority.rsplit_once(':').is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// `raw` with any user information (`user:password@`) in its authority
/// replaced, so that an error about the URL does not show a password.
fn without_userinfo(raw: &str) -> Cow<'_, str> {
    let start = raw.find("://").map_or(0, |i| i + 3);
    let end = raw[start..].find(['/', '?', '#']).map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}<redacted>{}", &raw[..start], &raw[start + at..])),
        None => Cow::Borrowed(raw),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    use proptest::prelude::*;

    const ORIGIN: ValueOrigin = ValueOrigin::Env("OTEL_EXPORTER_OTLP_ENDPOINT");

    fn kind(raw: &str) -> ExporterConfigErrorKind {
        parse_endpoint(ORIGIN, raw).unwrap_err().kind()
    }

    #[test]
    fn accepts_http_and_https_urls_as_given() {
        let uri = parse_endpoint(ORIGIN, "http://localhost:4317").unwrap();
        assert_eq!((uri.scheme_str(), uri.host(), uri.port_u16()), (Some("http"), Some("localhost"), Some(4317)));
        let uri = parse_endpoint(ORIGIN, "HTTPS://collector.example:443/prefix").unwrap();
        assert_eq!(uri.scheme(), Some(&Scheme::HTTPS), "the scheme is case-insensitive");
        assert_eq!(uri.path(), "/prefix", "the path is kept, nothing appended");
        let uri = parse_endpoint(ORIGIN, "http://[::1]:4317").unwrap();
        assert_eq!(uri.host(), Some("[::1]"));
        assert_eq!(parse_endpoint(ORIGIN, "https://collector").unwrap().port(), None, "the port is optional");
    }

    #[test]
    fn a_signal_path_is_appended_keeping_the_base_path_without_a_double_slash() {
        let url = |base: &str| append_path(&parse_endpoint(ORIGIN, base).unwrap(), "/v1/metrics").to_string();
        assert_eq!(url("http://localhost:4318"), "http://localhost:4318/v1/metrics");
        assert_eq!(url("http://localhost:4318/"), "http://localhost:4318/v1/metrics", "trailing slash");
        assert_eq!(url("https://c.example/otlp"), "https://c.example/otlp/v1/metrics", "the path is kept");
        assert_eq!(url("https://c.example/otlp/"), "https://c.example/otlp/v1/metrics");
        assert_eq!(url("https://c.example/a/b//"), "https://c.example/a/b/v1/metrics", "every trailing slash");
        assert_eq!(url("http://[::1]:4318"), "http://[::1]:4318/v1/metrics");
        assert_eq!(url("http://c:4318/v1/metrics"), "http://c:4318/v1/metrics/v1/metrics", "a base, not a guess");
    }

    #[test]
    fn refuses_other_schemes_and_bare_addresses() {
        assert_eq!(kind("ftp://collector:4317"), ExporterConfigErrorKind::UnsupportedScheme);
        assert_eq!(kind("grpc://collector:4317"), ExporterConfigErrorKind::UnsupportedScheme);
        assert_eq!(kind("collector:4317"), ExporterConfigErrorKind::UnsupportedScheme);
        assert_eq!(kind("/v1/metrics"), ExporterConfigErrorKind::UnsupportedScheme);
    }

    #[test]
    fn refuses_unparsable_urls_with_the_parse_error_as_source() {
        let err = parse_endpoint(ORIGIN, "http://exa mple:4317").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidUrl);
        assert_eq!(err.value(), Some("http://exa mple:4317"));
        assert!(err.source().unwrap().is::<http::uri::InvalidUri>());
        assert_eq!(kind("http://"), ExporterConfigErrorKind::InvalidUrl);
        assert_eq!(kind(""), ExporterConfigErrorKind::InvalidUrl);
    }

    #[test]
    fn refuses_a_missing_host_a_bad_port_and_extra_parts() {
        assert_eq!(kind("http://:4317"), ExporterConfigErrorKind::MissingHost);
        assert_eq!(kind("http://host:99999"), ExporterConfigErrorKind::InvalidPort);
        assert_eq!(kind("http://[::1]:65536"), ExporterConfigErrorKind::InvalidPort);
        assert_eq!(parse_endpoint(ORIGIN, "http://host:65535").unwrap().port_u16(), Some(65535));
        assert_eq!(kind("http://collector:4317/?x=1"), ExporterConfigErrorKind::UnexpectedUrlPart);
        assert_eq!(kind("http://collector:4317#top"), ExporterConfigErrorKind::UnexpectedUrlPart);
        assert_eq!(kind("http://user@collector:4317"), ExporterConfigErrorKind::UnexpectedUrlPart);
    }

    #[test]
    fn a_password_in_the_url_is_not_shown() {
        let err = parse_endpoint(ORIGIN, "https://user:s3cr3t@collector:4317/x").unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnexpectedUrlPart);
        assert_eq!(err.value(), Some("https://<redacted>@collector:4317/x"));
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
        let err = parse_endpoint(ORIGIN, "ftp://u:s3cr3t@collector").unwrap_err();
        assert_eq!(err.value(), Some("ftp://<redacted>@collector"));
        assert_eq!(without_userinfo("u:s3cr3t@host:1"), "<redacted>@host:1");
        assert_eq!(without_userinfo("http://host/a@b"), "http://host/a@b", "an @ in the path is not userinfo");
    }

    proptest! {
        #[test]
        fn arbitrary_endpoints_never_panic(raw in any::<String>()) {
            if let Ok(uri) = parse_endpoint(ORIGIN, &raw) {
                prop_assert!(matches!(uri.scheme_str(), Some("http" | "https")));
            }
        }

        #[test]
        fn appending_a_path_to_any_valid_endpoint_never_panics(raw in "https?://[a-z0-9.]{1,12}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){0,3}/?") {
            if let Ok(uri) = parse_endpoint(ORIGIN, &raw) {
                let url = append_path(&uri, "/v1/logs");
                prop_assert!(url.path().ends_with("/v1/logs") && !url.path().contains("//v1"));
                prop_assert_eq!(url.authority(), uri.authority());
            }
        }

        #[test]
        fn url_like_endpoints_never_panic(raw in "(https?|ftp)?(://)?[a-z:@\\[\\]0-9./?#%]{0,30}") {
            if let Ok(uri) = parse_endpoint(ORIGIN, &raw) {
                prop_assert!(uri.host().is_some_and(|host| !host.is_empty()));
            }
        }
    }
}
