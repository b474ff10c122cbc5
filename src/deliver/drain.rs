//! [`DeliveryDrain`]: the engine behind every OTLP drain, written once for
//! every signal and every transport.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;

use super::error::ExportError;
use super::request::{Outcome, Request};
use super::service::Service;
use super::stats::{DeliveryCounters, DeliveryStatsHandle, Ticket};
use super::transport::Transport;
use crate::config::RetryPolicy;
use crate::otlp::{encode, EncodeError};
use crate::sink::{DrainError, DrainErrorKind, SinkDrain, Unreported};

/// How a [`DeliveryDrain`] cuts, paces and retries its requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliverySettings {
    pub(crate) max_request_bytes: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) attempt_timeout: Duration,
}

/// Sends one signal's items to a collector over transport `T`.
///
/// - Each batch is encoded into requests of at most `max_request_bytes`, so
///   a collection of any size is delivered; an item too large to fit any
///   request is counted as rejected and reported, its neighbours are sent.
/// - Up to `max_in_flight` requests are outstanding at once, each a task of
///   its own. `write_batch` returns once its requests are on their way; it
///   waits only when every slot is taken.
/// - Each request is retried per the OTLP specification, as the transport
///   classifies its failures, within the [`RetryPolicy`]'s budget, each
///   attempt bounded by the per-attempt timeout.
/// - [`flush_durable`](SinkDrain::flush_durable) waits until every request
///   made so far has finished (acknowledged, partially rejected, or failed
///   for good) and reports the first failure since the previous call. So a
///   sink flush that returns `Ok` means the collector acknowledged
///   everything before it.
///
/// `write_batch` itself never fails: every failure surfaces through
/// `flush_durable`, with exact counts in [`DeliveryStats`](super::DeliveryStats).
pub(crate) struct DeliveryDrain<S: Service, T> {
    transport: T,
    settings: DeliverySettings,
    in_flight: JoinSet<Option<DrainError>>,
    /// The tickets of the requests in `in_flight` (and of some that already
    /// settled; pruned as requests are made).
    tickets: Vec<Arc<Ticket>>,
    /// Items of the batch being written that are in no request yet. Not zero
    /// only while `write_batch` runs, or after its future was dropped mid-way.
    unsent: u64,
    counters: Arc<DeliveryCounters>,
    /// The first failure not yet reported by `flush_durable`.
    unreported: Unreported,
    signal: PhantomData<fn(S)>,
}

impl<S: Service, T> fmt::Debug for DeliveryDrain<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryDrain")
            .field("path", &S::GRPC_METHOD)
            .field("settings", &self.settings)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<S: Service, T: Transport> DeliveryDrain<S, T> {
    /// An engine sending through `transport`.
    pub(crate) fn new(transport: T, settings: DeliverySettings) -> Self {
        let counters = Arc::new(DeliveryCounters::new(transport.endpoint()));
        let settings = DeliverySettings { max_in_flight: settings.max_in_flight.max(1), ..settings };
        Self {
            transport,
            settings,
            in_flight: JoinSet::new(),
            tickets: Vec::new(),
            unsent: 0,
            counters,
            unreported: Unreported::default(),
            signal: PhantomData,
        }
    }

    /// Counts one request of `items` items and `bytes` bytes as sent, then
    /// in flight (its ticket, whose items the caller may hold: see
    /// [`Ticket::new`]), keeps the ticket for `flush_durable`, and
    /// makes the request task's state. Every request of the engine starts
    /// here, encoded by it or not.
    fn open_request(&mut self, items: u64, bytes: usize, held: bool) -> Request<T> {
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.items_sent.fetch_add(items, Ordering::Relaxed);
        c.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let ticket = Arc::new(Ticket::new(items, held, c));
        self.tickets.retain(|ticket| !ticket.is_settled());
        self.tickets.push(Arc::clone(&ticket));
        Request {
            transport: self.transport.clone(),
            retry: self.settings.retry,
            attempt_timeout: self.settings.attempt_timeout,
            ticket,
        }
    }

    /// A handle that reads this engine's counters from anywhere.
    pub(crate) fn stats(&self) -> DeliveryStatsHandle {
        DeliveryStatsHandle(Arc::clone(&self.counters))
    }

    /// Sends one already-encoded request of `items` items through the same
    /// window, retry loop and counters as [`SinkDrain::write_batch`], and
    /// calls `done` with its final [`Outcome`] once it has one. Waits only
    /// for a free slot in the window.
    ///
    /// `held` says that the caller keeps the items durably (the spool): a
    /// request whose retryable failures outlast the retry budget ends
    /// [`Outcome::Kept`] instead of counting them as failed, and a request
    /// abandoned when the engine drops is not counted at all. Its failures
    /// are the caller's to report: `flush_durable` does not.
    ///
    /// `done` is not called when the request's task is aborted (the engine
    /// dropped): the caller then knows nothing of those items' fate.
    pub(crate) async fn send_encoded(
        &mut self,
        body: Bytes,
        items: u64,
        held: bool,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) {
        while self.in_flight.len() >= self.settings.max_in_flight {
            if let Some(joined) = self.in_flight.join_next().await {
                self.settle(joined);
            }
        }
        let request = self.open_request(items, body.len(), held);
        self.in_flight.spawn(async move {
            done(request.deliver::<S>(body).await);
            None
        });
    }
}

