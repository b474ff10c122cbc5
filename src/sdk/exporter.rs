//! [`OtlpExporter`]: the export runtime and one sink per signal, shared by
//! every adapter it hands out.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::{BuildError, SdkError};
use super::logs::{LogItem, LogsAdapterDrain, OtlpLogExporter, OtlpLogProcessor};
use super::metrics::{OtlpMetricExporter, OtlpMetricReader};
use super::runtime::ExportRuntime;
use super::traces::{OtlpSpanExporter, OtlpSpanProcessor, SpansAdapterDrain};
use crate::grpc::GrpcDrain;
use crate::otlp::{EncodedMetricPoint, EncodedMetrics, Resource};
use crate::{
    BackgroundSink, EnvSettings, ExportStats, ExportStatsHandle, ExporterConfig, ExporterConfigBuilder, LogsDrain,
    ShutdownError, Signal, SinkConfig, SinkDrain, SinkHandle, SinkStats, TemporalityPreference, TracesDrain,
    TryPushError,
};

/// A future of one signal's barrier or shutdown, boxed so that the three
/// signals' futures fit one list.
type Outcome = std::pin::Pin<Box<dyn Future<Output = Result<(), SdkError>> + Send>>;

/// The signals, in the order results are reported.
const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

fn index(signal: Signal) -> usize {
    match signal {
        Signal::Metrics => 0,
        Signal::Traces => 1,
        Signal::Logs => 2,
    }
}

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
/// Cloning is cheap and shares everything. Every adapter keeps the shared
/// state alive; when the last clone and the last adapter are dropped, the
/// sinks still open are shut down (delivering what they hold, within the
/// [shutdown timeout](OtlpExporterBuilder::with_shutdown_timeout)) and the
/// export runtime stops.
///
/// # Example
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otlp_sink::{ExporterConfig, OtlpExporter};
/// # use otlp_sink::receiver::Receiver;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let rt = tokio::runtime::Runtime::new()?;
/// # let receiver = rt.block_on(Receiver::start())?;
/// # let endpoint = receiver.endpoint();
/// let exporter = OtlpExporter::builder()
///     .with_config(ExporterConfig::builder().with_endpoint(endpoint).build_without_env()?)
///     .build()?;
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
pub struct OtlpExporter {
    shared: Arc<Shared>,
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

/// Settings of an [`OtlpExporter`]. Each is optional: what code leaves
/// alone comes from the environment (for a build that reads one), else from
/// the defaults listed on each method.
#[derive(Debug, Clone)]
pub struct OtlpExporterBuilder {
    /// Settings made in code, layered over each signal's environment.
    settings: ExporterConfigBuilder,
    /// Complete configurations per signal, used as they are.
    configs: [Option<ExporterConfig>; 3],
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
            settings: ExporterConfigBuilder::default(),
            configs: [None, None, None],
            sinks: [None, None, None],
            temporality: None,
            export_interval: None,
            flush_timeout: OtlpExporter::DEFAULT_FLUSH_TIMEOUT,
            shutdown_timeout: OtlpExporter::DEFAULT_SHUTDOWN_TIMEOUT,
            export_threads: 1,
        }
    }
}

impl OtlpExporterBuilder {
    /// Exporter settings made in code, applied to every signal over that
    /// signal's environment (`OTEL_EXPORTER_OTLP_{METRICS,TRACES,LOGS}_*`,
    /// then `OTEL_EXPORTER_OTLP_*`): code wins setting by setting.
    #[must_use]
    pub fn with_settings(mut self, settings: ExporterConfigBuilder) -> Self {
        self.settings = settings;
        self
    }

    /// A complete configuration for every signal, used as it is: the
    /// `OTEL_EXPORTER_OTLP_*` variables are not read (build it with
    /// [`ExporterConfigBuilder::build_from_env`] to have them).
    #[must_use]
    pub fn with_config(mut self, config: ExporterConfig) -> Self {
        self.configs = [Some(config.clone()), Some(config.clone()), Some(config)];
        self
    }

    /// A complete configuration for one signal, used as it is.
    #[must_use]
    pub fn with_signal_config(mut self, signal: Signal, config: ExporterConfig) -> Self {
        self.configs[index(signal)] = Some(config);
        self
    }

