//! The spooled drain: the durable spool (`crate::spool`, synchronous
//! storage) composed with the delivery engine.
//!
//! ```text
//! write_batch --encode--> requests --spawn_blocking: Spool::append-->  segments on disk
//! flush_durable ----------------------spawn_blocking: Spool::sync--->  fsynced (Persisted)
//! sender task: spawn_blocking(next_unsent) -> DeliveryDrain::send_encoded (window, retry, counters)
//!              outcome: acked | rejected | failed for good -> spawn_blocking(settle) -> cursor -> SpoolHandle (Delivered)
//!                       kept (retry budget ran out)         -> stays on disk, sent again after a backoff
//! ```
//!
//! Every spool call runs on tokio's blocking pool (the spool is behind a
//! `std` mutex that only blocking-pool closures take), never on the actor's
//! worker. The records' order is the appends' order; the sender hands them
//! out from the cursor, so what an earlier process left goes first (FIFO
//! per signal).
//!
//! ## What settles a record
//!
//! - Acknowledged, partially rejected, or failed for good (a status that
//!   must not be retried, TLS, an undecodable answer): settled, counted by
//!   the engine as acked, rejected or failed.
//! - Retryable failures that outlast the retry budget (a collector outage):
//!   not settled. The record stays on disk and is sent again after a
//!   backoff (1 s doubling to 30 s, reset by an acknowledgement), counted
//!   in [`SpoolStats::redelivered`]; while any record waits so, no newer
//!   record is sent (FIFO, and no pile of requests against a collector that
//!   is down). So an outage of any length loses nothing the spool's bounds
//!   keep.
//! - Shutdown: [`close`](SinkDrain::close) fsyncs, gives delivery the
//!   drain's close budget, then stops the sender; records not settled stay
//!   on disk for the next start, and `close` reports how many
//!   ([`DrainErrorKind::Kept`]).

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::OtlpDrain;
use crate::config::{ExporterConfig, FullPolicy, SpoolConfig};
use crate::deliver::{
    DeliveryStatsHandle, ExportError, Outcome, Service, SpoolHandle, SpoolOpenError, SpoolShared, SpoolStats,
};
use crate::otlp::{encode, EncodeError};
use crate::sink::{DrainError, DrainErrorKind, SinkDrain, Unreported};
use crate::spool::{self, CursorRead, Record, Recovered, Spool, SpoolError, SpoolOptions};

/// The spool, taken out at close (or drop) so that its lock is released
/// even while handles to the shared state live on.
type Slot = Arc<Mutex<Option<Spool>>>;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn lock(slot: &Mutex<Option<Spool>>) -> std::sync::MutexGuard<'_, Option<Spool>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the spool on tokio's blocking pool; `None` once the spool
/// is closed (or the blocking task could not run).
async fn blocking<R: Send + 'static>(
    slot: &Slot,
    shared: &Arc<SpoolShared>,
    f: impl FnOnce(&mut Spool) -> R + Send + 'static,
) -> Option<R> {
    let (slot, shared) = (Arc::clone(slot), Arc::clone(shared));
    tokio::task::spawn_blocking(move || {
        let mut guard = lock(&slot);
        let spool = guard.as_mut()?;
        let out = f(spool);
        publish(spool, &shared);
        Some(out)
    })
    .await
    .ok()
    .flatten()
}

