//! The ring and the wake-up protocol under the loom model checker: each test
//! runs its threads through every interleaving (and every value a load may
//! return under the memory model), up to `LOOM_MAX_PREEMPTIONS` preemptions
//! when that is set. loom's `UnsafeCell` fails a test on any slot access not
//! ordered after the other thread's last one.
//!
//! Run (see also `scripts/test.sh` and the README's "Model checking"):
//!
//! ```sh
//! LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg otlp_sink_loom" \
//!     cargo test --release --lib --no-default-features --target-dir target/loom sink::loom_tests
//! ```
//!
//! Each test also counts, across all the interleavings it ran, that the one
//! it is named for did happen (a producer seen mid-write, a refused claim):
//! a model that never reaches it would pass for nothing.

use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering as StdOrdering};
use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{mpsc, Notify};
use loom::thread;

use super::ring::{Consumer, Pop, Refused, Ring};
use super::shards::{Shards, ShardsConsumer};
use super::wake::WakeAt;
use super::QueueMemory;

fn ring<T>(capacity: usize) -> (Arc<Ring<T>>, Consumer<T>) {
    Ring::with_capacity(capacity, QueueMemory::Lazy).expect("allocated")
}

/// Takes `n` messages, coming back while the head is empty or mid-write.
fn take<T>(consumer: &mut Consumer<T>, n: usize) -> Vec<T> {
    let mut taken = Vec::with_capacity(n);
    while taken.len() < n {
        match consumer.pop() {
            Pop::Item(value) => taken.push(value),
            Pop::Empty | Pop::Busy => thread::yield_now(),
        }
    }
    taken
}

/// A flag set by some interleaving of a model, read once the model is done.
struct Seen(StdAtomicBool);

impl Seen {
    const fn new() -> Self {
        Self(StdAtomicBool::new(false))
    }

    fn set(&self) {
        self.0.store(true, StdOrdering::Relaxed);
    }

    fn get(&self) -> bool {
        self.0.load(StdOrdering::Relaxed)
    }
}

/// Two producers claim at once while the consumer takes: each gets its own
/// position, and the consumer takes each message once, in position order.
#[test]
fn loom_concurrent_claims_get_distinct_positions() {
    loom::model(|| {
        let (ring, mut consumer) = ring::<u64>(2);
        let producers: Vec<_> = [10, 20]
            .into_iter()
            .map(|value| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || (ring.try_push(value).expect("room for both"), value))
            })
            .collect();
        let taken = take(&mut consumer, 2);
        let mut pushed: Vec<(u64, u64)> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        pushed.sort_unstable();
        assert_eq!(pushed.iter().map(|&(position, _)| position).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(taken, pushed.iter().map(|&(_, value)| value).collect::<Vec<_>>());
        assert_eq!(consumer.pop(), Pop::Empty);
    });
}

/// Two producers race for the last free slot while the consumer frees
/// another: whatever is refused is refused as full, and what is accepted is
/// taken once.
#[test]
fn loom_concurrent_claims_race_for_the_last_slot() {
    static REFUSED: Seen = Seen::new();
    loom::model(|| {
        let (ring, mut consumer) = ring::<u64>(2);
        ring.try_push(0).unwrap();
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|value| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || match ring.try_push(value) {
                    Ok(_) => Some(value),
                    Err(Refused::Full(_)) => None,
                    Err(Refused::Closed(_)) => panic!("never closed"),
                })
            })
            .collect();
        let first = take(&mut consumer, 1);
        let accepted: Vec<u64> = producers.into_iter().filter_map(|p| p.join().unwrap()).collect();
        if accepted.len() < 2 {
            REFUSED.set();
        }
        assert!(!accepted.is_empty(), "one slot was free all along");
        let rest = take(&mut consumer, accepted.len());
        assert_eq!(first, [0]);
        let mut rest_sorted = rest.clone();
        rest_sorted.sort_unstable();
        let mut accepted_sorted = accepted;
        accepted_sorted.sort_unstable();
        assert_eq!(rest_sorted, accepted_sorted);
        assert_eq!(consumer.pop(), Pop::Empty);
    });
    assert!(REFUSED.get(), "no interleaving refused a claim");
}

