//! An in-process OTLP/gRPC receiver on loopback, for the quickstart, the load
//! generator and the tests. It decodes what it receives, counts it per
//! signal, remembers the resources and scope names it saw, and answers each
//! request as scripted: OK by default, or a gRPC
//! error, a throttle with `RetryInfo`, a partial success, a slow answer, or
//! no answer at all.
//!
//! Only with the `receiver` feature, which is opt-in: a library user compiles
//! no server unless they ask for it (`features = ["receiver"]`). This crate's
//! own tests, examples and benches always have it, through a dev-dependency
//! on itself.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};

use crate::grpc::status_with_retry_delay;
use crate::pb::collector::logs::v1 as logs_svc;
use crate::pb::collector::metrics::v1 as metrics_svc;
use crate::pb::collector::trace::v1 as trace_svc;
use crate::pb::metrics::v1::metric::Data;
use crate::{
    otlp::{AnyValue, KeyValue, Resource},
    Signal,
};

/// How the receiver answers one request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Accept everything.
    Ok,
    /// Accept the request but refuse `rejected` of its items (OTLP partial
    /// success), with the collector's `message`.
    PartialSuccess {
        /// Items refused.
        rejected: i64,
        /// The collector's explanation.
        message: String,
    },
    /// Fail with a gRPC status.
    Status {
        /// The gRPC status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// Fail with a gRPC status carrying `google.rpc.RetryInfo` with `delay`.
    Throttle {
        /// The gRPC status code (RESOURCE_EXHAUSTED or UNAVAILABLE, usually).
        code: Code,
        /// The retry delay the client must wait at least.
        delay: Duration,
    },
    /// Wait `delay`, then answer with `then`.
    Delayed {
        /// How long to wait before answering.
        delay: Duration,
        /// The answer after the wait.
        then: Box<Reply>,
    },
    /// Never answer (the client's per-attempt timeout must fire).
    Hang,
}

impl Reply {
    /// A gRPC error with `code` and a generic message.
    pub fn status(code: Code) -> Self {
        Self::Status { code, message: format!("scripted {code:?}") }
    }

    /// `then`, answered after `delay`.
    pub fn delayed(delay: Duration, then: Reply) -> Self {
        Self::Delayed { delay, then: Box::new(then) }
    }
}

/// What the receiver counted for one signal.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceivedCounts {
    /// Export requests received (whatever the answer).
    pub requests: u64,
    /// Items (data points, spans or log records) in those requests.
    pub received: u64,
    /// Items acknowledged: in requests answered OK, less those refused by a
    /// partial success.
    pub acked: u64,
    /// Items refused by scripted partial successes.
    pub rejected: u64,
    /// Items in requests answered with an error (or not answered).
    pub failed: u64,
    /// Encoded request bytes received (after decompression).
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
    max_message_bytes: usize,
    tls: Option<ReceiverTls>,
    record: bool,
}

impl Default for ReceiverBuilder {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 4 * 1024 * 1024,
            tls: None,
            record: false,
        }
    }
}

impl ReceiverBuilder {
    /// Where to listen. Default `127.0.0.1:0` (a free loopback port).
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The largest request accepted, like a collector's receive limit.
    /// Larger requests fail with OUT_OF_RANGE. Default 4 MiB.
    #[must_use]
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Serve TLS (and mTLS, if the settings name a client CA).
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

    /// Binds and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the TLS settings are invalid.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(self) -> Result<Receiver, ReceiverError> {
        let listener = TcpListener::bind(self.addr).await.map_err(ReceiverError::Bind)?;
        let addr = listener.local_addr().map_err(ReceiverError::Bind)?;
        let state = Arc::new(State::new(self.record));
        let mut server = Server::builder();
        if let Some(tls) = &self.tls {
            let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                config = config.client_ca_root(Certificate::from_pem(ca));
            }
            server = server.tls_config(config).map_err(ReceiverError::Tls)?;
        }
        let limit = self.max_message_bytes;
        let router = server
            .add_service(
                metrics_svc::metrics_service_server::MetricsServiceServer::new(Service(state.clone()))
                    .max_decoding_message_size(limit)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
            )
            .add_service(
                trace_svc::trace_service_server::TraceServiceServer::new(Service(state.clone()))
                    .max_decoding_message_size(limit)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
            )
            .add_service(
                logs_svc::logs_service_server::LogsServiceServer::new(Service(state.clone()))
                    .max_decoding_message_size(limit)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
            );
        let (stop, stopped) = oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Receiver { addr, tls: self.tls.is_some(), state, stop: Some(stop), task })
    }
}

