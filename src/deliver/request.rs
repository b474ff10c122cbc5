//! One request's delivery: attempts, retries within the budget, and the
//! count of its outcome. Run as a task of its own, so that it progresses
//! while the sink's actor is busy elsewhere.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message as _;
use tokio::time::Instant;

use super::error::ExportError;
use super::service::Service;
use super::stats::Ticket;
use super::transport::{Failure, Transport};
use crate::config::RetryPolicy;
use crate::sink::DrainError;

/// The final outcome of one request, for a caller that settles each
/// request itself ([`DeliveryDrain::send_encoded`](super::DeliveryDrain::send_encoded)).
/// Every variant but `Kept` and `Uncounted` is in the engine's counters.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The collector acknowledged every item (counted in `acked`).
    Acked,
    /// The collector acknowledged the request but refused `rejected` of its
    /// items (counted in `rejected`, the rest in `acked`).
    Rejected {
        /// The collector's partial success, as a drain error (with the
        /// count of items refused).
        error: DrainError,
    },
    /// Failed for good: a status that must not be retried, TLS, an
    /// undecodable answer (counted in `failed`).
    Failed(DrainError),
    /// A held request whose retryable failures outlasted the retry budget:
    /// counted nowhere, its items are the caller's to send again.
    Kept(DrainError),
    /// The engine was dropped meanwhile: the ticket's other party counted
    /// (or, for a held request, left) its items.
    Uncounted,
}

impl Outcome {
    /// The failure to report, for a caller that does not settle requests.
    pub(crate) fn into_failure(self) -> Option<DrainError> {
        match self {
            Outcome::Acked | Outcome::Uncounted => None,
            Outcome::Rejected { error, .. } | Outcome::Failed(error) | Outcome::Kept(error) => Some(error),
        }
    }
}

pub(crate) struct Request<T> {
    pub(crate) transport: T,
    pub(crate) retry: RetryPolicy,
    /// The per-attempt timeout.
    pub(crate) attempt_timeout: Duration,
    pub(crate) ticket: Arc<Ticket>,
}

impl<T> Drop for Request<T> {
    /// A task dropped before it settled (aborted, or its runtime shut down)
    /// counts its items as failed, unless the engine already did, or the
    /// caller holds them (a held ticket: they stay the caller's).
    fn drop(&mut self) {
        if self.ticket.claim() && !self.ticket.held {
            self.ticket.counters.abandon(self.ticket.items);
        }
    }
}

impl<T: Transport> Request<T> {
    /// Delivers `body`; `Some` failure when its items are not all delivered.
    pub(crate) async fn run<S: Service>(self, body: Bytes) -> Option<DrainError> {
        self.deliver::<S>(body).await.into_failure()
    }

    /// Delivers `body` and says how it ended.
    pub(crate) async fn deliver<S: Service>(mut self, body: Bytes) -> Outcome {
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            // The retry budget bounds the whole delivery, the retries'
            // attempts included: none waits past it. (The first attempt has
            // its full per-attempt timeout, so a budget of zero still sends.)
            let timeout = match attempts {
                1 => self.attempt_timeout,
                _ => self.attempt_timeout.min(self.retry.max_elapsed().saturating_sub(started.elapsed())),
            };
            let failure = match self.transport.send::<S>(body.clone(), timeout).await {
                Ok(response) => {
                    self.ticket.counters.outage.succeeded();
                    return self.answered::<S>(response);
                }
                Err(failure) => failure,
            };
            let outage = &self.ticket.counters.outage;
            let failure = match failure {
                Failure::Tls(error) => ExportError::Tls { error, attempts },
                Failure::Status { status, decision } => {
                    match decision.delay(&self.retry, attempts - 1, rand::random::<f64>()) {
                        None => ExportError::Refused { status, attempts },
                        Some(delay) if self.retry.allows_retry(started.elapsed(), delay) => {
                            outage.failed(&Failure::Status { status, decision }, Some(delay));
                            self.ticket.counters.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        Some(_) => ExportError::RetriesExhausted { status, attempts, elapsed: started.elapsed() },
                    }
                }
            };
            return self.failed(failure);
        }
    }

    /// Counts the request as failed for good; a held one's retryable
    /// failure is left to its caller, uncounted.
    fn failed(&mut self, failure: ExportError) -> Outcome {
        self.ticket.counters.outage.failed(&failure, None);
        let items = self.ticket.items;
        if !self.ticket.claim() {
            // The engine was dropped meanwhile and counted these already.
            return Outcome::Uncounted;
        }
        if self.ticket.held && matches!(failure, ExportError::RetriesExhausted { .. }) {
            tracing::warn!(error = %failure, items, "export not delivered within the retry budget; kept for a later attempt");
            return Outcome::Kept(failure.into_drain_error(items));
        }
        tracing::warn!(error = %failure, items, "export failed");
        self.ticket.counters.failed.fetch_add(items, Ordering::Relaxed);
        Outcome::Failed(failure.into_drain_error(items))
    }

    fn answered<S: Service>(&mut self, body: Bytes) -> Outcome {
        let response = match S::Response::decode(body) {
            Ok(response) => response,
            Err(e) => return self.failed(ExportError::UndecodableResponse { reason: e.to_string() }),
        };
        if !self.ticket.claim() {
            // The engine was dropped meanwhile and counted these as failed:
            // it gave up on them before the answer came.
            return Outcome::Uncounted;
        }
        let (items, counters) = (self.ticket.items, &self.ticket.counters);
        let (rejected, message) = S::partial_success(&response);
        let rejected = u64::try_from(rejected).unwrap_or(0).min(items);
        counters.acked.fetch_add(items - rejected, Ordering::Relaxed);
        if rejected == 0 {
            if !message.is_empty() {
                tracing::warn!(message, "collector accepted the request with a warning");
            }
            return Outcome::Acked;
        }
        counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        let failure = ExportError::PartialSuccess { rejected, message: message.to_owned() };
        tracing::warn!(error = %failure, "collector rejected items");
        Outcome::Rejected { error: failure.into_drain_error(rejected) }
    }
}
