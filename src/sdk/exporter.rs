//! [`OtlpExporter`]: the export runtime and one sink per signal, shared by
//! every adapter it hands out.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::{BuildError, Operation, SdkError, Undelivered, Waiting};
use super::logs::{LogItem, LogsAdapterDrain, OtlpLogExporter, OtlpLogProcessor};
use super::metrics::{Collector, OtlpMetricExporter, OtlpMetricReader};
use super::runtime::{ExportRuntime, RunError};
use super::traces::{OtlpSpanExporter, OtlpSpanProcessor, SpansAdapterDrain};
use crate::grpc::GrpcDrain;
use crate::otlp::{EncodedMetricPoint, Metrics, Resource};
use crate::{
    BackgroundSink, Compression, DrainError, DrainErrorKind, EnvSettings, ExportStats, ExportStatsHandle,
    ExporterConfig, ExporterConfigBuilder, FlushError, LogsDrain, Protocol, RetryPolicy, ShutdownError, Signal,
    SinkConfig, SinkDrain, SinkHandle, SinkStats, TemporalityPreference, TlsConfig, TracesDrain, TryPushError,
};

/// A future of one signal's barrier or shutdown, boxed so that the three
/// signals' futures fit one list.
type Outcome = std::pin::Pin<Box<dyn Future<Output = Result<(), SdkError>> + Send>>;

/// The signals, in the order results are reported.
const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

/// The OpenTelemetry SDK's way in to this crate: one export runtime and one
/// [`BackgroundSink`] per signal, from which it hands out the adapters that
/// plug into `opentelemetry_sdk` 0.33 providers.
///
/// | signal | for the SDK's own pipeline | with this crate's barrier |
/// | --- | --- | --- |
/// | metrics | [`metric_exporter`](Self::metric_exporter) under a `PeriodicReader` | [`metric_reader`](Self::metric_reader) |
/// | traces | [`span_exporter`](Self::span_exporter) under a `BatchSpanProcessor` | [`span_processor`](Self::span_processor) |
/// | logs | [`log_exporter`](Self::log_exporter) under a `BatchLogProcessor` | [`log_processor`](Self::log_processor) |
///
/// With the right-hand column, `provider.force_flush()` returns `Ok` only
/// once the collector has acknowledged everything recorded before the call.
/// The left-hand column exists for applications that keep the SDK's
/// batching; there the SDK never asks the exporter for a barrier, so call
/// [`OtlpExporter::force_flush`] after the provider's.
///
/// # Threads and runtimes
///
/// The exporter brings its own tokio runtime (the *export runtime*, one
/// worker by default, threads named `otlp-sink`): the sinks' actors, the
/// gRPC channels, the requests and the metric reader's collections all run
/// there. The application needs no runtime, and whatever runtime it has is
/// never asked to make progress for the exporter. `force_flush` and shutdown
/// hand their work to the export runtime and wait for the answer on a plain
/// `std` channel with a timeout, so they return, and cannot deadlock, when
/// called from a tokio worker (of a multi-thread runtime, also with one
/// worker), from a `current_thread` runtime, from a plain thread, or from a
/// `Drop` at the end of `main`. A call made on the export runtime itself (a
/// metric callback that flushes) would wait on itself: it is refused at once
/// with [`SdkError::OnExportRuntime`]. The export runtime's threads run
/// inside OpenTelemetry's suppression scope, so the exporter's own `tracing`
/// events are never exported back into it.
///
/// # Keep it until the end of `main`
///
/// This value owns the pipeline. Cloning is cheap and shares everything.
/// When the last clone is dropped, the exporter shuts down: it makes a final
/// metric collection, delivers everything queued on every signal within the
/// [shutdown timeout](OtlpExporterBuilder::with_shutdown_timeout), and stops
/// its runtime. It does so *even while providers still hold its adapters*,
/// as a global `tracing` subscriber or the global tracer provider does until
/// the process exits: so hold the exporter in `main` (not in a function that
/// returns only the providers), and let it drop when `main` returns. Nothing
/// else is needed at exit. Adapters used after that refuse what they are
/// given, count it ([`SignalStats::refused_after_shutdown`]) and warn once.
///
/// # Example
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otlp_sink::OtlpExporter;
/// # use otlp_sink::receiver::Receiver;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let rt = tokio::runtime::Runtime::new()?;
/// # let receiver = rt.block_on(Receiver::start())?;
/// # let endpoint = receiver.endpoint();
/// // Code sets the endpoint; OTEL_EXPORTER_OTLP_* variables supply what it leaves alone.
/// let exporter = OtlpExporter::builder().with_endpoint(endpoint).build()?;
///
/// let meters = SdkMeterProvider::builder().with_reader(exporter.metric_reader()).build();
/// let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
///
/// meters.meter("app").u64_counter("requests").build().add(1, &[]);
/// tracers.tracer("app").in_span("work", |_cx| {});
///
/// meters.force_flush()?; // the collector acknowledged the counter...
/// tracers.force_flush()?; // ...and the span.
/// # assert_eq!(receiver.counts().metrics.acked, 1);
/// # assert_eq!(receiver.counts().traces.acked, 1);
/// meters.shutdown()?;
/// tracers.shutdown()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "dropping the exporter shuts it down: hold it until the application stops recording"]
pub struct OtlpExporter {
    shared: Arc<Shared>,
    /// Held by this value's clones and by no adapter: its drop, with the
    /// last clone, shuts the exporter down.
    _owner: Arc<Owner>,
}

