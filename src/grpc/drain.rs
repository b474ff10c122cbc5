//! The OTLP/gRPC drain: encodes each batch into size-capped requests, keeps
//! up to `max_in_flight` of them outstanding, retries per the OTLP spec, and
//! makes `flush_durable` wait for every answer.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::{Code, Status};

use super::client::{ConnectError, ExportClient};
use super::outage::{Outage, OutageTracker};
use super::retry::{classify, classify_status, RetryDecision};
use super::{RetryPolicy, TlsError};
use crate::config::ExporterConfig;
use crate::otlp::{encode, EncodeError, Encoding};
use crate::sink::{DrainError, DrainErrorKind, SinkDrain};

/// Why points sent by a [`MetricsDrain`], [`TracesDrain`] or [`LogsDrain`]
/// are not durable. It is the [`source`](Error::source) of the [`DrainError`]
/// the drain reports, and so of the [`FlushError`](crate::FlushError) a flush
/// returns.
#[non_exhaustive]
#[derive(Debug)]
pub enum ExportError {
    /// The collector refused a request with a status that must not be retried
    /// (INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED,
    /// RESOURCE_EXHAUSTED without RetryInfo, ...). Its points are lost.
    Refused {
        /// The gRPC status.
        status: Status,
        /// Attempts made, the last included.
        attempts: u32,
    },
    /// Retryable failures went on until the retry budget ran out. Its points
    /// are lost.
    RetriesExhausted {
        /// The last attempt's status (DEADLINE_EXCEEDED for a per-attempt timeout).
        status: Status,
        /// Attempts made.
        attempts: u32,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
    },
    /// The TLS connection to the collector failed in a way retrying cannot
    /// fix (the collector requires a client certificate none is configured
    /// for, or its certificate is not trusted here). No gRPC status is
    /// involved: the collector answered no request. Its points are lost.
    ///
    /// Its message and its [`source`](Error::source) are the [`TlsError`]'s:
    /// what failed, the variables and builder method to set, then rustls's
    /// reason.
    Tls {
        /// What failed, and what to configure.
        error: TlsError,
        /// Attempts made, the last included.
        attempts: u32,
    },
    /// The collector accepted a request but refused some of its points (OTLP
    /// partial success). They are not retried.
    PartialSuccess {
        /// Points refused.
        rejected: u64,
        /// The collector's explanation.
        message: String,
    },
    /// A point could not be encoded (too large to fit any request, or
    /// malformed); the rest of its batch was sent. When a batch has several,
    /// this is the first of its kind, and the drain error counts them all.
    Encode(EncodeError),
}

impl ExportError {
    /// The gRPC status code, for the failures that have one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => Some(status.code()),
            Self::Tls { .. } | Self::PartialSuccess { .. } | Self::Encode(_) => None,
        }
    }

    /// The failure of a request whose attempt `attempts` failed for good with `status`.
    fn permanent(status: Status, attempts: u32) -> Self {
        match tls_failure(&status) {
            Some(error) => Self::Tls { error: error.clone(), attempts },
            None => Self::Refused { status, attempts },
        }
    }

    fn kind(&self) -> DrainErrorKind {
        match self {
            Self::Refused { .. } | Self::Tls { .. } => DrainErrorKind::Permanent,
            Self::RetriesExhausted { status, .. } if status.code() == Code::DeadlineExceeded => {
                DrainErrorKind::TimedOut
            }
            Self::RetriesExhausted { .. } => DrainErrorKind::RetriesExhausted,
            Self::PartialSuccess { .. } => DrainErrorKind::Rejected,
            Self::Encode(EncodeError::TooLarge { .. }) => DrainErrorKind::TooLarge,
            Self::Encode(_) => DrainErrorKind::Invalid,
        }
    }

    fn into_drain_error(self, items: u64) -> DrainError {
        DrainError::new(self.kind(), self).with_items(items)
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, attempts } => write!(
                f,
                "collector refused the request with {:?} after {attempts} attempt(s): {}",
                status.code(),
                status.message()
            ),
            Self::RetriesExhausted { status, attempts, elapsed } => write!(
                f,
                "gave up after {attempts} attempts in {elapsed:.1?}; last status {:?}: {}",
                status.code(),
                status.message()
            ),
            // What TLS error says is the whole message: transparent.
            Self::Tls { error, .. } => fmt::Display::fmt(error, f),
            Self::PartialSuccess { rejected, message } => {
                write!(f, "collector rejected {rejected} point(s): {message}")
            }
            // The reason is the source, not repeated here.
            Self::Encode(_) => f.write_str("a point was not sent"),
        }
    }
}

