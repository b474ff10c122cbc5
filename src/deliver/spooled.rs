//! What a spooled drain reports: [`SpoolStats`], and the [`SpoolHandle`]
//! that reads them and waits for the `Delivered` level.

use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::sink::{DrainError, Unreported};
use crate::tls::ConnectError;

/// The spool's counters, in items (metric data points, spans or log
/// records), since the drain opened its directory. With the delivery
/// engine's [`DeliveryStats`](super::DeliveryStats) they make an exact
/// account, once nothing is in flight (after a flush that waited for
/// `Delivered`, or after shutdown):
///
/// ```text
/// written + replayed == export.acked + export.rejected + export.failed + spool.dropped() + spool.spooled
/// ```
///
/// where `written` is what the drain was given (behind a
/// [`BackgroundSink`](crate::BackgroundSink), its
/// [`SinkStats::written`](crate::sink::SinkStats::written)). A record in
/// flight is in `spooled` until its request settles. What an earlier
/// process left damaged or too old is in `lost_at_open`, outside the
/// account: it was counted, if at all, by that process.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpoolStats {
    /// Items an earlier process left in the spool, found at open: delivered
    /// first, in order.
    pub replayed: u64,
    /// Items sent again that an earlier process had sent already, without
    /// the answer reaching its cursor (delivery is at least once).
    pub resent: u64,
    /// Items sent again in this process after their request's retry
    /// budget ran out (a collector outage): they stayed on disk meanwhile.
    pub redelivered: u64,
    /// Now: items in the spool not settled yet (unsent, in flight, or
    /// waiting out an outage). Left for the next start at shutdown.
    pub spooled: u64,
    /// Items the spool refused: full under
    /// [`FullPolicy::DropNewest`](crate::config::FullPolicy::DropNewest), or
    /// a request larger than the spool's bound.
    pub dropped_full: u64,
    /// Items deleted unsent by
    /// [`FullPolicy::EvictOldest`](crate::config::FullPolicy::EvictOldest)
    /// (and items in flight whose segment was evicted and whose request then
    /// did not come through).
    pub evicted: u64,
    /// Items dropped unsent because they were older than the age bound.
    pub expired: u64,
    /// Items dropped because their record failed its checksum when read
    /// back.
    pub damaged: u64,
    /// Items the disk refused (ENOSPC, EFBIG) or that failed to be written:
    /// none of their bytes stayed.
    pub write_failed: u64,
    /// Items of an earlier process found at open damaged (a torn end, a
    /// failed checksum) or older than the age bound. Outside the account.
    pub lost_at_open: u64,
    /// Records of an earlier process found at open damaged or missing,
    /// whose item count is unknown.
    pub lost_records_unknown: u64,
    /// Now: bytes in the spool's segment files.
    pub bytes_on_disk: u64,
    /// Completed fsyncs of the spool (`Persisted` flushes, and shutdown).
    pub syncs: u64,
}

impl SpoolStats {
    /// Every item the spool lost in this process, all causes:
    /// `dropped_full + evicted + expired + damaged + write_failed`.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.evicted + self.expired + self.damaged + self.write_failed
    }
}

/// The counts behind a `Delivered` wait that did not complete: how many of
/// its items are not settled, and how many of those are safe on disk.
pub(crate) type PendingQuery = dyn Fn(u64) -> (u64, u64) + Send + Sync;

/// What a spooled drain shares with its handles and its sender.
pub(crate) struct SpoolShared {
    pub(crate) dir: PathBuf,
    pub(crate) stats: Mutex<SpoolStats>,
    /// Every record at or below this sequence number is settled
    /// (acknowledged, rejected, failed for good, or dropped).
    pub(crate) settled: watch::Sender<u64>,
    /// Items in flight whose segment the full spool evicted, their outcome
    /// not known yet: the cursor has passed them, so a `Delivered` wait
    /// waits for this to be zero too.
    pub(crate) unresolved: watch::Sender<u64>,
    /// The last record appended before the latest completed `Persisted`
    /// flush.
    pub(crate) flushed_through: AtomicU64,
    /// Every record at or below this one is fsynced.
    pub(crate) durable_through: AtomicU64,
    /// Delivery failures (rejections, permanent failures, losses to the
    /// spool's bounds) not yet reported by a `Delivered` wait.
    pub(crate) failures: Mutex<Unreported>,
    /// Items in flight whose segment the full spool evicted and whose
    /// request then did not come through (kept, or abandoned at a stop).
    pub(crate) evicted_in_flight_lost: AtomicU64,
    /// Items in flight whose segment the full spool evicted and whose
    /// outcome is known since (acked, rejected, failed: the engine counted
    /// them; or lost, in `evicted_in_flight_lost`). Until then they count
    /// as spooled.
    pub(crate) evicted_in_flight_resolved: AtomicU64,
    /// `(waiting, persisted)` items at or below a sequence number: a
    /// blocking call (it takes the spool's lock).
    pub(crate) pending: Box<PendingQuery>,
}

impl SpoolShared {
    pub(crate) fn record_failure(&self, failure: DrainError) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).record(failure);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut SpoolStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

impl fmt::Debug for SpoolShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolShared")
            .field("dir", &self.dir)
            .field("settled", &*self.settled.borrow())
            .field("flushed_through", &self.flushed_through)
            .finish_non_exhaustive()
    }
}

/// Reads a spooled drain's counters and waits for the `Delivered` level,
/// from anywhere, also after the drain was moved into a sink.
///
/// A spooled drain's [`flush_durable`](crate::SinkDrain::flush_durable) is
/// the `Persisted` level: a sink flush that returns `Ok` means everything
/// before it is fsynced in the spool. [`delivered`](Self::delivered) waits
/// on top of it until the collector settled those records too.
#[derive(Debug, Clone)]
pub struct SpoolHandle(pub(crate) Arc<SpoolShared>);

