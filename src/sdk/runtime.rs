//! The export runtime: a tokio runtime that belongs to this crate, on threads
//! of its own, where the sink actors, the gRPC channels and the request tasks
//! live.
//!
//! Why it exists: the SDK calls `force_flush` and `shutdown` synchronously,
//! from wherever the application happens to be: a tokio worker (of a
//! multi-thread runtime, maybe with one worker), the only thread of a
//! `current_thread` runtime, a plain thread, or a `Drop` at the end of `main`.
//! The call has to block that thread until the collector has answered. If
//! the work that produces the answer needed that same thread (because the
//! actor or the gRPC connection lived on the caller's runtime), the call
//! would wait on itself: the deadlocks of opentelemetry-rust #2583, #3176 and
//! #3356.
//!
//! Here the waiting and the working never share a thread:
//!
//! - every task the export needs runs on this runtime's own threads, named
//!   `otlp-sink`, which no caller can occupy;
//! - a caller hands its future to this runtime ([`ExportRuntime::run`]) and
//!   waits on a plain `std` channel with a timeout, which needs no runtime
//!   and so works on any thread;
//! - a call made *from* one of this runtime's threads (a callback that would
//!   wait on the runtime it blocks) is refused at once instead of waiting;
//! - the runtime is never dropped in a way that blocks: it is stopped with
//!   `shutdown_background`, which is allowed inside async code, after the
//!   sinks have delivered what they held.
//!
//! Every thread of the runtime runs inside OpenTelemetry's suppression scope,
//! so telemetry that this crate's own code emits there (its `tracing`
//! warnings, seen by `opentelemetry-appender-tracing`; spans of the gRPC
//! stack, seen by `tracing-opentelemetry`) is dropped by the SDK instead of
//! being exported back into this exporter.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::ContextGuard;
use tokio::runtime::{Handle, Runtime};

thread_local! {
    /// Set on the threads of every export runtime.
    static ON_EXPORT_RUNTIME: Cell<bool> = const { Cell::new(false) };
    /// The suppression scope entered when the thread started; dropped when
    /// it stops, before thread-local storage is torn down.
    static SUPPRESSION: RefCell<Option<ContextGuard>> = const { RefCell::new(None) };
}

/// Why [`ExportRuntime::run`] returned no output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunError {
    /// The future did not finish in time; it was cancelled.
    TimedOut,
    /// The runtime is stopped: the future was never run.
    Stopped,
    /// Called from a thread of an export runtime, which would wait on itself.
    OnExportRuntime,
}

/// A multi-thread tokio runtime on threads of its own. See the module docs.
pub(crate) struct ExportRuntime {
    handle: Handle,
    /// `None` once stopped.
    runtime: Mutex<Option<Runtime>>,
}

impl fmt::Debug for ExportRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self.runtime.lock().map(|r| r.is_some()).unwrap_or(false);
        f.debug_struct("ExportRuntime").field("running", &running).finish_non_exhaustive()
    }
}

