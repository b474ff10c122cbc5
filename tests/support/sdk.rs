//! OpenTelemetry SDK pipelines on an [`OtlpExporter`], and telemetry with
//! known counts recorded through the standard API.

use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use otlp_sink::{config::RetryPolicy, sdk::OtlpExporterBuilder, OtlpExporter};

/// Items [`record`] produces per call.
pub const METRIC_POINTS: u64 = 6;
pub const SPANS: u64 = 5;
pub const LOG_RECORDS: u64 = 4;

/// An exporter builder aimed at `endpoint`, with quick retries, a collection
/// interval long enough that only flushes export, and no environment.
pub fn builder(endpoint: &str) -> OtlpExporterBuilder {
    OtlpExporter::builder()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .with_retry_policy(
            RetryPolicy::new()
                .with_initial_delay(Duration::from_millis(20))
                .with_max_delay(Duration::from_millis(200))
                .with_max_elapsed(Duration::from_secs(3)),
        )
        .with_export_interval(Duration::from_secs(3600))
}

/// Builds `builder` without reading the process environment.
pub fn build(builder: OtlpExporterBuilder) -> OtlpExporter {
    builder.build_without_env().expect("exporter builds")
}

/// The three providers, on this crate's reader and processors.
pub struct Providers {
    pub meters: SdkMeterProvider,
    pub tracers: SdkTracerProvider,
    pub loggers: SdkLoggerProvider,
}

pub fn resource() -> Resource {
    Resource::builder_empty().with_service_name("otlp-sink-sdk-tests").build()
}

pub fn providers(exporter: &OtlpExporter) -> Providers {
    Providers {
        meters: SdkMeterProvider::builder().with_resource(resource()).with_reader(exporter.metric_reader()).build(),
        tracers: SdkTracerProvider::builder()
            .with_resource(resource())
            .with_span_processor(exporter.span_processor())
            .build(),
        loggers: SdkLoggerProvider::builder()
            .with_resource(resource())
            .with_log_processor(exporter.log_processor())
            .build(),
    }
}

/// Records [`METRIC_POINTS`] metric points (3 counter series, 2 histogram
/// series, 1 up-down counter), [`SPANS`] spans and [`LOG_RECORDS`] records.
pub fn record(p: &Providers) {
    let meter = p.meters.meter("otlp-sink/tests");
    let counter = meter.u64_counter("requests").build();
    for route in ["/a", "/b", "/c"] {
        counter.add(2, &[KeyValue::new("route", route)]);
    }
    let histogram = meter.f64_histogram("latency").with_unit("ms").build();
    histogram.record(1.5, &[KeyValue::new("ok", true)]);
    histogram.record(7.0, &[KeyValue::new("ok", false)]);
    meter.i64_up_down_counter("in_flight").build().add(3, &[]);

    let tracer = p.tracers.tracer("otlp-sink/tests");
    tracer.in_span("request", |_cx| {
        for step in ["parse", "load", "render", "send"] {
            tracer.in_span(step, |_cx| {});
        }
    });

    let logger = p.loggers.logger("otlp-sink/tests");
    for i in 0..LOG_RECORDS {
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_body(format!("record {i}").into());
        logger.emit(record);
    }
}

/// `force_flush` on every provider; the first error, with the signal.
pub fn flush(p: &Providers) -> Result<(), String> {
    p.meters.force_flush().map_err(|e| format!("metrics: {e}"))?;
    p.tracers.force_flush().map_err(|e| format!("traces: {e}"))?;
    p.loggers.force_flush().map_err(|e| format!("logs: {e}"))?;
    Ok(())
}

/// `shutdown` on every provider; the first error, with the signal.
pub fn shutdown(p: &Providers) -> Result<(), String> {
    p.meters.shutdown().map_err(|e| format!("metrics: {e}"))?;
    p.tracers.shutdown().map_err(|e| format!("traces: {e}"))?;
    p.loggers.shutdown().map_err(|e| format!("logs: {e}"))?;
    Ok(())
}
