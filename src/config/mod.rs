//! The exporter's settings: a builder for what code sets, the OTLP
//! environment variables read through a lookup function, and one merge with
//! a fixed precedence: code, then environment, then defaults.
//!
//! Everything here is pure except three functions that say so:
//! [`EnvSettings::from_env`] and [`ExporterConfigBuilder::build_from_env`]
//! read the process environment, and [`ExporterConfig::validate`] looks at
//! the filesystem.

mod endpoint;
mod env;
mod error;
mod headers;
mod proxy;
mod retry;
mod spool;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::uri::Scheme;
use http::Uri;

use endpoint::parse_endpoint;
use env::{EndpointScope, EnvProtocol};
use headers::{parse_code_headers, Redacted};

pub use env::{EnvSettings, Signal, TemporalityPreference};
pub use error::{ExporterConfigError, ExporterConfigErrorKind, ValueOrigin};
pub use headers::Headers;
use proxy::ProxyEnv;
pub(crate) use proxy::{Proxy, ProxyWantsCredentials};
pub use retry::RetryPolicy;
pub use spool::{FlushLevel, FullPolicy, SpoolConfig};
pub use tls::TlsConfig;
pub(crate) use tls::{ConfigPath, Pem};

/// The OTLP transport: how export requests travel to the collector. Both
/// carry the same protobuf requests, cut to the same size, through the same
/// delivery engine (window, retries, accounting); they differ in the wire
/// and in how a collector says no.
///
/// - [`Grpc`](Self::Grpc) is this crate's default, as it was before
///   OTLP/HTTP existed here. The OpenTelemetry specification's default, and
///   `opentelemetry-otlp`'s since 0.28, is `http/protobuf`: set
///   `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` or call
///   [`with_protocol(Protocol::HttpProtobuf)`](ExporterConfigBuilder::with_protocol)
///   to match them.
/// - `http/json` in `OTEL_EXPORTER_OTLP_PROTOCOL` (or a per-signal variant)
///   is refused at build time, naming the variable, rather than sending
///   protobuf to a collector that was told to expect JSON.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`): unary `Export` calls over HTTP/2, default port
    /// 4317, the endpoint used as given. The default.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`): `POST /v1/<signal>`
    /// over HTTP/1.1 with keep-alive, default port 4318 (see
    /// [`ExporterConfig::export_url`] for how the URL is made).
    HttpProtobuf,
}

impl Protocol {
    /// The protocol's name in `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or
    /// `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }

    /// The endpoint used when none is configured:
    /// [`ExporterConfig::DEFAULT_ENDPOINT`] (`http://localhost:4317`) for
    /// gRPC, [`ExporterConfig::DEFAULT_HTTP_ENDPOINT`] (`http://localhost:4318`)
    /// for OTLP/HTTP.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Self::Grpc => ExporterConfig::DEFAULT_ENDPOINT,
            Self::HttpProtobuf => ExporterConfig::DEFAULT_HTTP_ENDPOINT,
        }
    }
}

/// How export requests are compressed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Not compressed. The default, as in the OTLP exporter specification.
    #[default]
    None,
    /// gzip, which every OTLP receiver supports.
    Gzip,
    /// zstd: less CPU for the same ratio, but not every receiver accepts it.
    Zstd,
}

/// The settings of one signal's OTLP drain ([`MetricsDrain`](crate::MetricsDrain),
/// [`TracesDrain`](crate::TracesDrain), [`LogsDrain`](crate::LogsDrain)),
/// resolved: every setting has its final value.
///
/// With the OpenTelemetry SDK you do not need this type:
/// [`OtlpExporter::builder()`](crate::OtlpExporter::builder) takes the same
/// settings directly. Make one with [`ExporterConfig::builder`], which
/// applies the precedence *code > environment > default*, or take
/// [`ExporterConfig::default`].
///
/// `Debug` never shows header values.
///
/// # Proxies
///
/// Over OTLP/HTTP, a configuration built with an environment
/// ([`build_with_env`](ExporterConfigBuilder::build_with_env),
/// [`build_from_env`](ExporterConfigBuilder::build_from_env)) sends through
/// the HTTP proxy that its `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY`
/// names, unless `NO_PROXY` lists the collector's host, as the official
/// exporter's HTTP client does: an `https://` collector through a `CONNECT`
/// tunnel, an `http://` one by sending the proxy each request. The proxy is
/// an `http://` URL (or `host:port`), with credentials in it if it needs
/// them (sent as `Proxy-Authorization: Basic`, never shown); `https://` and
/// SOCKS proxies are refused when building, by name. `NO_PROXY` is a
/// comma-separated list of hosts, domains (with their subdomains), IP
/// addresses or networks (`10.0.0.0/8`), or `*`; a collector on the loopback
/// goes through the proxy too unless listed. OTLP/gRPC reads no proxy
/// variable, as the official gRPC exporter does not.
///
/// ```
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use otlp_sink::{config::{Compression, EnvSettings}, ExporterConfig, Signal};
///
/// // What the environment says (read from a map here; `from_env` reads the process).
/// let vars = HashMap::from([
///     ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4317"),
///     ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
///     ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme"),
/// ]);
/// let env = EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).map(|v| v.to_string()))?;
///
/// let config = ExporterConfig::builder()
///     .with_timeout(Duration::from_secs(5)) // code wins over the environment
///     .with_header("authorization", "Bearer s3cr3t")
///     .build_with_env(env)?;
///
/// assert_eq!(config.endpoint(), "https://collector.example:4317/"); // from the environment
/// assert_eq!(config.timeout(), Duration::from_secs(5)); // from code
/// assert_eq!(config.compression(), Compression::None); // the default
/// assert_eq!(config.headers().names().collect::<Vec<_>>(), ["x-tenant", "authorization"]);
/// assert!(!format!("{config:?}").contains("s3cr3t"));
/// # Ok::<(), otlp_sink::config::ExporterConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    protocol: Protocol,
    /// Scheme `http` or `https`, with a host, no query.
    endpoint: Uri,
    /// Whether OTLP/HTTP appends `/v1/<signal>` to `endpoint`.
    endpoint_scope: EndpointScope,
    headers: Headers,
    /// Greater than zero.
    timeout: Duration,
    compression: Compression,
    insecure: bool,
    pub(crate) ca_certificate: Option<ConfigPath>,
    /// Set exactly when `client_key` is.
    pub(crate) client_certificate: Option<ConfigPath>,
    pub(crate) client_key: Option<ConfigPath>,
    /// Greater than zero.
    max_request_bytes: usize,
    /// Greater than zero.
    max_in_flight: usize,
    retry_policy: RetryPolicy,
    /// The proxy variables, for OTLP/HTTP (empty for gRPC, and without an
    /// environment).
    proxy: ProxyEnv,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Grpc,
            endpoint: Uri::from_static(Self::DEFAULT_ENDPOINT),
            endpoint_scope: EndpointScope::Generic,
            headers: Headers::default(),
            timeout: Self::DEFAULT_TIMEOUT,
            compression: Compression::None,
            insecure: false,
            ca_certificate: None,
            client_certificate: None,
            client_key: None,
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            retry_policy: RetryPolicy::new(),
            proxy: ProxyEnv::default(),
        }
    }
}

