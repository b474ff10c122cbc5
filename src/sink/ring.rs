//! The sink's queue: a bounded ring of preallocated slots, for many
//! producers and one consumer.
//!
//! A producer claims a position with one compare-and-swap on `tail`, moves
//! its message into the slot, and publishes it through the slot's stamp.
//! Producers never wait on each other: one preempted between its claim and
//! its write holds up only the consumer, which sees [`Pop::Busy`] at that
//! position and comes back later, not the producers behind it (which claim
//! the next positions). The consumer takes positions in order and frees each
//! slot through its stamp again.
//!
//! `tail` and `head` hold positions encoded as `lap * one_lap + index`,
//! where `index` is the slot (below `capacity`) and `one_lap` the smallest
//! power of two above `capacity`. The next position after `index` is
//! `index + 1` in the same lap, or index 0 of the next lap: no division on
//! any path. Encoded positions only grow, so they compare like the count
//! of messages they stand for ([`Ring::count`] turns one into that count).
//! A slot's stamp says what the slot holds, for the encoded position `e`
//! whose lap part (`e` less its index) is `lap`:
//! - `lap`: free for `e`;
//! - `lap + 1`: holds the message of `e`;
//! - `lap + one_lap`: read, so free for the same slot one lap later.
//!
//! A stamp is stored relative to its slot's index (as `e - index`, not `e`),
//! so that a slot of zero bytes is a valid one: free in lap 0. Encoded
//! positions stay below the [`CLOSED`] bit for at least 2^62 messages
//! (capacity is at most 2^40), far more than a process pushes.
//!
//! # Memory
//!
//! Because all-zero slots are valid, the slots need no writing when the
//! ring is made ([`QueueMemory::Lazy`], the default): from 64 KiB up they
//! are a fresh anonymous `mmap` on Unix (below that, or elsewhere,
//! `alloc_zeroed`), whose pages the kernel commits only when a push first
//! writes them. A sink at rest holds almost none of its queue: an
//! `OtlpExporter` of three signals at the defaults and the three SDK
//! providers idle at 6.9 MB of VmRSS, against 21.4 MB with every queue
//! resident and 6.7 MB for the official stack (`cargo run --release -p
//! vs-official -- --only 6 --rounds 3`, "RSS at rest"). The price is a
//! first-touch page fault, one every `4096 / size_of::<Slot<T>>()` pushes
//! (one per 11 spans) of the queue's first lap only: a span push in that lap
//! costs 168 ns against 21 ns on resident pages (`cargo bench --bench
//! try_push -- first_lap`, A/B rounds), and more while the consumer runs
//! beside it. After one lap every page is resident and stays so: a push in
//! the second lap costs what it costs on a resident queue (0.99x).
//!
//! [`QueueMemory::Resident`] writes a byte of every page of the ring when it
//! is made instead, so no push ever takes that fault (with lazily committed
//! slots, a large queue's first lap cost producers more than a microsecond
//! a push in `benches/span_processor.rs`), and the whole queue is resident
//! from the start: `capacity * size_of::<Slot<T>>()` bytes.
//!
//! [`QueueMemory::Lazy`]: crate::sink::QueueMemory::Lazy
//! [`QueueMemory::Resident`]: crate::sink::QueueMemory::Resident
//!
//! The top bit of `tail` closes the ring: once it is set, no position can be
//! claimed, and the consumer takes what was claimed before.

use std::alloc::{self, Layout};
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;

// loom's under `--cfg otlp_sink_loom` (see `loom.rs`).
use super::loom::{spin_loop, yield_now, AtomicU64, UnsafeCell};
use super::QueueMemory;

/// Set in `tail` when the ring is closed.
const CLOSED: u64 = 1 << 63;

