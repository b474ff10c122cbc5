//! The crate's in-process receiver on a tokio runtime of its own, so that a
//! test may block its own thread or runtime (as `force_flush` does) without
//! stopping the receiver that must answer.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use otlp_sink::receiver::{Receiver, ReceiverCounts, Reply};
use otlp_sink::{otlp::Resource, Signal};

/// A [`Receiver`] serving from its own runtime. Callable from any thread,
/// inside a tokio runtime or not.
pub struct BackgroundReceiver {
    receiver: Option<Receiver>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BackgroundReceiver {
    /// Starts a receiver on a free loopback port.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-receiver")
            .enable_all()
            .build()
            .expect("receiver runtime");
        let receiver = run_on(&runtime, Receiver::start()).expect("receiver starts");
        Self { receiver: Some(receiver), runtime: Some(runtime) }
    }

    fn receiver(&self) -> &Receiver {
        self.receiver.as_ref().expect("running")
    }

    /// The gRPC endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.receiver().endpoint()
    }

    /// The OTLP/HTTP base endpoint, `http://127.0.0.1:PORT`.
    pub fn http_endpoint(&self) -> String {
        self.receiver().http_endpoint()
    }

    /// What it counted so far.
    pub fn counts(&self) -> ReceiverCounts {
        self.receiver().counts()
    }

    /// See [`Receiver::script`].
    pub fn script(&self, signal: Signal, replies: impl IntoIterator<Item = Reply>) {
        self.receiver().script(signal, replies);
    }

    /// See [`Receiver::set_default`].
    pub fn set_default(&self, signal: Signal, reply: Reply) {
        self.receiver().set_default(signal, reply);
    }

    /// See [`Receiver::last_header`].
    pub fn last_header(&self, name: &str) -> Option<String> {
        self.receiver().last_header(name)
    }

    /// See [`Receiver::resources`].
    pub fn resources(&self, signal: Signal) -> Vec<Resource> {
        self.receiver().resources(signal)
    }

    /// See [`Receiver::scope_names`].
    pub fn scope_names(&self, signal: Signal) -> Vec<String> {
        self.receiver().scope_names(signal)
    }

    /// Waits (blocking this thread) until `condition` holds or `timeout`
    /// passes; the error shows the last counts. Woken by the receiver's own
    /// count updates ([`Receiver::wait_until`]), not by polling.
    pub fn wait_until(
        &self,
        timeout: Duration,
        condition: impl Fn(&ReceiverCounts) -> bool + Send + Sync,
    ) -> Result<ReceiverCounts, String> {
        let handle = self.runtime.as_ref().expect("running").handle();
        // `block_on` on a handle panics inside a runtime; a scoped plain
        // thread can block on it from anywhere and still borrow the receiver.
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    handle
                        .block_on(self.receiver().wait_until(timeout, condition))
                        .map_err(|counts| format!("not reached within {timeout:?}: {counts:?}"))
                })
                .join()
                .expect("the waiting thread")
        })
    }
}

impl Drop for BackgroundReceiver {
    fn drop(&mut self) {
        drop(self.receiver.take());
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime inside async code panics; this never blocks.
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` on `runtime` and waits for it on a std channel: works from
/// inside another runtime, where `block_on` would panic.
fn run_on<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("the receiver runtime answers")
}