impl ExporterConfig {
    /// The default endpoint for gRPC: a collector on this host, plaintext,
    /// on the OTLP/gRPC port.
    pub const DEFAULT_ENDPOINT: &'static str = "http://localhost:4317";

    /// The default endpoint for OTLP/HTTP: a collector on this host,
    /// plaintext, on the OTLP/HTTP port. A base URL: requests go to
    /// `http://localhost:4318/v1/<signal>`.
    pub const DEFAULT_HTTP_ENDPOINT: &'static str = "http://localhost:4318";

    /// The default timeout of one export attempt: 10 s, as in the OTLP
    /// exporter specification.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The default largest encoded request: 4 MiB, the receive limit of gRPC
    /// servers (and so of collectors) unless raised.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

    /// The default number of export requests awaiting their answer at once.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

    /// A builder with nothing set: every setting left alone comes from the
    /// environment given to the build, else from the defaults.
    pub fn builder() -> ExporterConfigBuilder {
        ExporterConfigBuilder::default()
    }

    /// The transport. Default [`Protocol::Grpc`].
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The collector's URL as configured. gRPC uses it as given; OTLP/HTTP
    /// may append the signal's path to it: [`export_url`](Self::export_url)
    /// says where requests go. Default the protocol's
    /// [`default_endpoint`](Protocol::default_endpoint).
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// Where `signal`'s requests go.
    ///
    /// - gRPC: the [`endpoint`](Self::endpoint), as given.
    /// - OTLP/HTTP: the endpoint with `/v1/<signal>` appended to its path
    ///   (`/v1/metrics`, `/v1/traces`, `/v1/logs`), keeping any path it has
    ///   and adding no second slash after a trailing one, when the endpoint
    ///   is a base URL: set in code
    ///   ([`with_endpoint`](ExporterConfigBuilder::with_endpoint)), by
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT`, or the default. When it came from the
    ///   signal's own variable (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), it is
    ///   the whole URL, used as given.
    ///
    /// The builder's endpoint is a base URL, unlike `opentelemetry-otlp`,
    /// whose per-signal builders take the signal's whole URL: here one
    /// builder ([`OtlpExporterBuilder`](crate::sdk::OtlpExporterBuilder)) serves
    /// all three signals, which could not share one URL.
    ///
    /// ```
    /// use otlp_sink::config::EnvSettings;
    /// use otlp_sink::{ExporterConfig, Protocol, Signal};
    ///
    /// let env = |vars: &'static [(&'static str, &'static str)]| {
    ///     EnvSettings::from_lookup(Signal::Traces, move |name| {
    ///         vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    ///     })
    /// };
    /// let http = || ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf);
    ///
    /// let base = http().build_with_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c.example/otlp/")])?)?;
    /// assert_eq!(base.export_url(Signal::Traces), "https://c.example/otlp/v1/traces");
    ///
    /// let own = http().build_with_env(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c.example/t")])?)?;
    /// assert_eq!(own.export_url(Signal::Traces), "https://c.example/t");
    ///
    /// assert_eq!(http().build_without_env()?.export_url(Signal::Logs), "http://localhost:4318/v1/logs");
    /// assert_eq!(ExporterConfig::default().export_url(Signal::Logs), "http://localhost:4317/");
    /// # Ok::<(), otlp_sink::config::ExporterConfigError>(())
    /// ```
    pub fn export_url(&self, signal: Signal) -> Uri {
        self.export_url_for_path(signal.http_path())
    }

    /// [`export_url`](Self::export_url) for a signal's OTLP/HTTP path.
    pub(crate) fn export_url_for_path(&self, path: &str) -> Uri {
        match (self.protocol, self.endpoint_scope) {
            (Protocol::Grpc, _) | (Protocol::HttpProtobuf, EndpointScope::Signal) => self.endpoint.clone(),
            (Protocol::HttpProtobuf, EndpointScope::Generic) => endpoint::append_path(&self.endpoint, path),
        }
    }

    /// Whether the connection uses TLS, which the endpoint's scheme decides:
    /// `https` does, `http` does not.
    pub fn uses_tls(&self) -> bool {
        self.endpoint.scheme() == Some(&Scheme::HTTPS)
    }

