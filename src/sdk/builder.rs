//! [`OtlpExporterBuilder`]: the settings of an [`OtlpExporter`], and its
//! build: the export runtime, the three clients, the three sinks.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::drains::{LogsAdapterDrain, ResourceSlot, SpansAdapterDrain};
use super::error::BuildError;
use super::exporter::OtlpExporter;
use super::pipe::{inner_deadline, PipeSettings, SignalPipe};
use super::runtime::ExportRuntime;
use super::shared::{ExporterState, Settings, SIGNALS};
use crate::deliver::SpoolOpenError;
use crate::otlp::{Logs, Metrics, Traces};
use crate::{
    config::{
        Compression, EnvSettings, ExporterConfigBuilder, FlushLevel, FullPolicy, RetryPolicy, SpoolConfig,
        TemporalityPreference, TlsConfig,
    },
    sink::QueueMemory,
    ExporterConfig, Protocol, Signal, SinkConfig,
};

/// The environment variable naming a spool directory for every signal
/// (one subdirectory each): this crate's own, not an `OTEL_*` one.
pub(crate) const SPOOL_DIR_VAR: &str = "OTLP_SINK_SPOOL_DIR";

/// Settings of an [`OtlpExporter`], with the precedence *code >
/// environment > default*, setting by setting: what code leaves alone comes
/// from the environment, else from the default listed on each method.
///
/// The exporter settings ([`with_endpoint`](Self::with_endpoint),
/// [`with_protocol`](Self::with_protocol), [`with_headers`](Self::with_headers),
/// [`with_timeout`](Self::with_timeout), [`with_compression`](Self::with_compression),
/// [`with_tls_config`](Self::with_tls_config), and the request size, window
/// and retries) apply to all three signals, each over its own environment:
/// the per-signal variable (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`), then the
/// generic one (`OTEL_EXPORTER_OTLP_TIMEOUT`). Headers merge by name: a
/// header set in code replaces the environment's header of that name, and
/// the environment's other headers are still sent. The method names are
/// those of `opentelemetry-otlp`'s builders, so code written for it keeps
/// reading the same.
///
/// Three ways to build, each named for the environment it reads:
///
/// - [`build`](Self::build): the process environment;
/// - [`build_with_lookup`](Self::build_with_lookup): an environment read
///   through a function (tests, configuration kept elsewhere);
/// - [`build_without_env`](Self::build_without_env): none: code and defaults
///   only, every `OTEL_*` variable ignored.
///
/// ```
/// use std::time::Duration;
/// use otlp_sink::{config::Compression, OtlpExporter};
///
/// // The environment, as a deployment would set it (`build()` reads the real one).
/// let env = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://from-env:4317".to_string()),
///     "OTEL_EXPORTER_OTLP_HEADERS" => Some("authorization=Bearer%20t0ken".to_string()),
///     _ => None,
/// };
/// let builder = OtlpExporter::builder()
///     .with_endpoint("http://collector.example:4317") // code wins over the environment...
///     .with_timeout(Duration::from_secs(3))
///     .with_compression(Compression::Gzip);
/// let traces = builder.resolve_config(otlp_sink::Signal::Traces, env)?;
/// assert_eq!(traces.endpoint(), "http://collector.example:4317/");
/// assert!(traces.headers().contains("authorization")); // ...which still supplies the rest
///
/// let exporter = builder.build_with_lookup(env)?;
/// # Ok::<(), otlp_sink::sdk::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OtlpExporterBuilder {
    /// Exporter settings made in code, layered over each signal's environment.
    exporter: ExporterConfigBuilder,
    sinks: [Option<SinkConfig>; 3],
    temporality: Option<TemporalityPreference>,
    export_interval: Option<Duration>,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
    export_threads: usize,
    /// Spool directories set in code, per signal (as given: the
    /// subdirectory of `with_spool_dir` is already joined).
    spool_dirs: [Option<PathBuf>; 3],
    /// The spool's bounds, for every signal (its directory unused).
    spool_bounds: SpoolConfig,
    flush_level: FlushLevel,
    /// The queue memory of the signals whose sink settings code left alone.
    default_queue_memory: QueueMemory,
}

