//! Certificates and a send-and-flush helper for the TLS tests.
//!
//! Every test makes its own certificates with rcgen: a CA, a server
//! certificate for `localhost`, client certificates. The files are written as
//! PEM to a directory of the test's own under the system temp directory,
//! removed when the test ends. No key is committed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otlp_sink::{
    config::{ExporterConfigBuilder, RetryPolicy},
    deliver::DeliveryStats,
    sink::FlushError,
    BackgroundSink, ExporterConfig, MetricsDrain, SinkConfig,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_util::sync::CancellationToken;

use super::points::Shared;

/// Points [`send`] pushes, in one batch and so in one request.
pub const POINTS: u64 = 1_000;

/// A directory under the system temp directory, unique to one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
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
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
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

pub type Ca = CertifiedIssuer<'static, KeyPair>;

pub fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA certificate")
}

/// A certificate for `name` issued by `ca`, for `usage`: (certificate PEM, key PEM).
pub fn issue(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("a valid DNS name");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// What one test needs: a CA and the directory for the files the exporter
/// and the servers read (`ca.pem` is in it).
pub struct Pki {
    pub dir: TempDir,
    pub ca: Ca,
    pub ca_file: PathBuf,
}

impl Pki {
    pub fn new(label: &str) -> Self {
        let dir = TempDir::new(label);
        let ca = new_ca("otlp-sink test CA");
        let ca_file = dir.write("ca.pem", &ca.pem());
        Self { dir, ca, ca_file }
    }

    /// A server certificate for `localhost` from the CA: (certificate PEM, key PEM).
    pub fn server_pem(&self) -> (String, String) {
        issue(&self.ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate for `localhost` from the CA, written to files: (certificate, key).
    pub fn server_identity(&self) -> (PathBuf, PathBuf) {
        let (cert, key) = self.server_pem();
        (self.dir.write("server.pem", &cert), self.dir.write("server-key.pem", &key))
    }

    /// A client certificate from `ca`, written to files: (certificate, key).
    pub fn client_identity(&self, ca: &Ca, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = issue(ca, name, ExtendedKeyUsagePurpose::ClientAuth);
        (self.dir.write(&format!("{name}.pem"), &cert), self.dir.write(&format!("{name}-key.pem"), &key))
    }

    /// The certificate of a CA that issued nothing the test trusts, written to a file.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.write("other-ca.pem", &new_ca("some other CA").pem())
    }
}

/// A retry policy that would make any retry obvious: the first one waits 10 s.
pub fn slow_retries() -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_secs(10))
        .with_max_delay(Duration::from_secs(10))
        .with_max_elapsed(Duration::from_secs(60))
}

pub struct Sent {
    pub flushed: Result<(), FlushError>,
    pub took: Duration,
    pub stats: DeliveryStats,
}

/// Pushes [`POINTS`] metric points through a sink and a drain for `config`
/// (with [`slow_retries`]), flushes, and shuts the sink down.
pub async fn send(config: ExporterConfigBuilder) -> Sent {
    send_with(&config.with_retry_policy(slow_retries()).build_without_env().expect("valid exporter config")).await
}

/// [`send`] with a configuration already built (its own retry policy).
pub async fn send_with(config: &ExporterConfig) -> Sent {
    let drain = MetricsDrain::connect(config).await.expect("the TLS files are readable");
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
