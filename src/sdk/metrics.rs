//! The metric adapters: [`OtlpMetricReader`] (this crate's reader, whose
//! `force_flush` is a barrier) and [`OtlpMetricExporter`] (a push exporter
//! for the SDK's `PeriodicReader`).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::collect::{collect_periodically, final_collection_then, Collector};
use super::convert;
use super::error::SdkError;
use super::pipe::inner_deadline;
use super::runtime::RunError;
use super::shared::ExporterState;
use crate::{config::TemporalityPreference, Signal};

/// The SDK's temporality for a preference.
pub(crate) fn sdk_temporality(preference: TemporalityPreference) -> Temporality {
    match preference {
        TemporalityPreference::Delta => Temporality::Delta,
        TemporalityPreference::LowMemory => Temporality::LowMemory,
        _ => Temporality::Cumulative,
    }
}

/// A [`MetricReader`] whose `force_flush` means the collector has it.
///
/// It wraps the SDK's [`ManualReader`] and does the periodic part itself,
/// as a task on the export runtime (not on a thread of the SDK's): every
/// [export interval](crate::sdk::OtlpExporterBuilder::with_export_interval) it
/// collects (on a blocking thread of the export runtime, since collection
/// runs the application's observable callbacks), converts the collection to
/// data points (encoded at once, to the bytes [`MetricPoint`](crate::otlp::MetricPoint)s would give)
/// and queues them in the metrics sink.
///
/// - `force_flush` (what `SdkMeterProvider::force_flush` calls): collect,
///   queue, then the sink's barrier. `Ok` means the collector acknowledged
///   every point of this collection and of every earlier one, and none was
///   dropped. Bounded by the [flush timeout](crate::sdk::OtlpExporterBuilder::with_flush_timeout).
/// - `shutdown_with_timeout`: stops the interval, makes a final collection,
///   then shuts the metrics sink down (everything delivered, client closed),
///   all within the timeout.
///
/// Collections are serialized: the points of one collection are all queued
/// before the next collection starts, so a barrier queued after a collection
/// covers every earlier one. Queueing waits for space (back-pressure, on the
/// export runtime, never on the caller's thread) until the collection's
/// deadline (the interval, or the flush timeout), and past it drops and
/// counts; a flush then reports them ([`SdkError::NotDelivered`]).
///
/// Its `force_flush` and shutdown may be called from any thread, inside a
/// tokio runtime or not: see [`OtlpExporter`](crate::OtlpExporter).
pub struct OtlpMetricReader {
    shared: Arc<ExporterState>,
    collector: Arc<Collector>,
    /// Cancels the interval task when the reader is shut down or dropped.
    interval: Mutex<Option<DropGuard>>,
}

impl fmt::Debug for OtlpMetricReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpMetricReader")
            .field("temporality", &self.shared.settings.temporality)
            .field("interval", &self.shared.settings.export_interval)
            .finish_non_exhaustive()
    }
}

impl OtlpMetricReader {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        let manual = ManualReader::builder().with_temporality(sdk_temporality(shared.settings.temporality)).build();
        let collector = Arc::new(Collector {
            manual,
            sink: shared.metrics.sink.clone(),
            refused: shared.metrics.refused_counter(),
            turn: Arc::new(tokio::sync::Mutex::new(ResourceMetrics::default())),
        });
        // The exporter's own shutdown (its drop included) makes the final
        // collection through this.
        if let Ok(mut collectors) = shared.collectors.lock() {
            collectors.retain(|weak| weak.strong_count() > 0);
            collectors.push(Arc::downgrade(&collector));
        }
        Self { shared, collector, interval: Mutex::new(None) }
    }

    /// Collect, queue and barrier, as one future for the export runtime.
    fn flush_future(&self) -> impl Future<Output = Result<(), SdkError>> + Send + 'static {
        let collector = Arc::clone(&self.collector);
        let barrier = self.shared.metrics.barrier();
        let timeout = inner_deadline(self.shared.settings.flush_timeout);
        async move {
            let collected = collector.collect_and_push(Instant::now() + timeout).await?;
            if collected.refused > 0 {
                return Err(SdkError::AlreadyShutdown { signal: Signal::Metrics });
            }
            barrier.await
        }
    }

    fn stop_interval(&self) {
        if let Ok(mut interval) = self.interval.lock() {
            interval.take();
        }
    }
}

