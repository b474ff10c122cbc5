//! The faults of `tests/faults.rs`, and those only HTTP has, over OTLP/HTTP:
//! this crate's drains on `Protocol::HttpProtobuf` against the in-process
//! receiver's HTTP listener, scripted per request. Each test ends with the
//! accounting rule checked exactly after shutdown (see
//! `tests/support/accounting.rs`) and the collector's own count compared
//! with the drain's.
//!
//! Real sockets on 127.0.0.1 and real time; timing assertions are lower
//! bounds measured at the receiver (from one attempt's arrival to the
//! next's), which cannot pass early, or deadlines with a wide margin.

#![cfg(feature = "receiver")]

mod support;

use std::time::{Duration, Instant};

use otlp_sink::config::{Compression, ExporterConfigBuilder, RetryPolicy};
use otlp_sink::deliver::{ExportError, GrpcCode, StatusCode};
use otlp_sink::receiver::{HttpReply, Receiver, Reply, RetryAfter};
use otlp_sink::sink::{DrainErrorKind, ShutdownError};
use otlp_sink::{ExporterConfig, Protocol, Signal, SinkConfig};
use support::accounting::{failure, Pipeline};
use support::errors::chain;
use support::points::Shared;

/// Retries fast enough for tests: 20 ms, 40 ms, ... at most 100 ms apart,
/// within `budget`. Any wait of a second or more is the server's.
fn quick_retries(budget: Duration) -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(100))
        .with_max_elapsed(budget)
}

/// A drain config on OTLP/HTTP, aimed at the receiver's HTTP listener.
fn http_config(receiver: &Receiver, budget: Duration) -> ExporterConfigBuilder {
    ExporterConfig::builder()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint(receiver.http_endpoint())
        .with_retry_policy(quick_retries(budget))
}

fn big_queue() -> SinkConfig {
    SinkConfig::default().with_queue_capacity(200_000).with_batch_size(2_000)
}

/// The gaps between consecutive arrivals of `signal`'s requests.
fn gaps(receiver: &Receiver, signal: Signal) -> Vec<Duration> {
    receiver.arrivals(signal).windows(2).map(|w| w[1] - w[0]).collect()
}

/// Plain OTLP/HTTP: every point acknowledged on the HTTP listener (none on
/// gRPC), with the specification's content type and this crate's user agent.
#[tokio::test]
async fn points_are_delivered_over_http_and_counted_on_the_http_listener() {
    let receiver = Receiver::start().await.unwrap();
    let p = Pipeline::start(http_config(&receiver, Duration::from_secs(3)), big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(3, 1_000)), 0);
    p.sink.flush().await.expect("delivered");
    let c = receiver.counts().metrics;
    assert_eq!((c.acked, c.http_requests, c.requests, c.refused), (3_000, c.requests, c.requests, 0), "{c:?}");
    assert_eq!(receiver.last_header("content-type").as_deref(), Some("application/x-protobuf"));
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("plain HTTP");
    assert_eq!((books.export.acked, books.export.requests), (3_000, c.requests));
}

/// gzip over HTTP: `Content-Encoding: gzip`, and the receiver's count (of
/// what it gunzipped and decoded) is exact.
#[tokio::test]
async fn gzip_bodies_are_delivered_and_counted_exactly() {
    let receiver = Receiver::start().await.unwrap();
    let config = http_config(&receiver, Duration::from_secs(3)).with_compression(Compression::Gzip);
    let p = Pipeline::start(config, big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(2, 2_500)), 0);
    p.sink.flush().await.expect("delivered");
    assert_eq!(receiver.last_header("content-encoding").as_deref(), Some("gzip"));
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("gzip over HTTP");
    assert_eq!((books.export.acked, receiver.counts().metrics.acked), (5_000, 5_000));
}