/// An atomic on a cache line of its own: producers hammering `tail` must
/// not slow the consumer's `head`, and the other way round.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// One message's place in the ring. All zero bytes make a valid slot, free
/// in lap 0 (outside loom, whose atomics are more than their value): the
/// lazy allocation relies on it.
struct Slot<T> {
    /// What the slot holds, relative to its index (see the module docs).
    stamp: AtomicU64,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded multi-producer, single-consumer ring. Producers share it in an
/// [`Arc`]; the one [`Consumer`] is the only way to take from it.
///
/// It needs no `Drop` of its own: the consumer holds a handle on it, so the
/// ring outlives the consumer, whose drop closes it and takes every message
/// left (see [`Consumer`]).
pub(crate) struct Ring<T> {
    slots: Slots<T>,
    capacity: u64,
    /// The smallest power of two above `capacity`: the encoded distance
    /// between a slot's positions in two laps.
    one_lap: u64,
    /// `log2(one_lap)`.
    lap_shift: u32,
    /// The next position to claim, with [`CLOSED`].
    tail: Padded,
    /// The next position to take. Written by the consumer only.
    head: Padded,
}

// SAFETY: a message moves from the producer that claimed its position to the
// consumer, never shared: the stamps hand each slot over with
// release/acquire, so only one thread touches a slot's value at a time.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; `&Ring` gives access only through the claim protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

/// Why [`Ring::try_push`] handed the value back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<T> {
    /// Every slot holds a message not yet taken.
    Full(T),
    /// The ring was closed.
    Closed(T),
}

impl<T> Refused<T> {
    pub(crate) fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Closed(value) => value,
        }
    }
}

/// Why [`Ring::claim`] found no position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// Every slot holds a message not yet taken.
    Full,
    /// The ring was closed.
    Closed,
}

/// A position claimed by [`Ring::claim`]: the caller owns its slot until
/// [`write`](Self::write) publishes it. It must be written at once, with
/// nothing that can fail in between: the consumer takes positions in order
/// and waits at one claimed and never written.
#[must_use = "a claimed position must be written, or the consumer waits at it for ever"]
pub(crate) struct Claim<'a, T> {
    ring: &'a Ring<T>,
    slot: &'a Slot<T>,
    /// The encoded position.
    position: u64,
    /// Its lap part: `position` less the slot's index.
    lap: u64,
}

impl<T> Claim<'_, T> {
    /// Moves `value` into the claimed slot and publishes it; returns how
    /// many messages were claimed before it.
    #[inline]
    pub(crate) fn write(self, value: T) -> u64 {
        // SAFETY: the claim made this thread the slot's only writer, and the
        // stamp the claim acquired says the consumer is done with the
        // slot's previous message.
        self.slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
        self.slot.stamp.store(self.lap + 1, Ordering::Release);
        // The next push writes the next slot, which a large queue has not
        // touched for a whole lap: asking for its first cache line now
        // takes part of that miss off the next push (the README's "The
        // sink's own hot path" has the measurement).
        #[cfg(target_arch = "x86_64")]
        {
            let next = self.ring.slot(self.ring.next(self.position));
            // SAFETY: a prefetch is a hint: it reads nothing the program sees.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    std::ptr::from_ref(next).cast::<i8>(),
                )
            };
        }
        self.ring.count(self.position)
    }
}

/// What [`Consumer::pop`] found at the head.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pop<T> {
    /// The next message.
    Item(T),
    /// Nothing claimed.
    Empty,
    /// A producer claimed the head position and has not written it yet.
    Busy,
}

/// The allocation the capacity asks for is impossible.
#[derive(Debug)]
pub(crate) struct TooLarge;

/// What a sink that does not know the message type needs of its ring.
pub(crate) trait RingState: Send + Sync {
    /// Positions claimed so far: every message ever accepted.
    fn claimed(&self) -> u64;
    /// Refuses every later claim. Returns whether this call closed it.
    fn close(&self) -> bool;
    /// Whether the ring is closed.
    fn is_closed(&self) -> bool;
}

