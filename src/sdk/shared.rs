//! What an [`OtlpExporter`](super::OtlpExporter) and every adapter it hands
//! out share: the export runtime, one pipe per signal, the resources the
//! SDK set, and the settings resolved at build time.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::collect::{final_collection_then, Collector};
use super::drains::{LogItem, ResourceSlot};
use super::error::{Operation, SdkError, Waiting};
use super::pipe::{inner_deadline, SignalPipe};
use super::runtime::{ExportRuntime, RunError};
use super::stats::ExporterStats;
use crate::otlp::EncodedMetricPoint;
use crate::{
    config::{FlushLevel, TemporalityPreference},
    Signal,
};

/// A future of one signal's barrier or shutdown, boxed so that the three
/// signals' futures fit one list.
pub(crate) type Outcome = std::pin::Pin<Box<dyn Future<Output = Result<(), SdkError>> + Send>>;

/// The signals, in the order results are reported.
pub(crate) const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

/// Settings resolved at build time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) flush_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) temporality: TemporalityPreference,
    pub(crate) export_interval: Duration,
}

/// What the exporter and its adapters share.
pub(crate) struct ExporterState {
    pub(crate) runtime: ExportRuntime,
    pub(crate) metrics: SignalPipe<EncodedMetricPoint>,
    pub(crate) traces: SignalPipe<opentelemetry_sdk::trace::SpanData>,
    pub(crate) logs: SignalPipe<LogItem>,
    pub(crate) span_resource: Arc<ResourceSlot>,
    pub(crate) log_resource: Arc<ResourceSlot>,
    /// The metric readers handed out, for the final collection of a shutdown.
    pub(crate) collectors: Mutex<Vec<std::sync::Weak<Collector>>>,
    pub(crate) settings: Settings,
    /// Set once the runtime is stopped.
    pub(crate) stopped: AtomicBool,
}

impl fmt::Debug for ExporterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExporterState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ExporterState {
    /// One signal's barrier, waiting at most the flush timeout: what every
    /// adapter's `force_flush` does.
    pub(crate) fn flush(&self, signal: Signal) -> Result<(), SdkError> {
        let (runtime, timeout) = (&self.runtime, self.settings.flush_timeout);
        match signal {
            Signal::Metrics => self.metrics.flush(runtime, timeout),
            Signal::Traces => self.traces.flush(runtime, timeout),
            Signal::Logs => self.logs.flush(runtime, timeout),
        }
    }

    /// One signal's shutdown within `timeout`: what the span and log
    /// adapters' (and the push metric exporter's) `shutdown_with_timeout` does.
    pub(crate) fn shutdown(&self, signal: Signal, timeout: Duration) -> Result<(), SdkError> {
        match signal {
            Signal::Metrics => self.metrics.shutdown(&self.runtime, timeout),
            Signal::Traces => self.traces.shutdown(&self.runtime, timeout),
            Signal::Logs => self.logs.shutdown(&self.runtime, timeout),
        }
    }

    /// A flush of `signal` whose wait ended without an answer.
    pub(crate) fn flush_failed(&self, signal: Signal, err: RunError, timeout: Duration) -> SdkError {
        match err {
            RunError::TimedOut => SdkError::FlushTimedOut { signal, timeout, waiting: self.waiting(signal) },
            other => SdkError::from_run(other, signal, timeout),
        }
    }

    pub(crate) fn waiting(&self, signal: Signal) -> Waiting {
        match signal {
            Signal::Metrics => self.metrics.waiting(),
            Signal::Traces => self.traces.waiting(),
            Signal::Logs => self.logs.waiting(),
        }
    }

    /// For a signal shut down on its own: what it refused since it last reported.
    pub(crate) fn refusals_since_last_report(&self, signal: Signal) -> Result<(), SdkError> {
        match signal {
            Signal::Metrics => self.metrics.report(Operation::Flush, None),
            Signal::Traces => self.traces.report(Operation::Flush, None),
            Signal::Logs => self.logs.report(Operation::Flush, None),
        }
    }

    /// One open signal's barrier at `level` (`None`: the level the builder
    /// chose).
    pub(crate) fn pipe_barrier(&self, signal: Signal, level: Option<FlushLevel>) -> Option<Outcome> {
        let barrier: Outcome = match (signal, level) {
            (Signal::Metrics, None) if !self.metrics.is_shut_down() => Box::pin(self.metrics.barrier()),
            (Signal::Metrics, Some(l)) if !self.metrics.is_shut_down() => Box::pin(self.metrics.barrier_at(l)),
            (Signal::Traces, None) if !self.traces.is_shut_down() => Box::pin(self.traces.barrier()),
            (Signal::Traces, Some(l)) if !self.traces.is_shut_down() => Box::pin(self.traces.barrier_at(l)),
            (Signal::Logs, None) if !self.logs.is_shut_down() => Box::pin(self.logs.barrier()),
            (Signal::Logs, Some(l)) if !self.logs.is_shut_down() => Box::pin(self.logs.barrier_at(l)),
            _ => return None,
        };
        Some(barrier)
    }

    /// Shuts down every pipe still open, concurrently, within `timeout`.
    pub(crate) fn shutdown_pipes(&self, timeout: Duration) -> Result<(), SdkError> {
        let inner = inner_deadline(timeout);
        let collectors: Vec<Arc<Collector>> = match self.collectors.lock() {
            Ok(mut list) => std::mem::take(&mut *list).iter().filter_map(std::sync::Weak::upgrade).collect(),
            Err(_) => Vec::new(),
        };
        let metrics = self
            .metrics
            .take_shutdown_job()
            .map(|job| Box::pin(final_collection_then(collectors, inner, job)) as Outcome);
        let pending: Vec<(Signal, Outcome)> = [
            metrics.map(|f| (Signal::Metrics, f)),
            self.traces.take_shutdown(inner).map(|f| (Signal::Traces, Box::pin(f) as Outcome)),
            self.logs.take_shutdown(inner).map(|f| (Signal::Logs, Box::pin(f) as Outcome)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let Some(&(first, _)) = pending.first() else { return Ok(()) };
        let shutdowns = pending.into_iter().map(|(_, shutdown)| shutdown);
        // A timeout is reported under the first signal that was still open.
        let results = self
            .runtime
            .run(futures_util::future::join_all(shutdowns), timeout)
            .map_err(|e| SdkError::from_run(e, first, timeout))?;
        first_error(results)
    }

    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.runtime.stop();
    }

    pub(crate) fn stats(&self) -> ExporterStats {
        ExporterStats { metrics: self.metrics.stats(), traces: self.traces.stats(), logs: self.logs.stats() }
    }
}

impl Drop for ExporterState {
    /// The last handle is gone: deliver what the open sinks hold, within the
    /// shutdown timeout, then stop the runtime. The wait is on a `std`
    /// channel, so this is safe at the end of `main`, inside async code or
    /// not.
    fn drop(&mut self) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        if let Err(err) = self.shutdown_pipes(self.settings.shutdown_timeout) {
            tracing::warn!(error = %super::error::chain(&err), "shutdown of the OTLP exporter on drop was not clean");
        }
        self.stop();
    }
}

/// The first failure of `results`; the others are logged.
pub(crate) fn first_error(results: Vec<Result<(), SdkError>>) -> Result<(), SdkError> {
    let mut first = None;
    for result in results {
        if let Err(err) = result {
            if first.is_none() {
                first = Some(err);
            } else {
                tracing::warn!(error = %super::error::chain(&err), "another signal failed too");
            }
        }
    }
    first.map_or(Ok(()), Err)
}
