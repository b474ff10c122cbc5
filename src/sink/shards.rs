//! The sink's queue cut into shards: one [`Ring`] per shard, each producer
//! thread pushing into one of them, the one consumer taking from all.
//!
//! With one ring, every claim is a compare-and-swap on the one `tail`, whose
//! cache line moves between the cores of the producers taking turns on it.
//! With shards, producers on different shards never touch each other's
//! tail. A thread takes an index on its first push (a process-wide count:
//! the `i`-th thread to push gets `i`) and always pushes into shard
//! `index % shards`: one thread, one shard, so each thread's messages stay
//! in the order it pushed them, whatever core it runs on. (A shard per core
//! would not keep that order: a thread that moves to another core between
//! two pushes would put them in two shards, and the consumer could take the
//! second first.)
//!
//! The consumer visits the shards in turn, at most [`QUANTUM`] messages from
//! one before the next, so that a shard with a steady stream cannot starve
//! the others (whose producers would find their shard full). A flush barrier
//! is pushed into every shard (`Message::Barrier` counts its copies) and
//! answered when the consumer has taken its last copy: every shard has then
//! been taken up to the barrier, so everything pushed before the flush in
//! any shard has been taken.
//!
//! The capacity is split between the shards; each is bounded on its own,
//! so the queue as a whole never holds more than its capacity, and a push
//! into a full shard is refused (and counted) even when another shard has
//! room.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::ring::{Consumer, Pop, Ring, RingState, TooLarge};
use super::QueueMemory;

/// How many messages the consumer takes from one shard before it looks at
/// the next one.
const QUANTUM: u32 = 32;

thread_local! {
    /// This thread's index (see the module docs), `usize::MAX` until its
    /// first push.
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The next index a thread takes.
static NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's index: taken on its first call, the same ever after.
#[inline]
fn thread_index() -> usize {
    THREAD_INDEX.with(|index| {
        let known = index.get();
        if known != usize::MAX {
            return known;
        }
        let taken = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed);
        index.set(taken);
        taken
    })
}

/// The producers' side: the shards, shared in an [`Arc`].
pub(crate) struct Shards<T> {
    rings: Box<[Arc<Ring<T>>]>,
    /// `rings.len() - 1` when that is a power of two, so that picking a
    /// shard is a mask; `usize::MAX` otherwise (a division).
    mask: usize,
}

impl<T> Shards<T> {
    /// `shards` rings sharing `capacity` slots (the first `capacity % shards`
    /// one slot more than the others), and the consumer of them all.
    pub(crate) fn with_capacity(
        capacity: usize,
        shards: usize,
        memory: QueueMemory,
    ) -> Result<(Arc<Self>, ShardsConsumer<T>), TooLarge> {
        if shards == 0 || shards > capacity {
            return Err(TooLarge);
        }
        let mut rings = Vec::with_capacity(shards);
        let mut consumers = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (ring, consumer) =
                Ring::with_capacity(capacity / shards + usize::from(shard < capacity % shards), memory)?;
            rings.push(ring);
            consumers.push(consumer);
        }
        let mask = if shards.is_power_of_two() { shards - 1 } else { usize::MAX };
        let consumer = ShardsConsumer { consumers: consumers.into_boxed_slice(), next: 0, left: QUANTUM };
        Ok((Arc::new(Self { rings: rings.into_boxed_slice(), mask }), consumer))
    }

    /// How many shards there are.
    pub(crate) fn len(&self) -> usize {
        self.rings.len()
    }

    /// Shard 0.
    pub(crate) fn first(&self) -> &Arc<Ring<T>> {
        &self.rings[0]
    }

    /// The shard of this index (below [`len`](Self::len)).
    #[inline]
    pub(crate) fn shard(&self, index: usize) -> &Ring<T> {
        &self.rings[index]
    }

    /// The index of the calling thread's shard. With one shard, no
    /// thread-local is read.
    #[inline]
    pub(crate) fn mine(&self) -> usize {
        match self.mask {
            0 => 0,
            usize::MAX => thread_index() % self.rings.len(),
            mask => thread_index() & mask,
        }
    }

    /// The slots of all shards.
    pub(crate) fn capacity(&self) -> usize {
        self.rings.iter().map(|ring| ring.capacity()).sum()
    }
}

