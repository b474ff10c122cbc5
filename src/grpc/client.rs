//! The gRPC transport: one HTTP/2 channel per signal, over which an export
//! request already encoded (so a retry resends the same bytes) goes to the
//! signal's `Export` method. Its answer comes back as bytes for the engine to
//! decode, or as a failure classified per the OTLP specification.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::{PathAndQuery, Scheme};
use http::Uri;
use tonic::client::Grpc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::classify::classify_attempt;
use crate::config::{Compression, ExporterConfig};
use crate::deliver::Service;
use crate::deliver::{Failure, Transport};
use crate::tcp::PlainConnector;
use crate::tls::{Alpn, ConnectError, Refusal, TlsConnector};

/// A cloneable handle on one HTTP/2 channel to the collector, with the
/// request settings every export shares.
#[derive(Clone)]
pub(crate) struct GrpcTransport {
    /// The collector's address, for reports.
    endpoint: String,
    grpc: Grpc<Channel>,
    /// Sent with every request. Values are marked sensitive, and this type's
    /// `Debug` does not print them.
    metadata: MetadataMap,
    timeout: Duration,
    /// With TLS: where the connections record a collector that ended one for
    /// want of a client certificate.
    refusal: Option<Arc<Refusal>>,
}

impl fmt::Debug for GrpcTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcTransport")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GrpcTransport {
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
            let connector = TlsConnector::new(config, Alpn::H2).await?;
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
            (endpoint(config.endpoint().clone()).connect_with_connector_lazy(PlainConnector), None)
        };
        let mut grpc = Grpc::new(channel).max_decoding_message_size(16 * 1024 * 1024);
        grpc = match config.compression() {
            Compression::Gzip => grpc.send_compressed(CompressionEncoding::Gzip),
            Compression::Zstd => grpc.send_compressed(CompressionEncoding::Zstd),
            _ => grpc,
        };
        Ok(Self {
            endpoint: config.endpoint().to_string(),
            grpc,
            metadata: config.headers().to_metadata(),
            timeout: config.timeout(),
            refusal,
        })
    }

    /// One attempt, at most `timeout`: sends `body`, an encoded `S::Request`,
    /// and returns the response's bytes. The deadline also travels to the
    /// server in `grpc-timeout`.
    async fn export<S: Service>(&self, body: Bytes, timeout: Duration) -> Result<Bytes, Status> {
        let attempt = async {
            let mut grpc = self.grpc.clone();
            grpc.ready().await.map_err(|e| Status::from_error(e.into()))?;
            let mut request = Request::new(body);
            *request.metadata_mut() = self.metadata.clone();
            // The server learns the deadline too, so it can drop work nobody
            // waits for; a little later than ours, so that the client's own
            // timer decides and a timeout always reads DEADLINE_EXCEEDED.
            request.set_timeout(timeout + timeout / 10);
            let path = PathAndQuery::from_static(S::GRPC_METHOD);
            grpc.unary(request, path, PreEncoded).await.map(tonic::Response::into_inner)
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
    /// that carries that [`TlsError`](crate::tls::TlsError) as its source. The connection's end
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

impl Transport for GrpcTransport {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    async fn send<S: Service>(&self, body: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        self.export::<S>(body, timeout).await.map_err(|status| classify_attempt(&status))
    }
}

/// A codec whose requests are protobuf bytes encoded beforehand and whose
/// responses are handed on as bytes, for the engine to decode.
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
