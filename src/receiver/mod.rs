//! An in-process OTLP receiver on loopback, for the quickstart, the load
//! generator and the tests: OTLP/gRPC on one listener
//! ([`endpoint`](Receiver::endpoint)) and OTLP/HTTP on a second
//! ([`http_endpoint`](Receiver::http_endpoint)), with the same counts, the
//! same script and the same recording behind both. It decodes what it
//! receives, counts it per signal, remembers the resources and scope names it
//! saw, and answers each request as scripted ([`Reply`]): OK by default, or
//! a gRPC error, an HTTP status with `Retry-After` and a body of choice, a
//! throttle, a partial success, a slow answer, a connection closed
//! mid-response, or no answer at all.
//!
//! The HTTP listener takes `POST /v1/metrics`, `/v1/traces` and `/v1/logs`
//! with `Content-Type: application/x-protobuf` bodies, gzipped or not
//! (`Content-Encoding: gzip` or `zstd`), over HTTP/1.1 with keep-alive, and answers 200
//! with the `Export*ServiceResponse`; what it refuses before the script is
//! listed in [`ReceivedCounts::refused`].
//!
//! Only with the `receiver` feature, which is opt-in: a library user compiles
//! no server unless they ask for it (`features = ["receiver"]`). This crate's
//! own tests, examples and benches always have it, through a dev-dependency
//! on itself.

mod grpc;
mod http;
mod reply;
mod state;

use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use reply::{grpc_code_for, http_status_for, HttpBody, HttpReply, Reply, RetryAfter};
use state::State;

use crate::otlp::Resource;
use crate::Signal;

/// What the receiver counted for one signal.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceivedCounts {
    /// Export requests received and decoded, on either listener (whatever
    /// the answer).
    pub requests: u64,
    /// Of `requests`, those that came over OTLP/HTTP.
    pub http_requests: u64,
    /// Items (data points, spans or log records) in the `requests`.
    pub received: u64,
    /// Items acknowledged: in requests answered OK (or with a scripted 2xx),
    /// less those refused by a partial success.
    pub acked: u64,
    /// Items refused by scripted partial successes.
    pub rejected: u64,
    /// Items in requests answered with an error, cut off mid-response, or
    /// not answered.
    pub failed: u64,
    /// HTTP requests of this signal's path refused before they were decoded
    /// (not in `requests`): 405 for a method other than POST, 415 for a
    /// content type other than `application/x-protobuf` or an unknown
    /// content encoding, 413 above the receive limit (as sent or
    /// decompressed), 400 for a body that does not decode. The gRPC listener's
    /// refusals (OUT_OF_RANGE above the limit) happen inside its server and
    /// are not counted.
    pub refused: u64,
    /// Encoded request bytes received (after decompression), of the decoded
    /// requests.
    pub bytes: u64,
    /// Requests being answered right now.
    pub concurrent: u64,
    /// The most requests that were ever being answered at once.
    pub max_concurrent: u64,
}

/// What the receiver counted, per signal.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverCounts {
    /// Metric data points.
    pub metrics: ReceivedCounts,
    /// Spans.
    pub traces: ReceivedCounts,
    /// Log records.
    pub logs: ReceivedCounts,
}

impl ReceiverCounts {
    /// The counts of one signal.
    pub fn signal(&self, signal: Signal) -> ReceivedCounts {
        match signal {
            Signal::Metrics => self.metrics,
            Signal::Traces => self.traces,
            Signal::Logs => self.logs,
        }
    }

    fn signal_mut(&mut self, signal: Signal) -> &mut ReceivedCounts {
        match signal {
            Signal::Metrics => &mut self.metrics,
            Signal::Traces => &mut self.traces,
            Signal::Logs => &mut self.logs,
        }
    }
}

/// TLS settings for the receiver: its certificate chain and key (PEM), and
/// optionally the CA that client certificates must chain to (mTLS).
#[derive(Clone)]
pub struct ReceiverTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl ReceiverTls {
    /// Serve TLS with this certificate chain and private key (both PEM).
    pub fn new(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self { cert_pem: cert_pem.into(), key_pem: key_pem.into(), client_ca_pem: None }
    }

    /// Require client certificates issued by this CA (PEM): mutual TLS.
    #[must_use]
    pub fn with_client_ca(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca_pem = Some(ca_pem.into());
        self
    }
}

