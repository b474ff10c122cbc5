//! One signal's pipe: its sink and its handle, the counters around it, and
//! how its flushes and shutdowns report what was not delivered.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::{BuildError, Operation, SdkError, Undelivered, Waiting};
use super::runtime::{ExportRuntime, RunError};
use super::stats::PipelineStats;
use crate::{
    config::FlushLevel,
    deliver::{DeliveryStatsHandle, NotDelivered, SpoolHandle},
    sink::{DrainError, DrainErrorKind, FlushError, ShutdownError, TryPushError},
    BackgroundSink, Signal, SinkConfig, SinkDrain, SinkHandle,
};

/// The deadline a sink gets inside an operation bounded by `timeout`: a
/// little less, so that its own report (with the count of items it could
/// not deliver) arrives before the caller stops waiting.
pub(crate) fn inner_deadline(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(Duration::from_millis(100)))
}

/// Shuts a sink down: its queue is closed, everything in it written, and the
/// client waits for every answer, all within `deadline`. What the sink says
/// of an unclean end is only its first failure: the pipe's report (see
/// [`SignalPipe::report`]) says what was lost.
async fn shutdown_sink(handle: SinkHandle, deadline: Duration) -> Option<DrainError> {
    match handle.shutdown_timeout(deadline).await {
        Ok(()) | Err(ShutdownError::TimedOut { .. }) => None,
        Err(ShutdownError::Drain { source, .. }) => Some(source),
        Err(ShutdownError::ActorFailed(e)) => {
            Some(DrainError::new(DrainErrorKind::Other, format!("the export task failed: {e}")))
        }
    }
}

/// What a signal's errors are computed from: its counters, and how much of
/// them was already reported. Cloned into the futures that run on the export
/// runtime.
struct Ledger<T> {
    signal: Signal,
    sink: BackgroundSink<T>,
    export: DeliveryStatsHandle,
    /// The signal's spool, when it has one.
    spool: Option<SpoolHandle>,
    refused_after_shutdown: Arc<AtomicU64>,
    /// What earlier flushes and shutdowns reported as not delivered: each
    /// item is reported by exactly one of them.
    reported: Arc<Mutex<Undelivered>>,
}

// Not derived: `T` need not be `Clone`.
impl<T> Clone for Ledger<T> {
    fn clone(&self) -> Self {
        Self {
            signal: self.signal,
            sink: self.sink.clone(),
            export: self.export.clone(),
            spool: self.spool.clone(),
            refused_after_shutdown: Arc::clone(&self.refused_after_shutdown),
            reported: Arc::clone(&self.reported),
        }
    }
}

impl<T: Send + 'static> Ledger<T> {
    fn stats(&self, suppressed: u64) -> PipelineStats {
        PipelineStats {
            sink: self.sink.stats(),
            export: self.export.snapshot(),
            refused_after_shutdown: self.refused_after_shutdown.load(Ordering::Relaxed),
            suppressed,
            spool: self.spool.as_ref().map(SpoolHandle::stats),
        }
    }

    /// `Ok` if nothing was lost since the last report; else what was, with
    /// `cause`, the first failure the collector or the transport gave.
    ///
    /// A spooled drain's close that left items on disk says so with a
    /// [`DrainErrorKind::Kept`] cause: not a loss. A shutdown reports what
    /// the spool holds unsettled as [`Undelivered::kept`](super::Undelivered::kept)
    /// (also when its deadline cut the close short: those records are on
    /// disk for the next start).
    pub(crate) fn report(&self, operation: Operation, cause: Option<DrainError>) -> Result<(), SdkError> {
        let now = self.stats(0).undelivered();
        let cause = cause.filter(|c| c.kind() != DrainErrorKind::Kept || c.later_failures() > 0);
        let mut lost = {
            let mut reported = self.reported.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let lost = now.since(&reported);
            *reported = now;
            lost
        };
        if operation == Operation::Shutdown {
            lost.kept = self.spool.as_ref().map_or(0, |s| s.stats().spooled);
        }
        if lost.total() == 0 && cause.is_none() {
            return Ok(());
        }
        Err(SdkError::NotDelivered { signal: self.signal, operation, lost, cause })
    }
}

