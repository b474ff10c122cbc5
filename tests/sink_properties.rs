//! Property test: random interleavings of pushes, flushes (some abandoned by
//! a timeout), failing writes and durability checks, slow drains, timer
//! ticks and cancellation, on paused tokio time. After every step and at the
//! end, the sink's contract must hold.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_sink::{
    sink::{DrainError, DrainErrorKind, FlushError, ShutdownError, TryPushError},
    BackgroundSink, SinkConfig, SinkDrain,
};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Write(Vec<u64>),
    Durable,
}

#[derive(Debug, Default)]
struct Plan {
    log: Vec<Event>,
    fail_writes: VecDeque<bool>,
    fail_durable: VecDeque<bool>,
    write_delay: Duration,
    durable_delay: Duration,
    /// Errors the drain returned: the flushes and the shutdown must report
    /// exactly this many between them.
    failures_returned: u64,
}

struct PlannedDrain(Arc<Mutex<Plan>>);

impl SinkDrain<u64> for PlannedDrain {
    async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
        let delay = {
            let mut plan = self.0.lock().unwrap();
            plan.log.push(Event::Write(batch));
            plan.write_delay
        };
        tokio::time::sleep(delay).await;
        let mut plan = self.0.lock().unwrap();
        if plan.fail_writes.pop_front().unwrap_or(false) {
            plan.failures_returned += 1;
            return Err(DrainError::new(DrainErrorKind::Other, "planned write failure"));
        }
        Ok(())
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        let delay = self.0.lock().unwrap().durable_delay;
        tokio::time::sleep(delay).await;
        let mut plan = self.0.lock().unwrap();
        plan.log.push(Event::Durable);
        if plan.fail_durable.pop_front().unwrap_or(false) {
            plan.failures_returned += 1;
            return Err(DrainError::new(DrainErrorKind::Other, "planned durability failure"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(u8),
    Flush,
    /// A flush abandoned after this many milliseconds, if not done by then.
    FlushWithTimeout(u8),
    FailNextWrite,
    FailNextDurable,
    SlowDrain(u8),
    Advance(u8),
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..40).prop_map(Op::Push),
        3 => Just(Op::Flush),
        1 => (0u8..30).prop_map(Op::FlushWithTimeout),
        2 => Just(Op::FailNextWrite),
        1 => Just(Op::FailNextDurable),
        1 => (0u8..20).prop_map(Op::SlowDrain),
        2 => (0u8..250).prop_map(Op::Advance),
        1 => Just(Op::Cancel),
    ]
}

fn reported(err: &FlushError) -> u64 {
    match err {
        FlushError::Drain { later_failures, .. } => 1 + later_failures,
        other => panic!("unexpected flush error {other:?}"),
    }
}

async fn run(ops: Vec<Op>, capacity: usize, batch_size: usize, shards: usize) {
    let plan = Arc::new(Mutex::new(Plan::default()));
    let token = CancellationToken::new();
    let config = SinkConfig::default()
        .with_queue_capacity(capacity)
        .with_queue_shards(shards.min(capacity))
        .with_batch_size(batch_size)
        .with_flush_interval(Duration::from_millis(100));
    let (sink, handle) = BackgroundSink::spawn(PlannedDrain(plan.clone()), config, token.clone()).unwrap();

    let mut next_id = 0u64;
    let mut accepted = Vec::new();
    let (mut offered, mut dropped) = (0u64, 0u64);
    let mut failures_reported = 0u64;
    let mut cancelled = false;

    for op in ops {
        match op {
            Op::Push(n) => {
                for _ in 0..n {
                    let id = next_id;
                    next_id += 1;
                    match sink.try_push(id) {
                        Ok(()) => {
                            offered += 1;
                            accepted.push(id);
                        }
                        Err(TryPushError::Full(back)) => {
                            assert_eq!(back, id, "the refused message is handed back");
                            offered += 1;
                            dropped += 1;
                        }
                        Err(TryPushError::Closed(back)) => {
                            assert!(cancelled, "Closed before cancellation");
                            assert_eq!(back, id);
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
            }
            Op::Flush => match sink.flush().await {
                Ok(()) => {
                    let plan = plan.lock().unwrap();
                    let last_durable = plan.log.iter().rposition(|e| *e == Event::Durable).expect("a durable event");
                    let durable: HashSet<u64> = plan.log[..last_durable]
                        .iter()
                        .flat_map(|e| match e {
                            Event::Write(batch) => batch.clone(),
                            Event::Durable => Vec::new(),
                        })
                        .collect();
                    for id in &accepted {
                        assert!(durable.contains(id), "flush returned Ok but {id} was not written before durability");
                    }
                }
                Err(FlushError::Closed) => assert!(cancelled, "Closed before cancellation"),
                Err(err) => failures_reported += reported(&err),
            },
            Op::FlushWithTimeout(ms) => {
                match tokio::time::timeout(Duration::from_millis(ms.into()), sink.flush()).await {
                    Ok(Err(FlushError::Closed)) => assert!(cancelled),
                    Ok(Err(err)) => failures_reported += reported(&err),
                    Ok(Ok(())) | Err(_) => {}
                }
            }
            Op::FailNextWrite => plan.lock().unwrap().fail_writes.push_back(true),
            Op::FailNextDurable => plan.lock().unwrap().fail_durable.push_back(true),
            Op::SlowDrain(ms) => {
                let mut plan = plan.lock().unwrap();
                plan.write_delay = Duration::from_millis(ms.into());
                plan.durable_delay = Duration::from_millis(ms.into());
            }
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms.into())).await,
            Op::Cancel => {
                token.cancel();
                cancelled = true;
            }
        }
        let stats = sink.stats();
        assert_eq!(stats.pushed, offered, "pushed counts every accepted or dropped offer");
        assert_eq!(stats.dropped, dropped);
        assert_eq!(stats.pushed, stats.dropped + stats.written + stats.pending, "{stats:?}");
    }

    match handle.shutdown().await {
        Ok(()) => {}
        Err(ShutdownError::Drain { later_failures, .. }) => failures_reported += 1 + later_failures,
        Err(other) => panic!("unexpected shutdown error {other:?}"),
    }

    let stats = sink.stats();
    assert_eq!(stats.pending, 0, "a clean shutdown writes everything");
    assert_eq!(stats.pushed, stats.dropped + stats.written + stats.pending);
    assert_eq!(stats.written, accepted.len() as u64);
    let plan = plan.lock().unwrap();
    let written: Vec<u64> = plan
        .log
        .iter()
        .flat_map(|e| match e {
            Event::Write(batch) => batch.clone(),
            Event::Durable => Vec::new(),
        })
        .collect();
    assert_eq!(written, accepted, "every accepted message written exactly once, in order");
    assert_eq!(failures_reported, plan.failures_returned, "each failure reported by exactly one flush or the shutdown");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_sink_contract_holds_under_random_interleavings(
        ops in proptest::collection::vec(op(), 1..60),
        capacity in 1usize..64,
        batch_size in 1usize..16,
        // 1 most of the time; up to 4 shards (the test's one thread pushes
        // into one of them, the barriers into all).
        shards in prop_oneof![2 => Just(1usize), 1 => 2usize..5],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        runtime.block_on(run(ops, capacity, batch_size, shards));
    }
}