impl MetricReader for OtlpMetricReader {
    /// Registers with the provider's pipeline and starts collecting every
    /// export interval.
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.collector.manual.register_pipeline(pipeline);
        let Ok(mut interval) = self.interval.lock() else { return };
        if interval.is_none() && !self.shared.metrics.is_shut_down() {
            let stop = CancellationToken::new();
            self.shared.runtime.handle().spawn(collect_periodically(
                Arc::clone(&self.collector),
                self.shared.settings.export_interval,
                stop.clone(),
            ));
            *interval = Some(stop.drop_guard());
        }
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.collector.manual.collect(rm)
    }

    /// Collects, queues the points, and returns once the collector has
    /// acknowledged them and everything queued before.
    fn force_flush(&self) -> OTelSdkResult {
        let timeout = self.shared.settings.flush_timeout;
        let result = match self.shared.runtime.run(self.flush_future(), timeout) {
            Ok(result) => result,
            Err(RunError::TimedOut) => Err(SdkError::FlushTimedOut {
                signal: Signal::Metrics,
                timeout,
                waiting: self.shared.metrics.waiting(),
            }),
            Err(other) => Err(SdkError::from_run(other, Signal::Metrics, timeout)),
        };
        result.map_err(Into::into)
    }

    /// Stops collecting, makes a final collection, then shuts the metrics
    /// sink down, delivering everything, within `timeout`: the collection
    /// (and queueing its points) gets half of it, delivery the rest. A
    /// collection still running at its deadline (an observable callback that
    /// hangs) is left behind and reported; its points are refused.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop_interval();
        let Some(job) = self.shared.metrics.take_shutdown_job() else {
            return Err(SdkError::AlreadyShutdown { signal: Signal::Metrics }.into());
        };
        let shutdown = final_collection_then(vec![Arc::clone(&self.collector)], inner_deadline(timeout), job);
        let result = self
            .shared
            .runtime
            .run(shutdown, timeout)
            .map_err(|e| SdkError::from_run(e, Signal::Metrics, timeout))
            .and_then(|r| r);
        result.map_err(Into::into)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.collector.manual.temporality(kind)
    }
}

/// A [`PushMetricExporter`] for the SDK's own `PeriodicReader`.
///
/// `export` converts the collection and queues its points without waiting
/// (a full queue is a counted drop, reported as an error the SDK logs), so
/// the reader's thread never waits on the network. `force_flush` is the
/// metrics sink's barrier and `shutdown_with_timeout` shuts the sink down,
/// delivering everything, within the timeout.
///
/// The SDK's `SdkMeterProvider::force_flush` makes its `PeriodicReader`
/// collect and `export`, but never calls the exporter's `force_flush`: under
/// it, `provider.force_flush()` is *not* a barrier. Call this exporter's
/// `force_flush` (or [`OtlpExporter::force_flush`](crate::OtlpExporter::force_flush))
/// after it, or use [`OtlpMetricReader`] instead. The provider's shutdown
/// does reach this exporter's shutdown.
pub struct OtlpMetricExporter {
    shared: Arc<ExporterState>,
}

impl fmt::Debug for OtlpMetricExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpMetricExporter").field("temporality", &self.shared.settings.temporality).finish()
    }
}

impl OtlpMetricExporter {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { shared }
    }

    /// Converts and queues one collection; never waits.
    fn push(&self, metrics: &ResourceMetrics) -> Result<(), SdkError> {
        let pipe = &self.shared.metrics;
        let mut dropped = 0;
        let mut closed = false;
        for point in convert::encoded_resource_metrics(metrics) {
            if !pipe.push(point) {
                closed |= pipe.sink.is_closed();
                dropped += 1;
            }
        }
        match (closed, dropped) {
            (true, _) => Err(SdkError::AlreadyShutdown { signal: Signal::Metrics }),
            (false, 0) => Ok(()),
            (false, items) => Err(SdkError::dropped_at_export(Signal::Metrics, items)),
        }
    }
}

impl PushMetricExporter for OtlpMetricExporter {
    /// Queues the collection's points and returns at once: the returned
    /// future is already complete.
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.push(metrics).map_err(Into::into))
    }

    /// The metrics sink's barrier.
    fn force_flush(&self) -> OTelSdkResult {
        self.shared.flush(Signal::Metrics).map_err(Into::into)
    }

    /// Shuts the metrics sink down, delivering everything, within `timeout`.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.shutdown(Signal::Metrics, timeout).map_err(Into::into)
    }

    fn temporality(&self) -> Temporality {
        sdk_temporality(self.shared.settings.temporality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preference_maps_to_the_sdk_temporality() {
        assert_eq!(sdk_temporality(TemporalityPreference::Cumulative), Temporality::Cumulative);
        assert_eq!(sdk_temporality(TemporalityPreference::Delta), Temporality::Delta);
        assert_eq!(sdk_temporality(TemporalityPreference::LowMemory), Temporality::LowMemory);
    }
}