impl<T> Shards<T> {
    /// Positions claimed so far in all shards: every message ever accepted.
    pub(crate) fn claimed(&self) -> u64 {
        self.rings.iter().map(|ring| ring.claimed()).sum()
    }

    /// Closes the shards in order: the first decides who closed the queue,
    /// the last says that it is closed (see [`is_closed`](Self::is_closed)).
    pub(crate) fn close(&self) -> bool {
        let first = self.rings[0].close();
        for ring in &self.rings[1..] {
            ring.close();
        }
        first
    }

    /// Whether every shard is closed: the last one is closed last.
    pub(crate) fn is_closed(&self) -> bool {
        self.rings[self.rings.len() - 1].is_closed()
    }
}

impl<T: Send> RingState for Shards<T> {
    fn claimed(&self) -> u64 {
        Shards::claimed(self)
    }

    fn close(&self) -> bool {
        Shards::close(self)
    }

    fn is_closed(&self) -> bool {
        Shards::is_closed(self)
    }
}

impl<T> fmt::Debug for Shards<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rings.iter()).finish()
    }
}

/// The one consumer of every shard. Dropping it drops each shard's
/// [`Consumer`], which closes that shard and drops what is left in it.
pub(crate) struct ShardsConsumer<T> {
    consumers: Box<[Consumer<T>]>,
    /// The shard to look at first.
    next: usize,
    /// How many more messages `next` may give before the next shard's turn.
    left: u32,
}

impl<T> ShardsConsumer<T> {
    /// Takes the next message of some shard: the current one's until its
    /// quantum is spent, then the next shard's that has one. [`Pop::Busy`]
    /// when no shard has a message and some producer is writing one;
    /// [`Pop::Empty`] when no shard has a message claimed.
    pub(crate) fn pop(&mut self) -> Pop<T> {
        let shards = self.consumers.len();
        let mut busy = false;
        for step in 0..shards {
            let shard = if self.next + step < shards { self.next + step } else { self.next + step - shards };
            match self.consumers[shard].pop() {
                Pop::Item(value) => {
                    if step > 0 {
                        self.next = shard;
                        self.left = QUANTUM;
                    }
                    self.left -= 1;
                    if self.left == 0 {
                        self.next = if shard + 1 < shards { shard + 1 } else { 0 };
                        self.left = QUANTUM;
                    }
                    return Pop::Item(value);
                }
                Pop::Busy => busy = true,
                Pop::Empty => {}
            }
        }
        if busy {
            Pop::Busy
        } else {
            Pop::Empty
        }
    }

    /// How many shards there are.
    pub(crate) fn len(&self) -> usize {
        self.consumers.len()
    }

    /// The consumer of one shard.
    pub(crate) fn shard(&self, index: usize) -> &Consumer<T> {
        &self.consumers[index]
    }
}

impl<T> fmt::Debug for ShardsConsumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardsConsumer").field("shards", &self.consumers).field("next", &self.next).finish()
    }
}

