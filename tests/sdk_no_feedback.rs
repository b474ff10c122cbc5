//! The exporter's own diagnostics are never exported back into it. With
//! `opentelemetry-appender-tracing` installed globally, every `tracing`
//! event becomes a log record for this crate's log processor, including the
//! warnings its gRPC drain emits when the collector refuses an export. Those
//! are emitted on the export runtime, inside OpenTelemetry's suppression
//! scope, so the SDK drops them: a failing exporter does not feed itself.
//!
//! One test in its own binary: it installs the global subscriber.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use otlp_sink::deliver::GrpcCode;
use otlp_sink::receiver::Reply;
use otlp_sink::Signal;
use support::background_receiver::BackgroundReceiver;
use support::sdk;
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

/// Counts the warnings this crate emits, wherever they are emitted.
struct CountOwnWarnings(Arc<AtomicU64>);

impl<S: tracing::Subscriber> Layer<S> for CountOwnWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target().starts_with("otlp_sink") {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn warnings_of_a_failing_drain_are_not_exported_back_into_it() {
    const EVENTS: u64 = 3;
    let receiver = BackgroundReceiver::start();
    receiver.set_default(Signal::Logs, Reply::status(GrpcCode::InvalidArgument));
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let loggers = SdkLoggerProvider::builder().with_log_processor(exporter.log_processor()).build();
    let warnings = Arc::new(AtomicU64::new(0));
    // Every event of every level and target is bridged, except those of the
    // stand-in collector's threads (in production it is another process).
    // (A dynamic filter: a plain `filter_fn` is cached per callsite.)
    let not_the_collector = dynamic_filter_fn(|_, _| std::thread::current().name() != Some("test-receiver"));
    let subscriber = tracing_subscriber::registry()
        .with(OpenTelemetryTracingBridge::new(&loggers).with_filter(not_the_collector))
        .with(CountOwnWarnings(Arc::clone(&warnings)));
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber of this binary");

    for i in 0..EVENTS {
        tracing::info!(target: "app", i, "application event");
    }
    let err = loggers.force_flush().expect_err("the collector refuses logs");
    assert!(format!("{err}").contains("InvalidArgument"), "{err}");
    assert!(warnings.load(Ordering::Relaxed) >= 1, "the drain warned about the refusal");
    assert_eq!(exporter.stats().logs.sink.pushed, EVENTS, "only the application's events were queued");

    // Had the warnings come back as records, this flush would send them (and
    // fail again, warning again, ...).
    let second = loggers.force_flush();
    let stats = exporter.stats().logs;
    assert_eq!(stats.sink.pushed, EVENTS, "{stats:?}");
    assert!(second.is_ok(), "nothing new to send, nothing new to fail: {second:?}");
    assert_eq!(receiver.counts().logs.requests, 1, "one request, for the application's events");
    let _ = loggers.shutdown();
}