    /// The headers sent with every request (values hidden).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The timeout of one export attempt. Default 10 s.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The request compression. Default [`Compression::None`].
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The `insecure` flag. Default `false`.
    ///
    /// The OTLP exporter specification lets it matter only for an endpoint
    /// without a scheme, and this exporter requires a scheme, which decides
    /// (see [`uses_tls`](Self::uses_tls)). The flag is kept, and reported by
    /// this getter, so that configuration shared with other exporters reads
    /// the same; it changes nothing here.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The CA certificate file (PEM) that server certificates are checked
    /// against, instead of the system's roots. Used only with TLS. `None`
    /// also when the certificate was given as PEM bytes
    /// ([`TlsConfig::with_ca_certificate_pem`]); see
    /// [`has_ca_certificate`](Self::has_ca_certificate).
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.ca_certificate.as_ref().and_then(ConfigPath::file)
    }

    /// Whether a CA certificate is set, as a file or as PEM bytes.
    pub fn has_ca_certificate(&self) -> bool {
        self.ca_certificate.is_some()
    }

    /// The client certificate file (PEM) for mutual TLS. Set exactly when
    /// [`client_key`](Self::client_key) is, unless both were given as PEM
    /// bytes; see [`has_client_identity`](Self::has_client_identity). Used
    /// only with TLS.
    pub fn client_certificate(&self) -> Option<&Path> {
        self.client_certificate.as_ref().and_then(ConfigPath::file)
    }

    /// The client private key file (PEM) for mutual TLS. Set exactly when
    /// [`client_certificate`](Self::client_certificate) is, unless both were
    /// given as PEM bytes.
    pub fn client_key(&self) -> Option<&Path> {
        self.client_key.as_ref().and_then(ConfigPath::file)
    }

    /// Whether a client certificate and key are set, as files or PEM bytes.
    pub fn has_client_identity(&self) -> bool {
        self.client_key.is_some()
    }

    /// The largest encoded export request. Default 4 MiB.
    pub fn max_request_bytes(&self) -> usize {
        self.max_request_bytes
    }

    /// How many export requests may await their answer at once. Default 4.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// The HTTP proxy that requests to `url` go through, if any (see
    /// "Proxies" above).
    pub(crate) fn proxy_for(&self, url: &Uri) -> Option<Proxy> {
        self.proxy.proxy_for(url)
    }

    /// How failed requests are retried. Default [`RetryPolicy::default`].
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry_policy
    }

    /// Checks what building could not without touching the filesystem: that
    /// each configured certificate and key file exists and can be opened.
    /// The drains read these files when they connect (and report a
    /// [`ConnectError::ReadFile`](crate::tls::ConnectError::ReadFile) naming the
    /// file and its variable); call this earlier to fail at startup. It
    /// blocks on the filesystem for a moment: call it outside async code or
    /// accept that.
    ///
    /// Files are checked whether or not the endpoint uses TLS: a path that
    /// names nothing is a misconfiguration either way.
    ///
    /// # Errors
    ///
    /// [`ExporterConfigErrorKind::UnreadableFile`], naming the variable or
    /// setting and the path, with the I/O error as its source.
    pub fn validate(&self) -> Result<(), ExporterConfigError> {
        [&self.ca_certificate, &self.client_certificate, &self.client_key]
            .into_iter()
            .flatten()
            .try_for_each(ConfigPath::check_readable)
    }
}

/// Settings made in code for an [`ExporterConfig`]. Each `with_*` call sets
/// one; a setting left alone is taken from the environment given to the
/// build, else from its default. Values are checked when building. The
/// `with_*` methods are those of [`OtlpExporterBuilder`](crate::sdk::OtlpExporterBuilder)
/// (and of `opentelemetry-otlp`'s builders).
///
/// Three ways to build, each named for the environment it uses:
///
/// - [`build_from_env`](Self::build_from_env): the process environment;
/// - [`build_with_env`](Self::build_with_env): [`EnvSettings`] you parsed,
///   for example with [`EnvSettings::from_lookup`] (pure);
/// - [`build_without_env`](Self::build_without_env): none (code, then
///   defaults).
///
/// `Debug` never shows header values.
#[derive(Debug, Clone, Default)]
pub struct ExporterConfigBuilder {
    protocol: Option<Protocol>,
    endpoint: Option<String>,
    headers: Vec<(String, Redacted<String>)>,
    timeout: Option<Duration>,
    compression: Option<Compression>,
    insecure: Option<bool>,
    ca_certificate: Option<Pem>,
    client_identity: Option<(Pem, Pem)>,
    max_request_bytes: Option<usize>,
    max_in_flight: Option<usize>,
    retry_policy: Option<RetryPolicy>,
}

/// The precedence rule, in one place: a value set in code wins, then one
/// from the environment, then the default.
fn layered<T>(code: Option<T>, env: Option<T>, default: T) -> T {
    code.or(env).unwrap_or(default)
}