// Plain threads and std atomics: under `--cfg otlp_sink_loom` only loom's tests run.
#[cfg(all(test, not(otlp_sink_loom)))]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::sink::ring::Refused;

    fn shards<T>(capacity: usize, shards: usize) -> (Arc<Shards<T>>, ShardsConsumer<T>) {
        Shards::with_capacity(capacity, shards, QueueMemory::Lazy).expect("allocated")
    }

    #[test]
    fn the_capacity_is_split_exactly_and_each_shard_is_bounded_on_its_own() {
        let (queue, mut consumer) = shards::<u64>(10, 3);
        let capacities: Vec<usize> = (0..3).map(|k| queue.shard(k).capacity()).collect();
        assert_eq!(capacities, [4, 3, 3]);
        assert_eq!(queue.capacity(), 10);
        for (k, &capacity) in capacities.iter().enumerate() {
            for i in 0..capacity as u64 {
                queue.shard(k).try_push(k as u64 * 100 + i).unwrap();
            }
            assert_eq!(queue.shard(k).try_push(999), Err(Refused::Full(999)), "shard {k} is full at its share");
        }
        assert_eq!(queue.claimed(), 10);
        let mut taken = Vec::new();
        while let Pop::Item(value) = consumer.pop() {
            taken.push(value);
        }
        assert_eq!(taken.len(), 10);
        for k in 0..3u64 {
            let mine: Vec<u64> = taken.iter().copied().filter(|v| v / 100 == k).collect();
            assert_eq!(mine, (0..capacities[k as usize] as u64).map(|i| k * 100 + i).collect::<Vec<_>>());
        }
    }

    #[test]
    fn too_many_shards_are_refused() {
        assert!(Shards::<u8>::with_capacity(2, 3, QueueMemory::Lazy).is_err());
        assert!(Shards::<u8>::with_capacity(2, 0, QueueMemory::Lazy).is_err());
    }

    #[test]
    fn a_thread_keeps_its_shard_and_consecutive_threads_take_consecutive_shards() {
        let (queue, _consumer) = shards::<u64>(64, 4);
        let (odd, _c) = shards::<u64>(64, 3);
        let here = queue.mine();
        assert_eq!(queue.mine(), here, "the same thread, the same shard");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(thread_index).join().unwrap();
            let b = s.spawn(thread_index).join().unwrap();
            (a, b)
        });
        assert!(b > a, "indices are taken in order: {a} then {b}");
        assert_eq!(odd.mine(), thread_index() % 3);
        assert_eq!(queue.mine(), thread_index() % 4);
    }

    #[test]
    fn the_consumer_takes_turns_so_a_busy_shard_cannot_starve_the_others() {
        let (queue, mut consumer) = shards::<u64>(400, 2);
        for i in 0..200 {
            queue.shard(0).try_push(i).unwrap();
        }
        queue.shard(1).try_push(1000).unwrap();
        let mut position = None;
        for n in 0..201 {
            if let Pop::Item(1000) = consumer.pop() {
                position = Some(n);
            }
        }
        assert_eq!(position, Some(QUANTUM as usize), "shard 1's message came after one quantum of shard 0's");
        assert_eq!(consumer.pop(), Pop::Empty);
    }

    #[test]
    fn busy_is_reported_only_when_no_shard_has_a_message() {
        let (queue, mut consumer) = shards::<u64>(4, 2);
        let claim = queue.shard(0).claim().expect("room");
        assert_eq!(consumer.pop(), Pop::Busy);
        queue.shard(1).try_push(7).unwrap();
        assert_eq!(consumer.pop(), Pop::Item(7), "a producer mid-write holds up its own shard only");
        assert_eq!(consumer.pop(), Pop::Busy);
        claim.write(6);
        assert_eq!(consumer.pop(), Pop::Item(6));
        assert_eq!(consumer.pop(), Pop::Empty);
    }

    #[test]
    fn close_refuses_every_shard_and_is_won_once() {
        let (queue, mut consumer) = shards::<u64>(4, 2);
        queue.shard(1).try_push(1).unwrap();
        assert!(queue.close());
        assert!(!queue.close());
        assert!(queue.is_closed());
        for k in 0..2 {
            assert_eq!(queue.shard(k).try_push(9), Err(Refused::Closed(9)));
        }
        assert_eq!(consumer.pop(), Pop::Item(1));
        assert_eq!(consumer.pop(), Pop::Empty);
    }

    #[test]
    fn concurrent_producers_on_their_own_shards_lose_nothing_and_keep_their_order() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 50_000;
        let (queue, mut consumer) = shards::<(u64, u64)>(64, 4);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let queue = Arc::clone(&queue);
                std::thread::spawn(move || {
                    let shard = queue.mine();
                    for i in 0..EACH {
                        let mut value = (p, i);
                        loop {
                            match queue.shard(shard).try_push(value) {
                                Ok(_) => break,
                                Err(Refused::Full(v)) => {
                                    value = v;
                                    std::thread::yield_now();
                                }
                                Err(Refused::Closed(_)) => panic!("never closed"),
                            }
                        }
                    }
                })
            })
            .collect();
        let mut last = vec![None::<u64>; PRODUCERS as usize];
        let mut seen = HashSet::new();
        while seen.len() < (PRODUCERS * EACH) as usize {
            match consumer.pop() {
                Pop::Item((p, i)) => {
                    assert!(last[p as usize].is_none_or(|prev| prev < i), "producer {p}: {i} after {last:?}");
                    last[p as usize] = Some(i);
                    assert!(seen.insert((p, i)), "({p}, {i}) taken twice");
                }
                Pop::Busy | Pop::Empty => std::thread::yield_now(),
            }
        }
        for producer in producers {
            producer.join().unwrap();
        }
        assert_eq!(consumer.pop(), Pop::Empty);
        assert_eq!(queue.claimed(), PRODUCERS * EACH);
    }
}