/// Shuts the exporter down when the application's last [`OtlpExporter`]
/// goes, whoever else still holds the shared state.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        let shared = &self.0;
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Err(err) = shared.shutdown_pipes(shared.settings.shutdown_timeout) {
            tracing::warn!(error = %super::error::chain(&err), "the OTLP exporter was dropped; its shutdown was not clean");
        }
        shared.stop();
    }
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

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
/// use otlp_sink::{Compression, OtlpExporter};
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
/// # Ok::<(), otlp_sink::BuildError>(())
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
        }
    }
}

impl OtlpExporterBuilder {
    /// The default queue capacity of the metrics sink, in data points: large
    /// enough that a collection fits. Spans and log records use
    /// [`SinkConfig::default`].
    pub const DEFAULT_METRICS_QUEUE_CAPACITY: usize = 65_536;

    /// The default batch size of the metrics sink, in data points.
    pub const DEFAULT_METRICS_BATCH_SIZE: usize = 8_192;

    /// The default number of [export runtime](Self::with_export_threads) threads.
    pub const DEFAULT_EXPORT_THREADS: usize = 1;

    /// The collector's URL: `http://` or `https://` (which decides TLS), a
    /// host, maybe a port and a path. Wins over `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// and its per-signal variants; default
    /// [`ExporterConfig::DEFAULT_ENDPOINT`] (`http://localhost:4317`). Every
    /// other setting still comes from the environment where code leaves it.
    ///
    /// ```
    /// use otlp_sink::{OtlpExporter, Signal};
    ///
    /// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "2500".to_string());
    /// let builder = OtlpExporter::builder().with_endpoint("https://collector.example:4317");
    /// let config = builder.resolve_config(Signal::Metrics, env)?;
    /// assert!(config.uses_tls());
    /// assert_eq!(config.timeout().as_millis(), 2500); // from the environment
    /// # Ok::<(), otlp_sink::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.exporter = self.exporter.with_endpoint(endpoint);
        self
    }

    /// The transport. Wins over `OTEL_EXPORTER_OTLP_PROTOCOL` and its
    /// per-signal variants; default [`Protocol::Grpc`], the only one this
    /// version speaks. Setting it in code makes a build ignore an
    /// environment that asks for `http/protobuf` (which it otherwise refuses).
    ///
    /// ```
    /// use otlp_sink::{OtlpExporter, Protocol};
    ///
    /// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/protobuf".to_string());
    /// assert!(OtlpExporter::builder().build_with_lookup(env).is_err());
    /// let exporter = OtlpExporter::builder().with_protocol(Protocol::Grpc).build_with_lookup(env)?;
    /// # Ok::<(), otlp_sink::BuildError>(())
    /// ```
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.exporter = self.exporter.with_protocol(protocol);
        self
    }

    /// Adds a header (gRPC metadata) sent with every request. The name is
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
    /// # Ok::<(), otlp_sink::BuildError>(())
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
    /// use otlp_sink::{OtlpExporter, Signal, TlsConfig};
    ///
    /// let ca_pem = b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n".to_vec();
    /// let builder = OtlpExporter::builder()
    ///     .with_endpoint("https://collector.example:4317")
    ///     .with_tls_config(TlsConfig::new().with_ca_certificate_pem(ca_pem));
    /// let config = builder.resolve_config(Signal::Traces, |_| None)?;
    /// assert!(config.uses_tls() && config.has_ca_certificate());
    /// # Ok::<(), otlp_sink::BuildError>(())
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
    /// default [`RetryPolicy::default`] (30 s budget).
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.exporter = self.exporter.with_retry_policy(policy);
        self
    }

    /// The queue and batching of every signal's sink. Defaults:
    /// [`SinkConfig::default`] for spans and log records; for metric points
    /// a queue of [`DEFAULT_METRICS_QUEUE_CAPACITY`](Self::DEFAULT_METRICS_QUEUE_CAPACITY)
    /// and batches of [`DEFAULT_METRICS_BATCH_SIZE`](Self::DEFAULT_METRICS_BATCH_SIZE),
    /// so that a collection fits.
    #[must_use]
    pub fn with_sink_config(mut self, config: SinkConfig) -> Self {
        self.sinks = [Some(config.clone()), Some(config.clone()), Some(config)];
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
    /// not the temporality preference or the export interval. For tests and
    /// for applications that own their whole configuration.
    ///
    /// ```
    /// use otlp_sink::OtlpExporter;
    ///
    /// let exporter = OtlpExporter::builder().with_endpoint("http://127.0.0.1:4317").build_without_env()?;
    /// # Ok::<(), otlp_sink::BuildError>(())
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
    /// temporality preference and the export interval.
    ///
    /// Every variable this crate knows is honoured or refused here, by name:
    /// a bad value is an error, and so is `OTEL_EXPORTER_OTLP_PROTOCOL` (or
    /// a per-signal one) set to `http/protobuf` or `http/json`, which this
    /// version does not speak, unless code sets the protocol.
    ///
    /// Starts the export runtime, prepares the three gRPC clients (they
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
            .map(|&signal| self.sinks[signal.index()].clone().unwrap_or_else(|| default_sink_config(signal)))
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

        let runtime = ExportRuntime::start(self.export_threads).map_err(BuildError::Runtime)?;
        // The clients spawn their connection tasks on the runtime they are
        // made on: make them on the export runtime.
        let [m, t, l] = [configs[0].clone(), configs[1].clone(), configs[2].clone()];
        let connected = runtime
            .run(
                async move {
                    let metrics = GrpcDrain::<Metrics>::connect(&m).await;
                    let traces = TracesDrain::connect(&t).await;
                    let logs = LogsDrain::connect(&l).await;
                    (metrics, traces, logs)
                },
                Duration::from_secs(60),
            )
            .map_err(|_| BuildError::Runtime(std::io::Error::other("the export runtime did not answer")))?;
        let metrics = connected.0.map_err(|source| BuildError::Connect { signal: Signal::Metrics, source })?;
        let traces = connected.1.map_err(|source| BuildError::Connect { signal: Signal::Traces, source })?;
        let logs = connected.2.map_err(|source| BuildError::Connect { signal: Signal::Logs, source })?;

        let span_resource = Arc::new(ResourceSlot::default());
        let log_resource = Arc::new(ResourceSlot::default());
        let [ms, ts, ls] = [sinks[0].clone(), sinks[1].clone(), sinks[2].clone()];
        let metrics_stats = metrics.stats();
        let metrics = SignalPipe::start(Signal::Metrics, metrics, metrics_stats, ms, &runtime)?;
        let traces_stats = traces.stats();
        let traces = SignalPipe::start(
            Signal::Traces,
            SpansAdapterDrain::new(traces, Arc::clone(&span_resource)),
            traces_stats,
            ts,
            &runtime,
        )?;
        let logs_stats = logs.stats();
        let logs = SignalPipe::start(
            Signal::Logs,
            LogsAdapterDrain::new(logs, Arc::clone(&log_resource)),
            logs_stats,
            ls,
            &runtime,
        )?;
        let shared = Arc::new(Shared {
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
        Ok(OtlpExporter { _owner: Arc::new(Owner(Arc::clone(&shared))), shared })
    }
}

fn default_sink_config(signal: Signal) -> SinkConfig {
    match signal {
        Signal::Metrics => SinkConfig::default()
            .with_queue_capacity(OtlpExporterBuilder::DEFAULT_METRICS_QUEUE_CAPACITY)
            .with_batch_size(OtlpExporterBuilder::DEFAULT_METRICS_BATCH_SIZE),
        _ => SinkConfig::default(),
    }
}

impl OtlpExporter {
    /// The default [flush timeout](OtlpExporterBuilder::with_flush_timeout): 30 s.
    pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

    /// The default [shutdown timeout](OtlpExporterBuilder::with_shutdown_timeout): 5 s.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

    /// A builder with nothing set.
    pub fn builder() -> OtlpExporterBuilder {
        OtlpExporterBuilder::default()
    }

    /// A metric reader for `SdkMeterProvider::builder().with_reader(..)`:
    /// collects every [export interval](OtlpExporterBuilder::with_export_interval)
    /// on the export runtime, and its `force_flush` collects, queues and
    /// waits for the collector's acknowledgement. See [`OtlpMetricReader`].
    pub fn metric_reader(&self) -> OtlpMetricReader {
        OtlpMetricReader::new(Arc::clone(&self.shared))
    }

    /// A push exporter for the SDK's `PeriodicReader`
    /// (`SdkMeterProvider::builder().with_periodic_exporter(..)`). See
    /// [`OtlpMetricExporter`] for what its flush means there.
    pub fn metric_exporter(&self) -> OtlpMetricExporter {
        OtlpMetricExporter::new(Arc::clone(&self.shared))
    }

    /// A span processor for `SdkTracerProvider::builder().with_span_processor(..)`:
    /// each ended span goes straight into the queue. See [`OtlpSpanProcessor`].
    pub fn span_processor(&self) -> OtlpSpanProcessor {
        OtlpSpanProcessor::new(Arc::clone(&self.shared))
    }

    /// A span exporter for the SDK's `BatchSpanProcessor`. See [`OtlpSpanExporter`].
    pub fn span_exporter(&self) -> OtlpSpanExporter {
        OtlpSpanExporter::new(Arc::clone(&self.shared))
    }

    /// A log processor for `SdkLoggerProvider::builder().with_log_processor(..)`:
    /// each record goes straight into the queue. See [`OtlpLogProcessor`].
    pub fn log_processor(&self) -> OtlpLogProcessor {
        OtlpLogProcessor::new(Arc::clone(&self.shared))
    }

    /// A log exporter for the SDK's `BatchLogProcessor`. See [`OtlpLogExporter`].
    pub fn log_exporter(&self) -> OtlpLogExporter {
        OtlpLogExporter::new(Arc::clone(&self.shared))
    }

    /// A barrier on every signal still open: returns `Ok` once everything
    /// handed to this exporter before the call (by any of its adapters) is
    /// acknowledged by the collector. It does not collect metrics; the
    /// meter provider's `force_flush` does. Waits at most the flush timeout.
    ///
    /// # Errors
    ///
    /// The first failure, in the order metrics, traces, logs (the others
    /// are logged through `tracing`): see [`SdkError`]. After
    /// [`shutdown`](Self::shutdown), [`SdkError::AlreadyShutdown`]. A signal
    /// shut down on its own (by its provider) is skipped, unless it refused
    /// items since the previous flush: then those are reported.
    pub fn force_flush(&self) -> Result<(), SdkError> {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            return Err(SdkError::AlreadyShutdown { signal: Signal::Metrics });
        }
        let mut results = Vec::with_capacity(SIGNALS.len());
        let mut open = Vec::with_capacity(SIGNALS.len());
        for signal in SIGNALS {
            match shared.pipe_barrier(signal) {
                Some(barrier) => open.push((signal, barrier)),
                None => results.push(shared.refusals_since_last_report(signal)),
            }
        }
        if let Some(&(first, _)) = open.first() {
            let barriers = open.into_iter().map(|(_, barrier)| barrier);
            let timeout = shared.settings.flush_timeout;
            // A timeout is reported under the first signal that was still open.
            let flushed = shared
                .runtime
                .run(futures_util::future::join_all(barriers), timeout)
                .map_err(|e| shared.flush_failed(first, e, timeout))?;
            results.splice(0..0, flushed);
        }
        first_error(results)
    }

    /// [`shutdown_with_timeout`](Self::shutdown_with_timeout) with the
    /// [shutdown timeout](OtlpExporterBuilder::with_shutdown_timeout).
    ///
    /// # Errors
    ///
    /// As [`shutdown_with_timeout`](Self::shutdown_with_timeout).
    pub fn shutdown(&self) -> Result<(), SdkError> {
        self.shutdown_with_timeout(self.shared.settings.shutdown_timeout)
    }

    /// Shuts down every signal still open (each delivers what it holds and
    /// closes its client), then stops the export runtime. Returns by
    /// `timeout` whatever the collector does. Idempotent: signals already
    /// shut down (by an adapter's shutdown, or an earlier call) are skipped.
    /// Adapters used afterwards refuse data (counted in
    /// [`SignalStats::refused_after_shutdown`]) and return
    /// [`SdkError::AlreadyShutdown`].
    ///
    /// # Errors
    ///
    /// The first signal whose shutdown was not clean, in the order metrics,
    /// traces, logs; see [`SdkError`].
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), SdkError> {
        let result = self.shared.shutdown_pipes(timeout);
        self.shared.stop();
        result
    }

    /// The counters of every signal: what the adapters queued, dropped and
    /// the sinks wrote, and what the collector acknowledged.
    pub fn stats(&self) -> ExporterStats {
        self.shared.stats()
    }

    /// The temporality preference the metric adapters use.
    pub fn temporality(&self) -> TemporalityPreference {
        self.shared.settings.temporality
    }

    /// The metric reader's collection interval.
    pub fn export_interval(&self) -> Duration {
        self.shared.settings.export_interval
    }
}

