//! The OTLP/HTTP transport: a pool of HTTP/1.1 keep-alive connections (as
//! many idle ones kept as requests may be in flight), over which an export
//! request already encoded (so a retry resends the same bytes) is `POST`ed
//! to the signal's URL. Its answer comes back as bytes for the engine to
//! decode, or as a failure classified per the OTLP specification.

use std::fmt;
use std::future::Future;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, PROXY_AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::classify::{proxy_wants_credentials, refusal, timed_out, transport_failure};
use crate::config::{Compression, ExporterConfig, Proxy, ProxyWantsCredentials};
use crate::deliver::{ExportStatus, Failure, RetryDecision, Service, StatusCode, Transport};
use crate::tcp::TcpIo;
use crate::tls::{Alpn, ConnectError, Refusal, TlsConnector};

/// The error a connector hands to the pool.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest response body read, compressed or not: an export response is
/// a few bytes, an error body rarely more than a page. gRPC's decoder has the
/// same limit (16 MiB).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How long an idle pooled connection is kept: long enough that a steady
/// exporter reuses its connections between batches, short enough that a
/// quiet one does not keep sockets a proxy or the collector has likely
/// closed meanwhile. A request on a pooled connection that the server closed
/// before it was sent is retried by the pool itself (hyper-util's
/// `retry_canceled_requests`, on by default); after, by the engine.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sent as `User-Agent`, as the OTLP exporter specification asks exporters
/// to identify themselves.
const USER_AGENT_VALUE: &str = concat!("otlp-sink/", env!("CARGO_PKG_VERSION"));

/// The connection pool, plaintext, TLS (straight or tunneled through a
/// proxy), or plaintext through a forwarding proxy: they differ only in
/// their connector, and answer with the same future.
#[derive(Clone)]
enum Pool {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<TlsConnector, Full<Bytes>>),
    Forward(Client<ForwardConnector, Full<Bytes>>),
}

impl Pool {
    fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        match self {
            Self::Plain(client) => client.request(request),
            Self::Tls(client) => client.request(request),
            Self::Forward(client) => client.request(request),
        }
    }
}

/// The connector of an `http://` collector reached through an HTTP proxy:
/// every connection goes to the proxy and says so ([`Forwarded`]), so that
/// the pool writes each request's whole URL (absolute form) for the proxy
/// to forward, as HTTP proxies expect of plain-HTTP requests.
#[derive(Debug, Clone)]
struct ForwardConnector {
    proxy: Proxy,
}

impl tonic::codegen::Service<Uri> for ForwardConnector {
    type Response = TokioIo<Forwarded>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _collector: Uri) -> Self::Future {
        let proxy = self.proxy.clone();
        Box::pin(async move {
            let io = TcpIo::connect(proxy.uri(), 80).await.map_err(|e| {
                io::Error::new(e.kind(), format!("through the proxy {proxy}: cannot connect to it: {e}"))
            })?;
            Ok(TokioIo::new(Forwarded(io)))
        })
    }
}

/// A connection to a forwarding HTTP proxy.
#[derive(Debug)]
struct Forwarded(TcpIo);

impl hyper_util::client::legacy::connect::Connection for Forwarded {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new().proxy(true)
    }
}

