//! The OTLP/gRPC drain over TLS and mutual TLS, against the crate's in-process
//! receiver (rotel's receivers have no TLS, see `tests/support/ROTEL.md`).
//!
//! Every test makes its own certificates with rcgen: a CA, a server
//! certificate for `localhost` (the host of [`Receiver::endpoint`] with TLS),
//! client certificates. The files the exporter reads are written as PEM to a
//! directory of the test's own under the system temp directory, removed when
//! the test ends. No key is committed.

#![cfg(feature = "receiver")]

#[path = "support/points.rs"]
mod points;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otlp_sink::receiver::{Receiver, ReceiverTls};
use otlp_sink::{
    BackgroundSink, ConnectError, DrainErrorKind, ExportError, ExportStats, ExporterConfig, ExporterConfigBuilder,
    FlushError, MetricsDrain, RetryPolicy, SinkConfig, ValueOrigin,
};
use points::Shared;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_util::sync::CancellationToken;

const POINTS: u64 = 1_000;

/// A directory under the system temp directory, unique to one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos();
        let name =
            format!("otlp-sink-tls-{label}-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        // `create_dir` (not `_all`) fails if the name is taken: the directory is ours alone.
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self(path)
    }

    /// Writes `contents` to the file `name` in this directory and returns its path.
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type Ca = CertifiedIssuer<'static, KeyPair>;

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA certificate")
}

/// A certificate for `name` issued by `ca`, for `usage`: (certificate PEM, key PEM).
fn issue(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("a valid DNS name");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// What one test needs: a CA, a receiver certificate for `localhost` from it,
/// and the directory for the files the exporter reads (`ca.pem` is in it).
struct Pki {
    dir: TempDir,
    ca: Ca,
    ca_file: PathBuf,
}

impl Pki {
    fn new(label: &str) -> Self {
        let dir = TempDir::new(label);
        let ca = new_ca("otlp-sink test CA");
        let ca_file = dir.write("ca.pem", &ca.pem());
        Self { dir, ca, ca_file }
    }

    /// The receiver's TLS settings: a certificate for `localhost` from the CA.
    fn server_tls(&self) -> ReceiverTls {
        let (cert, key) = issue(&self.ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
        ReceiverTls::new(cert, key)
    }

    /// A client certificate from `ca`, written to files: (certificate, key).
    fn client_identity(&self, ca: &Ca, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = issue(ca, name, ExtendedKeyUsagePurpose::ClientAuth);
        (self.dir.write(&format!("{name}.pem"), &cert), self.dir.write(&format!("{name}-key.pem"), &key))
    }
}

/// A retry policy that would make any retry obvious: the first one waits 10 s.
fn slow_retries() -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_secs(10))
        .with_max_delay(Duration::from_secs(10))
        .with_max_elapsed(Duration::from_secs(60))
}

struct Sent {
    flushed: Result<(), FlushError>,
    took: Duration,
    stats: ExportStats,
}

/// Pushes [`POINTS`] metric points through a sink and a drain for `config`,
/// flushes, and shuts the sink down.
async fn send(config: ExporterConfigBuilder) -> Sent {
    let config = config.with_retry_policy(slow_retries()).build_without_env().expect("valid exporter config");
    let drain = MetricsDrain::connect(&config).await.expect("the TLS files are readable");
    let stats = drain.stats();
    // One batch, one request: a failure covers every point.
    let sink_config = SinkConfig::default().with_queue_capacity(10_000).with_batch_size(POINTS as usize);
    let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).expect("sink");
    for point in Shared::new().counters(1, POINTS as usize) {
        sink.try_push(point).unwrap_or_else(|e| panic!("queue refused a point: {e}"));
    }
    let started = Instant::now();
    let flushed = sink.flush().await;
    let took = started.elapsed();
    // Nothing is in flight after the flush: shutdown returns at once.
    let _ = handle.shutdown_timeout(Duration::from_secs(5)).await;
    Sent { flushed, took, stats: stats.snapshot() }
}

#[path = "support/errors.rs"]
mod errors;
use errors::chain;

/// Asserts that the flush failed for good on the first attempt, without a
/// retry, and returns the error chain.
fn assert_refused_at_once(sent: &Sent) -> String {
    let err = sent.flushed.as_ref().expect_err("the flush must fail");
    let FlushError::Drain { source, .. } = err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!(source.kind(), DrainErrorKind::Permanent, "{}", chain(err));
    assert_eq!(source.items(), Some(POINTS));
    let export = source.source().and_then(|s| s.downcast_ref::<ExportError>()).expect("an ExportError");
    let ExportError::Refused { attempts, .. } = export else { panic!("expected Refused, got {export:?}") };
    assert_eq!(*attempts, 1, "{}", chain(err));
    assert_eq!((sent.stats.retries, sent.stats.acked, sent.stats.failed), (0, 0, POINTS));
    // A retry would have waited 10 s first.
    assert!(sent.took < Duration::from_secs(5), "the failure took {:?}", sent.took);
    chain(err)
}

#[tokio::test]
async fn a_custom_ca_verifies_the_receiver_and_every_point_arrives() {
    let pki = Pki::new("custom-ca");
    let receiver = Receiver::builder().with_tls(pki.server_tls()).start().await.unwrap();
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
    let tls = pki.server_tls().with_client_ca(pki.ca.pem());
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
    let receiver = Receiver::builder().with_tls(pki.server_tls()).start().await.unwrap();
    let other_ca = pki.dir.write("other-ca.pem", &new_ca("some other CA").pem());

    let sent = send(ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_ca_certificate(other_ca)).await;

    let chain = assert_refused_at_once(&sent);
    assert!(chain.contains("invalid peer certificate: UnknownIssuer"), "{chain}");
    assert_eq!(receiver.counts().metrics.requests, 0, "no request passed the handshake");
}

#[tokio::test]
async fn a_missing_client_certificate_is_refused_by_an_mtls_receiver_at_once_and_for_good() {
    let pki = Pki::new("no-client-cert");
    let tls = pki.server_tls().with_client_ca(pki.ca.pem());
    let receiver = Receiver::builder().with_tls(tls).start().await.unwrap();

    let sent =
        send(ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_ca_certificate(&pki.ca_file)).await;

    let chain = assert_refused_at_once(&sent);
    assert!(chain.contains("received fatal alert: CertificateRequired"), "{chain}");
    assert_eq!(receiver.counts().metrics.requests, 0);
}

#[tokio::test]
async fn a_client_certificate_from_an_unknown_ca_is_refused_at_once_and_for_good() {
    let pki = Pki::new("untrusted-client");
    let tls = pki.server_tls().with_client_ca(pki.ca.pem());
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