fn first_error(results: Vec<Result<(), SdkError>>) -> Result<(), SdkError> {
    let mut first = None;
    for result in results {
        if let Err(err) = result {
            if first.is_none() {
                first = Some(err);
            } else {
                tracing::warn!(error = %super::error::chain(&err), "another signal failed too");
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// What one signal's adapters did, and what became of it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalStats {
    /// The sink's counters: items queued (`pushed`), dropped because the
    /// queue was full, written to the gRPC client, pending.
    pub sink: SinkStats,
    /// The gRPC client's counters: requests, items sent, acknowledged,
    /// rejected, failed, retries.
    pub export: ExportStats,
    /// Items offered after the signal was shut down, refused.
    pub refused_after_shutdown: u64,
    /// Spans and log records made on the exporter's own threads (the
    /// `tracing` spans and events of the gRPC stack under it, seen by
    /// `tracing-opentelemetry` and the log appender), dropped by this
    /// crate's span and log processors so that the exporter never exports
    /// itself. Not part of `sink.pushed`.
    pub suppressed: u64,
}

impl SignalStats {
    /// Everything not delivered so far, by cause.
    pub fn undelivered(&self) -> Undelivered {
        let unfinished = self.export.unfinished;
        Undelivered {
            dropped: self.sink.dropped,
            rejected: self.export.rejected,
            failed: self.export.failed.saturating_sub(unfinished),
            unfinished: unfinished + self.sink.abandoned,
            refused_after_shutdown: self.refused_after_shutdown,
        }
    }
}

/// The counters of an [`OtlpExporter`], per signal. Items are metric data
/// points, spans and log records.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExporterStats {
    /// Metric data points.
    pub metrics: SignalStats,
    /// Spans.
    pub traces: SignalStats,
    /// Log records.
    pub logs: SignalStats,
}

impl ExporterStats {
    /// The counters of one signal.
    pub fn signal(&self, signal: Signal) -> SignalStats {
        match signal {
            Signal::Metrics => self.metrics,
            Signal::Traces => self.traces,
            Signal::Logs => self.logs,
        }
    }
}

/// Settings resolved at build time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) flush_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) temporality: TemporalityPreference,
    pub(crate) export_interval: Duration,
}

/// The resource the SDK gave a signal's adapters through `set_resource`,
/// read by that signal's drain once per batch.
#[derive(Debug, Default)]
pub(crate) struct ResourceSlot(RwLock<Arc<Resource>>);

impl ResourceSlot {
    pub(crate) fn get(&self) -> Arc<Resource> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set(&self, resource: Resource) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(resource);
    }
}

