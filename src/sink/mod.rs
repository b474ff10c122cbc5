//! The generic core: a bounded queue (one ring, or one ring per shard:
//! `shards.rs`), one actor task that batches, and a [`SinkDrain`] that
//! receives the batches. Nothing here knows about OTLP.

mod actor;
mod config;
mod drain;
mod error;
mod loom;
#[cfg(all(test, otlp_sink_loom))]
mod loom_tests;
mod ring;
mod shards;
mod stats;
mod wake;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use actor::{Actor, BarrierCopies, Message};
pub(crate) use ring::Refused;
use ring::{NoRoom, Ring, RingState};
use shards::Shards;
use stats::Counters;
use wake::WakeAt;

pub use config::{Overflow, QueueMemory, SinkConfig, SinkConfigError};
pub(crate) use drain::Unreported;
pub use drain::{DrainError, DrainErrorKind, SinkDrain};
pub use error::{FlushError, PushError, ShutdownError, TryPushError};
pub use stats::SinkStats;

/// The producer side of a bounded queue drained in batches by one background
/// actor task.
///
/// Clone it freely: every clone pushes into the same queue. Pushing never
/// waits on the drain: [`try_push`](Self::try_push) returns at once, and a
/// full queue is a counted, reported drop (or, under [`Overflow::Block`], a
/// refusal that sends the caller to [`push_blocking`](Self::push_blocking)).
///
/// [`flush`](Self::flush) is a barrier in FIFO order with the data: it returns
/// `Ok` only after every message accepted before it was written and the
/// drain's [`flush_durable`](SinkDrain::flush_durable) confirmed it.
///
/// The queue may be cut into shards
/// ([`SinkConfig::with_queue_shards`]), one per producer thread's index:
/// each thread's messages then stay in order, messages of different
/// threads in different shards have no order between them, and a flush
/// still covers everything accepted before it in every shard.
///
/// # Example
///
/// ```
/// use otlp_sink::{sink::DrainError, BackgroundSink, SinkConfig, SinkDrain};
/// use tokio_util::sync::CancellationToken;
///
/// struct Print;
///
/// impl SinkDrain<String> for Print {
///     async fn write_batch(&mut self, batch: Vec<String>) -> Result<(), DrainError> {
///         println!("{} lines", batch.len());
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (sink, handle) = BackgroundSink::spawn(Print, SinkConfig::default(), CancellationToken::new())?;
/// sink.try_push("hello".to_string())?;
/// sink.flush().await?;            // written and durable
/// assert_eq!(sink.stats().written, 1);
/// handle.shutdown().await?;       // drains the queue, closes the drain
/// # Ok(())
/// # }
/// ```
pub struct BackgroundSink<T> {
    ring: Arc<Shards<Message<T>>>,
    /// Shard 0, reached without going through `ring`: with one shard (the
    /// default), a push loads no more than it did before the queue had shards.
    first: Arc<Ring<Message<T>>>,
    shared: Arc<Shared>,
    /// Shared by every clone: its drop, with the last clone, tells the actor
    /// that nobody can push any more.
    _producers: Arc<Producers>,
}

/// What every clone of a sink, its handle and its actor share.
struct Shared {
    overflow: Overflow,
    counters: Counters,
    /// The queue, seen without its message type (the handle has none).
    ring: Arc<dyn RingState>,
    /// Wakes the actor: for a barrier, for a disconnection, and for a push
    /// at or past [`wake_at`](Self::wake_at).
    wake: Notify,
    /// Per shard of the queue, the first position whose push wakes the
    /// actor, set by the actor before it sleeps (`u64::MAX` while it is
    /// awake). Producers read their shard's on every push, but it changes
    /// only when the actor goes to sleep, so the read is nearly free; the
    /// wake-up (far dearer than a push) happens once per sleep: for the
    /// first message of a batch, then for the one that completes it.
    wake_at: Box<[WakeAt]>,
    /// Wakes producers waiting for queue space, after the actor takes messages.
    space: Notify,
    /// Every [`BackgroundSink`] clone is gone.
    disconnected: AtomicBool,
}