/// Copies the storage's counters into the public ones, moves the
/// `settled` watch, and records the losses since the last call as
/// `Delivered` failures.
fn publish(spool: &Spool, shared: &SpoolShared) {
    let st = spool.stats();
    let lost_in_flight = shared.evicted_in_flight_lost.load(Ordering::Relaxed);
    let resolved = shared.evicted_in_flight_resolved.load(Ordering::Relaxed);
    let mut before = SpoolStats::default();
    shared.update(|s| {
        before = *s;
        // Records in flight when their segment was evicted are the
        // sender's until their outcome is known: still spooled.
        s.spooled = st.pending.items + st.evicted_in_flight.items.saturating_sub(resolved);
        s.dropped_full = st.refused.items;
        s.evicted = st.evicted.items + lost_in_flight;
        s.expired = st.expired.items;
        s.damaged = st.damaged_read.items;
        s.write_failed = st.write_failed.items;
        s.bytes_on_disk = st.bytes_on_disk;
        s.syncs = st.syncs;
    });
    for (lost, what) in [
        (st.evicted.items + lost_in_flight - before.evicted, "evicted from the full spool"),
        (st.expired.items - before.expired, "older than the spool's age bound, dropped"),
        (st.damaged_read.items - before.damaged, "damaged on disk, dropped"),
    ] {
        if lost > 0 {
            shared.record_failure(DrainError::new(DrainErrorKind::Storage, what).with_items(lost));
        }
    }
    shared.durable_through.store(spool.durable_through(), Ordering::Release);
    let unresolved = st.evicted_in_flight.items.saturating_sub(resolved);
    shared.unresolved.send_if_modified(|u| {
        let moved = *u != unresolved;
        *u = unresolved;
        moved
    });
    shared.settled.send_if_modified(|c| {
        let moved = *c != st.cursor;
        *c = st.cursor;
        moved
    });
}

/// The storage's options from the public settings.
fn options(config: &SpoolConfig) -> SpoolOptions {
    SpoolOptions {
        max_bytes: config.max_bytes(),
        max_record_age: config.max_record_age(),
        full_policy: match config.full_policy() {
            FullPolicy::DropNewest => spool::FullPolicy::DropNewest,
            _ => spool::FullPolicy::EvictOldest,
        },
        ..SpoolOptions::default()
    }
}

fn open_error(dir: &std::path::Path, e: SpoolError) -> SpoolOpenError {
    let dir = dir.to_owned();
    match e {
        SpoolError::Locked { .. } => SpoolOpenError::Locked { dir, source: Box::new(e) },
        SpoolError::UnsafePermissions { .. } | SpoolError::NotADirectory { .. } => {
            SpoolOpenError::Unsafe { dir, source: Box::new(e) }
        }
        _ => SpoolOpenError::Other { dir, source: Box::new(e) },
    }
}

/// Opens the spool (blocking: call on the blocking pool).
fn open_blocking(config: &SpoolConfig) -> Result<(Spool, Recovered), SpoolError> {
    Spool::open(config.dir(), options(config))
}

/// Appends the encoded requests in order (blocking).
fn append_all(spool: &mut Spool, requests: Vec<(Vec<u8>, u32)>) -> Vec<Result<u64, (SpoolError, u32)>> {
    requests.into_iter().map(|(body, items)| spool.append(&body, items).map_err(|e| (e, items))).collect()
}

/// The drain under a spool: see the module docs.
pub(crate) struct SpooledDrain<S: Service> {
    slot: Slot,
    shared: Arc<SpoolShared>,
    stats: DeliveryStatsHandle,
    wake: Arc<Notify>,
    stop: CancellationToken,
    sender: Option<JoinHandle<()>>,
    max_request_bytes: usize,
    /// How long `close` gives delivery before it stops the sender.
    close_budget: Duration,
    /// Spool failures (appends, fsyncs) not yet reported by `flush_durable`.
    unreported: Unreported,
    signal: PhantomData<fn(S)>,
}