/// Why a [`Receiver`] could not start.
#[non_exhaustive]
#[derive(Debug)]
pub enum ReceiverError {
    /// The address could not be bound.
    Bind(std::io::Error),
    /// The TLS settings were refused.
    Tls(tonic::transport::Error),
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind(_) => f.write_str("receiver could not bind its address"),
            Self::Tls(_) => f.write_str("receiver TLS settings were refused"),
        }
    }
}

impl std::error::Error for ReceiverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind(e) => Some(e),
            Self::Tls(e) => Some(e),
        }
    }
}

/// A running in-process OTLP/gRPC receiver. Stops when dropped or on
/// [`shutdown`](Self::shutdown).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use otlp_sink::receiver::{Receiver, Reply};
/// use otlp_sink::Signal;
///
/// let receiver = Receiver::start().await?;
/// // The first metrics request fails with UNAVAILABLE, later ones succeed.
/// receiver.script(Signal::Metrics, [Reply::status(tonic::Code::Unavailable)]);
/// println!("send OTLP to {}", receiver.endpoint());
/// assert_eq!(receiver.counts().metrics.acked, 0);
/// receiver.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Receiver {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("addr", &self.addr).field("tls", &self.tls).finish_non_exhaustive()
    }
}

impl Receiver {
    /// How many distinct resources and scope names the receiver remembers
    /// per signal; later ones are not recorded.
    pub const MAX_REMEMBERED: usize = 64;

