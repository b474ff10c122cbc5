//! The spool through the SDK adapters: the builder and
//! `OTLP_SINK_SPOOL_DIR`, both flush levels, a collector outage across a
//! shutdown and the next exporter's start, and the lock at build.

#![cfg(all(feature = "receiver", feature = "sdk", unix))]

mod support;

use std::time::Duration;

use otlp_sink::config::FlushLevel;
use otlp_sink::deliver::GrpcCode;
use otlp_sink::receiver::{Receiver, Reply};
use otlp_sink::sdk::{BuildError, PipelineStats, SdkError};
use otlp_sink::Signal;
use support::sdk;

const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

fn expected(signal: Signal) -> u64 {
    match signal {
        Signal::Metrics => sdk::METRIC_POINTS,
        Signal::Traces => sdk::SPANS,
        Signal::Logs => sdk::LOG_RECORDS,
        _ => unreachable!("three signals"),
    }
}

/// The subdirectory `with_spool_dir` and the variable give each signal.
fn subdir(signal: Signal) -> &'static str {
    match signal {
        Signal::Metrics => "metrics",
        Signal::Traces => "traces",
        Signal::Logs => "logs",
        _ => unreachable!("three signals"),
    }
}

/// `written + replayed == acked + rejected + failed + spool.dropped() + spooled`.
fn assert_accounts(signal: Signal, p: &PipelineStats) {
    let spool = p.spool.unwrap_or_else(|| panic!("{signal:?} has a spool"));
    assert_eq!(
        p.sink.written + spool.replayed,
        p.export.acked + p.export.rejected + p.export.failed + spool.dropped() + spool.spooled,
        "{signal:?}: {p:?}"
    );
}

fn down(receiver: &Receiver) {
    for signal in SIGNALS {
        receiver.set_default(signal, Reply::status(GrpcCode::Unavailable));
    }
}

fn up(receiver: &Receiver) {
    for signal in SIGNALS {
        receiver.set_default(signal, Reply::Ok);
    }
}

#[test]
fn the_environment_variable_spools_every_signal_and_force_flush_means_delivered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let env = move |name: &str| (name == "OTLP_SINK_SPOOL_DIR").then(|| root.clone());
    let builder = sdk::builder(&receiver.endpoint());
    assert_eq!(builder.resolve_spool(Signal::Traces, &env).unwrap().dir(), dir.path().join("traces"));
    let exporter = builder.build_with_lookup(env).expect("builds with a spool per signal");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("delivered");
    let counts = receiver.counts();
    for signal in SIGNALS {
        assert_eq!(counts.signal(signal).acked, expected(signal), "{signal:?} acknowledged at the flush's return");
        assert!(dir.path().join(subdir(signal)).join("lock").exists(), "{signal:?} has its own spool directory");
        let stats = exporter.stats().signal(signal);
        assert_eq!(stats.spool.unwrap().spooled, 0, "{signal:?}");
        assert_accounts(signal, &stats);
    }
    sdk::shutdown(&p).unwrap();
    exporter.shutdown().unwrap();
}

#[test]
fn persisted_returns_while_the_collector_is_down_and_delivered_says_what_is_safe_on_disk() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start()).unwrap();
    down(&receiver);
    let dir = tempfile::tempdir().unwrap();
    let exporter = sdk::build(
        sdk::builder(&receiver.endpoint())
            .with_spool_dir(dir.path())
            .with_flush_level(FlushLevel::Persisted)
            .with_flush_timeout(Duration::from_secs(1)),
    );
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    // The adapters' force_flush is Persisted here: Ok with the collector down.
    sdk::flush(&p).expect("persisted");
    for signal in SIGNALS {
        let spool = exporter.stats().signal(signal).spool.unwrap();
        assert_eq!(spool.spooled, expected(signal), "{signal:?}: {spool:?}");
        assert!(spool.syncs >= 1, "{signal:?}");
    }
    match exporter.force_flush_delivered() {
        Err(SdkError::FlushTimedOut { signal, waiting, .. }) => {
            assert_eq!(waiting.persisted, expected(signal), "{signal:?}: every item waiting is persisted");
        }
        other => panic!("expected a Delivered flush to time out with the collector down, got {other:?}"),
    }
    assert_eq!(receiver.counts().traces.acked, 0);

    up(&receiver);
    exporter.force_flush_delivered().expect("delivered once the collector answers");
    let counts = receiver.counts();
    for signal in SIGNALS {
        assert_eq!(counts.signal(signal).acked, expected(signal), "{signal:?}");
        let stats = exporter.stats().signal(signal);
        assert_eq!(stats.export.failed, 0, "{signal:?}: nothing counted lost in the outage");
        assert_accounts(signal, &stats);
    }
    exporter.force_flush_persisted().expect("nothing new to persist");
    sdk::shutdown(&p).unwrap();
    exporter.shutdown().unwrap();
}

#[test]
fn a_shutdown_during_an_outage_keeps_everything_for_the_next_exporter() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start()).unwrap();
    down(&receiver);
    let dir = tempfile::tempdir().unwrap();
    let first = sdk::build(sdk::builder(&receiver.endpoint()).with_spool_dir(dir.path()));
    let p = sdk::providers(&first);
    sdk::record(&p);
    // The final collection, then the spool keeps what the collector did not take.
    let started = std::time::Instant::now();
    let kept: u64 = match first.shutdown_with_timeout(Duration::from_secs(1)) {
        Err(SdkError::NotDelivered { lost, operation, .. }) => {
            assert_eq!(lost.lost(), 0, "nothing lost: {lost:?} ({operation:?})");
            lost.kept
        }
        other => panic!("expected the shutdown to report what it kept, got {other:?}"),
    };
    assert!(started.elapsed() < Duration::from_secs(3), "bounded: {:?}", started.elapsed());
    assert!(kept > 0);
    for signal in SIGNALS {
        let stats = first.stats().signal(signal);
        assert_eq!(stats.spool.unwrap().spooled, expected(signal), "{signal:?} left on disk");
        assert_accounts(signal, &stats);
    }
    drop(p);
    drop(first);

    up(&receiver);
    let second = sdk::build(sdk::builder(&receiver.endpoint()).with_spool_dir(dir.path()));
    second.force_flush_delivered().expect("what the first exporter left is delivered");
    let counts = receiver.counts();
    for signal in SIGNALS {
        assert_eq!(counts.signal(signal).acked, expected(signal), "{signal:?}: nothing lost, nothing twice");
        let stats = second.stats().signal(signal);
        assert_eq!(stats.spool.unwrap().replayed, expected(signal), "{signal:?}");
        assert_accounts(signal, &stats);
    }
    second.shutdown().unwrap();
}

#[test]
fn a_second_exporter_on_the_same_directory_is_refused_at_build_naming_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = sdk::build(sdk::builder(&receiver.endpoint()).with_spool_dir(dir.path()));
    match sdk::builder(&receiver.endpoint()).with_spool_dir(dir.path()).build_without_env() {
        Err(e @ BuildError::Spool { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&dir.path().join("metrics").display().to_string()), "{text}");
            assert!(text.contains("in use"), "{text}");
        }
        other => panic!("expected the lock to refuse the second exporter, got {other:?}"),
    }
    first.shutdown().unwrap();
}
