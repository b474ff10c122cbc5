//! The OTLP/gRPC drain against the crate's in-process receiver, which scripts
//! the collector's answers: delivery, size splitting, pipelining, retries,
//! throttling, permanent errors, partial success, slow and missing answers.
//! These run on real sockets and real time; timing assertions are only lower
//! bounds that cannot pass early.

#![cfg(feature = "receiver")]

mod support;

use std::time::{Duration, Instant};

use otlp_sink::receiver::{Receiver, ReceiverCounts, Reply};
use otlp_sink::{
    config::{ExporterConfigBuilder, RetryPolicy},
    deliver::{DeliveryStatsHandle, ExportError, GrpcCode, StatusCode},
    otlp::{KeyValue, MetricPoint},
    sink::{DrainErrorKind, FlushError},
    BackgroundSink, ExporterConfig, LogsDrain, MetricsDrain, Signal, SinkConfig, SinkHandle, TracesDrain,
};
use support::errors::chain;
use support::points::Shared;
use tokio_util::sync::CancellationToken;

/// Retries fast enough for tests: 20 ms, 40 ms, ... within 3 s.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_max_elapsed(Duration::from_secs(3))
}

fn config(receiver: &Receiver) -> ExporterConfigBuilder {
    ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_retry_policy(quick_retries())
}

struct Pipeline {
    sink: BackgroundSink<MetricPoint>,
    handle: SinkHandle,
    stats: DeliveryStatsHandle,
}

async fn metrics_pipeline(config: ExporterConfigBuilder, sink_config: SinkConfig) -> Pipeline {
    let config = config.build_without_env().expect("valid exporter config");
    let drain = MetricsDrain::connect(&config).await.expect("drain");
    let stats = drain.stats();
    let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).expect("sink");
    Pipeline { sink, handle, stats }
}

fn push_all(sink: &BackgroundSink<MetricPoint>, points: Vec<MetricPoint>) {
    for point in points {
        sink.try_push(point).unwrap_or_else(|e| panic!("queue refused a point: {e}"));
    }
}

fn big_queue() -> SinkConfig {
    SinkConfig::default().with_queue_capacity(200_000).with_batch_size(2048)
}

fn drain_error(err: FlushError) -> (DrainErrorKind, Option<u64>, String, Option<GrpcCode>) {
    match err {
        FlushError::Drain { source, .. } => {
            let export = std::error::Error::source(&source)
                .and_then(|s| s.downcast_ref::<ExportError>())
                .expect("the drain error's source is an ExportError");
            let code = export.code().map(|code| match code {
                StatusCode::Grpc(code) => code,
                other => panic!("not a gRPC status: {other}"),
            });
            (source.kind(), source.items(), chain(&source), code)
        }
        other => panic!("expected a drain failure, got {other:?}"),
    }
}

