//! Counters shared by a sink's producers, its actor and its readers.

use std::sync::atomic::{AtomicU64, Ordering};

/// An atomic counter on a cache line of its own, so producers bumping one
/// counter do not slow down the actor bumping another.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Counter(AtomicU64);

// Release on writes and Acquire on reads (free on x86, where every atomic
// read-modify-write is a full barrier and every load an acquire): a reader
// that sees a message leave one counter also sees it arrive in the next one,
// which `Counters::snapshot` relies on.
impl Counter {
    /// Adds `n`; returns the value before.
    pub(crate) fn add(&self, n: u64) -> u64 {
        self.0.fetch_add(n, Ordering::AcqRel)
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The live counters of one sink.
///
/// Producers bump no counter when a push succeeds: the queue's own count of
/// claimed positions counts it, so the hot path pays for one atomic
/// operation (the claim), not three. `pushed` and `pending` are derived:
///
/// - `pushed = claimed - barriers + dropped`
/// - `pending = claimed - barriers - written - abandoned`
///
/// so `pushed == dropped + written + pending + abandoned` by construction,
/// exact whenever no push is in progress (always after the actor has
/// finished). `abandoned` is raised only once the actor is gone, by what
/// `pending` still held.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dropped: Counter,
    /// Queue positions taken by flush barriers rather than messages.
    pub(crate) barriers: Counter,
    pub(crate) written: Counter,
    pub(crate) abandoned: Counter,
    pub(crate) write_errors: Counter,
    pub(crate) failed: Counter,
    pub(crate) flushes: Counter,
}

impl Counters {
    /// The counters, given the queue's count of `claimed` positions. Read
    /// while producers and the actor run, the counts can disagree by the
    /// messages in motion (`pending` saturates at zero rather than wrap);
    /// once nothing moves, and always after the actor has finished, they are
    /// exact.
    pub(crate) fn snapshot(&self, claimed: u64) -> SinkStats {
        let abandoned = self.abandoned.get();
        let written = self.written.get();
        let failed = self.failed.get();
        let write_errors = self.write_errors.get();
        let flushes = self.flushes.get();
        let dropped = self.dropped.get();
        // Raised just after its claim: at worst one claim behind `claimed`.
        let barriers = self.barriers.get().min(claimed);
        let accepted = claimed - barriers;
        let pending = accepted.saturating_sub(written + abandoned);
        SinkStats { pushed: accepted + dropped, dropped, pending, written, abandoned, write_errors, failed, flushes }
    }
}

/// A snapshot of a sink's counters, from [`BackgroundSink::stats`](crate::BackgroundSink::stats).
///
/// The counters are read one by one while producers and the actor run, so a
/// snapshot taken under load may be off by the messages in motion. Once the
/// actor has finished (or was aborted),
/// `pushed == dropped + written + pending + abandoned` holds exactly, with
/// `pending == 0`: every message offered was dropped for overflow, handed to
/// the drain (which accounts for it from then on), or abandoned by an aborted
/// shutdown. After a clean shutdown `abandoned` is zero too.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkStats {
    /// Messages offered and either queued or dropped for overflow. Refusals
    /// that hand the message back uncounted (`WouldBlock`, `Closed`) are not included.
    pub pushed: u64,
    /// Messages refused because the queue was full (`Overflow::Drop`).
    pub dropped: u64,
    /// Messages queued or batched but not yet handed to the drain.
    pub pending: u64,
    /// Messages handed to [`SinkDrain::write_batch`](crate::SinkDrain::write_batch),
    /// counted when the call is made, whatever it then returns.
    pub written: u64,
    /// Messages accepted but never handed to the drain because the actor was
    /// gone first: aborted at the deadline of
    /// [`shutdown_timeout`](crate::SinkHandle::shutdown_timeout), or failed
    /// (a drain panicked). They are lost, and counted here instead of in `pending`.
    pub abandoned: u64,
    /// Calls to `write_batch` that returned an error.
    pub write_errors: u64,
    /// Messages in the batches whose `write_batch` returned an error.
    pub failed: u64,
    /// Flush barriers the actor completed.
    pub flushes: u64,
}
