//! The OTLP/HTTP transport end to end, against a tiny hyper server written
//! here (plaintext or TLS with rcgen certificates) that records every request
//! and answers as each test scripts it: what goes on the wire (method, path,
//! headers, the body decoded with the OpenTelemetry project's own messages),
//! connection reuse, the per-attempt timeout, a refusal's report, TLS and
//! mutual TLS, and the SDK adapters choosing HTTP from the environment.
//!
//! The scripted fault matrix over HTTP (Retry-After, bodies that are not
//! protobuf, connections cut mid-response, partial success) runs against the
//! in-process receiver in its own files.

mod support;

use std::convert::Infallible;
use std::error::Error as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otlp_sink::config::{Compression, EnvSettings, ExporterConfigBuilder, RetryPolicy};
use otlp_sink::deliver::{ExportError, StatusCode as ExportCode};
use otlp_sink::sink::{DrainErrorKind, FlushError};
use otlp_sink::tls::TlsErrorKind;
use otlp_sink::{BackgroundSink, ExporterConfig, LogsDrain, MetricsDrain, Protocol, Signal, SinkConfig, TracesDrain};
use prost::Message as _;
use support::errors::chain;
use support::points::Shared;
use support::tls::{send, Pki, Sent, POINTS};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: http::Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as sent, un-gzipped if it says it is gzipped.
    fn decoded_body(&self) -> Vec<u8> {
        match self.header("content-encoding") {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&self.body[..]).read_to_end(&mut out).expect("valid gzip");
                out
            }
            None => self.body.to_vec(),
            Some(other) => panic!("unexpected content-encoding {other}"),
        }
    }

    fn metric_points(&self) -> u64 {
        let request = ExportMetricsServiceRequest::decode(&self.decoded_body()[..]).expect("an export request");
        let mut points = 0;
        for metric in request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics) {
            points += match &metric.data {
                Some(Data::Sum(sum)) => sum.data_points.len() as u64,
                other => panic!("only sums are sent here, not {other:?}"),
            };
        }
        points
    }
}

/// How the server answers: a response, a response once the gate gives a
/// permit, or never (the connection stays open).
enum Answer {
    Reply(Response<Full<Bytes>>),
    Gated(Arc<tokio::sync::Semaphore>, Response<Full<Bytes>>),
    Never,
}

type Script = dyn Fn(&Recorded) -> Answer + Send + Sync;

