//! The life of an [`OtlpExporter`]: the reader collects on its own, shutdown
//! is bounded whatever the collector or the application's callbacks do, a
//! second shutdown is refused, adapters refuse data after it, and dropping
//! the last handle delivers what is held.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use otlp_sink::receiver::Reply;
use otlp_sink::{config::RetryPolicy, SdkError, Signal};
use support::background_receiver::BackgroundReceiver;
use support::sdk;

#[test]
fn the_reader_collects_every_interval_without_a_flush() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()).with_export_interval(Duration::from_millis(100)));
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    // Two collections' worth arrive with no flush asked for.
    receiver
        .wait_until(Duration::from_secs(10), |c| c.metrics.acked >= 2 * sdk::METRIC_POINTS)
        .expect("two periodic collections");
    // A collection can straddle two requests (the batch timer and the
    // interval run side by side), so whole collections are checked once
    // shutdown has delivered everything. Cumulative: every collection sends
    // every series again.
    sdk::shutdown(&p).unwrap();
    let counts = receiver.counts();
    assert_eq!(counts.metrics.acked % sdk::METRIC_POINTS, 0, "whole collections: {counts:?}");
}

#[test]
fn shutdown_returns_by_its_timeout_when_the_collector_never_answers() {
    let receiver = BackgroundReceiver::start();
    receiver.set_default(Signal::Traces, Reply::Hang);
    let exporter = sdk::build(
        sdk::builder(&receiver.endpoint())
            .with_timeout(Duration::from_secs(60))
            .with_retry_policy(RetryPolicy::default()),
    );
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = p.tracers.shutdown_with_timeout(timeout).expect_err("the collector never answered");
    let took = started.elapsed();
    assert!(took >= timeout / 2 && took < timeout + Duration::from_millis(500), "shutdown took {took:?}");
    // Every span is accounted for, in the signal's own words.
    let expected = format!(
        "traces shutdown: {0} spans not delivered: {0} still queued or awaiting the collector's answer at the deadline",
        sdk::SPANS
    );
    assert!(format!("{err}").contains(&expected), "{err}");
    for internal in ["actor", "drain"] {
        assert!(!format!("{err}").contains(internal), "{err}");
    }
    let stats = exporter.stats().traces;
    assert_eq!(stats.export.acked, 0);
    assert_eq!(stats.undelivered().unfinished, sdk::SPANS, "{stats:?}");
    assert!(matches!(p.tracers.shutdown(), Err(OTelSdkError::AlreadyShutdown)));
    // The other signals are untouched.
    p.meters.force_flush().expect("metrics still flow");
    assert_eq!(receiver.counts().metrics.acked, sdk::METRIC_POINTS);
}

#[test]
fn metric_shutdown_returns_by_its_timeout_when_a_callback_hangs() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk::providers(&exporter);
    let gate = Arc::new(Mutex::new(()));
    let in_callback = Arc::clone(&gate);
    let _gauge = p
        .meters
        .meter("m")
        .u64_observable_gauge("stuck")
        .with_callback(move |observer| {
            let _wait = in_callback.lock().unwrap();
            observer.observe(1, &[]);
        })
        .build();
    let held = gate.lock().unwrap();
    // SDK 0.33's `SdkMeterProvider::shutdown_with_timeout` ignores its
    // argument and gives the reader the default 5 s.
    let started = Instant::now();
    let err = p.meters.shutdown().expect_err("the final collection never finished");
    let took = started.elapsed();
    drop(held);
    assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
    // The collection had half the budget; the SDK wraps our error in a list.
    assert!(format!("{err:?}").contains("Timeout(2.45s)"), "{err:?}");
    assert_eq!(exporter.stats().metrics.sink.pushed, 0);
    assert!(matches!(p.meters.force_flush(), Err(OTelSdkError::AlreadyShutdown)));
}

fn span(i: u64) -> SpanData {
    let mut trace = [0u8; 16];
    trace[8..].copy_from_slice(&(i + 1).to_be_bytes());
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(trace),
            SpanId::from_bytes((i + 1).to_be_bytes()),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("span {i}")),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("direct").build(),
    }
}

#[test]
fn dropping_the_exporter_delivers_what_is_held_while_adapters_live_on() {
    let receiver = BackgroundReceiver::start();
    // A long sink interval: only a shutdown writes the spans.
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()).with_signal_sink_config(
        Signal::Traces,
        otlp_sink::SinkConfig::default().with_flush_interval(Duration::from_secs(3600)),
    ));
    let processor = exporter.span_processor();
    for i in 0..7 {
        processor.on_end(span(i));
    }
    assert_eq!(receiver.counts().traces.requests, 0, "nothing is written before the drop");
    // As a global subscriber does, something else still holds the processor.
    drop(exporter);
    assert_eq!(receiver.counts().traces.acked, 7, "delivered before the exporter's drop returned");
    processor.on_end(span(7));
    assert!(matches!(processor.force_flush(), Err(OTelSdkError::AlreadyShutdown)));
    drop(processor);
}

#[test]
fn exporter_shutdown_is_idempotent_and_adapters_refuse_data_after_it() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let processor = exporter.span_processor();
    processor.on_end(span(0));
    exporter.shutdown().expect("clean shutdown");
    assert_eq!(receiver.counts().traces.acked, 1);
    exporter.shutdown().expect("a second shutdown has nothing left to do");
    let err = exporter.force_flush().expect_err("a flush after shutdown cannot deliver anything");
    assert!(matches!(err, SdkError::AlreadyShutdown { .. }), "{err:?}");
    processor.on_end(span(1));
    assert_eq!(exporter.stats().traces.refused_after_shutdown, 1);
    assert!(matches!(processor.force_flush(), Err(OTelSdkError::AlreadyShutdown)));
    assert!(matches!(processor.shutdown(), Err(OTelSdkError::AlreadyShutdown)));
    let err = exporter.log_exporter().force_flush().expect_err("logs are shut down too");
    assert!(matches!(err, SdkError::AlreadyShutdown { signal: Signal::Logs }), "{err:?}");
}
