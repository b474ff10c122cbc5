//! The OTLP/gRPC drain over TLS and mutual TLS, against the crate's in-process
//! receiver (rotel's receivers have no TLS, see `tests/support/ROTEL.md`).
//!
//! Every test makes its own certificates with rcgen (`tests/support/tls.rs`):
//! a CA, a server certificate for `localhost` (the host of
//! [`Receiver::endpoint`] with TLS), client certificates, in a directory of
//! the test's own removed when the test ends. No key is committed. The same
//! failures against a server that is not this crate's are in
//! `tests/grpc_tls_grpcio.rs`.

#![cfg(feature = "receiver")]

mod support;

use std::error::Error;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use otlp_sink::receiver::{Receiver, ReceiverTls};
use otlp_sink::{
    config::ValueOrigin,
    deliver::ExportError,
    sink::{DrainErrorKind, FlushError},
    tls::{ConnectError, TlsErrorKind},
    ExporterConfig, MetricsDrain,
};
use rcgen::KeyPair;
use support::errors::chain;
use support::tls::{new_ca, send, Pki, Sent, TempDir, POINTS};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// The receiver's TLS settings: a certificate for `localhost` from the CA.
fn server_tls(pki: &Pki) -> ReceiverTls {
    let (cert, key) = pki.server_pem();
    ReceiverTls::new(cert, key)
}

/// Asserts that the flush failed for good on the first attempt, without a
/// retry, and returns the drain's error and the error chain.
fn assert_failed_at_once(sent: &Sent) -> (&ExportError, String) {
    let err = sent.flushed.as_ref().expect_err("the flush must fail");
    let FlushError::Drain { source, .. } = err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!(source.kind(), DrainErrorKind::Permanent, "{}", chain(err));
    assert_eq!(source.items(), Some(POINTS));
    let export = source.source().and_then(|s| s.downcast_ref::<ExportError>()).expect("an ExportError");
    assert_eq!((sent.stats.retries, sent.stats.acked, sent.stats.failed), (0, 0, POINTS));
    // A retry would have waited 10 s first.
    assert!(sent.took < Duration::from_secs(5), "the failure took {:?}", sent.took);
    (export, chain(err))
}

/// As [`assert_failed_at_once`], for a collector that refused with a gRPC
/// status or a TLS alert about the client's certificate.
fn assert_refused_at_once(sent: &Sent) -> String {
    let (export, chain) = assert_failed_at_once(sent);
    let ExportError::Refused { attempts, .. } = export else { panic!("expected Refused, got {export:?}") };
    assert_eq!(*attempts, 1, "{chain}");
    chain
}

/// As [`assert_failed_at_once`], for a TLS failure of `kind`: not a gRPC status.
fn assert_tls_failure_at_once(sent: &Sent, kind: TlsErrorKind) -> String {
    let (export, chain) = assert_failed_at_once(sent);
    let ExportError::Tls { error, attempts, .. } = export else { panic!("expected Tls, got {export:?}") };
    assert_eq!((error.kind(), *attempts), (kind, 1), "{chain}");
    assert_eq!(export.code(), None, "no gRPC status was involved");
    chain
}

