//! The actor task: the only consumer of a sink's queue and the only caller of
//! its drain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::ring::Pop;
use super::shards::ShardsConsumer;
use super::wake::WakeAt;
use super::{DrainError, FlushError, Shared, ShutdownError, SinkConfig, SinkDrain, Unreported};

/// What travels through the queue. Barriers share the queue with data, so a
/// barrier is handled after every message pushed before it (FIFO): in a
/// sharded queue, after every message pushed before it in every shard, its
/// copies (one a shard) sharing one [`BarrierCopies`].
pub(crate) enum Message<T> {
    Item(T),
    Barrier(Arc<BarrierCopies>),
}

/// One flush barrier, of which a copy travels in each shard of the queue.
pub(crate) struct BarrierCopies {
    /// Copies the actor has not taken yet.
    left: AtomicUsize,
    /// The flush's answer, sent when the last copy is taken.
    ack: Mutex<Option<oneshot::Sender<Result<(), FlushError>>>>,
}

impl BarrierCopies {
    /// A barrier of `copies` copies (one a shard), answered on `ack`.
    pub(crate) fn new(copies: usize, ack: oneshot::Sender<Result<(), FlushError>>) -> Self {
        Self { left: AtomicUsize::new(copies), ack: Mutex::new(Some(ack)) }
    }