/// A producer preempted between its claim and its write holds up the
/// consumer (which sees `Busy`, and never the later message first) but not
/// the producer behind it: that one claims and writes the next position
/// while the first still holds its claim (were it made to wait, loom would
/// report the deadlock).
#[test]
fn loom_preempted_producer_between_claim_and_write() {
    static BUSY: Seen = Seen::new();
    loom::model(|| {
        let (ring, mut consumer) = ring::<u64>(2);
        let (claimed_tx, claimed_rx) = mpsc::channel();
        let (second_done_tx, second_done_rx) = mpsc::channel();
        let first = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let claim = ring.claim().expect("room");
                claimed_tx.send(()).unwrap();
                // Preempted here until the producer behind it is done.
                second_done_rx.recv().unwrap();
                claim.write(1)
            })
        };
        let second = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                claimed_rx.recv().unwrap();
                let position = ring.try_push(2).expect("room");
                second_done_tx.send(()).unwrap();
                position
            })
        };
        let mut taken = Vec::new();
        while taken.len() < 2 {
            match consumer.pop() {
                Pop::Item(value) => taken.push(value),
                Pop::Busy => {
                    BUSY.set();
                    thread::yield_now();
                }
                Pop::Empty => thread::yield_now(),
            }
        }
        assert_eq!((first.join().unwrap(), second.join().unwrap()), (0, 1));
        assert_eq!(taken, [1, 2], "positions are taken in order");
    });
    assert!(BUSY.get(), "no interleaving found the head claimed and not written");
}

/// One producer laps a ring of `capacity` slots while the consumer takes:
/// each slot is reused, and loom checks that a slot's next write is ordered
/// after the consumer's read of the previous lap (and that read after the
/// write before it).
fn wrap_around(capacity: usize, messages: u64, full: &'static Seen) {
    loom::model(move || {
        let (ring, mut consumer) = ring::<u64>(capacity);
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                for value in 0..messages {
                    let mut value = value;
                    loop {
                        match ring.try_push(value) {
                            Ok(_) => break,
                            Err(Refused::Full(back)) => {
                                full.set();
                                value = back;
                                thread::yield_now();
                            }
                            Err(Refused::Closed(_)) => panic!("never closed"),
                        }
                    }
                }
            })
        };
        let taken = take(&mut consumer, messages as usize);
        producer.join().unwrap();
        assert_eq!(taken, (0..messages).collect::<Vec<_>>());
        assert_eq!(ring.claimed(), messages);
        assert_eq!(consumer.pop(), Pop::Empty);
    });
}

/// Capacity 1: every push reuses the one slot, three laps.
#[test]
fn loom_wrap_around_one_slot_three_laps() {
    static FULL: Seen = Seen::new();
    wrap_around(1, 3, &FULL);
    assert!(FULL.get(), "the producer never found the ring full");
}

/// Capacity 2 (one lap is 4 encoded positions, 2 of them unused): two laps.
#[test]
fn loom_wrap_around_two_slots_two_laps() {
    static FULL: Seen = Seen::new();
    wrap_around(2, 4, &FULL);
    assert!(FULL.get(), "the producer never found the ring full");
}

/// Two producers claim while the ring is closed: each push is accepted or
/// refused as closed, never lost, and the consumer takes exactly the
/// accepted ones (waiting out a producer still writing one), then finds
/// the ring empty for good.
#[test]
fn loom_close_races_claims() {
    static OUTCOMES: [Seen; 3] = [Seen::new(), Seen::new(), Seen::new()];
    loom::model(|| {
        let (ring, mut consumer) = ring::<u64>(2);
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|value| {
                let ring = Arc::clone(&ring);
                thread::spawn(move || match ring.try_push(value) {
                    Ok(_) => Some(value),
                    Err(Refused::Closed(back)) => {
                        assert_eq!(back, value, "the refused message is handed back");
                        None
                    }
                    Err(Refused::Full(_)) => panic!("room for both"),
                })
            })
            .collect();
        assert!(ring.close(), "the first close says so");
        let mut taken = Vec::new();
        loop {
            match consumer.pop() {
                Pop::Item(value) => taken.push(value),
                Pop::Busy => thread::yield_now(),
                Pop::Empty => break,
            }
        }
        let mut accepted: Vec<u64> = producers.into_iter().filter_map(|p| p.join().unwrap()).collect();
        OUTCOMES[accepted.len()].set();
        accepted.sort_unstable();
        taken.sort_unstable();
        assert_eq!(taken, accepted, "taken after the close: exactly what was accepted");
        assert_eq!(ring.claimed(), accepted.len() as u64);
        assert_eq!(consumer.pop(), Pop::Empty);
        assert!(matches!(ring.try_push(3), Err(Refused::Closed(3))));
    });
    for (accepted, seen) in OUTCOMES.iter().enumerate() {
        assert!(seen.get(), "no interleaving accepted {accepted} of the 2 pushes");
    }
}