/// The right to shut one pipe down, taken once.
pub(crate) struct ShutdownJob<T> {
    handle: SinkHandle,
    ledger: Ledger<T>,
}

impl<T: Send + 'static> ShutdownJob<T> {
    /// Shuts the sink down within `deadline` and reports what was lost
    /// since the last flush.
    pub(crate) async fn run(self, deadline: Duration) -> Result<(), SdkError> {
        let cause = shutdown_sink(self.handle, deadline).await;
        self.ledger.report(Operation::Shutdown, cause)
    }
}

/// One signal's sink and the counters around it.
pub(crate) struct SignalPipe<T> {
    pub(crate) sink: BackgroundSink<T>,
    /// `None` once the sink is being or has been shut down.
    handle: Mutex<Option<SinkHandle>>,
    ledger: Ledger<T>,
    /// Spans and records made on the export runtime's threads, not queued.
    suppressed: AtomicU64,
    /// What a `force_flush` waits for (with a spool; without one both
    /// levels are the same).
    level: FlushLevel,
    /// The flush timeout: a `Delivered` wait on the spool ends a little
    /// before it, so that it can say what is persisted.
    flush_timeout: Duration,
}

/// How a signal's pipe is made, besides its drain.
pub(crate) struct PipeSettings {
    pub(crate) export: DeliveryStatsHandle,
    pub(crate) spool: Option<SpoolHandle>,
    pub(crate) level: FlushLevel,
    pub(crate) flush_timeout: Duration,
    pub(crate) sink: SinkConfig,
}