impl<T> Ring<T> {
    /// A ring of `capacity` slots and the consumer that goes with it, its
    /// memory committed as `memory` says.
    pub(crate) fn with_capacity(capacity: usize, memory: QueueMemory) -> Result<(Arc<Self>, Consumer<T>), TooLarge> {
        if capacity == 0 || capacity as u64 > 1 << 40 {
            return Err(TooLarge);
        }
        let slots = Slots::zeroed(capacity)?;
        if memory == QueueMemory::Resident {
            // SAFETY: the slots' memory, which nothing else uses yet.
            unsafe { touch_every_page(slots.ptr.as_ptr().cast::<u8>(), slots.bytes()) };
        }
        let capacity = capacity as u64;
        let one_lap = (capacity + 1).next_power_of_two();
        let ring = Arc::new(Self {
            slots,
            capacity,
            one_lap,
            lap_shift: one_lap.trailing_zeros(),
            tail: Padded::default(),
            head: Padded::default(),
        });
        let consumer = Consumer { ring: Arc::clone(&ring) };
        Ok((ring, consumer))
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// The slot of an encoded position.
    #[inline]
    fn slot(&self, position: u64) -> &Slot<T> {
        &self.slots[(position & (self.one_lap - 1)) as usize]
    }

    /// The lap part of an encoded position: the position less its index.
    #[inline]
    fn lap(&self, position: u64) -> u64 {
        position & !(self.one_lap - 1)
    }

    /// The encoded position after `position`.
    #[inline]
    fn next(&self, position: u64) -> u64 {
        if (position & (self.one_lap - 1)) + 1 < self.capacity {
            position + 1
        } else {
            (position & !(self.one_lap - 1)) + self.one_lap
        }
    }

    /// How many positions come before an encoded one: the count of messages
    /// claimed (for `tail`) or taken (for `head`).
    #[inline]
    pub(crate) fn count(&self, position: u64) -> u64 {
        (position >> self.lap_shift) * self.capacity + (position & (self.one_lap - 1))
    }

    /// Claims the next position and moves `value` into it; returns how many
    /// messages were claimed before it. Never waits for another thread.
    #[inline]
    pub(crate) fn try_push(&self, value: T) -> Result<u64, Refused<T>> {
        match self.claim() {
            Ok(claim) => Ok(claim.write(value)),
            Err(NoRoom::Full) => Err(Refused::Full(value)),
            Err(NoRoom::Closed) => Err(Refused::Closed(value)),
        }
    }

    /// Claims the next position, for the caller to [write](Claim::write) at
    /// once. Never waits for another thread.
    ///
    /// Claiming before the value is touched lets the value go from the
    /// caller's memory straight into the slot: with the value held across
    /// the claim loop (as a plain `push(value)` holds it), the compiler
    /// copies it to the stack first, one more copy of a 352-byte span.
    #[inline]
    pub(crate) fn claim(&self) -> Result<Claim<'_, T>, NoRoom> {
        let mut tail = self.tail.0.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(NoRoom::Closed);
            }
            let slot = self.slot(tail);
            let stamp = slot.stamp.load(Ordering::Acquire);
            let lap = self.lap(tail);
            if stamp == lap {
                // SeqCst: the sink's wake-up protocol pairs this claim with
                // the consumer's announcement that it is going to sleep
                // (see `wake.rs`).
                let next = self.next(tail);
                match self.tail.0.compare_exchange_weak(tail, next, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => return Ok(Claim { ring: self, slot, position: tail, lap }),
                    Err(now) => tail = now,
                }
            } else if stamp < lap {
                // The slot still belongs to the position one lap back, which
                // was claimed (it is below `tail`) and not yet taken: every
                // slot is in use.
                return Err(NoRoom::Full);
            } else {
                // Another producer took this position since `tail` was read.
                spin_loop();
                tail = self.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// How many messages are in the ring (claimed and not yet taken).
    #[cfg(all(test, not(otlp_sink_loom)))]
    pub(crate) fn len(&self) -> u64 {
        let head = self.count(self.head.0.load(Ordering::Acquire));
        self.claimed() - head
    }
}

impl<T> Ring<T> {
    /// Positions claimed so far: every message ever accepted.
    pub(crate) fn claimed(&self) -> u64 {
        self.count(self.tail.0.load(Ordering::SeqCst) & !CLOSED)
    }

    /// Refuses every later claim. Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        self.tail.0.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED == 0
    }

    /// Whether the ring is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.0.load(Ordering::Acquire) & CLOSED != 0
    }
}

impl<T: Send> RingState for Ring<T> {
    fn claimed(&self) -> u64 {
        Ring::claimed(self)
    }

    fn close(&self) -> bool {
        Ring::close(self)
    }

    fn is_closed(&self) -> bool {
        Ring::is_closed(self)
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.tail.0.load(Ordering::Relaxed);
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("claimed", &self.count(tail & !CLOSED))
            .field("taken", &self.count(self.head.0.load(Ordering::Relaxed)))
            .field("closed", &(tail & CLOSED != 0))
            .finish()
    }
}

/// The one consumer of a [`Ring`]. Dropping it closes the ring and drops
/// every message still in it, so that nothing waits on a message (a flush
/// barrier) that nobody will ever take.
pub(crate) struct Consumer<T> {
    ring: Arc<Ring<T>>,
}