/// 503 with `Retry-After: 1`: the second attempt arrives at least a second
/// after the first, ten times the policy's longest backoff.
#[tokio::test]
async fn a_503_with_retry_after_one_second_is_retried_no_sooner() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::Http(HttpReply::new(503).with_retry_after(RetryAfter::Seconds(1)))]);
    let p = Pipeline::start(http_config(&receiver, Duration::from_secs(5)), big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    p.sink.flush().await.expect("delivered on the second attempt");
    let gaps = gaps(&receiver, Signal::Metrics);
    assert_eq!(gaps.len(), 1, "two attempts");
    assert!(gaps[0] >= Duration::from_secs(1), "retried {:?} after the 503", gaps[0]);
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("503 Retry-After: 1");
    assert_eq!((books.export.acked, books.export.retries), (10, 1));
}

/// 429 with an HTTP-date two seconds ahead (rounded down to the second when
/// written): the retry waits until that date, so more than a second.
#[tokio::test]
async fn a_429_with_an_http_date_is_retried_no_sooner_than_that_date() {
    let receiver = Receiver::start().await.unwrap();
    let reply = HttpReply::new(429).with_retry_after(RetryAfter::DateIn(Duration::from_secs(2)));
    receiver.script(Signal::Metrics, [Reply::Http(reply)]);
    let p = Pipeline::start(http_config(&receiver, Duration::from_secs(6)), big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    p.sink.flush().await.expect("delivered on the second attempt");
    let gaps = gaps(&receiver, Signal::Metrics);
    assert_eq!(gaps.len(), 1, "two attempts");
    assert!(gaps[0] >= Duration::from_secs(1), "retried {:?} after the 429", gaps[0]);
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("429 HTTP-date");
    assert_eq!((books.export.acked, books.export.retries), (10, 1));
}

/// 400 and 413 (and 401, 403, 404, 500, as the specification lists every
/// other status as permanent): one request each, reported with the HTTP
/// status and the body's `google.rpc.Status` message; later data still
/// goes through.
#[tokio::test]
async fn permanent_statuses_are_not_retried_and_carry_their_status_and_message() {
    for status in [400, 413, 401, 403, 404, 500] {
        let receiver = Receiver::start().await.unwrap();
        let message = format!("scripted {status} refusal");
        receiver.script(Signal::Metrics, [Reply::Http(HttpReply::new(status).with_message(&message))]);
        let p = Pipeline::start(http_config(&receiver, Duration::from_secs(3)), big_queue()).await;
        assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);

        let f = failure(&p.sink.flush().await.expect_err("a permanent refusal"));
        assert_eq!((f.kind, f.items, f.status), (DrainErrorKind::Permanent, Some(10), Some(StatusCode::Http(status))));
        assert!(
            f.chain.contains(&format!("collector refused the request with HTTP {status} after 1 attempt")),
            "{}",
            f.chain
        );
        assert!(f.chain.contains(&message), "the body's message is kept: {}", f.chain);
        assert_eq!(receiver.counts().metrics.requests, 1, "HTTP {status} must not be retried");

        assert_eq!(p.offer(Shared::new().counters(1, 5)), 0);
        p.sink.flush().await.unwrap_or_else(|e| panic!("after {status}, later data: {}", chain(&e)));
        let (result, books) = p.shutdown().await;
        result.expect("clean shutdown");
        books.assert_balanced(&format!("HTTP {status}"));
        assert_eq!((books.export.acked, books.export.failed, books.export.retries), (5, 10, 0));
    }
}

