//! The OTLP/gRPC drain: encodes each batch into size-capped requests, keeps
//! up to `max_in_flight` of them outstanding, retries per the OTLP spec, and
//! makes `flush_durable` wait for every answer.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::{Code, Status};

use super::client::{ConnectError, ExportClient};
use super::retry::{classify, classify_status, RetryDecision};
use super::RetryPolicy;
use crate::config::ExporterConfig;
use crate::otlp::{encode, EncodeError, Signal as Encoding};
use crate::sink::{DrainError, DrainErrorKind, SinkDrain};

/// Why points sent by an OTLP/gRPC drain ([`MetricsDrain`], [`TracesDrain`],
/// [`LogsDrain`]) are not durable. It is the
/// [`source`](Error::source) of the [`DrainError`] the drain reports, and so of
/// the [`FlushError`](crate::FlushError) a flush returns.
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
    /// The collector accepted a request but refused some of its points (OTLP
    /// partial success). They are not retried.
    PartialSuccess {
        /// Points refused.
        rejected: u64,
        /// The collector's explanation.
        message: String,
    },
    /// A point could not be encoded (for example, too large to fit any
    /// request); the rest of its batch was sent.
    Encode(EncodeError),
}

impl ExportError {
    /// The gRPC status code, for the failures that have one.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => Some(status.code()),
            Self::PartialSuccess { .. } | Self::Encode(_) => None,
        }
    }

    fn kind(&self) -> DrainErrorKind {
        match self {
            Self::Refused { .. } => DrainErrorKind::Permanent,
            Self::RetriesExhausted { status, .. } if status.code() == Code::DeadlineExceeded => {
                DrainErrorKind::TimedOut
            }
            Self::RetriesExhausted { .. } => DrainErrorKind::RetriesExhausted,
            Self::PartialSuccess { .. } => DrainErrorKind::Rejected,
            Self::Encode(EncodeError::TooLarge { .. }) => DrainErrorKind::TooLarge,
            Self::Encode(_) => DrainErrorKind::Rejected,
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
            Self::PartialSuccess { rejected, message } => {
                write!(f, "collector rejected {rejected} point(s): {message}")
            }
            Self::Encode(e) => write!(f, "point not sent: {e}"),
        }
    }
}

impl Error for ExportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => Some(status),
            Self::Encode(e) => Some(e),
            Self::PartialSuccess { .. } => None,
        }
    }
}

/// The counters of one [`GrpcDrain`], shared with its
/// [`ExportStatsHandle`]. Points are data points, spans or log records.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    points_sent: AtomicU64,
    acked: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    in_flight: AtomicU64,
}

/// A snapshot of an OTLP/gRPC drain's counters. Points are metric data points,
/// spans or log records, according to the signal.
///
/// Once every request has finished (after a flush or shutdown),
/// `points_sent + rejected_by_encoder == acked + rejected + failed`, where the
/// points the encoder refused count in `rejected` without ever being sent.
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
    /// exhausted).
    pub failed: u64,
    /// Encoded bytes of the requests made (before compression; retries not
    /// counted again).
    pub bytes: u64,
    /// Requests outstanding now.
    pub in_flight: u64,
}