    /// Counts one copy taken; the answer's sender once it was the last.
    fn taken(&self) -> Option<oneshot::Sender<Result<(), FlushError>>> {
        if self.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return None;
        }
        self.ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

impl<T> Message<T> {
    /// The item of a message that a push made from one and got back.
    ///
    /// # Panics
    ///
    /// On a barrier: no push hands one to a caller that expects an item.
    pub(crate) fn into_item(self) -> T {
        match self {
            Self::Item(item) => item,
            Self::Barrier(_) => unreachable!("a refused barrier is never handed back as an item"),
        }
    }
}

/// What one round of taking from the queue found.
enum Taken {
    /// At least one message.
    Some,
    /// Nothing queued.
    Empty,
    /// Nothing to take yet: a producer is writing the next message.
    Busy,
}

pub(crate) struct Actor<T, D> {
    queue: ShardsConsumer<Message<T>>,
    drain: D,
    config: SinkConfig,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// Messages taken from the queue but not yet written. Never longer than
    /// `config.batch_size`.
    batch: Vec<T>,
    /// The bytes of `batch`'s items, as the drain weighs them; counted only
    /// when batches are cut by bytes.
    batch_bytes: usize,
    /// When `batch` must be written at the latest: set when its first message
    /// arrives, cleared when it is written. `Some` exactly when `batch` is not empty.
    deadline: Option<Instant>,
    /// Failures not yet reported by a barrier.
    unreported: Unreported,
    /// Per shard, how many messages had been taken from it when the last
    /// batch was written: what each shard gave the batch in the making is
    /// its count now less this (see `WakeAt::position_in_shard`).
    heads_at_write: Vec<u64>,
}

impl<T: Send + 'static, D: SinkDrain<T>> Actor<T, D> {
    pub(crate) fn new(
        queue: ShardsConsumer<Message<T>>,
        drain: D,
        config: SinkConfig,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> Self {
        let batch = Vec::with_capacity(Self::first_capacity(&config));
        let heads_at_write = vec![0; queue.len()];
        Self {
            queue,
            drain,
            config,
            shared,
            shutdown,
            batch,
            batch_bytes: 0,
            deadline: None,
            unreported: Unreported::default(),
            heads_at_write,
        }
    }

    pub(crate) async fn run(mut self) -> Result<(), ShutdownError> {
        // Cancellation and disconnection are checked first on every round,
        // so a steady stream of messages cannot keep the actor from noticing
        // them; nothing is lost by leaving, since the shutdown path below
        // takes everything queued.
        while !self.shutdown.is_cancelled() && !self.shared.disconnected.load(Ordering::SeqCst) {
            match self.take_queued().await {
                // A backlog is taken at once, a batch's worth a round.
                Taken::Some => {}
                Taken::Busy => tokio::task::yield_now().await,
                Taken::Empty => {
                    if self.deadline.is_none_or(|d| d > Instant::now()) {
                        self.sleep().await;
                    }
                }
            }
            if self.deadline.is_some_and(|d| d <= Instant::now()) {
                self.write_pending().await;
            }
        }

        // Close first: producers racing with shutdown now get `Closed` and
        // keep their message, instead of leaving it in a queue nobody reads.
        // Messages already queued are still taken.
        self.shared.close();
        loop {
            match self.queue.pop() {
                Pop::Item(message) => self.handle(message).await,
                Pop::Busy => tokio::task::yield_now().await,
                Pop::Empty => break,
            }
        }
        self.write_pending().await;
        if let Err(err) = self.drain.close().await {
            tracing::warn!(error = %err, "sink drain failed to close");
            self.record(err);
        }
        match self.unreported.take() {
            None => Ok(()),
            Some(first) => Err(ShutdownError::Drain { later_failures: first.later_failures(), source: first }),
        }
    }

    /// Takes and handles what is queued, a batch's worth at most.
    async fn take_queued(&mut self) -> Taken {
        let mut took = 0;
        let found = loop {
            if took == self.config.batch_size {
                break Taken::Some;
            }
            match self.queue.pop() {
                // An item is batched without a future of its own; only a
                // batch it fills, or a barrier, is awaited.
                Pop::Item(Message::Item(item)) => {
                    took += 1;
                    if self.batch_item(item) {
                        self.write_pending().await;
                    }
                }
                Pop::Item(message) => {
                    took += 1;
                    self.handle(message).await;
                }
                Pop::Empty if took > 0 => break Taken::Some,
                Pop::Busy if took > 0 => break Taken::Some,
                Pop::Empty => break Taken::Empty,
                Pop::Busy => break Taken::Busy,
            }
        };
        if took > 0 {
            self.shared.space.notify_waiters();
        }
        found
    }

    /// Waits, with nothing queued, for what the actor must act on: the first
    /// message (nothing batched), the message that completes the batch, the
    /// batch's deadline, a barrier, a disconnection or cancellation. Not
    /// being woken by every message is what keeps a push from paying for a
    /// task wake-up.
    async fn sleep(&mut self) {
        let (batched, batch_size) = (self.batch.len(), self.batch_target());
        let (queue, heads_at_write) = (&self.queue, &self.heads_at_write);
        let wake_at = |k: usize| {
            let shard = queue.shard(k);
            let head = shard.head();
            WakeAt::position_in_shard(head, batched, batch_size, head - heads_at_write[k], shard.ring().capacity())
        };
        let claimed = |k: usize| queue.shard(k).ring().claimed();
        let disconnected = &self.shared.disconnected;
        if !WakeAt::announce_all(&self.shared.wake_at, wake_at, claimed, || disconnected.load(Ordering::SeqCst)) {
            return;
        }
        let woken = self.shared.wake.notified();
        match self.deadline {
            None => {
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => {}
                    () = woken => {}
                }
            }
            Some(deadline) => {
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => {}
                    () = woken => {}
                    () = sleep_until(deadline) => {}
                }
            }
        }
        WakeAt::withdraw_all(&self.shared.wake_at);
    }

    /// The first batch's capacity: the batch size, or, for batches cut by
    /// bytes, a start that grows.
    fn first_capacity(config: &SinkConfig) -> usize {
        match config.batch_bytes {
            0 => config.batch_size,
            _ => config.batch_size.min(1024),
        }
    }

    /// How many messages the batch being filled will hold when full, for a
    /// batch that is not empty: the batch size, or fewer when batches are cut
    /// by bytes and the items batched so far say (at their mean size) that
    /// the bytes run out first. Only where the actor asks to be woken: a
    /// guess that is short wakes it early, to sleep again; one that is long
    /// is cut by bytes as the messages are taken.
    fn batch_target(&self) -> usize {
        let limit = self.config.batch_bytes;
        let batched = self.batch.len();
        if limit == 0 || batched == 0 || self.batch_bytes == 0 {
            return self.config.batch_size;
        }
        let mean = self.batch_bytes.div_ceil(batched);
        let more = limit.saturating_sub(self.batch_bytes).div_ceil(mean).max(1);
        (batched + more).min(self.config.batch_size)
    }

    async fn handle(&mut self, message: Message<T>) {
        match message {
            Message::Item(item) => {
                if self.batch_item(item) {
                    self.write_pending().await;
                }
            }
            Message::Barrier(copies) => {
                if let Some(ack) = copies.taken() {
                    self.barrier(ack).await;
                }
            }
        }
    }

    /// Adds `item` to the batch being filled; true when that completes the
    /// batch, by count or by bytes, which the caller then writes.
    fn batch_item(&mut self, item: T) -> bool {
        if self.batch.is_empty() {
            self.deadline = Some(Instant::now() + self.config.flush_interval);
        }
        if self.config.batch_bytes > 0 {
            self.batch_bytes += self.drain.item_bytes(&item);
        }
        self.batch.push(item);
        let by_bytes = self.config.batch_bytes > 0 && self.batch_bytes >= self.config.batch_bytes;
        self.batch.len() >= self.config.batch_size || by_bytes
    }

    /// Writes the partial batch, waits for the drain's durability, then
    /// answers the barrier with every failure since the previous one.
    async fn barrier(&mut self, ack: oneshot::Sender<Result<(), FlushError>>) {
        self.write_pending().await;
        if let Err(err) = self.drain.flush_durable().await {
            tracing::warn!(error = %err, "sink drain failed to make writes durable");
            self.record(err);
        }
        self.shared.counters.flushes.add(1);
        let result = match self.unreported.take() {
            None => Ok(()),
            Some(first) => Err(FlushError::Drain { later_failures: first.later_failures(), source: first }),
        };
        // The caller gave up waiting (its flush future was dropped): keep the
        // failure for the next barrier so it is still reported once.
        if let Err(Err(FlushError::Drain { source, .. })) = ack.send(result) {
            self.unreported.record(source);
        }
    }

    async fn write_pending(&mut self) {
        self.deadline = None;
        self.batch_bytes = 0;
        for (k, head) in self.heads_at_write.iter_mut().enumerate() {
            *head = self.queue.shard(k).head();
        }
        if self.batch.is_empty() {
            return;
        }
        // A batch cut by bytes is sized as the last one was, not for a count
        // it may never reach.
        let next = match self.config.batch_bytes {
            0 => self.config.batch_size,
            _ => self.batch.len(),
        };
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(next));
        let len = batch.len() as u64;
        // Counted as written when handed over, not when `write_batch`
        // returns: from here on the drain owns the messages and accounts for
        // them (a network drain may already have sent some when an aborted
        // shutdown drops it mid-call).
        self.shared.counters.written.add(len);
        // The batch left the queue: producers waiting for space may go on
        // while the drain works.
        self.shared.space.notify_waiters();
        let result = self.drain.write_batch(batch).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, items = len, "sink drain failed to write a batch");
            self.shared.counters.write_errors.add(1);
            self.shared.counters.failed.add(len);
            self.record(err);
        }
    }

    fn record(&mut self, err: DrainError) {
        self.unreported.record(err);
    }
}