#[tokio::test]
async fn a_custom_ca_verifies_the_receiver_and_every_point_arrives() {
    let pki = Pki::new("custom-ca");
    let receiver = Receiver::builder().with_tls(server_tls(&pki)).start().await.unwrap();
    assert!(receiver.endpoint().starts_with("https://localhost:"), "{}", receiver.endpoint());

    let sent =
        send(ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_ca_certificate(&pki.ca_file)).await;

    sent.flushed.unwrap_or_else(|e| panic!("flush over TLS: {}", chain(&e)));
    assert_eq!(receiver.counts().metrics.acked, POINTS);
    assert_eq!((sent.stats.acked, sent.stats.failed, sent.stats.retries), (POINTS, 0, 0));
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate_delivers() {
    let pki = Pki::new("mtls");
    let tls = server_tls(&pki).with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");

    let sent = send(
        ExporterConfig::builder()
            .with_endpoint(receiver.endpoint())
            .with_ca_certificate(&pki.ca_file)
            .with_client_identity(cert, key),
    )
    .await;

    sent.flushed.unwrap_or_else(|e| panic!("flush over mTLS: {}", chain(&e)));
    assert_eq!(receiver.counts().metrics.acked, POINTS);
    assert_eq!(sent.stats.acked, POINTS);
}

#[tokio::test]
async fn a_receiver_certificate_from_another_ca_fails_at_once_and_for_good() {
    let pki = Pki::new("wrong-ca");
    let receiver = Receiver::builder().with_tls(server_tls(&pki)).start().await.unwrap();
    let other_ca = pki.other_ca_file();

    let sent = send(ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_ca_certificate(other_ca)).await;

    let chain = assert_tls_failure_at_once(&sent, TlsErrorKind::UntrustedServerCertificate);
    assert!(chain.contains("invalid peer certificate: UnknownIssuer"), "{chain}");
    assert!(chain.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{chain}");
    assert_eq!(receiver.counts().metrics.requests, 0, "no request passed the handshake");
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused_by_an_mtls_receiver_at_once_and_for_good() {
    let pki = Pki::new("no-client-cert");
    let tls = server_tls(&pki).with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();

    let sent =
        send(ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_ca_certificate(&pki.ca_file)).await;

    let chain = assert_tls_failure_at_once(&sent, TlsErrorKind::ClientCertificateRequired);
    assert!(chain.contains("received fatal alert: CertificateRequired"), "{chain}");
    assert!(chain.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"), "{chain}");
    assert_eq!(receiver.counts().metrics.requests, 0);
}

#[tokio::test]
async fn a_client_certificate_from_an_unknown_ca_is_refused_at_once_and_for_good() {
    let pki = Pki::new("untrusted-client");
    let tls = server_tls(&pki).with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();
    let (cert, key) = pki.client_identity(&new_ca("some other CA"), "stranger");

    let sent = send(
        ExporterConfig::builder()
            .with_endpoint(receiver.endpoint())
            .with_ca_certificate(&pki.ca_file)
            .with_client_identity(cert, key),
    )
    .await;

    let chain = assert_refused_at_once(&sent);
    assert!(chain.contains("received fatal alert: UnknownCA"), "{chain}");
    assert_eq!(receiver.counts().metrics.requests, 0);
}

/// The files are read when the drain is made, before any connection: a path
/// that names nothing is an error there, naming the file's role and its path.
#[tokio::test]
async fn a_tls_file_that_does_not_exist_is_a_read_file_error_naming_the_path() {
    let pki = Pki::new("missing-files");
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");
    let nowhere = pki.dir.0.join("does-not-exist.pem");
    // Nothing listens there, and nothing is dialled: the error comes first.
    let https = ExporterConfig::builder().with_endpoint("https://localhost:1");

    for (config, role, setting) in [
        (https.clone().with_ca_certificate(&nowhere), "CA certificate", "ca_certificate"),
        (
            https.clone().with_ca_certificate(&pki.ca_file).with_client_identity(&nowhere, &key),
            "client certificate",
            "client_certificate",
        ),
        (
            https.clone().with_ca_certificate(&pki.ca_file).with_client_identity(&cert, &nowhere),
            "client key",
            "client_key",
        ),
    ] {
        let err = MetricsDrain::connect(&config.build_without_env().unwrap()).await.expect_err("a missing file");
        let message = err.to_string();
        match err {
            ConnectError::ReadFile { what, path, origin, source, .. } => {
                assert_eq!((what, path.as_path(), origin), (role, nowhere.as_path(), ValueOrigin::Code(setting)));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected ReadFile for the {role}, got {other:?}"),
        }
        assert!(message.contains(role) && message.contains(&*nowhere.to_string_lossy()), "{message}");
        assert!(message.contains(&format!("setting `{setting}`")), "{message}");
    }
}

#[test]
fn the_temp_dir_is_removed_with_its_keys() {
    let dir = TempDir::new("cleanup");
    let key = dir.write("key.pem", &KeyPair::generate().unwrap().serialize_pem());
    let path = dir.0.clone();
    assert!(key.is_file());
    drop(dir);
    assert!(!Path::new(&path).exists(), "{} is still there", path.display());
}

/// A file that is there but holds no PEM certificate (or key) is refused when
/// the drain is made, naming the file's role, its path and its setting.
#[tokio::test]
async fn a_tls_file_without_pem_contents_is_an_invalid_file_error_naming_the_path() {
    let pki = Pki::new("not-pem");
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");
    let garbage = pki.dir.write("garbage.pem", "not a PEM file\n");
    let https = ExporterConfig::builder().with_endpoint("https://localhost:1");

    for (config, role, setting) in [
        (https.clone().with_ca_certificate(&garbage), "CA certificate", "ca_certificate"),
        (
            https.clone().with_ca_certificate(&pki.ca_file).with_client_identity(&garbage, &key),
            "client certificate",
            "client_certificate",
        ),
        (
            https.clone().with_ca_certificate(&pki.ca_file).with_client_identity(&cert, &garbage),
            "client key",
            "client_key",
        ),
        // A key that is not the certificate's.
        (
            https
                .clone()
                .with_ca_certificate(&pki.ca_file)
                .with_client_identity(&cert, pki.client_identity(&pki.ca, "other").1),
            "client key",
            "client_key",
        ),
    ] {
        let err = MetricsDrain::connect(&config.build_without_env().unwrap()).await.expect_err("an unusable file");
        let message = err.to_string();
        let ConnectError::InvalidFile { what, origin, .. } = &err else {
            panic!("expected InvalidFile for the {role}, got {err:?}")
        };
        assert_eq!((*what, *origin), (role, ValueOrigin::Code(setting)), "{}", chain(&err));
        assert!(err.source().is_some(), "the parser's or rustls's reason: {err:?}");
        assert!(message.contains(role) && message.contains(&format!("setting `{setting}`")), "{message}");
    }
}

/// Counts the metric data points it is sent, and answers OK.
struct CountingMetrics(Arc<AtomicU64>);

#[tonic::async_trait]
impl MetricsService for CountingMetrics {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let points: usize = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Sum(sum)) => sum.data_points.len(),
                _ => 0,
            })
            .sum();
        self.0.fetch_add(points as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

/// A server that asks for a client certificate but does not require one
/// (rustls's verifier with unauthenticated clients allowed still sends a
/// CertificateRequest) takes a client without one. Being asked is not
/// being refused: the exporter delivers, without a retry.
#[tokio::test]
async fn a_server_that_asks_for_a_client_certificate_without_requiring_one_receives_everything() {
    let pki = Pki::new("optional-client-cert");
    let (cert, key) = pki.server_pem();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .client_ca_root(Certificate::from_pem(pki.ca.pem()))
        .client_auth_optional(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicU64::new(0));
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(MetricsServiceServer::new(CountingMetrics(Arc::clone(&received))))
        .serve_with_incoming(TcpIncoming::from(listener));
    let server = tokio::spawn(server);

    let endpoint = format!("https://localhost:{port}");
    let sent = send(ExporterConfig::builder().with_endpoint(endpoint).with_ca_certificate(&pki.ca_file)).await;

    sent.flushed.unwrap_or_else(|e| panic!("flush to a server with optional client auth: {}", chain(&e)));
    assert_eq!((sent.stats.acked, sent.stats.failed, sent.stats.retries), (POINTS, 0, 0));
    assert_eq!(received.load(Ordering::Relaxed), POINTS);
    server.abort();
}
