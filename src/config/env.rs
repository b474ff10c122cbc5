//! The `OTEL_EXPORTER_OTLP_*` environment variables, parsed from a lookup
//! function so that nothing here reads the process environment except
//! [`EnvSettings::from_env`].

use std::path::Path;
use std::time::Duration;

use http::Uri;

use super::endpoint::parse_endpoint;
use super::headers::parse_env_headers;
use super::proxy::ProxyEnv;
use super::{Compression, ConfigPath, ExporterConfigError, ExporterConfigErrorKind, Headers, Protocol, ValueOrigin};

/// The telemetry signal an exporter sends, which picks its per-signal
/// environment variables (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, ...).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// Spans: `OTEL_EXPORTER_OTLP_TRACES_*`.
    Traces,
    /// Metrics: `OTEL_EXPORTER_OTLP_METRICS_*`.
    Metrics,
    /// Log records: `OTEL_EXPORTER_OTLP_LOGS_*`.
    Logs,
}

/// Which aggregation temporality a metrics exporter asks the SDK for
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TemporalityPreference {
    /// Cumulative for every instrument kind. The default.
    #[default]
    Cumulative,
    /// Delta for counters, asynchronous counters and histograms; cumulative
    /// for up-down counters.
    Delta,
    /// Delta for synchronous counters and histograms; cumulative for the
    /// rest. Keeps the least state in the SDK.
    LowMemory,
}

/// The names of one family of exporter variables.
struct Names {
    endpoint: &'static str,
    headers: &'static str,
    timeout: &'static str,
    compression: &'static str,
    insecure: &'static str,
    certificate: &'static str,
    client_key: &'static str,
    client_certificate: &'static str,
    protocol: &'static str,
}

macro_rules! names {
    ($prefix:literal) => {
        Names {
            endpoint: concat!($prefix, "ENDPOINT"),
            headers: concat!($prefix, "HEADERS"),
            timeout: concat!($prefix, "TIMEOUT"),
            compression: concat!($prefix, "COMPRESSION"),
            insecure: concat!($prefix, "INSECURE"),
            certificate: concat!($prefix, "CERTIFICATE"),
            client_key: concat!($prefix, "CLIENT_KEY"),
            client_certificate: concat!($prefix, "CLIENT_CERTIFICATE"),
            protocol: concat!($prefix, "PROTOCOL"),
        }
    };
}

const GENERIC: Names = names!("OTEL_EXPORTER_OTLP_");
const TRACES: Names = names!("OTEL_EXPORTER_OTLP_TRACES_");
const METRICS: Names = names!("OTEL_EXPORTER_OTLP_METRICS_");
const LOGS: Names = names!("OTEL_EXPORTER_OTLP_LOGS_");

const TEMPORALITY_PREFERENCE: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
const METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
const DEFAULT_HISTOGRAM_AGGREGATION: &str = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";

impl Signal {
    /// The signal's place in this crate's per-signal arrays: metrics, traces, logs.
    #[cfg(any(feature = "sdk", feature = "receiver"))]
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Metrics => 0,
            Self::Traces => 1,
            Self::Logs => 2,
        }
    }

    /// The signal's name in messages: `metrics`, `traces` or `logs`.
    #[cfg(feature = "sdk")]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Traces => "traces",
            Self::Logs => "logs",
        }
    }

    /// The signal's OTLP/HTTP path: `/v1/metrics`, `/v1/traces` or `/v1/logs`.
    pub(crate) const fn http_path(self) -> &'static str {
        match self {
            Self::Metrics => "/v1/metrics",
            Self::Traces => "/v1/traces",
            Self::Logs => "/v1/logs",
        }
    }

    fn names(self) -> &'static Names {
        match self {
            Self::Traces => &TRACES,
            Self::Metrics => &METRICS,
            Self::Logs => &LOGS,
        }
    }

    /// The signal a variable is read for alone, `None` for a generic
    /// `OTEL_EXPORTER_OTLP_*` variable (read for every signal) and for any
    /// other name.
    pub(crate) fn of_variable(variable: &str) -> Option<Self> {
        if variable == METRIC_EXPORT_INTERVAL {
            return Some(Self::Metrics);
        }
        let rest = variable.strip_prefix("OTEL_EXPORTER_OTLP_")?;
        [("TRACES_", Self::Traces), ("METRICS_", Self::Metrics), ("LOGS_", Self::Logs)]
            .into_iter()
            .find_map(|(prefix, signal)| rest.starts_with(prefix).then_some(signal))
    }
}

