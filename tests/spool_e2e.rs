//! End to end, through the SDK adapters with a spool: the collector is down
//! for 60 s (nothing listens on its port) while the application records,
//! longer than two retry budgets; the application shuts down within its
//! bounded timeout; a new exporter starts on the same spool with the
//! collector up. Nothing is lost: the collector's count equals everything
//! recorded, signal by signal.
//!
//! It runs for a minute by design (see `.config/nextest.toml`).

#![cfg(all(feature = "receiver", feature = "sdk", unix))]

mod support;

use std::time::{Duration, Instant};

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use otlp_sink::config::RetryPolicy;
use otlp_sink::receiver::Receiver;
use otlp_sink::sdk::SdkError;
use otlp_sink::{OtlpExporter, Signal};
use support::dead::DeadPort;

const OUTAGE: Duration = Duration::from_secs(60);
const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

#[test]
fn a_sixty_second_outage_across_a_restart_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A retry budget of 20 s: the outage outlasts three of them.
    let retry = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(2))
        .with_max_elapsed(Duration::from_secs(20));
    // Held for the whole test: no other test's receiver can take the port.
    let down = DeadPort::new();
    let first = OtlpExporter::builder()
        .with_endpoint(down.endpoint())
        .with_timeout(Duration::from_millis(500))
        .with_retry_policy(retry)
        .with_export_interval(Duration::from_secs(1))
        .with_shutdown_timeout(Duration::from_secs(3))
        .with_spool_dir(dir.path())
        .build_without_env()
        .unwrap();
    let meters = SdkMeterProvider::builder().with_reader(first.metric_reader()).build();
    let tracers = SdkTracerProvider::builder().with_span_processor(first.span_processor()).build();
    let loggers = SdkLoggerProvider::builder().with_log_processor(first.log_processor()).build();
    let (meter, tracer, logger) = (meters.meter("e2e"), tracers.tracer("e2e"), loggers.logger("e2e"));
    let counter = meter.u64_counter("requests").build();

    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < OUTAGE {
        counter.add(1, &[KeyValue::new("route", format!("/r{}", i % 10))]);
        tracer.in_span("request", |_cx| {});
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_body(format!("request {i}").into());
        logger.emit(record);
        i += 1;
        // Paces the application (about 200 requests a second), not a
        // synchronisation: nothing waits for the exporter here.
        std::thread::sleep(Duration::from_millis(5));
    }
    // A Persisted flush returns while the collector is down.
    first.force_flush_persisted().expect("everything recorded so far is fsynced");

    let shutdown_started = Instant::now();
    let kept = match first.shutdown() {
        Err(SdkError::NotDelivered { lost, .. }) => {
            assert_eq!(lost.lost(), 0, "nothing lost at shutdown: {lost:?}");
            lost.kept
        }
        other => panic!("expected the shutdown to keep what the collector did not get: {other:?}"),
    };
    assert!(shutdown_started.elapsed() < Duration::from_secs(4), "bounded: {:?}", shutdown_started.elapsed());
    let recorded: Vec<u64> = SIGNALS
        .iter()
        .map(|&signal| {
            let stats = first.stats().signal(signal);
            assert_eq!(stats.sink.dropped, 0, "{signal:?}: the queue never overflowed");
            assert_eq!(stats.export.acked + stats.export.failed + stats.export.rejected, 0, "{signal:?}: {stats:?}");
            assert_eq!(stats.spool.unwrap().spooled, stats.sink.pushed, "{signal:?} all on disk: {stats:?}");
            stats.sink.pushed
        })
        .collect();
    assert!(recorded[1] >= 1000, "the application recorded through the outage: {recorded:?}");
    drop((meters, tracers, loggers));
    drop(first);

    let receiver = rt.block_on(Receiver::start()).unwrap();
    let second = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_spool_dir(dir.path())
        .build_without_env()
        .unwrap();
    second.force_flush_delivered().expect("what the first process left is delivered");
    let counts = receiver.counts();
    for (&signal, &recorded) in SIGNALS.iter().zip(&recorded) {
        assert_eq!(counts.signal(signal).acked, recorded, "{signal:?}: the collector has everything recorded");
        let spool = second.stats().signal(signal).spool.unwrap();
        assert_eq!((spool.replayed, spool.spooled, spool.dropped()), (recorded, 0, 0), "{signal:?}");
    }
    // The shutdown's error is the first signal's (metrics): what it kept.
    assert_eq!(kept, recorded[0], "the shutdown said how many metric points it left for the next start");
    second.shutdown().unwrap();
    eprintln!(
        "recorded {recorded:?} (metrics, traces, logs) during a {OUTAGE:?} outage; all delivered after the restart"
    );
}
