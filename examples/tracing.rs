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
//! receiver, and checks afterwards that the receiver got everything.
//!
//! The pattern for `tracing` users: build the exporter first and hold it
//! until the application is done; install the layers with `.init()`. The
//! global subscriber keeps the providers alive until the process exits, so
//! they are never dropped; the exporter is, and its drop delivers everything
//! still queued, on every signal, within the shutdown timeout. No explicit
//! shutdown is needed.
//!
//! This crate's own diagnostics (its `tracing` warnings when an export fails,
//! and the spans and events of the gRPC stack under it) are made on its
//! export runtime's threads: they reach the console layer, and the span and
//! log processors drop them, so they are never exported back into it.

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
    let Some(endpoint) = collector else {
        let runtime = tokio::runtime::Runtime::new()?;
        let receiver = runtime.block_on(Receiver::start())?;
        println!("sending to the in-process receiver at {}", receiver.endpoint());
        let events = application(Some(receiver.endpoint()))?;
        // `application` returned, and with it the exporter was dropped: what
        // it delivered is at the receiver already.
        let counts = receiver.counts();
        let (spans, records) = (counts.signal(Signal::Traces).acked, counts.signal(Signal::Logs).acked);
        println!("acknowledged by the receiver: {spans} spans, {records} log records");
        runtime.block_on(receiver.shutdown());
        if (spans, records) != (8, events) {
            return Err(format!("expected 8 spans and {events} log records").into());
        }
        return Ok(());
    };
    println!("sending to the collector at {endpoint}");
    application(None)?;
    println!("everything recorded was delivered when the exporter dropped");
    Ok(())
}

/// The application: builds the exporter (from the environment, with the
/// endpoint set in code when given), installs the global subscriber,
/// records, and returns the number of events it logged. It calls no
/// shutdown: the exporter's drop at the end of this function delivers.
fn application(endpoint: Option<String>) -> Result<u64, Box<dyn std::error::Error>> {
    let exporter = match endpoint {
        // Code sets the endpoint; every other OTEL_EXPORTER_OTLP_* variable still applies.
        Some(endpoint) => OtlpExporter::builder().with_endpoint(endpoint).build()?,
        None => OtlpExporter::builder().build()?,
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
    let large = totals.iter().filter(|&&t| t > 40).count() as u64;
    // handle's "order received" and price's "looking up the price", 4 times, and the warnings.
    let events = 8 + large;
    println!("handled 4 orders, totals {totals:?}: 8 spans (handle, price) and {events} events");
    Ok(events)
    // `exporter` drops here and delivers; the global subscriber still holds
    // `tracers` and `loggers`.
}
