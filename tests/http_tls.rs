//! HTTPS and mutual TLS over OTLP/HTTP against the in-process receiver's
//! HTTP listener (rustls, certificates made with rcgen per test): the
//! `*_CERTIFICATE` and client-identity settings work on HTTPS as on gRPC,
//! and a refusal on either side fails at once, without a retry.

#![cfg(feature = "receiver")]

mod support;

use std::error::Error as _;
use std::time::Duration;

use otlp_sink::deliver::ExportError;
use otlp_sink::receiver::{Receiver, ReceiverTls};
use otlp_sink::sink::{DrainErrorKind, FlushError};
use otlp_sink::{ExporterConfig, Protocol};
use support::errors::chain;
use support::tls::{send, Pki, Sent, POINTS};

fn server_tls(pki: &Pki) -> ReceiverTls {
    let (cert, key) = pki.server_pem();
    ReceiverTls::new(cert, key)
}

/// The drain's config on OTLP/HTTP, aimed at the receiver's HTTPS listener.
fn https(receiver: &Receiver) -> otlp_sink::config::ExporterConfigBuilder {
    ExporterConfig::builder().with_protocol(Protocol::HttpProtobuf).with_endpoint(receiver.http_endpoint())
}

/// The flush failed for good on the first attempt (a retry would have
/// waited 10 s), every point failed, nothing reached the receiver.
fn assert_failed_at_once(sent: &Sent, receiver: &Receiver) -> String {
    let err = sent.flushed.as_ref().expect_err("the flush must fail");
    let FlushError::Drain { source, .. } = err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!((source.kind(), source.items()), (DrainErrorKind::Permanent, Some(POINTS)), "{}", chain(err));
    assert!(source.source().and_then(|s| s.downcast_ref::<ExportError>()).is_some(), "{}", chain(err));
    assert_eq!((sent.stats.retries, sent.stats.acked, sent.stats.failed), (0, 0, POINTS));
    assert!(sent.took < Duration::from_secs(5), "the failure took {:?}", sent.took);
    assert_eq!(receiver.counts().metrics.requests, 0);
    chain(err)
}

#[tokio::test]
async fn https_with_a_custom_ca_delivers_every_point() {
    let pki = Pki::new("http-custom-ca");
    let receiver = Receiver::builder().with_tls(server_tls(&pki)).start().await.unwrap();
    assert!(receiver.http_endpoint().starts_with("https://localhost:"), "{}", receiver.http_endpoint());

    let sent = send(https(&receiver).with_ca_certificate(&pki.ca_file)).await;

    sent.flushed.unwrap_or_else(|e| panic!("flush over HTTPS: {}", chain(&e)));
    let c = receiver.counts().metrics;
    assert_eq!((c.acked, c.http_requests, c.requests), (POINTS, 1, 1), "{c:?}");
    assert_eq!((sent.stats.acked, sent.stats.failed, sent.stats.retries), (POINTS, 0, 0));
}

#[tokio::test]
async fn https_with_mutual_tls_delivers_with_a_client_certificate() {
    let pki = Pki::new("http-mtls");
    let tls = server_tls(&pki).with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();
    let (cert, key) = pki.client_identity(&pki.ca, "exporter");

    let sent = send(https(&receiver).with_ca_certificate(&pki.ca_file).with_client_identity(cert, key)).await;

    sent.flushed.unwrap_or_else(|e| panic!("flush over mTLS: {}", chain(&e)));
    assert_eq!(receiver.counts().metrics.acked, POINTS);
    assert_eq!(sent.stats.acked, POINTS);
}

#[tokio::test]
async fn a_receiver_certificate_from_another_ca_fails_at_once() {
    let pki = Pki::new("http-other-ca");
    let receiver = Receiver::builder().with_tls(server_tls(&pki)).start().await.unwrap();
    let sent = send(https(&receiver).with_ca_certificate(pki.other_ca_file())).await;
    let text = assert_failed_at_once(&sent, &receiver);
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_fails_at_once() {
    let pki = Pki::new("http-mtls-missing");
    let tls = server_tls(&pki).with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();
    let sent = send(https(&receiver).with_ca_certificate(&pki.ca_file)).await;
    let text = assert_failed_at_once(&sent, &receiver);
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

/// The receiver's own TLS settings are checked when it starts, for both
/// listeners: a key that is not PEM is refused with a TLS error.
#[tokio::test]
async fn a_receiver_key_that_is_not_pem_is_refused_at_start() {
    let pki = Pki::new("http-bad-key");
    let (cert, _) = pki.server_pem();
    let err = Receiver::builder().with_tls(ReceiverTls::new(cert, "not a key")).start().await.unwrap_err();
    assert!(matches!(err, otlp_sink::receiver::ReceiverError::Tls(_)), "{err:?}");
    assert!(err.source().is_some(), "the TLS library's error is the source");
}
