//! TLS settings made in code ([`TlsConfig`]), and where each certificate or
//! key comes from (a file, or PEM held in memory), so that a file that cannot
//! be read is reported under the variable or setting that named it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::headers::Redacted;
use super::{ExporterConfigError, ExporterConfigErrorKind, ValueOrigin};

/// A certificate or key: a PEM file to read when the exporter connects, or
/// PEM bytes given in code.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Pem {
    File(PathBuf),
    /// Never shown: a private key is a secret.
    Inline(Redacted<Arc<[u8]>>),
}

impl Pem {
    fn inline(pem: impl Into<Vec<u8>>) -> Self {
        Self::Inline(Redacted::new(Arc::from(pem.into())))
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => path.fmt(f),
            Self::Inline(_) => f.write_str("<PEM given in code>"),
        }
    }
}

/// TLS settings for the connection to the collector: the CA certificate the
/// collector's certificate is checked against, and a client certificate and
/// key for mutual TLS. Each is a PEM file (read when the exporter connects)
/// or PEM bytes.
///
/// Give it to `with_tls_config` on [`OtlpExporterBuilder`](crate::sdk::OtlpExporterBuilder)
/// or [`ExporterConfigBuilder`](crate::config::ExporterConfigBuilder). What it sets
/// wins over `OTEL_EXPORTER_OTLP_CERTIFICATE`, `_CLIENT_CERTIFICATE` and
/// `_CLIENT_KEY`; what it leaves unset still comes from them. TLS itself is
/// decided by the endpoint's scheme: these settings are used with
/// `https://` only.
///
/// `Debug` shows file paths, never PEM bytes.
///
/// ```
/// use otlp_sink::config::TlsConfig;
///
/// let tls = TlsConfig::new()
///     .with_ca_certificate_file("/etc/otel/ca.pem")
///     .with_client_identity_pem(b"-----BEGIN CERTIFICATE-----\n...".to_vec(), b"-----BEGIN PRIVATE KEY-----\n...".to_vec());
/// assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub(crate) ca_certificate: Option<Pem>,
    /// The certificate and its key: one setting.
    pub(crate) client_identity: Option<(Pem, Pem)>,
}

impl TlsConfig {
    /// Nothing set: the system's root certificates, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// The CA certificate (PEM file) to check the collector against, instead
    /// of the system's roots.
    #[must_use]
    pub fn with_ca_certificate_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certificate = Some(Pem::File(path.into()));
        self
    }

    /// The CA certificate as PEM bytes.
    #[must_use]
    pub fn with_ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(Pem::inline(pem));
        self
    }

    /// A client certificate and its private key (PEM files) for mutual TLS.
    #[must_use]
    pub fn with_client_identity_files(mut self, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_identity = Some((Pem::File(certificate.into()), Pem::File(key.into())));
        self
    }

    /// A client certificate and its private key as PEM bytes.
    #[must_use]
    pub fn with_client_identity_pem(mut self, certificate: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.client_identity = Some((Pem::inline(certificate), Pem::inline(key)));
        self
    }
}

/// A certificate or key and where it was configured, so that a missing file
/// is reported under the variable or setting that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigPath {
    pem: Pem,
    origin: ValueOrigin,
}

impl ConfigPath {
    pub(crate) fn new(path: impl Into<PathBuf>, origin: ValueOrigin) -> Self {
        Self::from_pem(Pem::File(path.into()), origin)
    }

    pub(crate) fn from_pem(pem: Pem, origin: ValueOrigin) -> Self {
        Self { pem, origin }
    }

    /// The file's path; for PEM given in code, a placeholder (reading it
    /// cannot fail, so no error shows it).
    pub(crate) fn path(&self) -> &Path {
        self.file().unwrap_or(Path::new("<PEM given in code>"))
    }

    /// The file's path, `None` for PEM given in code.
    pub(crate) fn file(&self) -> Option<&Path> {
        match &self.pem {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        }
    }

    pub(crate) fn origin(&self) -> ValueOrigin {
        self.origin
    }

    /// The PEM bytes: the file read (without blocking the runtime), or the
    /// bytes given in code.
    pub(crate) async fn read(&self) -> io::Result<Vec<u8>> {
        match &self.pem {
            Pem::File(path) => tokio::fs::read(path).await,
            Pem::Inline(pem) => Ok(pem.expose().to_vec()),
        }
    }

    pub(crate) fn error(&self, kind: ExporterConfigErrorKind) -> ExporterConfigError {
        ExporterConfigError::new(self.origin, self.path().display().to_string(), kind)
    }

    /// Checks that a file names one this process can open (PEM given in code
    /// needs no check).
    pub(crate) fn check_readable(&self) -> Result<(), ExporterConfigError> {
        let Some(path) = self.file() else { return Ok(()) };
        let unreadable = |err: io::Error| self.error(ExporterConfigErrorKind::UnreadableFile).with_source(err);
        let file = std::fs::File::open(path).map_err(unreadable)?;
        // Opening a directory succeeds on Unix; reading it would not.
        if file.metadata().map_err(unreadable)?.is_dir() {
            return Err(unreadable(io::ErrorKind::IsADirectory.into()));
        }
        Ok(())
    }
}