/// A real 413: the client's cap is above the receiver's limit, so a request
/// over the limit is refused before it is decoded. Permanent, one request,
/// counted by the receiver as refused and not as received.
#[tokio::test]
async fn a_request_over_the_receivers_limit_gets_a_real_413_and_is_not_retried() {
    let receiver = Receiver::builder().with_max_message_bytes(16 * 1024).start().await.unwrap();
    let config = http_config(&receiver, Duration::from_secs(3)).with_max_request_bytes(1024 * 1024);
    let p = Pipeline::start(config, big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 1_000)), 0);
    let f = failure(&p.sink.flush().await.expect_err("too large"));
    assert_eq!((f.kind, f.status), (DrainErrorKind::Permanent, Some(StatusCode::Http(413))), "{}", f.chain);
    assert!(f.chain.contains("over 16384 bytes"), "{}", f.chain);
    let c = receiver.counts().metrics;
    assert_eq!((c.refused, c.requests), (1, 0), "{c:?}");
    let (result, books) = p.shutdown().await;
    result.expect("reported by the flush");
    books.assert_balanced("real 413");
    assert_eq!((books.export.failed, books.export.requests, books.export.retries), (1_000, 1, 0));
}

/// Bodies that are not protobuf: a proxy's HTML on a 502 is retried (the
/// status decides) and the retry delivers; binary junk on a 400 is reported
/// with the status and what the body was; a 200 whose body does not decode
/// fails its points (the collector may or may not have them: the client
/// cannot tell) without a retry.
#[tokio::test]
async fn bodies_that_are_not_protobuf_are_reported_without_a_panic() {
    let receiver = Receiver::start().await.unwrap();
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    receiver.script(
        Signal::Metrics,
        [
            Reply::Http(HttpReply::new(502).with_raw_body("text/html", html)),
            Reply::Ok,
            Reply::Http(HttpReply::new(400).with_raw_body("application/octet-stream", vec![0xff, 0x00, 0x07, 0x80])),
            Reply::Http(HttpReply::new(200).with_raw_body("application/x-protobuf", "fine, thanks")),
        ],
    );
    let config = http_config(&receiver, Duration::from_secs(3)).with_max_in_flight(1);
    let p = Pipeline::start(config, big_queue()).await;

    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    p.sink.flush().await.expect("the 502 was retried");
    assert_eq!(receiver.counts().metrics.requests, 2);

    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    let f = failure(&p.sink.flush().await.expect_err("400 is permanent"));
    assert_eq!((f.kind, f.status), (DrainErrorKind::Permanent, Some(StatusCode::Http(400))), "{}", f.chain);
    assert!(f.chain.contains("not a protobuf google.rpc.Status"), "{}", f.chain);

    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    let err = p.sink.flush().await.expect_err("an undecodable success");
    let text = chain(&err);
    assert!(text.contains("undecodable body"), "{text}");
    let f = failure(&err);
    assert_eq!((f.kind, f.items), (DrainErrorKind::Permanent, Some(10)), "{text}");
    assert_eq!(receiver.counts().metrics.requests, 4, "neither is retried");

    let (result, books) = p.shutdown().await;
    result.expect("reported by the flushes");
    books.assert_balanced("bodies that are not protobuf");
    assert_eq!((books.export.acked, books.export.failed, books.export.retries), (10, 20, 1));
}

/// A server that closes the connection halfway through its response: the
/// attempt is retried (the request may not have arrived) on a new
/// connection, and the retry delivers.
#[tokio::test]
async fn a_connection_closed_mid_response_is_retried_and_delivers() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::CloseMidResponse, Reply::CloseMidResponse]);
    let p = Pipeline::start(http_config(&receiver, Duration::from_secs(3)), big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    p.sink.flush().await.expect("delivered on the third attempt");
    let c = receiver.counts().metrics;
    // The receiver counts what it answered: two cut answers, then one whole.
    assert_eq!((c.requests, c.failed, c.acked), (3, 20, 10), "{c:?}");
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("close mid-response");
    assert_eq!((books.export.acked, books.export.retries), (10, 2));
}