impl ExportRuntime {
    /// Starts the runtime with `worker_threads` workers (at least one).
    /// Callable from anywhere, async code included: building a runtime does
    /// not block.
    pub(crate) fn start(worker_threads: usize) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            // Blocking threads run metric collections (and DNS lookups): a
            // few are plenty, and each is a thread of this runtime.
            .max_blocking_threads(4)
            .thread_name("otlp-sink")
            .on_thread_start(|| {
                ON_EXPORT_RUNTIME.set(true);
                SUPPRESSION.set(Some(opentelemetry::Context::enter_telemetry_suppressed_scope()));
            })
            .on_thread_stop(|| {
                drop(SUPPRESSION.take());
            })
            .enable_all()
            .build()?;
        Ok(Self { handle: runtime.handle().clone(), runtime: Mutex::new(Some(runtime)) })
    }

    /// A handle to spawn on the runtime from any thread.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the calling thread belongs to an export runtime.
    #[inline]
    pub(crate) fn on_current_thread() -> bool {
        ON_EXPORT_RUNTIME.get()
    }

    /// Runs `future` on the runtime and blocks the calling thread until it
    /// finishes or `timeout` passes. The caller's thread only waits on a
    /// `std` channel: it may be any thread, in a tokio runtime or not.
    ///
    /// On a timeout the future is cancelled (dropped at its next await).
    pub(crate) fn run<F>(&self, future: F, timeout: Duration) -> Result<F::Output, RunError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if Self::on_current_thread() {
            return Err(RunError::OnExportRuntime);
        }
        let (done, result) = mpsc::sync_channel(1);
        // After a stop, `spawn` drops the future unrun, and with it `done`.
        let task = self.handle.spawn(async move {
            let _ = done.send(future.await);
        });
        match result.recv_timeout(timeout) {
            Ok(output) => Ok(output),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                task.abort();
                Err(RunError::TimedOut)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(RunError::Stopped),
        }
    }

    /// Stops the runtime without waiting for its tasks: whatever still runs
    /// is dropped at its next await. Callable from anywhere, async code
    /// included. Idempotent.
    pub(crate) fn stop(&self) {
        let runtime = self.runtime.lock().map(|mut r| r.take()).unwrap_or_else(|poisoned| poisoned.into_inner().take());
        if let Some(runtime) = runtime {
            runtime.shutdown_background();
        }
    }
}

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_the_output_from_a_plain_thread() {
        let rt = ExportRuntime::start(1).unwrap();
        let name = rt.run(async { std::thread::current().name().map(str::to_owned) }, Duration::from_secs(5));
        assert_eq!(name, Ok(Some("otlp-sink".to_owned())));
        assert!(!ExportRuntime::on_current_thread());
    }

    #[test]
    fn the_runtime_threads_are_marked_and_suppress_telemetry() {
        let rt = ExportRuntime::start(1).unwrap();
        let seen = rt.run(
            async { (ExportRuntime::on_current_thread(), opentelemetry::Context::is_current_telemetry_suppressed()) },
            Duration::from_secs(5),
        );
        assert_eq!(seen, Ok((true, true)));
        let blocking = rt.run(
            async {
                tokio::task::spawn_blocking(|| {
                    (ExportRuntime::on_current_thread(), opentelemetry::Context::is_current_telemetry_suppressed())
                })
                .await
                .unwrap()
            },
            Duration::from_secs(5),
        );
        assert_eq!(blocking, Ok((true, true)), "blocking-pool threads too");
        assert!(!opentelemetry::Context::is_current_telemetry_suppressed(), "not the caller's thread");
    }

    #[test]
    fn a_call_from_the_runtime_itself_is_refused_instead_of_waiting_on_itself() {
        let rt = std::sync::Arc::new(ExportRuntime::start(1).unwrap());
        let inner = std::sync::Arc::clone(&rt);
        let nested = rt.run(async move { inner.run(async { 1 }, Duration::from_secs(60)) }, Duration::from_secs(5));
        assert_eq!(nested, Ok(Err(RunError::OnExportRuntime)));
    }

    #[test]
    fn a_future_that_does_not_finish_is_cancelled_at_the_timeout() {
        let rt = ExportRuntime::start(1).unwrap();
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        struct Notify(mpsc::Sender<()>);
        impl Drop for Notify {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let notify = Notify(dropped_tx);
        let started = std::time::Instant::now();
        let result = rt.run(
            async move {
                let _notify = notify;
                std::future::pending::<()>().await
            },
            Duration::from_millis(100),
        );
        assert_eq!(result, Err(RunError::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(100));
        dropped_rx.recv_timeout(Duration::from_secs(5)).expect("the future was dropped after the timeout");
    }

    #[test]
    fn after_stop_nothing_runs_and_callers_do_not_wait() {
        let rt = ExportRuntime::start(1).unwrap();
        rt.stop();
        rt.stop();
        assert_eq!(rt.run(async { 1 }, Duration::from_secs(60)), Err(RunError::Stopped));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn it_can_be_started_used_and_dropped_inside_async_code() {
        // Dropping a tokio runtime inside async code panics; this one must not.
        let rt = ExportRuntime::start(1).unwrap();
        assert_eq!(rt.run(async { 2 }, Duration::from_secs(5)), Ok(2));
        drop(rt);
    }
}
