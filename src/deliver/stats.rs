//! What a delivery engine counts, and who may count a request's outcome.
//! Every item handed to the engine is counted exactly once, as acknowledged,
//! rejected or failed, by whoever settles its request first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::outage::{Outage, OutageTracker};

/// The counters of one delivery engine, shared with its
/// [`DeliveryStatsHandle`] and its requests' tasks. Items are metric data
/// points, spans or log records.
#[derive(Debug)]
pub(crate) struct DeliveryCounters {
    pub(crate) requests: AtomicU64,
    pub(crate) items_sent: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) unfinished: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    /// The collector's current outage, as every request to it saw it.
    pub(crate) outage: OutageTracker,
}

impl DeliveryCounters {
    pub(crate) fn new(endpoint: String) -> Self {
        let zero = || AtomicU64::new(0);
        Self {
            requests: zero(),
            items_sent: zero(),
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

    /// Counts `items` as failed because the engine gave up on them unfinished.
    pub(crate) fn abandon(&self, items: u64) {
        self.failed.fetch_add(items, Ordering::Relaxed);
        self.unfinished.fetch_add(items, Ordering::Relaxed);
    }
}

/// A snapshot of a drain's counters ([`MetricsDrain::stats`](crate::MetricsDrain::stats),
/// [`TracesDrain::stats`](crate::TracesDrain::stats), [`LogsDrain::stats`](crate::LogsDrain::stats)).
/// Items are metric data points, spans or log records, according to the signal.
///
/// Every item handed to the drain ends in exactly one of `acked`, `rejected`
/// and `failed`. So once no request is in flight (after a flush, or once the
/// drain is closed or dropped), `acked + rejected + failed` equals the items
/// the drain was given: behind a [`BackgroundSink`](crate::BackgroundSink),
/// its [`SinkStats::written`](crate::sink::SinkStats::written). With the sink's
/// counters this makes the whole account of a pipeline, exact after shutdown:
///
/// ```text
/// sink.pushed == sink.dropped + sink.abandoned + export.acked + export.rejected + export.failed
/// ```
///
/// (`sink.abandoned` is zero unless a shutdown deadline aborted the sink.)
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryStats {
    /// Export requests made (each counted once, however many attempts it took).
    pub requests: u64,
    /// Items in those requests.
    pub items_sent: u64,
    /// Items the collector acknowledged.
    pub acked: u64,
    /// Items refused for good: by the collector's partial success, or by the
    /// encoder (too large to send, inconsistent). Never retried.
    pub rejected: u64,
    /// Attempts after the first, over all requests.
    pub retries: u64,
    /// Items in requests that failed for good (permanent status, or retries
    /// exhausted), and items the drain still held, unsent or unanswered,
    /// when it was dropped (a sink aborted at its shutdown deadline). An item
    /// counted here may still have reached the collector: the answer, not the
    /// request, was lost.
    pub failed: u64,
    /// Of `failed`, the items the drain still held, unsent or unanswered,
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
pub struct DeliveryStatsHandle(pub(crate) Arc<DeliveryCounters>);

impl DeliveryStatsHandle {
    /// A snapshot of the counters.
    pub fn snapshot(&self) -> DeliveryStats {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DeliveryStats {
            requests: get(&c.requests),
            items_sent: get(&c.items_sent),
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

/// The right to count one request's outcome. Two parties may try: the
/// request's task, when the collector answers or the task gives up (or is
/// dropped), and the drain, when it is dropped with the request unfinished.
/// Whoever claims the ticket first counts the items and lowers `in_flight`;
/// the other counts nothing, so each item is counted exactly once.
pub(crate) struct Ticket {
    /// Items in the request.
    pub(crate) items: u64,
    /// The caller holds the items durably (the spool): a request abandoned
    /// or out of retry budget is not counted as failed, they stay the
    /// caller's to send again.
    pub(crate) held: bool,
    settled: AtomicBool,
    pub(crate) counters: Arc<DeliveryCounters>,
}

impl Ticket {
    /// A ticket for a request of `items`, counted in flight from now, whose
    /// items the caller may hold (`held`): see the field.
    pub(crate) fn new(items: u64, held: bool, counters: &Arc<DeliveryCounters>) -> Self {
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Self { items, held, settled: AtomicBool::new(false), counters: Arc::clone(counters) }
    }

    /// Takes the right to count this request's items. `false` if it was
    /// already taken.
    pub(crate) fn claim(&self) -> bool {
        if self.settled.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        true
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }
}
