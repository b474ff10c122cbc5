//! A scripted, recording `SinkDrain` for the sink's contract tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use otlp_sink::{
    sink::{DrainError, DrainErrorKind},
    SinkDrain,
};
use tokio::sync::{Notify, Semaphore};

/// What the drain saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `write_batch` was called with these messages (recorded on entry).
    Write(Vec<u64>),
    /// `flush_durable` returned.
    Durable,
    /// `close` was called.
    Close,
}

/// The state a test shares with its drain.
#[derive(Debug, Default)]
pub struct Script {
    events: Mutex<Vec<Event>>,
    /// Outcomes of the next `write_batch` calls: `true` fails. Empty: succeed.
    write_failures: Mutex<VecDeque<bool>>,
    /// Outcomes of the next `flush_durable` calls: `true` fails.
    durable_failures: Mutex<VecDeque<bool>>,
    /// When set, each `write_batch` takes one permit before returning.
    write_gate: Option<Semaphore>,
    /// When set, each `flush_durable` takes one permit before returning.
    durable_gate: Option<Semaphore>,
    /// Woken after every event.
    changed: Notify,
    /// When true, `write_batch` panics.
    panic_on_write: std::sync::atomic::AtomicBool,
}

impl Script {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A script whose writes wait for [`release_writes`](Self::release_writes).
    pub fn gated_writes() -> Arc<Self> {
        Arc::new(Self { write_gate: Some(Semaphore::new(0)), ..Self::default() })
    }

    /// A script whose `flush_durable` waits for [`release_durable`](Self::release_durable).
    pub fn gated_durable() -> Arc<Self> {
        Arc::new(Self { durable_gate: Some(Semaphore::new(0)), ..Self::default() })
    }

    pub fn drain(self: &Arc<Self>) -> ScriptedDrain {
        ScriptedDrain { script: Arc::clone(self) }
    }

    pub fn fail_writes(&self, outcomes: impl IntoIterator<Item = bool>) {
        self.write_failures.lock().unwrap().extend(outcomes);
    }

    pub fn fail_next_durable(&self) {
        self.durable_failures.lock().unwrap().push_back(true);
    }

    pub fn panic_on_write(&self) {
        self.panic_on_write.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn release_writes(&self, n: usize) {
        self.write_gate.as_ref().expect("writes are not gated").add_permits(n);
    }

    pub fn release_durable(&self, n: usize) {
        self.durable_gate.as_ref().expect("flush_durable is not gated").add_permits(n);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Every message passed to `write_batch`, in order.
    pub fn written(&self) -> Vec<u64> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Write(batch) => Some(batch.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Sizes of the batches passed to `write_batch`, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Write(batch) => Some(batch.len()),
                _ => None,
            })
            .collect()
    }

    /// Waits until `cond` holds on the events. Returns at once if it already does.
    pub async fn wait_until(&self, cond: impl Fn(&[Event]) -> bool) {
        loop {
            let notified = self.changed.notified();
            if cond(&self.events.lock().unwrap()) {
                return;
            }
            notified.await;
        }
    }

    fn record(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_waiters();
    }
}

/// The drain the sink owns; all its state is in the shared [`Script`].
#[derive(Debug)]
pub struct ScriptedDrain {
    script: Arc<Script>,
}

fn failure(what: &str) -> DrainError {
    DrainError::new(DrainErrorKind::Other, format!("scripted {what} failure"))
}

impl SinkDrain<u64> for ScriptedDrain {
    async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
        let script = &self.script;
        assert!(!batch.is_empty(), "the sink must never write an empty batch");
        if script.panic_on_write.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("scripted drain panic");
        }
        script.record(Event::Write(batch));
        if let Some(gate) = &script.write_gate {
            gate.acquire().await.expect("gate closed").forget();
        }
        if script.write_failures.lock().unwrap().pop_front().unwrap_or(false) {
            return Err(failure("write"));
        }
        Ok(())
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        let script = &self.script;
        if let Some(gate) = &script.durable_gate {
            gate.acquire().await.expect("gate closed").forget();
        }
        script.record(Event::Durable);
        if script.durable_failures.lock().unwrap().pop_front().unwrap_or(false) {
            return Err(failure("flush_durable"));
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        self.script.record(Event::Close);
        Ok(())
    }
}
