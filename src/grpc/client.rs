//! One gRPC client for every signal. It sends an export request that is
//! already encoded (so a retry resends the same bytes without re-encoding or
//! cloning a message tree) to the signal's `Export` method, and decodes the
//! response with prost.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::{PathAndQuery, Scheme};
use http::Uri;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::tls::{Refusal, TlsConnector};
use crate::config::{Compression, ExporterConfig, ValueOrigin};
use crate::otlp::Encoding;

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

/// A cloneable handle on one HTTP/2 channel to the collector, with the
/// request settings every export shares.
#[derive(Clone)]
pub(crate) struct ExportClient {
    grpc: Grpc<Channel>,
    /// Sent with every request. Values are marked sensitive, and this type's
    /// `Debug` does not print them.
    metadata: MetadataMap,
    timeout: Duration,
    /// With TLS: where the connections record a collector that ended one for
    /// want of a client certificate.
    refusal: Option<Arc<Refusal>>,
}

impl fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl ExportClient {
    /// Prepares the channel. It connects lazily, on the first request, so a
    /// collector that is not up yet is a retryable failure of that request,
    /// not an error here.
    ///
    /// Must be called inside a tokio runtime: the channel spawns its
    /// connection task there.
    pub(crate) async fn connect(config: &ExporterConfig) -> Result<Self, ConnectError> {
        let endpoint = |uri: Uri| {
            Endpoint::from(uri)
                .connect_timeout(config.timeout())
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(config.timeout())
        };
        let (channel, refusal) = if config.uses_tls() {
            let connector = TlsConnector::new(config).await?;
            let refusal = connector.refusal();
            // The connector does the TLS, so tonic must see a plaintext URI
            // (it refuses an `https` one without its own TLS); the requests
            // still carry the `https` scheme and the authority, as the origin.
            let mut parts = config.endpoint().clone().into_parts();
            parts.scheme = Some(Scheme::HTTP);
            let dialled = Uri::from_parts(parts).map_err(|e| ConnectError::Tls(Box::new(e)))?;
            let channel = endpoint(dialled).origin(config.endpoint().clone()).connect_with_connector_lazy(connector);
            (channel, Some(refusal))
        } else {
            (endpoint(config.endpoint().clone()).connect_lazy(), None)
        };
        let mut grpc = Grpc::new(channel).max_decoding_message_size(16 * 1024 * 1024);
        grpc = match config.compression() {
            Compression::Gzip => grpc.send_compressed(CompressionEncoding::Gzip),
            Compression::Zstd => grpc.send_compressed(CompressionEncoding::Zstd),
            _ => grpc,
        };
        Ok(Self { grpc, metadata: config.headers().to_metadata(), timeout: config.timeout(), refusal })
    }

    /// One attempt: sends `body`, an encoded `S::Request`, and waits for the
    /// answer at most the per-attempt timeout, or `left` (what remains of the
    /// retry budget) if that is shorter. The deadline also travels to the
    /// server in `grpc-timeout`.
    pub(crate) async fn export<S: Encoding>(&self, body: Bytes, left: Duration) -> Result<S::Response, Status> {
        let timeout = self.timeout.min(left);
        let attempt = async {
            let mut grpc = self.grpc.clone();
            grpc.ready().await.map_err(|e| Status::from_error(e.into()))?;
            let mut request = Request::new(body);
            *request.metadata_mut() = self.metadata.clone();
            // The server learns the deadline too, so it can drop work nobody
            // waits for; a little later than ours, so that the client's own
            // timer decides and a timeout always reads DEADLINE_EXCEEDED.
            request.set_timeout(timeout + timeout / 10);
            let path = PathAndQuery::from_static(S::EXPORT_PATH);
            grpc.unary(request, path, PreEncoded::<S::Response>::default()).await.map(tonic::Response::into_inner)
        };
        let failed = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(status)) => status,
            Err(_elapsed) if timeout < self.timeout => {
                Status::deadline_exceeded(format!("no answer within the {timeout:?} left of the retry budget"))
            }
            Err(_elapsed) => Status::deadline_exceeded(format!("no answer within the {timeout:?} per-attempt timeout")),
        };
        Err(self.with_refusal(failed))
    }

    /// A failed attempt's status, or, when the collector was seen ending a
    /// connection for want of the client certificate it asked for, a status
    /// that carries that [`TlsError`](super::TlsError) as its source. The connection's end
    /// reaches here through h2, which keeps only the text of its error.
    fn with_refusal(&self, failed: Status) -> Status {
        match self.refusal.as_ref().and_then(|refusal| refusal.get()) {
            Some(refused) => {
                let mut status = Status::unavailable(refused.to_string());
                status.set_source(Arc::new(refused));
                status
            }
            None => failed,
        }
    }
}

/// A codec whose requests are protobuf bytes encoded beforehand and whose
/// responses are decoded with prost.
struct PreEncoded<R>(PhantomData<fn() -> R>);

impl<R> Default for PreEncoded<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: Message + Default + Send + 'static> Codec for PreEncoded<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

struct ProstDecoder<R>(PhantomData<fn() -> R>);

impl<R: Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        let message = R::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::internal(format!("undecodable export response: {e}")))?;
        Ok(Some(message))
    }
}
