//! Thin adapters to `opentelemetry_sdk` 0.33: a metric reader and a metric
//! exporter, span and log processors and exporters, all handed out by one
//! [`OtlpExporter`]. Only with the `sdk` feature (on by default).
//!
//! ```text
//! SdkMeterProvider --collect (reader task)--+
//! SdkTracerProvider --on_end: try_push------+--> BackgroundSink per signal --> gRPC drain --> collector
//! SdkLoggerProvider --emit: try_push--------+        (all on the export runtime)
//!
//! provider.force_flush() ---> [collect + queue] ---> barrier through the sink ---> Ok after the acks
//! ```
//!
//! Layout: `exporter.rs` (the builder, the shared state, one sink per
//! signal), `runtime.rs` (the export runtime, and why nothing here can
//! deadlock), `metrics.rs`, `traces.rs`, `logs.rs` (one file per adapter
//! family), `convert/` (pure conversions from the SDK's data to this crate's
//! points), `error.rs`.
//!
//! What the SDK requires, checked against `opentelemetry_sdk` 0.33.1:
//! `PushMetricExporter`, `SpanProcessor`, `SpanExporter`, `LogProcessor` and
//! `LogExporter` need only the `metrics`, `trace` and `logs` features. The
//! `MetricReader` trait, `ManualReader` and the `Pipeline` type a reader
//! registers with are public only with `experimental_metrics_custom_reader`,
//! which this crate enables.

mod convert;
mod error;
mod exporter;
mod logs;
mod metrics;
mod runtime;
mod traces;

pub use error::{BuildError, Operation, SdkError, Undelivered, Waiting};
pub use exporter::{ExporterStats, OtlpExporter, OtlpExporterBuilder, SignalStats};
pub use logs::{OtlpLogExporter, OtlpLogProcessor};
pub use metrics::{OtlpMetricExporter, OtlpMetricReader};
pub use traces::{OtlpSpanExporter, OtlpSpanProcessor};

/// Whether the calling thread is one of an exporter's own: a thread of an
/// [`OtlpExporter`]'s export runtime, where its gRPC stack runs.
///
/// [`OtlpSpanProcessor`] and [`OtlpLogProcessor`] drop every span and log
/// record made on such a thread (the transport's own `tracing` spans and
/// events, seen by `tracing-opentelemetry` and the log appender), so that the
/// exporter never exports itself. The SDK's own `BatchSpanProcessor` and
/// `BatchLogProcessor` cannot tell: with [`OtlpExporter::span_exporter`] or
/// [`OtlpExporter::log_exporter`] under them, filter the `tracing` layers
/// that feed them with this, e.g.
/// `tracing_subscriber::filter::dynamic_filter_fn(|_, _| !otlp_sink::is_export_thread())`.
#[inline]
pub fn is_export_thread() -> bool {
    runtime::ExportRuntime::on_current_thread()
}
