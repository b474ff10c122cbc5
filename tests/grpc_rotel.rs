//! The OTLP/gRPC drains against a real collector: rotel (`--exporter
//! blackhole`), run by `tests/support/rotel.rs`. Each test pushes a known
//! number of points, spans or log records through a `BackgroundSink` and its
//! drain, requires `flush()` to return `Ok`, and then compares three counts:
//! what was sent, what the drain says was acknowledged (`DeliveryStats`), and
//! what rotel says it received (its per-request debug lines, summed).
//!
//! rotel may print a request's line just after answering it, so the tests
//! wait (bounded) until rotel has logged as many requests as the drain made,
//! then require the totals to be equal: an item counted twice or missing fails.

mod support;

use std::time::Duration;

use otlp_sink::{
    config::{Compression, ExporterConfigBuilder, RetryPolicy},
    deliver::ExportError,
    sink::{DrainErrorKind, FlushError},
    ExporterConfig, LogsDrain, MetricsDrain, TracesDrain,
};
use support::delivered::{assert_all_arrived, deliver};
use support::points::Shared;
use support::rotel::{Rotel, Signal};

/// A request limit small enough that every test makes many requests.
const SMALL_REQUESTS: usize = 64 * 1024;

fn config(rotel: &Rotel) -> ExporterConfigBuilder {
    // Retries would show as extra requests at rotel; none is expected, but a
    // transient failure must not pass unseen either (the tests assert 0 retries).
    let retry =
        RetryPolicy::new().with_initial_delay(Duration::from_millis(50)).with_max_elapsed(Duration::from_secs(10));
    ExporterConfig::builder().with_endpoint(rotel.endpoint()).with_retry_policy(retry)
}

#[tokio::test]
async fn thirty_thousand_metric_points_in_many_small_requests_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().counters(30, 1_000), 4_096).await;

    assert_all_arrived(&rotel, Signal::Metrics, 30_000, &delivered);
    let requests = delivered.stats.requests;
    assert!(requests >= 30, "30 000 points under a 64 KiB limit make many requests, got {requests}");
}

#[tokio::test]
async fn twenty_thousand_spans_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = TracesDrain::connect(&config).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().spans(20_000), 4_096).await;

    assert_all_arrived(&rotel, Signal::Traces, 20_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);
}

#[tokio::test]
async fn twenty_thousand_log_records_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_max_request_bytes(SMALL_REQUESTS).build_without_env().unwrap();
    let drain = LogsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().logs(20_000), 4_096).await;

    assert_all_arrived(&rotel, Signal::Logs, 20_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);
}

#[tokio::test]
async fn gzip_compressed_requests_all_arrive() {
    let rotel = Rotel::start();
    let config = config(&rotel).with_compression(Compression::Gzip).with_max_request_bytes(SMALL_REQUESTS);
    let drain = MetricsDrain::connect(&config.build_without_env().unwrap()).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().counters(10, 1_000), 4_096).await;

    assert_all_arrived(&rotel, Signal::Metrics, 10_000, &delivered);
    assert!(delivered.stats.requests >= 10, "{:?}", delivered.stats);
}

/// rotel refuses zstd with UNIMPLEMENTED (see ROTEL.md): the flush reports it
/// as a permanent failure of every point, at once, and nothing is counted as
/// delivered on either side.
#[tokio::test]
async fn zstd_is_refused_by_rotel_and_the_flush_reports_it_as_permanent() {
    let rotel = Rotel::start();
    let zstd = config(&rotel).with_compression(Compression::Zstd);
    let drain = MetricsDrain::connect(&zstd.build_without_env().unwrap()).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().counters(2, 500), 4_096).await;

    let err = delivered.flushed.expect_err("rotel does not accept zstd");
    let FlushError::Drain { source, .. } = &err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!((source.kind(), source.items()), (DrainErrorKind::Permanent, Some(1_000)), "{source}");
    let export = std::error::Error::source(source).and_then(|s| s.downcast_ref::<ExportError>()).expect("ExportError");
    assert_eq!(
        export.code(),
        Some(otlp_sink::deliver::StatusCode::Grpc(otlp_sink::deliver::GrpcCode::Unimplemented)),
        "{export}"
    );
    assert!(matches!(export, ExportError::Refused { attempts: 1, .. }), "{export:?}");
    assert!(export.to_string().contains("zstd"), "{export}");
    let stats = delivered.stats;
    assert_eq!((stats.requests, stats.acked, stats.failed, stats.retries), (1, 0, 1_000, 0));
    // Not retried: with a first retry delay of 50 ms a retry loop would run
    // for the 10 s budget.
    assert!(delivered.took < Duration::from_secs(5), "{:?}", delivered.took);

    // rotel prints nothing for a refused request. To know it counted nothing
    // (and not merely that its line is late), send a marker after it: once
    // the marker's line is in, the zstd request's would be too.
    let plain = config(&rotel).build_without_env().unwrap();
    let marker = MetricsDrain::connect(&plain).await.unwrap();
    let marker_stats = marker.stats();
    let delivered = deliver(marker, marker_stats, Shared::new().counters(1, 7), 4_096).await;
    assert_all_arrived(&rotel, Signal::Metrics, 7, &delivered);
    assert_eq!(rotel.requests(), 1, "only the marker was received: {}", rotel.counts());
}

/// 140 counters x 1 000 series make about 10 MB of OTLP (73 bytes a point
/// with this encoder: 100 counters would be 7.3 MB), one collection handed to
/// the drain as one batch. A one-request-per-collection exporter
/// would be refused by rotel's 4 MiB limit and lose it all; the drain's
/// default request limit (4 MiB) splits it, and every point arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_collection_arrives_whole_under_the_default_4_mib_limit() {
    const POINTS: u64 = 140_000;
    let rotel = Rotel::start();
    let config = config(&rotel).build_without_env().unwrap();
    assert_eq!(config.max_request_bytes(), 4 * 1024 * 1024, "the default limit");
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();

    let delivered = deliver(drain, stats, Shared::new().counters(140, 1_000), POINTS as usize).await;

    assert_all_arrived(&rotel, Signal::Metrics, POINTS, &delivered);
    let stats = delivered.stats;
    assert!(stats.bytes > 10_000_000, "the collection is about 10 MB: {} bytes", stats.bytes);
    assert!(stats.requests >= 3, "over twice the limit, so at least 3 requests: {stats:?}");
}
