//! The OTLP/HTTP drains against a real collector's OTLP/HTTP receiver:
//! rotel (`--otlp-http-endpoint`, `--exporter blackhole`), run by
//! `tests/support/rotel.rs`. The twin of `tests/grpc_rotel.rs`: each test
//! pushes a known number of points, spans or log records through a
//! `BackgroundSink` and its drain on `Protocol::HttpProtobuf`, requires
//! `flush()` to return `Ok`, and then compares what was sent, what the drain
//! says was acknowledged, and what rotel says it received, request for
//! request.

mod support;

use std::time::Duration;

use otlp_sink::config::{Compression, ExporterConfigBuilder, RetryPolicy};
use otlp_sink::{ExporterConfig, LogsDrain, MetricsDrain, Protocol, TracesDrain};
use support::delivered::{assert_all_arrived, deliver};
use support::points::Shared;
use support::rotel::{Rotel, Signal};

/// A request limit small enough that every test makes many requests.
const SMALL_REQUESTS: usize = 64 * 1024;

fn config(rotel: &Rotel) -> ExporterConfigBuilder {
    // No retry is expected (the tests assert 0), but a transient failure
    // must not pass unseen either.
    let retry =
        RetryPolicy::new().with_initial_delay(Duration::from_millis(50)).with_max_elapsed(Duration::from_secs(10));
    ExporterConfig::builder()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint(rotel.http_endpoint())
        .with_retry_policy(retry)
}

#[tokio::test]
async fn thirty_thousand_metric_points_over_http_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().counters(30, 1_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Metrics, 30_000, &delivered);
    assert!(delivered.stats.requests >= 30, "{:?}", delivered.stats);
}

#[tokio::test]
async fn twenty_thousand_spans_over_http_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = TracesDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().spans(20_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Traces, 20_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);
}

#[tokio::test]
async fn twenty_thousand_log_records_over_http_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = LogsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().logs(20_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Logs, 20_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);
}

/// gzip bodies, all three signals, to one rotel: each signal's count exact.
#[tokio::test]
async fn gzip_bodies_of_all_three_signals_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel)
        .with_compression(Compression::Gzip)
        .with_max_request_bytes(SMALL_REQUESTS)
        .build_without_env()
        .unwrap();

    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().counters(10, 1_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Metrics, 10_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);

    let drain = TracesDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().spans(5_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Traces, 5_000, &delivered);

    let drain = LogsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().logs(5_000), 4_096).await;
    assert_all_arrived(&rotel, Signal::Logs, 5_000, &delivered);
}

/// About 10 MB of OTLP in one batch (one collection), over HTTP: cut under
/// the default 4 MiB cap, every point arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_collection_arrives_whole_over_http() {
    const POINTS: u64 = 140_000;
    let rotel = Rotel::start();
    let config = config(&rotel).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let delivered = deliver(drain, stats, Shared::new().counters(140, 1_000), POINTS as usize).await;
    assert_all_arrived(&rotel, Signal::Metrics, POINTS, &delivered);
    let stats = delivered.stats;
    assert!(stats.bytes > 10_000_000, "about 10 MB: {} bytes", stats.bytes);
    assert!(stats.requests >= 3, "over twice the cap, so at least 3 requests: {stats:?}");
}