impl<T: Send + 'static> SignalPipe<T> {
    pub(crate) fn start<D: SinkDrain<T>>(
        signal: Signal,
        drain: D,
        settings: PipeSettings,
        runtime: &ExportRuntime,
    ) -> Result<Self, BuildError> {
        let PipeSettings { export, spool, level, flush_timeout, sink: config } = settings;
        let (sink, handle) = BackgroundSink::spawn_on(drain, config, CancellationToken::new(), runtime.handle())
            .map_err(|source| BuildError::Sink { signal, source })?;
        let ledger = Ledger {
            signal,
            sink: sink.clone(),
            export,
            spool,
            refused_after_shutdown: Arc::default(),
            reported: Arc::default(),
        };
        Ok(Self { sink, handle: Mutex::new(Some(handle)), ledger, suppressed: AtomicU64::new(0), level, flush_timeout })
    }

    /// Queues `item` without waiting. A full queue is a drop, counted by the
    /// sink; a closed one a refusal, counted here. Returns whether it was
    /// queued.
    #[inline]
    pub(crate) fn push(&self, item: T) -> bool {
        match self.sink.try_push(item) {
            Ok(()) => true,
            Err(TryPushError::Closed(_)) => {
                self.count_refused(1);
                false
            }
            Err(_) => false,
        }
    }

    /// Counts a refusal that happened outside [`push`](Self::push); the
    /// first one is logged.
    #[cold]
    pub(crate) fn count_refused(&self, items: u64) {
        let before = self.ledger.refused_after_shutdown.fetch_add(items, Ordering::Relaxed);
        if before == 0 && items > 0 {
            let signal = self.ledger.signal;
            tracing::warn!(
                "{} recorded after the OTLP exporter's {} pipeline shut down (by its shutdown, or because the \
                 OtlpExporter was dropped): refused, and counted in stats().{}.refused_after_shutdown",
                super::error::items(items, signal),
                signal.name(),
                signal.name(),
            );
        }
    }

    /// Counts an item made on the export runtime's own threads, dropped.
    pub(crate) fn count_suppressed(&self) {
        self.suppressed.fetch_add(1, Ordering::Relaxed);
    }

    /// The refusal counter, for the metric reader's pushes on the export runtime.
    pub(crate) fn refused_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.ledger.refused_after_shutdown)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.handle.lock().map(|h| h.is_none()).unwrap_or(true)
    }

    /// See [`Ledger::report`].
    pub(crate) fn report(&self, operation: Operation, cause: Option<DrainError>) -> Result<(), SdkError> {
        self.ledger.report(operation, cause)
    }

    /// The barrier at the pipe's flush level.
    pub(crate) fn barrier(&self) -> impl Future<Output = Result<(), SdkError>> + Send + 'static {
        self.barrier_at(self.level)
    }

    /// The barrier, as a future to run on the export runtime: `Ok` when
    /// every item queued before it is acknowledged (`Delivered`), or, with
    /// a spool, fsynced there (`Persisted`), and nothing was lost since the
    /// previous report. A `Delivered` wait on the spool that runs out of
    /// time says how many items are persisted and not yet delivered.
    pub(crate) fn barrier_at(&self, level: FlushLevel) -> impl Future<Output = Result<(), SdkError>> + Send + 'static {
        let ledger = self.ledger.clone();
        let timeout = self.flush_timeout;
        let deadline = tokio::time::Instant::now() + inner_deadline(timeout);
        let waiting = self.waiting_counts();
        async move {
            match ledger.sink.flush().await {
                Ok(()) => {}
                Err(FlushError::Drain { source, .. }) => return ledger.report(Operation::Flush, Some(source)),
                Err(_) => return Err(SdkError::AlreadyShutdown { signal: ledger.signal }),
            }
            let spool = match (&ledger.spool, level) {
                (Some(spool), FlushLevel::Delivered) => spool,
                _ => return ledger.report(Operation::Flush, None),
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match spool.delivered(left).await {
                Ok(()) => ledger.report(Operation::Flush, None),
                Err(NotDelivered::Failed(source)) => ledger.report(Operation::Flush, Some(source)),
                Err(NotDelivered::TimedOut { persisted, .. }) => {
                    let mut waiting = waiting();
                    waiting.persisted = persisted;
                    Err(SdkError::FlushTimedOut { signal: ledger.signal, timeout, waiting })
                }
            }
        }
    }

    /// What a flush still waits for, as a function to call later.
    fn waiting_counts(&self) -> impl Fn() -> Waiting + Send + 'static {
        let (sink, export) = (self.sink.clone(), self.ledger.export.clone());
        move || {
            let stats = export.snapshot();
            Waiting {
                queued: sink.stats().pending,
                requests_in_flight: stats.in_flight,
                outage: export.outage(),
                persisted: 0,
            }
        }
    }

    /// What a flush still waits for.
    pub(crate) fn waiting(&self) -> Waiting {
        self.waiting_counts()()
    }

    /// Runs the barrier at the pipe's level, waiting at most `timeout`.
    pub(crate) fn flush(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        match runtime.run(self.barrier(), timeout) {
            Ok(result) => result,
            Err(RunError::TimedOut) => {
                Err(SdkError::FlushTimedOut { signal: self.ledger.signal, timeout, waiting: self.waiting() })
            }
            Err(other) => Err(SdkError::from_run(other, self.ledger.signal, timeout)),
        }
    }

    fn take_handle(&self) -> Option<SinkHandle> {
        self.handle.lock().ok()?.take()
    }

    /// Takes the sink's handle, for the one caller that shuts the pipe
    /// down. `None` when already taken.
    pub(crate) fn take_shutdown_job(&self) -> Option<ShutdownJob<T>> {
        self.take_handle().map(|handle| ShutdownJob { handle, ledger: self.ledger.clone() })
    }

    /// Takes the sink's handle and returns the future that shuts it down
    /// within `deadline`. `None` when already taken.
    pub(crate) fn take_shutdown(
        &self,
        deadline: Duration,
    ) -> Option<impl Future<Output = Result<(), SdkError>> + Send + 'static> {
        self.take_shutdown_job().map(|job| job.run(deadline))
    }

    /// Shuts the sink down within `timeout`.
    ///
    /// # Errors
    ///
    /// [`SdkError::AlreadyShutdown`] on a second call.
    pub(crate) fn shutdown(&self, runtime: &ExportRuntime, timeout: Duration) -> Result<(), SdkError> {
        let signal = self.ledger.signal;
        let shutdown = self.take_shutdown(inner_deadline(timeout)).ok_or(SdkError::AlreadyShutdown { signal })?;
        runtime.run(shutdown, timeout).map_err(|e| SdkError::from_run(e, signal, timeout))?
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        self.ledger.stats(self.suppressed.load(Ordering::Relaxed))
    }
}
