//! The rotel test harness (`tests/support/rotel.rs`) against the real collector:
//! what it counts is what was sent, kill and restart keep the port, and the
//! receive limit behaves as `tests/support/ROTEL.md` says.
//!
//! The requests are built here by hand (a few prost messages with the OTLP field
//! numbers) and sent with tonic's generic client, or by `scripts/otlp_send.py`
//! with the OpenTelemetry project's own Python classes: neither uses this
//! crate's encoder, so these tests check the harness alone.

mod support;

use std::process::Command;
use std::time::Duration;

use support::rotel::{otlp_send_script, venv_python, Rotel, Signal};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

/// Hand-written OTLP messages: only the fields these tests fill. Field numbers
/// from opentelemetry-proto (`opentelemetry/proto/{collector,metrics,trace,logs}/v1`).
mod otlp {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceMetrics {
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeMetrics {
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(message, optional, tag = "5")]
        pub gauge: Option<Gauge>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Gauge {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NumberDataPoint {
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(sfixed64, tag = "6")]
        pub as_int: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<PartialSuccess>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<PartialSuccess>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceLogs {
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeLogs {
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, tag = "1")]
        pub string_value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportLogsServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<PartialSuccess>,
    }

    /// `Export{Metrics,Trace,Logs}PartialSuccess`: same two fields in all three.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PartialSuccess {
        #[prost(int64, tag = "1")]
        pub rejected: i64,
        #[prost(string, tag = "2")]
        pub error_message: String,
    }

    /// One resource, one scope, `metrics` gauges of `points` points each.
    pub fn metrics(metrics: usize, points: usize) -> ExportMetricsServiceRequest {
        let metrics = (0..metrics)
            .map(|m| Metric {
                name: format!("harness.gauge_{m}"),
                description: String::new(),
                gauge: Some(Gauge {
                    data_points: (0..points).map(|p| NumberDataPoint { time_unix_nano: 1, as_int: p as i64 }).collect(),
                }),
            })
            .collect();
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics { scope_metrics: vec![ScopeMetrics { metrics }] }],
        }
    }

    /// One gauge with one point whose description pads the encoded request to exactly `bytes`.
    pub fn metrics_of_size(bytes: usize) -> ExportMetricsServiceRequest {
        use prost::Message;
        let mut request = metrics(1, 1);
        // The length prefixes grow with the padding: converge in a few rounds.
        for _ in 0..4 {
            let len = request.encoded_len();
            let metric = &mut request.resource_metrics[0].scope_metrics[0].metrics[0];
            let want = (metric.description.len() + bytes).saturating_sub(len);
            metric.description = "x".repeat(want);
        }
        assert_eq!(request.encoded_len(), bytes, "padding did not converge");
        request
    }

    pub fn traces(spans: usize) -> ExportTraceServiceRequest {
        let spans = (0..spans)
            .map(|s| Span {
                trace_id: vec![7; 16],
                span_id: (s as u64 + 1).to_be_bytes().to_vec(),
                name: format!("harness.span_{s}"),
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
            })
            .collect();
        ExportTraceServiceRequest { resource_spans: vec![ResourceSpans { scope_spans: vec![ScopeSpans { spans }] }] }
    }

    pub fn logs(records: usize) -> ExportLogsServiceRequest {
        let log_records = (0..records)
            .map(|r| LogRecord { time_unix_nano: 1, body: Some(AnyValue { string_value: format!("harness log {r}") }) })
            .collect();
        ExportLogsServiceRequest { resource_logs: vec![ResourceLogs { scope_logs: vec![ScopeLogs { log_records }] }] }
    }
}

/// A unary OTLP export over tonic's generic client.
async fn export<Req, Resp>(
    channel: &Channel,
    path: &'static str,
    request: Req,
    compression: Option<CompressionEncoding>,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if let Some(encoding) = compression {
        grpc = grpc.send_compressed(encoding);
    }
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("not ready: {e}")))?;
    let path = http::uri::PathAndQuery::from_static(path);
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(tonic::Request::new(request), path, codec).await.map(tonic::Response::into_inner)
}

const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

async fn export_metrics(
    channel: &Channel,
    request: otlp::ExportMetricsServiceRequest,
) -> Result<otlp::ExportMetricsServiceResponse, tonic::Status> {
    export(channel, METRICS_EXPORT, request, None).await
}