/// The protocol variable's value, kept until the build: a protocol this
/// version does not implement is refused only if code does not set one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvProtocol {
    Supported(Protocol),
    /// `http/json`: valid, but not implemented here.
    NotImplemented {
        variable: &'static str,
        value: String,
    },
}

/// Where the endpoint variable's value came from, which decides what the
/// OTLP/HTTP transport does with its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndpointScope {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL, to which OTLP/HTTP appends
    /// `/v1/<signal>`.
    Generic,
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`: the signal's URL, used as given.
    Signal,
}

/// The exporter settings found in the environment: each is `None` when its
/// variable is unset, empty or only whitespace (the OpenTelemetry environment
/// specification treats an empty variable as unset).
///
/// Build one with [`from_lookup`](Self::from_lookup) (pure, for tests and
/// for configuration read from elsewhere) or [`from_env`](Self::from_env),
/// then hand it to [`ExporterConfigBuilder::build_with_env`](crate::config::ExporterConfigBuilder::build_with_env),
/// where settings made in code win over it. `Default` is an empty
/// environment.
///
/// Header values are not shown by `Debug`.
#[derive(Debug, Clone, Default)]
pub struct EnvSettings {
    pub(crate) protocol: Option<EnvProtocol>,
    pub(crate) endpoint: Option<Uri>,
    /// Set exactly when `endpoint` is.
    pub(crate) endpoint_scope: Option<EndpointScope>,
    pub(crate) headers: Option<Headers>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<Compression>,
    pub(crate) insecure: Option<bool>,
    pub(crate) ca_certificate: Option<ConfigPath>,
    pub(crate) client_certificate: Option<ConfigPath>,
    pub(crate) client_key: Option<ConfigPath>,
    pub(crate) temporality_preference: Option<TemporalityPreference>,
    pub(crate) metric_export_interval: Option<Duration>,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, for OTLP/HTTP.
    pub(crate) proxy: ProxyEnv,
}

impl EnvSettings {
    /// The export interval the OpenTelemetry specification sets when
    /// `OTEL_METRIC_EXPORT_INTERVAL` is unset: 60 s.
    pub const DEFAULT_METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);

    /// Reads the exporter variables for `signal` through `lookup`, which maps
    /// a variable name to its value. Nothing else is read: not the process
    /// environment, not the filesystem.
    ///
    /// For each setting the per-signal variable
    /// (`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`) wins over the generic one
    /// (`OTEL_EXPORTER_OTLP_TIMEOUT`), as a whole: per-signal headers replace
    /// the generic headers, they are not merged with them. Values:
    ///
    /// - `PROTOCOL`: `grpc`, `http/protobuf` or `http/json`. This version
    ///   speaks `grpc` and `http/protobuf`: `http/json` is kept here and
    ///   refused when building (unless code sets the protocol, which wins),
    ///   by [`ExporterConfigErrorKind::UnsupportedProtocol`]. Any other value
    ///   is an error here.
    /// - `ENDPOINT`: an `http://` or `https://` URL with a host. For gRPC it
    ///   is used as given. For OTLP/HTTP the generic
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL, to whose path
    ///   `/v1/<signal>` is appended, and the per-signal variable
    ///   (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is the signal's whole URL,
    ///   used as given; see [`ExporterConfig::export_url`](crate::ExporterConfig::export_url).
    /// - `HEADERS`: `name=value,name2=value2`; names and values trimmed,
    ///   names lowercased, values percent-decoded; empty entries skipped.
    /// - `TIMEOUT`: whole milliseconds, greater than zero.
    /// - `COMPRESSION`: `none`, `gzip` or (an extension) `zstd`.
    /// - `INSECURE`: `true` or `false`. Stricter than the environment
    ///   specification, which reads any other value as `false` with a
    ///   warning: here it is an error.
    /// - `CERTIFICATE`, `CLIENT_CERTIFICATE`, `CLIENT_KEY`: file paths, kept
    ///   unchecked; [`ExporterConfig::validate`](crate::ExporterConfig::validate)
    ///   checks them.
    ///
    /// And, for OTLP/HTTP only, the proxy variables that the official
    /// exporter's HTTP client reads: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`
    /// and `NO_PROXY` (each also in lower case), checked when the exporter
    /// is built; see [`ExporterConfig`](crate::ExporterConfig)'s
    /// "Proxies".
    ///
    /// For [`Signal::Metrics`] only, three more:
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative`,
    /// `delta` or `lowmemory`), `OTEL_METRIC_EXPORT_INTERVAL` (whole
    /// milliseconds, greater than zero), and
    /// `OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION`, where only
    /// `explicit_bucket_histogram` (what the SDK does anyway) is accepted:
    /// `base2_exponential_bucket_histogram` is refused, the SDK's readers
    /// having no way to choose it.
    ///
    /// Words (compression, booleans, temporality) are case-insensitive, and
    /// every value is trimmed of surrounding whitespace.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use otlp_sink::{config::{Compression, EnvSettings}, Signal};
    ///
    /// let env = HashMap::from([
    ///     ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
    ///     ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2500"),
    ///     ("OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP"),
    /// ]);
    /// let settings = EnvSettings::from_lookup(Signal::Metrics, |name| env.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(settings.timeout(), Some(Duration::from_millis(2500)));
    /// assert_eq!(settings.compression(), Some(Compression::Gzip));
    /// assert_eq!(settings.endpoint(), None);
    /// # Ok::<(), otlp_sink::config::ExporterConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first bad value, as an [`ExporterConfigError`] naming the variable
    /// and the value (never a header value), with the parse error as its
    /// source where there is one. A bad variable is reported even when code
    /// will override it: it is a misconfiguration all the same.
    pub fn from_lookup(signal: Signal, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ExporterConfigError> {
        let specific = signal.names();
        // The per-signal variable if it has a value, else the generic one.
        let read = |pick: fn(&Names) -> &'static str| -> Option<(&'static str, String)> {
            [pick(specific), pick(&GENERIC)].into_iter().find_map(|variable| read_var(&lookup, variable))
        };

        let mut settings = Self::default();
        if let Some((variable, value)) = read(|n| n.protocol) {
            settings.protocol = Some(parse_protocol(variable, &value)?);
        }
        if let Some((variable, value)) = read(|n| n.endpoint) {
            settings.endpoint = Some(parse_endpoint(ValueOrigin::Env(variable), &value)?);
            let scope = if variable == GENERIC.endpoint { EndpointScope::Generic } else { EndpointScope::Signal };
            settings.endpoint_scope = Some(scope);
        }
        if let Some((variable, value)) = read(|n| n.headers) {
            settings.headers = Some(parse_env_headers(ValueOrigin::Env(variable), &value)?);
        }
        if let Some((variable, value)) = read(|n| n.timeout) {
            settings.timeout = Some(parse_millis(variable, &value)?);
        }
        if let Some((variable, value)) = read(|n| n.compression) {
            settings.compression = Some(parse_compression(variable, &value)?);
        }
        if let Some((variable, value)) = read(|n| n.insecure) {
            settings.insecure = Some(parse_bool(variable, &value)?);
        }
        let path = |(variable, value): (&'static str, String)| ConfigPath::new(value, ValueOrigin::Env(variable));
        settings.ca_certificate = read(|n| n.certificate).map(path);
        settings.client_certificate = read(|n| n.client_certificate).map(path);
        settings.client_key = read(|n| n.client_key).map(path);
        settings.proxy = ProxyEnv::from_lookup(&lookup);

        if signal == Signal::Metrics {
            if let Some((variable, value)) = read_var(&lookup, TEMPORALITY_PREFERENCE) {
                settings.temporality_preference = Some(parse_temporality(variable, &value)?);
            }
            if let Some((variable, value)) = read_var(&lookup, METRIC_EXPORT_INTERVAL) {
                settings.metric_export_interval = Some(parse_millis(variable, &value)?);
            }
            if let Some((variable, value)) = read_var(&lookup, DEFAULT_HISTOGRAM_AGGREGATION) {
                check_histogram_aggregation(variable, &value)?;
            }
        }
        Ok(settings)
    }

    /// [`from_lookup`](Self::from_lookup) on the process environment. A value
    /// that is not valid Unicode is read lossily (and then most likely
    /// reported as invalid).
    ///
    /// # Errors
    ///
    /// As [`from_lookup`](Self::from_lookup).
    pub fn from_env(signal: Signal) -> Result<Self, ExporterConfigError> {
        Self::from_lookup(signal, |name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()))
    }

    /// The transport (`PROTOCOL`). `None` when unset, and also when it
    /// names `http/json`, which this version does not speak and a build
    /// refuses unless code sets the protocol.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.protocol {
            Some(EnvProtocol::Supported(protocol)) => Some(protocol),
            _ => None,
        }
    }

    /// The collector's URL, as the variable gives it.
    pub fn endpoint(&self) -> Option<&Uri> {
        self.endpoint.as_ref()
    }

    /// Whether the endpoint came from the per-signal variable
    /// (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), which OTLP/HTTP uses as the
    /// signal's whole URL, rather than from `OTEL_EXPORTER_OTLP_ENDPOINT`, a
    /// base URL to which it appends `/v1/<signal>`. `false` when unset.
    pub fn endpoint_is_per_signal(&self) -> bool {
        self.endpoint_scope == Some(EndpointScope::Signal)
    }

    /// The request headers (values hidden).
    pub fn headers(&self) -> Option<&Headers> {
        self.headers.as_ref()
    }

    /// The timeout of one export attempt.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The request compression.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// The `INSECURE` flag.
    pub fn insecure(&self) -> Option<bool> {
        self.insecure
    }

    /// The CA certificate file (`CERTIFICATE`).
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.ca_certificate.as_ref().map(ConfigPath::path)
    }

    /// The client certificate file for mutual TLS.
    pub fn client_certificate(&self) -> Option<&Path> {
        self.client_certificate.as_ref().map(ConfigPath::path)
    }

    /// The client private key file for mutual TLS.
    pub fn client_key(&self) -> Option<&Path> {
        self.client_key.as_ref().map(ConfigPath::path)
    }

    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`; only read for
    /// [`Signal::Metrics`]. When `None`, use
    /// [`TemporalityPreference::default()`] unless code says otherwise.
    pub fn temporality_preference(&self) -> Option<TemporalityPreference> {
        self.temporality_preference
    }

    /// `OTEL_METRIC_EXPORT_INTERVAL`; only read for [`Signal::Metrics`]. When
    /// `None`, use [`DEFAULT_METRIC_EXPORT_INTERVAL`](Self::DEFAULT_METRIC_EXPORT_INTERVAL)
    /// unless code says otherwise.
    pub fn metric_export_interval(&self) -> Option<Duration> {
        self.metric_export_interval
    }
}

