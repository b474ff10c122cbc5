//! The actor task: the only consumer of a sink's queue and the only caller of
//! its drain.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::{DrainError, FlushError, Shared, ShutdownError, SinkConfig, SinkDrain};

/// What travels through the queue. Barriers share the queue with data, so a
/// barrier is handled after every message pushed before it (FIFO).
pub(crate) enum Message<T> {
    Item(T),
    Barrier(oneshot::Sender<Result<(), FlushError>>),
}

/// Failures not yet reported by a barrier: the first one, and how many came
/// after it.
struct Unreported {
    first: DrainError,
    later: u64,
}

pub(crate) struct Actor<T, D> {
    rx: mpsc::Receiver<Message<T>>,
    drain: D,
    config: SinkConfig,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// Messages taken from the queue but not yet written. Never longer than
    /// `config.batch_size`.
    batch: Vec<T>,
    /// When `batch` must be written at the latest: set when its first message
    /// arrives, cleared when it is written. `Some` exactly when `batch` is not empty.
    deadline: Option<Instant>,
    unreported: Option<Unreported>,
}

impl<T: Send + 'static, D: SinkDrain<T>> Actor<T, D> {
    pub(crate) fn new(
        rx: mpsc::Receiver<Message<T>>,
        drain: D,
        config: SinkConfig,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
    ) -> Self {
        let batch = Vec::with_capacity(config.batch_size);
        Self { rx, drain, config, shared, shutdown, batch, deadline: None, unreported: None }
    }

    pub(crate) async fn run(mut self) -> Result<(), ShutdownError> {
        let mut inbox = Vec::with_capacity(self.config.batch_size);
        loop {
            let Some(deadline) = self.deadline else {
                // Nothing batched: wait for the first message. Waiting on the
                // queue itself is right here, since that message starts a batch.
                tokio::select! {
                    // Cancellation first, so that a steady stream of messages
                    // cannot keep the actor from noticing it; nothing is lost
                    // by leaving, because the shutdown path below drains the queue.
                    biased;
                    () = self.shutdown.cancelled() => break,
                    received = self.rx.recv_many(&mut inbox, self.config.batch_size) => {
                        if received == 0 {
                            // Every `BackgroundSink` handle was dropped.
                            break;
                        }
                        for message in inbox.drain(..) {
                            self.handle(message).await;
                        }
                        if self.deadline.is_some_and(|d| d <= Instant::now()) {
                            self.write_pending().await;
                        }
                    }
                }
                continue;
            };
            // A partial batch: wait for its deadline, a full batch or a barrier
            // (producers wake the actor for those), not for every message. Not
            // polling the queue here is what keeps a push from paying for a
            // task wake-up: the queue only wakes a receiver that waits on it.
            // A backlog already queued is taken at once: producers wake the
            // actor only when a push completes a batch, so waiting here with
            // messages queued would cost a whole `flush_interval` per batch
            // whenever the producers have stopped (checking is no wake-up).
            if deadline > Instant::now() && self.rx.is_empty() {
                tokio::select! {
                    // Cancellation first, as above.
                    biased;
                    () = self.shutdown.cancelled() => break,
                    () = self.shared.wake.notified() => {}
                    () = sleep_until(deadline) => {}
                }
            }
            // Take what is queued, a batch's worth at most before looking at
            // cancellation again.
            let mut disconnected = false;
            for _ in 0..self.config.batch_size {
                match self.rx.try_recv() {
                    Ok(message) => self.handle(message).await,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if self.deadline.is_some_and(|d| d <= Instant::now()) {
                self.write_pending().await;
            }
            if disconnected {
                // Every `BackgroundSink` handle was dropped; the shutdown
                // path below writes the partial batch.
                break;
            }
        }

        // Close first: producers racing with shutdown now get `Closed` and keep
        // their message, instead of leaving it in a queue nobody reads.
        // Messages already queued (and permits already reserved) still arrive.
        self.rx.close();
        while self.rx.recv_many(&mut inbox, self.config.batch_size).await > 0 {
            for message in inbox.drain(..) {
                self.handle(message).await;
            }
        }
        self.write_pending().await;
        if let Err(err) = self.drain.close().await {
            tracing::warn!(error = %err, "sink drain failed to close");
            self.record(err);
        }
        match self.unreported.take() {
            None => Ok(()),
            Some(Unreported { first, later }) => Err(ShutdownError::Drain { source: first, later_failures: later }),
        }
    }

    async fn handle(&mut self, message: Message<T>) {
        match message {
            Message::Item(item) => {
                if self.batch.is_empty() {
                    self.deadline = Some(Instant::now() + self.config.flush_interval);
                }
                self.batch.push(item);
                if self.batch.len() >= self.config.batch_size {
                    self.write_pending().await;
                }
            }
            Message::Barrier(ack) => self.barrier(ack).await,
        }
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
            Some(Unreported { first, later }) => Err(FlushError::Drain { source: first, later_failures: later }),
        };
        // The caller gave up waiting (its flush future was dropped): keep the
        // failure for the next barrier so it is still reported once.
        if let Err(Err(FlushError::Drain { source, later_failures })) = ack.send(result) {
            self.unreported = Some(Unreported { first: source, later: later_failures });
        }
    }

    async fn write_pending(&mut self) {
        self.deadline = None;
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.config.batch_size));
        let len = batch.len() as u64;
        // Counted as written when handed over, not when `write_batch`
        // returns: from here on the drain owns the messages and accounts for
        // them (a network drain may already have sent some when an aborted
        // shutdown drops it mid-call). `written` before `pending`: see
        // `Counters::snapshot`.
        self.shared.counters.written.add(len);
        self.shared.counters.pending.sub(len);
        let result = self.drain.write_batch(batch).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, items = len, "sink drain failed to write a batch");
            self.shared.counters.write_errors.add(1);
            self.shared.counters.failed.add(len);
            self.record(err);
        }
    }

    fn record(&mut self, err: DrainError) {
        let folded = err.later_failures();
        match &mut self.unreported {
            None => self.unreported = Some(Unreported { first: err, later: folded }),
            Some(unreported) => unreported.later += 1 + folded,
        }
    }
}