impl Error for ExportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // The status's code and message are already in this error's
            // text: its cause is what the transport reported under it.
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => status.source(),
            Self::Tls { error, .. } => error.source(),
            Self::Encode(e) => Some(e),
            Self::PartialSuccess { .. } => None,
        }
    }
}

/// The counters of one [`GrpcDrain`], shared with its
/// [`ExportStatsHandle`]. Points are data points, spans or log records.
#[derive(Debug)]
struct Counters {
    requests: AtomicU64,
    points_sent: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    unfinished: AtomicU64,
    bytes: AtomicU64,
    in_flight: AtomicU64,
    /// The collector's current outage, as every request to it saw it.
    outage: OutageTracker,
}

impl Counters {
    fn new(endpoint: String) -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            requests: zero(),
            points_sent: zero(),
            acked: zero(),
            rejected: zero(),
            retries: zero(),
            failed: zero(),
            unfinished: zero(),
            bytes: zero(),
            in_flight: zero(),
            outage: OutageTracker::new(endpoint),
        }
    }

    /// Counts `points` as failed because the drain gave up on them unfinished.
    fn abandon(&self, points: u64) {
        self.failed.fetch_add(points, Ordering::Relaxed);
        self.unfinished.fetch_add(points, Ordering::Relaxed);
    }
}

/// A snapshot of a drain's counters ([`MetricsDrain::stats`],
/// [`TracesDrain::stats`], [`LogsDrain::stats`]). Points are metric data points,
/// spans or log records, according to the signal.
///
/// Every point handed to the drain ends in exactly one of `acked`, `rejected`
/// and `failed`. So once no request is in flight (after a flush, or once the
/// drain is closed or dropped), `acked + rejected + failed` equals the points
/// the drain was given: behind a [`BackgroundSink`](crate::BackgroundSink),
/// its [`SinkStats::written`](crate::SinkStats::written). With the sink's
/// counters this makes the whole account of a pipeline, exact after shutdown:
///
/// ```text
/// sink.pushed == sink.dropped + sink.abandoned + export.acked + export.rejected + export.failed
/// ```
///
/// (`sink.abandoned` is zero unless a shutdown deadline aborted the sink.)
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    /// Export requests made (each counted once, however many attempts it took).
    pub requests: u64,
    /// Points in those requests.
    pub points_sent: u64,
    /// Points the collector acknowledged.
    pub acked: u64,
    /// Points refused for good: by the collector's partial success, or by the
    /// encoder (too large to send, inconsistent). Never retried.
    pub rejected: u64,
    /// Attempts after the first, over all requests.
    pub retries: u64,
    /// Points in requests that failed for good (permanent status, or retries
    /// exhausted), and points the drain still held, unsent or unanswered,
    /// when it was dropped (a sink aborted at its shutdown deadline). A point
    /// counted here may still have reached the collector: the answer, not the
    /// request, was lost.
    pub failed: u64,
    /// Of `failed`, the points the drain still held, unsent or unanswered,
    /// when it was dropped or its task aborted (a shutdown deadline).
    pub unfinished: u64,
    /// Encoded bytes of the requests made (before compression; retries not
    /// counted again).
    pub bytes: u64,
    /// Requests outstanding now.
    pub in_flight: u64,
}

/// Reads a drain's counters while the drain itself is owned by a sink.
#[derive(Debug, Clone)]
pub struct ExportStatsHandle(Arc<Counters>);

impl ExportStatsHandle {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> ExportStats {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ExportStats {
            requests: get(&c.requests),
            points_sent: get(&c.points_sent),
            acked: get(&c.acked),
            rejected: get(&c.rejected),
            retries: get(&c.retries),
            failed: get(&c.failed),
            unfinished: get(&c.unfinished),
            bytes: get(&c.bytes),
            in_flight: get(&c.in_flight),
        }
    }

    /// The collector's outage going on now, if its latest attempt failed.
    pub fn outage(&self) -> Option<Outage> {
        self.0.outage.current()
    }
}