/// An OTLP/HTTP server on 127.0.0.1 that records requests and answers per its script.
struct Server {
    addr: SocketAddr,
    tls: bool,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Server {
    async fn spawn(tls: Option<rustls::ServerConfig>, script: Arc<Script>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let server = Self {
            addr,
            tls: acceptor.is_some(),
            requests: requests.clone(),
            connections: connections.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    accepted = listener.accept() => accepted.expect("accept"),
                    () = stop.cancelled() => return,
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (requests, script, acceptor) = (requests.clone(), script.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (requests, script) = (requests.clone(), script.clone());
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let recorded = Recorded {
                                method: parts.method,
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            requests.lock().unwrap().push(recorded.clone());
                            match script(&recorded) {
                                Answer::Reply(response) => Ok::<_, Infallible>(response),
                                Answer::Gated(gate, response) => {
                                    gate.acquire().await.expect("the gate stays open").forget();
                                    Ok(response)
                                }
                                Answer::Never => std::future::pending().await,
                            }
                        }
                    });
                    let http1 = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        // A failed handshake is the client's failure to see: nothing to do here.
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = http1.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = http1.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        server
    }

    /// The base URL: `http://127.0.0.1:PORT`, or `https://localhost:PORT` with TLS.
    fn base(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}", self.addr.port()),
            false => format!("http://127.0.0.1:{}", self.addr.port()),
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A script answering every request 200 with an empty body: full success.
fn ok() -> Arc<Script> {
    Arc::new(|_| Answer::Reply(Response::new(Full::new(Bytes::new()))))
}

async fn plain(script: Arc<Script>) -> Server {
    Server::spawn(None, script).await
}

/// OTLP/HTTP to `base`, no environment read.
fn http(base: &str) -> ExporterConfigBuilder {
    ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf).with_endpoint(base)
}

/// The drain's error under a failed flush.
fn export_error(flushed: &Result<(), FlushError>) -> &ExportError {
    let err = flushed.as_ref().expect_err("the flush must fail");
    let FlushError::Drain { source, .. } = err else { panic!("expected a drain failure, got {err:?}") };
    source.source().and_then(|s| s.downcast_ref::<ExportError>()).unwrap_or_else(|| panic!("{}", chain(err)))
}

#[tokio::test]
async fn metrics_are_posted_as_encoded_to_the_base_urls_v1_metrics_with_the_configured_headers() {
    let server = plain(ok()).await;
    let config = http(&format!("{}/otlp/", server.base())).with_header("x-tenant", "acme");
    let sent = send(config).await;
    sent.flushed.as_ref().unwrap_or_else(|e| panic!("{}", chain(e)));
    assert_eq!((sent.stats.acked, sent.stats.failed, sent.stats.retries), (POINTS, 0, 0));

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one batch, one request");
    let request = &requests[0];
    assert_eq!(request.method, http::Method::POST);
    assert_eq!(request.path, "/otlp/v1/metrics", "the base path kept, no double slash");
    assert_eq!(request.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(request.header("content-encoding"), None, "not compressed by default");
    assert_eq!(request.header("x-tenant"), Some("acme"));
    let agent = request.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("otlp-sink/"), "{agent}");
    assert_eq!(request.metric_points(), POINTS, "the body is the export request, every point in it");
}

#[tokio::test]
async fn gzip_says_so_and_decompresses_to_the_request() {
    let server = plain(ok()).await;
    let sent = send(http(&server.base()).with_compression(Compression::Gzip)).await;
    sent.flushed.as_ref().unwrap_or_else(|e| panic!("{}", chain(e)));
    let requests = server.requests();
    assert_eq!(requests[0].header("content-encoding"), Some("gzip"));
    assert!(requests[0].body.len() < requests[0].decoded_body().len(), "compressed");
    assert_eq!(requests[0].metric_points(), POINTS);
}

#[tokio::test]
async fn each_signal_goes_to_its_own_path_and_the_signals_own_variable_is_used_as_given() {
    let server = plain(ok()).await;
    let shared = Shared::new();
    let config = http(&server.base()).with_retry_policy(RetryPolicy::disabled()).build_without_env().unwrap();

    let traces = TracesDrain::connect(&config).await.unwrap();
    let (sink, handle) = BackgroundSink::spawn(traces, SinkConfig::default(), CancellationToken::new()).unwrap();
    for span in shared.spans(3) {
        sink.try_push(span).unwrap();
    }
    sink.flush().await.unwrap();
    handle.shutdown().await.unwrap();

    let logs = LogsDrain::connect(&config).await.unwrap();
    let (sink, handle) = BackgroundSink::spawn(logs, SinkConfig::default(), CancellationToken::new()).unwrap();
    for record in shared.logs(2) {
        sink.try_push(record).unwrap();
    }
    sink.flush().await.unwrap();
    handle.shutdown().await.unwrap();

    // OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: the whole URL, nothing appended.
    let own = format!("{}/custom/metrics", server.base());
    let env = EnvSettings::from_lookup(Signal::Metrics, |name| {
        (name == "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").then(|| own.clone())
    })
    .unwrap();
    let config = ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf).build_with_env(env).unwrap();
    let metrics = MetricsDrain::connect(&config).await.unwrap();
    let (sink, handle) = BackgroundSink::spawn(metrics, SinkConfig::default(), CancellationToken::new()).unwrap();
    for point in shared.counters(1, 4) {
        sink.try_push(point).unwrap();
    }
    sink.flush().await.unwrap();
    handle.shutdown().await.unwrap();

    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/traces", "/v1/logs", "/custom/metrics"]);
}

