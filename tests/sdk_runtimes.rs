//! `force_flush` and shutdown return, with everything acknowledged, over
//! either transport (OTLP/gRPC, then OTLP/HTTP, in each case), whatever
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
use otlp_sink::sdk::OtlpExporterBuilder;
use otlp_sink::Protocol;
use support::background_receiver::BackgroundReceiver;
use support::sdk;

/// Far more than a flush on loopback takes, far less than the harness's kill.
const BOUND: Duration = Duration::from_secs(10);

/// Both transports, one after the other, against the same receiver.
const PROTOCOLS: [Protocol; 2] = [Protocol::Grpc, Protocol::HttpProtobuf];

/// Runs [`record_flush_and_shut_down_over`] on each of [`PROTOCOLS`].
fn record_flush_and_shut_down(receiver: &BackgroundReceiver) {
    for protocol in PROTOCOLS {
        record_flush_and_shut_down_over(receiver, protocol);
    }
}

/// The exporter builder for `protocol`, aimed at the receiver's listener
/// of that protocol.
fn builder(receiver: &BackgroundReceiver, protocol: Protocol) -> OtlpExporterBuilder {
    let endpoint = match protocol {
        Protocol::HttpProtobuf => receiver.http_endpoint(),
        _ => receiver.endpoint(),
    };
    sdk::builder(&endpoint).with_protocol(protocol)
}

/// Records, flushes every provider, checks the receiver already counted
/// everything (on the listener of `protocol`), then shuts the providers
/// down; everything within [`BOUND`]. Ends by checking the accounting rule
/// of each signal's pipeline. Runs on whatever thread calls it, blocking it.
fn record_flush_and_shut_down_over(receiver: &BackgroundReceiver, protocol: Protocol) {
    let before = receiver.counts();
    let exporter = sdk::build(builder(receiver, protocol));
    let providers = sdk::providers(&exporter);
    sdk::record(&providers);

    let started = Instant::now();
    sdk::flush(&providers).unwrap_or_else(|e| panic!("{protocol:?}: force_flush returns Ok: {e}"));
    let took = started.elapsed();
    assert!(took < BOUND, "{protocol:?}: force_flush took {took:?}");
    // No waiting: when force_flush returns, the collector has acknowledged it all.
    let acked = |c: &ReceiverCounts| {
        (c.metrics.acked - before.metrics.acked, c.traces.acked - before.traces.acked, c.logs.acked - before.logs.acked)
    };
    assert_eq!(
        acked(&receiver.counts()),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS),
        "{protocol:?}: acknowledged per signal when force_flush returned"
    );

    // Recorded after the flush, delivered by the shutdown alone.
    sdk::record(&providers);
    let started = Instant::now();
    sdk::shutdown(&providers).unwrap_or_else(|e| panic!("{protocol:?}: shutdown returns Ok: {e}"));
    assert!(started.elapsed() < BOUND, "{protocol:?}: shutdown took {:?}", started.elapsed());
    let after = receiver.counts();
    assert_eq!(
        acked(&after),
        (2 * sdk::METRIC_POINTS, 2 * sdk::SPANS, 2 * sdk::LOG_RECORDS),
        "{protocol:?}: acknowledged per signal when shutdown returned"
    );
    // Every request of this run came in on the listener of its protocol.
    let requests = |c: &ReceiverCounts| c.metrics.requests + c.traces.requests + c.logs.requests;
    let http = |c: &ReceiverCounts| c.metrics.http_requests + c.traces.http_requests + c.logs.http_requests;
    let (made, over_http) = (requests(&after) - requests(&before), http(&after) - http(&before));
    let expected_http = if protocol == Protocol::HttpProtobuf { made } else { 0 };
    assert!(made >= 3 && over_http == expected_http, "{protocol:?}: {made} requests, {over_http} over HTTP");

    let stats = exporter.stats();
    for (signal, p) in [("metrics", stats.metrics), ("traces", stats.traces), ("logs", stats.logs)] {
        let (s, e) = (p.sink, p.export);
        assert_eq!(s.dropped, 0, "{protocol:?} {signal}: {s:?}");
        assert_eq!(
            e.acked + s.dropped + e.rejected + e.failed + s.abandoned,
            s.pushed,
            "{protocol:?} {signal}: acked + dropped + rejected + failed == pushed: {s:?} {e:?}"
        );
    }
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
/// entirely: nothing of it is tied to the runtime it was built in. Over
/// HTTP, whose connection pool is the likelier to hold on to a runtime.
#[test]
fn built_in_a_current_thread_runtime_used_after_it_is_gone() {
    let receiver = BackgroundReceiver::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (exporter, providers) = runtime.block_on(async {
        let exporter = sdk::build(builder(&receiver, Protocol::HttpProtobuf));
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