#[tokio::test]
async fn flush_returns_after_the_collector_acked_every_point() {
    let receiver = Receiver::start().await.unwrap();
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(10, 1000));
    p.sink.flush().await.expect("flush");
    // No waiting: the flush itself is the barrier.
    let counts = receiver.counts();
    assert_eq!(counts.metrics.acked, 10_000, "{counts:?}");
    let stats = p.stats.snapshot();
    assert_eq!((stats.items_sent, stats.acked, stats.failed, stats.rejected), (10_000, 10_000, 0, 0));
    assert_eq!(stats.in_flight, 0);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_request_stays_under_the_limit_and_the_whole_collection_arrives() {
    const LIMIT: usize = 64 * 1024;
    // The receiver refuses anything larger with OUT_OF_RANGE, like a collector.
    let receiver = Receiver::builder().with_max_message_bytes(LIMIT).start().await.unwrap();
    let p = metrics_pipeline(
        config(&receiver).with_max_request_bytes(LIMIT),
        SinkConfig::default().with_queue_capacity(50_000).with_batch_size(20_000),
    )
    .await;
    push_all(&p.sink, Shared::new().counters(20, 1000));
    p.sink.flush().await.expect("flush");
    let counts = receiver.counts().metrics;
    assert_eq!(counts.acked, 20_000);
    assert_eq!(counts.failed, 0);
    assert!(counts.requests > 10, "a 20 000-point batch must be split, got {} requests", counts.requests);
    assert_eq!(p.stats.snapshot().requests, counts.requests, "no request was retried");
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_point_too_large_for_any_request_is_rejected_and_its_neighbours_arrive() {
    const LIMIT: usize = 16 * 1024;
    let receiver = Receiver::start().await.unwrap();
    let p = metrics_pipeline(config(&receiver).with_max_request_bytes(LIMIT), big_queue()).await;
    let mut points = Shared::new().counters(1, 100);
    points[50].attributes.push(KeyValue::new("blob", "x".repeat(LIMIT * 2)));
    push_all(&p.sink, points);
    let (kind, items, message, code) = drain_error(p.sink.flush().await.unwrap_err());
    assert_eq!(kind, DrainErrorKind::TooLarge);
    assert_eq!(items, Some(1));
    assert_eq!(code, None);
    assert!(message.contains("16384-byte request limit"), "{message}");
    assert_eq!(receiver.counts().metrics.acked, 99);
    let stats = p.stats.snapshot();
    assert_eq!((stats.acked, stats.rejected), (99, 1));
    p.sink.flush().await.expect("the rejection was reported once");
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn unavailable_is_retried_until_the_collector_accepts() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::status(GrpcCode::Unavailable), Reply::status(GrpcCode::Unavailable)]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    p.sink.flush().await.expect("delivered after two retries");
    let counts = receiver.counts().metrics;
    assert_eq!((counts.requests, counts.acked, counts.failed), (3, 10, 20));
    let stats = p.stats.snapshot();
    assert_eq!((stats.requests, stats.retries, stats.acked, stats.failed), (1, 2, 10, 0));
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_is_permanent() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::status(GrpcCode::ResourceExhausted)]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    let (kind, items, message, code) = drain_error(p.sink.flush().await.unwrap_err());
    assert_eq!((kind, items, code), (DrainErrorKind::Permanent, Some(10), Some(GrpcCode::ResourceExhausted)));
    assert!(message.contains("after 1 attempt"), "{message}");
    assert_eq!(receiver.counts().metrics.requests, 1, "not retried");
    assert_eq!(p.stats.snapshot().failed, 10);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_waits_at_least_the_server_delay() {
    let receiver = Receiver::start().await.unwrap();
    let delay = Duration::from_millis(400);
    receiver.script(Signal::Metrics, [Reply::Throttle { code: GrpcCode::ResourceExhausted, delay }]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    let started = Instant::now();
    p.sink.flush().await.expect("delivered after the throttle");
    assert!(started.elapsed() >= delay, "retried after {:?}, before the server's {delay:?}", started.elapsed());
    assert_eq!(receiver.counts().metrics.requests, 2);
    assert_eq!(receiver.counts().metrics.acked, 10);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_argument_is_not_retried_and_is_reported_with_its_code() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::status(GrpcCode::InvalidArgument)]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    let (kind, _, _, code) = drain_error(p.sink.flush().await.unwrap_err());
    assert_eq!((kind, code), (DrainErrorKind::Permanent, Some(GrpcCode::InvalidArgument)));
    assert_eq!(receiver.counts().metrics.requests, 1);
    // The next batch goes through: the drain is not stuck on the failure.
    push_all(&p.sink, Shared::new().counters(1, 5));
    p.sink.flush().await.expect("later data is delivered");
    assert_eq!(receiver.counts().metrics.acked, 5);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn partial_success_is_counted_reported_once_and_not_retried() {
    let receiver = Receiver::start().await.unwrap();
    receiver
        .script(Signal::Metrics, [Reply::PartialSuccess { rejected: 3, message: "3 points had a bad unit".into() }]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    let (kind, items, message, code) = drain_error(p.sink.flush().await.unwrap_err());
    assert_eq!((kind, items, code), (DrainErrorKind::Rejected, Some(3), None));
    assert!(message.contains("3 points had a bad unit"), "{message}");
    assert_eq!(receiver.counts().metrics.requests, 1, "rejected data is never sent again");
    let stats = p.stats.snapshot();
    assert_eq!((stats.acked, stats.rejected, stats.failed), (7, 3, 0));
    p.sink.flush().await.expect("reported once");
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_partial_success_with_nothing_rejected_is_only_a_warning() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::PartialSuccess { rejected: 0, message: "deprecated field".into() }]);
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    p.sink.flush().await.expect("a warning is not a failure");
    assert_eq!(p.stats.snapshot().acked, 10);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn flush_waits_for_slow_answers_and_requests_are_pipelined() {
    let receiver = Receiver::start().await.unwrap();
    let delay = Duration::from_millis(150);
    receiver.set_default(Signal::Metrics, Reply::delayed(delay, Reply::Ok));
    let p = metrics_pipeline(
        config(&receiver).with_max_request_bytes(16 * 1024).with_max_in_flight(4),
        SinkConfig::default().with_queue_capacity(50_000).with_batch_size(50_000),
    )
    .await;
    push_all(&p.sink, Shared::new().counters(4, 500));
    let started = Instant::now();
    p.sink.flush().await.expect("flush");
    let took = started.elapsed();
    let counts = receiver.counts().metrics;
    assert_eq!(counts.acked, 2000, "flush returned before every ack");
    assert!(counts.requests >= 8, "expected the batch split in many requests: {counts:?}");
    assert_eq!(counts.max_concurrent, 4, "requests in flight at once: {counts:?}");
    // Sequential sending would take requests x delay; pipelined, about a quarter.
    assert!(took >= delay, "{took:?}");
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn write_batch_does_not_wait_for_its_own_ack_while_a_slot_is_free() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::delayed(Duration::from_secs(2), Reply::Ok));
    let config = config(&receiver).with_max_in_flight(4).build_without_env().unwrap();
    let mut drain = MetricsDrain::connect(&config).await.unwrap();
    let points = Shared::new().counters(1, 10);
    let started = Instant::now();
    otlp_sink::SinkDrain::write_batch(&mut drain, points).await.unwrap();
    let write_took = started.elapsed();
    assert_eq!(drain.stats().snapshot().in_flight, 1);
    otlp_sink::SinkDrain::flush_durable(&mut drain).await.unwrap();
    assert!(
        write_took < Duration::from_secs(2) && started.elapsed() >= Duration::from_secs(2),
        "write_batch took {write_took:?}; flush_durable returned after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_collector_that_never_answers_hits_the_per_attempt_timeout() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::Hang);
    let retry = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(10))
        .with_max_elapsed(Duration::from_millis(700));
    let p = metrics_pipeline(
        config(&receiver).with_timeout(Duration::from_millis(300)).with_retry_policy(retry),
        big_queue(),
    )
    .await;
    push_all(&p.sink, Shared::new().counters(1, 10));
    let started = Instant::now();
    let (kind, items, message, code) = drain_error(p.sink.flush().await.unwrap_err());
    assert_eq!((kind, items, code), (DrainErrorKind::TimedOut, Some(10), Some(GrpcCode::DeadlineExceeded)));
    assert!(message.contains("gave up after"), "{message}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(5), "flush took {took:?}");
    assert!(receiver.counts().metrics.requests >= 2, "the timeout is retried within the budget");
    assert_eq!(p.stats.snapshot().failed, 10);
    p.handle.shutdown_timeout(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn headers_travel_as_metadata_and_gzip_and_zstd_are_accepted() {
    for compression in [
        otlp_sink::config::Compression::Gzip,
        otlp_sink::config::Compression::Zstd,
        otlp_sink::config::Compression::None,
    ] {
        let receiver = Receiver::start().await.unwrap();
        let p = metrics_pipeline(
            config(&receiver).with_header("authorization", "Bearer t0ken").with_compression(compression),
            big_queue(),
        )
        .await;
        push_all(&p.sink, Shared::new().counters(2, 100));
        p.sink.flush().await.unwrap_or_else(|e| panic!("{compression:?}: {e}"));
        assert_eq!(receiver.counts().metrics.acked, 200, "{compression:?}");
        assert_eq!(receiver.last_header("authorization").as_deref(), Some("Bearer t0ken"));
        p.handle.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn spans_and_log_records_go_to_their_own_services() {
    let receiver = Receiver::start().await.unwrap();
    let config = config(&receiver).build_without_env().unwrap();
    let shared = Shared::new();

    let traces = TracesDrain::connect(&config).await.unwrap();
    let (spans, spans_handle) = BackgroundSink::spawn(traces, big_queue(), CancellationToken::new()).unwrap();
    for span in shared.spans(300) {
        spans.try_push(span).unwrap();
    }
    let logs = LogsDrain::connect(&config).await.unwrap();
    let (records, records_handle) = BackgroundSink::spawn(logs, big_queue(), CancellationToken::new()).unwrap();
    for record in shared.logs(200) {
        records.try_push(record).unwrap();
    }
    spans.flush().await.unwrap();
    records.flush().await.unwrap();
    let ReceiverCounts { metrics, traces, logs, .. } = receiver.counts();
    assert_eq!((metrics.received, traces.acked, logs.acked), (0, 300, 200));
    spans_handle.shutdown().await.unwrap();
    records_handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_delivers_what_is_still_queued() {
    let receiver = Receiver::start().await.unwrap();
    let p = metrics_pipeline(config(&receiver), big_queue()).await;
    push_all(&p.sink, Shared::new().counters(3, 1000));
    p.handle.shutdown().await.expect("clean shutdown");
    assert_eq!(receiver.counts().metrics.acked, 3000);
    let stats = p.stats.snapshot();
    assert_eq!((stats.acked, stats.in_flight), (3000, 0));
}

#[tokio::test]
async fn every_failed_request_is_counted_by_the_flush_that_reports_the_first() {
    let receiver = Receiver::start().await.unwrap();
    receiver
        .script(Signal::Metrics, [Reply::status(GrpcCode::InvalidArgument), Reply::status(GrpcCode::InvalidArgument)]);
    let p = metrics_pipeline(
        config(&receiver).with_max_request_bytes(8 * 1024).with_max_in_flight(1),
        SinkConfig::default().with_queue_capacity(10_000).with_batch_size(10_000),
    )
    .await;
    push_all(&p.sink, Shared::new().counters(1, 400));
    match p.sink.flush().await {
        Err(FlushError::Drain { source, later_failures }) => {
            assert_eq!(source.kind(), DrainErrorKind::Permanent);
            assert_eq!(later_failures, 1, "the second refused request is counted, not lost");
        }
        other => panic!("expected a drain failure, got {other:?}"),
    }
    let counts = receiver.counts().metrics;
    assert!(counts.requests >= 3 && counts.acked > 0, "two refused requests and accepted ones: {counts:?}");
    let stats = p.stats.snapshot();
    assert_eq!((stats.acked, stats.acked + stats.failed), (counts.acked, 400));
    p.sink.flush().await.expect("both failures were reported by the previous flush");
    p.handle.shutdown().await.unwrap();
}