#[tokio::test]
async fn one_collection_of_100_000_points_is_cut_into_bodies_under_the_cap() {
    const POINTS_IN_COLLECTION: usize = 100_000;
    for (cap, compression) in [
        (ExporterConfig::DEFAULT_MAX_REQUEST_BYTES, Compression::None),
        (1024 * 1024, Compression::None),
        (1024 * 1024, Compression::Gzip),
    ] {
        let server = plain(ok()).await;
        let config = http(&server.base()).with_max_request_bytes(cap).with_compression(compression);
        let drain = MetricsDrain::connect(&config.build_without_env().unwrap()).await.unwrap();
        let stats = drain.stats();
        // One batch: the whole collection in one write.
        let sink_config =
            SinkConfig::default().with_queue_capacity(POINTS_IN_COLLECTION).with_batch_size(POINTS_IN_COLLECTION);
        let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).unwrap();
        for point in Shared::new().counters(100, POINTS_IN_COLLECTION / 100) {
            sink.try_push(point).unwrap();
        }
        sink.flush().await.unwrap_or_else(|e| panic!("cap {cap}: {}", chain(&e)));
        handle.shutdown().await.unwrap();

        let requests = server.requests();
        let bodies: Vec<usize> = requests.iter().map(|r| r.decoded_body().len()).collect();
        assert!(bodies.iter().all(|&len| len <= cap), "cap {cap}: a body over it: {bodies:?}");
        let total: usize = bodies.iter().sum();
        assert!(total > cap, "cap {cap}: the collection ({total} bytes) must need cutting");
        assert!(requests.len() >= total.div_ceil(cap), "cap {cap}: {} requests for {total} bytes", requests.len());
        let points: u64 = requests.iter().map(Recorded::metric_points).sum();
        assert_eq!(points, POINTS_IN_COLLECTION as u64, "cap {cap}: every point once");
        let s = stats.snapshot();
        assert_eq!((s.acked, s.failed, s.rejected), (POINTS_IN_COLLECTION as u64, 0, 0), "cap {cap}");
        assert_eq!(s.requests, requests.len() as u64);
    }
}

#[tokio::test]
async fn keep_alive_reuses_the_connection_request_after_request() {
    let server = plain(ok()).await;
    let config = http(&server.base()).with_max_in_flight(1).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let sink_config = SinkConfig::default().with_batch_size(100);
    let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).unwrap();
    let shared = Shared::new();
    for round in 0..5 {
        for point in shared.counters(1, 100) {
            sink.try_push(point).unwrap();
        }
        sink.flush().await.unwrap_or_else(|e| panic!("round {round}: {}", chain(&e)));
    }
    handle.shutdown().await.unwrap();
    assert_eq!(stats.snapshot().acked, 500);
    assert_eq!(server.requests().len(), 5);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "five requests, one connection");
}