impl Default for OtlpExporterBuilder {
    fn default() -> Self {
        Self {
            exporter: ExporterConfigBuilder::default(),
            sinks: [None, None, None],
            temporality: None,
            export_interval: None,
            flush_timeout: OtlpExporter::DEFAULT_FLUSH_TIMEOUT,
            shutdown_timeout: OtlpExporter::DEFAULT_SHUTDOWN_TIMEOUT,
            export_threads: Self::DEFAULT_EXPORT_THREADS,
            spool_dirs: [None, None, None],
            spool_bounds: SpoolConfig::new(PathBuf::new()),
            flush_level: FlushLevel::Delivered,
            default_queue_memory: QueueMemory::Lazy,
        }
    }
}

// Here rather than beside the type, so that the facade does not import its
// builder: the dependency points one way, builder to exporter.
impl OtlpExporter {
    /// A builder with nothing set.
    pub fn builder() -> OtlpExporterBuilder {
        OtlpExporterBuilder::default()
    }
}

impl OtlpExporterBuilder {
    /// The default queue capacity of the metrics sink, in data points: large
    /// enough that a collection fits.
    pub const DEFAULT_METRICS_QUEUE_CAPACITY: usize = 65_536;

    /// The default queue capacity of the span and log record sinks, in
    /// messages, split between their
    /// [`DEFAULT_QUEUE_SHARDS`](Self::DEFAULT_QUEUE_SHARDS) shards: 2 048 a
    /// shard, so that a producer thread alone has room for as many as the
    /// SDK's batch processors hold in all (their default `max_queue_size`).
    /// With the default [`QueueMemory::Lazy`] a queue at rest holds almost
    /// none of it; the most it can hold is about 5.9 MB of spans or 8.8 MB of
    /// log records (README, "Benchmarks", W6).
    pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;

    /// Into how many shards the span and log record queues are cut by
    /// default ([`SinkConfig::with_queue_shards`]): spans and log records
    /// are ended on many threads, and with one queue their pushes take turns
    /// on its tail. Measured with 8 threads on 2 cores (`cargo bench --bench
    /// on_end_ab`, README "Benchmarks", W3), the cost of a push falls with
    /// every shard up to one shard per producer thread; a thread pushes into
    /// shard `i % 8`, `i` its order among the threads that pushed. The
    /// metrics sink has one shard: the SDK's collection pushes from one
    /// thread.
    pub const DEFAULT_QUEUE_SHARDS: usize = 8;

    /// The default batch size of the metrics sink, in data points: a bound
    /// only, since its batches are cut by bytes first
    /// ([`DEFAULT_METRICS_BATCH_BYTES`](Self::DEFAULT_METRICS_BATCH_BYTES)).
    pub const DEFAULT_METRICS_BATCH_SIZE: usize = 65_536;

    /// The default batch size of the metrics sink in bytes of encoded data
    /// points: requests of about 1 MiB whatever the points weigh, so that a
    /// large collection leaves in several requests that overlap with its
    /// conversion, and none passes the collector's limit. Capped by the
    /// [request size limit](ExporterConfig::max_request_bytes) when that is
    /// lower. Measured against rotel (`scripts/bench-request-sizes.sh`,
    /// README "Benchmarks"): batches of 0.5 to 3 MiB, or of 4 096 or 8 192
    /// points, were level within the noise on throughput, rotel's CPU and
    /// this crate's CPU per point.
    pub const DEFAULT_METRICS_BATCH_BYTES: usize = 1024 * 1024;

    /// The default number of [export runtime](Self::with_export_threads) threads.
    pub const DEFAULT_EXPORT_THREADS: usize = 1;