impl fmt::Debug for ReceiverTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is never printed.
        f.debug_struct("ReceiverTls").field("mutual", &self.client_ca_pem.is_some()).finish_non_exhaustive()
    }
}

/// Settings of a [`Receiver`].
#[derive(Debug, Clone)]
pub struct ReceiverBuilder {
    addr: SocketAddr,
    http_addr: SocketAddr,
    max_message_bytes: usize,
    tls: Option<ReceiverTls>,
    record: bool,
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 4 * 1024 * 1024,
            tls: None,
            record: false,
        }
    }
}

impl ReceiverBuilder {
    /// Where the gRPC listener listens. Default `127.0.0.1:0` (a free
    /// loopback port).
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Where the OTLP/HTTP listener listens. Default `127.0.0.1:0` (a free
    /// loopback port).
    #[must_use]
    pub fn with_http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// The largest request accepted, like a collector's receive limit:
    /// the decompressed message on gRPC (larger ones fail with
    /// OUT_OF_RANGE), the body both as sent and gunzipped on HTTP (larger
    /// ones get 413). Default 4 MiB.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Serve TLS (and mTLS, if the settings name a client CA) on both
    /// listeners.
    #[must_use]
    pub fn with_tls(mut self, tls: ReceiverTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Keep every request received, to read back with
    /// [`Receiver::recorded`]. Off by default: it holds every byte received.
    #[must_use]
    pub fn with_recording(mut self) -> Self {
        self.record = true;
        self
    }

    /// Binds both listeners and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When an address cannot be bound or the TLS settings are invalid.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(self) -> Result<Receiver, ReceiverError> {
        let listener = TcpListener::bind(self.addr).await.map_err(ReceiverError::Bind)?;
        let addr = listener.local_addr().map_err(ReceiverError::Bind)?;
        let http_listener = TcpListener::bind(self.http_addr).await.map_err(ReceiverError::Bind)?;
        let http_addr = http_listener.local_addr().map_err(ReceiverError::Bind)?;
        let state = Arc::new(State::new(self.record));
        let limit = self.max_message_bytes;
        let router = grpc::router(&state, limit, self.tls.as_ref())?;
        let acceptor = self.tls.as_ref().map(http::tls_acceptor).transpose()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(grpc::serve(router, listener, stopped));
        let http_task = tokio::spawn(http::serve(http_listener, state.clone(), limit, acceptor));
        Ok(Receiver { addr, http_addr, tls: self.tls.is_some(), state, stop: Some(stop), task, http_task })
    }
}

/// Why a [`Receiver`] could not start.
#[non_exhaustive]
#[derive(Debug)]
pub enum ReceiverError {
    /// The address could not be bound.
    Bind(std::io::Error),
    /// The TLS settings were refused (by either listener's TLS library).
    Tls(Box<dyn Error + Send + Sync + 'static>),
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind(_) => f.write_str("receiver could not bind its address"),
            Self::Tls(_) => f.write_str("receiver TLS settings were refused"),
        }
    }
}

impl Error for ReceiverError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Bind(e) => Some(e),
            Self::Tls(e) => Some(e.as_ref()),
        }
    }
}