impl<S: Service, T> DeliveryDrain<S, T> {
    fn record(&mut self, failure: Option<DrainError>) {
        if let Some(failure) = failure {
            self.unreported.record(failure);
        }
    }

    /// Takes in the result of one finished request.
    fn settle(&mut self, joined: Result<Option<DrainError>, tokio::task::JoinError>) {
        match joined {
            Ok(failure) => self.record(failure),
            // A request task panicked or was aborted: its items' fate is
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

    /// Counts `items` the engine held but will never deliver as failed.
    fn lose(&mut self, items: u64) {
        if items > 0 {
            self.counters.abandon(items);
            tracing::warn!(items, "gave up on items not delivered yet (a shutdown deadline passed)");
        }
    }
}

impl<S: Service, T> Drop for DeliveryDrain<S, T> {
    /// An engine dropped with work unfinished (the sink aborted at its
    /// shutdown deadline) counts those items as failed here, at once, so the
    /// counters are final as soon as it is gone. The request tasks are
    /// aborted when the `JoinSet` drops, right after; a task that settles
    /// first keeps its own outcome, through its ticket.
    fn drop(&mut self) {
        // A held ticket is claimed (so that its task counts nothing) but not
        // counted: its items stay with the caller that holds them.
        let unanswered: u64 =
            self.tickets.iter().filter(|ticket| ticket.claim() && !ticket.held).map(|ticket| ticket.items).sum();
        let unsent = std::mem::take(&mut self.unsent);
        self.lose(unanswered + unsent);
    }
}

impl<S: Service, T: Transport, P: Into<S::Point> + Send + 'static> SinkDrain<P> for DeliveryDrain<S, T> {
    async fn write_batch(&mut self, batch: Vec<P>) -> Result<(), DrainError> {
        // A previous call dropped mid-way (its caller timed out) left items
        // that no request carries: they are lost.
        let stale = std::mem::take(&mut self.unsent);
        self.lose(stale);
        let encoded = encode::<S>(batch, self.settings.max_request_bytes);
        self.unsent = encoded.requests.iter().map(|request| request.points as u64).sum();
        if !encoded.rejected.is_empty() {
            self.counters.rejected.fetch_add(encoded.rejected.len() as u64, Ordering::Relaxed);
            for err in &encoded.rejected {
                tracing::warn!(error = %err, "item not sent");
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
            while self.in_flight.len() >= self.settings.max_in_flight {
                if let Some(joined) = self.in_flight.join_next().await {
                    self.settle(joined);
                }
            }
            let body = request.body;
            let items = request.points as u64;
            let request = self.open_request(items, body.len(), false);
            self.in_flight.spawn(request.run::<S>(Bytes::from(body)));
            self.unsent -= items;
            // Let the request start now: on a runtime of one worker the new
            // task would otherwise wait until this batch's other requests are
            // encoded and the actor has run out of work, while the collector
            // sits idle. (Measured: the first request of a 50 000-point flush
            // left 3 to 4 ms after it was made.)
            tokio::task::yield_now().await;
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
