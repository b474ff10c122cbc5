//! `provider.force_flush()` is a barrier: it returns only after the
//! collector acknowledged everything recorded before it, and otherwise says
//! what was lost (refused by the collector, dropped for a full queue).
//! The calls run on the test's plain thread; the receiver serves from its
//! own runtime. Timing assertions are lower bounds that cannot pass early.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkError;
use otlp_sink::receiver::Reply;
use otlp_sink::{config::RetryPolicy, deliver::GrpcCode, ExporterConfig, Signal, SinkConfig};
use support::background_receiver::BackgroundReceiver;
use support::sdk;

const DELAY: Duration = Duration::from_millis(300);

#[test]
fn force_flush_returns_only_after_a_delayed_ack_on_every_signal() {
    // One fresh pipeline per signal, flushed right after recording: nothing
    // of it can have been acknowledged before the flush began.
    for signal in [Signal::Metrics, Signal::Traces, Signal::Logs] {
        let receiver = BackgroundReceiver::start();
        receiver.set_default(signal, Reply::delayed(DELAY, Reply::Ok));
        let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
        let p = sdk::providers(&exporter);
        sdk::record(&p);
        let started = Instant::now();
        let (flushed, expected) = match signal {
            Signal::Metrics => (p.meters.force_flush(), sdk::METRIC_POINTS),
            Signal::Traces => (p.tracers.force_flush(), sdk::SPANS),
            _ => (p.loggers.force_flush(), sdk::LOG_RECORDS),
        };
        let took = started.elapsed();
        flushed.unwrap_or_else(|e| panic!("{signal:?}: {e}"));
        assert!(took >= DELAY, "{signal:?} force_flush returned after {took:?}, before the {DELAY:?} ack");
        assert_eq!(receiver.counts().signal(signal).acked, expected, "{signal:?} acknowledged when flush returned");
        sdk::shutdown(&p).unwrap();
    }
}

#[test]
fn a_refused_export_fails_the_flush_with_its_code_and_count_once() {
    let receiver = BackgroundReceiver::start();
    receiver.script(Signal::Traces, [Reply::status(GrpcCode::InvalidArgument)]);
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    let err = p.tracers.force_flush().expect_err("the collector refused the spans");
    let OTelSdkError::InternalFailure(message) = err else { panic!("{err:?}") };
    // The SDK wraps each processor's error; ours keeps the cause chain.
    let lost = format!("traces flush: {0} spans not delivered: {0} in requests the collector refused", sdk::SPANS);
    assert!(message.contains(&lost), "{message}");
    assert!(message.contains(&format!("({} items)", sdk::SPANS)), "{message}");
    assert!(message.contains("InvalidArgument"), "{message}");
    assert_eq!(exporter.stats().traces.export.failed, sdk::SPANS);

    // Reported once; later spans are delivered.
    sdk::record(&p);
    p.tracers.force_flush().expect("the next flush is clean");
    assert_eq!(receiver.counts().traces.acked, sdk::SPANS);
    sdk::shutdown(&p).unwrap();
}

#[test]
fn spans_dropped_for_a_full_queue_fail_the_next_flush_once() {
    const SPANS: u64 = 40;
    let receiver = BackgroundReceiver::start();
    receiver.set_default(Signal::Traces, Reply::delayed(DELAY, Reply::Ok));
    let exporter = sdk::build(
        sdk::builder(&receiver.endpoint())
            .with_max_in_flight(1)
            .with_timeout(ExporterConfig::DEFAULT_TIMEOUT)
            .with_retry_policy(RetryPolicy::default())
            .with_signal_sink_config(Signal::Traces, SinkConfig::default().with_queue_capacity(2).with_batch_size(1)),
    );
    let p = sdk::providers(&exporter);
    let tracer = p.tracers.tracer("t");
    // Forty spans end in microseconds; one request at a time takes 300 ms each.
    for i in 0..SPANS {
        tracer.in_span(format!("span {i}"), |_cx| {});
    }
    let err = p.tracers.force_flush().expect_err("dropped spans are reported");
    let OTelSdkError::InternalFailure(message) = err else { panic!("{err:?}") };
    assert!(message.contains("dropped") && message.contains("queue was full"), "{message}");
    let stats = exporter.stats().traces;
    assert!(stats.sink.dropped > 0, "{stats:?}");
    assert_eq!(stats.sink.pushed, SPANS);
    assert_eq!(receiver.counts().traces.acked + stats.sink.dropped, SPANS, "every span acked or counted as dropped");
    let dropped = stats.sink.dropped;
    assert!(message.contains(&format!("{dropped} spans not delivered: {dropped} dropped because")), "{message}");
    p.tracers.force_flush().expect("reported once");
    sdk::shutdown(&p).unwrap();
}

#[test]
fn force_flush_from_a_metric_callback_is_refused_at_once_instead_of_waiting_on_itself() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk::providers(&exporter);
    let nested: Arc<Mutex<Vec<Result<(), String>>>> = Arc::default();
    let provider = p.meters.clone();
    let seen = Arc::clone(&nested);
    // The callback runs during collection, on the export runtime: a flush
    // there would wait for the collection it is part of.
    let _gauge = p
        .meters
        .meter("m")
        .u64_observable_gauge("g")
        .with_callback(move |observer| {
            seen.lock().unwrap().push(provider.force_flush().map_err(|e| e.to_string()));
            observer.observe(1, &[]);
        })
        .build();
    let started = Instant::now();
    p.meters.force_flush().expect("the outer flush");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let outcomes = std::mem::take(&mut *nested.lock().unwrap());
    assert_eq!(outcomes.len(), 1);
    let err = outcomes[0].as_ref().expect_err("refused");
    assert!(err.contains("export runtime"), "{err}");
    assert_eq!(receiver.counts().metrics.acked, 1);
    p.meters.shutdown().unwrap();
}