impl<T> Consumer<T> {
    /// Takes the message at the head, if it is there.
    pub(crate) fn pop(&mut self) -> Pop<T> {
        let ring = &*self.ring;
        let head = ring.head.0.load(Ordering::Relaxed);
        let slot = ring.slot(head);
        let lap = ring.lap(head);
        if slot.stamp.load(Ordering::Acquire) == lap + 1 {
            // SAFETY: the stamp (acquired) says the producer finished writing
            // this position, and only this consumer takes positions.
            let value = slot.value.with(|cell| unsafe { (*cell).assume_init_read() });
            slot.stamp.store(lap + ring.one_lap, Ordering::Release);
            ring.head.0.store(ring.next(head), Ordering::Release);
            return Pop::Item(value);
        }
        if ring.tail.0.load(Ordering::SeqCst) & !CLOSED == head {
            Pop::Empty
        } else {
            Pop::Busy
        }
    }

    /// How many messages were taken so far.
    pub(crate) fn head(&self) -> u64 {
        self.ring.count(self.ring.head.0.load(Ordering::Relaxed))
    }

    /// The ring this consumer takes from.
    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.ring.close();
        loop {
            match self.pop() {
                Pop::Item(message) => drop(message),
                Pop::Empty => return,
                // A producer between its claim and its write: it has no
                // reason to stop there, so it finishes soon.
                Pop::Busy => yield_now(),
            }
        }
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("ring", &self.ring).finish()
    }
}

/// The ring's slots: one zeroed allocation, whose pages the kernel commits
/// when they are first written (see the module docs, "Memory").
struct Slots<T> {
    ptr: NonNull<Slot<T>>,
    len: usize,
    /// Where the memory came from, to give it back there.
    source: Source,
}

enum Source {
    /// `alloc_zeroed`, with this layout.
    Heap(Layout),
    /// An anonymous `mmap` of this many bytes.
    #[cfg(all(unix, not(otlp_sink_loom)))]
    Mapped(usize),
}

impl<T> Slots<T> {
    /// From this size up, the slots are mapped straight from the kernel, not
    /// taken from the allocator. An allocator's `alloc_zeroed` of a large
    /// block is lazily committed only when the block is fresh from the
    /// kernel, which is up to its policy: glibc serves a block from the heap,
    /// and clears it there (committing every page), once a freed block of
    /// that size has raised its mmap threshold. A fresh anonymous mapping
    /// is always zero and always lazy.
    #[cfg(all(unix, not(otlp_sink_loom)))]
    const MAP_FROM: usize = 64 * 1024;

    /// `len` zeroed slots: all free in lap 0 (loom's own types are made
    /// here, loom's atomics being more than their value).
    fn zeroed(len: usize) -> Result<Self, TooLarge> {
        let layout = Layout::array::<Slot<T>>(len).map_err(|_| TooLarge)?;
        #[cfg(all(unix, not(otlp_sink_loom)))]
        if layout.size() >= Self::MAP_FROM && layout.align() <= 4096 {
            // SAFETY: a new private anonymous mapping, touching no memory of
            // the program's; the result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(TooLarge);
            }
            // Page-aligned, so aligned for a slot (`align <= 4096`).
            let ptr = NonNull::new(ptr.cast::<Slot<T>>()).ok_or(TooLarge)?;
            return Ok(Self { ptr, len, source: Source::Mapped(layout.size()) });
        }
        // SAFETY: the layout has a non-zero size (a slot holds at least its
        // stamp).
        let ptr = NonNull::new(unsafe { alloc::alloc_zeroed(layout) }.cast::<Slot<T>>()).ok_or(TooLarge)?;
        #[cfg(otlp_sink_loom)]
        for i in 0..len {
            // SAFETY: `i < len`, inside the allocation, which nothing else uses yet.
            unsafe {
                let slot = ptr.as_ptr().add(i);
                std::ptr::addr_of_mut!((*slot).stamp).write(AtomicU64::new(0));
                std::ptr::addr_of_mut!((*slot).value).write(UnsafeCell::new(MaybeUninit::uninit()));
            }
        }
        Ok(Self { ptr, len, source: Source::Heap(layout) })
    }

    /// The size of the slots' memory.
    fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<Slot<T>>()
    }
}

impl<T> std::ops::Deref for Slots<T> {
    type Target = [Slot<T>];

