//! TLS for every transport. Public here: the errors of the setup,
//! [`ConnectError`] and [`TlsError`], which name the file, variable or
//! certificate to fix.
//!
//! Behind them, the client side of TLS: this crate's own rustls configuration and the
//! connector that both transports dial through (tonic's channel for gRPC,
//! hyper-util's pool for OTLP/HTTP), so that the handshake can tell what the
//! collector asked for.
//!
//! tonic's own TLS builds its rustls configuration out of sight, so it
//! cannot say whether the server asked for a client certificate: rustls asks
//! the client's [`ResolvesClientCert`] for one only when the server sent a
//! CertificateRequest. Here that resolver is ours, one per connection, and
//! it remembers being asked. That fact, not the text of an error, names the
//! failure of a collector that requires a certificate none is configured for:
//!
//! - With TLS 1.2 (or a refusal inside the handshake) the handshake fails,
//!   and the connector returns a [`TlsError`] of kind
//!   [`TlsErrorKind::ClientCertificateRequired`].
//! - With TLS 1.3 the client's handshake completes before the server looks at
//!   the (empty) certificate, so the refusal arrives as the end of the
//!   connection, on hyper's first read. The connection's `TlsIo` sees that
//!   end before the server sent any data, records the [`TlsError`] in the
//!   channel's `Refusal`, and the export that failed on it reports that.
//!
//! A server certificate that does not verify fails the handshake with
//! rustls's `InvalidCertificate`, which becomes a [`TlsError`] of kind
//! [`TlsErrorKind::UntrustedServerCertificate`].
//!
//! Per connection, as tonic did: TCP with `TCP_NODELAY`, the handshake with
//! ALPN `h2` (required) for gRPC or `http/1.1` for OTLP/HTTP, the
//! configured CA replacing the system's roots. For gRPC the connect timeout
//! and the HTTP/2 keep-alive stay tonic's (set on its `Endpoint`); for
//! OTLP/HTTP the attempt's timeout covers the connection.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, SignatureScheme};
use tonic::codegen::Service as _;

use crate::config::{ConfigPath, ExporterConfig, Proxy, ProxyWantsCredentials, ValueOrigin};
use crate::tcp::{PlainConnector, TcpIo};

/// Why an exporter could not be set up: a TLS file that cannot be read or
/// holds nothing usable, or TLS settings that cannot be used.
#[non_exhaustive]
#[derive(Debug)]
pub enum ConnectError {
    /// A TLS file could not be read.
    ReadFile {
        /// What the file is: `"CA certificate"`, `"client certificate"` or `"client key"`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Where the path was configured: the environment variable or the
        /// builder setting that named it.
        origin: ValueOrigin,
        /// The I/O error.
        source: io::Error,
    },
    /// A TLS file was read but holds nothing usable: no PEM certificate in a
    /// certificate file, no PEM private key in a key file, or a key that
    /// does not match its certificate.
    InvalidFile {
        /// What the file is: `"CA certificate"`, `"client certificate"` or `"client key"`.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Where the path was configured: the environment variable or the
        /// builder setting that named it.
        origin: ValueOrigin,
        /// What the PEM parser or rustls said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No CA certificate is configured, and no root certificate of the
    /// system could be loaded to check the collector's certificate against.
    NoSystemRoots {
        /// The first error met loading them, if there was one.
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The TLS settings were refused (for example, an endpoint host that is
    /// not a valid TLS server name).
    Tls(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadFile { what, path, origin, .. } => {
                write!(f, "cannot read the {what} file {:?} named by {origin}", path.display().to_string())
            }
            Self::InvalidFile { what, path, origin, .. } => {
                write!(f, "the {what} file {:?} named by {origin} holds no usable {what}", path.display().to_string())
            }
            Self::NoSystemRoots { .. } => f.write_str(
                "no CA certificate is configured (OTEL_EXPORTER_OTLP_CERTIFICATE, \
                 ExporterConfigBuilder::with_ca_certificate) and the system's root certificates cannot be loaded",
            ),
            Self::Tls(_) => f.write_str("the TLS settings were refused"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadFile { source, .. } => Some(source),
            Self::InvalidFile { source, .. } | Self::Tls(source) => Some(&**source),
            Self::NoSystemRoots { source } => source.as_deref().map(|e| e as _),
        }
    }
}

type BoxError = Box<dyn Error + Send + Sync>;

const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The application protocol a connector offers in the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `h2`, required: gRPC runs over HTTP/2 only.
    H2,
    /// `http/1.1`: OTLP/HTTP. A server that selects no protocol is taken to
    /// speak HTTP/1.1, as ALPN allows.
    Http1,
}

/// What a [`TlsError`] is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsErrorKind {
    /// The collector asked for a client certificate during the handshake
    /// (mutual TLS), none is configured, and the collector ended the
    /// connection. Set a client certificate and key.
    ClientCertificateRequired,
    /// The collector's certificate did not verify against the trusted roots
    /// here: this side refused it. Configure the CA that issued it.
    UntrustedServerCertificate,
}

/// Where the roots that server certificates are checked against come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// The configured CA certificate file, and the variable or setting that named it.
    Configured { path: PathBuf, origin: ValueOrigin },
    /// The system's root certificates.
    System,
}