/// A variable's trimmed value, or `None` when it is unset or blank.
fn read_var(lookup: &impl Fn(&str) -> Option<String>, variable: &'static str) -> Option<(&'static str, String)> {
    let value = lookup(variable)?;
    let value = value.trim();
    (!value.is_empty()).then(|| (variable, value.to_owned()))
}

fn parse_millis(variable: &'static str, value: &str) -> Result<Duration, ExporterConfigError> {
    let origin = ValueOrigin::Env(variable);
    let millis: u64 = value.parse().map_err(|err| {
        ExporterConfigError::new(origin, value, ExporterConfigErrorKind::InvalidMilliseconds).with_source(err)
    })?;
    if millis == 0 {
        return Err(ExporterConfigError::new(origin, value, ExporterConfigErrorKind::Zero));
    }
    Ok(Duration::from_millis(millis))
}

fn parse_protocol(variable: &'static str, value: &str) -> Result<EnvProtocol, ExporterConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "grpc" => Ok(EnvProtocol::Supported(Protocol::Grpc)),
        "http/protobuf" => Ok(EnvProtocol::Supported(Protocol::HttpProtobuf)),
        "http/json" => Ok(EnvProtocol::NotImplemented { variable, value: value.to_owned() }),
        _ => Err(ExporterConfigError::new(ValueOrigin::Env(variable), value, ExporterConfigErrorKind::UnknownProtocol)),
    }
}

