//! The one error of exporter configuration: which setting, which value, what
//! is wrong with it, and the underlying parse error when there is one.

use std::error::Error;
use std::fmt;

/// Where a configuration value came from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueOrigin {
    /// An environment variable, by name (for example `OTEL_EXPORTER_OTLP_TIMEOUT`).
    Env(&'static str),
    /// A setting made in code through the builder, by name (for example `timeout`).
    Code(&'static str),
}

impl fmt::Display for ValueOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(variable) => f.write_str(variable),
            Self::Code(setting) => write!(f, "setting `{setting}`"),
        }
    }
}

/// What is wrong with a configuration value.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExporterConfigErrorKind {
    /// The endpoint does not parse as a URL.
    InvalidUrl,
    /// The endpoint has no scheme, or one other than `http` and `https`.
    UnsupportedScheme,
    /// The endpoint has no host.
    MissingHost,
    /// The endpoint's port is not a number from 0 to 65535.
    InvalidPort,
    /// The endpoint has user information, a query or a fragment, which the
    /// OTLP exporter specification forbids (credentials go in headers).
    UnexpectedUrlPart,
    /// A header entry is not `name=value` with a non-empty name.
    MalformedHeader,
    /// A header name is not a valid gRPC metadata name (names ending in
    /// `-bin`, for binary metadata, are not supported either).
    InvalidHeaderName,
    /// A header value, after percent-decoding for the environment, is not
    /// valid UTF-8 or not a valid gRPC metadata value.
    InvalidHeaderValue,
    /// Not a whole, non-negative number of milliseconds.
    InvalidMilliseconds,
    /// Zero, where only a positive value makes sense.
    Zero,
    /// A compression other than `none`, `gzip` or `zstd`.
    UnknownCompression,
    /// A boolean other than `true` or `false`.
    InvalidBool,
    /// A temporality preference other than `cumulative`, `delta` or `lowmemory`.
    UnknownTemporality,
    /// Only one of the client certificate and the client key is given.
    IncompleteClientIdentity,
    /// A file named by the configuration cannot be read.
    UnreadableFile,
    /// A protocol other than `grpc`, `http/protobuf` and `http/json`.
    UnknownProtocol,
    /// `http/json`: OTLP/HTTP with JSON bodies, which this version does not
    /// implement (it speaks `grpc` and `http/protobuf`).
    UnsupportedProtocol,
    /// A default histogram aggregation other than `explicit_bucket_histogram`
    /// and `base2_exponential_bucket_histogram`.
    UnknownHistogramAggregation,
    /// `base2_exponential_bucket_histogram`, which the SDK's readers cannot
    /// be asked for.
    UnsupportedHistogramAggregation,
    /// A proxy URL (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) of a scheme
    /// other than `http`: `https://` and SOCKS proxies are not supported.
    UnsupportedProxy,
}

impl fmt::Display for ExporterConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidUrl => "not a valid URL",
            Self::UnsupportedScheme => "the URL must start with http:// or https://",
            Self::MissingHost => "the URL has no host",
            Self::InvalidPort => "the port must be a number from 0 to 65535",
            Self::UnexpectedUrlPart => "the URL must not have user information, a query or a fragment",
            Self::MalformedHeader => "a header must be written name=value, with a non-empty name",
            Self::InvalidHeaderName => "not a valid gRPC metadata name",
            Self::InvalidHeaderValue => "not a valid gRPC metadata value",
            Self::InvalidMilliseconds => "not a non-negative whole number of milliseconds",
            Self::Zero => "must be greater than zero",
            Self::UnknownCompression => "the compression must be none, gzip or zstd",
            Self::InvalidBool => "must be true or false",
            Self::UnknownTemporality => "the temporality preference must be cumulative, delta or lowmemory",
            Self::IncompleteClientIdentity => "a client certificate and a client key must be given together",
            Self::UnreadableFile => "the file cannot be read",
            Self::UnknownProtocol => {
                "the protocol must be grpc, http/protobuf or http/json, and this exporter supports grpc and \
                 http/protobuf"
            }
            Self::UnsupportedProtocol => {
                "this exporter supports grpc and http/protobuf, not http/json (OTLP/HTTP with JSON bodies); set \
                 it to http/protobuf (the same port, 4318 by default, protobuf bodies) or grpc, or unset it (grpc)"
            }
            Self::UnknownHistogramAggregation => {
                "the default histogram aggregation must be explicit_bucket_histogram or \
                 base2_exponential_bucket_histogram"
            }
            Self::UnsupportedHistogramAggregation => {
                "only explicit_bucket_histogram (the SDK's default) is supported here"
            }
            Self::UnsupportedProxy => {
                "the proxy must be an http:// URL (or host:port): https:// and SOCKS proxies are not supported"
            }
        })
    }
}

