//! What an [`OtlpExporter`](super::OtlpExporter)'s pipelines counted.

use super::error::Undelivered;
use crate::{
    deliver::{DeliveryStats, SpoolStats},
    sink::SinkStats,
    Signal,
};

/// What one signal's adapters did, and what became of it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipelineStats {
    /// The sink's counters: items queued (`pushed`), dropped because the
    /// queue was full, written to the OTLP client, pending.
    pub sink: SinkStats,
    /// The OTLP client's counters (gRPC or HTTP): requests, items sent, acknowledged,
    /// rejected, failed, retries.
    pub export: DeliveryStats,
    /// Items offered after the signal was shut down, refused.
    pub refused_after_shutdown: u64,
    /// Spans and log records made on the exporter's own threads (the
    /// `tracing` spans and events of the gRPC stack under it, seen by
    /// `tracing-opentelemetry` and the log appender), dropped by this
    /// crate's span and log processors so that the exporter never exports
    /// itself. Not part of `sink.pushed`.
    pub suppressed: u64,
    /// The spool's counters, when the signal has one
    /// ([`with_spool_dir`](crate::sdk::OtlpExporterBuilder::with_spool_dir)).
    /// Then `sink.written + spool.replayed == export.acked + export.rejected
    /// + export.failed + spool.dropped() + spool.spooled`.
    pub spool: Option<SpoolStats>,
}

impl PipelineStats {
    /// Everything not delivered so far, by cause.
    pub fn undelivered(&self) -> Undelivered {
        let unfinished = self.export.unfinished;
        Undelivered {
            dropped: self.sink.dropped,
            rejected: self.export.rejected,
            failed: self.export.failed.saturating_sub(unfinished),
            unfinished: unfinished + self.sink.abandoned,
            refused_after_shutdown: self.refused_after_shutdown,
            spool_dropped: self.spool.map_or(0, |s| s.dropped()),
            kept: 0,
        }
    }
}

/// The counters of an [`OtlpExporter`](crate::OtlpExporter), per signal. Items are metric data
/// points, spans and log records.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExporterStats {
    /// Metric data points.
    pub metrics: PipelineStats,
    /// Spans.
    pub traces: PipelineStats,
    /// Log records.
    pub logs: PipelineStats,
}

impl ExporterStats {
    /// The counters of one signal.
    pub fn signal(&self, signal: Signal) -> PipelineStats {
        match signal {
            Signal::Metrics => self.metrics,
            Signal::Traces => self.traces,
            Signal::Logs => self.logs,
        }
    }
}