/// A TLS failure between this exporter and the collector that retrying
/// cannot fix: the configuration has to change. It is the error of an
/// [`ExportError::Tls`](crate::deliver::ExportError::Tls), reported at the attempt
/// that met it and never retried.
///
/// Its message says what failed and names the environment variables and the
/// [`ExporterConfigBuilder`](crate::config::ExporterConfigBuilder) method to set; its
/// [`source`](Error::source) is what rustls reported (the certificate error,
/// or the connection's end or alert).
#[derive(Debug, Clone)]
pub struct TlsError {
    kind: TlsErrorKind,
    /// What the server's certificate was checked against: set exactly for
    /// [`TlsErrorKind::UntrustedServerCertificate`].
    roots: Option<Roots>,
    /// The rustls error or the I/O error of the connection's end. Shared,
    /// so that the error can be both recorded for the channel and returned
    /// up the connection.
    source: Arc<dyn Error + Send + Sync>,
}

impl TlsError {
    /// What the failure is about.
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// A collector that asked for a client certificate, none being
    /// configured, ended the connection with `end`.
    pub(crate) fn client_certificate_required(end: io::Error) -> Self {
        Self { kind: TlsErrorKind::ClientCertificateRequired, roots: None, source: Arc::new(end) }
    }

    fn untrusted_server_certificate(roots: Roots, source: rustls::Error) -> Self {
        Self { kind: TlsErrorKind::UntrustedServerCertificate, roots: Some(roots), source: Arc::new(source) }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TlsErrorKind::ClientCertificateRequired => f.write_str(
                "the collector requires a client certificate (mutual TLS): it asked for one during the TLS \
                 handshake, none is configured, and it ended the connection; set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE \
                 and OTEL_EXPORTER_OTLP_CLIENT_KEY (or their per-signal forms), or call \
                 ExporterConfigBuilder::with_client_identity, with a certificate the collector accepts and its key",
            ),
            TlsErrorKind::UntrustedServerCertificate => {
                write!(
                    f,
                    "the collector's TLS certificate is not trusted here ({}); it was checked against ",
                    self.source
                )?;
                match &self.roots {
                    Some(Roots::Configured { path, origin }) => {
                        write!(f, "the CA certificate {:?} named by {origin}", path.display().to_string())?;
                    }
                    Some(Roots::System) | None => {
                        f.write_str("the system's root certificates, as no CA certificate is configured")?;
                    }
                }
                f.write_str(
                    "; to trust it, set OTEL_EXPORTER_OTLP_CERTIFICATE (or its per-signal form), or call \
                     ExporterConfigBuilder::with_ca_certificate, with the CA certificate that issued it",
                )
            }
        }
    }
}

impl Error for TlsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// A PEM file that holds none of what it should.
fn nothing_in(what: &'static str, file: &ConfigPath, source: impl Into<BoxError>) -> ConnectError {
    ConnectError::InvalidFile { what, path: file.path().to_owned(), origin: file.origin(), source: source.into() }
}

/// The channel's memory of a collector that ended a connection for want of a
/// client certificate, shared by the connections of one channel and the
/// client that reads it when an export fails.
///
/// Set when a connection on which the collector asked for a certificate (and
/// none is configured) ends before the collector sent a byte; cleared when a
/// later connection receives data. While it is set, an export that fails on
/// this channel is reported as failed for that reason: a server that
/// requires a certificate never sends a byte to a client without one, and the
/// configuration cannot change while the channel lives.
///
/// The one misreading left: a server that asks for a certificate without
/// requiring it, and drops a connection for another reason before sending
/// anything on it, is taken for one that requires it (until a later
/// connection to it receives data).
#[derive(Debug, Default)]
pub(crate) struct Refusal(Mutex<Option<TlsError>>);

