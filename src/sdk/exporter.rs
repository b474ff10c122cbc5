//! [`OtlpExporter`]: the export runtime and one sink per signal, shared by
//! every adapter it hands out.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::error::SdkError;
use super::logs::{OtlpLogExporter, OtlpLogProcessor};
use super::metrics::{OtlpMetricExporter, OtlpMetricReader};
use super::shared::{first_error, ExporterState, SIGNALS};
use super::stats::ExporterStats;
use super::traces::{OtlpSpanExporter, OtlpSpanProcessor};
use crate::{
    config::{FlushLevel, TemporalityPreference},
    Signal,
};

/// The OpenTelemetry SDK's way in to this crate: one export runtime and one
/// [`BackgroundSink`](crate::BackgroundSink) per signal, from which it hands out the adapters that
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
/// [shutdown timeout](crate::sdk::OtlpExporterBuilder::with_shutdown_timeout), and stops
/// its runtime. It does so *even while providers still hold its adapters*,
/// as a global `tracing` subscriber or the global tracer provider does until
/// the process exits: so hold the exporter in `main` (not in a function that
/// returns only the providers), and let it drop when `main` returns. Nothing
/// else is needed at exit. Adapters used after that refuse what they are
/// given, count it ([`PipelineStats::refused_after_shutdown`](crate::sdk::PipelineStats::refused_after_shutdown)) and warn once.
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
    shared: Arc<ExporterState>,
    /// Held by this value's clones and by no adapter: its drop, with the
    /// last clone, shuts the exporter down.
    _owner: Arc<Owner>,
}

/// Shuts the exporter down when the application's last [`OtlpExporter`]
/// goes, whoever else still holds the shared state.
struct Owner(Arc<ExporterState>);

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

impl OtlpExporter {
    /// The application's handle on `shared`: its last clone's drop shuts it down.
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { _owner: Arc::new(Owner(Arc::clone(&shared))), shared }
    }
}

impl fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// The default [flush timeout](crate::sdk::OtlpExporterBuilder::with_flush_timeout): 30 s.
    pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

    /// The default [shutdown timeout](crate::sdk::OtlpExporterBuilder::with_shutdown_timeout): 5 s.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

    /// A metric reader for `SdkMeterProvider::builder().with_reader(..)`:
    /// collects every [export interval](crate::sdk::OtlpExporterBuilder::with_export_interval)
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
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otlp_sink::OtlpExporter;
    /// # use otlp_sink::receiver::Receiver;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// # let receiver = rt.block_on(Receiver::start())?;
    /// let exporter = OtlpExporter::builder().with_endpoint(receiver.endpoint()).build()?;
    /// let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
    /// tracers.tracer("app").in_span("work", |_cx| {});
    ///
    /// // One barrier on every signal; the span was pushed when it ended.
    /// exporter.force_flush()?;
    /// assert_eq!(exporter.stats().traces.export.acked, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn force_flush(&self) -> Result<(), SdkError> {
        self.flush_at(None)
    }

    /// [`force_flush`](Self::force_flush) at the [`FlushLevel::Persisted`]
    /// level, whatever the builder chose: `Ok` once everything recorded
    /// before the call is fsynced in each signal's spool (it survives a
    /// crash and a power loss, and is delivered later or by the next
    /// start). A signal without a spool waits for the collector, as
    /// `force_flush` does. It does not collect metrics.
    ///
    /// # Errors
    ///
    /// As [`force_flush`](Self::force_flush); a spool's write or fsync
    /// failure is a [`SdkError::NotDelivered`] naming the file.
    pub fn force_flush_persisted(&self) -> Result<(), SdkError> {
        self.flush_at(Some(FlushLevel::Persisted))
    }

    /// [`force_flush`](Self::force_flush) at the [`FlushLevel::Delivered`]
    /// level, whatever the builder chose: `Ok` once the collector
    /// acknowledged everything recorded before the call.
    ///
    /// # Errors
    ///
    /// As [`force_flush`](Self::force_flush). With a spool, a flush that
    /// runs out of time is a [`SdkError::FlushTimedOut`] whose
    /// [`Waiting::persisted`](crate::sdk::Waiting::persisted) says how many
    /// of the items not yet delivered are safe on disk.
    pub fn force_flush_delivered(&self) -> Result<(), SdkError> {
        self.flush_at(Some(FlushLevel::Delivered))
    }

    fn flush_at(&self, level: Option<FlushLevel>) -> Result<(), SdkError> {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            return Err(SdkError::AlreadyShutdown { signal: Signal::Metrics });
        }
        let mut results = Vec::with_capacity(SIGNALS.len());
        let mut open = Vec::with_capacity(SIGNALS.len());
        for signal in SIGNALS {
            match shared.pipe_barrier(signal, level) {
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
    /// [shutdown timeout](crate::sdk::OtlpExporterBuilder::with_shutdown_timeout).
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
    /// [`PipelineStats::refused_after_shutdown`](crate::sdk::PipelineStats::refused_after_shutdown)) and return
    /// [`SdkError::AlreadyShutdown`].
    ///
    /// # Errors
    ///
    /// The first signal whose shutdown was not clean, in the order metrics,
    /// traces, logs; see [`SdkError`].
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otlp_sink::OtlpExporter;
    /// # use otlp_sink::receiver::Receiver;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// # let receiver = rt.block_on(Receiver::start())?;
    /// let exporter = OtlpExporter::builder().with_endpoint(receiver.endpoint()).build()?;
    /// let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
    /// tracers.tracer("app").in_span("work", |_cx| {});
    ///
    /// // Delivers what is queued, then stops; returns within the timeout.
    /// exporter.shutdown_with_timeout(std::time::Duration::from_secs(5))?;
    /// let traces = exporter.stats().traces;
    /// assert_eq!((traces.sink.pushed, traces.export.acked), (1, 1));
    /// assert_eq!(traces.undelivered().total(), 0, "nothing lost");
    /// // The exporter is done: a later flush says so.
    /// assert!(exporter.force_flush().is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown_with_timeout(&self, timeout: Duration) -> Result<(), SdkError> {
        let result = self.shared.shutdown_pipes(timeout);
        self.shared.stop();
        result
    }

    /// The counters of every signal: what the adapters queued, dropped and
    /// the sinks wrote, and what the collector acknowledged.
    ///
    /// # Example
    ///
    /// ```
    /// use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use otlp_sink::OtlpExporter;
    /// # use otlp_sink::receiver::Receiver;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// # let receiver = rt.block_on(Receiver::start())?;
    /// let exporter = OtlpExporter::builder().with_endpoint(receiver.endpoint()).build()?;
    /// let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
    /// tracers.tracer("app").in_span("work", |_cx| {});
    /// tracers.force_flush()?;
    ///
    /// let traces = exporter.stats().traces;
    /// assert_eq!(traces.sink.pushed, 1, "queued by the span processor");
    /// assert_eq!(traces.export.acked, 1, "acknowledged by the collector");
    /// assert_eq!(traces.undelivered(), Default::default(), "nothing dropped, rejected or failed");
    /// # Ok(())
    /// # }
    /// ```
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