#[tokio::test]
async fn a_window_of_requests_is_in_flight_at_once_each_on_its_own_pooled_connection() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let server = plain(Arc::new(move |_| Answer::Gated(held.clone(), Response::new(Full::new(Bytes::new()))))).await;
    let config = http(&server.base()).with_max_in_flight(4).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let sink_config = SinkConfig::default().with_batch_size(10);
    let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).unwrap();
    let shared = Shared::new();
    for round in 1..=2 {
        for point in shared.counters(4, 10) {
            sink.try_push(point).unwrap();
        }
        let flush = sink.flush();
        tokio::pin!(flush);
        // Four batches of 10, four requests: all at the server before any is answered.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.requests().len() < 4 * round {
            assert!(Instant::now() < deadline, "only {} request(s) arrived", server.requests().len());
            tokio::select! {
                flushed = &mut flush => panic!("the flush returned before any answer: {flushed:?}"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        assert_eq!(stats.snapshot().acked, 40 * (round as u64 - 1), "none of this round's is answered yet");
        gate.add_permits(4);
        flush.await.unwrap_or_else(|e| panic!("round {round}: {}", chain(&e)));
    }
    handle.shutdown().await.unwrap();
    assert_eq!(stats.snapshot().acked, 80);
    assert_eq!(server.connections.load(Ordering::SeqCst), 4, "four at once, kept and reused for the second round");
}

#[tokio::test]
async fn a_refusal_is_reported_at_once_with_its_status_the_bodys_message_and_the_url() {
    // A google.rpc.Status { code: 3, message: "metric name missing" }, as a collector sends it.
    let body = Bytes::from_static(b"\x08\x03\x12\x13metric name missing");
    let server = plain(Arc::new(move |_| {
        let mut response = Response::new(Full::new(body.clone()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        response.headers_mut().insert("content-type", "application/x-protobuf".parse().unwrap());
        Answer::Reply(response)
    }))
    .await;
    let sent = send(http(&format!("{}/base", server.base()))).await;
    let export = export_error(&sent.flushed);
    let ExportError::Refused { status, attempts } = export else { panic!("expected Refused, got {export:?}") };
    assert_eq!((status.code(), status.http_status(), *attempts), (ExportCode::Http(400), Some(400), 1));
    assert_eq!(status.message(), "metric name missing");
    assert_eq!(
        export.to_string(),
        "collector refused the request with HTTP 400 after 1 attempt(s): metric name missing"
    );
    assert_eq!((sent.stats.failed, sent.stats.retries), (POINTS, 0), "not retried");
    assert!(sent.took < Duration::from_secs(5), "a retry would have waited 10 s: {:?}", sent.took);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_fails_each_attempt_in_the_timeout() {
    let server = plain(Arc::new(|_| Answer::Never)).await;
    let policy = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(10))
        .with_max_elapsed(Duration::from_millis(900));
    let config = http(&server.base()).with_timeout(Duration::from_millis(300)).with_retry_policy(policy);
    let config = config.build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).unwrap();
    for point in Shared::new().counters(1, 10) {
        sink.try_push(point).unwrap();
    }
    let started = Instant::now();
    let flushed = sink.flush().await;
    let took = started.elapsed();
    let export = export_error(&flushed);
    let ExportError::RetriesExhausted { status, attempts, .. } = export else { panic!("{export:?}") };
    assert_eq!(status.code(), ExportCode::TimedOut, "{export}");
    assert!(*attempts >= 2, "retried within the budget: {export}");
    assert!(took < Duration::from_secs(3), "bounded by the timeout and the budget, took {took:?}");
    let FlushError::Drain { source, .. } = flushed.as_ref().unwrap_err() else { unreachable!() };
    assert_eq!(source.kind(), DrainErrorKind::TimedOut);
    let outage = stats.outage().expect("the outage is on record");
    assert_eq!(outage.endpoint, format!("{}/v1/metrics", server.base()), "reports name the whole URL");
    assert_eq!(stats.snapshot().failed, 10);
    let _ = handle.shutdown_timeout(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_collector_that_is_not_up_is_retried_and_the_report_says_the_connection_was_refused() {
    // A port that was free a moment ago: nothing listens on it.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let policy = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(20))
        .with_max_elapsed(Duration::from_millis(300));
    let config = http(&format!("http://127.0.0.1:{port}")).with_retry_policy(policy).build_without_env().unwrap();
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).unwrap();
    for point in Shared::new().counters(1, 10) {
        sink.try_push(point).unwrap();
    }
    let flushed = sink.flush().await;
    let export = export_error(&flushed);
    let ExportError::RetriesExhausted { status, attempts, .. } = export else { panic!("{export:?}") };
    assert_eq!(status.code(), ExportCode::Unreachable, "{export}");
    assert!(*attempts >= 2, "retried: {export}");
    let text = export.to_string();
    assert!(text.contains("last status no HTTP answer: cannot connect"), "{text}");
    let full = chain(flushed.as_ref().unwrap_err());
    assert!(full.contains("cannot connect: tcp connect error: Connection refused"), "{full}");
    assert!(!full.contains("client error"), "hyper-util's kind is said in words: {full}");
    assert_eq!(stats.snapshot().failed, 10);
    handle.shutdown().await.unwrap();
}

// --- TLS ---

fn server_tls(pki: &Pki, client_ca: Option<&Pki>) -> rustls::ServerConfig {
    let (cert, key) = pki.server_pem();
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from_pem_slice(ca.ca.pem().as_bytes()).unwrap()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[tokio::test]
async fn https_with_the_configured_ca_delivers_every_point() {
    let pki = Pki::new("http-ca");
    let server = Server::spawn(Some(server_tls(&pki, None)), ok()).await;
    let sent = send(http(&server.base()).with_ca_certificate(&pki.ca_file)).await;
    sent.flushed.as_ref().unwrap_or_else(|e| panic!("{}", chain(e)));
    assert_eq!(sent.stats.acked, POINTS);
    assert_eq!(server.requests()[0].metric_points(), POINTS);
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_at_once_as_a_tls_error() {
    let pki = Pki::new("http-untrusted");
    let server = Server::spawn(Some(server_tls(&pki, None)), ok()).await;
    let sent = send(http(&server.base()).with_ca_certificate(pki.other_ca_file())).await;
    assert_tls_failure_at_once(&sent, TlsErrorKind::UntrustedServerCertificate);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn mutual_tls_delivers_with_a_client_certificate_and_names_the_missing_one() {
    let pki = Pki::new("http-mtls");
    let server = Server::spawn(Some(server_tls(&pki, Some(&pki))), ok()).await;

    let sent = send(http(&server.base()).with_ca_certificate(&pki.ca_file)).await;
    let text = assert_tls_failure_at_once(&sent, TlsErrorKind::ClientCertificateRequired);
    assert!(text.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"), "{text}");

    let (cert, key) = pki.client_identity(&pki.ca, "client");
    let sent = send(http(&server.base()).with_ca_certificate(&pki.ca_file).with_client_identity(cert, key)).await;
    sent.flushed.as_ref().unwrap_or_else(|e| panic!("{}", chain(e)));
    assert_eq!(sent.stats.acked, POINTS);
    assert_eq!(server.requests().len(), 1, "only the request with a certificate reached the server");

    // The same from the environment: OTEL_EXPORTER_OTLP_PROTOCOL, _ENDPOINT, _CERTIFICATE, _CLIENT_*.
    let (cert, key) = pki.client_identity(&pki.ca, "env-client");
    let vars = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", server.base()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca_file.display().to_string()),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", cert.display().to_string()),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", key.display().to_string()),
    ];
    let env =
        EnvSettings::from_lookup(Signal::Metrics, |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
            .unwrap();
    let config = ExporterConfig::builder().build_with_env(env).unwrap();
    assert_eq!(config.export_url(Signal::Metrics).to_string(), format!("{}/v1/metrics", server.base()));
    let drain = MetricsDrain::connect(&config).await.unwrap();
    let stats = drain.stats();
    let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).unwrap();
    for point in Shared::new().counters(1, 7) {
        sink.try_push(point).unwrap();
    }
    sink.flush().await.unwrap_or_else(|e| panic!("{}", chain(&e)));
    handle.shutdown().await.unwrap();
    assert_eq!(stats.snapshot().acked, 7);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_client_certificate_the_collector_does_not_trust_is_refused_at_once() {
    let pki = Pki::new("http-mtls-untrusted-client");
    let server = Server::spawn(Some(server_tls(&pki, Some(&pki))), ok()).await;
    let stranger = support::tls::new_ca("a CA the collector does not trust");
    let (cert, key) = pki.client_identity(&stranger, "stranger");
    let sent = send(http(&server.base()).with_ca_certificate(&pki.ca_file).with_client_identity(cert, key)).await;
    let export = export_error(&sent.flushed);
    let ExportError::Refused { status, attempts } = export else { panic!("expected Refused, got {export:?}") };
    assert_eq!((status.code(), *attempts), (ExportCode::Unreachable, 1), "{export}");
    let text = chain(sent.flushed.as_ref().unwrap_err());
    assert!(text.contains("certificate") || text.contains("Certificate"), "{text}");
    assert_eq!((sent.stats.retries, sent.stats.failed), (0, POINTS));
    assert!(server.requests().is_empty());
    assert!(text.contains("received fatal alert: UnknownCA"), "the collector's alert: {text}");
}

/// Asserts a flush that failed for good on its first attempt with a TLS error of `kind`.
fn assert_tls_failure_at_once(sent: &Sent, kind: TlsErrorKind) -> String {
    let export = export_error(&sent.flushed);
    let ExportError::Tls { error, attempts } = export else { panic!("expected Tls, got {export:?}") };
    assert_eq!((error.kind(), *attempts), (kind, 1));
    assert_eq!((sent.stats.retries, sent.stats.failed), (0, POINTS));
    assert!(sent.took < Duration::from_secs(5), "a retry would have waited 10 s: {:?}", sent.took);
    chain(sent.flushed.as_ref().unwrap_err())
}

// --- the SDK adapters ---

#[cfg(feature = "sdk")]
#[test]
fn the_environments_http_protobuf_sends_every_signal_to_its_path_through_the_sdk_adapters() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(plain(ok()));
    let base = server.base();
    let env = move |name: &str| match name {
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_owned()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(base.clone()),
        _ => None,
    };
    // No endpoint in code (it would win): this test is about the environment's.
    let builder = otlp_sink::OtlpExporter::builder()
        .with_retry_policy(RetryPolicy::new().with_max_elapsed(Duration::from_secs(3)))
        .with_export_interval(Duration::from_secs(3600));
    let config = builder.resolve_config(Signal::Logs, &env).unwrap();
    assert_eq!(config.protocol(), Protocol::HttpProtobuf);
    let exporter = builder.build_with_lookup(&env).expect("builds");
    let p = support::sdk::providers(&exporter);
    support::sdk::record(&p);
    support::sdk::flush(&p).expect("acknowledged");
    // Read before the shutdown, whose final collection sends the cumulative points again.
    let stats = exporter.stats();
    assert_eq!(
        (stats.metrics.export.acked, stats.traces.export.acked, stats.logs.export.acked),
        (support::sdk::METRIC_POINTS, support::sdk::SPANS, support::sdk::LOG_RECORDS)
    );
    support::sdk::shutdown(&p).unwrap();
    let mut paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths, ["/v1/logs", "/v1/metrics", "/v1/traces"]);
}