/// A running in-process OTLP receiver, gRPC and HTTP. Stops when dropped or
/// on [`shutdown`](Self::shutdown).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use otlp_sink::receiver::{HttpReply, Receiver, Reply, RetryAfter};
/// use otlp_sink::deliver::GrpcCode;
/// use otlp_sink::Signal;
///
/// let receiver = Receiver::start().await?;
/// // The first metrics request fails with UNAVAILABLE (503 over HTTP), the
/// // second with 429 and `Retry-After: 1`, later ones succeed.
/// receiver.script(
///     Signal::Metrics,
///     [
///         Reply::status(GrpcCode::Unavailable),
///         Reply::Http(HttpReply::new(429).with_retry_after(RetryAfter::Seconds(1))),
///     ],
/// );
/// println!("send OTLP/gRPC to {}", receiver.endpoint());
/// println!("send OTLP/HTTP to {}", receiver.http_endpoint());
/// assert_eq!(receiver.counts().metrics.acked, 0);
/// receiver.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Receiver {
    addr: SocketAddr,
    http_addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    /// Stops the gRPC server gracefully.
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The HTTP accept loop; aborting it drops every HTTP connection.
    http_task: JoinHandle<()>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .field("http_addr", &self.http_addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// How many distinct resources and scope names the receiver remembers
    /// per signal; later ones are not recorded.
    pub const MAX_REMEMBERED: usize = 64;

    /// How many arrival times the receiver keeps per signal (see
    /// [`arrivals`](Self::arrivals)); later ones are not kept.
    pub const MAX_ARRIVALS: usize = 1024;

    /// Starts a plain-text receiver on two free loopback ports (gRPC and
    /// HTTP) with a 4 MiB receive limit.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start() -> Result<Self, ReceiverError> {
        ReceiverBuilder::default().start().await
    }

    /// A builder for other settings (address, receive limit, TLS).
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder::default()
    }

    /// The address the gRPC listener listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the OTLP/HTTP listener listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The OTLP/gRPC endpoint to give an exporter: `http://127.0.0.1:PORT`,
    /// or `https://localhost:PORT` with TLS (certificates name `localhost`).
    pub fn endpoint(&self) -> String {
        self.endpoint_of(self.addr)
    }

    /// The OTLP/HTTP base endpoint to give an exporter, in the same form as
    /// [`endpoint`](Self::endpoint): the exporter appends `/v1/<signal>`, as
    /// it does to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn http_endpoint(&self) -> String {
        self.endpoint_of(self.http_addr)
    }

    fn endpoint_of(&self, addr: SocketAddr) -> String {
        if self.tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        }
    }

    /// Queues answers for the next requests of `signal`, in order. When the
    /// queue is empty the receiver answers with the default reply (OK unless
    /// changed by [`set_default`](Self::set_default)).
    pub fn script(&self, signal: Signal, replies: impl IntoIterator<Item = Reply>) {
        self.state.script(signal, replies);
    }

    /// Sets the answer for requests of `signal` that no script covers.
    pub fn set_default(&self, signal: Signal, reply: Reply) {
        self.state.set_default(signal, reply);
    }

    /// The value of metadata entry (gRPC) or header (HTTP) `name`
    /// (lowercase) in the latest decoded request of any signal, on either
    /// listener. For tests of header handling.
    pub fn last_header(&self, name: &str) -> Option<String> {
        self.state.last_header(name)
    }

    /// The distinct resources that requests of `signal` carried, in the
    /// order first seen (at most [`Receiver::MAX_REMEMBERED`]).
    pub fn resources(&self, signal: Signal) -> Vec<Resource> {
        self.state.resources(signal)
    }

    /// The distinct instrumentation scope names that requests of `signal`
    /// carried, in the order first seen (at most [`Receiver::MAX_REMEMBERED`]).
    pub fn scope_names(&self, signal: Signal) -> Vec<String> {
        self.state.scope_names(signal)
    }

    /// The requests of `signal` received so far, oldest first, each as the
    /// protobuf encoding of the export request the receiver decoded (so what
    /// was sent, field for field). Empty unless the builder asked for
    /// [`with_recording`](ReceiverBuilder::with_recording). For tests that
    /// check what arrived, with a decoder of their own.
    pub fn recorded(&self, signal: Signal) -> Vec<Vec<u8>> {
        self.state.recorded(signal)
    }

    /// When each decoded request of `signal` arrived, oldest first (at most
    /// [`Receiver::MAX_ARRIVALS`]): for tests of how long a client waited
    /// between attempts, measured where the attempts land.
    pub fn arrivals(&self, signal: Signal) -> Vec<Instant> {
        self.state.arrivals(signal)
    }

    /// What was counted so far.
    pub fn counts(&self) -> ReceiverCounts {
        *self.state.counts.borrow()
    }

    /// Waits until `condition` holds on the counts, or `timeout` passes.
    ///
    /// # Errors
    ///
    /// The last counts, when `timeout` passed first.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&ReceiverCounts) -> bool,
    ) -> Result<ReceiverCounts, ReceiverCounts> {
        let mut watch = self.state.counts.subscribe();
        let waited = tokio::time::timeout(timeout, watch.wait_for(|c| condition(c))).await;
        match waited {
            Ok(Ok(counts)) => Ok(*counts),
            _ => Err(self.counts()),
        }
    }

    /// Stops serving: drops the HTTP listener and its connections, stops the
    /// gRPC server and waits (at most 5 s) for it to end.
    pub async fn shutdown(mut self) {
        self.http_task.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Requests scripted to hang keep their connections open; do not wait
        // on them forever.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.http_task.abort();
        self.task.abort();
    }
}