impl AsyncRead for Forwarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Forwarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A cloneable handle on one signal's connection pool, with the request
/// settings every export shares.
#[derive(Clone)]
pub(crate) struct HttpTransport {
    /// The signal's whole URL: where every request goes.
    url: Uri,
    /// Shared by the clones, one per request task (a pool handle is large).
    pool: Arc<Pool>,
    /// Sent with every request: the configured headers (values marked
    /// sensitive, and never shown by this type's `Debug`), then
    /// `Content-Type`, `Content-Encoding` and `User-Agent`.
    headers: Arc<HeaderMap>,
    compression: Compression,
    timeout: Duration,
    /// With TLS: where the connections record a collector that ended one for
    /// want of a client certificate.
    refusal: Option<Arc<Refusal>>,
    /// The HTTP proxy the requests go through, if any.
    proxy: Option<Proxy>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("url", &self.url)
            .field("compression", &self.compression)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Prepares the pool for the signal whose OTLP/HTTP path is `path`
    /// (`/v1/metrics`). It connects lazily, on the first request, so a
    /// collector that is not up yet is a retryable failure of that request,
    /// not an error here.
    ///
    /// Must be called inside a tokio runtime: the pool spawns its
    /// connections' tasks there.
    pub(crate) async fn connect(config: &ExporterConfig, path: &str) -> Result<Self, ConnectError> {
        let url = config.export_url_for_path(path);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_max_idle_per_host(config.max_in_flight())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new());
        let proxy = config.proxy_for(&url);
        let (pool, refusal) = match (config.uses_tls(), &proxy) {
            (true, _) => {
                let mut connector = TlsConnector::new(config, Alpn::Http1).await?;
                if let Some(proxy) = &proxy {
                    connector = connector.through(proxy);
                }
                let refusal = connector.refusal();
                (Arc::new(Pool::Tls(builder.build(connector))), Some(refusal))
            }
            (false, Some(proxy)) => {
                (Arc::new(Pool::Forward(builder.build(ForwardConnector { proxy: proxy.clone() }))), None)
            }
            (false, None) => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(config.timeout()));
                (Arc::new(Pool::Plain(builder.build(connector))), None)
            }
        };
        if let Some(proxy) = &proxy {
            tracing::debug!(collector = %url, %proxy, "OTLP/HTTP requests go through a proxy");
        }

        let mut headers = config.headers().to_metadata().into_headers();
        // A forwarding proxy reads its credentials from each request; a
        // tunnel's were given once, with CONNECT.
        if let (false, Some(authorization)) = (config.uses_tls(), proxy.as_ref().and_then(Proxy::authorization)) {
            headers.insert(PROXY_AUTHORIZATION, authorization.clone());
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        match config.compression() {
            Compression::Gzip => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            Compression::Zstd => {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("zstd"));
            }
            _ => {}
        }
        // A User-Agent set in the configuration is the user's to choose.
        headers.entry(USER_AGENT).or_insert(HeaderValue::from_static(USER_AGENT_VALUE));

        Ok(Self {
            url,
            pool,
            headers: Arc::new(headers),
            compression: config.compression(),
            timeout: config.timeout(),
            refusal,
            proxy,
        })
    }

    /// One attempt, at most `timeout` for all of it (connection, request,
    /// and the response's whole body): sends `body`, an encoded export
    /// request, and returns the body of a success (2xx), decompressed if the
    /// server compressed it.
    async fn export(&self, body: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        let body = compress(self.compression, body)?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        *request.headers_mut() = HeaderMap::clone(&self.headers);

        let attempt = async {
            let response = self.pool.request(request).await.map_err(|e| self.failed(Box::new(e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await.map_err(|e| self.failed(e))?.to_bytes();
            let body = decompress(&parts.headers, body)?;
            if parts.status.is_success() {
                Ok(body)
            } else if let (http::StatusCode::PROXY_AUTHENTICATION_REQUIRED, Some(proxy)) = (parts.status, &self.proxy) {
                // The proxy's answer, not the collector's: say so.
                Err(proxy_wants_credentials(&ProxyWantsCredentials::new(proxy)))
            } else {
                Err(refusal(parts.status, &parts.headers, &body, SystemTime::now()))
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(answer) => answer,
            Err(_elapsed) => Err(timed_out(timeout, self.timeout)),
        }
    }

    /// An error of the pool or of the response body as a failure. A body
    /// larger than [`MAX_RESPONSE_BYTES`] is not retried: the server would
    /// send it again.
    fn failed(&self, error: Box<dyn std::error::Error + Send + Sync>) -> Failure {
        if error.is::<http_body_util::LengthLimitError>() {
            let message = format!("the response body is larger than {MAX_RESPONSE_BYTES} bytes");
            return Failure::Status {
                status: ExportStatus::new(StatusCode::Unreachable, message).with_source(error),
                decision: RetryDecision::Permanent,
            };
        }
        transport_failure(error, self.refusal.as_deref())
    }
}

impl Transport for HttpTransport {
    fn endpoint(&self) -> String {
        self.url.to_string()
    }

    async fn send<S: Service>(&self, body: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        self.export(body, timeout).await
    }
}

/// The request body, compressed as configured. Compression into memory
/// cannot fail but for a bug, reported as a permanent failure, not a panic.
fn compress(compression: Compression, body: Bytes) -> Result<Bytes, Failure> {
    let compressed = match compression {
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::default());
            encoder.write_all(&body).and_then(|()| encoder.finish())
        }
        Compression::Zstd => zstd::bulk::compress(&body, zstd::DEFAULT_COMPRESSION_LEVEL),
        _ => return Ok(body),
    };
    compressed.map(Bytes::from).map_err(|e| Failure::Status {
        status: ExportStatus::new(StatusCode::Unreachable, format!("the request could not be compressed: {e}"))
            .with_source(e),
        decision: RetryDecision::Permanent,
    })
}

/// A response body as sent, or decompressed when the server gzipped it
/// (nothing asks it to, but a proxy may). A body that does not decompress is
/// a failure: what it says is unknown.
fn decompress(headers: &HeaderMap, body: Bytes) -> Result<Bytes, Failure> {
    let gzipped = headers.get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    if !gzipped || body.is_empty() {
        return Ok(body);
    }
    let mut decoded = Vec::new();
    let limit = u64::try_from(MAX_RESPONSE_BYTES).unwrap_or(u64::MAX);
    let read = std::io::Read::read_to_end(
        &mut std::io::Read::take(flate2::read::GzDecoder::new(&body[..]), limit),
        &mut decoded,
    );
    read.map(|_| Bytes::from(decoded)).map_err(|e| Failure::Status {
        status: ExportStatus::new(
            StatusCode::Unreachable,
            format!("the gzipped response body does not decompress: {e}"),
        )
        .with_source(e),
        decision: RetryDecision::Permanent,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn gzip_and_zstd_bodies_decompress_to_the_request() {
        let body = Bytes::from(b"an encoded export request ".repeat(100));
        let gzipped = compress(Compression::Gzip, body.clone()).unwrap();
        assert!(gzipped.len() < body.len());
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gzipped[..]).read_to_end(&mut unzipped).unwrap();
        assert_eq!(unzipped, body);
        let zstd = compress(Compression::Zstd, body.clone()).unwrap();
        assert_eq!(zstd::bulk::decompress(&zstd, body.len()).unwrap(), body);
        assert_eq!(compress(Compression::None, body.clone()).unwrap(), body, "the same bytes, not a copy");
    }

    #[test]
    fn a_gzipped_response_is_decompressed_and_a_broken_one_is_a_failure() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        let body = Bytes::from_static(b"\x0a\x02\x08\x03");
        let gzipped = compress(Compression::Gzip, body.clone()).unwrap();
        assert_eq!(decompress(&headers, gzipped).unwrap(), body);
        assert_eq!(decompress(&HeaderMap::new(), body.clone()).unwrap(), body, "not compressed");
        assert!(matches!(
            decompress(&headers, Bytes::from_static(b"not gzip")),
            Err(Failure::Status { decision: RetryDecision::Permanent, .. })
        ));
    }
}
