//! Thin adapters to `opentelemetry_sdk` 0.33: a metric reader and a metric
//! exporter, span and log processors and exporters, all handed out by one
//! [`OtlpExporter`]. Only with the `sdk` feature (on by default).
//!
//! ```text
//! SdkMeterProvider --collect (reader task)--+
//! SdkTracerProvider --on_end: try_push------+--> BackgroundSink per signal --> OTLP drain (gRPC | HTTP) --> collector
//! SdkLoggerProvider --emit: try_push--------+        (all on the export runtime)
//!
//! provider.force_flush() ---> [collect + queue] ---> barrier through the sink ---> Ok after the acks
//! ```
//!
//! Layout, each file one job, the imports pointing one way (the facade and
//! the builder over the adapters, the adapters over the shared state):
//!
//! - `builder.rs`: [`OtlpExporterBuilder`], the settings and the build.
//! - `exporter.rs`: [`OtlpExporter`], the facade the application holds.
//! - `metrics.rs`, `traces.rs`, `logs.rs`: the adapters, one file per signal.
//! - `shared.rs`: what the exporter and its adapters share.
//! - `pipe.rs`: one signal's sink, counters and reports.
//! - `collect.rs`: the metric reader's collections.
//! - `drains.rs`: the conversion drains behind the spans' and records' sinks.
//! - `runtime.rs`: the export runtime, and why nothing here can deadlock.
//! - `convert/`: pure conversions from the SDK's data to this crate's points.
//! - `stats.rs`, `error.rs`: counters and errors.
//!
//! What the SDK requires, checked against `opentelemetry_sdk` 0.33.1:
//! `PushMetricExporter`, `SpanProcessor`, `SpanExporter`, `LogProcessor` and
//! `LogExporter` need only the `metrics`, `trace` and `logs` features. The
//! `MetricReader` trait, `ManualReader` and the `Pipeline` type a reader
//! registers with are public only with `experimental_metrics_custom_reader`,
//! which this crate enables.

mod builder;
mod collect;
mod convert;
mod drains;
mod error;
mod exporter;
mod logs;
mod metrics;
mod pipe;
mod runtime;
mod shared;
mod stats;
mod traces;

pub use builder::OtlpExporterBuilder;
pub use error::{BuildError, Operation, SdkError, Undelivered, Waiting};
pub use exporter::OtlpExporter;
pub use logs::{OtlpLogExporter, OtlpLogProcessor};
pub use metrics::{OtlpMetricExporter, OtlpMetricReader};
pub use stats::{ExporterStats, PipelineStats};
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