impl Refusal {
    /// The recorded refusal, if one is recorded.
    pub(crate) fn get(&self) -> Option<TlsError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, error: TlsError) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// Records a refusal, as a connection would: for other modules' tests.
    #[cfg(test)]
    pub(crate) fn set_for_test(&self, error: TlsError) {
        self.set(error);
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
    }
}

/// A client certificate resolver that remembers whether the server asked.
/// One per connection, so that the answer is that connection's.
#[derive(Debug)]
struct Resolver {
    identity: Option<Arc<CertifiedKey>>,
    asked: AtomicBool,
}

impl ResolvesClientCert for Resolver {
    fn resolve(&self, _issuers: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        // rustls calls this only when the server sent a CertificateRequest.
        self.asked.store(true, Ordering::Relaxed);
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// The `tower` service tonic's channel connects through: TCP, then TLS.
#[derive(Debug, Clone)]
pub(crate) struct TlsConnector {
    /// Without a client certificate resolver of its own; each connection
    /// gets a copy with a fresh [`Resolver`].
    config: Arc<ClientConfig>,
    identity: Option<Arc<CertifiedKey>>,
    roots: Roots,
    server_name: ServerName<'static>,
    refusal: Arc<Refusal>,
    alpn: Alpn,
    /// The HTTP proxy to tunnel through (`CONNECT`), and how errors name it.
    proxy: Option<(Tunnel<PlainConnector>, Arc<str>)>,
}

impl TlsConnector {
    /// Reads the configured CA certificate and client identity and prepares
    /// the rustls configuration, offering `alpn` in each handshake.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`] when a file cannot be read or holds no usable
    /// certificate or key, when no CA is configured and the system has no
    /// roots, or when the endpoint's host is not a valid TLS server name.
    pub(crate) async fn new(config: &ExporterConfig, alpn: Alpn) -> Result<Self, ConnectError> {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));

        let mut store = RootCertStore::empty();
        let roots = match &config.ca_certificate {
            // A custom CA replaces the system roots: the collector is
            // expected to present a certificate from it.
            Some(ca) => {
                let pem = read("CA certificate", ca).await?;
                let certs = certificates("CA certificate", ca, &pem)?;
                let (added, _unparsable) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(nothing_in("CA certificate", ca, pem::Error::NoItemsFound));
                }
                Roots::Configured { path: ca.path().to_owned(), origin: ca.origin() }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _unparsable) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(ConnectError::NoSystemRoots {
                        source: found.errors.into_iter().next().map(|e| e.into()),
                    });
                }
                Roots::System
            }
        };

        let identity = match (&config.client_certificate, &config.client_key) {
            (Some(cert_file), Some(key_file)) => {
                let chain =
                    certificates("client certificate", cert_file, &read("client certificate", cert_file).await?)?;
                let key = PrivateKeyDer::from_pem_slice(&read("client key", key_file).await?)
                    .map_err(|e| nothing_in("client key", key_file, e))?;
                let key =
                    CertifiedKey::from_der(chain, key, &provider).map_err(|e| nothing_in("client key", key_file, e))?;
                Some(Arc::new(key))
            }
            _ => None,
        };

        let host = config.endpoint().host().unwrap_or_default();
        // An IPv6 literal is bracketed in a URI, not in a server name.
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let server_name = ServerName::try_from(host.to_owned()).map_err(|e| ConnectError::Tls(Box::new(e)))?;

        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Tls(Box::new(e)))?
            .with_root_certificates(store)
            // Replaced in each connection's copy (see `connect`): this one is never asked.
            .with_client_cert_resolver(Arc::new(Resolver {
                identity: identity.clone(),
                asked: AtomicBool::new(false),
            }));
        client.alpn_protocols = vec![match alpn {
            Alpn::H2 => ALPN_H2.to_vec(),
            Alpn::Http1 => ALPN_HTTP1.to_vec(),
        }];

        Ok(Self { config: Arc::new(client), identity, roots, server_name, refusal: Arc::default(), alpn, proxy: None })
    }

    /// This connector, reaching the collector through a `CONNECT` tunnel
    /// of `proxy` rather than straight: TLS then runs inside the tunnel,
    /// end to end with the collector.
    pub(crate) fn through(mut self, proxy: &Proxy) -> Self {
        let mut tunnel = Tunnel::new(proxy.uri().clone(), PlainConnector);
        if let Some(authorization) = proxy.authorization() {
            tunnel = tunnel.with_auth(authorization.clone());
        }
        self.proxy = Some((tunnel, proxy.to_string().into()));
        self
    }

    /// The memory of a refusal that the connections share with the client.
    pub(crate) fn refusal(&self) -> Arc<Refusal> {
        Arc::clone(&self.refusal)
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TlsIo>, BoxError> {
        let tcp = match self.proxy.clone() {
            None => TcpIo::connect(&uri, 443).await?,
            Some((mut tunnel, named)) => {
                let tunneled = async {
                    std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
                    tunnel.call(uri).await
                };
                let io = tunneled.await.map_err(|e| tunnel_error(&named, &e))?;
                io.into_inner()
            }
        };

        let resolver = Arc::new(Resolver { identity: self.identity.clone(), asked: AtomicBool::new(false) });
        let mut config = ClientConfig::clone(&self.config);
        config.client_auth_cert_resolver = Arc::clone(&resolver) as Arc<dyn ResolvesClientCert>;
        let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(self.server_name.clone(), tcp).await;
        // Without a certificate to give, a server's request for one is a
        // refusal waiting to happen; with one, it is the server's to judge.
        let asked_in_vain = self.identity.is_none() && resolver.asked.load(Ordering::Relaxed);
        let stream = match handshake {
            Ok(stream) => stream,
            Err(error) => return Err(self.diagnose(error, asked_in_vain)),
        };
        if self.alpn == Alpn::H2 && stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(
                io::Error::new(io::ErrorKind::InvalidData, "the collector did not negotiate HTTP/2 (ALPN h2)").into()
            );
        }
        Ok(TokioIo::new(TlsIo { stream, watch: asked_in_vain.then(|| Arc::clone(&self.refusal)) }))
    }

    /// The error of a failed handshake: a [`TlsError`] when it is one that
    /// retrying cannot fix, else the I/O error as it came.
    fn diagnose(&self, error: io::Error, asked_in_vain: bool) -> BoxError {
        if let Some(refused @ rustls::Error::InvalidCertificate(_)) = error.get_ref().and_then(|e| e.downcast_ref()) {
            return Box::new(TlsError::untrusted_server_certificate(self.roots.clone(), refused.clone()));
        }
        if asked_in_vain {
            return Box::new(TlsError::client_certificate_required(error));
        }
        Box::new(error)
    }
}