    fn deref(&self) -> &[Slot<T>] {
        // SAFETY: `len` valid slots from `ptr`: all-zero bytes are a valid
        // slot (std's types), or each was made (loom's), in `zeroed`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // SAFETY: the slots are valid (see `deref`) and dropped once; that
        // drops no message (a value is a `MaybeUninit`: the consumer takes
        // and drops every message), only loom's bookkeeping. Then the
        // memory goes back where `zeroed` got it.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len));
            match self.source {
                Source::Heap(layout) => alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout),
                #[cfg(all(unix, not(otlp_sink_loom)))]
                Source::Mapped(bytes) => {
                    libc::munmap(self.ptr.as_ptr().cast::<libc::c_void>(), bytes);
                }
            }
        }
    }
}

/// Writes one byte of every page of `len` bytes from `ptr`, so the kernel
/// commits them all now rather than on a producer's first push. The bytes
/// are zero already and stay so; the writes are volatile so that the
/// compiler cannot drop them as stores of what a zeroed allocation holds.
///
/// # Safety
///
/// `ptr` is valid for writes of `len` bytes, and nothing else uses them yet.
unsafe fn touch_every_page(ptr: *mut u8, len: usize) {
    // The smallest page size of the platforms Rust runs on: touching more
    // often than a page does no harm.
    const PAGE: usize = 4096;
    for offset in (0..len).step_by(PAGE) {
        // SAFETY: `offset < len`, per the caller's contract.
        unsafe { ptr.add(offset).write_volatile(0) };
    }
    if len > 0 {
        // SAFETY: as above; the last page may start past the last step.
        unsafe { ptr.add(len - 1).write_volatile(0) };
    }
}

