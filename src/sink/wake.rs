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
/// sleeps; reset by the producer that wakes it, or by the actor. A sharded
/// queue has one per shard (positions are a shard's own), each on a cache
/// line of its own: the actor's stores to one do not cost the producers of
/// another a miss.
#[repr(align(128))]
pub(crate) struct WakeAt(AtomicU64);

impl WakeAt {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(AWAKE))
    }

    /// The position shard `k`'s push must reach to wake the actor, given
    /// the shard's `head` (messages taken from it so far) and `capacity`,
    /// and what it gave the batch in the making (`taken_here` of its
    /// `batched` messages).
    ///
    /// With nothing batched: the shard's next message (any shard's next
    /// message wakes the actor). With a batch in the making, of which
    /// `rest = batch_size - batched` messages are missing, each shard gets
    /// a share: 1, plus the part of `rest - 1` in proportion to what it gave
    /// the batch so far (rounded down). The shares of all shards then add
    /// up to at most `rest + shards - 1`, so once `rest` messages have been
    /// pushed, however they fall in the shards, some shard has reached its
    /// share and its push woke the actor: a full batch is never left
    /// asleep. A share never exceeds the shard's capacity, so that a shard
    /// fills only with the actor awake. With one shard, the share is `rest`:
    /// the push that completes the batch.
    pub(crate) fn position_in_shard(
        head: u64,
        batched: usize,
        batch_size: usize,
        taken_here: u64,
        capacity: usize,
    ) -> u64 {
        if batched == 0 {
            return head;
        }
        let rest = (batch_size - batched) as u64;
        let share = 1 + rest.saturating_sub(1) * taken_here.min(batched as u64) / batched as u64;
        head + share.min(capacity as u64) - 1
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
        // SeqCst: pairs with `announce_all` (see the module docs).
        position >= self.0.load(Ordering::SeqCst) && self.0.swap(AWAKE, Ordering::SeqCst) != AWAKE
    }

    /// The actor's side, with nothing to take from the queue: asks to be
    /// woken by the push at `wake_at(k)` in any shard `k` (one `WakeAt`
    /// each, `wakes[k]`; one in all for an unsharded queue). `claimed(k)`
    /// reads shard `k`'s tail (the positions claimed so far, `SeqCst`);
    /// `stop` tells whether the actor has another reason not to sleep.
    /// Returns whether it may sleep now; when it may not, nothing is left
    /// announced.
    ///
    /// Each shard is Dekker's pattern on its own (this store
    /// of `wakes[k]`, then this load of shard `k`'s tail, against a
    /// producer's claim in shard `k`, then its load of `wakes[k]`), so every
    /// shard is announced before any is re-checked, and the re-check visits
    /// every shard: a push in a shard not re-checked could find its
    /// `wake_at` set too late and the actor asleep.
    pub(crate) fn announce_all(
        wakes: &[WakeAt],
        wake_at: impl Fn(usize) -> u64,
        claimed: impl Fn(usize) -> u64,
        stop: impl FnOnce() -> bool,
    ) -> bool {
        // Not worth announcing when a push it waits for is already in:
        // every store to `wake_at` costs each producer a cache miss.
        if (0..wakes.len()).any(|k| claimed(k) > wake_at(k)) {
            return false;
        }
        // SeqCst, with the producers' claim and their load of `wake_at`:
        // either this load sees a claim at `wake_at` or later, or that
        // producer sees `wake_at` and wakes the actor.
        for (k, wake) in wakes.iter().enumerate() {
            wake.set(wake_at(k));
        }
        seq_cst_order();
        if (0..wakes.len()).any(|k| claimed(k) > wake_at(k)) || stop() {
            Self::withdraw_all(wakes);
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

    /// [`withdraw`](Self::withdraw) of every shard's announcement.
    #[inline]
    pub(crate) fn withdraw_all(wakes: &[WakeAt]) {
        for wake in wakes {
            wake.withdraw();
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

#[cfg(all(test, not(otlp_sink_loom)))]
mod tests {
    use super::*;

    #[test]
    fn one_shard_waits_for_the_next_message_or_the_one_completing_the_batch() {
        assert_eq!(WakeAt::position_in_shard(10, 0, 256, 0, 10_000), 10);
        // 6 batched of 256: the push at 10 + 250 - 1 completes the batch.
        assert_eq!(WakeAt::position_in_shard(10, 6, 256, 6, 10_000), 259);
        assert_eq!(WakeAt::position_in_shard(10, 255, 256, 255, 10_000), 10);
    }

    #[test]
    fn shards_share_the_rest_of_the_batch_by_what_they_gave_it() {
        // 100 batched of 256, 75 of them from this shard: 1 + 3/4 of 155.
        assert_eq!(WakeAt::position_in_shard(0, 100, 256, 75, 10_000), 1 + 116 - 1);
        // A shard that gave one message of 100 wakes the actor at its next push.
        assert_eq!(WakeAt::position_in_shard(5, 100, 256, 1, 10_000), 5 + 2 - 1);
        assert_eq!(WakeAt::position_in_shard(5, 100, 256, 0, 10_000), 5);
        // Never past the shard's last slot.
        assert_eq!(WakeAt::position_in_shard(5, 1, 256, 1, 40), 5 + 40 - 1);
    }

    /// The property the actor's sleep relies on: once the batch's missing
    /// messages are pushed, in whatever shards, one push reached its shard's
    /// share. Every split of a batch among up to 4 shards, every way the
    /// missing messages can fall.
    #[test]
    fn the_missing_messages_always_reach_some_shards_share() {
        let batch_size = 9usize;
        for shards in 1..=4usize {
            for batched in 1..batch_size {
                // Every split of `batched` among the shards (taken_here per shard).
                let mut split = vec![0u64; shards];
                loop {
                    if split.iter().sum::<u64>() == batched as u64 {
                        let shares: Vec<u64> = split
                            .iter()
                            .map(|&here| WakeAt::position_in_shard(0, batched, batch_size, here, 100) + 1)
                            .collect();
                        let rest = (batch_size - batched) as u64;
                        let most_without_waking: u64 = shares.iter().map(|s| s - 1).sum();
                        assert!(
                            most_without_waking < rest,
                            "shards {shards}, split {split:?}: shares {shares:?} let {rest} pushes sleep"
                        );
                    }
                    // Next split (odometer).
                    let mut i = 0;
                    while i < shards && split[i] == batched as u64 {
                        split[i] = 0;
                        i += 1;
                    }
                    if i == shards {
                        break;
                    }
                    split[i] += 1;
                }
            }
        }
    }
}