impl<S: Service> std::fmt::Debug for SpooledDrain<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpooledDrain")
            .field("path", &S::GRPC_METHOD)
            .field("spool", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<S: Service> SpooledDrain<S> {
    /// Opens `spool`'s directory (recovering what an earlier process left)
    /// and starts the sender over `engine`, on the current runtime.
    pub(crate) async fn open(
        engine: OtlpDrain<S>,
        config: &ExporterConfig,
        spool: &SpoolConfig,
        close_budget: Duration,
    ) -> Result<Self, SpoolOpenError> {
        let spool_config = spool.clone();
        let opened = tokio::task::spawn_blocking(move || open_blocking(&spool_config))
            .await
            .map_err(|e| SpoolOpenError::Other { dir: spool.dir().to_owned(), source: Box::new(e) })?;
        let (opened, recovered) = opened.map_err(|e| open_error(spool.dir(), e))?;
        match recovered.cursor {
            Some(CursorRead::Damaged) => {
                tracing::warn!(dir = %opened.dir().display(), "spool: the cursor file is damaged; delivering from the first record on disk (at least once)")
            }
            Some(CursorRead::Missing) if recovered.pending.records > 0 => {
                tracing::warn!(dir = %opened.dir().display(), "spool: no cursor file; delivering from the first record on disk (at least once)")
            }
            _ => {}
        }
        let slot: Slot = Arc::new(Mutex::new(Some(opened)));
        let weak: Weak<Mutex<Option<Spool>>> = Arc::downgrade(&slot);
        let pending = move |through: u64| {
            let Some(slot) = weak.upgrade() else { return (0, 0) };
            let guard = lock(&slot);
            guard.as_ref().map_or((0, 0), |s| {
                (s.pending_through(through).items, s.pending_through(through.min(s.durable_through())).items)
            })
        };
        let lost = recovered.torn.items + recovered.corrupt.items + recovered.too_old.items;
        let unknown = recovered.torn.items_unknown + recovered.corrupt.items_unknown + recovered.missing;
        let (settled, _) = watch::channel(0);
        let (unresolved, _) = watch::channel(0);
        let shared = Arc::new(SpoolShared {
            dir: spool.dir().to_owned(),
            stats: Mutex::new(SpoolStats {
                replayed: recovered.pending.items,
                lost_at_open: lost,
                lost_records_unknown: unknown,
                ..SpoolStats::default()
            }),
            settled,
            unresolved,
            flushed_through: AtomicU64::new(0),
            durable_through: AtomicU64::new(0),
            failures: Mutex::default(),
            evicted_in_flight_lost: AtomicU64::new(0),
            evicted_in_flight_resolved: AtomicU64::new(0),
            pending: Box::new(pending),
        });
        for e in &recovered.unknown_segments {
            tracing::error!(error = %e, "spool: a segment this build cannot read is left alone");
        }
        if recovered.pending.items > 0 {
            tracing::info!(dir = %spool.dir().display(), records = recovered.pending.records, items = recovered.pending.items, "spool: replaying what an earlier process left");
        }
        {
            let guard = lock(&slot);
            if let Some(s) = guard.as_ref() {
                publish(s, &shared);
            }
        }
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let stats = engine.stats();
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        let sender = Sender {
            engine,
            slot: Arc::clone(&slot),
            shared: Arc::clone(&shared),
            wake: Arc::clone(&wake),
            stop: stop.clone(),
            outcomes_tx,
            outcomes,
            in_flight: HashMap::new(),
            retry: BTreeMap::new(),
            retry_at: None,
            backoff: FIRST_BACKOFF,
            window: config.max_in_flight().max(1),
        };
        let sender = tokio::spawn(sender.run());
        Ok(SpooledDrain {
            slot,
            shared,
            stats,
            wake,
            stop,
            sender: Some(sender),
            max_request_bytes: config.max_request_bytes(),
            close_budget,
            unreported: Unreported::default(),
            signal: PhantomData,
        })
    }

    /// A handle on the spool: counters and the `Delivered` wait.
    pub(crate) fn handle(&self) -> SpoolHandle {
        SpoolHandle(Arc::clone(&self.shared))
    }

    /// The delivery engine's counters.
    pub(crate) fn stats(&self) -> DeliveryStatsHandle {
        self.stats.clone()
    }

    /// Appends a batch's requests: the `write_batch` of every signal.
    pub(crate) async fn write<P: Into<S::Point> + Send + 'static>(&mut self, batch: Vec<P>) {
        let encoded = encode::<S>(batch, self.max_request_bytes);
        if !encoded.rejected.is_empty() {
            self.stats.0.rejected.fetch_add(encoded.rejected.len() as u64, Ordering::Relaxed);
            for err in &encoded.rejected {
                tracing::warn!(error = %err, "item not spooled");
            }
            let (too_large, invalid): (Vec<_>, Vec<_>) =
                encoded.rejected.into_iter().partition(|err| matches!(err, EncodeError::TooLarge { .. }));
            for refused in [invalid, too_large] {
                let items = refused.len() as u64;
                if let Some(first) = refused.into_iter().next() {
                    self.unreported.record(ExportError::Encode(first).into_drain_error(items));
                }
            }
        }
        let requests: Vec<(Vec<u8>, u32)> =
            encoded.requests.into_iter().map(|r| (r.body, u32::try_from(r.points).unwrap_or(u32::MAX))).collect();
        if requests.is_empty() {
            return;
        }
        let results = blocking(&self.slot, &self.shared, move |spool| append_all(spool, requests)).await;
        let Some(results) = results else {
            self.unreported.record(DrainError::new(DrainErrorKind::Closed, "the spool is closed"));
            return;
        };
        for result in results {
            if let Err((e, items)) = result {
                tracing::warn!(error = %e, items, "spool: request not kept");
                self.unreported.record(DrainError::new(DrainErrorKind::Storage, e).with_items(u64::from(items)));
            }
        }
        self.wake.notify_one();
    }

    /// The `Persisted` level: fsyncs everything appended.
    pub(crate) async fn persist(&mut self) -> Result<(), DrainError> {
        let synced = blocking(&self.slot, &self.shared, |spool| spool.sync().map(|()| spool.last_seq())).await;
        match synced {
            Some(Ok(through)) => {
                self.shared.flushed_through.fetch_max(through, Ordering::AcqRel);
            }
            Some(Err(e)) => self.unreported.record(DrainError::new(DrainErrorKind::Storage, e)),
            None => self.unreported.record(DrainError::new(DrainErrorKind::Closed, "the spool is closed")),
        }
        self.unreported.take().map_or(Ok(()), Err)
    }

    /// Persists, gives delivery the close budget, stops the sender and
    /// closes the spool; reports what stays on disk for the next start.
    pub(crate) async fn shut(&mut self) -> Result<(), DrainError> {
        let persisted = self.persist().await;
        let mut settled = self.shared.settled.subscribe();
        let last = blocking(&self.slot, &self.shared, |spool| spool.last_seq()).await.unwrap_or(0);
        let _ = tokio::time::timeout(self.close_budget, settled.wait_for(|c| *c >= last)).await;
        self.stop.cancel();
        if let Some(sender) = self.sender.take() {
            let _ = sender.await;
        }
        let slot = Arc::clone(&self.slot);
        let shared = Arc::clone(&self.shared);
        let closed = tokio::task::spawn_blocking(move || {
            let spool = lock(&slot).take()?;
            publish(&spool, &shared);
            let left = spool.stats().pending;
            Some(spool.close().map(|()| left))
        })
        .await
        .ok()
        .flatten();
        persisted?;
        match closed {
            Some(Ok(left)) if left.items == 0 => Ok(()),
            Some(Ok(left)) => {
                tracing::info!(dir = %self.shared.dir.display(), items = left.items, records = left.records, "spool: left for the next start");
                Err(DrainError::new(
                    DrainErrorKind::Kept,
                    format!(
                        "{} items in {} requests are kept in the spool at {} for the next start",
                        left.items,
                        left.records,
                        self.shared.dir.display()
                    ),
                )
                .with_items(left.items))
            }
            Some(Err(e)) => Err(DrainError::new(DrainErrorKind::Storage, e)),
            None => Ok(()),
        }
    }
}

