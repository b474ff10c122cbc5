//! The in-process receiver's OTLP/HTTP listener, driven by hand-written
//! HTTP/1.1 over a plain TCP stream (so that what is checked is the wire, not
//! a client library's reading of it): routing, content types, gzip, the
//! receive limit, every scripted HTTP reply, and how gRPC-only replies are
//! carried over to HTTP and HTTP replies to gRPC.

#![cfg(feature = "receiver")]

mod support;

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_sink::deliver::GrpcCode;
use otlp_sink::receiver::{HttpReply, Receiver, Reply, RetryAfter};
use otlp_sink::Signal;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `google.rpc.Status`, as the receiver writes it in a failure's body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: "receiver-http-test".into(), ..Default::default() })
}

fn metrics(points: usize) -> ExportMetricsServiceRequest {
    let gauge = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); points] })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { scope: scope(), metrics: vec![gauge], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn spans(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { scope: scope(), spans: vec![Span::default(); n], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![LogRecord::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// One HTTP response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names lowercase.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the body had every byte its `Content-Length` promised.
    complete: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn rpc_status(&self) -> RpcStatus {
        assert_eq!(self.header("content-type"), Some("application/x-protobuf"), "{self:?}");
        RpcStatus::decode(self.body.as_slice()).unwrap_or_else(|e| panic!("not a google.rpc.Status: {e}: {self:?}"))
    }
}

/// A keep-alive HTTP/1.1 connection written and read by hand.
struct Conn {
    stream: TcpStream,
    /// Bytes read past the end of the previous response.
    buffer: Vec<u8>,
}

impl Conn {
    async fn open(receiver: &Receiver) -> Self {
        Self { stream: TcpStream::connect(receiver.http_addr()).await.expect("connect"), buffer: Vec::new() }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await.unwrap();
        self.stream.write_all(body).await.unwrap();
    }

    /// Reads one response: its head, then as many body bytes as
    /// `Content-Length` says or the peer sends before it closes.
    async fn read(&mut self) -> Answer {
        let head_end = loop {
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = self.fill().await;
            assert!(n > 0, "the connection closed before a response head: {:?}", String::from_utf8_lossy(&self.buffer));
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec()).expect("an ASCII head");
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (k, v) = line.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let length: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
        while self.buffer.len() < length {
            if self.fill().await == 0 {
                break;
            }
        }
        let complete = self.buffer.len() >= length;
        let body = self.buffer.drain(..length.min(self.buffer.len())).collect();
        Answer { status, headers, body, complete }
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.unwrap_or(0);
        self.buffer.extend_from_slice(&chunk[..n]);
        n
    }

    async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        self.send("POST", path, headers, body).await;
        self.read().await
    }

    async fn post_protobuf(&mut self, path: &str, body: &[u8]) -> Answer {
        self.post(path, &[("content-type", "application/x-protobuf")], body).await
    }
}

async fn post_metrics(receiver: &Receiver, points: usize) -> Answer {
    Conn::open(receiver).await.post_protobuf("/v1/metrics", &metrics(points).encode_to_vec()).await
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The three paths on one keep-alive connection: each answered 200 with its
/// signal's empty `Export*ServiceResponse`, each counted under its signal
/// as an HTTP request, with the resources' scopes remembered as on gRPC.
#[tokio::test]
async fn all_three_signals_are_received_on_one_keep_alive_connection() {
    let receiver = Receiver::builder().with_recording().start().await.unwrap();
    assert_ne!(receiver.http_addr(), receiver.local_addr());
    assert_eq!(receiver.http_endpoint(), format!("http://{}", receiver.http_addr()));
    let mut conn = Conn::open(&receiver).await;

    let answer = conn.post_protobuf("/v1/metrics", &metrics(7).encode_to_vec()).await;
    assert_eq!((answer.status, answer.header("content-type")), (200, Some("application/x-protobuf")));
    assert_eq!(ExportMetricsServiceResponse::decode(answer.body.as_slice()).unwrap().partial_success, None);
    let answer = conn.post_protobuf("/v1/traces", &spans(5).encode_to_vec()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(ExportTraceServiceResponse::decode(answer.body.as_slice()).unwrap().partial_success, None);
    let answer = conn.post_protobuf("/v1/logs", &logs(3).encode_to_vec()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(ExportLogsServiceResponse::decode(answer.body.as_slice()).unwrap().partial_success, None);

    let counts = receiver.counts();
    for (signal, items) in [(Signal::Metrics, 7), (Signal::Traces, 5), (Signal::Logs, 3)] {
        let c = counts.signal(signal);
        assert_eq!((c.requests, c.http_requests, c.received, c.acked, c.failed), (1, 1, items, items, 0), "{signal:?}");
        assert_eq!(receiver.scope_names(signal), ["receiver-http-test"], "{signal:?}");
        assert_eq!(receiver.recorded(signal).len(), 1, "{signal:?}");
        assert_eq!(receiver.arrivals(signal).len(), 1, "{signal:?}");
    }
    assert_eq!(receiver.recorded(Signal::Metrics)[0], metrics(7).encode_to_vec());
    assert_eq!(receiver.last_header("content-type").as_deref(), Some("application/x-protobuf"));
    receiver.shutdown().await;
}

/// A gzipped body (`Content-Encoding: gzip`) is decompressed: the items are
/// counted and `bytes` is the decompressed size.
#[tokio::test]
async fn a_gzip_body_is_decompressed_and_counted() {
    let receiver = Receiver::start().await.unwrap();
    let plain = metrics(1_000).encode_to_vec();
    let headers = [("content-type", "application/x-protobuf"), ("content-encoding", "gzip")];
    let answer = Conn::open(&receiver).await.post("/v1/metrics", &headers, &gzip(&plain)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let c = receiver.counts().metrics;
    assert_eq!((c.http_requests, c.acked, c.bytes), (1, 1_000, plain.len() as u64));
    assert_eq!(receiver.last_header("content-encoding").as_deref(), Some("gzip"));
}

/// What the listener refuses before the script, each with its status and a
/// `google.rpc.Status` body naming the problem, counted as refused and not
/// as received.
#[tokio::test]
async fn wrong_paths_methods_types_encodings_and_bodies_are_refused_with_their_status() {
    let receiver = Receiver::builder().with_max_message_bytes(64 * 1024).start().await.unwrap();
    let body = metrics(1).encode_to_vec();
    let mut conn = Conn::open(&receiver).await;

    let answer = conn.post_protobuf("/v1/profiles", &body).await;
    assert_eq!(answer.status, 404);
    assert!(answer.rpc_status().message.contains("\"/v1/profiles\""), "{answer:?}");

    conn.send("GET", "/v1/metrics", &[], &[]).await;
    let answer = conn.read().await;
    assert_eq!((answer.status, answer.header("allow")), (405, Some("POST")));

    let answer = conn.post("/v1/metrics", &[("content-type", "application/json")], b"{}").await;
    assert_eq!(answer.status, 415);
    assert!(answer.rpc_status().message.contains("application/json"), "{answer:?}");
    let answer = conn.post("/v1/metrics", &[], &body).await;
    assert_eq!(answer.status, 415, "no content type at all");
    // Parameters after the media type are allowed.
    let answer = conn.post("/v1/metrics", &[("content-type", "application/x-protobuf; proto=otlp")], &body).await;
    assert_eq!(answer.status, 200);

    let headers = [("content-type", "application/x-protobuf"), ("content-encoding", "br")];
    let answer = conn.post("/v1/metrics", &headers, &body).await;
    assert_eq!(answer.status, 415);
    assert!(answer.rpc_status().message.contains("\"br\""), "{answer:?}");

    let answer = conn.post_protobuf("/v1/metrics", b"\xff\xff\xff not protobuf").await;
    assert_eq!(answer.status, 400);
    assert!(answer.rpc_status().message.contains("not an OTLP Metrics export request"), "{answer:?}");
    let headers = [("content-type", "application/x-protobuf"), ("content-encoding", "gzip")];
    let answer = conn.post("/v1/metrics", &headers, &body).await;
    assert_eq!(answer.status, 400, "not gzip");

    let c = receiver.counts().metrics;
    assert_eq!((c.requests, c.refused, c.acked), (1, 6, 1), "{c:?}");
}

/// A body over the receive limit gets 413, as sent and after gunzipping
/// (a small gzip that inflates past the limit).
#[tokio::test]
async fn bodies_over_the_receive_limit_get_413_before_and_after_gunzipping() {
    let limit = 64 * 1024;
    let receiver = Receiver::builder().with_max_message_bytes(limit).start().await.unwrap();
    let big = metrics(50_000).encode_to_vec();
    assert!(big.len() > limit);

    let mut conn = Conn::open(&receiver).await;
    let answer = conn.post_protobuf("/v1/metrics", &big).await;
    assert_eq!(answer.status, 413);
    assert!(answer.rpc_status().message.contains(&format!("over {limit} bytes")), "{answer:?}");

    let small = gzip(&big);
    assert!(small.len() < limit, "gzipped {} bytes", small.len());
    let headers = [("content-type", "application/x-protobuf"), ("content-encoding", "gzip")];
    let answer = Conn::open(&receiver).await.post("/v1/metrics", &headers, &small).await;
    assert_eq!(answer.status, 413);

    let c = receiver.counts().metrics;
    assert_eq!((c.requests, c.refused), (0, 2), "{c:?}");
}

/// Every scripted HTTP reply as it goes out: the status, `Retry-After` in
/// both forms (an HTTP-date written when the answer is sent), a
/// `google.rpc.Status` body, a raw body with its own content type, and a
/// partial success in the signal's response.
#[tokio::test]
async fn scripted_http_replies_go_out_as_scripted() {
    let receiver = Receiver::start().await.unwrap();
    let html = "<html><body>502 Bad Gateway</body></html>";
    receiver.script(
        Signal::Metrics,
        [
            Reply::Http(HttpReply::new(503).with_retry_after(RetryAfter::Seconds(1))),
            Reply::Http(
                HttpReply::new(429).with_retry_after(RetryAfter::DateIn(Duration::from_secs(3))).with_message("slow"),
            ),
            Reply::Http(HttpReply::new(502).with_raw_body("text/html", html)),
            Reply::Http(HttpReply::new(400).with_empty_body()),
            Reply::PartialSuccess { rejected: 2, message: "2 stale".into() },
            Reply::Http(HttpReply::new(200).with_raw_body("text/plain", "fine")),
        ],
    );
    let mut conn = Conn::open(&receiver).await;
    let body = metrics(4).encode_to_vec();

    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!((answer.status, answer.header("retry-after")), (503, Some("1")));
    assert_eq!(answer.rpc_status(), RpcStatus { code: 14, message: "scripted HTTP 503".into() });

    let sent = SystemTime::now();
    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!(answer.status, 429);
    let date = httpdate::parse_http_date(answer.header("retry-after").unwrap()).expect("an HTTP-date");
    let ahead = date.duration_since(sent - Duration::from_secs(1)).unwrap();
    assert!((Duration::from_secs(3)..=Duration::from_secs(5)).contains(&ahead), "{ahead:?} after sending");
    assert_eq!(answer.rpc_status().message, "slow");

    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!((answer.status, answer.header("content-type")), (502, Some("text/html")));
    assert_eq!(answer.body, html.as_bytes());

    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!((answer.status, answer.body.len()), (400, 0));

    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!(answer.status, 200);
    let partial = ExportMetricsServiceResponse::decode(answer.body.as_slice()).unwrap().partial_success.unwrap();
    assert_eq!((partial.rejected_data_points, partial.error_message.as_str()), (2, "2 stale"));

    let answer = conn.post_protobuf("/v1/metrics", &body).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, b"fine".as_slice()));

    let c = receiver.counts().metrics;
    // Four failures of 4 points; the partial success acks 2 and rejects 2; the raw 200 acks 4.
    assert_eq!((c.requests, c.failed, c.acked, c.rejected), (6, 16, 6, 2), "{c:?}");
}

/// gRPC-only replies on HTTP: a status becomes the HTTP status code.proto
/// pairs with its code, with the code and message in the body; a throttle
/// adds `Retry-After` rounded up to whole seconds.
#[tokio::test]
async fn grpc_statuses_and_throttles_are_carried_over_to_http() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(
        Signal::Traces,
        [
            Reply::Status { code: GrpcCode::Aborted, message: "conflict".into() },
            Reply::status(GrpcCode::Unauthenticated),
            Reply::Throttle { code: GrpcCode::ResourceExhausted, delay: Duration::from_millis(1_200) },
            Reply::Throttle { code: GrpcCode::Unavailable, delay: Duration::from_secs(2) },
        ],
    );
    let mut conn = Conn::open(&receiver).await;
    let body = spans(1).encode_to_vec();
    let answer = conn.post_protobuf("/v1/traces", &body).await;
    assert_eq!((answer.status, answer.rpc_status()), (409, RpcStatus { code: 10, message: "conflict".into() }));
    let answer = conn.post_protobuf("/v1/traces", &body).await;
    assert_eq!((answer.status, answer.rpc_status().code), (401, 16));
    let answer = conn.post_protobuf("/v1/traces", &body).await;
    assert_eq!((answer.status, answer.header("retry-after")), (429, Some("2")));
    let answer = conn.post_protobuf("/v1/traces", &body).await;
    assert_eq!((answer.status, answer.header("retry-after")), (503, Some("2")));
}

/// `CloseMidResponse`: the head promises a body, half of it arrives, then
/// the connection closes.
#[tokio::test]
async fn close_mid_response_sends_half_a_body_then_closes() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Logs, [Reply::CloseMidResponse]);
    let mut conn = Conn::open(&receiver).await;
    let answer = conn.post_protobuf("/v1/logs", &logs(3).encode_to_vec()).await;
    let promised: usize = answer.header("content-length").unwrap().parse().unwrap();
    assert_eq!(answer.status, 200);
    assert!(!answer.complete && answer.body.len() == promised / 2 && promised >= 16, "{answer:?}");
    assert_eq!(conn.fill().await, 0, "the connection is closed");
    let c = receiver.counts().logs;
    assert_eq!((c.requests, c.failed, c.acked), (1, 3, 0));
}

/// `Hang`: the request is counted (and failed) at once and never answered;
/// the connection stays open until the receiver shuts down.
#[tokio::test]
async fn a_hung_request_is_never_answered_until_shutdown_drops_its_connection() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::Hang]);
    let mut conn = Conn::open(&receiver).await;
    conn.send("POST", "/v1/metrics", &[("content-type", "application/x-protobuf")], &metrics(2).encode_to_vec()).await;
    let counts = receiver
        .wait_until(Duration::from_secs(5), |c| c.metrics.concurrent == 1)
        .await
        .expect("the request is being answered");
    assert_eq!((counts.metrics.failed, counts.metrics.acked), (2, 0));
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(300), conn.stream.read(&mut byte)).await;
    assert!(waited.is_err(), "no byte of an answer: {waited:?}");

    let started = Instant::now();
    receiver.shutdown().await;
    let read = tokio::time::timeout(Duration::from_secs(5), conn.stream.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed by the shutdown: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A delayed reply is answered after its delay, and `arrivals` records when
/// each request came in, for tests that measure a client's wait.
#[tokio::test]
async fn delayed_replies_wait_and_arrivals_are_recorded_in_order() {
    let receiver = Receiver::start().await.unwrap();
    receiver.script(Signal::Metrics, [Reply::delayed(Duration::from_millis(200), Reply::Ok)]);
    let started = Instant::now();
    assert_eq!(post_metrics(&receiver, 1).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(post_metrics(&receiver, 1).await.status, 200);
    let arrivals = receiver.arrivals(Signal::Metrics);
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(200), "{arrivals:?}");
}

/// HTTP replies on the gRPC listener, through this crate's gRPC drain: 503
/// with `Retry-After: 1` is UNAVAILABLE with a one-second RetryInfo (the
/// retry waits for it), a close mid-response is UNAVAILABLE (retried), and
/// 400 is INTERNAL (not retried).
#[tokio::test]
async fn http_replies_are_carried_over_to_grpc() {
    use otlp_sink::config::RetryPolicy;
    use otlp_sink::sink::DrainErrorKind;
    use otlp_sink::{ExporterConfig, SinkConfig};
    use support::accounting::{failure, Pipeline};
    use support::points::Shared;

    let receiver = Receiver::start().await.unwrap();
    receiver.script(
        Signal::Metrics,
        [
            Reply::Http(HttpReply::new(503).with_retry_after(RetryAfter::Seconds(1))),
            Reply::CloseMidResponse,
            Reply::Ok,
            Reply::http(400),
        ],
    );
    let retries = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(50))
        .with_max_elapsed(Duration::from_secs(5));
    let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_retry_policy(retries);
    let p = Pipeline::start(config, SinkConfig::default()).await;

    assert_eq!(p.offer(Shared::new().counters(1, 10)), 0);
    p.sink.flush().await.expect("delivered on the third attempt");
    let arrivals = receiver.arrivals(Signal::Metrics);
    assert_eq!(arrivals.len(), 3);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(1), "the RetryInfo delay: {arrivals:?}");
    assert!(arrivals[2] - arrivals[1] < Duration::from_secs(1), "a plain retry after the close: {arrivals:?}");

    assert_eq!(p.offer(Shared::new().counters(1, 5)), 0);
    let f = failure(&p.sink.flush().await.expect_err("400 is permanent"));
    assert_eq!((f.kind, f.code), (DrainErrorKind::Permanent, Some(GrpcCode::Internal)), "{}", f.chain);
    assert!(f.chain.contains("scripted HTTP 400"), "{}", f.chain);
    let (result, books) = p.shutdown().await;
    result.expect("reported by the flush");
    books.assert_balanced("HTTP replies over gRPC");
    assert_eq!((books.export.acked, books.export.failed, receiver.counts().metrics.requests), (10, 5, 4));
}