    /// The collector's URL: `http://` or `https://` (which decides TLS), a
    /// host, maybe a port and a path. Wins over `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// and its per-signal variants; default
    /// [`ExporterConfig::DEFAULT_ENDPOINT`] (`http://localhost:4317`), or
    /// [`ExporterConfig::DEFAULT_HTTP_ENDPOINT`] (`http://localhost:4318`)
    /// over OTLP/HTTP. Every other setting still comes from the environment
    /// where code leaves it.
    ///
    /// gRPC uses it as given. Over OTLP/HTTP it is a base URL shared by the
    /// three signals: each sends to it with `/v1/metrics`, `/v1/traces` or
    /// `/v1/logs` appended (keeping its path). `opentelemetry-otlp`'s
    /// per-signal builders take the signal's whole URL instead; here, to
    /// give one signal a URL of its own, set
    /// `OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT`, used as given (see
    /// [`ExporterConfig::export_url`]).
    ///
    /// ```
    /// use otlp_sink::{OtlpExporter, Signal};
    ///
    /// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "2500".to_string());
    /// let builder = OtlpExporter::builder().with_endpoint("https://collector.example:4317");
    /// let config = builder.resolve_config(Signal::Metrics, env)?;
    /// assert!(config.uses_tls());
    /// assert_eq!(config.timeout().as_millis(), 2500); // from the environment
    /// # Ok::<(), otlp_sink::sdk::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.exporter = self.exporter.with_endpoint(endpoint);
        self
    }

    /// The transport of all three signals: [`Protocol::Grpc`] or
    /// [`Protocol::HttpProtobuf`]. Wins over `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// and its per-signal variants (which, left to themselves, may give each
    /// signal its own); default [`Protocol::Grpc`]. It also picks the default
    /// endpoint: `http://localhost:4317`, or `http://localhost:4318` for
    /// OTLP/HTTP. Setting it in code makes a build ignore an environment that
    /// asks for `http/json` (which it otherwise refuses).
    ///
    /// ```
    /// use otlp_sink::{OtlpExporter, Protocol, Signal};
    ///
    /// let env = |name: &str| match name {
    ///     "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_string()),
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector.example:4318".to_string()),
    ///     _ => None,
    /// };
    /// let from_env = OtlpExporter::builder().resolve_config(Signal::Traces, env)?;
    /// assert_eq!(from_env.protocol(), Protocol::HttpProtobuf);
    /// assert_eq!(from_env.export_url(Signal::Traces), "http://collector.example:4318/v1/traces");
    ///
    /// let json = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_string());
    /// assert!(OtlpExporter::builder().build_with_lookup(json).is_err());
    /// let exporter = OtlpExporter::builder().with_protocol(Protocol::HttpProtobuf).build_with_lookup(json)?;
    /// # Ok::<(), otlp_sink::sdk::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.exporter = self.exporter.with_protocol(protocol);
        self
    }

    /// Adds a header (gRPC metadata, or an HTTP header) sent with every request. The name is
    /// lowercased; the value is used as given. A later call with the same
    /// name replaces the value; one set here replaces the environment's
    /// header of the same name (`OTEL_EXPORTER_OTLP_HEADERS`), and the
    /// environment's other headers are kept.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.exporter = self.exporter.with_header(name, value);
        self
    }

    /// Adds headers, as [`with_header`](Self::with_header) does one by one:
    /// a `HashMap<String, String>` (what `opentelemetry-otlp`'s
    /// `with_headers` takes) or any list of pairs.
    ///
    /// ```
    /// use otlp_sink::{OtlpExporter, Signal};
    ///
    /// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_HEADERS").then(|| "x-tenant=env,x-region=eu".to_string());
    /// let builder = OtlpExporter::builder().with_headers([("x-tenant", "code"), ("x-team", "checkout")]);
    /// let config = builder.resolve_config(Signal::Logs, env)?;
    /// assert_eq!(config.headers().names().collect::<Vec<_>>(), ["x-tenant", "x-region", "x-team"]);
    /// # Ok::<(), otlp_sink::sdk::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_headers<K: Into<String>, V: Into<String>>(mut self, headers: impl IntoIterator<Item = (K, V)>) -> Self {
        self.exporter = self.exporter.with_headers(headers);
        self
    }

    /// The timeout of one export attempt (connection, request and answer);
    /// a failed attempt is retried within the [retry budget](Self::with_retry_policy).
    /// Wins over `OTEL_EXPORTER_OTLP_TIMEOUT` and its per-signal variants;
    /// default [`ExporterConfig::DEFAULT_TIMEOUT`] (10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.exporter = self.exporter.with_timeout(timeout);
        self
    }

    /// The request compression. Wins over `OTEL_EXPORTER_OTLP_COMPRESSION`
    /// and its per-signal variants; default [`Compression::None`].
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.exporter = self.exporter.with_compression(compression);
        self
    }

    /// TLS settings: a CA certificate, a client certificate and key, as
    /// files or PEM bytes. What `tls` sets wins over
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE`, `_CLIENT_KEY`
    /// (and their per-signal variants); what it leaves unset still comes from
    /// them. Used with an `https://` endpoint; with `http://` they are not
    /// used, and the build logs a warning naming them.
    ///
    /// ```
    /// use otlp_sink::{config::TlsConfig, OtlpExporter, Signal};
    ///
    /// let ca_pem = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
    /// let builder = OtlpExporter::builder()
    ///     .with_endpoint("https://collector.example:4317")
    ///     .with_tls_config(TlsConfig::new().with_ca_certificate_pem(ca_pem));
    /// let config = builder.resolve_config(Signal::Traces, |_| None)?;
    /// assert!(config.uses_tls() && config.has_ca_certificate());
    /// # Ok::<(), otlp_sink::sdk::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_tls_config(mut self, tls: TlsConfig) -> Self {
        self.exporter = self.exporter.with_tls_config(tls);
        self
    }

    /// The largest encoded export request; larger batches are split. Keep
    /// it at or below the collector's receive limit. No variable; default
    /// [`ExporterConfig::DEFAULT_MAX_REQUEST_BYTES`] (4 MiB).
    #[must_use]
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.exporter = self.exporter.with_max_request_bytes(bytes);
        self
    }

    /// How many export requests per signal may await their answer at once.
    /// No variable; default [`ExporterConfig::DEFAULT_MAX_IN_FLIGHT`] (4).
    #[must_use]
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.exporter = self.exporter.with_max_in_flight(requests);
        self
    }

    /// How failed requests are retried, and for how long. No variable;
    /// default [`RetryPolicy::default`] (25 s budget).
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.exporter = self.exporter.with_retry_policy(policy);
        self
    }

    /// The queue and batching of every signal's sink. Defaults: for spans
    /// and log records, [`SinkConfig::default`] with a queue of
    /// [`DEFAULT_QUEUE_CAPACITY`](Self::DEFAULT_QUEUE_CAPACITY) cut into
    /// [`DEFAULT_QUEUE_SHARDS`](Self::DEFAULT_QUEUE_SHARDS) shards; for metric points
    /// a queue of [`DEFAULT_METRICS_QUEUE_CAPACITY`](Self::DEFAULT_METRICS_QUEUE_CAPACITY),
    /// so that a collection fits, and batches of
    /// [`DEFAULT_METRICS_BATCH_BYTES`](Self::DEFAULT_METRICS_BATCH_BYTES)
    /// (at most the request size limit) or
    /// [`DEFAULT_METRICS_BATCH_SIZE`](Self::DEFAULT_METRICS_BATCH_SIZE)
    /// points, whichever comes first. A configuration set here replaces
    /// those: a metrics sink batches by bytes only if it says so
    /// ([`SinkConfig::with_batch_bytes`]), and a queue is cut into shards
    /// only if it says so ([`SinkConfig::with_queue_shards`]).
    #[must_use]
    pub fn with_sink_config(mut self, config: SinkConfig) -> Self {
        self.sinks = [Some(config.clone()), Some(config.clone()), Some(config)];
        self
    }

    /// When every signal's queue memory is committed (see [`QueueMemory`]),
    /// on the sink settings made so far or the defaults: call it after
    /// [`with_sink_config`](Self::with_sink_config), which replaces them.
    /// Default [`QueueMemory::Lazy`]: an exporter at rest holds almost none
    /// of its queues. [`QueueMemory::Resident`] commits them all at build,
    /// so that no `on_end`, `emit` or collection takes a page fault, for
    /// 14.5 MB more at rest at the default capacities (measured; README,
    /// "Benchmarks").
    #[must_use]
    pub fn with_queue_memory(mut self, memory: QueueMemory) -> Self {
        for sink in self.sinks.iter_mut().flatten() {
            *sink = sink.clone().with_queue_memory(memory);
        }
        // The signals still on their defaults, which depend on settings
        // resolved at build.
        self.default_queue_memory = memory;
        self
    }

    /// The queue and batching of one signal's sink.
    #[must_use]
    pub fn with_signal_sink_config(mut self, signal: Signal, config: SinkConfig) -> Self {
        self.sinks[signal.index()] = Some(config);
        self
    }

    /// The aggregation temporality the metric adapters ask the SDK for. Wins
    /// over `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`; default
    /// cumulative.
    #[must_use]
    pub fn with_temporality(mut self, temporality: TemporalityPreference) -> Self {
        self.temporality = Some(temporality);
        self
    }

    /// How often the [metric reader](OtlpExporter::metric_reader) collects.
    /// Wins over `OTEL_METRIC_EXPORT_INTERVAL`; default 60 s.
    #[must_use]
    pub fn with_export_interval(mut self, interval: Duration) -> Self {
        self.export_interval = Some(interval);
        self
    }

    /// The longest a `force_flush` waits (collection, queueing and the
    /// collector's answers), since the SDK's `force_flush` takes no timeout.
    /// Default 30 s.
    #[must_use]
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// The longest a shutdown waits when no timeout is given: by
    /// [`OtlpExporter::shutdown`], and when the last handle is dropped
    /// unshut. Default 5 s, as the SDK's. (The SDK passes its own timeout to
    /// the adapters' `shutdown_with_timeout`.)
    #[must_use]
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Keeps every signal's export requests in a durable spool under `dir`,
    /// in a subdirectory each (`metrics`, `traces`, `logs`), so that a
    /// collector outage longer than the retry budget, a restart or a crash
    /// loses nothing the spool's bounds keep. Wins over
    /// `OTLP_SINK_SPOOL_DIR`; there is no default: without either, nothing
    /// is written to disk.
    ///
    /// Choose a directory of the application's own, not a shared temporary
    /// directory: it is created mode 0700 (files 0600), a directory
    /// writable by others is refused, and one process at a time holds it
    /// (a lock file: a second build fails naming it).
    ///
    /// With a spool, `force_flush` still waits for the collector's
    /// acknowledgement ([`FlushLevel::Delivered`]) unless
    /// [`with_flush_level`](Self::with_flush_level) says
    /// [`FlushLevel::Persisted`]; a shutdown fsyncs what is in memory,
    /// gives delivery half its timeout, and leaves the rest on disk for the
    /// next start, which delivers it first (the shutdown's error counts it
    /// in [`Undelivered::kept`](crate::sdk::Undelivered::kept), not as lost).
    #[must_use]
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        for signal in SIGNALS {
            self.spool_dirs[signal.index()] = Some(dir.join(signal.name()));
        }
        self
    }

    /// A spool for one signal, in `dir` itself. Wins over
    /// [`with_spool_dir`](Self::with_spool_dir) and the environment for that
    /// signal.
    #[must_use]
    pub fn with_signal_spool_dir(mut self, signal: Signal, dir: impl Into<PathBuf>) -> Self {
        self.spool_dirs[signal.index()] = Some(dir.into());
        self
    }

    /// The most bytes each signal's spool may hold. Default 256 MiB.
    #[must_use]
    pub fn with_spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool_bounds = self.spool_bounds.with_max_bytes(bytes);
        self
    }

    /// Spooled requests older than this are dropped (counted) instead of
    /// sent; `None`: no age bound. Default 24 hours.
    #[must_use]
    pub fn with_spool_max_record_age(mut self, age: Option<Duration>) -> Self {
        self.spool_bounds = self.spool_bounds.with_max_record_age(age);
        self
    }

    /// What a full spool does. Default [`FullPolicy::EvictOldest`].
    #[must_use]
    pub fn with_spool_full_policy(mut self, policy: FullPolicy) -> Self {
        self.spool_bounds = self.spool_bounds.with_full_policy(policy);
        self
    }

    /// What the adapters' `force_flush` waits for with a spool. Default
    /// [`FlushLevel::Delivered`]: the collector acknowledged it.
    /// [`FlushLevel::Persisted`]: fsynced in the spool. Without a spool both
    /// mean the collector acknowledged it.
    #[must_use]
    pub fn with_flush_level(mut self, level: FlushLevel) -> Self {
        self.flush_level = level;
        self
    }

    /// The spool each signal would be built with from the environment read
    /// through `lookup`: code first, then `OTLP_SINK_SPOOL_DIR` (a
    /// subdirectory per signal), else none.
    pub fn resolve_spool(&self, signal: Signal, lookup: impl Fn(&str) -> Option<String>) -> Option<SpoolConfig> {
        let dir = self.spool_dirs[signal.index()].clone().or_else(|| {
            lookup(SPOOL_DIR_VAR).filter(|v| !v.trim().is_empty()).map(|v| PathBuf::from(v.trim()).join(signal.name()))
        })?;
        Some(self.spool_bounds.clone().with_dir(dir))
    }

    /// Worker threads of the export runtime. Default 1, which serves all
    /// three signals; a second helps when one process exports a lot.
    #[must_use]
    pub fn with_export_threads(mut self, threads: usize) -> Self {
        self.export_threads = threads.max(1);
        self
    }

    /// The exporter settings one signal would be built with from the
    /// environment read through `lookup`: code, then that signal's
    /// variables, then the defaults. [`build_with_lookup`](Self::build_with_lookup)
    /// uses exactly this for each signal; call it to see or log what a build
    /// will use. Reads nothing but `lookup` and the certificate files'
    /// metadata.
    ///
    /// # Errors
    ///
    /// As [`build_with_lookup`](Self::build_with_lookup), for the
    /// configuration part.
    pub fn resolve_config(
        &self,
        signal: Signal,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ExporterConfig, BuildError> {
        let env = EnvSettings::from_lookup(signal, lookup).map_err(BuildError::config)?;
        let config = self.exporter.clone().build_with_env(env).map_err(BuildError::config)?;
        config.validate().map_err(BuildError::config)?;
        Ok(config)
    }

    /// Builds with the process environment: see
    /// [`build_with_lookup`](Self::build_with_lookup).
    ///
    /// # Errors
    ///
    /// As [`build_with_lookup`](Self::build_with_lookup).
    pub fn build(self) -> Result<OtlpExporter, BuildError> {
        self.build_with_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Builds from code and defaults only: no `OTEL_*` variable is read,
    /// not `OTEL_EXPORTER_OTLP_ENDPOINT`, not `_HEADERS`, not the TLS files,
    /// not the temporality preference or the export interval, and no proxy
    /// variable (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`). For tests and
    /// for applications that own their whole configuration.
    ///
    /// ```
    /// use otlp_sink::OtlpExporter;
    ///
    /// let exporter = OtlpExporter::builder().with_endpoint("http://127.0.0.1:4317").build_without_env()?;
    /// # Ok::<(), otlp_sink::sdk::BuildError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`build_with_lookup`](Self::build_with_lookup), for settings made
    /// in code.
    pub fn build_without_env(self) -> Result<OtlpExporter, BuildError> {
        self.build_with_lookup(|_| None)
    }

    /// Builds with the environment read through `lookup` (a variable name to
    /// its value), for settings code left alone: each signal's exporter
    /// settings (see [`resolve_config`](Self::resolve_config)), the
    /// temporality preference and the export interval, and, for a signal
    /// sent over OTLP/HTTP, the proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`,
    /// `ALL_PROXY`, `NO_PROXY`: see [`ExporterConfig`](crate::ExporterConfig)'s
    /// "Proxies").
    ///
    /// Every variable this crate knows is honoured or refused here, by name:
    /// a bad value is an error, and so is `OTEL_EXPORTER_OTLP_PROTOCOL` (or
    /// a per-signal one) set to `http/json`, which this version does not
    /// speak, unless code sets the protocol.
    ///
    /// Starts the export runtime, prepares the three OTLP clients (gRPC or
    /// HTTP, each signal's as its configuration says; they
    /// connect on first use, so a collector that is not up yet is no error)
    /// and starts the three sinks. Callable from any thread, async code
    /// included.
    ///
    /// # Errors
    ///
    /// A [`BuildError`]: [`BuildError::Config`] for a bad variable or
    /// setting or a certificate file that cannot be read (its text names the
    /// variable or setting and the value); TLS settings refused, a sink
    /// setting out of range, or no thread for the runtime.
    pub fn build_with_lookup(self, lookup: impl Fn(&str) -> Option<String>) -> Result<OtlpExporter, BuildError> {
        let mut configs = Vec::with_capacity(3);
        for signal in SIGNALS {
            configs.push(self.resolve_config(signal, &lookup)?);
        }
        let metrics_env = EnvSettings::from_lookup(Signal::Metrics, &lookup).map_err(BuildError::config)?;
        let sinks: Vec<SinkConfig> = SIGNALS
            .iter()
            .zip(&configs)
            .map(|(&signal, config)| {
                self.sinks[signal.index()].clone().unwrap_or_else(|| {
                    default_sink_config(signal, config.max_request_bytes()).with_queue_memory(self.default_queue_memory)
                })
            })
            .collect();
        for (&signal, sink) in SIGNALS.iter().zip(&sinks) {
            sink.validate().map_err(|source| BuildError::Sink { signal, source })?;
        }
        let settings = Settings {
            flush_timeout: self.flush_timeout,
            shutdown_timeout: self.shutdown_timeout,
            temporality: self.temporality.or(metrics_env.temporality_preference()).unwrap_or_default(),
            export_interval: self
                .export_interval
                .or(metrics_env.metric_export_interval())
                .unwrap_or(EnvSettings::DEFAULT_METRIC_EXPORT_INTERVAL),
        };

        let spools: Vec<Option<SpoolConfig>> =
            SIGNALS.iter().map(|&signal| self.resolve_spool(signal, &lookup)).collect();
        // A spooled drain's close gives delivery half the shutdown's
        // deadline: the rest is for the final collection, the last batches,
        // the fsync and the spool's close, so that the close is not cut
        // short (its records would still be on disk, counted as kept).
        let close_budget = inner_deadline(self.shutdown_timeout) / 2;

        let runtime = ExportRuntime::start(self.export_threads).map_err(BuildError::Runtime)?;
        // The clients spawn their connection tasks on the runtime they are
        // made on: make them on the export runtime.
        let [m, t, l] = [configs[0].clone(), configs[1].clone(), configs[2].clone()];
        let [sm, st, sl] = [spools[0].clone(), spools[1].clone(), spools[2].clone()];
        let connected = runtime
            .run(
                async move {
                    let metrics = crate::drains::open::<Metrics>(&m, sm.as_ref(), close_budget).await;
                    let traces = crate::drains::open::<Traces>(&t, st.as_ref(), close_budget).await;
                    let logs = crate::drains::open::<Logs>(&l, sl.as_ref(), close_budget).await;
                    (metrics, traces, logs)
                },
                Duration::from_secs(60),
            )
            .map_err(|_| BuildError::Runtime(std::io::Error::other("the export runtime did not answer")))?;
        let opened = |signal: Signal| {
            move |e: SpoolOpenError| match e {
                SpoolOpenError::Connect(source) => BuildError::Connect { signal, source },
                source => BuildError::Spool { signal, source },
            }
        };
        let metrics = connected.0.map_err(opened(Signal::Metrics))?;
        let traces = connected.1.map_err(opened(Signal::Traces))?;
        let logs = connected.2.map_err(opened(Signal::Logs))?;

        let span_resource = Arc::new(ResourceSlot::default());
        let log_resource = Arc::new(ResourceSlot::default());
        let [ms, ts, ls] = [sinks[0].clone(), sinks[1].clone(), sinks[2].clone()];
        let (level, flush_timeout) = (self.flush_level, self.flush_timeout);
        let pipe = |export, spool, sink| PipeSettings { export, spool, level, flush_timeout, sink };
        let metrics_pipe = pipe(metrics.stats(), metrics.spool(), ms);
        let metrics = SignalPipe::start(Signal::Metrics, metrics, metrics_pipe, &runtime)?;
        let traces_pipe = pipe(traces.stats(), traces.spool(), ts);
        let traces = SignalPipe::start(
            Signal::Traces,
            SpansAdapterDrain::new(traces, Arc::clone(&span_resource)),
            traces_pipe,
            &runtime,
        )?;
        let logs_pipe = pipe(logs.stats(), logs.spool(), ls);
        let logs = SignalPipe::start(
            Signal::Logs,
            LogsAdapterDrain::new(logs, Arc::clone(&log_resource)),
            logs_pipe,
            &runtime,
        )?;
        let shared = Arc::new(ExporterState {
            runtime,
            metrics,
            traces,
            logs,
            span_resource,
            log_resource,
            collectors: Mutex::default(),
            settings,
            stopped: AtomicBool::new(false),
        });
        Ok(OtlpExporter::new(shared))
    }
}

/// A signal's sink settings when code sets none: for metrics, batches by
/// bytes, at most `max_request_bytes` (the signal's request limit).
fn default_sink_config(signal: Signal, max_request_bytes: usize) -> SinkConfig {
    match signal {
        Signal::Metrics => SinkConfig::default()
            .with_queue_capacity(OtlpExporterBuilder::DEFAULT_METRICS_QUEUE_CAPACITY)
            .with_batch_size(OtlpExporterBuilder::DEFAULT_METRICS_BATCH_SIZE)
            .with_batch_bytes(OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES.min(max_request_bytes)),
        Signal::Traces | Signal::Logs => SinkConfig::default()
            .with_queue_capacity(OtlpExporterBuilder::DEFAULT_QUEUE_CAPACITY)
            .with_queue_shards(OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_memory_applies_to_every_signal_and_keeps_its_other_sink_settings() {
        let builder = OtlpExporter::builder()
            .with_signal_sink_config(Signal::Logs, SinkConfig::default().with_queue_capacity(7))
            .with_queue_memory(QueueMemory::Resident);
        let logs = builder.sinks[Signal::Logs.index()].clone().expect("set in code");
        assert_eq!((logs.queue_memory(), logs.queue_capacity()), (QueueMemory::Resident, 7));
        assert!(builder.sinks[Signal::Metrics.index()].is_none(), "the defaults are made at build");
        assert_eq!(builder.default_queue_memory, QueueMemory::Resident);
        assert_eq!(default_sink_config(Signal::Traces, 1 << 20).queue_memory(), QueueMemory::Lazy);
    }

    #[test]
    fn metric_batches_are_cut_by_bytes_under_the_request_limit() {
        let metrics = default_sink_config(Signal::Metrics, ExporterConfig::DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(metrics.batch_bytes(), OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES);
        assert!(metrics.batch_bytes() < ExporterConfig::DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(default_sink_config(Signal::Metrics, 64 * 1024).batch_bytes(), 64 * 1024);
        assert_eq!(default_sink_config(Signal::Traces, 64 * 1024).batch_bytes(), 0, "spans batch by count");
    }

    #[test]
    fn span_and_log_queues_are_sharded_and_the_metrics_queue_is_not() {
        for signal in [Signal::Traces, Signal::Logs] {
            let config = default_sink_config(signal, ExporterConfig::DEFAULT_MAX_REQUEST_BYTES);
            assert_eq!(config.queue_shards(), OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS, "{signal:?}");
            assert_eq!(config.queue_capacity(), OtlpExporterBuilder::DEFAULT_QUEUE_CAPACITY, "{signal:?}");
            assert_eq!(config.validate(), Ok(()));
        }
        let metrics = default_sink_config(Signal::Metrics, ExporterConfig::DEFAULT_MAX_REQUEST_BYTES);
        assert_eq!(metrics.queue_shards(), 1, "the collection pushes from one thread");
    }
}