/// A server that accepts the request and never answers: every attempt ends
/// on the per-attempt timeout, the retry budget ends the retries, and the
/// shutdown returns long before its deadline, reporting the timeout.
#[tokio::test]
async fn a_server_that_never_answers_is_bounded_by_the_per_attempt_timeout() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::Hang);
    let attempt_timeout = Duration::from_millis(300);
    let config = http_config(&receiver, Duration::from_secs(1)).with_timeout(attempt_timeout);
    let p = Pipeline::start(config, big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 100)), 0);

    let deadline = Duration::from_secs(10);
    let started = Instant::now();
    let result = p.handle.shutdown_timeout(deadline).await;
    let took = started.elapsed();

    let err = result.expect_err("nothing was acknowledged");
    let text = chain(&err);
    let ShutdownError::Drain { source, .. } = &err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!((source.kind(), source.items()), (DrainErrorKind::TimedOut, Some(100)), "{text}");
    let export = std::error::Error::source(source).and_then(|e| e.downcast_ref::<ExportError>()).unwrap();
    let ExportError::RetriesExhausted { status, attempts, .. } = export else { panic!("{export:?}") };
    assert_eq!(status.code(), StatusCode::TimedOut, "{text}");
    assert!(*attempts >= 2, "the timeout is retried within the budget: {attempts} attempt(s)");
    assert!(took >= attempt_timeout * 2 && took < deadline, "shutdown took {took:?}");
    let c = receiver.counts().metrics;
    assert_eq!(c.requests, u64::from(*attempts), "each attempt reached the receiver: {c:?}");
    assert_eq!(c.acked, 0);

    let books = support::accounting::Books::read(&p.sink, &p.export);
    books.assert_balanced("hung HTTP server");
    assert_eq!((books.export.acked, books.export.failed), (0, 100));
}

/// Partial successes over many HTTP requests: the drain's `rejected` is the
/// sum of what the collector said it refused (a claim above a request's own
/// count is held to that count), `acked` the rest, both equal to the
/// collector's own counts.
#[tokio::test]
async fn partial_successes_over_http_add_up_on_both_sides() {
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
    let config = http_config(&receiver, Duration::from_secs(3)).with_max_request_bytes(4 * 1024).with_max_in_flight(1);
    let p = Pipeline::start(config, big_queue()).await;
    assert_eq!(p.offer(Shared::new().counters(2, 500)), 0);

    let f = failure(&p.sink.flush().await.expect_err("points were refused"));
    assert_eq!((f.kind, f.items), (DrainErrorKind::Rejected, Some(3)));
    assert!(f.chain.contains("3 points had a bad unit"), "{}", f.chain);

    let (result, books) = p.shutdown().await;
    result.expect("reported by the flush");
    books.assert_balanced("partial successes over HTTP");
    let counts = receiver.counts().metrics;
    assert!(counts.http_requests >= 8, "the script must cover seven requests: {counts:?}");
    assert_eq!((books.export.rejected, books.export.acked), (counts.rejected, counts.acked));
    let whole = books.export.rejected - 10;
    assert!((10..=100).contains(&whole), "the over-claim is held to its request's points: {books:?}");
    assert_eq!(books.export.acked + books.export.rejected, 1_000);
    assert_eq!(books.export.requests, counts.requests, "nothing rejected was sent again");
}

/// 100 000 points in one batch (one collection's worth) over HTTP: cut into
/// requests under the cap, each accepted under the receiver's limit of the
/// same size, all delivered; every body the receiver recorded is under the
/// cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_points_in_one_collection_are_cut_under_the_cap() {
    let cap = ExporterConfig::DEFAULT_MAX_REQUEST_BYTES;
    let receiver = Receiver::builder().with_max_message_bytes(cap).with_recording().start().await.unwrap();
    let sink_config = SinkConfig::default().with_queue_capacity(100_000).with_batch_size(100_000);
    let p = Pipeline::start(http_config(&receiver, Duration::from_secs(10)), sink_config).await;
    assert_eq!(p.offer(Shared::new().counters(100, 1_000)), 0);
    p.sink.flush().await.unwrap_or_else(|e| panic!("every point delivered: {}", chain(&e)));

    let c = receiver.counts().metrics;
    let sizes: Vec<usize> = receiver.recorded(Signal::Metrics).iter().map(Vec::len).collect();
    let largest = sizes.iter().copied().max().unwrap();
    println!("100 000 points in {} HTTP requests, the largest {largest} bytes (cap {cap})", sizes.len());
    assert_eq!((c.acked, c.refused, c.http_requests), (100_000, 0, sizes.len() as u64), "{c:?}");
    assert!(sizes.len() > 1, "more than one cap's worth: {sizes:?}");
    assert!(largest <= cap, "a body of {largest} bytes over the {cap}-byte cap");
    assert_eq!(sizes.iter().sum::<usize>() as u64, c.bytes);

    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("100 000 points over HTTP");
    assert_eq!(books.export.acked, 100_000);
}