impl ExporterConfigBuilder {
    /// The transport. Wins over `OTEL_EXPORTER_OTLP_PROTOCOL` (and its
    /// per-signal variants); default [`Protocol::Grpc`]. It also picks the
    /// default endpoint ([`Protocol::default_endpoint`]).
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The collector's URL: `http://` or `https://`, with a host, maybe a
    /// port and a path, no query. The scheme decides TLS. gRPC uses it as
    /// given; for OTLP/HTTP it is a base URL, to which `/v1/<signal>` is
    /// appended (see [`ExporterConfig::export_url`]).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Adds a header sent with every request. The name is lowercased; the
    /// value is used as given (no percent-decoding). A later call with the
    /// same name replaces the value.
    ///
    /// Headers merge by name: one set here replaces the environment's header
    /// of the same name, and the environment's other headers are kept.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Redacted::new(value.into())));
        self
    }

    /// Adds headers, as [`with_header`](Self::with_header) does one by one.
    /// Takes a `HashMap<String, String>` as `opentelemetry-otlp`'s
    /// `with_headers` does, or any list of pairs.
    #[must_use]
    pub fn with_headers<K: Into<String>, V: Into<String>>(mut self, headers: impl IntoIterator<Item = (K, V)>) -> Self {
        for (name, value) in headers {
            self = self.with_header(name, value);
        }
        self
    }

    /// The timeout of one export attempt (connection, request and answer).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The request compression.
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The `insecure` flag; see [`ExporterConfig::insecure`] for why it
    /// changes nothing while the endpoint's scheme decides.
    #[must_use]
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = Some(insecure);
        self
    }

    /// A CA certificate (PEM) to check the server against instead of the
    /// system's roots.
    #[must_use]
    pub fn with_ca_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(Pem::File(path.into()));
        self
    }

    /// A client certificate and its private key (both PEM) for mutual TLS.
    /// They are one setting: set here, both replace the environment's.
    #[must_use]
    pub fn with_client_identity(mut self, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_identity = Some((Pem::File(certificate.into()), Pem::File(key.into())));
        self
    }

    /// The TLS settings: what `tls` sets (CA certificate, client identity,
    /// as files or PEM bytes) replaces the same setting made earlier or in
    /// the environment; what it leaves unset is kept.
    #[must_use]
    pub fn with_tls_config(mut self, tls: TlsConfig) -> Self {
        if let Some(ca) = tls.ca_certificate {
            self.ca_certificate = Some(ca);
        }
        if let Some(identity) = tls.client_identity {
            self.client_identity = Some(identity);
        }
        self
    }

    /// The largest encoded export request. Keep it at or below the
    /// collector's receive limit (4 MiB unless raised there).
    #[must_use]
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes);
        self
    }

    /// How many export requests may await their answer at once.
    #[must_use]
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = Some(requests);
        self
    }

    /// How failed requests are retried.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Builds from the settings made in code and the defaults only: no
    /// `OTEL_*` variable is read, not even `OTEL_EXPORTER_OTLP_HEADERS`, and
    /// no proxy variable (`HTTPS_PROXY`, ...): requests go straight to the
    /// collector.
    ///
    /// # Errors
    ///
    /// As [`build_with_env`](Self::build_with_env).
    pub fn build_without_env(self) -> Result<ExporterConfig, ExporterConfigError> {
        self.build_with_env(EnvSettings::default())
    }

    /// Builds with the precedence code > `env` > default, setting by setting.
    /// Headers merge by name (code wins for a name in both); the client
    /// certificate and key are one setting. Pure: no filesystem access (see
    /// [`ExporterConfig::validate`]).
    ///
    /// # Errors
    ///
    /// An [`ExporterConfigError`] with [`ValueOrigin::Code`] for a setting
    /// made in code that is invalid: an endpoint that is not an `http(s)` URL
    /// with a host, a header name or value that is not valid gRPC metadata,
    /// a zero timeout, request size or in-flight limit. And two errors
    /// about the environment: [`ExporterConfigErrorKind::UnsupportedProtocol`]
    /// when code sets no protocol and the environment names one this version
    /// does not speak (`http/json`), and
    /// [`ExporterConfigErrorKind::IncompleteClientIdentity`] when the
    /// environment gives only one of the client certificate and key.
    pub fn build_with_env(self, env: EnvSettings) -> Result<ExporterConfig, ExporterConfigError> {
        let defaults = ExporterConfig::default();

        let protocol = match (self.protocol, env.protocol) {
            (Some(code), _) => code,
            (None, Some(EnvProtocol::Supported(protocol))) => protocol,
            (None, Some(EnvProtocol::NotImplemented { variable, value })) => {
                return Err(ExporterConfigError::new(
                    ValueOrigin::Env(variable),
                    value,
                    ExporterConfigErrorKind::UnsupportedProtocol,
                ));
            }
            (None, None) => defaults.protocol,
        };

        let code_endpoint = self.endpoint.map(|raw| parse_endpoint(ValueOrigin::Code("endpoint"), &raw)).transpose()?;
        let code_headers = parse_code_headers(&self.headers)?;
        let timeout = positive("timeout", self.timeout, |t| t.is_zero(), |t| format!("{t:?}"))?;
        let max_request_bytes = positive("max_request_bytes", self.max_request_bytes, |&n| n == 0, usize::to_string)?;
        let max_in_flight = positive("max_in_flight", self.max_in_flight, |&n| n == 0, usize::to_string)?;

        let code_identity = self.client_identity.map(|(certificate, key)| {
            (
                ConfigPath::from_pem(certificate, ValueOrigin::Code("client_certificate")),
                ConfigPath::from_pem(key, ValueOrigin::Code("client_key")),
            )
        });
        let (client_certificate, client_key) = match code_identity {
            Some((certificate, key)) => (Some(certificate), Some(key)),
            None => match (env.client_certificate, env.client_key) {
                (Some(half), None) | (None, Some(half)) => {
                    return Err(half.error(ExporterConfigErrorKind::IncompleteClientIdentity));
                }
                pair => pair,
            },
        };

        // The endpoint and what OTLP/HTTP does with its path: code's and the
        // generic variable's are base URLs, the signal's own variable's is the
        // signal's whole URL, and the default is the protocol's port.
        let (endpoint, endpoint_scope) = match (code_endpoint, env.endpoint) {
            (Some(code), _) => (code, EndpointScope::Generic),
            (None, Some(env_endpoint)) => (env_endpoint, env.endpoint_scope.unwrap_or(EndpointScope::Generic)),
            (None, None) => (Uri::from_static(protocol.default_endpoint()), EndpointScope::Generic),
        };

        let config = ExporterConfig {
            protocol,
            endpoint,
            endpoint_scope,
            headers: env.headers.unwrap_or_default().overlaid_with(code_headers),
            timeout: layered(timeout, env.timeout, defaults.timeout),
            compression: layered(self.compression, env.compression, defaults.compression),
            insecure: layered(self.insecure, env.insecure, defaults.insecure),
            ca_certificate: self
                .ca_certificate
                .map(|p| ConfigPath::from_pem(p, ValueOrigin::Code("ca_certificate")))
                .or(env.ca_certificate),
            client_certificate,
            client_key,
            // Not read from the environment: code, then default.
            max_request_bytes: layered(max_request_bytes, None, defaults.max_request_bytes),
            max_in_flight: layered(max_in_flight, None, defaults.max_in_flight),
            retry_policy: layered(self.retry_policy, None, defaults.retry_policy),
            // Only OTLP/HTTP goes through a proxy (see "Proxies").
            proxy: match protocol {
                Protocol::HttpProtobuf => {
                    env.proxy.check()?;
                    env.proxy
                }
                Protocol::Grpc => ProxyEnv::default(),
            },
        };
        config.warn_about_unused_tls_settings();
        if let Some(port) = config.port_of_the_other_protocol() {
            tracing::warn!(
                protocol = config.protocol.as_str(),
                endpoint = %config.endpoint,
                "the endpoint's port {port} is the other OTLP protocol's default: OTLP/gRPC listens on 4317 and \
                 OTLP/HTTP on 4318 unless configured otherwise; check the endpoint and the protocol"
            );
        }
        Ok(config)
    }

    /// [`build_with_env`](Self::build_with_env) the process environment for
    /// `signal`, read by [`EnvSettings::from_env`].
    ///
    /// # Errors
    ///
    /// A bad environment variable (see [`EnvSettings::from_lookup`]), or as
    /// [`build_with_env`](Self::build_with_env).
    pub fn build_from_env(self, signal: Signal) -> Result<ExporterConfig, ExporterConfigError> {
        let env = EnvSettings::from_env(signal)?;
        self.build_with_env(env)
    }
}

