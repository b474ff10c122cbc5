//! Faults a collector or a network really produces, scripted against the
//! crate's in-process receiver (or a raw TCP peer), each ending with the
//! accounting rule checked exactly after shutdown (see
//! `tests/support/accounting.rs`) and the collector's own count compared
//! with the drain's.
//!
//! Real sockets on 127.0.0.1 and real time; timing assertions are lower
//! bounds that cannot pass early, or deadlines with a wide margin.

#![cfg(feature = "receiver")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otlp_sink::receiver::{Receiver, Reply};
use otlp_sink::{
    config::{ExporterConfigBuilder, RetryPolicy},
    deliver::{ExportError, GrpcCode},
    otlp::{HistogramValue, KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Temporality},
    sink::{DrainErrorKind, FlushError, Overflow, ShutdownError},
    ExporterConfig, Signal, SinkConfig,
};
use support::accounting::{failure, Books, Pipeline};
use support::errors::chain;
use support::points::Shared;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Retries fast enough for tests: 20 ms, 40 ms, ... at most 100 ms apart, within `budget`.
fn quick_retries(budget: Duration) -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(100))
        .with_max_elapsed(budget)
}

/// A peer that accepts TCP connections on 127.0.0.1 and holds them open,
/// reading and discarding whatever arrives, and never writes a byte: not
/// even the HTTP/2 preface. A hung collector, or a firewall that blackholes
/// after the handshake.
struct SilentPeer {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentPeer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (connections, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (c, b) = (Arc::clone(&connections), Arc::clone(&bytes));
        let task = tokio::spawn(async move {
            // Dropped (and every connection with it) when the task is aborted.
            let mut held = JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::Relaxed);
                let b = Arc::clone(&b);
                held.spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        b.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
        Self { addr, connections, bytes, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The per-attempt timeout fires on every attempt, the retry budget runs out
/// before the shutdown deadline, and shutdown returns in time with an error
/// that says what happened: retries exhausted, last status DEADLINE_EXCEEDED
/// from the per-attempt timeout.
#[tokio::test]
async fn a_peer_that_never_answers_fails_each_attempt_on_its_timeout_and_shutdown_says_so() {
    let peer = SilentPeer::start().await;
    let attempt_timeout = Duration::from_millis(300);
    let config = ExporterConfig::builder()
        .with_endpoint(peer.endpoint())
        .with_timeout(attempt_timeout)
        .with_retry_policy(quick_retries(Duration::from_secs(1)));
    let p = Pipeline::start(config, SinkConfig::default()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 100)), 0);

    let deadline = Duration::from_secs(10);
    let started = Instant::now();
    let result = p.handle.shutdown_timeout(deadline).await;
    let took = started.elapsed();

    let err = result.expect_err("nothing was acknowledged");
    let ShutdownError::Drain { source, later_failures } = &err else { panic!("expected a drain failure, got {err:?}") };
    let text = chain(&err);
    assert_eq!((source.items(), *later_failures), (Some(100), 0), "{text}");
    let export = std::error::Error::source(source).and_then(|e| e.downcast_ref::<ExportError>()).unwrap();
    let ExportError::RetriesExhausted { status, attempts, .. } = export else { panic!("{export:?}") };
    assert!(*attempts >= 2, "the timeout is retried within the budget: {attempts} attempt(s)");
    // Every attempt ends on a timeout: the per-attempt one (DEADLINE_EXCEEDED,
    // the last attempt's cut to what is left of the budget), or, when the
    // connection is being remade as the last attempt starts, the connect
    // timeout (the same 300 ms), which tonic reports as CANCELLED.
    match status.grpc_code() {
        Some(GrpcCode::DeadlineExceeded) => {
            assert_eq!(source.kind(), DrainErrorKind::TimedOut, "{text}");
            assert!(text.contains("timed out (100 items)"), "{text}");
            assert!(
                text.contains("no answer within the 300ms per-attempt timeout")
                    || text.contains("left of the retry budget"),
                "{text}"
            );
        }
        Some(GrpcCode::Cancelled) => {
            assert_eq!(source.kind(), DrainErrorKind::RetriesExhausted, "{text}");
            assert!(text.contains("Timeout expired"), "{text}");
        }
        other => panic!("not a timeout: {other:?}: {text}"),
    }
    // Each attempt waited its full timeout, and the budget ended it long before the deadline.
    assert!(took >= attempt_timeout * 2 && took < deadline, "shutdown took {took:?}");
    assert!(peer.connections.load(Ordering::Relaxed) >= 1 && peer.bytes.load(Ordering::Relaxed) > 0);

    let books = Books::read(&p.sink, &p.export);
    books.assert_balanced("silent peer, budget < deadline");
    assert_eq!((books.export.acked, books.export.failed, books.sink.abandoned), (0, 100, 0));
}

/// The shutdown deadline passes while requests still wait on the silent
/// peer and batches wait in the queue: shutdown returns by its deadline with
/// `TimedOut`, and the books still balance: the unanswered and unsent points
/// are failed in the drain, the queued ones abandoned by the sink.
#[tokio::test]
async fn a_shutdown_deadline_before_the_retry_budget_returns_in_time_and_loses_nothing_unaccounted() {
    let peer = SilentPeer::start().await;
    let config = ExporterConfig::builder()
        .with_endpoint(peer.endpoint())
        .with_timeout(Duration::from_millis(200))
        .with_max_in_flight(1)
        .with_retry_policy(quick_retries(Duration::from_secs(30)));
    // Batches of 50: the first is sent, the second waits for the one slot, the rest queue.
    let sink_config = SinkConfig::default().with_batch_size(50).with_queue_capacity(1_000);
    let p = Pipeline::start(config, sink_config).await;
    assert_eq!(p.offer(Shared::new().counters(1, 500)), 0);
    // Until the actor holds the second batch: then the first is on the wire.
    let waited = Instant::now();
    while p.sink.stats().written < 100 {
        assert!(waited.elapsed() < Duration::from_secs(10), "the actor never took two batches: {:?}", p.sink.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let result = p.handle.shutdown_timeout(deadline).await;
    let took = started.elapsed();

    match &result {
        Err(ShutdownError::TimedOut { deadline: d, pending }) => {
            assert_eq!((*d, *pending), (deadline, 400), "{}", chain(result.as_ref().unwrap_err()));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let text = chain(result.as_ref().unwrap_err());
    assert!(text.contains("did not finish within 800ms") && text.contains("400 messages"), "{text}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(2), "shutdown took {took:?}");

    let books = Books::read(&p.sink, &p.export);
    books.assert_balanced("silent peer, deadline < budget");
    // 50 unanswered on the wire and 50 never sent, in the drain; 400 never reached it.
    assert_eq!((books.export.requests, books.export.failed, books.sink.abandoned), (1, 100, 400));
    assert!(books.export.retries >= 1, "the per-attempt timeout fired and was retried: {:?}", books.export);
}

fn receiver_config(receiver: &Receiver, budget: Duration) -> ExporterConfigBuilder {
    ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_retry_policy(quick_retries(budget))
}

fn big_queue() -> SinkConfig {
    SinkConfig::default().with_queue_capacity(100_000).with_batch_size(2_000)
}

/// UNAVAILABLE and RESOURCE_EXHAUSTED, each with a RetryInfo delay longer
/// than the policy's longest backoff (100 ms): each retry waits at least the
/// server's delay, so the flush cannot return before their sum. Had either
/// delay been ignored, the backoff alone would have retried within 100 ms.
#[tokio::test]
async fn unavailable_and_resource_exhausted_with_retry_info_wait_at_least_the_servers_delay() {
    let receiver = Receiver::start().await.unwrap();
    let (first, second) = (Duration::from_millis(500), Duration::from_millis(300));
    receiver.script(
        Signal::Metrics,
        [
            Reply::Throttle { code: GrpcCode::Unavailable, delay: first },
            Reply::Throttle { code: GrpcCode::ResourceExhausted, delay: second },
        ],
    );
    let p = Pipeline::start(receiver_config(&receiver, Duration::from_secs(5)), big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);

    let started = Instant::now();
    p.sink.flush().await.expect("delivered after two throttles");
    let took = started.elapsed();
    assert!(took >= first + second, "retried after {took:?}, before the server's {:?}", first + second);
    let counts = receiver.counts().metrics;
    assert_eq!((counts.requests, counts.acked), (3, 10));

    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("throttled");
    assert_eq!((books.export.acked, books.export.retries), (10, 2));
}

/// INVALID_ARGUMENT is in `tests/grpc_drain.rs`; these are the other codes
/// the OTLP spec says not to retry. Each fails its points at once, is
/// reported with its code (in the error and its text), and later data still
/// goes through.
#[tokio::test]
async fn unauthenticated_permission_denied_and_unimplemented_are_not_retried_and_carry_their_code() {
    for code in [GrpcCode::Unauthenticated, GrpcCode::PermissionDenied, GrpcCode::Unimplemented] {
        let receiver = Receiver::start().await.unwrap();
        receiver.script(Signal::Metrics, [Reply::Status { code, message: format!("scripted {code:?} refusal") }]);
        let p = Pipeline::start(receiver_config(&receiver, Duration::from_secs(3)), big_queue()).await;
        assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);

        let f = failure(&p.sink.flush().await.expect_err("a permanent refusal"));
        assert_eq!((f.kind, f.items, f.code), (DrainErrorKind::Permanent, Some(10), Some(code)), "{code:?}");
        assert!(
            f.chain.contains(&format!("collector refused the request with {code:?} after 1 attempt")),
            "{}",
            f.chain
        );
        assert!(f.chain.contains(&format!("scripted {code:?} refusal")), "the server's message is kept: {}", f.chain);
        assert_eq!(receiver.counts().metrics.requests, 1, "{code:?} must not be retried");

        assert_eq!(p.offer(Shared::new().counters(1, 5)), 0);
        p.sink.flush().await.unwrap_or_else(|e| panic!("after {code:?}, later data: {}", chain(&e)));
        let (result, books) = p.shutdown().await;
        result.expect("clean shutdown");
        books.assert_balanced(&format!("{code:?}"));
        assert_eq!((books.export.acked, books.export.failed, books.export.retries), (5, 10, 0));
        assert_eq!(receiver.counts().metrics.acked, 5);
    }
}

/// Partial successes over many requests: the drain's `rejected` is the sum of
/// what the collector said it refused (a claim above a request's own count is
/// held to that count), `acked` the rest, both equal to the collector's own
/// counts; the flush reports the first partial success.
#[tokio::test]
async fn partial_successes_over_many_requests_add_up_on_both_sides() {
    let receiver = Receiver::start().await.unwrap();
    let partial = |rejected: i64, message: &str| Reply::PartialSuccess { rejected, message: message.into() };
    receiver.script(
        Signal::Metrics,
        [
            partial(3, "3 points had a bad unit"),
            Reply::Ok,
            partial(5, "5 stale points"),
            partial(0, "a warning only"),
            partial(1_000_000, "everything and more"),
            partial(-4, "a negative count is nonsense"),
            partial(2, "2 more"),
        ],
    );
    // About 50 points a request, so the seven scripted answers fall on seven requests.
    let config =
        receiver_config(&receiver, Duration::from_secs(3)).with_max_request_bytes(4 * 1024).with_max_in_flight(1);
    let p = Pipeline::start(config, big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(2, 500)), 0);

    let f = failure(&p.sink.flush().await.expect_err("points were refused"));
    assert_eq!((f.kind, f.items), (DrainErrorKind::Rejected, Some(3)));
    assert!(f.chain.contains("3 points had a bad unit"), "{}", f.chain);

    let (result, books) = p.shutdown().await;
    result.expect("reported by the flush");
    books.assert_balanced("partial successes");
    let counts = receiver.counts().metrics;
    assert!(counts.requests >= 8, "the script must cover seven requests: {counts:?}");
    assert_eq!((books.export.rejected, books.export.acked), (counts.rejected, counts.acked));
    // 3 + 5 + 0 + (a whole request) + 0 + 2.
    let whole = books.export.rejected - 10;
    assert!((10..=100).contains(&whole), "the over-claim is held to its request's points: {books:?}");
    assert_eq!(books.export.acked + books.export.rejected, 1_000);
    assert_eq!(books.export.requests, counts.requests, "nothing rejected was sent again");
}

/// A collector that takes a second per request, and two producers offering
/// far more than the queue holds: with `Overflow::Drop` no producer ever
/// waits (both finish before the collector has answered once), every refusal
/// they saw is a counted drop, and the books balance with the collector's count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_collector_never_blocks_producers_and_every_drop_is_counted() {
    let receiver = Receiver::start().await.unwrap();
    let delay = Duration::from_secs(1);
    receiver.set_default(Signal::Metrics, Reply::delayed(delay, Reply::Ok));
    let config = receiver_config(&receiver, Duration::from_secs(5)).with_max_in_flight(4);
    let sink_config = SinkConfig::default().with_queue_capacity(500).with_batch_size(250).with_overflow(Overflow::Drop);
    let p = Pipeline::start(config, sink_config).await;

    let started = Instant::now();
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let sink = p.sink.clone();
            let points = Shared::new().counters(4, 5_000);
            std::thread::spawn(move || {
                let (mut refused, mut slowest) = (0u64, Duration::ZERO);
                for point in points {
                    let one = Instant::now();
                    match sink.try_push(point) {
                        Ok(()) => {}
                        Err(otlp_sink::sink::TryPushError::Full(_)) => refused += 1,
                        Err(other) => panic!("unexpected refusal {other}"),
                    }
                    slowest = slowest.max(one.elapsed());
                }
                (refused, slowest)
            })
        })
        .collect();
    let results: Vec<(u64, Duration)> = producers.into_iter().map(|t| t.join().unwrap()).collect();
    let pushing = started.elapsed();
    let acked_while_pushing = receiver.counts().metrics.acked;
    let refused: u64 = results.iter().map(|r| r.0).sum();
    let slowest = results.iter().map(|r| r.1).max().unwrap();
    println!("40 000 offers in {pushing:?}, slowest try_push {slowest:?}, {refused} refused");
    assert_eq!(acked_while_pushing, 0, "the producers finished before the first answer: they never waited on it");
    assert!(pushing < delay, "40 000 offers took {pushing:?}, as long as a collector answer");
    let stats = p.sink.stats();
    assert_eq!((stats.pushed, stats.dropped), (40_000, refused), "every refusal a producer saw is a counted drop");
    assert!(refused > 30_000, "the queue holds 500 and the collector is slow: {stats:?}");

    let (result, books) = p.shutdown().await;
    result.expect("what was accepted is delivered");
    books.assert_balanced("slow collector");
    assert_eq!(books.export.acked, 40_000 - refused);
    assert_eq!(receiver.counts().metrics.acked, books.export.acked);
}

/// Every fault at once, on requests in flight together: retryable errors,
/// throttles, permanent refusals, partial successes, a hung request, points
/// the encoder refuses (too large, wrong kind, bad histogram) and overflow
/// drops. After shutdown each point is in exactly one place, and what the
/// drain calls acked is what the collector acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fault_script_keeps_the_books_exact() {
    let receiver = Receiver::start().await.unwrap();
    let partial = |rejected: i64| Reply::PartialSuccess { rejected, message: format!("{rejected} refused") };
    let throttle = |code, ms| Reply::Throttle { code, delay: Duration::from_millis(ms) };
    receiver.script(
        Signal::Metrics,
        [
            Reply::status(GrpcCode::Unavailable),
            throttle(GrpcCode::ResourceExhausted, 50),
            partial(7),
            Reply::status(GrpcCode::InvalidArgument),
            Reply::Ok,
            Reply::Hang,
            Reply::status(GrpcCode::Aborted),
            partial(1_000_000),
            Reply::status(GrpcCode::Unauthenticated),
            throttle(GrpcCode::Unavailable, 30),
            Reply::status(GrpcCode::DataLoss),
            Reply::delayed(Duration::from_millis(50), partial(2)),
            Reply::status(GrpcCode::ResourceExhausted),
            Reply::status(GrpcCode::Cancelled),
            Reply::status(GrpcCode::Unimplemented),
        ],
    );
    let config = receiver_config(&receiver, Duration::from_secs(2))
        .with_timeout(Duration::from_millis(400))
        .with_max_request_bytes(8 * 1024);
    let sink_config = SinkConfig::default().with_queue_capacity(2_000).with_batch_size(500);
    let p = Pipeline::start(config, sink_config).await;

    let shared = Shared::new();
    let mut points = shared.counters(3, 1_000);
    // Refused by the encoder: one too large, two of the wrong kind, one bad histogram.
    points[10].attributes.push(KeyValue::new("blob", "x".repeat(20_000)));
    let counter = points[0].descriptor.clone();
    let wrong = |value| MetricPoint::new(shared.resource.clone(), shared.scope.clone(), counter.clone(), value);
    // All four early in the burst, among the first 2 000 offers, which the queue always takes.
    points.insert(500, wrong(MetricValue::Summary(Default::default())));
    points.insert(1_000, wrong(MetricValue::Histogram(HistogramValue::default())));
    let latency = Arc::new(MetricDescriptor::new("latency", MetricKind::Histogram { temporality: Temporality::Delta }));
    let bad =
        HistogramValue { count: 1, bucket_counts: vec![1], explicit_bounds: vec![1.0, 2.0], ..Default::default() };
    points.insert(
        1_500,
        MetricPoint::new(shared.resource.clone(), shared.scope.clone(), latency, MetricValue::Histogram(bad)),
    );
    let offered = points.len() as u64;
    // All at once into a 2 000-point queue: the rest are overflow drops.
    let refused = p.offer(points);
    assert!(refused > 0, "the burst overflows the queue");

    // Flushes fail (permanent refusals, partial successes): keep going until one is clean.
    let mut flushes = 0;
    while let Err(err) = p.sink.flush().await {
        flushes += 1;
        assert!(flushes < 10, "flush keeps failing: {}", chain(&err));
        assert!(matches!(err, FlushError::Drain { .. }), "{err:?}");
        println!("flush {flushes}: {}", chain(&err));
    }

    let (result, books) = p.shutdown().await;
    result.expect("every failure was reported by a flush");
    books.assert_balanced("mixed faults");
    let counts = receiver.counts().metrics;
    let (s, e) = (books.sink, books.export);
    assert_eq!(s.pushed, offered);
    assert_eq!(s.dropped, refused);
    assert_eq!(e.acked, counts.acked, "the drain's acked is the collector's: {e:?} {counts:?}");
    assert_eq!(e.rejected, counts.rejected + 4, "partial successes plus the four encoder refusals: {e:?} {counts:?}");
    assert!(e.acked > 0 && e.failed > 0 && e.retries > 0, "{e:?}");
}