/// The bad value, as the error may show it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BadValue {
    /// Shown as given.
    Shown(String),
    /// A header: its value may be a token, so only the entry's position in
    /// the variable and, once it is known to be a valid name, the header name
    /// are kept. A name that failed validation is not kept either: a
    /// malformed entry may have a token where the name should be.
    Header { entry: Option<usize>, name: Option<String> },
}

/// A configuration value that is not valid: where it came from
/// ([`origin`](Self::origin)), the value ([`value`](Self::value)), what is
/// wrong ([`kind`](Self::kind)), and the underlying parse or I/O error as its
/// [`source`](Error::source) when there is one.
///
/// Header values are never part of it, in `Display` or `Debug`: they often
/// hold credentials.
///
/// ```
/// use otlp_sink::{config::{EnvSettings, ExporterConfigErrorKind, ValueOrigin}, Signal};
///
/// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "soon".to_string());
/// let err = EnvSettings::from_lookup(Signal::Metrics, env).unwrap_err();
/// assert_eq!(err.origin(), ValueOrigin::Env("OTEL_EXPORTER_OTLP_TIMEOUT"));
/// assert_eq!(err.value(), Some("soon"));
/// assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidMilliseconds);
/// assert_eq!(
///     err.to_string(),
///     r#"invalid OTEL_EXPORTER_OTLP_TIMEOUT = "soon": not a non-negative whole number of milliseconds"#
/// );
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub struct ExporterConfigError {
    origin: ValueOrigin,
    value: BadValue,
    kind: ExporterConfigErrorKind,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl ExporterConfigError {
    /// An error about `value`, shown as is.
    pub(crate) fn new(origin: ValueOrigin, value: impl Into<String>, kind: ExporterConfigErrorKind) -> Self {
        Self { origin, value: BadValue::Shown(value.into()), kind, source: None }
    }

    /// An error about a header, whose value is not kept. `entry` is the
    /// 1-based position in an environment variable; `name` a validated header
    /// name, when it is one.
    pub(crate) fn header(
        origin: ValueOrigin,
        entry: Option<usize>,
        name: Option<&str>,
        kind: ExporterConfigErrorKind,
    ) -> Self {
        Self { origin, value: BadValue::Header { entry, name: name.map(str::to_owned) }, kind, source: None }
    }

    /// Records the underlying error.
    pub(crate) fn with_source(mut self, source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Where the bad value came from.
    pub fn origin(&self) -> ValueOrigin {
        self.origin
    }

    /// The environment variable that holds the bad value, if it came from the
    /// environment.
    pub fn variable(&self) -> Option<&'static str> {
        match self.origin {
            ValueOrigin::Env(variable) => Some(variable),
            ValueOrigin::Code(_) => None,
        }
    }

    /// The bad value, as given (trimmed, for the environment). `None` for a
    /// header, whose value is never kept.
    pub fn value(&self) -> Option<&str> {
        match &self.value {
            BadValue::Shown(value) => Some(value),
            BadValue::Header { .. } => None,
        }
    }

    /// For a header error: the header's name, when it is a valid one.
    pub fn header_name(&self) -> Option<&str> {
        match &self.value {
            BadValue::Header { name, .. } => name.as_deref(),
            BadValue::Shown(_) => None,
        }
    }

    /// What is wrong with the value.
    pub fn kind(&self) -> ExporterConfigErrorKind {
        self.kind
    }

    /// The signal whose own variable holds the bad value
    /// (`OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`: [`Signal::Logs`](crate::Signal::Logs);
    /// `OTEL_METRIC_EXPORT_INTERVAL`: metrics). `None` for a generic
    /// `OTEL_EXPORTER_OTLP_*` variable and for a setting made in code, which
    /// apply to every signal.
    pub fn signal(&self) -> Option<crate::Signal> {
        self.variable().and_then(crate::Signal::of_variable)
    }
}

impl fmt::Display for ExporterConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}", self.origin)?;
        match &self.value {
            // Debug formatting quotes the value and escapes control characters.
            BadValue::Shown(value) => write!(f, " = {value:?}")?,
            BadValue::Header { entry, name } => {
                f.write_str(" (")?;
                if let Some(entry) = entry {
                    write!(f, "entry {entry}, ")?;
                }
                if let Some(name) = name {
                    write!(f, "header {name:?}, ")?;
                }
                f.write_str("value hidden)")?;
            }
        }
        write!(f, ": {}", self.kind)
    }
}