impl ExporterConfig {
    /// The endpoint's scheme decides TLS. Settings that only matter for the
    /// other choice are not refused (the specification lets the scheme
    /// decide), but they are not silently dropped either: each is named in a
    /// warning.
    /// The endpoint's port when it is the default of the protocol not in use
    /// (4318 with gRPC, 4317 with OTLP/HTTP): most likely a protocol set
    /// without its endpoint, or the other way round. Not refused (a
    /// collector may listen anywhere), but worth a warning.
    fn port_of_the_other_protocol(&self) -> Option<u16> {
        let port = self.endpoint.port_u16()?;
        match (self.protocol, port) {
            (Protocol::Grpc, 4318) | (Protocol::HttpProtobuf, 4317) => Some(port),
            _ => None,
        }
    }

    fn warn_about_unused_tls_settings(&self) {
        let tls = self.uses_tls();
        let origin = |path: &Option<ConfigPath>| path.as_ref().map(ConfigPath::origin);
        if !tls {
            for origin in [origin(&self.ca_certificate), origin(&self.client_certificate)].into_iter().flatten() {
                tracing::warn!(
                    %origin,
                    endpoint = %self.endpoint,
                    "a TLS certificate is set but the endpoint is http://, so the connection is plaintext and it is not used"
                );
            }
        }
        if self.insecure && tls {
            tracing::warn!(
                endpoint = %self.endpoint,
                "insecure is true but the endpoint is https://: the scheme decides, and the connection uses TLS"
            );
        }
    }
}