/// What the exporter and its adapters share.
pub(crate) struct Shared {
    pub(crate) runtime: ExportRuntime,
    pub(crate) metrics: SignalPipe<EncodedMetricPoint>,
    pub(crate) traces: SignalPipe<opentelemetry_sdk::trace::SpanData>,
    pub(crate) logs: SignalPipe<LogItem>,
    pub(crate) span_resource: Arc<ResourceSlot>,
    pub(crate) log_resource: Arc<ResourceSlot>,
    /// The metric readers handed out, for the final collection of a shutdown.
    pub(crate) collectors: Mutex<Vec<std::sync::Weak<Collector>>>,
    pub(crate) settings: Settings,
    /// Set once the runtime is stopped.
    stopped: AtomicBool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Shared {
    /// A flush of `signal` whose wait ended without an answer.
    fn flush_failed(&self, signal: Signal, err: RunError, timeout: Duration) -> SdkError {
        match err {
            RunError::TimedOut => SdkError::FlushTimedOut { signal, timeout, waiting: self.waiting(signal) },
            other => SdkError::from_run(other, signal, timeout),
        }
    }

    fn waiting(&self, signal: Signal) -> Waiting {
        match signal {
            Signal::Metrics => self.metrics.waiting(),
            Signal::Traces => self.traces.waiting(),
            Signal::Logs => self.logs.waiting(),
        }
    }

    /// For a signal shut down on its own: what it refused since it last reported.
    fn refusals_since_last_report(&self, signal: Signal) -> Result<(), SdkError> {
        match signal {
            Signal::Metrics => self.metrics.report(Operation::Flush, None),
            Signal::Traces => self.traces.report(Operation::Flush, None),
            Signal::Logs => self.logs.report(Operation::Flush, None),
        }
    }

    fn pipe_barrier(&self, signal: Signal) -> Option<Outcome> {
        let barrier: Outcome = match signal {
            Signal::Metrics if !self.metrics.is_shut_down() => Box::pin(self.metrics.barrier()),
            Signal::Traces if !self.traces.is_shut_down() => Box::pin(self.traces.barrier()),
            Signal::Logs if !self.logs.is_shut_down() => Box::pin(self.logs.barrier()),
            _ => return None,
        };
        Some(barrier)
    }

    /// Shuts down every pipe still open, concurrently, within `timeout`.
    fn shutdown_pipes(&self, timeout: Duration) -> Result<(), SdkError> {
        let inner = inner_deadline(timeout);
        let collectors: Vec<Arc<Collector>> = match self.collectors.lock() {
            Ok(mut list) => std::mem::take(&mut *list).iter().filter_map(std::sync::Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        };
        let metrics = self
            .metrics
            .take_shutdown_job()
            .map(|job| Box::pin(super::metrics::final_collection_then(collectors, inner, job)) as Outcome);
        let pending: Vec<(Signal, Outcome)> = [
            metrics.map(|f| (Signal::Metrics, f)),
            self.traces.take_shutdown(inner).map(|f| (Signal::Traces, Box::pin(f) as Outcome)),
            self.logs.take_shutdown(inner).map(|f| (Signal::Logs, Box::pin(f) as Outcome)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let Some(&(first, _)) = pending.first() else { return Ok(()) };
        let shutdowns = pending.into_iter().map(|(_, shutdown)| shutdown);
        // A timeout is reported under the first signal that was still open.
        let results = self
            .runtime
            .run(futures_util::future::join_all(shutdowns), timeout)
            .map_err(|e| SdkError::from_run(e, first, timeout))?;
        first_error(results)
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.runtime.stop();
    }

    fn stats(&self) -> ExporterStats {
        ExporterStats { metrics: self.metrics.stats(), traces: self.traces.stats(), logs: self.logs.stats() }
    }
}

impl Drop for Shared {
    /// The last handle is gone: deliver what the open sinks hold, within the
    /// shutdown timeout, then stop the runtime. The wait is on a `std`
    /// channel, so this is safe at the end of `main`, inside async code or
    /// not.
    fn drop(&mut self) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Err(err) = self.shutdown_pipes(self.settings.shutdown_timeout) {
            tracing::warn!(error = %super::error::chain(&err), "shutdown of the OTLP exporter on drop was not clean");
        }
        self.stop();
    }
}

/// The deadline a sink gets inside an operation bounded by `timeout`: a
/// little less, so that its own report (with the count of items it could
/// not deliver) arrives before the caller stops waiting.
pub(crate) fn inner_deadline(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(Duration::from_millis(100)))
}

/// Shuts a sink down: its queue is closed, everything in it written, and the
/// client waits for every answer, all within `deadline`. What the sink says
/// of an unclean end is only its first failure: the pipe's report (see
/// [`SignalPipe::report`]) says what was lost.
async fn shutdown_sink(handle: SinkHandle, deadline: Duration) -> Option<DrainError> {
    match handle.shutdown_timeout(deadline).await {
        Ok(()) | Err(ShutdownError::TimedOut { .. }) => None,
        Err(ShutdownError::Drain { source, .. }) => Some(source),
        Err(ShutdownError::ActorFailed(e)) => {
            Some(DrainError::new(DrainErrorKind::Other, format!("the export task failed: {e}")))
        }
    }
}

/// What a signal's errors are computed from: its counters, and how much of
/// them was already reported. Cloned into the futures that run on the export
/// runtime.
struct Ledger<T> {
    signal: Signal,
    sink: BackgroundSink<T>,
    export: ExportStatsHandle,
    refused_after_shutdown: Arc<AtomicU64>,
    /// What earlier flushes and shutdowns reported as not delivered: each
    /// item is reported by exactly one of them.
    reported: Arc<Mutex<Undelivered>>,
}

// Not derived: `T` need not be `Clone`.
impl<T> Clone for Ledger<T> {
    fn clone(&self) -> Self {
        Self {
            signal: self.signal,
            sink: self.sink.clone(),
            export: self.export.clone(),
            refused_after_shutdown: Arc::clone(&self.refused_after_shutdown),
            reported: Arc::clone(&self.reported),
        }
    }
}

impl<T: Send + 'static> Ledger<T> {
    fn stats(&self, suppressed: u64) -> SignalStats {
        SignalStats {
            sink: self.sink.stats(),
            export: self.export.snapshot(),
            refused_after_shutdown: self.refused_after_shutdown.load(Ordering::Relaxed),
            suppressed,
        }
    }

    /// `Ok` if nothing was lost since the last report; else what was, with
    /// `cause`, the first failure the collector or the transport gave.
    fn report(&self, operation: Operation, cause: Option<DrainError>) -> Result<(), SdkError> {
        let now = self.stats(0).undelivered();
        let lost = {
            let mut reported = self.reported.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let lost = now.since(&reported);
            *reported = now;
            lost
        };
        if lost.total() == 0 && cause.is_none() {
            return Ok(());
        }
        Err(SdkError::NotDelivered { signal: self.signal, operation, lost, cause })
    }
}

/// The right to shut one pipe down, taken once.
pub(crate) struct ShutdownJob<T> {
    handle: SinkHandle,
    ledger: Ledger<T>,
}

impl<T: Send + 'static> ShutdownJob<T> {
    /// Shuts the sink down within `deadline` and reports what was lost
    /// since the last flush.
    pub(crate) async fn run(self, deadline: Duration) -> Result<(), SdkError> {
        let cause = shutdown_sink(self.handle, deadline).await;
        self.ledger.report(Operation::Shutdown, cause)
    }
}