impl Error for ExporterConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_origin_value_and_kind_but_not_the_source() {
        let cause = "x".parse::<u64>().unwrap_err();
        let err = ExporterConfigError::new(
            ValueOrigin::Env("OTEL_EXPORTER_OTLP_TIMEOUT"),
            "x\n",
            ExporterConfigErrorKind::InvalidMilliseconds,
        )
        .with_source(cause.clone());
        assert_eq!(
            err.to_string(),
            r#"invalid OTEL_EXPORTER_OTLP_TIMEOUT = "x\n": not a non-negative whole number of milliseconds"#
        );
        let source = err.source().expect("a source");
        assert_eq!(source.downcast_ref::<std::num::ParseIntError>(), Some(&cause));
        assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_TIMEOUT"));
    }

    #[test]
    fn is_send_sync_and_static_so_it_boxes_into_any_error() {
        fn boxed(err: ExporterConfigError) -> Box<dyn Error + Send + Sync + 'static> {
            Box::new(err)
        }
        let err = boxed(ExporterConfigError::new(ValueOrigin::Code("timeout"), "0ns", ExporterConfigErrorKind::Zero));
        assert!(err.downcast_ref::<ExporterConfigError>().is_some());
    }

    #[test]
    fn code_origin_names_the_setting() {
        let err = ExporterConfigError::new(ValueOrigin::Code("max_in_flight"), "0", ExporterConfigErrorKind::Zero);
        assert_eq!(err.to_string(), r#"invalid setting `max_in_flight` = "0": must be greater than zero"#);
        assert_eq!(err.variable(), None);
        assert!(err.source().is_none());
    }

    #[test]
    fn header_errors_show_position_and_valid_name_only() {
        let err = ExporterConfigError::header(
            ValueOrigin::Env("OTEL_EXPORTER_OTLP_HEADERS"),
            Some(2),
            Some("x-api-key"),
            ExporterConfigErrorKind::InvalidHeaderValue,
        );
        assert_eq!(
            err.to_string(),
            r#"invalid OTEL_EXPORTER_OTLP_HEADERS (entry 2, header "x-api-key", value hidden): not a valid gRPC metadata value"#
        );
        assert_eq!((err.value(), err.header_name()), (None, Some("x-api-key")));

        let err = ExporterConfigError::header(
            ValueOrigin::Code("headers"),
            None,
            None,
            ExporterConfigErrorKind::InvalidHeaderName,
        );
        assert_eq!(err.to_string(), "invalid setting `headers` (value hidden): not a valid gRPC metadata name");
    }
}