/// What went wrong in setting up a `CONNECT` tunnel through the proxy
/// `named`, in words a user can act on: a [`ProxyWantsCredentials`] for the
/// proxy's 407 (permanent), else an I/O error naming the proxy (retried).
/// hyper-util's tunnel error is not a type this crate can name: its text
/// says which case it is ("tunnel error: proxy authorization required"),
/// and its source, if any, what failed beneath (`tests/http_proxy.rs`
/// checks the 407 case, and that it is not retried).
fn tunnel_error(named: &str, error: &(dyn Error + 'static)) -> BoxError {
    let text = error.to_string();
    if text.ends_with("proxy authorization required") {
        return Box::new(ProxyWantsCredentials::new(named));
    }
    let text = match error.source() {
        Some(source) => format!("{text}: {source}"),
        None => text,
    };
    Box::new(io::Error::other(format!("through the proxy {named}: {text}")))
}

/// tonic's channel and hyper-util's pool both take a `tower` service from a
/// URI to a connection (tonic re-exports the same trait).
impl tonic::codegen::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsIo>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

async fn read(what: &'static str, file: &ConfigPath) -> Result<Vec<u8>, ConnectError> {
    let path = file.path();
    file.read().await.map_err(|source| ConnectError::ReadFile {
        what,
        path: path.to_owned(),
        origin: file.origin(),
        source,
    })
}

/// The certificates of a PEM file: at least one, or an error.
fn certificates(
    what: &'static str,
    file: &ConfigPath,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs =
        CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| nothing_in(what, file, e))?;
    if certs.is_empty() {
        return Err(nothing_in(what, file, pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// One TLS connection, as hyper reads and writes it. When the collector asked
/// for a client certificate that this side did not have, it watches for the
/// collector's verdict: data (accepted) or the connection's end before any
/// data (refused, recorded in the [`Refusal`]).
#[derive(Debug)]
pub(crate) struct TlsIo {
    stream: TlsStream<TcpIo>,
    /// Set until the verdict is in, and only when it is awaited.
    watch: Option<Arc<Refusal>>,
}

impl TlsIo {
    /// The collector ended the connection, with `end`, before sending a
    /// byte, after asking for a certificate none is configured for.
    fn refused(refusal: &Refusal, end: io::Error) -> io::Error {
        let kind = end.kind();
        let error = TlsError::client_certificate_required(end);
        refusal.set(error.clone());
        // h2 keeps only the kind and the text of an I/O error: the text is
        // ours, and the typed error is in the refusal.
        io::Error::new(kind, error)
    }

    /// A write's result: while the verdict is awaited, a failed write (the
    /// collector closed first, and the write met the reset) is the refusal.
    fn wrote<T>(&mut self, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Err(end)) => match self.watch.take() {
                Some(refusal) => Poll::Ready(Err(Self::refused(&refusal, end))),
                None => Poll::Ready(Err(end)),
            },
            other => other,
        }
    }
}

/// What hyper-util's pool asks of a connection: nothing beyond the defaults
/// (HTTP/1.1, not proxied).
impl hyper_util::client::legacy::connect::Connection for TlsIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let Poll::Ready(result) = polled else { return Poll::Pending };
        let Some(refusal) = self.watch.take() else { return Poll::Ready(result) };
        Poll::Ready(match result {
            Ok(()) if buf.filled().len() > before => {
                // The collector sent data: it took the connection without a certificate.
                refusal.clear();
                Ok(())
            }
            Ok(()) => Err(Self::refused(&refusal, io::Error::new(io::ErrorKind::UnexpectedEof, ClosedCleanly))),
            Err(end) => Err(Self::refused(&refusal, end)),
        })
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.wrote(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.wrote(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.wrote(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.wrote(polled)
    }
}

/// The end of a connection that the collector closed with a TLS close_notify.
#[derive(Debug)]
struct ClosedCleanly;

impl fmt::Display for ClosedCleanly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the collector closed the connection before sending any data")
    }
}

impl Error for ClosedCleanly {}

#[cfg(test)]
mod tests {
    use tokio_rustls::rustls::{AlertDescription, CertificateError};

    use super::*;

    #[test]
    fn an_untrusted_server_certificate_names_the_reason_the_ca_and_what_to_set() {
        let roots = Roots::Configured { path: "/etc/otel/ca.pem".into(), origin: ValueOrigin::Code("ca_certificate") };
        let reason = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let error = TlsError::untrusted_server_certificate(roots, reason.clone());
        assert_eq!(error.kind(), TlsErrorKind::UntrustedServerCertificate);
        let text = error.to_string();
        for part in [
            "the collector's TLS certificate is not trusted here",
            &reason.to_string(),
            "\"/etc/otel/ca.pem\" named by setting `ca_certificate`",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "ExporterConfigBuilder::with_ca_certificate",
        ] {
            assert!(text.contains(part), "{part:?} is not in {text:?}");
        }
        let source = error.source().and_then(|e| e.downcast_ref::<rustls::Error>());
        assert_eq!(source, Some(&reason));

        let system = TlsError::untrusted_server_certificate(Roots::System, reason).to_string();
        assert!(system.contains("the system's root certificates, as no CA certificate is configured"), "{system}");
    }

    #[test]
    fn a_required_client_certificate_names_the_variables_and_the_builder_method() {
        let end = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        let error = TlsError::client_certificate_required(end);
        assert_eq!(error.kind(), TlsErrorKind::ClientCertificateRequired);
        let text = error.to_string();
        for part in [
            "the collector requires a client certificate",
            "none is configured",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "ExporterConfigBuilder::with_client_identity",
        ] {
            assert!(text.contains(part), "{part:?} is not in {text:?}");
        }
        let end = error.source().and_then(|e| e.downcast_ref::<io::Error>()).expect("the connection's end");
        assert_eq!(end.to_string(), "received fatal alert: CertificateRequired");
    }

    #[test]
    fn a_refusal_is_remembered_until_cleared() {
        let refusal = Refusal::default();
        assert!(refusal.get().is_none());
        refusal.set(TlsError::client_certificate_required(io::Error::from(io::ErrorKind::UnexpectedEof)));
        assert_eq!(refusal.get().map(|e| e.kind()), Some(TlsErrorKind::ClientCertificateRequired));
        assert_eq!(refusal.get().map(|e| e.kind()), Some(TlsErrorKind::ClientCertificateRequired), "read, not taken");
        refusal.clear();
        assert!(refusal.get().is_none());
    }

    #[test]
    fn the_resolver_remembers_being_asked_and_offers_what_it_has() {
        let resolver = Resolver { identity: None, asked: AtomicBool::new(false) };
        assert!(!resolver.has_certs());
        assert!(!resolver.asked.load(Ordering::Relaxed));
        assert!(resolver.resolve(&[], &[SignatureScheme::ED25519]).is_none());
        assert!(resolver.asked.load(Ordering::Relaxed));
    }
}