/// One signal's sink and the counters around it.
pub(crate) struct SignalPipe<T> {
    pub(crate) sink: BackgroundSink<T>,
    /// `None` once the sink is being or has been shut down.
    handle: Mutex<Option<SinkHandle>>,
    ledger: Ledger<T>,
    /// Spans and records made on the export runtime's threads, not queued.
    suppressed: AtomicU64,
}

impl<T: Send + 'static> SignalPipe<T> {
    fn start<D: SinkDrain<T>>(
        signal: Signal,
        drain: D,
        export: ExportStatsHandle,
        config: SinkConfig,
        runtime: &ExportRuntime,
    ) -> Result<Self, BuildError> {
        let (sink, handle) = BackgroundSink::spawn_on(drain, config, CancellationToken::new(), runtime.handle())
            .map_err(|source| BuildError::Sink { signal, source })?;
        let ledger = Ledger {
            signal,
            sink: sink.clone(),
            export,
            refused_after_shutdown: Arc::default(),
            reported: Arc::default(),
        };
        Ok(Self { sink, handle: Mutex::new(Some(handle)), ledger, suppressed: AtomicU64::new(0) })
    }

    /// Queues `item` without waiting. A full queue is a drop, counted by the
    /// sink; a closed one a refusal, counted here. Returns whether it was
    /// queued.
    #[inline]
    pub(crate) fn push(&self, item: T) -> bool {
        match self.sink.try_push(item) {
            Ok(()) => true,
            Err(TryPushError::Closed(_)) => {
                self.count_refused(1);
                false
            }
            Err(_) => false,
        }
    }

    /// Counts a refusal that happened outside [`push`](Self::push); the
    /// first one is logged.
    #[cold]
    pub(crate) fn count_refused(&self, items: u64) {
        let before = self.ledger.refused_after_shutdown.fetch_add(items, Ordering::Relaxed);
        if before == 0 && items > 0 {
            let signal = self.ledger.signal;
            tracing::warn!(
                "{} recorded after the OTLP exporter's {} pipeline shut down (by its shutdown, or because the \
                 OtlpExporter was dropped): refused, and counted in stats().{}.refused_after_shutdown",
                super::error::items(items, signal),
                signal.name(),
                signal.name(),
            );
        }
    }

    /// Counts an item made on the export runtime's own threads, dropped.
    pub(crate) fn count_suppressed(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    /// The refusal counter, for the metric reader's pushes on the export runtime.
    pub(crate) fn refused_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.ledger.refused_after_shutdown)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.handle.lock().map(|h| h.is_none()).unwrap_or(true)
    }

    /// See [`Ledger::report`].
    fn report(&self, operation: Operation, cause: Option<DrainError>) -> Result<(), SdkError> {
        self.ledger.report(operation, cause)
    }

    /// The barrier, as a future to run on the export runtime: `Ok` when
    /// every item queued before it is acknowledged and nothing was lost
    /// since the previous report.
    pub(crate) fn barrier(&self) -> impl Future<Output = Result<(), SdkError>> + Send + 'static {
        let ledger = self.ledger.clone();
        async move {
            match ledger.sink.flush().await {
                Ok(()) => ledger.report(Operation::Flush, None),
                Err(FlushError::Drain { source, .. }) => ledger.report(Operation::Flush, Some(source)),
                Err(_) => Err(SdkError::AlreadyShutdown { signal: ledger.signal }),
            }
        }
    }

    /// What a flush still waits for.
    pub(crate) fn waiting(&self) -> Waiting {
        let export = self.ledger.export.snapshot();
        Waiting {
            queued: self.sink.stats().pending,
            requests_in_flight: export.in_flight,
            outage: self.ledger.export.outage(),
        }
    }

    /// Runs the barrier, waiting at most `timeout`.
    pub(crate) fn flush(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        match runtime.run(self.barrier(), timeout) {
            Ok(result) => result,
            Err(RunError::TimedOut) => {
                Err(SdkError::FlushTimedOut { signal: self.ledger.signal, timeout, waiting: self.waiting() })
            }
            Err(other) => Err(SdkError::from_run(other, self.ledger.signal, timeout)),
        }
    }

    fn take_handle(&self) -> Option<SinkHandle> {
        self.handle.lock().ok()?.take()
    }

    /// Takes the sink's handle, for the one caller that shuts the pipe
    /// down. `None` when already taken.
    pub(crate) fn take_shutdown_job(&self) -> Option<ShutdownJob<T>> {
        self.take_handle().map(|handle| ShutdownJob { handle, ledger: self.ledger.clone() })
    }

    /// Takes the sink's handle and returns the future that shuts it down
    /// within `deadline`. `None` when already taken.
    fn take_shutdown(&self, deadline: Duration) -> Option<impl Future<Output = Result<(), SdkError>> + Send + 'static> {
        self.take_shutdown_job().map(|job| job.run(deadline))
    }

    /// Shuts the sink down within `timeout`.
    ///
    /// # Errors
    ///
    /// [`SdkError::AlreadyShutdown`] on a second call.
    pub(crate) fn shutdown(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        let signal = self.ledger.signal;
        let shutdown = self.take_shutdown(inner_deadline(timeout)).ok_or(SdkError::AlreadyShutdown { signal })?;
        runtime.run(shutdown, timeout).map_err(|e| SdkError::from_run(e, signal, timeout))?
    }

    pub(crate) fn stats(&self) -> SignalStats {
        self.ledger.stats(self.suppressed.load(Ordering::Relaxed))
    }
}