/// The engine behind [`MetricsDrain`], [`TracesDrain`] and [`LogsDrain`],
/// written once for every signal: sends one signal's points to an OTLP/gRPC
/// collector.
///
/// - Each batch is encoded into requests of at most
///   [`max_request_bytes`](crate::ExporterConfigBuilder::with_max_request_bytes),
///   so a collection of any size is delivered; a point too large to fit any
///   request is counted as rejected and reported, its neighbours are sent.
/// - Up to [`max_in_flight`](crate::ExporterConfigBuilder::with_max_in_flight)
///   requests are outstanding at once. `write_batch` returns once its
///   requests are on their way; it waits only when every slot is taken.
/// - Each request is retried per the OTLP spec (see [`RetryPolicy`]), each
///   attempt bounded by the configured timeout.
/// - [`flush_durable`](SinkDrain::flush_durable) waits until every request
///   made so far has finished (acknowledged, partially rejected, or failed for
///   good) and reports the first failure since the previous call. So a sink
///   flush that returns `Ok` means the collector acknowledged everything before it.
///
/// `write_batch` itself never fails: every failure surfaces through
/// `flush_durable`, with the exact counts in [`ExportStats`].
pub(crate) struct GrpcDrain<S: Encoding> {
    client: ExportClient,
    max_request_bytes: usize,
    max_in_flight: usize,
    retry: RetryPolicy,
    in_flight: JoinSet<Option<DrainError>>,
    /// The tickets of the requests in `in_flight` (and of some that already
    /// settled; pruned as requests are made).
    tickets: Vec<Arc<Ticket>>,
    /// Points of the batch being written that are in no request yet. Not zero
    /// only while `write_batch` runs, or after its future was dropped mid-way.
    unsent: u64,
    counters: Arc<Counters>,
    /// The first failure not yet reported by `flush_durable`.
    unreported: Option<DrainError>,
    signal: std::marker::PhantomData<fn(S)>,
}

impl<S: Encoding> fmt::Debug for GrpcDrain<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcDrain")
            .field("path", &S::EXPORT_PATH)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<S: Encoding> GrpcDrain<S> {
    /// Prepares a drain for `config`. The connection is made lazily by the
    /// first request, so a collector that is not up yet is not an error here.
    ///
    /// Must be called inside a tokio runtime (the runtime the sink's actor
    /// runs on): the channel's connection task is spawned there.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`] when a TLS file cannot be read or is refused.
    pub(crate) async fn connect(config: &ExporterConfig) -> Result<Self, ConnectError> {
        let client = ExportClient::connect(config).await?;
        Ok(Self {
            client,
            max_request_bytes: config.max_request_bytes(),
            max_in_flight: config.max_in_flight().max(1),
            retry: *config.retry_policy(),
            in_flight: JoinSet::new(),
            tickets: Vec::new(),
            unsent: 0,
            counters: Arc::new(Counters::new(config.endpoint().to_string())),
            unreported: None,
            signal: std::marker::PhantomData,
        })
    }

    /// A handle that reads this drain's counters from anywhere.
    pub(crate) fn stats(&self) -> ExportStatsHandle {
        ExportStatsHandle(Arc::clone(&self.counters))
    }

    fn record(&mut self, failure: Option<DrainError>) {
        let Some(failure) = failure else { return };
        match &mut self.unreported {
            None => self.unreported = Some(failure),
            // The first is reported; the rest are counted in it, so the sink's
            // flush still accounts for every failure once.
            Some(first) => first.add_later_failures(1 + failure.later_failures()),
        }
    }

    /// Takes in the result of one finished request.
    fn settle(&mut self, joined: Result<Option<DrainError>, tokio::task::JoinError>) {
        match joined {
            Ok(failure) => self.record(failure),
            // A request task panicked or was aborted: its points' fate is
            // unknown, so it is reported as a failure (counted in `failed`
            // by the guard inside the task).
            Err(e) => self.record(Some(DrainError::new(DrainErrorKind::Other, e))),
        }
    }

    async fn wait_all(&mut self) {
        while let Some(joined) = self.in_flight.join_next().await {
            self.settle(joined);
        }
    }
}

impl<S: Encoding> GrpcDrain<S> {
    /// Counts `points` the drain held but will never deliver as failed.
    fn lose(&mut self, points: u64) {
        if points > 0 {
            self.counters.abandon(points);
            tracing::warn!(items = points, "gave up on items not delivered yet (a shutdown deadline passed)");
        }
    }
}

