//! The actor's wake-up protocol: the actor sleeps with the queue position
//! whose push must wake it, and the producer that pushes it wakes it.
//!
//! The two sides are Dekker's pattern: the actor stores `wake_at`, then
//! loads the ring's tail (`claimed`); a producer claims a position (its
//! compare-and-swap on the tail), then loads `wake_at`. All four are
//! `SeqCst`, so at least one side sees the other: either the actor sees the
//! claim and does not sleep, or the producer sees `wake_at` and wakes it.
//! Only the atomics live here: the actor's sleep itself (a tokio `Notify`,
//! a `select!`) is the caller's, so `loom_tests.rs` checks this code with
//! a loom `Notify` in its place.

use std::sync::atomic::Ordering;

// loom's under `--cfg otlp_sink_loom` (see `loom.rs`).
use super::loom::{seq_cst_order, AtomicU64};

/// `wake_at` while the actor is awake: no push is at or past it.
const AWAKE: u64 = u64::MAX;

/// The first queue position (a count of messages claimed before it) whose
/// push wakes the actor, or [`AWAKE`]. Set only by the actor, before it
/// sleeps; reset by the producer that wakes it, or by the actor.
pub(crate) struct WakeAt(AtomicU64);

impl WakeAt {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(AWAKE))
    }

    /// The position the actor waits for: the next message when nothing is
    /// batched (`batched == 0`), otherwise the one that completes the batch.
    pub(crate) fn position(head: u64, batched: usize, batch_size: usize) -> u64 {
        if batched == 0 {
            head
        } else {
            head + (batch_size - batched) as u64 - 1
        }
    }

    /// The producer's side, called once it has written the message at
    /// `position` (a count: [`Claim::write`](super::ring::Claim::write)'s
    /// return value). Whether this producer must wake the actor: the actor
    /// asked to be woken by this push or an earlier one, and no other
    /// producer took the wake-up first (so one sleep costs one wake-up).
    ///
    /// It is read on every push, but changes only when the actor goes to
    /// sleep, so the load is nearly free.
    #[inline]
    pub(crate) fn reached(&self, position: u64) -> bool {
        seq_cst_order();
        // SeqCst: pairs with `announce` (see the module docs).
        position >= self.0.load(Ordering::SeqCst) && self.0.swap(AWAKE, Ordering::SeqCst) != AWAKE
    }

    /// The actor's side, with nothing to take from the queue: asks to be
    /// woken by the push at `wake_at`. `claimed` reads the ring's tail (the
    /// positions claimed so far, `SeqCst`); `stop` tells whether the actor
    /// has another reason not to sleep. Returns whether it may sleep now;
    /// when it may not, nothing is left announced.
    #[inline]
    pub(crate) fn announce(&self, wake_at: u64, claimed: impl Fn() -> u64, stop: impl FnOnce() -> bool) -> bool {
        // Not worth announcing when the push it waits for is already in:
        // every store to `wake_at` costs each producer a cache miss.
        if claimed() > wake_at {
            return false;
        }
        // SeqCst, with the producers' claim and their load of `wake_at`:
        // either this load sees a claim at `wake_at` or later, or that
        // producer sees `wake_at` and wakes the actor.
        self.set(wake_at);
        seq_cst_order();
        if claimed() > wake_at || stop() {
            self.set(AWAKE);
            return false;
        }
        true
    }

    /// The actor's side, once it is awake again: withdraws the announcement
    /// (the producer that woke it has already reset it).
    #[inline]
    pub(crate) fn withdraw(&self) {
        if self.0.load(Ordering::Relaxed) != AWAKE {
            self.set(AWAKE);
        }
    }

    /// The actor's `SeqCst` store, made a swap: on x86-64 the very same
    /// instruction (a `SeqCst` store is an `xchg` there), and what lets loom
    /// model it right. A swap reads the value it replaces, so loom orders it
    /// after a producer's swap that came first; a plain store loom may order
    /// before that swap, and then report a producer that, past its fence,
    /// still reads the swap's `AWAKE` instead of this announcement: a lost
    /// wake-up that the memory model rules out.
    #[inline]
    fn set(&self, value: u64) {
        self.0.swap(value, Ordering::SeqCst);
    }
}