/// Two threads close at once: exactly one of them is told it closed it.
#[test]
fn loom_close_is_won_once() {
    loom::model(|| {
        let (ring, _consumer) = ring::<u64>(1);
        let other = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.close())
        };
        let here = ring.close();
        assert!(here ^ other.join().unwrap());
        assert!(ring.is_closed());
    });
}

/// Counts its drops, to tell a message dropped twice or never.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The consumer takes one message and is dropped while two producers push:
/// its drop closes the ring and drops what is left, waiting out a producer
/// mid-write; every message is dropped exactly once, by the consumer's
/// drop, by whoever took it, or by the producer it was refused to.
#[test]
fn loom_consumer_drop_with_messages_left() {
    static LEFT: Seen = Seen::new();
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (ring, mut consumer) = ring::<Tracked>(2);
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (ring, drops) = (Arc::clone(&ring), Arc::clone(&drops));
                thread::spawn(move || ring.try_push(Tracked(drops)).is_ok())
            })
            .collect();
        let consumer = thread::spawn(move || {
            let took = matches!(consumer.pop(), Pop::Item(_));
            drop(consumer);
            took
        });
        let took = consumer.join().unwrap();
        let accepted = producers.into_iter().map(|p| p.join().unwrap()).filter(|&ok| ok).count();
        if accepted > usize::from(took) {
            LEFT.set();
        }
        assert_eq!(drops.load(Ordering::Relaxed), 2, "each message dropped once");
        assert!(ring.is_closed());
        assert_eq!(ring.claimed(), accepted as u64);
    });
    assert!(LEFT.get(), "no interleaving left a message for the drop");
}

/// The actor's loop, cut to its queue and its wake-up: take what is there,
/// batching `batch_size` at a time; with nothing there, announce in every
/// shard the position to be woken at (`WakeAt::position_in_shard`, from
/// what each shard gave the batch so far, as `Actor::sleep` does) and sleep
/// on `woken` (the loom stand-in for the actor's tokio `Notify`; it may also
/// wake spuriously, which the real actor's timer and shutdown branches do
/// too). Returns after `total` messages, or never: a lost wake-up is a
/// deadlock, which loom reports.
fn actor(
    mut consumer: ShardsConsumer<u64>,
    wakes: &[WakeAt],
    woken: &Notify,
    total: usize,
    batch_size: usize,
) -> Vec<u64> {
    let mut taken = Vec::new();
    let mut batched = 0;
    let mut heads_at_write = vec![0; consumer.len()];
    while taken.len() < total {
        match consumer.pop() {
            Pop::Item(value) => {
                taken.push(value);
                batched += 1;
                if batched == batch_size {
                    // The batch is written.
                    batched = 0;
                    for (k, head) in heads_at_write.iter_mut().enumerate() {
                        *head = consumer.shard(k).head();
                    }
                }
            }
            Pop::Busy => thread::yield_now(),
            Pop::Empty => {
                let wake_at = |k: usize| {
                    let shard = consumer.shard(k);
                    let head = shard.head();
                    let capacity = shard.ring().capacity();
                    WakeAt::position_in_shard(head, batched, batch_size, head - heads_at_write[k], capacity)
                };
                let claimed = |k: usize| consumer.shard(k).ring().claimed();
                if WakeAt::announce_all(wakes, wake_at, claimed, || false) {
                    woken.wait();
                    WakeAt::withdraw_all(wakes);
                }
            }
        }
    }
    taken
}

/// A producer's push as `BackgroundSink::try_push` makes it: claim, write,
/// then wake the actor if it asked for this position of this shard.
fn push_and_wake(queue: &Shards<u64>, shard: usize, wakes: &[WakeAt], woken: &Notify, value: u64) {
    let position = queue.shard(shard).try_push(value).expect("room");
    if wakes[shard].reached(position) {
        woken.notify();
    }
}