impl<S: Service> Drop for SpooledDrain<S> {
    /// Dropped without `close` (a sink aborted at its deadline): the sender
    /// stops; what was appended stays with the OS and is delivered by the
    /// next start (cursor moves since its last write are delivered again).
    fn drop(&mut self) {
        self.stop.cancel();
        // Release the directory's lock now unless a blocking call holds the
        // spool (then the last of those releases it).
        if let Ok(mut spool) = self.slot.try_lock() {
            spool.take();
        }
    }
}

impl<S: Service, P: Into<S::Point> + Send + 'static> SinkDrain<P> for SpooledDrain<S> {
    async fn write_batch(&mut self, batch: Vec<P>) -> Result<(), DrainError> {
        self.write(batch).await;
        Ok(())
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        self.persist().await
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        self.shut().await
    }
}

/// The task that delivers the spool's records, in order.
struct Sender<S: Service> {
    engine: OtlpDrain<S>,
    slot: Slot,
    shared: Arc<SpoolShared>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    outcomes_tx: mpsc::UnboundedSender<(u64, Outcome)>,
    outcomes: mpsc::UnboundedReceiver<(u64, Outcome)>,
    /// Records sent and not answered yet, by sequence number (their payload
    /// for a re-send).
    in_flight: HashMap<u64, Record>,
    /// Records whose request ran out of retry budget, to send again.
    retry: BTreeMap<u64, Record>,
    retry_at: Option<Instant>,
    backoff: Duration,
    window: usize,
}

