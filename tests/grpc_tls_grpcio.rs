//! The OTLP/gRPC drain over TLS against a server that is not this crate's:
//! grpcio (`scripts/otlp_tls_server.py`, BoringSSL's TLS) with
//! `grpc.ssl_server_credentials(..., require_client_auth=True)`, as a
//! collector requiring mutual TLS is configured.
//!
//! The two failures a user meets first are permanent at the first attempt
//! and say what to configure: a client certificate the server asked for and
//! none is configured, and a server certificate this side does not trust.
//! Both are checked on the drain's own counters (no retry) and on the error.
//! The mTLS happy path through the same server proves the server is a fair
//! test of the failures.
//!
//! Certificates are made by the test with rcgen (`tests/support/tls.rs`) and
//! passed to the server by path. Needs the test venv (`scripts/install-test-deps.sh`).

mod support;

use std::error::Error;
use std::time::Duration;

use otlp_sink::{
    deliver::ExportError,
    sink::{DrainErrorKind, FlushError},
    tls::TlsErrorKind,
    ExporterConfig,
};
use support::errors::chain;
use support::grpcio_tls::{GrpcioTls, Request, ServerFiles};
use support::rotel;
use support::tls::{send, Pki, Sent, POINTS};

/// Starts the grpcio server with a certificate for `localhost` from `pki`'s
/// CA, requiring a client certificate from that CA when `mutual`.
fn grpcio_server(pki: &Pki, mutual: bool) -> GrpcioTls {
    let (cert, key) = pki.server_identity();
    let client_ca = mutual.then_some(pki.ca_file.as_path());
    GrpcioTls::start(&rotel::venv_python(), ServerFiles { cert: &cert, key: &key, client_ca })
}

/// Asserts that the flush failed with a TLS failure of `kind` at the first
/// attempt, with no retry and no gRPC status, and returns the drain error's
/// message and the whole error chain.
fn assert_tls_failure_at_once(sent: &Sent, kind: TlsErrorKind) -> (String, String) {
    let err = sent.flushed.as_ref().expect_err("the flush must fail");
    let FlushError::Drain { source, .. } = err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!(source.kind(), DrainErrorKind::Permanent, "{}", chain(err));
    assert_eq!(source.items(), Some(POINTS));
    let export = source.source().and_then(|s| s.downcast_ref::<ExportError>()).expect("an ExportError");
    let ExportError::Tls { error, attempts, .. } = export else { panic!("expected Tls, got {export:?}") };
    assert_eq!((error.kind(), *attempts), (kind, 1), "{}", chain(err));
    assert_eq!(export.code(), None, "the server sent no gRPC status: {}", chain(err));
    // One request, one attempt: no retry, every point failed, none acked.
    let stats = sent.stats;
    assert_eq!((stats.requests, stats.retries, stats.acked, stats.failed), (1, 0, 0, POINTS), "{stats:?}");
    // A retry would have waited 10 s first.
    assert!(sent.took < Duration::from_secs(5), "the failure took {:?}", sent.took);
    (export.to_string(), chain(err))
}

#[tokio::test]
async fn mutual_tls_through_grpcio_delivers_every_point() {
    let pki = Pki::new("grpcio-mtls");
    let mut server = grpcio_server(&pki, true);
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");

    let sent = send(
        ExporterConfig::builder()
            .with_endpoint(server.endpoint())
            .with_ca_certificate(&pki.ca_file)
            .with_client_identity(cert, key),
    )
    .await;

    sent.flushed.unwrap_or_else(|e| panic!("flush over mTLS to grpcio: {}", chain(&e)));
    let stats = sent.stats;
    assert_eq!((stats.acked, stats.failed, stats.retries), (POINTS, 0, 0), "{stats:?}");
    // The server printed its line before it answered; the reader thread may
    // still be on its way to the channel.
    let received = server.wait_for_client("exporter", SERVER_LINE_TIMEOUT);
    assert_eq!(received, [Request { items: POINTS, client: "exporter".into() }]);
}

/// How long to wait for a server's line about a request that was answered.
const SERVER_LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Proves that nothing the failed drain sent reached the server's services:
/// a well configured drain's points, sent after the failed one was shut
/// down, are all the server ever counts.
async fn assert_only_a_good_drain_got_through(server: &mut GrpcioTls, pki: &Pki) {
    let (cert, key) = pki.client_identity(&pki.ca, "good-exporter");
    let good = send(
        ExporterConfig::builder()
            .with_endpoint(server.endpoint())
            .with_ca_certificate(&pki.ca_file)
            .with_client_identity(cert, key),
    )
    .await;
    good.flushed.unwrap_or_else(|e| panic!("the well configured drain: {}", chain(&e)));
    // Had the failed drain got a request through, its line would have come
    // before the good drain's.
    let received = server.wait_for_client("good-exporter", SERVER_LINE_TIMEOUT);
    assert_eq!(received, [Request { items: POINTS, client: "good-exporter".into() }]);
}

#[tokio::test]
async fn a_missing_client_certificate_fails_at_the_first_attempt_and_names_what_to_set() {
    let pki = Pki::new("grpcio-no-client-cert");
    let mut server = grpcio_server(&pki, true);

    let sent = send(ExporterConfig::builder().with_endpoint(server.endpoint()).with_ca_certificate(&pki.ca_file)).await;

    let (message, chain) = assert_tls_failure_at_once(&sent, TlsErrorKind::ClientCertificateRequired);
    for name in
        ["requires a client certificate", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY"]
    {
        assert!(message.contains(name), "{name:?} is not in {message:?}");
    }
    assert!(message.contains("ExporterConfigBuilder::with_client_identity"), "{message}");
    assert!(!chain.contains("refused the request with"), "not a gRPC status: {chain}");
    assert_only_a_good_drain_got_through(&mut server, &pki).await;
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_at_the_first_attempt_and_names_the_ca_setting() {
    let pki = Pki::new("grpcio-untrusted-server");
    // Mutual, as the collector of the report was: the server certificate is
    // refused before the client certificate matters.
    let mut server = grpcio_server(&pki, true);
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");

    let sent = send(
        ExporterConfig::builder()
            .with_endpoint(server.endpoint())
            .with_ca_certificate(pki.other_ca_file())
            .with_client_identity(cert, key),
    )
    .await;

    let (message, chain) = assert_tls_failure_at_once(&sent, TlsErrorKind::UntrustedServerCertificate);
    for part in [
        "the collector's TLS certificate is not trusted here",
        "invalid peer certificate: UnknownIssuer",
        "named by setting `ca_certificate`",
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "ExporterConfigBuilder::with_ca_certificate",
    ] {
        assert!(message.contains(part), "{part:?} is not in {message:?}");
    }
    for status_words in ["refused the request with", "Unavailable"] {
        assert!(!chain.contains(status_words), "not a gRPC status: {chain}");
    }
    assert_only_a_good_drain_got_through(&mut server, &pki).await;
}
