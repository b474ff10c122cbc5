//! `tracing` spans and events exported as OpenTelemetry spans and log
//! records: `tracing-opentelemetry` turns spans into OpenTelemetry spans,
//! `opentelemetry-appender-tracing` turns events into log records, and this
//! crate's span and log processors send them.
//!
//! ```sh
//! cargo run --example tracing
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example tracing
//! ```
//!
//! Without `OTEL_EXPORTER_OTLP_ENDPOINT` it sends to the crate's in-process
//! receiver. This crate's own diagnostics (its `tracing` warnings when an
//! export fails, and those of the gRPC stack under it) are emitted on its
//! export runtime, where OpenTelemetry is suppressed: they reach the console
//! layer but are never exported back into the exporter.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use otlp_sink::receiver::Receiver;
use otlp_sink::{OtlpExporter, Signal};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[tracing::instrument]
fn handle(order: u32) -> u32 {
    tracing::info!(order, "order received");
    let total = price(order);
    if total > 40 {
        tracing::warn!(order, total, "large order");
    }
    total
}

#[tracing::instrument]
fn price(order: u32) -> u32 {
    tracing::debug!("looking up the price");
    order * 15
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let collector = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.trim().is_empty());
    let mut local = None;
    let exporter = match &collector {
        Some(endpoint) => {
            println!("sending to the collector at {endpoint}");
            OtlpExporter::builder().build()?
        }
        None => {
            let runtime = tokio::runtime::Runtime::new()?;
            let receiver = runtime.block_on(Receiver::start())?;
            println!("sending to the in-process receiver at {}", receiver.endpoint());
            let endpoint = receiver.endpoint();
            local = Some((runtime, receiver));
            // Code sets the endpoint; every other OTEL_EXPORTER_OTLP_* variable still applies.
            OtlpExporter::builder().with_endpoint(endpoint).build()?
        }
    };

    let resource = Resource::builder().with_service_name("otlp-sink-tracing-example").build();
    let tracers = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(exporter.span_processor())
        .build();
    let loggers =
        SdkLoggerProvider::builder().with_resource(resource).with_log_processor(exporter.log_processor()).build();

    // Spans go to tracing-opentelemetry, events to the log bridge, and both
    // to the console: this example's own at DEBUG, other crates' at INFO.
    let filter = Targets::new().with_default(LevelFilter::INFO).with_target(module_path!(), LevelFilter::DEBUG);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_opentelemetry::layer().with_tracer(tracers.tracer("tracing-example")))
        .with(OpenTelemetryTracingBridge::new(&loggers))
        .with(tracing_subscriber::fmt::layer().with_target(false))
        .init();

    let totals: Vec<u32> = (1..=4).map(handle).collect();
    let large = totals.iter().filter(|&&t| t > 40).count();
    println!("handled 4 orders, totals {totals:?}: 8 spans (handle, price) and {} events", 8 + large);

    tracers.force_flush()?;
    loggers.force_flush()?;
    let stats = exporter.stats();
    match &local {
        Some((_, receiver)) => {
            let counts = receiver.counts();
            println!(
                "acknowledged by the receiver: {} spans, {} log records",
                counts.signal(Signal::Traces).acked,
                counts.signal(Signal::Logs).acked
            );
        }
        None => println!(
            "acknowledged by the collector: {} spans, {} log records",
            stats.traces.export.acked, stats.logs.export.acked
        ),
    }

    tracers.shutdown()?;
    loggers.shutdown()?;
    if let Some((runtime, receiver)) = local {
        runtime.block_on(receiver.shutdown());
    }
    Ok(())
}