impl<S: Encoding> Drop for GrpcDrain<S> {
    /// A drain dropped with work unfinished (the sink aborted at its shutdown
    /// deadline) counts those points as failed here, at once, so the counters
    /// are final as soon as the drain is gone. The request tasks are aborted
    /// when the `JoinSet` drops, right after; a task that settles first keeps
    /// its own outcome, through its ticket.
    fn drop(&mut self) {
        let unanswered: u64 = self.tickets.iter().filter(|ticket| ticket.claim()).map(|ticket| ticket.points).sum();
        let unsent = std::mem::take(&mut self.unsent);
        self.lose(unanswered + unsent);
    }
}

impl<S: Encoding, P: Into<S::Point> + Send + 'static> SinkDrain<P> for GrpcDrain<S> {
    async fn write_batch(&mut self, batch: Vec<P>) -> Result<(), DrainError> {
        // A previous call dropped mid-way (its caller timed out) left points
        // that no request carries: they are lost.
        let stale = std::mem::take(&mut self.unsent);
        self.lose(stale);
        let encoded = encode::<S>(batch, self.max_request_bytes);
        self.unsent = encoded.requests.iter().map(|request| request.points as u64).sum();
        if !encoded.rejected.is_empty() {
            self.counters.rejected.fetch_add(encoded.rejected.len() as u64, Ordering::Relaxed);
            for err in &encoded.rejected {
                tracing::warn!(error = %err, "point not sent");
            }
            // One failure per kind of refusal (invalid, too large), each with
            // its own count, so that neither is reported under the other's name.
            let (too_large, invalid): (Vec<_>, Vec<_>) =
                encoded.rejected.into_iter().partition(|err| matches!(err, EncodeError::TooLarge { .. }));
            for refused in [invalid, too_large] {
                let items = refused.len() as u64;
                if let Some(first) = refused.into_iter().next() {
                    self.record(Some(ExportError::Encode(first).into_drain_error(items)));
                }
            }
        }
        for request in encoded.requests {
            // Free a slot first: never more than `max_in_flight` outstanding.
            while self.in_flight.len() >= self.max_in_flight {
                if let Some(joined) = self.in_flight.join_next().await {
                    self.settle(joined);
                }
            }
            let body = request.body;
            let points = request.points as u64;
            let c = &self.counters;
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.points_sent.fetch_add(points, Ordering::Relaxed);
            c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            c.in_flight.fetch_add(1, Ordering::Relaxed);
            let ticket = Arc::new(Ticket { points, settled: AtomicBool::new(false), counters: Arc::clone(c) });
            self.tickets.retain(|ticket| !ticket.is_settled());
            self.tickets.push(Arc::clone(&ticket));
            let delivery = Delivery { client: self.client.clone(), retry: self.retry, ticket };
            self.in_flight.spawn(delivery.run::<S>(Bytes::from(body)));
            self.unsent -= points;
        }
        Ok(())
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        self.wait_all().await;
        self.unreported.take().map_or(Ok(()), Err)
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        SinkDrain::<P>::flush_durable(self).await
    }
}

/// The right to count one request's outcome. Two parties may try: the
/// request's task, when the collector answers or the task gives up (or is
/// dropped), and the drain, when it is dropped with the request unfinished.
/// Whoever claims the ticket first counts the points and lowers `in_flight`;
/// the other counts nothing, so each point is counted exactly once.
struct Ticket {
    points: u64,
    settled: AtomicBool,
    counters: Arc<Counters>,
}

impl Ticket {
    /// Takes the right to count this request's points. `false` if it was
    /// already taken.
    fn claim(&self) -> bool {
        if self.settled.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        true
    }

    fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}

/// One request's delivery, run as its own task so that it progresses while
/// the actor is busy elsewhere.
struct Delivery {
    client: ExportClient,
    retry: RetryPolicy,
    ticket: Arc<Ticket>,
}

impl Drop for Delivery {
    /// A task dropped before it settled (aborted, or its runtime shut down)
    /// counts its points as failed, unless the drain already did.
    fn drop(&mut self) {
        if self.ticket.claim() {
            self.ticket.counters.abandon(self.ticket.points);
        }
    }
}