async fn connect(rotel: &Rotel) -> Channel {
    Channel::from_shared(rotel.endpoint()).expect("endpoint").connect().await.expect("connect to rotel")
}

#[tokio::test]
async fn counts_exactly_the_points_spans_and_log_records_sent() {
    let rotel = Rotel::start();
    let channel = connect(&rotel).await;

    // 3x5 + 4x1 + 1x7 points in three requests, plus an empty request.
    for (metrics, points) in [(3, 5), (4, 1), (1, 7), (0, 0)] {
        let response = export_metrics(&channel, otlp::metrics(metrics, points)).await.expect("metrics export");
        assert_eq!(response.partial_success, None);
    }
    for spans in [7, 3] {
        let response: otlp::ExportTraceServiceResponse =
            export(&channel, TRACE_EXPORT, otlp::traces(spans), None).await.expect("trace export");
        assert_eq!(response.partial_success, None);
    }
    let response: otlp::ExportLogsServiceResponse =
        export(&channel, LOGS_EXPORT, otlp::logs(4), None).await.expect("logs export");
    assert_eq!(response.partial_success, None);

    assert_eq!(rotel.wait_for_async(Signal::Metrics, 26, WAIT).await.unwrap(), 26);
    assert_eq!(rotel.wait_for_async(Signal::Traces, 10, WAIT).await.unwrap(), 10);
    assert_eq!(rotel.wait_for_async(Signal::Logs, 4, WAIT).await.unwrap(), 4);
    let counts = rotel.wait_until(WAIT, |c| c.requests() >= 7).unwrap();
    assert_eq!((counts.requests_of(Signal::Metrics), counts.requests_of(Signal::Traces)), (4, 2));
    assert_eq!(counts.requests_of(Signal::Logs), 1);
    assert_eq!(counts.malformed, 0);
    assert_eq!((rotel.metric_points(), rotel.spans(), rotel.log_records(), rotel.requests()), (26, 10, 4, 7));
}

/// Concurrent requests on one HTTP/2 connection: every line is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_concurrent_requests() {
    let rotel = Rotel::start();
    let channel = connect(&rotel).await;
    let mut exports = tokio::task::JoinSet::new();
    for i in 0..64 {
        let channel = channel.clone();
        exports.spawn(async move { export_metrics(&channel, otlp::metrics(10, 10 + i % 3)).await });
    }
    while let Some(result) = exports.join_next().await {
        result.expect("export task").expect("concurrent metrics export");
    }
    // 64 requests of 10 metrics with 10, 11 or 12 points: 22 + 21 + 21 of each.
    let expected = 10 * (22 * 10 + 21 * 11 + 21 * 12);
    assert_eq!(rotel.wait_for_async(Signal::Metrics, expected, WAIT).await.unwrap(), expected);
    assert_eq!(rotel.wait_until(WAIT, |c| c.requests() >= 64).unwrap().requests(), 64);
}

