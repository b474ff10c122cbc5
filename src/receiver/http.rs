//! The receiver's OTLP/HTTP listener: hyper's HTTP/1.1 server (keep-alive,
//! optionally TLS through rustls), `POST /v1/{metrics,traces,logs}` with
//! protobuf bodies, and a [`Reply`] as an HTTP answer.
//!
//! What it refuses before a request reaches the script, each counted in
//! [`ReceivedCounts::refused`](super::ReceivedCounts::refused) of the path's
//! signal (a path of no signal is not counted):
//!
//! | request | answer |
//! |---|---|
//! | a path other than the three | 404 |
//! | a method other than `POST` | 405, `Allow: POST` |
//! | a `Content-Type` other than `application/x-protobuf` (`http/json` included) | 415 |
//! | a `Content-Encoding` other than `gzip`, `zstd` or `identity` | 415 |
//! | a body (as sent or decompressed) above the receive limit | 413 |
//! | a body that does not decompress or is not the signal's `Export*ServiceRequest` | 400 |
//!
//! Each of these has a `google.rpc.Status` body saying what was wrong.

use std::convert::Infallible;
use std::error::Error;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::header::{HeaderValue, ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::reply::{code_number, grpc_code_for, http_status_for};
use super::state::{Export, State, Via};
use super::{HttpBody, ReceiverError, ReceiverTls, Reply};
use crate::deliver::GrpcCode;
use crate::deliver::RpcStatus;
use crate::pb::collector::logs::v1 as logs_svc;
use crate::pb::collector::metrics::v1 as metrics_svc;
use crate::pb::collector::trace::v1 as trace_svc;
use crate::Signal;

type Body = BoxBody<Bytes, Box<dyn Error + Send + Sync>>;

const PROTOBUF: &str = "application/x-protobuf";

/// The rustls server configuration for `tls`: its certificate and key, and a
/// client-certificate verifier when it names a client CA. HTTP/1.1 by ALPN.
pub(super) fn tls_acceptor(tls: &ReceiverTls) -> Result<TlsAcceptor, ReceiverError> {
    let refused = |e: Box<dyn Error + Send + Sync>| ReceiverError::Tls(e);
    let certs =
        CertificateDer::pem_slice_iter(&tls.cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| refused(e.into()))?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem).map_err(|e| refused(e.into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(e.into()))?;
    let builder = match &tls.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots.add(cert.map_err(|e| refused(e.into()))?).map_err(|e| refused(e.into()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| refused(e.into()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| refused(e.into()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections on `listener` and serves each on a task of its own,
/// until this future is dropped (the receiver aborts its task), which drops
/// every connection with it, hung ones included.
pub(super) async fn serve(listener: TcpListener, state: Arc<State>, limit: usize, tls: Option<TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        // Reap finished connections, so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let Ok((tcp, _)) = accepted else {
            // A transient accept error (out of file descriptors, say): back
            // off a little instead of spinning on it.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (state, tls) = (state.clone(), tls.clone());
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, limit, request).await) }
            });
            let mut http1 = hyper::server::conn::http1::Builder::new();
            http1.timer(TokioTimer::new());
            // A failed handshake or a broken connection ends only this
            // connection; the client sees it.
            match tls {
                None => {
                    let _ = http1.serve_connection(TokioIo::new(tcp), service).await;
                }
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = http1.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

fn signal_of(path: &str) -> Option<Signal> {
    match path {
        "/v1/metrics" => Some(Signal::Metrics),
        "/v1/traces" => Some(Signal::Traces),
        "/v1/logs" => Some(Signal::Logs),
        _ => None,
    }
}

/// Why a request was refused before it reached the script.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

async fn handle(state: &State, limit: usize, request: Request<Incoming>) -> Response<Body> {
    let (head, body) = request.into_parts();
    let path = head.uri.path();
    let Some(signal) = signal_of(path) else {
        let response = status_response(StatusCode::NOT_FOUND, &format!("no OTLP service at {path:?}"));
        discard(body, limit).await;
        return response;
    };
    let result = match signal {
        Signal::Metrics => receive::<metrics_svc::ExportMetricsServiceRequest>(state, limit, &head, body).await,
        Signal::Traces => receive::<trace_svc::ExportTraceServiceRequest>(state, limit, &head, body).await,
        Signal::Logs => receive::<logs_svc::ExportLogsServiceRequest>(state, limit, &head, body).await,
    };
    match result {
        Ok(response) => response,
        Err(refusal) => {
            state.count(signal, |c| c.refused += 1);
            let mut response = status_response(refusal.status, &refusal.message);
            if refusal.status == StatusCode::METHOD_NOT_ALLOWED {
                response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
            }
            response
        }
    }
}

/// Reads and drops a refused request's body (at most `limit` bytes), so that
/// its connection can carry the next request; a larger one closes it.
async fn discard(body: Incoming, limit: usize) {
    let _ = Limited::new(body, limit).collect().await;
}

/// How a request body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

/// Whether the request head is one this receiver takes: `POST`, protobuf,
/// gzip, zstd or no encoding; with the body's encoding.
fn check_head(head: &http::request::Parts) -> Result<Encoding, Refusal> {
    if head.method != Method::POST {
        return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, format!("OTLP/HTTP takes POST, not {}", head.method)));
    }
    let content_type = head.headers.get(CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let media_type = content_type.as_deref().map(|t| t.split(';').next().unwrap_or_default().trim());
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(PROTOBUF)) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("this receiver takes Content-Type {PROTOBUF} only, not {content_type:?}"),
        ));
    }
    let encoding = head.headers.get(CONTENT_ENCODING).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned());
    match encoding.as_deref() {
        None => Ok(Encoding::Identity),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(Encoding::Identity),
        Some(e) if e.eq_ignore_ascii_case("gzip") => Ok(Encoding::Gzip),
        Some(e) if e.eq_ignore_ascii_case("zstd") => Ok(Encoding::Zstd),
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("this receiver takes Content-Encoding gzip, zstd or identity, not {other:?}"),
        )),
    }
}