/// A code setting that must be positive, checked.
fn positive<T>(
    setting: &'static str,
    value: Option<T>,
    is_zero: impl Fn(&T) -> bool,
    show: impl Fn(&T) -> String,
) -> Result<Option<T>, ExporterConfigError> {
    match value {
        Some(v) if is_zero(&v) => {
            Err(ExporterConfigError::new(ValueOrigin::Code(setting), show(&v), ExporterConfigErrorKind::Zero))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::error::Error as _;
    use std::io;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> EnvSettings {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).cloned()).unwrap()
    }

    /// An environment that sets every setting it can.
    fn full_env() -> EnvSettings {
        env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://env:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=env,x-env=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/env/ca.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/env/c.pem"),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env/c.key"),
        ])
    }

    /// A builder that sets every setting, each differently from `full_env`.
    fn full_code() -> ExporterConfigBuilder {
        ExporterConfig::builder()
            .with_endpoint("http://code:4317")
            .with_header("Authorization", "code")
            .with_header("x-code", "2")
            .with_timeout(Duration::from_secs(7))
            .with_compression(Compression::Zstd)
            .with_insecure(false)
            .with_ca_certificate("/code/ca.pem")
            .with_client_identity("/code/c.pem", "/code/c.key")
            .with_max_request_bytes(1 << 20)
            .with_max_in_flight(9)
            .with_retry_policy(RetryPolicy::disabled())
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = ExporterConfig::default();
        assert_eq!(c.endpoint(), "http://localhost:4317/");
        assert!(!c.uses_tls());
        assert!(c.headers().is_empty());
        assert_eq!(c.timeout(), Duration::from_secs(10));
        assert_eq!(c.compression(), Compression::None);
        assert!(!c.insecure());
        assert_eq!((c.ca_certificate(), c.client_certificate(), c.client_key()), (None, None, None));
        assert_eq!(c.max_request_bytes(), 4 * 1024 * 1024);
        assert_eq!(c.max_in_flight(), 4);
        assert_eq!(c.retry_policy(), &RetryPolicy::default());
        assert_eq!(c.validate().ok(), Some(()), "nothing to check");
    }

    #[test]
    fn an_empty_builder_with_an_empty_environment_gives_the_defaults() {
        let built = ExporterConfig::builder().build_without_env().unwrap();
        assert_eq!(format!("{built:?}"), format!("{:?}", ExporterConfig::default()));
    }

    #[test]
    fn the_environment_fills_what_code_leaves_alone() {
        let c = ExporterConfig::builder().build_with_env(full_env()).unwrap();
        assert_eq!(c.endpoint(), "https://env:4317/");
        assert!(c.uses_tls());
        assert_eq!(c.headers().value("authorization"), Some("env"));
        assert_eq!(c.timeout(), Duration::from_secs(2));
        assert_eq!(c.compression(), Compression::Gzip);
        assert!(c.insecure());
        assert_eq!(c.ca_certificate(), Some(Path::new("/env/ca.pem")));
        assert_eq!(c.client_certificate(), Some(Path::new("/env/c.pem")));
        assert_eq!(c.client_key(), Some(Path::new("/env/c.key")));
    }

    #[test]
    fn code_wins_over_the_environment_for_every_setting() {
        let c = full_code().build_with_env(full_env()).unwrap();
        assert_eq!(c.endpoint(), "http://code:4317/");
        assert!(!c.uses_tls());
        assert_eq!(c.timeout(), Duration::from_secs(7));
        assert_eq!(c.compression(), Compression::Zstd);
        assert!(!c.insecure(), "an explicit false beats the environment's true");
        assert_eq!(c.ca_certificate(), Some(Path::new("/code/ca.pem")));
        assert_eq!(c.client_certificate(), Some(Path::new("/code/c.pem")));
        assert_eq!(c.client_key(), Some(Path::new("/code/c.key")));
        assert_eq!(c.max_request_bytes(), 1 << 20);
        assert_eq!(c.max_in_flight(), 9);
        assert_eq!(c.retry_policy(), &RetryPolicy::disabled());
    }

    #[test]
    fn headers_merge_by_name_with_code_winning() {
        let c = full_code().build_with_env(full_env()).unwrap();
        let h = c.headers();
        assert_eq!(h.names().collect::<Vec<_>>(), ["authorization", "x-env", "x-code"]);
        assert_eq!(h.value("authorization"), Some("code"));
        assert_eq!(h.value("x-env"), Some("1"));
        assert_eq!(h.value("x-code"), Some("2"));
    }

    #[test]
    fn layered_picks_code_then_env_then_default() {
        assert_eq!(layered(Some(1), Some(2), 3), 1);
        assert_eq!(layered(None, Some(2), 3), 2);
        assert_eq!(layered(None, None, 3), 3);
    }

    #[test]
    fn the_client_identity_is_taken_whole() {
        // Code gives a pair, the environment a pair: code's pair, not a mix.
        let half_env = env(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env/c.key")]);
        let c = ExporterConfig::builder()
            .with_client_identity("/code/c.pem", "/code/c.key")
            .build_with_env(half_env)
            .unwrap();
        assert_eq!(c.client_key(), Some(Path::new("/code/c.key")));

        // The environment alone gives half a pair: an error naming it.
        let half_env = env(&[("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "/env/c.pem")]);
        let err = ExporterConfig::builder().build_with_env(half_env).unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::IncompleteClientIdentity);
        assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE"));
        assert_eq!(err.value(), Some("/env/c.pem"));
    }

    #[test]
    fn invalid_code_settings_are_named() {
        let err = ExporterConfig::builder().with_endpoint("localhost:4317").build_without_env().unwrap_err();
        assert_eq!(
            (err.origin(), err.kind()),
            (ValueOrigin::Code("endpoint"), ExporterConfigErrorKind::UnsupportedScheme)
        );
        assert_eq!(err.value(), Some("localhost:4317"));

        let err = ExporterConfig::builder().with_timeout(Duration::ZERO).build_without_env().unwrap_err();
        assert_eq!((err.origin(), err.kind()), (ValueOrigin::Code("timeout"), ExporterConfigErrorKind::Zero));
        assert_eq!(err.to_string(), r#"invalid setting `timeout` = "0ns": must be greater than zero"#);

        let err = ExporterConfig::builder().with_max_request_bytes(0).build_without_env().unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Code("max_request_bytes"));
        let err = ExporterConfig::builder().with_max_in_flight(0).build_without_env().unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Code("max_in_flight"));

        let err = ExporterConfig::builder().with_header("bad name", "v").build_without_env().unwrap_err();
        assert_eq!(
            (err.origin(), err.kind()),
            (ValueOrigin::Code("headers"), ExporterConfigErrorKind::InvalidHeaderName)
        );
    }

    #[test]
    fn a_code_endpoint_is_checked_even_when_the_environment_has_one() {
        let err = ExporterConfig::builder().with_endpoint("ftp://x").build_with_env(full_env()).unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Code("endpoint"));
    }

    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        let secret = "s3cr3t";
        let builder = ExporterConfig::builder().with_header("authorization", "Bearer s3cr3t");
        assert!(!format!("{builder:?}").contains(secret), "{builder:?}");
        let config = builder.build_without_env().unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("authorization") && !debug.contains(secret), "{debug}");
        assert!(!format!("{:#?}", config).contains(secret));

        let from_env = ExporterConfig::builder()
            .build_with_env(env(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t")]))
            .unwrap();
        assert!(!format!("{from_env:?}").contains(secret));

        // A bad header line with the secret in it, from the environment and from code.
        let vars = HashMap::from([("OTEL_EXPORTER_OTLP_HEADERS", "authorization: Bearer s3cr3t")]);
        let err = EnvSettings::from_lookup(Signal::Traces, |n| vars.get(n).map(|v| v.to_string())).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret), "{err}");
        let err = ExporterConfig::builder()
            .with_header("authorization", "Bearer s3cr3t\r\n")
            .build_without_env()
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret), "{err}");
        let err = ExporterConfig::builder().with_header("Bearer s3cr3t", "").build_without_env().unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret), "{err}");
    }

    /// A file in a fresh directory of its own under the system's temporary
    /// directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("otlp-sink-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn validate_accepts_readable_files() {
        let dir = TempDir::new("validate-ok");
        let [ca, cert, key] = ["ca.pem", "c.pem", "c.key"].map(|name| {
            let path = dir.0.join(name);
            std::fs::write(&path, "-----BEGIN CERTIFICATE-----\n").unwrap();
            path
        });
        let config = ExporterConfig::builder()
            .with_endpoint("https://collector:4317")
            .with_ca_certificate(ca)
            .with_client_identity(cert, key)
            .build_without_env()
            .unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn validate_names_the_variable_and_path_of_a_missing_file() {
        let dir = TempDir::new("validate-missing");
        let missing = dir.0.join("nope.pem");
        let missing_str = missing.to_str().unwrap().to_owned();
        let config = ExporterConfig::builder()
            .build_with_env(env(&[("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", &missing_str)]))
            .unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.kind(), ExporterConfigErrorKind::UnreadableFile);
        assert_eq!(err.variable(), Some("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE"));
        assert_eq!(err.value(), Some(missing_str.as_str()));
        let io = err.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);

        let config = ExporterConfig::builder().with_ca_certificate(&dir.0).build_without_env().unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.origin(), ValueOrigin::Code("ca_certificate"));
        let io = err.source().unwrap().downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::IsADirectory);
    }

    proptest::proptest! {
        /// Whatever code and the environment say, building gives a config or
        /// an error naming where the bad value came from, never a panic; and
        /// a header value set in code never shows in that error.
        #[test]
        fn arbitrary_settings_from_code_and_environment_build_or_fail_cleanly(
            endpoint in proptest::option::of(proptest::prelude::any::<String>()),
            name in "[ -~]{0,12}|\\PC{0,8}",
            value in proptest::prelude::any::<String>(),
            env_headers in proptest::option::of(proptest::prelude::any::<String>()),
            env_timeout in proptest::option::of("[0-9]{0,25}|\\PC{0,6}"),
            timeout_ms in 0u64..5,
        ) {
            let secret = format!("{value}-not-shown");
            let mut builder = ExporterConfig::builder()
                .with_header(name.clone(), secret.clone())
                .with_timeout(Duration::from_millis(timeout_ms));
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint.clone());
            }
            let vars: HashMap<&str, String> = [
                ("OTEL_EXPORTER_OTLP_HEADERS", env_headers),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", env_timeout),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            match EnvSettings::from_lookup(Signal::Metrics, |n| vars.get(n).cloned()) {
                Err(err) => proptest::prop_assert!(err.variable().is_some_and(|v| vars.contains_key(v))),
                Ok(env) => match builder.build_with_env(env) {
                    Ok(config) => {
                        proptest::prop_assert!(timeout_ms > 0 && !config.timeout().is_zero());
                        let shown = format!("{config:?}");
                        proptest::prop_assert!(!shown.contains(&secret));
                    }
                    Err(err) => {
                        proptest::prop_assert!(matches!(err.origin(), ValueOrigin::Code(_)));
                        let shown = format!("{err} {err:?}");
                        proptest::prop_assert!(!shown.contains(&secret));
                    }
                },
            }
        }
    }

    #[test]
    fn building_does_not_touch_the_filesystem() {
        let config = ExporterConfig::builder()
            .with_ca_certificate("/definitely/not/here.pem")
            .with_client_identity("/not/here.pem", "/not/here.key")
            .build_without_env();
        assert!(config.is_ok(), "missing files are for validate() to report");
    }

    fn try_env(vars: &[(&str, &str)]) -> Result<EnvSettings, ExporterConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).cloned())
    }

    #[test]
    fn http_json_from_the_environment_is_refused_at_build_naming_variable_value_and_what_is_supported() {
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "HTTP/JSON"),
        ] {
            let err = ExporterConfig::builder().build_with_env(env(&[(variable, value)])).unwrap_err();
            assert_eq!(err.kind(), ExporterConfigErrorKind::UnsupportedProtocol, "{variable}={value}");
            assert_eq!((err.variable(), err.value()), (Some(variable), Some(value)));
            let text = err.to_string();
            assert!(text.starts_with(&format!("invalid {variable} = {value:?}: ")), "{text}");
            assert!(text.contains("supports grpc and http/protobuf"), "{text}");
        }
        let err =
            ExporterConfig::builder().build_with_env(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid OTEL_EXPORTER_OTLP_PROTOCOL = \"http/json\": this exporter supports grpc and http/protobuf, \
             not http/json (OTLP/HTTP with JSON bodies); set it to http/protobuf (the same port, 4318 by default, \
             protobuf bodies) or grpc, or unset it (grpc)"
        );
        assert_eq!(err.signal(), None, "a generic variable belongs to no one signal");
        let err = ExporterConfig::builder()
            .build_with_env(env(&[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json")]))
            .unwrap_err();
        assert_eq!(err.signal(), Some(Signal::Metrics));
    }

    #[test]
    fn the_protocol_set_in_code_wins_over_the_environment() {
        let http = || env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        let c = ExporterConfig::builder().with_protocol(Protocol::Grpc).build_with_env(http()).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        let c = ExporterConfig::builder().build_with_env(http()).unwrap();
        assert_eq!(c.protocol(), Protocol::HttpProtobuf, "http/protobuf from the environment is honoured");
        let json = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        let c = ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf).build_with_env(json).unwrap();
        assert_eq!(c.protocol(), Protocol::HttpProtobuf, "code wins, so http/json is not refused");
        // grpc in the environment, generic or per signal, is honoured; the per-signal one wins.
        let c = ExporterConfig::builder().build_with_env(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        let mixed =
            env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")]);
        assert_eq!(ExporterConfig::builder().build_with_env(mixed).unwrap().protocol(), Protocol::Grpc);
        let mixed =
            env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")]);
        assert_eq!(ExporterConfig::builder().build_with_env(mixed).unwrap().protocol(), Protocol::HttpProtobuf);
        assert_eq!(ExporterConfig::default().protocol(), Protocol::Grpc);
        assert_eq!((Protocol::Grpc.as_str(), Protocol::HttpProtobuf.as_str()), ("grpc", "http/protobuf"));
    }

    #[test]
    fn the_default_endpoint_is_the_protocols_port() {
        let http = ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf).build_without_env().unwrap();
        assert_eq!(http.endpoint(), "http://localhost:4318/");
        assert_eq!(http.export_url(Signal::Metrics), "http://localhost:4318/v1/metrics");
        let grpc = ExporterConfig::builder().build_without_env().unwrap();
        assert_eq!(grpc.endpoint(), "http://localhost:4317/");
        assert_eq!(grpc.export_url(Signal::Metrics), "http://localhost:4317/", "gRPC: as given");
        // The environment's protocol picks the default port too.
        let from_env =
            ExporterConfig::builder().build_with_env(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])).unwrap();
        assert_eq!(from_env.export_url(Signal::Metrics), "http://localhost:4318/v1/metrics");
    }

    /// `vars` read for `signal`, over OTLP/HTTP, and the URL it sends that signal to.
    fn http_url(signal: Signal, code: Option<&str>, vars: &[(&str, &str)]) -> String {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = EnvSettings::from_lookup(signal, |name| vars.get(name).cloned()).unwrap();
        let mut builder = ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf);
        if let Some(code) = code {
            builder = builder.with_endpoint(code);
        }
        builder.build_with_env(env).unwrap().export_url(signal).to_string()
    }

    #[test]
    fn over_http_the_generic_endpoint_is_a_base_url_and_the_signals_own_is_used_as_given() {
        let generic = "OTEL_EXPORTER_OTLP_ENDPOINT";
        // The generic variable: /v1/<signal> appended, any path kept, no double slash.
        assert_eq!(http_url(Signal::Metrics, None, &[(generic, "http://c:4318")]), "http://c:4318/v1/metrics");
        assert_eq!(http_url(Signal::Traces, None, &[(generic, "http://c:4318/")]), "http://c:4318/v1/traces");
        assert_eq!(http_url(Signal::Logs, None, &[(generic, "https://c/otlp")]), "https://c/otlp/v1/logs");
        assert_eq!(http_url(Signal::Logs, None, &[(generic, "https://c/otlp/")]), "https://c/otlp/v1/logs");
        // The signal's own variable: used exactly as given, path, trailing slash and all.
        let own = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example/custom/")];
        assert_eq!(http_url(Signal::Traces, None, &own), "https://t.example/custom/");
        let own = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example:4318")];
        assert_eq!(http_url(Signal::Traces, None, &own), "https://t.example:4318/", "no path appended");
        // The signal's own wins over the generic one; another signal's is not read.
        let both = [(generic, "http://base:4318"), ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/m")];
        assert_eq!(http_url(Signal::Metrics, None, &both), "http://m:9/m");
        assert_eq!(http_url(Signal::Logs, None, &both), "http://base:4318/v1/logs");
        // Code's endpoint is a base URL, and wins over both variables.
        assert_eq!(http_url(Signal::Metrics, Some("http://code:4318/p/"), &both), "http://code:4318/p/v1/metrics");
        assert_eq!(http_url(Signal::Logs, Some("http://code:4318"), &[]), "http://code:4318/v1/logs");
    }

    #[test]
    fn the_other_protocols_default_port_is_noticed() {
        let port = |protocol, endpoint: &str| {
            let config = ExporterConfig::builder().with_protocol(protocol).with_endpoint(endpoint);
            config.build_without_env().unwrap().port_of_the_other_protocol()
        };
        assert_eq!(port(Protocol::HttpProtobuf, "http://c:4317"), Some(4317));
        assert_eq!(port(Protocol::Grpc, "https://c:4318/"), Some(4318));
        assert_eq!(port(Protocol::HttpProtobuf, "http://c:4318"), None);
        assert_eq!(port(Protocol::Grpc, "http://c:4317"), None);
        assert_eq!(port(Protocol::HttpProtobuf, "https://c/otlp"), None, "no port: the scheme's");
        assert_eq!(port(Protocol::Grpc, "http://c:9000"), None);
    }

    #[test]
    fn over_grpc_every_endpoint_is_used_as_given() {
        let grpc = |vars: &[(&str, &str)]| {
            let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let env = EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).cloned()).unwrap();
            ExporterConfig::builder().build_with_env(env).unwrap().export_url(Signal::Metrics).to_string()
        };
        assert_eq!(grpc(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317/prefix")]), "http://c:4317/prefix");
        assert_eq!(grpc(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317")]), "http://m:4317/");
    }

    #[test]
    fn an_unknown_protocol_is_refused_when_read_even_if_code_sets_one() {
        for value in ["grpcs", "http", "http/proto", "udp"] {
            let err = try_env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", value)]).unwrap_err();
            assert_eq!(err.kind(), ExporterConfigErrorKind::UnknownProtocol);
            assert_eq!((err.variable(), err.value()), (Some("OTEL_EXPORTER_OTLP_PROTOCOL"), Some(value)));
        }
        let err = try_env(&[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "h2")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = \"h2\": the protocol must be grpc, http/protobuf or \
             http/json, and this exporter supports grpc and http/protobuf"
        );
    }

    #[test]
    fn with_headers_adds_pairs_and_takes_a_hash_map() {
        let map: HashMap<String, String> = HashMap::from([("x-a".to_string(), "1".to_string())]);
        let c = ExporterConfig::builder()
            .with_header("x-a", "0")
            .with_headers(map)
            .with_headers([("X-B", "2"), ("x-c", "3")])
            .build_with_env(env(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-b=env,x-env=e")]))
            .unwrap();
        let h = c.headers();
        assert_eq!(h.names().collect::<Vec<_>>(), ["x-b", "x-env", "x-a", "x-c"]);
        assert_eq!((h.value("x-a"), h.value("x-b"), h.value("x-env")), (Some("1"), Some("2"), Some("e")));
    }

    #[test]
    fn a_tls_config_sets_what_it_names_and_leaves_the_rest_to_the_environment() {
        let tls_env = || {
            env(&[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/env/ca.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/env/c.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env/c.key"),
            ])
        };
        let c = ExporterConfig::builder()
            .with_endpoint("https://collector:4317")
            .with_tls_config(TlsConfig::new().with_ca_certificate_file("/code/ca.pem"))
            .build_with_env(tls_env())
            .unwrap();
        assert_eq!(c.ca_certificate(), Some(Path::new("/code/ca.pem")));
        assert_eq!(c.client_certificate(), Some(Path::new("/env/c.pem")), "not set in code: the environment's");
        assert_eq!(c.ca_certificate.as_ref().unwrap().origin(), ValueOrigin::Code("ca_certificate"));

        let c = ExporterConfig::builder()
            .with_tls_config(TlsConfig::new().with_client_identity_files("/code/c.pem", "/code/c.key"))
            .build_with_env(tls_env())
            .unwrap();
        assert_eq!(c.ca_certificate(), Some(Path::new("/env/ca.pem")));
        assert_eq!(
            (c.client_certificate(), c.client_key()),
            (Some(Path::new("/code/c.pem")), Some(Path::new("/code/c.key")))
        );

        // A later TLS config replaces only what it sets.
        let c = ExporterConfig::builder()
            .with_tls_config(TlsConfig::new().with_ca_certificate_file("/a.pem").with_client_identity_files("/c", "/k"))
            .with_tls_config(TlsConfig::new().with_ca_certificate_file("/b.pem"))
            .build_without_env()
            .unwrap();
        assert_eq!((c.ca_certificate(), c.client_key()), (Some(Path::new("/b.pem")), Some(Path::new("/k"))));
    }

    #[tokio::test]
    async fn pem_given_in_code_is_used_as_is_never_shown_and_needs_no_file() {
        let key = b"-----BEGIN PRIVATE KEY-----\ns3cr3t\n-----END PRIVATE KEY-----\n".to_vec();
        let tls = TlsConfig::new()
            .with_ca_certificate_pem(b"ca pem".to_vec())
            .with_client_identity_pem(b"cert pem".to_vec(), key.clone());
        assert!(!format!("{tls:?}").contains("s3cr3t"), "{tls:?}");
        let c = ExporterConfig::builder()
            .with_endpoint("https://collector:4317")
            .with_tls_config(tls)
            .build_with_env(env(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/env/c.key")]))
            .unwrap();
        assert!(c.has_ca_certificate() && c.has_client_identity());
        assert_eq!((c.ca_certificate(), c.client_certificate(), c.client_key()), (None, None, None), "no files");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(c.validate().ok(), Some(()), "nothing to read from disk");
        assert_eq!(c.ca_certificate.as_ref().unwrap().read().await.unwrap(), b"ca pem");
        assert_eq!(c.client_key.as_ref().unwrap().read().await.unwrap(), key);
    }

    #[test]
    fn a_config_error_belongs_to_a_signal_only_when_its_variable_does() {
        let signal = |vars: &[(&str, &str)]| try_env(vars).unwrap_err().signal();
        assert_eq!(signal(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "x")]), None);
        assert_eq!(signal(&[("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "x")]), Some(Signal::Metrics));
        assert_eq!(signal(&[("OTEL_METRIC_EXPORT_INTERVAL", "x")]), Some(Signal::Metrics));
        assert_eq!(signal(&[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "x")]), Some(Signal::Metrics));
        let code = ExporterConfig::builder().with_timeout(Duration::ZERO).build_without_env().unwrap_err();
        assert_eq!(code.signal(), None);
    }
}