/// The same counts from an independent sender: the OpenTelemetry project's own
/// Python classes over grpcio (and gzip, which rotel accepts).
#[test]
fn counts_what_the_python_reference_sender_sent() {
    let rotel = Rotel::start();
    let output = Command::new(venv_python())
        .arg(otlp_send_script())
        .args(["--endpoint", &rotel.grpc_addr().to_string(), "--requests", "3", "--gzip"])
        .args(["--metrics", "3", "--points-per-metric", "5", "--spans", "7", "--logs", "4"])
        .output()
        .expect("run scripts/otlp_send.py");
    assert!(output.status.success(), "otlp_send.py failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("otlp_send.py prints JSON");
    assert_eq!(summary, serde_json::json!({"requests": 9, "metric_points": 45, "spans": 21, "log_records": 12}));

    assert_eq!(rotel.wait_for(Signal::Metrics, 45, WAIT).unwrap(), 45);
    assert_eq!(rotel.wait_for(Signal::Traces, 21, WAIT).unwrap(), 21);
    assert_eq!(rotel.wait_for(Signal::Logs, 12, WAIT).unwrap(), 12);
    assert_eq!(rotel.wait_until(WAIT, |c| c.requests() >= 9).unwrap().requests(), 9);
}

#[tokio::test]
async fn kill_refuses_connections_and_restart_listens_on_the_same_port() {
    let mut rotel = Rotel::start();
    let (endpoint, pid) = (rotel.endpoint(), rotel.pid().expect("running"));
    export_metrics(&connect(&rotel).await, otlp::metrics(2, 3)).await.expect("export before the kill");
    assert_eq!(rotel.wait_for_async(Signal::Metrics, 6, WAIT).await.unwrap(), 6);

    rotel.kill();
    assert!(!rotel.is_running());
    assert_eq!(rotel.pid(), None);
    let refused = Channel::from_shared(endpoint.clone()).unwrap().connect().await;
    assert!(refused.is_err(), "something still listens on {endpoint} after the kill");

    rotel.restart();
    assert_eq!(rotel.endpoint(), endpoint);
    assert_ne!(rotel.pid(), Some(pid));
    assert_eq!(rotel.generation(), 2);
    export_metrics(&connect(&rotel).await, otlp::metrics(1, 4)).await.expect("export after the restart");
    // Counters are cumulative across generations.
    assert_eq!(rotel.wait_for_async(Signal::Metrics, 10, WAIT).await.unwrap(), 10);
    assert_eq!(rotel.requests(), 2);

    // A second kill/restart cycle works the same.
    rotel.restart();
    export_metrics(&connect(&rotel).await, otlp::metrics(1, 1)).await.expect("export after the second restart");
    assert_eq!(rotel.wait_for_async(Signal::Metrics, 11, WAIT).await.unwrap(), 11);
    assert_eq!(rotel.generation(), 3);
}

/// Dropping the harness kills rotel: no process outlives its test.
#[test]
fn drop_kills_the_process() {
    let rotel = Rotel::start();
    let pid = rotel.pid().expect("running");
    let addr = rotel.grpc_addr();
    drop(rotel);
    // The kill was reaped before drop returned: the pid is gone from /proc.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "rotel pid {pid} still exists");
    assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} still accepts connections");
}

/// rotel answers a request above its receive limit with OUT_OF_RANGE (a code
/// the OTLP spec lists as retryable), counts nothing, and measures the limit on
/// the message as sent: compressed size, not decoded size.
#[tokio::test]
async fn the_receive_limit_is_4_mib_on_the_wire_and_answers_out_of_range() {
    const MIB: usize = 1024 * 1024;
    let rotel = Rotel::start();
    let channel = connect(&rotel).await;

    export_metrics(&channel, otlp::metrics_of_size(4 * MIB)).await.expect("exactly 4 MiB is accepted");
    let status = export_metrics(&channel, otlp::metrics_of_size(4 * MIB + 1)).await.expect_err("4 MiB + 1 is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(
        status.message(),
        "Error, decoded message length too large: found 4194305 bytes, the limit is: 4194304 bytes"
    );
    // 16 MiB that gzip to a few KiB pass: the limit applies to the compressed frame.
    let response: otlp::ExportMetricsServiceResponse =
        export(&channel, METRICS_EXPORT, otlp::metrics_of_size(16 * MIB), Some(CompressionEncoding::Gzip))
            .await
            .expect("a compressible 16 MiB request, gzipped");
    assert_eq!(response.partial_success, None);

    // Two accepted requests of one point each; the refused one is not counted.
    let counts = rotel.wait_until(WAIT, |c| c.requests() >= 2).unwrap();
    assert_eq!((counts.items(Signal::Metrics), counts.requests()), (2, 2));
}

#[tokio::test]
async fn the_receive_limit_flag_raises_the_limit() {
    const MIB: usize = 1024 * 1024;
    let rotel = Rotel::start_with_args(["--otlp-grpc-max-recv-msg-size-mib", "8"]);
    let channel = connect(&rotel).await;
    export_metrics(&channel, otlp::metrics_of_size(8 * MIB)).await.expect("8 MiB is accepted with the flag at 8");
    let status = export_metrics(&channel, otlp::metrics_of_size(8 * MIB + 1)).await.expect_err("8 MiB + 1 is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(rotel.wait_for_async(Signal::Metrics, 1, WAIT).await.unwrap(), 1);
}