/// Runs `pushes` (one producer thread each, its values in order; producer
/// `i` into shard `i % shards`) against the actor waiting for all of them,
/// `batch_size` at a time.
fn wake_model(pushes: &'static [&'static [u64]], batch_size: usize, shards: usize) {
    loom::model(move || {
        let total = pushes.iter().map(|p| p.len()).sum::<usize>();
        // Room for every message in every shard.
        let (queue, consumer) =
            Shards::<u64>::with_capacity(total * shards, shards, QueueMemory::Lazy).expect("allocated");
        let wakes: Arc<[WakeAt]> = (0..shards).map(|_| WakeAt::new()).collect();
        let woken = Arc::new(Notify::new());
        let producers: Vec<_> = pushes
            .iter()
            .enumerate()
            .map(|(i, values)| {
                let (queue, wakes, woken) = (Arc::clone(&queue), Arc::clone(&wakes), Arc::clone(&woken));
                thread::spawn(move || {
                    for &value in *values {
                        push_and_wake(&queue, i % shards, &wakes, &woken, value);
                    }
                })
            })
            .collect();
        let mut taken = actor(consumer, &wakes, &woken, total, batch_size);
        for producer in producers {
            producer.join().unwrap();
        }
        taken.sort_unstable();
        let mut expected: Vec<u64> = pushes.iter().flat_map(|p| p.iter().copied()).collect();
        expected.sort_unstable();
        assert_eq!(taken, expected);
    });
}

/// Nothing batched: the actor sleeps until the next push, racing two
/// producers; none of their wake-ups is lost.
#[test]
fn loom_wake_for_the_next_message_is_never_lost() {
    wake_model(&[&[1], &[2]], 1, 1);
}

/// A batch of 3 in the making: with one message batched, the actor sleeps
/// until the push that completes the batch (two positions on), not the
/// next one; the producer of that push wakes it.
#[test]
fn loom_wake_for_the_batch_completing_message_is_never_lost() {
    wake_model(&[&[1, 2], &[3]], 3, 1);
}

/// Two shards, one producer on each: the actor announces in both and
/// re-checks both, and the push in either shard wakes it.
#[test]
fn loom_sharded_wake_for_the_next_message_is_never_lost() {
    wake_model(&[&[1], &[2]], 1, 2);
}

/// Two shards and a batch of 3: with a message batched from one shard, the
/// rest of the batch is shared between the shards (2 for the one that gave
/// it, 1 for the other); whichever push reaches its shard's share wakes the
/// actor, and the batch is never left asleep once complete.
#[test]
fn loom_sharded_wake_for_the_batch_completing_message_is_never_lost() {
    wake_model(&[&[1, 2], &[3]], 3, 2);
}

/// Two producers, each on its own shard, push while the queue is closed:
/// each push is accepted or refused as closed, and the consumer of both
/// shards takes exactly the accepted ones, waiting out a producer still
/// writing one (a shard mid-write is `Busy`, never `Empty`, even when the
/// other shard is empty), then finds the queue empty for good.
#[test]
fn loom_sharded_close_races_claims() {
    static BUSY: Seen = Seen::new();
    loom::model(|| {
        let (queue, mut consumer) = Shards::<u64>::with_capacity(2, 2, QueueMemory::Lazy).expect("allocated");
        let producers: Vec<_> = [0, 1]
            .into_iter()
            .map(|shard| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || match queue.shard(shard).try_push(shard as u64 + 1) {
                    Ok(_) => Some(shard as u64 + 1),
                    Err(Refused::Closed(_)) => None,
                    Err(Refused::Full(_)) => panic!("room for both"),
                })
            })
            .collect();
        assert!(queue.close(), "the first close says so");
        let mut taken = Vec::new();
        loop {
            match consumer.pop() {
                Pop::Item(value) => taken.push(value),
                Pop::Busy => {
                    BUSY.set();
                    thread::yield_now();
                }
                Pop::Empty => break,
            }
        }
        let mut accepted: Vec<u64> = producers.into_iter().filter_map(|p| p.join().unwrap()).collect();
        accepted.sort_unstable();
        taken.sort_unstable();
        assert_eq!(taken, accepted, "taken after the close: exactly what was accepted");
        assert_eq!(queue.claimed(), accepted.len() as u64);
        assert!(queue.is_closed());
        assert_eq!(consumer.pop(), Pop::Empty);
    });
    assert!(BUSY.get(), "no interleaving found a shard claimed and not written");
}