// Plain threads and std atomics: under `--cfg otlp_sink_loom` only loom's tests run.
#[cfg(all(test, not(otlp_sink_loom)))]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn ring<T>(capacity: usize) -> (Arc<Ring<T>>, Consumer<T>) {
        Ring::with_capacity(capacity, QueueMemory::Lazy).expect("allocated")
    }

    #[test]
    fn fifo_full_and_reuse_for_every_small_capacity() {
        for capacity in 1..=9 {
            let (ring, mut consumer) = ring::<u64>(capacity);
            let mut next_in = 0;
            let mut next_out = 0;
            // Many laps, filling the ring each time, so every slot is reused.
            for _ in 0..5 {
                for _ in 0..capacity {
                    assert_eq!(ring.try_push(next_in), Ok(next_in), "capacity {capacity}");
                    next_in += 1;
                }
                assert_eq!(ring.try_push(999), Err(Refused::Full(999)), "capacity {capacity}");
                assert_eq!(ring.len(), capacity as u64);
                // Take some, push as many back, then drain.
                for _ in 0..capacity.div_ceil(2) {
                    assert_eq!(consumer.pop(), Pop::Item(next_out));
                    next_out += 1;
                }
                while ring.try_push(next_in).is_ok() {
                    next_in += 1;
                }
                loop {
                    match consumer.pop() {
                        Pop::Item(v) => {
                            assert_eq!(v, next_out);
                            next_out += 1;
                        }
                        Pop::Empty => break,
                        Pop::Busy => panic!("no producer is mid-write"),
                    }
                }
                assert_eq!(next_out, next_in);
                assert_eq!(ring.claimed(), next_in);
            }
        }
    }

    #[test]
    fn a_resident_ring_works_like_a_lazy_one() {
        let (ring, mut consumer) = Ring::<u64>::with_capacity(3, QueueMemory::Resident).expect("allocated");
        for lap in 0..4 {
            for i in 0..3 {
                assert_eq!(ring.try_push(lap * 3 + i), Ok(lap * 3 + i));
            }
            assert_eq!(ring.try_push(99), Err(Refused::Full(99)));
            for i in 0..3 {
                assert_eq!(consumer.pop(), Pop::Item(lap * 3 + i));
            }
            assert_eq!(consumer.pop(), Pop::Empty);
        }
    }

    /// VmRSS of this process, in bytes.
    #[cfg(target_os = "linux")]
    fn rss() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("a VmRSS line");
        kb * 1024
    }

    /// What the lazy default is for: a ring holds the memory its pushes
    /// reached, not its capacity; a resident one holds it all from the start.
    /// Large margins, since other tests of this process may allocate too.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lazy_ring_commits_only_the_pages_pushes_reach() {
        const MIB: u64 = 1 << 20;
        type Big = [u64; 63]; // a 512-byte slot with its stamp
        let capacity = 256 * 1024; // 128 MiB of slots
        let before = rss();
        let (ring, mut consumer) = Ring::<Big>::with_capacity(capacity, QueueMemory::Lazy).expect("allocated");
        for i in 0..1000u64 {
            ring.try_push([i; 63]).unwrap();
        }
        let lazy = rss().saturating_sub(before);
        assert!(lazy < 32 * MIB, "a lazy ring of 128 MiB with 1000 pushes holds {} MiB", lazy / MIB);
        assert_eq!(consumer.pop(), Pop::Item([0; 63]));
        drop((ring, consumer));

        let before = rss();
        let (ring, consumer) = Ring::<Big>::with_capacity(capacity, QueueMemory::Resident).expect("allocated");
        let resident = rss().saturating_sub(before);
        assert!(resident >= 120 * MIB, "a resident ring of 128 MiB holds only {} MiB", resident / MIB);
        drop((ring, consumer));
    }

    #[test]
    fn a_closed_ring_refuses_and_hands_the_value_back() {
        let (ring, mut consumer) = ring::<String>(4);
        ring.try_push("kept".to_string()).unwrap();
        assert!(ring.close());
        assert!(!ring.close(), "closing twice says so");
        assert!(ring.is_closed());
        assert_eq!(ring.try_push("late".to_string()), Err(Refused::Closed("late".to_string())));
        assert_eq!(consumer.pop(), Pop::Item("kept".to_string()), "what was claimed before is still taken");
        assert_eq!(consumer.pop(), Pop::Empty);
        assert_eq!(ring.claimed(), 1);
    }

    /// Counts drops, to check that no message is dropped twice or leaked.
    #[derive(Debug)]
    struct Tracked(Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn every_message_is_dropped_exactly_once_whoever_holds_it_last() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (ring, mut consumer) = ring::<Tracked>(3);
        for _ in 0..3 {
            ring.try_push(Tracked(Arc::clone(&drops))).unwrap();
        }
        drop(consumer.pop()); // taken and dropped by the caller: 1
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // The consumer's drop closes the ring and drops the other two.
        drop(consumer);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
        assert!(ring.is_closed());
        let refused = ring.try_push(Tracked(Arc::clone(&drops))).unwrap_err().into_inner();
        drop(refused);
        drop(ring);
        assert_eq!(drops.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_huge_capacity_is_refused_not_aborted_on() {
        assert!(Ring::<[u8; 1024]>::with_capacity(usize::MAX >> 4, QueueMemory::Lazy).is_err());
        assert!(Ring::<u8>::with_capacity(0, QueueMemory::Resident).is_err());
    }

    #[test]
    fn concurrent_producers_lose_nothing_and_keep_each_producers_order() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 50_000;
        let (ring, mut consumer) = ring::<(u64, u64)>(64);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = Arc::clone(&ring);
                std::thread::spawn(move || {
                    let mut full = 0u64;
                    for i in 0..EACH {
                        let mut value = (p, i);
                        loop {
                            match ring.try_push(value) {
                                Ok(_) => break,
                                Err(Refused::Full(v)) => {
                                    full += 1;
                                    value = v;
                                    std::thread::yield_now();
                                }
                                Err(Refused::Closed(_)) => panic!("never closed"),
                            }
                        }
                    }
                    full
                })
            })
            .collect();
        let mut last = vec![None::<u64>; PRODUCERS as usize];
        let mut seen = HashSet::new();
        let mut busy = 0u64;
        while seen.len() < (PRODUCERS * EACH) as usize {
            match consumer.pop() {
                Pop::Item((p, i)) => {
                    assert!(last[p as usize].is_none_or(|prev| prev < i), "producer {p}: {i} after {last:?}");
                    last[p as usize] = Some(i);
                    assert!(seen.insert((p, i)), "({p}, {i}) taken twice");
                }
                Pop::Busy => busy += 1,
                Pop::Empty => std::thread::yield_now(),
            }
        }
        let refused: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(consumer.pop(), Pop::Empty);
        assert_eq!(ring.claimed(), PRODUCERS * EACH);
        // Not asserted, but worth seeing when the test is run with --nocapture.
        println!("full refusals {refused}, busy heads {busy}");
    }
}