/// The body decompressed, refused when it is over `limit` bytes or does not
/// decompress.
fn decompress(body: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, Refusal> {
    let mut plain = Vec::new();
    let read = match encoding {
        Encoding::Identity => return Ok(body),
        Encoding::Gzip => flate2::read::GzDecoder::new(body.as_ref()).take(limit as u64 + 1).read_to_end(&mut plain),
        Encoding::Zstd => zstd::stream::read::Decoder::new(body.as_ref())
            .and_then(|decoder| decoder.take(limit as u64 + 1).read_to_end(&mut plain)),
    };
    if let Err(e) = read {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("the body is not valid {encoding:?}: {e}")));
    }
    if plain.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(plain))
}

fn too_large(limit: usize) -> Refusal {
    Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request is over {limit} bytes"))
}

/// Checks, reads and decodes one request, then answers it as scripted.
async fn receive<R: Export>(
    state: &State,
    limit: usize,
    head: &http::request::Parts,
    body: Incoming,
) -> Result<Response<Body>, Refusal> {
    let encoding = match check_head(head) {
        Ok(encoding) => encoding,
        Err(refusal) => {
            discard(body, limit).await;
            return Err(refusal);
        }
    };
    let pairs = head
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();

    let body = match Limited::new(body, limit).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large(limit)),
        Err(e) => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("the body could not be read: {e}"))),
    };
    let body = decompress(body, encoding, limit)?;
    let decoded = R::decode(body).map_err(|e| {
        Refusal::new(StatusCode::BAD_REQUEST, format!("the body is not an OTLP {:?} export request: {e}", R::SIGNAL))
    })?;
    let reply = state.receive(&decoded, pairs, Via::Http).await;
    Ok(answer::<R>(reply))
}

/// A final reply (never `Delayed` or `Hang`) as an HTTP answer.
fn answer<R: Export>(reply: Reply) -> Response<Body> {
    match reply {
        Reply::Ok => protobuf_response(StatusCode::OK, R::response(None).encode_to_vec()),
        Reply::PartialSuccess { rejected, message } => {
            protobuf_response(StatusCode::OK, R::response(Some((rejected, message))).encode_to_vec())
        }
        Reply::Status { code, message } => status_of_code(code, &message),
        Reply::Throttle { code, delay } => {
            let mut response = status_of_code(code, "scripted throttle");
            // Delay-seconds are whole: rounded up, so the client waits at least `delay`.
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Reply::Http(http) => {
            let status = StatusCode::from_u16(http.status).expect("HttpReply::new checks the range");
            let mut response = match http.body {
                HttpBody::Empty => full_response(status, None, Bytes::new()),
                HttpBody::Status { message } => rpc_status_response(status, grpc_code_for(http.status), &message),
                HttpBody::Raw { content_type, bytes } => full_response(status, Some(&content_type), bytes.into()),
            };
            if let Some(retry_after) = &http.retry_after {
                if let Ok(value) = HeaderValue::from_str(&retry_after.header_value(SystemTime::now())) {
                    response.headers_mut().insert(RETRY_AFTER, value);
                }
            }
            response
        }
        Reply::CloseMidResponse => close_mid_response(R::response(None).encode_to_vec()),
        Reply::Delayed { .. } | Reply::Hang => unreachable!("the state answers delays and hangs itself"),
    }
}

/// A 200 whose head promises `body` (or 16 bytes, if it is shorter), and
/// whose body stops after half of that: the connection is closed with the
/// response incomplete.
fn close_mid_response(body: Vec<u8>) -> Response<Body> {
    let mut promised = body;
    promised.resize(promised.len().max(16), 0);
    let half = Bytes::copy_from_slice(&promised[..promised.len() / 2]);
    let frames = futures_util::stream::iter([Ok::<_, Box<dyn Error + Send + Sync>>(Frame::data(half))]).chain(
        futures_util::stream::once(async {
            // Pending for a moment, so hyper writes the head and the half
            // body out before the error makes it close the connection.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err("scripted close mid-response".into())
        }),
    );
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(promised.len()));
    response
}

/// The HTTP status paired with `code`, with a `google.rpc.Status` body.
fn status_of_code(code: GrpcCode, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(http_status_for(code)).expect("the table holds valid statuses");
    rpc_status_response(status, code, message)
}

/// `status` with a `google.rpc.Status` body of the code paired with it.
fn status_response(status: StatusCode, message: &str) -> Response<Body> {
    rpc_status_response(status, grpc_code_for(status.as_u16()), message)
}

fn rpc_status_response(status: StatusCode, code: GrpcCode, message: &str) -> Response<Body> {
    let body = RpcStatus::new(code_number(code), message).encode_to_vec();
    protobuf_response(status, body)
}

fn protobuf_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    full_response(status, Some(PROTOBUF), body.into())
}

fn full_response(status: StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).map_err(|never: Infallible| match never {}).boxed());
    *response.status_mut() = status;
    if let Some(value) = content_type.and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
