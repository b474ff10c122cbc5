//! `force_flush` and shutdown return, with everything acknowledged, whatever
//! thread calls them: a tokio multi-thread runtime (its body, and a task on
//! it), one with a single worker, a `current_thread` runtime (its body, and a
//! task on it), and a plain thread with no runtime. The failures of the
//! official stack in these places are opentelemetry-rust #2583, #3176 and
//! #3356. (`Drop` at the end of `main` is `tests/sdk_drop_at_exit.rs`.)
//!
//! Each case blocks the thread it runs on, the way the SDK does; the
//! receiver therefore serves from a runtime of its own. A deadlock fails the
//! test through nextest's per-test timeout (see `.config/nextest.toml`),
//! and each call is also timed here against a bound far below it.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::time::{Duration, Instant};

use otlp_sink::receiver::ReceiverCounts;
use support::background_receiver::BackgroundReceiver;
use support::sdk;

/// Far more than a flush on loopback takes, far less than the harness's kill.
const BOUND: Duration = Duration::from_secs(10);

/// Records, flushes every provider, checks the receiver already counted
/// everything, then shuts the providers down; everything within [`BOUND`].
/// Runs on whatever thread calls it, blocking it.
fn record_flush_and_shut_down(receiver: &BackgroundReceiver) {
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let providers = sdk::providers(&exporter);
    sdk::record(&providers);

    let started = Instant::now();
    sdk::flush(&providers).expect("force_flush returns Ok");
    let took = started.elapsed();
    assert!(took < BOUND, "force_flush took {took:?}");
    // No waiting: when force_flush returns, the collector has acknowledged it all.
    let ReceiverCounts { metrics, traces, logs, .. } = receiver.counts();
    assert_eq!(
        (metrics.acked, traces.acked, logs.acked),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS),
        "acknowledged per signal when force_flush returned"
    );

    // Recorded after the flush, delivered by the shutdown alone.
    sdk::record(&providers);
    let started = Instant::now();
    sdk::shutdown(&providers).expect("shutdown returns Ok");
    assert!(started.elapsed() < BOUND, "shutdown took {:?}", started.elapsed());
    let ReceiverCounts { metrics, traces, logs, .. } = receiver.counts();
    assert_eq!(
        (metrics.acked, traces.acked, logs.acked),
        (2 * sdk::METRIC_POINTS, 2 * sdk::SPANS, 2 * sdk::LOG_RECORDS),
        "acknowledged per signal when shutdown returned"
    );
    let stats = exporter.stats();
    assert_eq!((stats.metrics.sink.dropped, stats.traces.sink.dropped, stats.logs.sink.dropped), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_body() {
    let receiver = BackgroundReceiver::start();
    record_flush_and_shut_down(&receiver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runtime_inside_a_task() {
    let receiver = std::sync::Arc::new(BackgroundReceiver::start());
    let r = std::sync::Arc::clone(&receiver);
    tokio::spawn(async move { record_flush_and_shut_down(&r) }).await.expect("the task finished");
}

/// opentelemetry-rust #3356: the only worker blocks in `force_flush`.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn single_worker_runtime_inside_a_task() {
    let receiver = std::sync::Arc::new(BackgroundReceiver::start());
    let r = std::sync::Arc::clone(&receiver);
    tokio::spawn(async move { record_flush_and_shut_down(&r) }).await.expect("the task finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn single_worker_runtime_body() {
    let receiver = BackgroundReceiver::start();
    record_flush_and_shut_down(&receiver);
}

/// opentelemetry-rust #2583 and #3176: the runtime's only thread blocks.
#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_body() {
    let receiver = BackgroundReceiver::start();
    record_flush_and_shut_down(&receiver);
}

#[tokio::test(flavor = "current_thread")]
async fn current_thread_runtime_inside_a_task() {
    let receiver = std::sync::Arc::new(BackgroundReceiver::start());
    let r = std::sync::Arc::clone(&receiver);
    tokio::spawn(async move { record_flush_and_shut_down(&r) }).await.expect("the task finished");
}

#[test]
fn plain_thread_without_a_runtime() {
    let receiver = BackgroundReceiver::start();
    std::thread::spawn(move || {
        assert!(tokio::runtime::Handle::try_current().is_err(), "no runtime here");
        record_flush_and_shut_down(&receiver);
    })
    .join()
    .expect("the thread finished");
}

/// The exporter is built inside one runtime and used from another thread
/// entirely: nothing of it is tied to the runtime it was built in.
#[test]
fn built_in_a_current_thread_runtime_used_after_it_is_gone() {
    let receiver = BackgroundReceiver::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (exporter, providers) = runtime.block_on(async {
        let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
        let providers = sdk::providers(&exporter);
        (exporter, providers)
    });
    drop(runtime);
    sdk::record(&providers);
    sdk::flush(&providers).expect("force_flush returns Ok");
    assert_eq!(receiver.counts().traces.acked, sdk::SPANS);
    sdk::shutdown(&providers).expect("shutdown returns Ok");
    drop(exporter);
}
