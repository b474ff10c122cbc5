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

pub(crate) struct Request<T> {
    pub(crate) transport: T,
    pub(crate) retry: RetryPolicy,
    /// The per-attempt timeout.
    pub(crate) attempt_timeout: Duration,
    pub(crate) ticket: Arc<Ticket>,
}

impl<T> Drop for Request<T> {
    /// A task dropped before it settled (aborted, or its runtime shut down)
    /// counts its items as failed, unless the engine already did.
    fn drop(&mut self) {
        if self.ticket.claim() {
            self.ticket.counters.abandon(self.ticket.items);
        }
    }
}

impl<T: Transport> Request<T> {
    /// Delivers `body`; `Some` failure when its items are not all delivered.
    pub(crate) async fn run<S: Service>(mut self, body: Bytes) -> Option<DrainError> {
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

    /// Counts the request as failed for good.
    fn failed(&mut self, failure: ExportError) -> Option<DrainError> {
        self.ticket.counters.outage.failed(&failure, None);
        let items = self.ticket.items;
        tracing::warn!(error = %failure, items, "export failed");
        if !self.ticket.claim() {
            // The engine was dropped meanwhile and counted these already.
            return None;
        }
        self.ticket.counters.failed.fetch_add(items, Ordering::Relaxed);
        Some(failure.into_drain_error(items))
    }

    fn answered<S: Service>(&mut self, body: Bytes) -> Option<DrainError> {
        let response = match S::Response::decode(body) {
            Ok(response) => response,
            Err(e) => return self.failed(ExportError::UndecodableResponse { reason: e.to_string() }),
        };
        if !self.ticket.claim() {
            // The engine was dropped meanwhile and counted these as failed:
            // it gave up on them before the answer came.
            return None;
        }
        let (items, counters) = (self.ticket.items, &self.ticket.counters);
        let (rejected, message) = S::partial_success(&response);
        let rejected = u64::try_from(rejected).unwrap_or(0).min(items);
        counters.acked.fetch_add(items - rejected, Ordering::Relaxed);
        if rejected == 0 {
            if !message.is_empty() {
                tracing::warn!(message, "collector accepted the request with a warning");
            }
            return None;
        }
        counters.rejected.fetch_add(rejected, Ordering::Relaxed);
        let failure = ExportError::PartialSuccess { rejected, message: message.to_owned() };
        tracing::warn!(error = %failure, "collector rejected items");
        Some(failure.into_drain_error(rejected))
    }
}