impl Delivery {
    async fn run<S: Encoding>(mut self, body: Bytes) -> Option<DrainError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        let outage = &self.ticket.counters.outage;
        loop {
            attempts += 1;
            // The retry budget bounds the whole delivery, the retries'
            // attempts included: none waits past it. (The first attempt has
            // its full per-attempt timeout, so a budget of zero still sends.)
            let left = match attempts {
                1 => Duration::MAX,
                _ => self.retry.max_elapsed().saturating_sub(started.elapsed()),
            };
            let status = match self.client.export::<S>(body.clone(), left).await {
                Ok(response) => {
                    outage.succeeded();
                    return self.answered::<S>(&response);
                }
                Err(status) => status,
            };
            let decision = classify_attempt(&status);
            let failure = match decision.delay(&self.retry, attempts - 1, rand::random::<f64>()) {
                None => ExportError::permanent(status, attempts),
                Some(delay) if self.retry.allows_retry(started.elapsed(), delay) => {
                    outage.failed(&AttemptFailure(&status), Some(delay));
                    self.ticket.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Some(_) => ExportError::RetriesExhausted { status, attempts, elapsed: started.elapsed() },
            };
            outage.failed(&failure, None);
            let points = self.ticket.points;
            tracing::warn!(error = %failure, items = points, "export failed");
            if !self.ticket.claim() {
                // The drain was dropped meanwhile and counted these already.
                return None;
            }
            self.ticket.counters.failed.fetch_add(points, Ordering::Relaxed);
            return Some(failure.into_drain_error(points));
        }
    }

    fn answered<S: Encoding>(&mut self, response: &S::Response) -> Option<DrainError> {
        if !self.ticket.claim() {
            // The drain was dropped meanwhile and counted these as failed: it
            // gave up on them before the answer came.
            return None;
        }
        let (points, counters) = (self.ticket.points, &self.ticket.counters);
        let (rejected, message) = S::partial_success(response);
        let rejected = u64::try_from(rejected).unwrap_or(0).min(points);
        counters.acked.fetch_add(points - rejected, Ordering::Relaxed);
        if rejected == 0 {
            if !message.is_empty() {
                tracing::warn!(message, "collector accepted the request with a warning");
            }
            return None;
        }
        counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        let failure = ExportError::PartialSuccess { rejected, message: message.to_owned() };
        tracing::warn!(error = %failure, "collector rejected points");
        Some(failure.into_drain_error(rejected))
    }
}

/// A failed attempt as an outage report shows it: the status code, the
/// collector's message, and the transport's innermost cause (for example
/// `Connection refused`), which tonic keeps out of the message.
struct AttemptFailure<'a>(&'a Status);

impl fmt::Display for AttemptFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.0;
        write!(f, "{:?}: {}", status.code(), status.message())?;
        let mut cause = status.source();
        let mut innermost = None;
        while let Some(e) = cause {
            innermost = Some(e);
            cause = e.source();
        }
        match innermost.map(ToString::to_string) {
            Some(text) if !status.message().contains(&text) => write!(f, " ({text})"),
            _ => Ok(()),
        }
    }
}

/// The OTLP retry classification, plus one fact of the transport: a status
/// with a source was made on this side by the HTTP/2 transport (a reset
/// connection, a collector killed mid-request), not sent by the collector.
/// tonic reports those as UNKNOWN, which the spec table calls permanent, but
/// the request may simply not have arrived, so they are retried like
/// UNAVAILABLE. A TLS certificate failure is the exception: retrying cannot fix it.
/// A [`TlsError`] from this crate's connector is one for certain; other
/// certificate failures (a client certificate the collector refuses) are
/// recognised from rustls's errors.
fn classify_attempt(status: &Status) -> RetryDecision {
    if tls_failure(status).is_some() {
        return RetryDecision::Permanent;
    }
    if status.code() == Code::Unknown && status.source().is_some() {
        if certificate_failure(status) {
            return RetryDecision::Permanent;
        }
        return classify(Code::Unavailable, None);
    }
    if status.code() == Code::Unavailable && certificate_failure(status) {
        return RetryDecision::Permanent;
    }
    classify_status(status)
}

/// The [`TlsError`] of the connector in the status's source chain, if there
/// is one. An `io::Error`'s `source` skips the error it wraps, so that one is
/// looked at too.
fn tls_failure(status: &Status) -> Option<&TlsError> {
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(err) = cause {
        let wrapped = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn Error);
        if let Some(tls) = [Some(err), wrapped].into_iter().flatten().find_map(|e| e.downcast_ref::<TlsError>()) {
            return Some(tls);
        }
        cause = err.source();
    }
    None
}