/// Every fault at once over HTTP, on requests in flight together: retryable
/// statuses with and without `Retry-After`, permanent ones, gRPC statuses
/// carried over, partial successes, a close mid-response, a hung request,
/// bodies that are not protobuf, and overflow drops. After shutdown each
/// point is in exactly one place, and what the drain calls acked is what the
/// collector acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fault_script_over_http_keeps_the_books_exact() {
    let receiver = Receiver::start().await.unwrap();
    let partial = |rejected: i64| Reply::PartialSuccess { rejected, message: format!("{rejected} refused") };
    let http = |status| Reply::Http(HttpReply::new(status));
    receiver.script(
        Signal::Metrics,
        [
            http(503),
            Reply::Http(HttpReply::new(429).with_retry_after(RetryAfter::Seconds(0))),
            partial(7),
            http(400),
            Reply::Ok,
            Reply::Hang,
            Reply::CloseMidResponse,
            partial(1_000_000),
            Reply::status(GrpcCode::Unauthenticated),
            Reply::Throttle { code: GrpcCode::Unavailable, delay: Duration::from_millis(30) },
            Reply::Http(HttpReply::new(502).with_raw_body("text/html", "<html>bad gateway</html>")),
            Reply::delayed(Duration::from_millis(50), partial(2)),
            http(504),
            http(413),
            Reply::Http(HttpReply::new(200).with_raw_body("text/plain", "ok")),
        ],
    );
    let config = http_config(&receiver, Duration::from_secs(3))
        .with_timeout(Duration::from_millis(400))
        .with_max_request_bytes(8 * 1024);
    let sink_config = SinkConfig::default().with_queue_capacity(2_000).with_batch_size(500);
    let p = Pipeline::start(config, sink_config).await;

    // Seven times what the queue holds, at once: the actor cannot take the
    // surplus away while the burst is offered, however the threads run.
    let points = Shared::new().counters(3, 5_000);
    let offered = points.len() as u64;
    let refused = p.offer(points);
    assert!(refused > 0, "the burst overflows the queue");

    let mut flushes = 0;
    while let Err(err) = p.sink.flush().await {
        flushes += 1;
        assert!(flushes < 10, "flush keeps failing: {}", chain(&err));
        println!("flush {flushes}: {}", chain(&err));
    }

    let (result, books) = p.shutdown().await;
    result.expect("every failure was reported by a flush");
    books.assert_balanced("mixed faults over HTTP");
    let counts = receiver.counts().metrics;
    let (s, e) = (books.sink, books.export);
    assert_eq!((s.pushed, s.dropped), (offered, refused));
    assert_eq!(e.rejected, counts.rejected, "{e:?} {counts:?}");
    // The receiver counted the undecodable 200 as acked; the client, which
    // could not read it, as failed. Everything else agrees exactly.
    assert!(counts.acked >= e.acked, "the drain acked more than the collector: {e:?} {counts:?}");
    let undecodable = counts.acked - e.acked;
    assert!(undecodable <= 500, "at most one request's points: {e:?} {counts:?}");
    assert!(e.acked > 0 && e.failed > 0 && e.retries > 0, "{e:?}");
    assert_eq!(counts.requests, counts.http_requests);
}