impl SpoolHandle {
    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// A snapshot of the spool's counters.
    pub fn stats(&self) -> SpoolStats {
        *self.0.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sequence number of the last record written before the latest
    /// completed `Persisted` flush: what [`delivered`](Self::delivered)
    /// waits for.
    pub fn flushed_through(&self) -> u64 {
        self.0.flushed_through.load(Ordering::Acquire)
    }

    /// Every record at or below this sequence number is settled.
    pub fn settled_through(&self) -> u64 {
        *self.0.settled.borrow()
    }

    /// Waits until every record persisted by the latest completed
    /// `Persisted` flush is settled, at most `timeout`. Call it after a sink
    /// flush returned `Ok`: together they are the `Delivered` level. (It may
    /// wait for a later flush's records too, if one completed meanwhile.)
    ///
    /// # Errors
    ///
    /// [`NotDelivered::TimedOut`] with how many items still wait and how
    /// many of those are safe on disk; [`NotDelivered::Failed`] with the
    /// first delivery failure since the previous wait (items rejected or
    /// failed for good, or lost to the spool's bounds).
    pub async fn delivered(&self, timeout: Duration) -> Result<(), NotDelivered> {
        self.wait_delivered(self.flushed_through(), timeout).await
    }

    /// As [`delivered`](Self::delivered), for the records at or below
    /// `through`.
    ///
    /// # Errors
    ///
    /// As [`delivered`](Self::delivered).
    pub async fn wait_delivered(&self, through: u64, timeout: Duration) -> Result<(), NotDelivered> {
        let (mut settled, mut unresolved) = (self.0.settled.subscribe(), self.0.unresolved.subscribe());
        let wait = async {
            let _ = settled.wait_for(|settled| *settled >= through).await;
            let _ = unresolved.wait_for(|items| *items == 0).await;
        };
        let timed_out = tokio::time::timeout(timeout, wait).await.is_err();
        if timed_out {
            let shared = Arc::clone(&self.0);
            let (waiting, persisted) =
                tokio::task::spawn_blocking(move || (shared.pending)(through)).await.unwrap_or((0, 0));
            return Err(NotDelivered::TimedOut { waiting, persisted, timeout, dir: self.0.dir.clone() });
        }
        let failure = self.0.failures.lock().unwrap_or_else(|p| p.into_inner()).take();
        failure.map_or(Ok(()), |f| Err(NotDelivered::Failed(f)))
    }
}

/// Why a `Delivered` wait did not return `Ok`.
#[non_exhaustive]
#[derive(Debug)]
pub enum NotDelivered {
    /// The collector had not settled everything in time. Nothing is lost:
    /// the items stay in the spool and are delivered later, or by the next
    /// start.
    TimedOut {
        /// Items not settled yet.
        waiting: u64,
        /// Of `waiting`, the items fsynced in the spool.
        persisted: u64,
        /// How long the wait was.
        timeout: Duration,
        /// The spool's directory.
        dir: PathBuf,
    },
    /// Items were rejected or failed for good (or lost to the spool's
    /// bounds) since the previous wait: the first failure, with the count of
    /// those after it.
    Failed(DrainError),
}

impl fmt::Display for NotDelivered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut { waiting, persisted, timeout, dir } => write!(
                f,
                "{waiting} items not delivered within {timeout:?}; {persisted} of them are persisted in the spool at {} and will be delivered later",
                dir.display()
            ),
            Self::Failed(e) => write!(f, "delivery from the spool failed: {e}"),
        }
    }
}

impl Error for NotDelivered {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::TimedOut { .. } => None,
            Self::Failed(e) => Some(e),
        }
    }
}

/// Why a spooled drain could not start. Each names the directory.
#[non_exhaustive]
#[derive(Debug)]
pub enum SpoolOpenError {
    /// The transport could not be prepared (a TLS file).
    Connect(ConnectError),
    /// Another process, or another drain of this one, holds the directory
    /// (its lock file): one process per spool directory.
    Locked {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says.
        source: Box<dyn Error + Send + Sync>,
    },
    /// The directory belongs to another user, is writable by group or
    /// others, or is not a directory: telemetry is not kept there.
    Unsafe {
        /// The directory.
        dir: PathBuf,
        /// Its owner and mode.
        source: Box<dyn Error + Send + Sync>,
    },
    /// Anything else: a file that cannot be created, read or locked, an
    /// option out of range.
    Other {
        /// The directory.
        dir: PathBuf,
        /// The operating system's or the option's error.
        source: Box<dyn Error + Send + Sync>,
    },
}

impl SpoolOpenError {
    /// The spool's directory, unless the failure was the transport's.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Self::Connect(_) => None,
            Self::Locked { dir, .. } | Self::Unsafe { dir, .. } | Self::Other { dir, .. } => Some(dir),
        }
    }
}

impl fmt::Display for SpoolOpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => fmt::Display::fmt(e, f),
            // The storage's message names the directory and what is wrong.
            Self::Locked { source, .. } | Self::Unsafe { source, .. } => fmt::Display::fmt(source, f),
            Self::Other { dir, source } => write!(f, "spool at {}: {source}", dir.display()),
        }
    }
}

impl Error for SpoolOpenError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Connect(e) => e.source(),
            Self::Locked { source, .. } | Self::Unsafe { source, .. } | Self::Other { source, .. } => source.source(),
        }
    }
}