/// Whether a rustls certificate error is anywhere in the status's source
/// chain: the collector's certificate refused here, or ours refused (or
/// missing) there, which the collector says with a fatal TLS alert.
///
/// Two forms reach here. A failure during the handshake keeps its type: an
/// `io::Error` wrapping a `rustls::Error`. A failure after it does not: with
/// TLS 1.3 the client finishes its handshake before the server checks the
/// client certificate, so a missing or untrusted client certificate arrives
/// as an alert on the first read of the HTTP/2 connection, and h2 keeps only
/// the kind and the text of the I/O errors it reports. For those the text of
/// an `InvalidData` I/O error is compared with what rustls prints for the
/// same errors (a unit test pins those texts to rustls's `Display`).
fn certificate_failure(status: &Status) -> bool {
    use tokio_rustls::rustls::Error as TlsError;
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(err) = cause {
        let io = err.downcast_ref::<std::io::Error>();
        let inner = io.and_then(|io| io.get_ref()).map(|e| e as &dyn Error);
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<TlsError>() {
                return matches!(
                    tls,
                    TlsError::InvalidCertificate(_) | TlsError::AlertReceived(_) | TlsError::NoCertificatesPresented
                );
            }
        }
        if let (Some(io), Some(inner)) = (io, inner) {
            if io.kind() == std::io::ErrorKind::InvalidData && is_certificate_error_text(&inner.to_string()) {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

/// What rustls prints for the errors [`certificate_failure`] looks for:
/// `InvalidCertificate(_)`, `AlertReceived(_)`, `NoCertificatesPresented`.
const CERTIFICATE_ERROR_TEXTS: [&str; 3] =
    ["invalid peer certificate: ", "received fatal alert: ", "peer sent no certificates"];

fn is_certificate_error_text(text: &str) -> bool {
    CERTIFICATE_ERROR_TEXTS.iter().any(|prefix| text.starts_with(prefix))
}

/// Declares the public drain of one signal: a thin wrapper around
/// [`GrpcDrain`], which stays crate-private with its encoding trait.
macro_rules! signal_drain {
    ($(#[$doc:meta])* $name:ident, $signal:ty, $point:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(GrpcDrain<$signal>);

        impl $name {
            /// Prepares the drain for `config`. The connection is made lazily
            /// by the first request, so a collector that is not up yet is not
            /// an error here.
            ///
            /// Call it inside the tokio runtime the sink's actor will run on:
            /// the channel's connection task is spawned there.
            ///
            /// # Errors
            ///
            /// A [`ConnectError`] when a TLS file cannot be read or is refused.
            pub async fn connect(config: &ExporterConfig) -> Result<Self, ConnectError> {
                GrpcDrain::connect(config).await.map(Self)
            }

            /// A handle that reads this drain's counters from anywhere, also
            /// after the drain was moved into a sink.
            pub fn stats(&self) -> ExportStatsHandle {
                self.0.stats()
            }
        }

        impl SinkDrain<$point> for $name {
            fn write_batch(
                &mut self,
                batch: Vec<$point>,
            ) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                self.0.write_batch(batch)
            }

            fn flush_durable(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                SinkDrain::<$point>::flush_durable(&mut self.0)
            }

            fn close(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                SinkDrain::<$point>::close(&mut self.0)
            }
        }
    };
}

signal_drain!(
    /// A [`SinkDrain`] that sends metric data points to an OTLP/gRPC collector's
    /// `MetricsService/Export`. See [`BackgroundSink`](crate::BackgroundSink)
    /// for the queue in front of it.
    ///
    /// - Each batch is encoded into requests of at most
    ///   [`max_request_bytes`](crate::ExporterConfigBuilder::with_max_request_bytes),
    ///   so a collection of any size is delivered; a point too large to fit any
    ///   request is counted as rejected and reported, its neighbours are sent.
    /// - Up to [`max_in_flight`](crate::ExporterConfigBuilder::with_max_in_flight)
    ///   requests are outstanding at once. `write_batch` returns once its
    ///   requests are on their way; it waits only when every slot is taken.
    /// - Each request is retried per the OTLP spec (see [`RetryPolicy`]), each
    ///   attempt bounded by the configured timeout.
    /// - [`flush_durable`](SinkDrain::flush_durable) waits until every request
    ///   made so far has finished (acknowledged, partially rejected, or failed
    ///   for good) and reports the first failure since the previous call, with
    ///   an [`ExportError`] as its source. So a sink flush that returns `Ok`
    ///   means the collector acknowledged everything before it.
    /// - `write_batch` itself never fails: every failure surfaces through
    ///   `flush_durable`, with exact counts in [`ExportStats`].
    MetricsDrain,
    crate::otlp::Metrics,
    crate::otlp::MetricPoint
);

signal_drain!(
    /// A [`SinkDrain`] that sends spans to an OTLP/gRPC collector's
    /// `TraceService/Export`. It works as [`MetricsDrain`] does.
    TracesDrain,
    crate::otlp::Traces,
    crate::otlp::SpanRecord
);

signal_drain!(
    /// A [`SinkDrain`] that sends log records to an OTLP/gRPC collector's
    /// `LogsService/Export`. It works as [`MetricsDrain`] does.
    LogsDrain,
    crate::otlp::Logs,
    crate::otlp::LogRecord
);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio_rustls::rustls::{AlertDescription, CertificateError, Error as TlsError};

    use super::*;

    /// A status as tonic reports a transport failure: `code`, with `source`
    /// below it.
    fn transport_status(code: Code, source: impl Error + Send + Sync + 'static) -> Status {
        let mut status = Status::new(code, "transport error");
        status.set_source(Arc::new(source));
        status
    }

    fn io(error: impl Into<Box<dyn Error + Send + Sync>>) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }

    #[test]
    fn the_error_texts_are_what_rustls_prints() {
        let errors = [
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
            TlsError::AlertReceived(AlertDescription::CertificateRequired),
            TlsError::NoCertificatesPresented,
        ];
        for (error, prefix) in errors.iter().zip(CERTIFICATE_ERROR_TEXTS) {
            assert!(error.to_string().starts_with(prefix), "rustls prints {error} for {error:?}, not {prefix}..");
        }
    }

    #[test]
    fn a_certificate_error_is_permanent_whether_typed_or_flattened_to_text() {
        let refused = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let required = TlsError::AlertReceived(AlertDescription::CertificateRequired);
        for status in [
            // During the handshake: the rustls error keeps its type.
            transport_status(Code::Unavailable, io(refused.clone())),
            transport_status(Code::Unknown, io(required.clone())),
            // After it, through h2: only the text is left.
            transport_status(Code::Unknown, io(required.to_string())),
            transport_status(Code::Unknown, io(refused.to_string())),
        ] {
            assert_eq!(classify_attempt(&status), RetryDecision::Permanent, "{status:?}");
        }
    }

    #[test]
    fn a_tls_error_of_the_connector_is_permanent_and_reported_as_such_not_as_a_status() {
        let end = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let refused = crate::TlsError::client_certificate_required(end);
        // Directly below the status (the client's refusal), or deeper in the
        // chain (a connect error, wrapped by tonic and tower).
        let direct = transport_status(Code::Unavailable, refused.clone());
        let nested = transport_status(Code::Unavailable, io(refused.clone()));
        for status in [direct, nested] {
            assert_eq!(classify_attempt(&status), RetryDecision::Permanent, "{status:?}");
            let failure = ExportError::permanent(status, 1);
            let ExportError::Tls { error, attempts } = &failure else { panic!("expected Tls, got {failure:?}") };
            assert_eq!((error.kind(), *attempts), (crate::TlsErrorKind::ClientCertificateRequired, 1));
            assert_eq!(failure.code(), None, "no gRPC status was involved");
            assert_eq!(failure.kind(), DrainErrorKind::Permanent);
            assert_eq!(failure.to_string(), refused.to_string(), "the TLS error is the message");
        }
    }

    #[test]
    fn a_permanent_status_without_a_tls_error_stays_a_refusal() {
        let failure = ExportError::permanent(Status::permission_denied("no"), 2);
        assert!(matches!(failure, ExportError::Refused { attempts: 2, .. }), "{failure:?}");
        assert_eq!(failure.code(), Some(Code::PermissionDenied));
    }

    #[test]
    fn other_transport_failures_stay_retryable() {
        for status in [
            transport_status(Code::Unknown, io("connection reset")),
            transport_status(Code::Unknown, std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            // The text alone, without an InvalidData I/O error around it, is not enough.
            transport_status(Code::Unknown, std::io::Error::other("received fatal alert: CertificateRequired")),
            transport_status(Code::Unavailable, io(TlsError::General("internal".into()))),
        ] {
            assert_ne!(classify_attempt(&status), RetryDecision::Permanent, "{status:?}");
        }
    }
}