/// Only the SDK's own default, explicit buckets, can be honoured.
fn check_histogram_aggregation(variable: &'static str, value: &str) -> Result<(), ExporterConfigError> {
    let kind = match value.to_ascii_lowercase().as_str() {
        "explicit_bucket_histogram" => return Ok(()),
        "base2_exponential_bucket_histogram" => ExporterConfigErrorKind::UnsupportedHistogramAggregation,
        _ => ExporterConfigErrorKind::UnknownHistogramAggregation,
    };
    Err(ExporterConfigError::new(ValueOrigin::Env(variable), value, kind))
}

fn parse_compression(variable: &'static str, value: &str) -> Result<Compression, ExporterConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(ExporterConfigError::new(
            ValueOrigin::Env(variable),
            value,
            ExporterConfigErrorKind::UnknownCompression,
        )),
    }
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, ExporterConfigError> {
    value.to_ascii_lowercase().parse().map_err(|err| {
        ExporterConfigError::new(ValueOrigin::Env(variable), value, ExporterConfigErrorKind::InvalidBool)
            .with_source(err)
    })
}

fn parse_temporality(variable: &'static str, value: &str) -> Result<TemporalityPreference, ExporterConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "cumulative" => Ok(TemporalityPreference::Cumulative),
        "delta" => Ok(TemporalityPreference::Delta),
        "lowmemory" => Ok(TemporalityPreference::LowMemory),
        _ => Err(ExporterConfigError::new(
            ValueOrigin::Env(variable),
            value,
            ExporterConfigErrorKind::UnknownTemporality,
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::error::Error as _;

    use super::*;

    use proptest::prelude::*;

    fn parse(signal: Signal, vars: &[(&str, &str)]) -> Result<EnvSettings, ExporterConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnvSettings::from_lookup(signal, |name| vars.get(name).cloned())
    }

    fn metrics(vars: &[(&str, &str)]) -> EnvSettings {
        parse(Signal::Metrics, vars).unwrap()
    }

    fn metrics_err(vars: &[(&str, &str)]) -> ExporterConfigError {
        parse(Signal::Metrics, vars).unwrap_err()
    }

    #[test]
    fn an_empty_environment_sets_nothing() {
        let s = metrics(&[]);
        assert!(s.endpoint().is_none() && s.headers().is_none() && s.timeout().is_none());
        assert!(s.compression().is_none() && s.insecure().is_none() && s.ca_certificate().is_none());
        assert!(s.client_certificate().is_none() && s.client_key().is_none());
        assert!(s.temporality_preference().is_none() && s.metric_export_interval().is_none());
    }

    #[test]
    fn reads_every_generic_variable() {
        let s = metrics(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/client.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/client.key"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
        ]);
        assert_eq!(s.endpoint().unwrap(), "https://collector:4317/");
        assert_eq!(s.headers().unwrap().value("authorization"), Some("Bearer t"));
        assert_eq!(s.timeout(), Some(Duration::from_millis(2500)));
        assert_eq!(s.compression(), Some(Compression::Gzip));
        assert_eq!(s.insecure(), Some(true));
        assert_eq!(s.ca_certificate(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(s.client_certificate(), Some(Path::new("/etc/client.pem")));
        assert_eq!(s.client_key(), Some(Path::new("/etc/client.key")));
        assert_eq!(s.temporality_preference(), Some(TemporalityPreference::Delta));
        assert_eq!(s.metric_export_interval(), Some(Duration::from_secs(15)));
    }

    #[test]
    fn per_signal_variables_win_over_generic_ones() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=generic,b=generic"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "a=metrics"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "false"),
            ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/generic/ca.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "/metrics/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/generic/c.pem"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/metrics/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/generic/c.key"),
            ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "/metrics/c.key"),
        ];
        let s = metrics(&vars);
        assert_eq!(s.endpoint().unwrap().host(), Some("metrics"));
        let headers = s.headers().unwrap();
        assert_eq!(headers.value("a"), Some("metrics"));
        assert!(!headers.contains("b"), "per-signal headers replace the generic ones as a whole");
        assert_eq!(s.timeout(), Some(Duration::from_secs(2)));
        assert_eq!(s.compression(), Some(Compression::Zstd));
        assert_eq!(s.insecure(), Some(true));
        assert_eq!(s.ca_certificate(), Some(Path::new("/metrics/ca.pem")));
        assert_eq!(s.client_certificate(), Some(Path::new("/metrics/c.pem")));
        assert_eq!(s.client_key(), Some(Path::new("/metrics/c.key")));

        // Another signal's variables are not this signal's.
        let traces = parse(Signal::Traces, &vars).unwrap();
        assert_eq!(traces.endpoint().unwrap().host(), Some("traces"));
        assert_eq!(traces.timeout(), Some(Duration::from_secs(1)));
        let logs = parse(Signal::Logs, &vars).unwrap();
        assert_eq!(logs.endpoint().unwrap().host(), Some("generic"));
        assert_eq!(logs.headers().unwrap().value("b"), Some("generic"));
    }

    #[test]
    fn logs_and_traces_read_their_own_prefix() {
        let s = parse(Signal::Logs, &[("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "7")]).unwrap();
        assert_eq!(s.timeout(), Some(Duration::from_millis(7)));
        let s = parse(Signal::Traces, &[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")]).unwrap();
        assert_eq!(s.compression(), Some(Compression::Gzip));
    }

    #[test]
    fn blank_values_count_as_unset_and_fall_back_to_the_generic_variable() {
        let s = metrics(&[
            ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "  "),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", ""),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", ""),
        ]);
        assert_eq!(s.timeout(), Some(Duration::from_secs(3)));
        assert_eq!(s.endpoint(), None);
        assert_eq!(s.compression(), None);
    }

    #[test]
    fn words_are_case_insensitive_and_values_trimmed() {
        let s = metrics(&[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", " ZStd "),
            ("OTEL_EXPORTER_OTLP_INSECURE", "FALSE"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "LowMemory"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", " 10 "),
        ]);
        assert_eq!(s.compression(), Some(Compression::Zstd));
        assert_eq!(s.insecure(), Some(false));
        assert_eq!(s.temporality_preference(), Some(TemporalityPreference::LowMemory));
        assert_eq!(s.timeout(), Some(Duration::from_millis(10)));
        assert_eq!(metrics(&[("OTEL_EXPORTER_OTLP_INSECURE", "True")]).insecure(), Some(true));
        assert_eq!(
            metrics(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "CUMULATIVE")]).temporality_preference(),
            Some(TemporalityPreference::Cumulative)
        );
        assert_eq!(metrics(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "None")]).compression(), Some(Compression::None));
    }

    #[test]
    fn metrics_only_variables_are_ignored_for_other_signals() {
        let vars =
            [("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "bogus"), ("OTEL_METRIC_EXPORT_INTERVAL", "x")];
        let s = parse(Signal::Traces, &vars).unwrap();
        assert_eq!(s.temporality_preference(), None);
        assert_eq!(s.metric_export_interval(), None);
        assert!(parse(Signal::Metrics, &vars).is_err());
    }

    #[test]
    fn bad_endpoints_name_the_variable_and_value() {
        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4317")]);
        assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));
        assert_eq!(err.value(), Some("collector:4317"));
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnsupportedScheme);

        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://bad host")]);
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidUrl);
        assert!(err.source().unwrap().is::<http::uri::InvalidUri>());
        assert!(err.to_string().contains(r#"OTEL_EXPORTER_OTLP_ENDPOINT = "http://bad host""#), "{err}");
    }

    #[test]
    fn bad_timeouts_name_the_variable_value_and_cause() {
        for value in ["abc", "-5", "1.5", "18446744073709551616"] {
            let err = metrics_err(&[("OTEL_EXPORTER_OTLP_TIMEOUT", value)]);
            assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_TIMEOUT"));
            assert_eq!(err.value(), Some(value));
            assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidMilliseconds);
            assert!(err.source().unwrap().is::<std::num::ParseIntError>(), "{value}");
        }
        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0")]);
        assert_eq!(
            (err.variable(), err.kind()),
            (Some("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"), ExporterConfigErrorKind::Zero)
        );
        let err = metrics_err(&[("OTEL_METRIC_EXPORT_INTERVAL", "soon")]);
        assert_eq!(
            (err.variable(), err.kind()),
            (Some("OTEL_METRIC_EXPORT_INTERVAL"), ExporterConfigErrorKind::InvalidMilliseconds)
        );
        let err = metrics_err(&[("OTEL_METRIC_EXPORT_INTERVAL", "0")]);
        assert_eq!(err.kind(), ExporterConfigErrorKind::Zero);
    }

    #[test]
    fn bad_words_name_the_variable_and_value() {
        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")]);
        assert_eq!((err.variable(), err.value()), (Some("OTEL_EXPORTER_OTLP_COMPRESSION"), Some("brotli")));
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnknownCompression);
        assert_eq!(
            err.to_string(),
            r#"invalid OTEL_EXPORTER_OTLP_COMPRESSION = "brotli": the compression must be none, gzip or zstd"#
        );

        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "yes")]);
        assert_eq!((err.variable(), err.value()), (Some("OTEL_EXPORTER_OTLP_METRICS_INSECURE"), Some("yes")));
        assert_eq!(err.kind(), ExporterConfigErrorKind::InvalidBool);
        assert!(err.source().unwrap().is::<std::str::ParseBoolError>());

        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "low_memory")]);
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnknownTemporality);
        assert_eq!(err.value(), Some("low_memory"));
    }

    #[test]
    fn bad_headers_name_the_variable_but_not_the_value() {
        let err = metrics_err(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization Bearer s3cr3t")]);
        assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_HEADERS"));
        assert_eq!(err.kind(), ExporterConfigErrorKind::MalformedHeader);
        assert_eq!(err.value(), None);
        assert!(!format!("{err} {err:?}").contains("s3cr3t"));
    }

    #[test]
    fn debug_hides_header_values() {
        let s = metrics(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cr3t")]);
        let debug = format!("{s:?}");
        assert!(debug.contains("authorization"), "{debug}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
    }

    /// Every variable `from_lookup` reads for `Signal::Metrics`.
    fn all_variables() -> Vec<&'static str> {
        let mut all = Vec::new();
        for names in [&GENERIC, &METRICS] {
            all.extend([
                names.endpoint,
                names.headers,
                names.timeout,
                names.compression,
                names.insecure,
                names.certificate,
                names.client_key,
                names.client_certificate,
                names.protocol,
            ]);
        }
        all.extend([TEMPORALITY_PREFERENCE, METRIC_EXPORT_INTERVAL, DEFAULT_HISTOGRAM_AGGREGATION]);
        all
    }

    /// How many variables `from_lookup` reads for one signal.
    const VARIABLES: usize = 21;

    #[test]
    fn every_variable_of_the_specification_is_known() {
        // The exporter variables of the OTLP exporter specification, for
        // metrics: each generic and per signal, plus the three metrics-only ones.
        let mut expected: Vec<String> = Vec::new();
        for prefix in ["OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_METRICS_"] {
            for name in [
                "ENDPOINT",
                "HEADERS",
                "TIMEOUT",
                "COMPRESSION",
                "INSECURE",
                "CERTIFICATE",
                "CLIENT_KEY",
                "CLIENT_CERTIFICATE",
                "PROTOCOL",
            ] {
                expected.push(format!("{prefix}{name}"));
            }
        }
        expected.extend([
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE".into(),
            "OTEL_METRIC_EXPORT_INTERVAL".into(),
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION".into(),
        ]);
        let mut known: Vec<String> = all_variables().into_iter().map(str::to_owned).collect();
        known.sort();
        expected.sort();
        assert_eq!(known, expected);
        assert_eq!(known.len(), VARIABLES);
        for (names, signal) in [(&TRACES, Signal::Traces), (&LOGS, Signal::Logs)] {
            assert_eq!(names.protocol, format!("OTEL_EXPORTER_OTLP_{signal:?}_PROTOCOL").to_uppercase());
        }
    }

    #[test]
    fn the_protocol_is_read_per_signal_then_generic() {
        let s = metrics(&[("OTEL_EXPORTER_OTLP_PROTOCOL", " GRPC ")]);
        assert_eq!(s.protocol(), Some(Protocol::Grpc));
        assert_eq!(s.protocol, Some(EnvProtocol::Supported(Protocol::Grpc)));
        assert_eq!(metrics(&[]).protocol(), None);

        // http/protobuf is spoken; http/json is kept, with the variable that
        // named it, for the build to refuse (unless code sets a protocol).
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/Protobuf"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/json"),
        ];
        assert_eq!(parse(Signal::Metrics, &vars).unwrap().protocol(), Some(Protocol::Grpc));
        let traces = parse(Signal::Traces, &vars).unwrap();
        assert_eq!(traces.protocol(), Some(Protocol::HttpProtobuf), "per signal, case-insensitive");
        let logs = parse(Signal::Logs, &vars).unwrap();
        assert_eq!(logs.protocol(), None, "not a protocol this version speaks");
        assert_eq!(
            logs.protocol,
            Some(EnvProtocol::NotImplemented {
                variable: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
                value: "http/json".into()
            })
        );
        let generic = parse(Signal::Logs, &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(generic.protocol(), Some(Protocol::HttpProtobuf));
    }

    #[test]
    fn the_endpoint_remembers_whether_it_was_the_signals_own() {
        let generic = metrics(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base")]);
        assert_eq!(generic.endpoint().map(|u| u.path()), Some("/base"));
        assert!(!generic.endpoint_is_per_signal());
        let both = metrics(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/base"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4318/custom/metrics"),
        ]);
        assert_eq!(both.endpoint().map(|u| u.path()), Some("/custom/metrics"));
        assert!(both.endpoint_is_per_signal());
        // Another signal's variable is not this signal's.
        let other = metrics(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/t")]);
        assert_eq!((other.endpoint(), other.endpoint_is_per_signal()), (None, false));
    }

    #[test]
    fn only_the_explicit_bucket_histogram_aggregation_is_accepted() {
        let var = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION";
        assert!(parse(Signal::Metrics, &[(var, "Explicit_Bucket_Histogram")]).is_ok());
        let err = metrics_err(&[(var, "base2_exponential_bucket_histogram")]);
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnsupportedHistogramAggregation);
        assert_eq!((err.variable(), err.value()), (Some(var), Some("base2_exponential_bucket_histogram")));
        assert_eq!(
            err.to_string(),
            "invalid OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION = \"base2_exponential_bucket_histogram\": \
             only explicit_bucket_histogram (the SDK's default) is supported here"
        );
        let err = metrics_err(&[(var, "exponential")]);
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnknownHistogramAggregation);
        assert!(parse(Signal::Traces, &[(var, "exponential")]).is_ok(), "a metrics-only variable");
    }

    #[test]
    fn unknown_protocols_name_the_variable_and_value() {
        let err = parse(Signal::Traces, &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/xml")]).unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnknownProtocol);
        assert_eq!((err.variable(), err.value()), (Some("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), Some("http/xml")));
        assert_eq!(err.signal(), Some(Signal::Traces));
        assert!(err.to_string().contains("supports grpc and http/protobuf"), "{err}");
    }

    #[test]
    fn variables_map_to_their_signal() {
        assert_eq!(Signal::of_variable("OTEL_EXPORTER_OTLP_ENDPOINT"), None);
        assert_eq!(Signal::of_variable("OTEL_EXPORTER_OTLP_PROTOCOL"), None);
        assert_eq!(Signal::of_variable("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), Some(Signal::Traces));
        assert_eq!(Signal::of_variable("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY"), Some(Signal::Metrics));
        assert_eq!(Signal::of_variable("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"), Some(Signal::Logs));
        assert_eq!(Signal::of_variable(TEMPORALITY_PREFERENCE), Some(Signal::Metrics));
        assert_eq!(Signal::of_variable(METRIC_EXPORT_INTERVAL), Some(Signal::Metrics));
        assert_eq!(Signal::of_variable("OTEL_SERVICE_NAME"), None);
        for names in [&GENERIC, &TRACES, &METRICS, &LOGS] {
            let signal = Signal::of_variable(names.timeout);
            assert!([names.endpoint, names.headers, names.protocol, names.client_key]
                .iter()
                .all(|v| Signal::of_variable(v) == signal));
        }
    }

    #[test]
    fn every_variable_is_read() {
        // A value every parser refuses (or a path, which is kept): each
        // variable, set alone, changes the outcome.
        for variable in all_variables() {
            let result = parse(Signal::Metrics, &[(variable, "%%not valid%%")]);
            let read = match &result {
                Err(err) => err.variable() == Some(variable),
                Ok(s) => s.ca_certificate().or(s.client_certificate()).or(s.client_key()).is_some(),
            };
            assert!(read, "{variable} was not read: {result:?}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_values_give_ok_or_a_named_error(
            values in proptest::collection::vec(proptest::option::of(any::<String>()), VARIABLES),
        ) {
            let names = all_variables();
            let vars: HashMap<&str, String> =
                names.iter().zip(values).filter_map(|(name, value)| value.map(|v| (*name, v))).collect();
            if let Err(err) = EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).cloned()) {
                let variable = err.variable().expect("errors name their variable");
                prop_assert!(vars.contains_key(variable));
                let _ = err.to_string();
            }
        }

        #[test]
        fn plausible_values_for_one_variable_never_panic(
            index in 0usize..VARIABLES,
            value in "[ -~\t\n\u{e9}]{0,30}",
        ) {
            let variable = all_variables()[index];
            let result = EnvSettings::from_lookup(Signal::Metrics, |name| (name == variable).then(|| value.clone()));
            if let Err(err) = result {
                prop_assert_eq!(err.variable(), Some(variable));
            }
        }
    }
}