/// Reads an OTLP/gRPC drain's counters while the drain itself is owned by a sink.
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
            bytes: get(&c.bytes),
            in_flight: get(&c.in_flight),
        }
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
            counters: Arc::default(),
            unreported: None,
            signal: std::marker::PhantomData,
        })
    }

    /// A handle that reads this drain's counters from anywhere.
    pub(crate) fn stats(&self) -> ExportStatsHandle {
        ExportStatsHandle(Arc::clone(&self.counters))
    }

    fn record(&mut self, failure: Option<DrainError>) {
        if let Some(failure) = failure {
            self.unreported.get_or_insert(failure);
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

impl<S: Encoding> SinkDrain<S::Point> for GrpcDrain<S> {
    async fn write_batch(&mut self, batch: Vec<S::Point>) -> Result<(), DrainError> {
        let encoded = encode::<S>(batch, self.max_request_bytes);
        if !encoded.rejected.is_empty() {
            let refused = encoded.rejected.len() as u64;
            self.counters.rejected.fetch_add(refused, Ordering::Relaxed);
            for err in &encoded.rejected {
                tracing::warn!(error = %err, "point not sent");
            }
            let first = encoded.rejected.into_iter().next().expect("not empty");
            self.record(Some(ExportError::Encode(first).into_drain_error(refused)));
        }
        for request in encoded.requests {
            // Free a slot first: never more than `max_in_flight` outstanding.
            while self.in_flight.len() >= self.max_in_flight {
                if let Some(joined) = self.in_flight.join_next().await {
                    self.settle(joined);
                }
            }
            let mut body = Vec::with_capacity(request.encoded_len);
            request.request.encode(&mut body).expect("a Vec grows as needed");
            let points = request.points as u64;
            let c = &self.counters;
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.points_sent.fetch_add(points, Ordering::Relaxed);
            c.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            c.in_flight.fetch_add(1, Ordering::Relaxed);
            let delivery = Delivery {
                client: self.client.clone(),
                retry: self.retry,
                counters: Arc::clone(&self.counters),
                points,
                settled: false,
            };
            self.in_flight.spawn(delivery.run::<S>(Bytes::from(body)));
        }
        Ok(())
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        self.wait_all().await;
        self.unreported.take().map_or(Ok(()), Err)
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        self.flush_durable().await
    }
}

/// One request's delivery, run as its own task so that it progresses while
/// the actor is busy elsewhere.
struct Delivery {
    client: ExportClient,
    retry: RetryPolicy,
    counters: Arc<Counters>,
    points: u64,
    /// Whether the points were counted as acked, rejected or failed. If the
    /// task is dropped before (aborted at a shutdown deadline), `Drop` counts
    /// them as failed so the books still balance.
    settled: bool,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.settled {
            self.counters.failed.fetch_add(self.points, Ordering::Relaxed);
        }
    }
}

impl Delivery {
    async fn run<S: Encoding>(mut self, body: Bytes) -> Option<DrainError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let status = match self.client.export::<S>(body.clone()).await {
                Ok(response) => return self.answered::<S>(&response),
                Err(status) => status,
            };
            let decision = classify_attempt(&status);
            let failure = match decision.delay(&self.retry, attempts - 1, rand::random::<f64>()) {
                None => ExportError::Refused { status, attempts },
                Some(delay) if self.retry.allows_retry(started.elapsed(), delay) => {
                    tracing::debug!(code = ?status.code(), ?delay, attempts, "export attempt failed; retrying");
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Some(_) => ExportError::RetriesExhausted { status, attempts, elapsed: started.elapsed() },
            };
            tracing::warn!(error = %failure, points = self.points, "export failed");
            self.settled = true;
            self.counters.failed.fetch_add(self.points, Ordering::Relaxed);
            return Some(failure.into_drain_error(self.points));
        }
    }

    fn answered<S: Encoding>(&mut self, response: &S::Response) -> Option<DrainError> {
        self.settled = true;
        let (rejected, message) = S::partial_success(response);
        let rejected = u64::try_from(rejected).unwrap_or(0).min(self.points);
        self.counters.acked.fetch_add(self.points - rejected, Ordering::Relaxed);
        if rejected == 0 {
            if !message.is_empty() {
                tracing::warn!(message, "collector accepted the request with a warning");
            }
            return None;
        }
        self.counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        let failure = ExportError::PartialSuccess { rejected, message: message.to_owned() };
        tracing::warn!(error = %failure, "collector rejected points");
        Some(failure.into_drain_error(rejected))
    }
}

/// The OTLP retry classification, plus one fact of the transport: a status
/// with a source was made on this side by the HTTP/2 transport (a reset
/// connection, a collector killed mid-request), not sent by the collector.
/// tonic reports those as UNKNOWN, which the spec table calls permanent, but
/// the request may simply not have arrived, so they are retried like
/// UNAVAILABLE. A TLS certificate failure is the exception: retrying cannot fix it.
fn classify_attempt(status: &Status) -> RetryDecision {
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

/// Whether a rustls certificate error is anywhere in the status's source chain.
fn certificate_failure(status: &Status) -> bool {
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(err) = cause {
        let inner = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn Error);
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<tokio_rustls::rustls::Error>() {
                return matches!(
                    tls,
                    tokio_rustls::rustls::Error::InvalidCertificate(_)
                        | tokio_rustls::rustls::Error::AlertReceived(_)
                        | tokio_rustls::rustls::Error::NoCertificatesPresented
                );
            }
        }
        cause = err.source();
    }
    false
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
                self.0.flush_durable()
            }

            fn close(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                self.0.close()
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