impl Shared {
    /// Called by a producer that has just queued a message at `position` of
    /// shard `shard`: wakes the actor if it asked to be woken by this push.
    #[inline]
    fn queued(&self, shard: usize, position: u64) {
        // The protocol is `WakeAt`'s (model-checked in `loom_tests.rs`).
        if self.wake_at[shard].reached(position) {
            self.wake.notify_one();
        }
    }

    /// Refuses every later push, and wakes producers waiting for space so
    /// that they learn it.
    fn close(&self) {
        self.ring.close();
        self.space.notify_waiters();
    }

    /// Moves what `pending` still counts to `abandoned`, once the actor is
    /// gone and nothing will ever write it. Returns how many that was.
    fn abandon_pending(&self) -> u64 {
        let lost = self.counters.snapshot(self.ring.claimed()).pending;
        self.counters.abandoned.add(lost);
        lost
    }

    fn stats(&self) -> SinkStats {
        self.counters.snapshot(self.ring.claimed())
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("overflow", &self.overflow)
            .field("closed", &self.ring.is_closed())
            .finish_non_exhaustive()
    }
}

/// Lives as long as some [`BackgroundSink`] clone does.
struct Producers(Arc<Shared>);

impl Drop for Producers {
    fn drop(&mut self) {
        self.0.disconnected.store(true, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

impl<T> Clone for BackgroundSink<T> {
    fn clone(&self) -> Self {
        Self {
            ring: Arc::clone(&self.ring),
            first: Arc::clone(&self.first),
            shared: Arc::clone(&self.shared),
            _producers: Arc::clone(&self._producers),
        }
    }
}

impl<T> fmt::Debug for BackgroundSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundSink")
            .field("overflow", &self.shared.overflow)
            .field("capacity", &self.ring.capacity())
            .field("shards", &self.ring.len())
            .field("closed", &self.ring.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> BackgroundSink<T> {
    /// Starts the actor on the current tokio runtime and returns the producer
    /// side and the owner's handle.
    ///
    /// The actor stops when `shutdown` is cancelled or when every clone of the
    /// sink is dropped; either way it first writes everything still queued.
    ///
    /// # Errors
    ///
    /// A [`SinkConfigError`] when `config` fails [`SinkConfig::validate`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime; use [`spawn_on`](Self::spawn_on) from there.
    pub fn spawn<D: SinkDrain<T>>(
        drain: D,
        config: SinkConfig,
        shutdown: CancellationToken,
    ) -> Result<(Self, SinkHandle), SinkConfigError> {
        Self::spawn_on(drain, config, shutdown, &tokio::runtime::Handle::current())
    }

    /// Starts the actor on the given runtime. Callable from any thread.
    ///
    /// # Errors
    ///
    /// A [`SinkConfigError`] when `config` fails [`SinkConfig::validate`].
    pub fn spawn_on<D: SinkDrain<T>>(
        drain: D,
        config: SinkConfig,
        shutdown: CancellationToken,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(Self, SinkHandle), SinkConfigError> {
        config.validate()?;
        let (ring, consumer) = Shards::with_capacity(config.queue_capacity, config.queue_shards, config.queue_memory)
            .map_err(|_| {
            let reason = "the memory for that many queue slots could not be allocated";
            SinkConfigError::new("queue_capacity", config.queue_capacity.to_string(), reason)
        })?;
        let shared = Arc::new(Shared {
            overflow: config.overflow,
            counters: Counters::default(),
            ring: Arc::clone(&ring) as Arc<dyn RingState>,
            wake: Notify::new(),
            wake_at: (0..ring.len()).map(|_| WakeAt::new()).collect(),
            space: Notify::new(),
            disconnected: AtomicBool::new(false),
        });
        let actor = Actor::new(consumer, drain, config, Arc::clone(&shared), shutdown.clone());
        let watch = (shutdown.clone(), Arc::clone(&shared));
        let task = runtime.spawn(async move {
            // The actor notices cancellation only between drain calls; this
            // branch, polled by the same task, refuses producers at once.
            let refuse_producers = async move {
                watch.0.cancelled().await;
                watch.1.close();
                std::future::pending().await
            };
            tokio::select! {
                finished = actor.run() => finished,
                never = refuse_producers => never,
            }
        });
        let handle = SinkHandle { task, shutdown, shared: Arc::clone(&shared) };
        let producers = Arc::new(Producers(Arc::clone(&shared)));
        let first = Arc::clone(ring.first());
        Ok((Self { ring, first, shared, _producers: producers }, handle))
    }
}

impl<T> BackgroundSink<T> {
    /// Queues `msg` without waiting and without taking a lock.
    ///
    /// # Errors
    ///
    /// The message is handed back inside the error:
    /// - [`TryPushError::Full`]: the queue is full; the message is counted as dropped.
    /// - [`TryPushError::WouldBlock`]: the policy is [`Overflow::Block`]; use
    ///   [`push_blocking`](Self::push_blocking).
    /// - [`TryPushError::Closed`]: the sink is shut down.
    #[inline]
    pub fn try_push(&self, msg: T) -> Result<(), TryPushError<T>> {
        if self.shared.overflow == Overflow::Block {
            return Err(TryPushError::WouldBlock(msg));
        }
        match self.try_queue(msg) {
            Ok(()) => Ok(()),
            Err(Refused::Full(msg)) => {
                self.shared.counters.dropped.add(1);
                Err(TryPushError::Full(msg))
            }
            Err(Refused::Closed(msg)) => Err(TryPushError::Closed(msg)),
        }
    }

    /// Queues `msg`, waiting for space if the queue is full. Works under both
    /// overflow policies.
    ///
    /// Cancel-safe: if the future is dropped before it returns, the message is
    /// neither queued nor counted.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`], with the message, when the sink is shut down.
    pub async fn push_blocking(&self, msg: T) -> Result<(), PushError<T>> {
        match self.push_waiting(self.ring.mine(), Message::Item(msg), None).await {
            Ok(()) => Ok(()),
            Err(refused) => Err(PushError::Closed(refused.into_inner().into_item())),
        }
    }

    /// Queues `msg` if there is room now, under either overflow policy,
    /// and counts nothing when there is not: the caller decides what a full
    /// queue means. The metric reader queues a collection with this, and
    /// waits ([`push_until`](Self::push_until)) only for a point that found
    /// the queue full: no future, no waiter registration per point.
    /// [`try_push`](Self::try_push) is this and its counting.
    #[inline]
    pub(crate) fn try_queue(&self, msg: T) -> Result<(), Refused<T>> {
        // Claim first, then move the message in: see `Ring::claim`.
        let shard = self.ring.mine();
        let ring = if shard == 0 { &*self.first } else { self.ring.shard(shard) };
        match ring.claim() {
            Ok(claim) => {
                // The claim itself counts the message as pushed and pending
                // (see `Counters::snapshot`): no counter to bump here.
                let position = claim.write(Message::Item(msg));
                self.shared.queued(shard, position);
                Ok(())
            }
            Err(NoRoom::Full) => Err(Refused::Full(msg)),
            Err(NoRoom::Closed) => Err(Refused::Closed(msg)),
        }
    }

    /// Queues `msg`, waiting for queue space until `deadline`, under either
    /// overflow policy. Once the deadline has passed it refuses a message the
    /// way [`try_push`](Self::try_push) refuses one under [`Overflow::Drop`]:
    /// counted as dropped and handed back in [`TryPushError::Full`]. So a
    /// producer that may wait a while (the metric reader, on the export
    /// runtime) gets back-pressure first and a counted drop last, never an
    /// uncounted loss.
    ///
    /// Cancel-safe like [`push_blocking`](Self::push_blocking).
    #[cfg_attr(not(feature = "sdk"), allow(dead_code))]
    pub(crate) async fn push_until(&self, msg: T, deadline: tokio::time::Instant) -> Result<(), TryPushError<T>> {
        match self.push_waiting(self.ring.mine(), Message::Item(msg), Some(deadline)).await {
            Ok(()) => Ok(()),
            Err(Refused::Full(msg)) => {
                self.shared.counters.dropped.add(1);
                Err(TryPushError::Full(msg.into_item()))
            }
            Err(Refused::Closed(msg)) => Err(TryPushError::Closed(msg.into_item())),
        }
    }

    /// Queues `message` in shard `shard`, waiting for space until `deadline`
    /// (or for ever). Space that is free is taken even after the deadline.
    /// Wakes the actor as a push should; counts nothing else.
    async fn push_waiting(
        &self,
        shard: usize,
        mut message: Message<T>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Refused<Message<T>>> {
        loop {
            let space = self.shared.space.notified();
            tokio::pin!(space);
            // A first attempt unregistered: registering takes a lock, which
            // a queue with room (the common case) need not pay for. The
            // second attempt is registered, so that space freed between a
            // failed attempt and the wait still wakes this producer.
            for registered in [false, true] {
                if registered {
                    space.as_mut().enable();
                }
                match self.ring.shard(shard).try_push(message) {
                    Ok(position) => {
                        self.shared.queued(shard, position);
                        return Ok(());
                    }
                    Err(Refused::Closed(refused)) => return Err(Refused::Closed(refused)),
                    Err(Refused::Full(refused)) => message = refused,
                }
            }
            match deadline {
                None => space.await,
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, space).await.is_err() {
                        // One last look: space freed at the deadline is taken.
                        return match self.ring.shard(shard).try_push(message) {
                            Ok(position) => {
                                self.shared.queued(shard, position);
                                Ok(())
                            }
                            Err(refused) => Err(refused),
                        };
                    }
                }
            }
        }
    }

    /// A barrier: returns once every message accepted before this call has
    /// been written and the drain's [`flush_durable`](SinkDrain::flush_durable)
    /// has confirmed it.
    ///
    /// The barrier waits for queue space like
    /// [`push_blocking`](Self::push_blocking), then travels behind the data.
    /// Dropping the future (for example on a timeout) does not lose a failure:
    /// the next barrier reports it.
    ///
    /// # Errors
    ///
    /// - [`FlushError::Drain`]: the first failure since the previous barrier
    ///   that reported, from any `write_batch` (size-, timer- or
    ///   barrier-triggered) or `flush_durable`, with the count of later ones.
    ///   Each failure is reported once.
    /// - [`FlushError::Closed`]: the actor is gone.
    ///
    /// # Example
    ///
    /// A drain that refuses its first batch: the barrier behind it reports
    /// the failure, and only that barrier.
    ///
    /// ```
    /// use otlp_sink::sink::{DrainError, DrainErrorKind, FlushError};
    /// use otlp_sink::{BackgroundSink, SinkConfig, SinkDrain};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// struct RefuseFirst(bool);
    ///
    /// impl SinkDrain<u32> for RefuseFirst {
    ///     async fn write_batch(&mut self, batch: Vec<u32>) -> Result<(), DrainError> {
    ///         if std::mem::replace(&mut self.0, false) {
    ///             return Err(DrainError::new(DrainErrorKind::Rejected, "refused").with_items(batch.len() as u64));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (sink, handle) = BackgroundSink::spawn(RefuseFirst(true), SinkConfig::default(), CancellationToken::new())?;
    /// sink.try_push(1)?;
    /// match sink.flush().await {
    ///     Err(FlushError::Drain { source, later_failures: 0 }) => assert_eq!(source.items(), Some(1)),
    ///     other => panic!("expected the refusal, got {other:?}"),
    /// }
    /// sink.try_push(2)?;
    /// sink.flush().await?; // the refusal was reported once; this write succeeded
    /// handle.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), FlushError> {
        let (ack, done) = oneshot::channel();
        // A copy in every shard, answered when the actor takes the last one
        // (see `shards.rs`).
        let copies = Arc::new(BarrierCopies::new(self.ring.len(), ack));
        for shard in 0..self.ring.len() {
            self.push_waiting(shard, Message::Barrier(Arc::clone(&copies)), None)
                .await
                .map_err(|_| FlushError::Closed)?;
            // Right after the claim, with no await in between: the queue
            // position it took is not a pushed message (see `Counters::snapshot`).
            self.shared.counters.barriers.add(1);
        }
        drop(copies);
        // An actor waiting on a partial batch must answer now, not at its deadline.
        self.shared.wake.notify_one();
        done.await.map_err(|_| FlushError::Closed)?
    }

    /// A snapshot of the counters.
    ///
    /// # Example
    ///
    /// A queue of two, with a drain that has not run yet: the third push is
    /// a counted drop, never a wait.
    ///
    /// ```
    /// use otlp_sink::sink::{DrainError, TryPushError};
    /// use otlp_sink::{BackgroundSink, SinkConfig, SinkDrain};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// struct Discard;
    ///
    /// impl SinkDrain<u32> for Discard {
    ///     async fn write_batch(&mut self, _batch: Vec<u32>) -> Result<(), DrainError> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = SinkConfig::default().with_queue_capacity(2);
    /// let (sink, handle) = BackgroundSink::spawn(Discard, config, CancellationToken::new())?;
    /// // The actor runs on this thread only once we await, so the queue fills.
    /// sink.try_push(1)?;
    /// sink.try_push(2)?;
    /// assert!(matches!(sink.try_push(3), Err(TryPushError::Full(3))));
    /// sink.flush().await?;
    ///
    /// // Every message offered is counted: written, or dropped.
    /// let stats = sink.stats();
    /// assert_eq!((stats.pushed, stats.written, stats.dropped), (3, 2, 1));
    /// handle.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// Whether the sink no longer accepts messages (shutdown has begun).
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }
}

/// The owner's handle on a sink's actor task.
///
/// Keep it: it is how the owner waits for the final writes. Dropping it does
/// not stop the actor, which goes on until the shutdown token is cancelled or
/// every [`BackgroundSink`] clone is dropped, and then drains as usual; but
/// nobody can then wait for that drain to finish or learn whether it failed.
#[must_use = "dropping the handle detaches the actor: nobody can wait for the final writes"]
pub struct SinkHandle {
    task: JoinHandle<Result<(), ShutdownError>>,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
}

impl fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkHandle")
            .field("finished", &self.task.is_finished())
            .field("cancelled", &self.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl SinkHandle {
    /// Waits for the actor to finish, without asking it to.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Drain`] for failures no flush reported;
    /// [`ShutdownError::ActorFailed`] if the actor panicked.
    pub async fn join(self) -> Result<(), ShutdownError> {
        match self.task.await {
            Ok(finished) => finished,
            Err(failed) => {
                // The actor is gone with its queue: what it held is lost.
                self.shared.abandon_pending();
                Err(ShutdownError::ActorFailed(failed))
            }
        }
    }

    /// Cancels the shutdown token and waits for the actor: the queue is closed,
    /// everything in it is written, barriers in it are answered, and the drain
    /// is [closed](SinkDrain::close).
    ///
    /// This waits as long as the drain takes; see
    /// [`shutdown_timeout`](Self::shutdown_timeout) for a bound.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub async fn shutdown(self) -> Result<(), ShutdownError> {
        self.shutdown.cancel();
        self.join().await
    }

    /// Like [`shutdown`](Self::shutdown), but returns by `deadline` whatever
    /// the drain does. If the actor has not finished by then, it is aborted:
    /// the drain is dropped where it stood, and the messages never handed to
    /// it are lost and moved from `pending` to
    /// [`abandoned`](SinkStats::abandoned). The counters are final when this
    /// returns.
    ///
    /// The abort takes effect when the actor next yields, which a drain that
    /// keeps to the [`SinkDrain`] contract (never blocking its thread) does at
    /// once.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::TimedOut`] when the deadline passed, otherwise as
    /// [`join`](Self::join).
    ///
    /// # Example
    ///
    /// A drain that never finishes its first batch of one: shutdown returns
    /// at the deadline, and the message behind that batch is counted as
    /// abandoned.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use otlp_sink::sink::{DrainError, ShutdownError};
    /// use otlp_sink::{BackgroundSink, SinkConfig, SinkDrain};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// struct Hang;
    ///
    /// impl SinkDrain<u32> for Hang {
    ///     async fn write_batch(&mut self, _batch: Vec<u32>) -> Result<(), DrainError> {
    ///         std::future::pending().await
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = SinkConfig::default().with_batch_size(1);
    /// let (sink, handle) = BackgroundSink::spawn(Hang, config, CancellationToken::new())?;
    /// sink.try_push(1)?;
    /// sink.try_push(2)?;
    /// match handle.shutdown_timeout(Duration::from_millis(100)).await {
    ///     Err(ShutdownError::TimedOut { pending, .. }) => assert_eq!(pending, 1),
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// assert_eq!(sink.stats().abandoned, 1, "the message never handed to the drain");
    /// assert!(sink.try_push(3).is_err(), "the sink is closed");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown_timeout(mut self, deadline: Duration) -> Result<(), ShutdownError> {
        self.shutdown.cancel();
        match tokio::time::timeout(deadline, &mut self.task).await {
            Ok(Ok(finished)) => finished,
            Ok(Err(failed)) => {
                self.shared.abandon_pending();
                Err(ShutdownError::ActorFailed(failed))
            }
            Err(_elapsed) => {
                // Refuse producers before the queue goes away, so that no
                // message is counted after the books are closed.
                self.shared.close();
                self.task.abort();
                // Wait for the abort itself: the actor, its queue and its
                // drain are dropped then, and a drain that counts what it
                // loses (the gRPC drains do) has counted it.
                match (&mut self.task).await {
                    // It finished in the instant between the deadline and the abort.
                    Ok(finished) => return finished,
                    Err(aborted) if aborted.is_cancelled() => {}
                    Err(panicked) => {
                        self.shared.abandon_pending();
                        return Err(ShutdownError::ActorFailed(panicked));
                    }
                }
                let pending = self.shared.abandon_pending();
                tracing::warn!(?deadline, pending, "sink actor did not finish by the shutdown deadline; aborted");
                Err(ShutdownError::TimedOut { deadline, pending })
            }
        }
    }

    /// A snapshot of the sink's counters.
    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    /// Whether the actor has finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;
    use tokio::time::Instant;

    use super::*;

    /// Writes one message per permit released on its gate.
    struct Gated(Arc<Semaphore>);

    impl SinkDrain<u32> for Gated {
        async fn write_batch(&mut self, _batch: Vec<u32>) -> Result<(), DrainError> {
            self.0.acquire().await.expect("gate open").forget();
            Ok(())
        }
    }

    fn one_slot(gate: &Arc<Semaphore>) -> BackgroundSink<u32> {
        let config = SinkConfig::default().with_queue_capacity(1).with_batch_size(1);
        let (sink, handle) = BackgroundSink::spawn(Gated(Arc::clone(gate)), config, CancellationToken::new()).unwrap();
        drop(handle);
        sink
    }

    /// Lets the actor take what is queued (paused clock: no time passes).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn push_until_waits_for_space_and_counts_a_drop_at_the_deadline() {
        let gate = Arc::new(Semaphore::new(0));
        let sink = one_slot(&gate);
        sink.push_until(1, Instant::now()).await.unwrap();
        settle().await; // the actor holds 1, stuck in the drain
        sink.push_until(2, Instant::now()).await.unwrap(); // fills the queue
        let started = Instant::now();
        let refused = sink.push_until(3, started + Duration::from_secs(1)).await;
        assert!(matches!(refused, Err(TryPushError::Full(3))), "{refused:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(1), "waited for space until the deadline");
        let stats = sink.stats();
        // 1 is in the (stuck) drain, so counted written; 2 waits in the queue.
        assert_eq!((stats.pushed, stats.dropped, stats.written, stats.pending), (3, 1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn push_until_takes_space_freed_before_the_deadline_and_free_space_after_it() {
        let gate = Arc::new(Semaphore::new(0));
        let sink = one_slot(&gate);
        sink.push_until(1, Instant::now()).await.unwrap();
        settle().await;
        sink.push_until(2, Instant::now()).await.unwrap();
        let releaser = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                gate.add_permits(1);
            })
        };
        let started = Instant::now();
        sink.push_until(3, started + Duration::from_secs(1)).await.expect("space freed in time");
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        releaser.await.unwrap();
        gate.add_permits(10);
        settle().await;
        // The deadline is long past, but the queue has room: no drop.
        sink.push_until(4, started).await.expect("free space is taken after the deadline");
        assert_eq!(sink.stats().dropped, 0);
    }
}