    /// The queue and batching of every signal's sink. Defaults:
    /// [`SinkConfig::default`] for spans and log records; for metric points
    /// a queue of 65 536 and batches of 8 192, so that a collection fits.
    #[must_use]
    pub fn with_sink_config(mut self, config: SinkConfig) -> Self {
        self.sinks = [Some(config.clone()), Some(config.clone()), Some(config)];
        self
    }

    /// The queue and batching of one signal's sink.
    #[must_use]
    pub fn with_signal_sink_config(mut self, signal: Signal, config: SinkConfig) -> Self {
        self.sinks[index(signal)] = Some(config);
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

    /// Builds with the process environment: see
    /// [`build_with_lookup`](Self::build_with_lookup).
    ///
    /// # Errors
    ///
    /// As [`build_with_lookup`](Self::build_with_lookup).
    pub fn build(self) -> Result<OtlpExporter, BuildError> {
        self.build_with_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Builds with the environment read through `lookup` (a variable name to
    /// its value), for settings code left alone: each signal's exporter
    /// settings unless a complete configuration was given, the temporality
    /// preference and the export interval.
    ///
    /// Starts the export runtime, prepares the three gRPC clients (they
    /// connect on first use, so a collector that is not up yet is no error)
    /// and starts the three sinks. Callable from any thread, async code
    /// included.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the signal: a bad variable or setting, a
    /// certificate file that cannot be read, TLS settings refused, a sink
    /// setting out of range, or no thread for the runtime.
    pub fn build_with_lookup(self, lookup: impl Fn(&str) -> Option<String>) -> Result<OtlpExporter, BuildError> {
        let mut configs = Vec::with_capacity(3);
        let mut metrics_env = None;
        for signal in SIGNALS {
            let env =
                EnvSettings::from_lookup(signal, &lookup).map_err(|source| BuildError::Config { signal, source })?;
            if signal == Signal::Metrics {
                metrics_env = Some(env.clone());
            }
            let config = match &self.configs[index(signal)] {
                Some(config) => config.clone(),
                None => {
                    self.settings.clone().build_with_env(env).map_err(|source| BuildError::Config { signal, source })?
                }
            };
            config.validate().map_err(|source| BuildError::Config { signal, source })?;
            configs.push(config);
        }
        let metrics_env = metrics_env.unwrap_or_default();
        let sinks: Vec<SinkConfig> = SIGNALS
            .iter()
            .map(|&signal| self.sinks[index(signal)].clone().unwrap_or_else(|| default_sink_config(signal)))
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
                    let metrics = GrpcDrain::<EncodedMetrics>::connect(&m).await;
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
        Ok(OtlpExporter {
            shared: Arc::new(Shared {
                runtime,
                metrics,
                traces,
                logs,
                span_resource,
                log_resource,
                settings,
                stopped: AtomicBool::new(false),
            }),
        })
    }
}

fn default_sink_config(signal: Signal) -> SinkConfig {
    match signal {
        Signal::Metrics => SinkConfig::default().with_queue_capacity(65_536).with_batch_size(8_192),
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
    /// are logged through `tracing`): see [`SdkError`]. Signals already shut
    /// down are skipped.
    pub fn force_flush(&self) -> Result<(), SdkError> {
        let shared = &self.shared;
        let open: Vec<(Signal, Outcome)> =
            SIGNALS.iter().filter_map(|&s| shared.pipe_barrier(s).map(|barrier| (s, barrier))).collect();
        let Some(&(first, _)) = open.first() else { return Ok(()) };
        let barriers = open.into_iter().map(|(_, barrier)| barrier);
        let timeout = shared.settings.flush_timeout;
        // A timeout is reported under the first signal that was still open.
        let results = shared
            .runtime
            .run(futures_util::future::join_all(barriers), timeout)
            .map_err(|e| SdkError::from_run(e, first, false, timeout))?;
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
        let pending: Vec<(Signal, Outcome)> = [
            self.metrics.take_shutdown(inner).map(|f| (Signal::Metrics, Box::pin(f) as Outcome)),
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
            .map_err(|e| SdkError::from_run(e, first, true, timeout))?;
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
/// client waits for every answer, all within `deadline`.
pub(crate) async fn shutdown_sink(handle: SinkHandle, signal: Signal, deadline: Duration) -> Result<(), SdkError> {
    handle.shutdown_timeout(deadline).await.map_err(|source: ShutdownError| SdkError::Shutdown { signal, source })
}

/// One signal's sink and the counters around it.
pub(crate) struct SignalPipe<T> {
    signal: Signal,
    pub(crate) sink: BackgroundSink<T>,
    /// `None` once the sink is being or has been shut down.
    handle: Mutex<Option<SinkHandle>>,
    export: ExportStatsHandle,
    /// The sink's `dropped` count the last barrier reported up to.
    reported_drops: Arc<AtomicU64>,
    refused_after_shutdown: Arc<AtomicU64>,
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
        Ok(Self {
            signal,
            sink,
            handle: Mutex::new(Some(handle)),
            export,
            reported_drops: Arc::default(),
            refused_after_shutdown: Arc::default(),
        })
    }

    /// Queues `item` without waiting. A full queue is a drop, counted by the
    /// sink; a closed one a refusal, counted here. Returns whether it was
    /// queued.
    #[inline]
    pub(crate) fn push(&self, item: T) -> bool {
        match self.sink.try_push(item) {
            Ok(()) => true,
            Err(TryPushError::Closed(_)) => {
                self.refused_after_shutdown.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(_) => false,
        }
    }

    /// Counts a refusal that happened outside [`push`](Self::push).
    pub(crate) fn count_refused(&self, items: u64) {
        self.refused_after_shutdown.fetch_add(items, Ordering::Relaxed);
    }

    /// The refusal counter, for the metric reader's pushes on the export runtime.
    pub(crate) fn refused_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.refused_after_shutdown)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.handle.lock().map(|h| h.is_none()).unwrap_or(true)
    }

    /// The barrier, as a future to run on the export runtime: `Ok` when
    /// every item queued before it is acknowledged and none was dropped for
    /// a full queue since the previous barrier.
    pub(crate) fn barrier(&self) -> impl Future<Output = Result<(), SdkError>> + Send + 'static {
        let sink = self.sink.clone();
        let signal = self.signal;
        let reported = Arc::clone(&self.reported_drops);
        async move {
            // Drops up to now happened before the call: this barrier reports them.
            let dropped_now = sink.stats().dropped;
            let before = reported.fetch_max(dropped_now, Ordering::AcqRel);
            sink.flush().await.map_err(|e| SdkError::from_flush(e, signal))?;
            match dropped_now.saturating_sub(before) {
                0 => Ok(()),
                dropped => Err(SdkError::Dropped { signal, items: dropped }),
            }
        }
    }

    /// Runs the barrier, waiting at most `timeout`.
    pub(crate) fn flush(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        runtime.run(self.barrier(), timeout).map_err(|e| SdkError::from_run(e, self.signal, false, timeout))?
    }

    /// Takes the sink's handle, for the one caller that shuts the sink
    /// down. `None` when already taken.
    pub(crate) fn take_handle(&self) -> Option<SinkHandle> {
        self.handle.lock().ok()?.take()
    }

    /// Takes the sink's handle and returns the future that shuts it down
    /// within `deadline` (see [`shutdown_sink`]). `None` when already taken.
    pub(crate) fn take_shutdown(
        &self,
        deadline: Duration,
    ) -> Option<impl Future<Output = Result<(), SdkError>> + Send + 'static> {
        self.take_handle().map(|handle| shutdown_sink(handle, self.signal, deadline))
    }

    /// Shuts the sink down within `timeout`.
    ///
    /// # Errors
    ///
    /// [`SdkError::AlreadyShutdown`] on a second call.
    pub(crate) fn shutdown(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        let signal = self.signal;
        let shutdown = self.take_shutdown(inner_deadline(timeout)).ok_or(SdkError::AlreadyShutdown { signal })?;
        runtime.run(shutdown, timeout).map_err(|e| SdkError::from_run(e, signal, true, timeout))?
    }

    pub(crate) fn stats(&self) -> SignalStats {
        SignalStats {
            sink: self.sink.stats(),
            export: self.export.snapshot(),
            refused_after_shutdown: self.refused_after_shutdown.load(Ordering::Relaxed),
        }
    }
}
