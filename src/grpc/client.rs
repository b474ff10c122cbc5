//! One gRPC client for every signal. It sends an export request that is
//! already encoded (so a retry resends the same bytes without re-encoding or
//! cloning a message tree) to the signal's `Export` method, and decodes the
//! response with prost.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use prost::Message;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::config::{Compression, ConfigPath, ExporterConfig, ValueOrigin};
use crate::otlp::Signal as Encoding;

/// Why an exporter could not be set up: a TLS file that cannot be read or
/// parsed, or an endpoint tonic refuses.
#[non_exhaustive]
#[derive(Debug)]
pub enum ConnectError {
    /// A TLS file could not be read.
    ReadFile {
        /// What the file is: `"CA certificate"`, `"client certificate"` or `"client key"`.
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// Where the path was configured: the environment variable or the
        /// builder setting that named it.
        origin: ValueOrigin,
        /// The I/O error.
        source: io::Error,
    },
    /// The TLS settings were refused (for example, a file that is not PEM).
    Tls(tonic::transport::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadFile { what, path, origin, .. } => {
                write!(f, "cannot read the {what} file {:?} named by {origin}", path.display().to_string())
            }
            Self::Tls(_) => f.write_str("the TLS settings were refused"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadFile { source, .. } => Some(source),
            Self::Tls(e) => Some(e),
        }
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

/// A cloneable handle on one HTTP/2 channel to the collector, with the
/// request settings every export shares.
#[derive(Clone)]
pub(crate) struct ExportClient {
    grpc: Grpc<Channel>,
    /// Sent with every request. Values are marked sensitive, and this type's
    /// `Debug` does not print them.
    metadata: MetadataMap,
    timeout: Duration,
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
        let mut endpoint = Endpoint::from(config.endpoint().clone())
            .connect_timeout(config.timeout())
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(config.timeout());
        if config.uses_tls() {
            let mut tls = ClientTlsConfig::new();
            tls = match &config.ca_certificate {
                // A custom CA replaces the system roots: the collector is
                // expected to present a certificate from it.
                Some(ca) => tls.ca_certificate(Certificate::from_pem(read("CA certificate", ca).await?)),
                None => tls.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&config.client_certificate, &config.client_key) {
                let cert = read("client certificate", cert).await?;
                let key = read("client key", key).await?;
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint.tls_config(tls).map_err(ConnectError::Tls)?;
        }
        let mut grpc = Grpc::new(endpoint.connect_lazy()).max_decoding_message_size(16 * 1024 * 1024);
        grpc = match config.compression() {
            Compression::Gzip => grpc.send_compressed(CompressionEncoding::Gzip),
            Compression::Zstd => grpc.send_compressed(CompressionEncoding::Zstd),
            _ => grpc,
        };
        Ok(Self { grpc, metadata: config.headers().to_metadata(), timeout: config.timeout() })
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
        match tokio::time::timeout(timeout, attempt).await {
            Ok(answer) => answer,
            Err(_elapsed) if timeout < self.timeout => {
                Err(Status::deadline_exceeded(format!("no answer within the {timeout:?} left of the retry budget")))
            }
            Err(_elapsed) => {
                Err(Status::deadline_exceeded(format!("no answer within the {timeout:?} per-attempt timeout")))
            }
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