    /// Starts a plain-text receiver on a free loopback port with a 4 MiB
    /// receive limit.
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

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint to give an exporter: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` with TLS (certificates name `localhost`).
    pub fn endpoint(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    /// Queues answers for the next requests of `signal`, in order. When the
    /// queue is empty the receiver answers with the default reply (OK unless
    /// changed by [`set_default`](Self::set_default)).
    pub fn script(&self, signal: Signal, replies: impl IntoIterator<Item = Reply>) {
        let mut script = self.state.script.lock().expect("receiver lock");
        script.queue_mut(signal).extend(replies);
    }

    /// Sets the answer for requests of `signal` that no script covers.
    pub fn set_default(&self, signal: Signal, reply: Reply) {
        let mut script = self.state.script.lock().expect("receiver lock");
        *script.default_mut(signal) = reply;
    }

    /// The value of metadata entry `name` (lowercase) in the latest request
    /// of any signal. For tests of header handling.
    pub fn last_header(&self, name: &str) -> Option<String> {
        let metadata = self.state.last_metadata.lock().expect("receiver lock");
        metadata.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// The distinct resources that requests of `signal` carried, in the
    /// order first seen (at most [`Receiver::MAX_REMEMBERED`]).
    pub fn resources(&self, signal: Signal) -> Vec<Resource> {
        self.state.seen.lock().expect("receiver lock")[signal.index()].resources.clone()
    }

    /// The distinct instrumentation scope names that requests of `signal`
    /// carried, in the order first seen (at most [`Receiver::MAX_REMEMBERED`]).
    pub fn scope_names(&self, signal: Signal) -> Vec<String> {
        self.state.seen.lock().expect("receiver lock")[signal.index()].scopes.clone()
    }

    /// The requests of `signal` received so far, oldest first, each as the
    /// protobuf encoding of the export request the receiver decoded (so what
    /// was sent, field for field). Empty unless the builder asked for
    /// [`with_recording`](ReceiverBuilder::with_recording). For tests that
    /// check what arrived, with a decoder of their own.
    pub fn recorded(&self, signal: Signal) -> Vec<Vec<u8>> {
        self.state.recorded.lock().expect("receiver lock")[signal.index()].clone()
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

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
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
        self.task.abort();
    }
}

#[derive(Debug)]
struct Script {
    queues: [VecDeque<Reply>; 3],
    defaults: [Reply; 3],
}

impl Script {
    fn queue_mut(&mut self, signal: Signal) -> &mut VecDeque<Reply> {
        &mut self.queues[signal.index()]
    }

    fn default_mut(&mut self, signal: Signal) -> &mut Reply {
        &mut self.defaults[signal.index()]
    }

    fn next(&mut self, signal: Signal) -> Reply {
        let i = signal.index();
        self.queues[i].pop_front().unwrap_or_else(|| self.defaults[i].clone())
    }
}

#[derive(Debug)]
struct State {
    script: Mutex<Script>,
    counts: watch::Sender<ReceiverCounts>,
    /// The metadata of the latest request, name and value.
    last_metadata: Mutex<Vec<(String, String)>>,
    /// Resources and scopes seen, per signal.
    seen: Mutex<[Seen; 3]>,
    /// Whether to keep the requests in `recorded`.
    record: bool,
    /// Every request received, re-encoded, per signal (by `index`).
    recorded: Mutex<[Vec<Vec<u8>>; 3]>,
}

/// The distinct resources and scope names one signal's requests carried.
#[derive(Debug, Default)]
struct Seen {
    resources: Vec<Resource>,
    scopes: Vec<String>,
}

impl Seen {
    fn add(&mut self, resource: Option<&crate::pb::resource::v1::Resource>, scopes: impl Iterator<Item = String>) {
        let resource = resource_from_pb(resource);
        if self.resources.len() < Receiver::MAX_REMEMBERED && !self.resources.contains(&resource) {
            self.resources.push(resource);
        }
        for scope in scopes {
            if self.scopes.len() < Receiver::MAX_REMEMBERED && !self.scopes.contains(&scope) {
                self.scopes.push(scope);
            }
        }
    }
}

fn resource_from_pb(resource: Option<&crate::pb::resource::v1::Resource>) -> Resource {
    let Some(resource) = resource else { return Resource::default() };
    Resource::new(resource.attributes.iter().map(key_value_from_pb))
        .with_dropped_attributes_count(resource.dropped_attributes_count)
}

fn key_value_from_pb(kv: &crate::pb::common::v1::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.clone(),
        value: kv.value.as_ref().map_or(AnyValue::String(String::new()), any_value_from_pb),
    }
}

fn any_value_from_pb(value: &crate::pb::common::v1::AnyValue) -> AnyValue {
    use crate::pb::common::v1::any_value::Value;
    match &value.value {
        Some(Value::StringValue(s)) => AnyValue::String(s.clone()),
        Some(Value::BoolValue(b)) => AnyValue::Bool(*b),
        Some(Value::IntValue(i)) => AnyValue::Int(*i),
        Some(Value::DoubleValue(d)) => AnyValue::Double(*d),
        Some(Value::BytesValue(b)) => AnyValue::Bytes(b.clone()),
        Some(Value::ArrayValue(a)) => AnyValue::Array(a.values.iter().map(any_value_from_pb).collect()),
        Some(Value::KvlistValue(kv)) => AnyValue::Map(kv.values.iter().map(key_value_from_pb).collect()),
        None => AnyValue::String(String::new()),
    }
}

impl State {
    fn new(record: bool) -> Self {
        Self {
            script: Mutex::new(Script { queues: Default::default(), defaults: [Reply::Ok, Reply::Ok, Reply::Ok] }),
            counts: watch::Sender::new(ReceiverCounts::default()),
            last_metadata: Mutex::new(Vec::new()),
            seen: Mutex::new(Default::default()),
            record,
            recorded: Mutex::default(),
        }
    }

    fn remember(&self, signal: Signal, request: &impl prost::Message) {
        if self.record {
            self.recorded.lock().expect("receiver lock")[signal.index()].push(request.encode_to_vec());
        }
    }

    fn remember_metadata(&self, metadata: &tonic::metadata::MetadataMap) {
        let pairs = metadata
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        *self.last_metadata.lock().expect("receiver lock") = pairs;
    }

    fn remember_resource<'a>(
        &self,
        signal: Signal,
        resource: Option<&crate::pb::resource::v1::Resource>,
        scopes: impl Iterator<Item = Option<&'a crate::pb::common::v1::InstrumentationScope>>,
    ) {
        let names = scopes.map(|s| s.map(|s| s.name.clone()).unwrap_or_default());
        self.seen.lock().expect("receiver lock")[signal.index()].add(resource, names);
    }

    fn count(&self, signal: Signal, update: impl FnOnce(&mut ReceivedCounts)) {
        self.counts.send_modify(|c| update(c.signal_mut(signal)));
    }

    /// Counts the request, then answers it as scripted.
    async fn answer(&self, signal: Signal, items: u64, bytes: usize) -> Result<Option<(i64, String)>, Status> {
        self.count(signal, |c| {
            c.requests += 1;
            c.received += items;
            c.bytes += bytes as u64;
            c.concurrent += 1;
            c.max_concurrent = c.max_concurrent.max(c.concurrent);
        });
        // Lowers `concurrent` however the answer ends, even if the client
        // gives up and the server drops this future.
        struct Answering<'a>(&'a State, Signal);
        impl Drop for Answering<'_> {
            fn drop(&mut self) {
                self.0.count(self.1, |c| c.concurrent -= 1);
            }
        }
        let _answering = Answering(self, signal);
        let mut reply = self.script.lock().expect("receiver lock").next(signal);
        loop {
            match reply {
                Reply::Delayed { delay, then } => {
                    tokio::time::sleep(delay).await;
                    reply = *then;
                }
                Reply::Hang => {
                    // Counted as failed now: the client will give up on it.
                    self.count(signal, |c| c.failed += items);
                    return std::future::pending().await;
                }
                Reply::Ok => {
                    self.count(signal, |c| c.acked += items);
                    return Ok(None);
                }
                Reply::PartialSuccess { rejected, message } => {
                    let refused = (rejected.max(0) as u64).min(items);
                    self.count(signal, |c| {
                        c.acked += items - refused;
                        c.rejected += refused;
                    });
                    return Ok(Some((rejected, message)));
                }
                Reply::Status { code, message } => {
                    self.count(signal, |c| c.failed += items);
                    return Err(Status::new(code, message));
                }
                Reply::Throttle { code, delay } => {
                    self.count(signal, |c| c.failed += items);
                    return Err(status_with_retry_delay(code, "scripted throttle", delay));
                }
            }
        }
    }
}

struct Service(Arc<State>);

fn metric_points(request: &metrics_svc::ExportMetricsServiceRequest) -> u64 {
    let points = |data: &Option<Data>| match data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| points(&m.data) as u64)
        .sum()
}

#[tonic::async_trait]
impl metrics_svc::metrics_service_server::MetricsService for Service {
    async fn export(
        &self,
        request: Request<metrics_svc::ExportMetricsServiceRequest>,
    ) -> Result<Response<metrics_svc::ExportMetricsServiceResponse>, Status> {
        {
            self.0.remember_metadata(request.metadata());
            let request = request.into_inner();
            let bytes = prost::Message::encoded_len(&request);
            for rm in &request.resource_metrics {
                self.0.remember_resource(
                    Signal::Metrics,
                    rm.resource.as_ref(),
                    rm.scope_metrics.iter().map(|s| s.scope.as_ref()),
                );
            }
            self.0.remember(Signal::Metrics, &request);
            let partial = self.0.answer(Signal::Metrics, metric_points(&request), bytes).await?;
            Ok(Response::new(metrics_svc::ExportMetricsServiceResponse {
                partial_success: partial.map(|(rejected_data_points, error_message)| {
                    metrics_svc::ExportMetricsPartialSuccess { rejected_data_points, error_message }
                }),
            }))
        }
    }
}

#[tonic::async_trait]
impl trace_svc::trace_service_server::TraceService for Service {
    async fn export(
        &self,
        request: Request<trace_svc::ExportTraceServiceRequest>,
    ) -> Result<Response<trace_svc::ExportTraceServiceResponse>, Status> {
        {
            self.0.remember_metadata(request.metadata());
            let request = request.into_inner();
            let bytes = prost::Message::encoded_len(&request);
            for rs in &request.resource_spans {
                self.0.remember_resource(
                    Signal::Traces,
                    rs.resource.as_ref(),
                    rs.scope_spans.iter().map(|s| s.scope.as_ref()),
                );
            }
            self.0.remember(Signal::Traces, &request);
            let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum();
            let partial = self.0.answer(Signal::Traces, spans, bytes).await?;
            Ok(Response::new(trace_svc::ExportTraceServiceResponse {
                partial_success: partial.map(|(rejected_spans, error_message)| trace_svc::ExportTracePartialSuccess {
                    rejected_spans,
                    error_message,
                }),
            }))
        }
    }
}

#[tonic::async_trait]
impl logs_svc::logs_service_server::LogsService for Service {
    async fn export(
        &self,
        request: Request<logs_svc::ExportLogsServiceRequest>,
    ) -> Result<Response<logs_svc::ExportLogsServiceResponse>, Status> {
        {
            self.0.remember_metadata(request.metadata());
            let request = request.into_inner();
            let bytes = prost::Message::encoded_len(&request);
            for rl in &request.resource_logs {
                self.0.remember_resource(
                    Signal::Logs,
                    rl.resource.as_ref(),
                    rl.scope_logs.iter().map(|s| s.scope.as_ref()),
                );
            }
            self.0.remember(Signal::Logs, &request);
            let records =
                request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len() as u64).sum();
            let partial = self.0.answer(Signal::Logs, records, bytes).await?;
            Ok(Response::new(logs_svc::ExportLogsServiceResponse {
                partial_success: partial.map(|(rejected_log_records, error_message)| {
                    logs_svc::ExportLogsPartialSuccess { rejected_log_records, error_message }
                }),
            }))
        }
    }
}