impl<S: Service> Sender<S> {
    async fn run(mut self) {
        let mut ready = Vec::new();
        loop {
            while let Ok(o) = self.outcomes.try_recv() {
                ready.push(o);
            }
            if !ready.is_empty() {
                self.settle(std::mem::take(&mut ready)).await;
            }
            if self.stop.is_cancelled() {
                break;
            }
            if self.send_some().await {
                continue;
            }
            let retry_at = self.retry_at;
            // Biased: a stop wins; outcomes before new work, so that the
            // cursor moves (and `Delivered` waits return) first.
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                Some(o) = self.outcomes.recv() => ready.push(o),
                () = self.wake.notified() => {}
                () = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {}
            }
        }
        self.finish().await;
    }

    /// Settles what the collector answered; keeps for a re-send what ran
    /// out of retry budget.
    async fn settle(&mut self, outcomes: Vec<(u64, Outcome)>) {
        let mut done = Vec::new();
        let mut kept = Vec::new();
        for (seq, outcome) in outcomes {
            let Some(record) = self.in_flight.remove(&seq) else { continue };
            match outcome {
                Outcome::Acked => {
                    self.backoff = FIRST_BACKOFF;
                    done.push((seq, record.items));
                }
                Outcome::Rejected { error, .. } | Outcome::Failed(error) => {
                    self.shared.record_failure(error);
                    done.push((seq, record.items));
                }
                Outcome::Kept(_) => kept.push(record),
                // The engine is gone: the record stays on disk.
                Outcome::Uncounted => {}
            }
        }
        if done.is_empty() && kept.is_empty() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let seqs: Vec<u64> = kept.iter().map(|r| r.seq).collect();
        let settled = blocking(&self.slot, &self.shared, move |spool| {
            for (seq, items) in done {
                match spool.settle(seq) {
                    Ok(true) => {}
                    // Evicted while in flight: its outcome, counted by the
                    // engine, resolves it.
                    Ok(false) => {
                        shared.evicted_in_flight_resolved.fetch_add(u64::from(items), Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "spool: cursor not written; settled records may be sent again")
                    }
                }
            }
            seqs.iter().map(|&seq| spool.is_pending(seq)).collect::<Vec<bool>>()
        })
        .await;
        let Some(pending) = settled else {
            self.stop.cancel();
            return;
        };
        for (record, pending) in kept.into_iter().zip(pending) {
            if !pending {
                // Evicted while in flight, and not delivered: lost.
                self.lose_evicted(u64::from(record.items));
                continue;
            }
            self.retry.insert(record.seq, record);
            if self.retry_at.is_none() {
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
        // The counters above changed after the blocking call published:
        // publish again.
        blocking(&self.slot, &self.shared, |_| ()).await;
    }

    /// Counts `items` of records evicted in flight, not delivered.
    fn lose_evicted(&self, items: u64) {
        self.shared.evicted_in_flight_lost.fetch_add(items, Ordering::Relaxed);
        self.shared.evicted_in_flight_resolved.fetch_add(items, Ordering::Relaxed);
    }

    /// Sends what may go now; whether anything went.
    async fn send_some(&mut self) -> bool {
        let room = self.window.saturating_sub(self.in_flight.len());
        if room == 0 {
            return false;
        }
        // A backoff (after an outage, or a read error) holds everything
        // back until it ends; then it is cleared, so that it never fires
        // again from the past.
        if let Some(at) = self.retry_at {
            if at > Instant::now() {
                return false;
            }
            self.retry_at = None;
        }
        if !self.retry.is_empty() {
            let mut again = Vec::new();
            while again.len() < room {
                let Some((_, record)) = self.retry.pop_first() else { break };
                again.push(record);
            }
            let seqs: Vec<u64> = again.iter().map(|r| r.seq).collect();
            let pending = blocking(&self.slot, &self.shared, move |spool| {
                seqs.iter().map(|&seq| spool.is_pending(seq)).collect::<Vec<bool>>()
            })
            .await
            .unwrap_or_default();
            let mut sent = false;
            for (record, pending) in again.into_iter().zip(pending) {
                if !pending {
                    // Evicted from the full spool while it waited.
                    self.lose_evicted(u64::from(record.items));
                    continue;
                }
                self.shared.update(|s| s.redelivered += u64::from(record.items));
                self.send(record).await;
                sent = true;
            }
            return sent;
        }
        let records = blocking(&self.slot, &self.shared, move |spool| spool.next_unsent(room)).await;
        let records = match records {
            Some(Ok(records)) => records,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "spool: cannot read records; retrying after a backoff");
                self.retry_at = Some(Instant::now() + self.backoff);
                return false;
            }
            None => {
                self.stop.cancel();
                return false;
            }
        };
        let sent = !records.is_empty();
        for record in records {
            if record.resent {
                self.shared.update(|s| s.resent += u64::from(record.items));
            }
            self.send(record).await;
        }
        sent
    }

    async fn send(&mut self, record: Record) {
        let tx = self.outcomes_tx.clone();
        let seq = record.seq;
        let payload: Bytes = record.payload.clone();
        self.engine
            .send_encoded(payload, u64::from(record.items), true, move |outcome| {
                let _ = tx.send((seq, outcome));
            })
            .await;
        self.in_flight.insert(seq, record);
    }

    /// At a stop: the answers already in are settled; requests still out
    /// are abandoned (their records stay on disk, uncounted by the engine),
    /// and a record whose segment was evicted meanwhile is counted lost.
    async fn finish(mut self) {
        let mut ready = Vec::new();
        while let Ok(o) = self.outcomes.try_recv() {
            ready.push(o);
        }
        self.settle(ready).await;
        let Sender { engine, slot, shared, in_flight, retry, .. } = self;
        drop(engine);
        let held: Vec<(u64, u32)> = in_flight.values().chain(retry.values()).map(|r| (r.seq, r.items)).collect();
        let lost_shared = Arc::clone(&shared);
        blocking(&slot, &shared, move |spool| {
            let lost: u64 =
                held.iter().filter(|(seq, _)| !spool.is_pending(*seq)).map(|(_, items)| u64::from(*items)).sum();
            lost_shared.evicted_in_flight_lost.fetch_add(lost, Ordering::Relaxed);
        })
        .await;
    }
}
