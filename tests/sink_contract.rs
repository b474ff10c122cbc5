//! The `BackgroundSink` / `SinkDrain` contract, one behaviour per test.
//! Timers run on paused tokio time; nothing here sleeps on the wall clock.

mod support;

use std::time::Duration;

use otlp_sink::{
    sink::{DrainError, DrainErrorKind, FlushError, Overflow, PushError, ShutdownError, SinkStats, TryPushError},
    BackgroundSink, SinkConfig, SinkDrain, SinkHandle,
};
use support::drains::{Event, Script};
use support::errors::chain;
use tokio_util::sync::CancellationToken;

fn config(batch_size: usize) -> SinkConfig {
    SinkConfig::default().with_batch_size(batch_size).with_flush_interval(Duration::from_millis(100))
}

fn spawn(script: &std::sync::Arc<Script>, config: SinkConfig) -> (BackgroundSink<u64>, SinkHandle, CancellationToken) {
    let token = CancellationToken::new();
    let (sink, handle) = BackgroundSink::spawn(script.drain(), config, token.clone()).expect("valid config");
    (sink, handle, token)
}

/// Lets the actor run until it has nothing left to do on a paused
/// current-thread runtime.
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BackgroundSink<u64>>();
    send_sync::<SinkHandle>();
    send_sync::<SinkConfig>();
    send_sync::<SinkStats>();
    send_sync::<FlushError>();
    send_sync::<ShutdownError>();
    send_sync::<otlp_sink::sink::DrainError>();
    send_sync::<TryPushError<u64>>();
    send_sync::<PushError<u64>>();
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_is_written_without_waiting_for_the_timer() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(4));
    for i in 0..9 {
        sink.try_push(i).unwrap();
    }
    script.wait_until(|e| e.len() == 2).await;
    assert_eq!(script.batch_sizes(), vec![4, 4], "two full batches, the ninth message waits");
    assert_eq!(script.written(), (0..8).collect::<Vec<_>>());
    handle.shutdown().await.unwrap();
    assert_eq!(script.written(), (0..9).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_backlog_is_written_without_waiting_for_the_timer() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(4));
    // The actor takes message 0 alone: a partial batch, waiting for more.
    sink.try_push(0).unwrap();
    settle().await;
    // Then a burst the actor takes out of step with the batches: the pushes
    // that complete a batch wake it fewer times than there are batches queued.
    for i in 1..=12 {
        sink.try_push(i).unwrap();
    }
    let started = tokio::time::Instant::now();
    script.wait_until(|e| e.len() == 3).await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "three full batches were queued, yet one waited {:?} for the timer",
        started.elapsed()
    );
    assert_eq!(script.batch_sizes(), vec![4, 4, 4]);
    handle.shutdown().await.unwrap();
    assert_eq!(script.written(), (0..13).collect::<Vec<_>>());
}

/// The scripted drain, weighing each message as its value in bytes.
struct Weighed(support::drains::ScriptedDrain);

impl SinkDrain<u64> for Weighed {
    fn item_bytes(&self, item: &u64) -> usize {
        *item as usize
    }

    fn write_batch(&mut self, batch: Vec<u64>) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
        self.0.write_batch(batch)
    }

    fn flush_durable(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
        self.0.flush_durable()
    }

    fn close(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
        self.0.close()
    }
}

#[tokio::test(start_paused = true)]
async fn batches_are_cut_by_bytes_as_the_drain_weighs_them_without_waiting_for_the_timer() {
    let script = Script::new();
    let by_bytes = config(1000).with_batch_bytes(100);
    let (sink, handle) = BackgroundSink::spawn(Weighed(script.drain()), by_bytes, CancellationToken::new()).unwrap();
    // 30 bytes each: the fourth message passes 100 bytes and ends the batch.
    // The actor takes the first alone and sleeps: the push that fills the
    // batch by bytes must wake it, long before the batch size would.
    sink.try_push(30).unwrap();
    settle().await;
    let started = tokio::time::Instant::now();
    for _ in 1..10 {
        sink.try_push(30).unwrap();
    }
    script.wait_until(|e| e.len() >= 2).await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "two batches were full by bytes, yet one waited {:?} for the timer",
        started.elapsed()
    );
    assert_eq!(script.batch_sizes(), vec![4, 4]);
    // The batch size still bounds a batch of light messages.
    let light = Script::new();
    let by_count = config(5).with_batch_bytes(1 << 20);
    let (sink_light, handle_light) =
        BackgroundSink::spawn(Weighed(light.drain()), by_count, CancellationToken::new()).unwrap();
    for i in 0..5 {
        sink_light.try_push(i).unwrap();
    }
    light.wait_until(|e| e.len() == 1).await;
    assert_eq!(light.batch_sizes(), vec![5]);
    handle.shutdown().await.unwrap();
    handle_light.shutdown().await.unwrap();
    assert_eq!(script.batch_sizes(), vec![4, 4, 2]);
}

#[tokio::test(start_paused = true)]
async fn a_drain_that_does_not_weigh_its_items_batches_by_count() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(4).with_batch_bytes(1));
    for i in 0..9 {
        sink.try_push(i).unwrap();
    }
    script.wait_until(|e| e.len() == 2).await;
    assert_eq!(script.batch_sizes(), vec![4, 4], "batch_bytes is moot when every item weighs 0");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_written_when_the_interval_expires() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(100));
    for i in 0..3 {
        sink.try_push(i).unwrap();
    }
    settle().await;
    tokio::time::advance(Duration::from_millis(99)).await;
    settle().await;
    assert!(script.events().is_empty(), "written before the interval: {:?}", script.events());
    tokio::time::advance(Duration::from_millis(2)).await;
    script.wait_until(|e| !e.is_empty()).await;
    assert_eq!(script.events(), vec![Event::Write(vec![0, 1, 2])]);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn drop_policy_refuses_at_once_hands_the_message_back_and_counts_it() {
    let script = Script::gated_writes();
    let (sink, handle, _token) = spawn(&script, config(1).with_queue_capacity(4));
    sink.try_push(0).unwrap();
    // The actor takes message 0 and blocks in write_batch; the queue then holds 4.
    script.wait_until(|e| e.len() == 1).await;
    for i in 1..=4 {
        sink.try_push(i).unwrap();
    }
    match sink.try_push(99) {
        Err(TryPushError::Full(msg)) => assert_eq!(msg, 99),
        other => panic!("expected Full(99), got {other:?}"),
    }
    let stats = sink.stats();
    // Message 0 is in the drain's hands (written when handed over); 1..=4 wait in the queue.
    assert_eq!((stats.pushed, stats.dropped, stats.pending, stats.written), (6, 1, 4, 1));

    script.release_writes(usize::MAX >> 4);
    sink.flush().await.unwrap();
    let stats = sink.stats();
    assert_eq!((stats.pushed, stats.dropped, stats.pending, stats.written), (6, 1, 0, 5));
    assert_eq!(script.written(), vec![0, 1, 2, 3, 4]);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn block_policy_refuses_try_push_and_push_blocking_waits_for_space() {
    let script = Script::gated_writes();
    let (sink, handle, _token) = spawn(&script, config(1).with_queue_capacity(1).with_overflow(Overflow::Block));
    match sink.try_push(7) {
        Err(TryPushError::WouldBlock(msg)) => assert_eq!(msg, 7),
        other => panic!("expected WouldBlock(7), got {other:?}"),
    }
    assert_eq!(sink.stats(), SinkStats::default(), "a WouldBlock refusal is not counted");

    sink.push_blocking(0).await.unwrap();
    script.wait_until(|e| e.len() == 1).await; // the actor holds 0 in write_batch
    sink.push_blocking(1).await.unwrap(); // fills the queue

    let blocked = tokio::spawn({
        let sink = sink.clone();
        async move { sink.push_blocking(2).await }
    });
    settle().await;
    assert!(!blocked.is_finished(), "push_blocking returned while the queue was full");

    script.release_writes(1);
    blocked.await.unwrap().unwrap();
    script.release_writes(usize::MAX >> 4);
    sink.flush().await.unwrap();
    assert_eq!(script.written(), vec![0, 1, 2]);
    assert_eq!(sink.stats().dropped, 0);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn flush_returns_only_after_the_writes_and_flush_durable() {
    let script = Script::gated_durable();
    let (sink, handle, _token) = spawn(&script, config(100));
    for i in 0..5 {
        sink.try_push(i).unwrap();
    }
    let flush = tokio::spawn({
        let sink = sink.clone();
        async move { sink.flush().await }
    });
    script.wait_until(|e| e.len() == 1).await;
    settle().await;
    assert_eq!(script.events(), vec![Event::Write(vec![0, 1, 2, 3, 4])], "barrier writes the partial batch");
    assert!(!flush.is_finished(), "flush returned before flush_durable confirmed");

    script.release_durable(1);
    flush.await.unwrap().unwrap();
    assert_eq!(script.events(), vec![Event::Write(vec![0, 1, 2, 3, 4]), Event::Durable]);
    assert_eq!(sink.stats().flushes, 1);
    script.release_durable(usize::MAX >> 4);
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn barriers_are_fifo_with_data() {
    let script = Script::gated_durable();
    let (sink, handle, _token) = spawn(&script, config(100));
    sink.try_push(1).unwrap();
    let first = tokio::spawn({
        let sink = sink.clone();
        async move { sink.flush().await }
    });
    // The actor writes [1] and waits inside flush_durable for the first barrier.
    script.wait_until(|e| e.len() == 1).await;
    sink.try_push(2).unwrap();
    sink.try_push(3).unwrap();
    let second = tokio::spawn({
        let sink = sink.clone();
        async move { sink.flush().await }
    });
    settle().await;
    script.release_durable(2);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(
        script.events(),
        vec![Event::Write(vec![1]), Event::Durable, Event::Write(vec![2, 3]), Event::Durable],
        "each barrier covers exactly what was pushed before it"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_is_counted_reported_once_and_the_actor_goes_on() {
    let script = Script::new();
    script.fail_writes([false, true, false]);
    let (sink, handle, _token) = spawn(&script, config(2));
    for i in 0..6 {
        sink.try_push(i).unwrap();
    }
    match sink.flush().await {
        Err(FlushError::Drain { source, later_failures: 0 }) => {
            assert_eq!(source.kind(), DrainErrorKind::Other);
            assert!(chain(&source).contains("scripted write failure"), "{source}");
        }
        other => panic!("expected one drain failure, got {other:?}"),
    }
    assert_eq!(script.written(), vec![0, 1, 2, 3, 4, 5], "the batch after the failure was still written");
    let stats = sink.stats();
    assert_eq!((stats.written, stats.write_errors, stats.failed), (6, 1, 2));
    sink.flush().await.expect("the failure was already reported by the previous flush");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_flush_reports_the_first_failure_and_counts_the_later_ones() {
    let script = Script::new();
    script.fail_writes([true, true]);
    script.fail_next_durable();
    let (sink, handle, _token) = spawn(&script, config(1));
    sink.try_push(10).unwrap();
    sink.try_push(11).unwrap();
    match sink.flush().await {
        Err(FlushError::Drain { source, later_failures }) => {
            assert!(chain(&source).contains("write failure"), "first is the first write: {source}");
            assert_eq!(later_failures, 2, "second write and flush_durable");
        }
        other => panic!("expected a drain failure, got {other:?}"),
    }
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failure_whose_flush_was_dropped_carries_to_the_next_barrier() {
    let script = Script::gated_durable();
    script.fail_writes([true]);
    let (sink, handle, _token) = spawn(&script, config(100));
    sink.try_push(1).unwrap();
    // Give up on the flush while the actor is inside flush_durable.
    let gave_up = tokio::time::timeout(Duration::from_millis(10), sink.flush()).await;
    assert!(gave_up.is_err(), "flush returned while flush_durable was held: {gave_up:?}");
    script.release_durable(usize::MAX >> 4);
    match sink.flush().await {
        Err(FlushError::Drain { source, later_failures: 0 }) => {
            assert!(chain(&source).contains("write failure"), "{source}")
        }
        other => panic!("the dropped flush's failure was lost: {other:?}"),
    }
    sink.flush().await.expect("reported once only");
    handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_writes_everything_queued_answers_barriers_and_closes_last() {
    let script = Script::gated_writes();
    let (sink, handle, _token) = spawn(&script, config(3));
    for i in 0..3 {
        sink.try_push(i).unwrap();
    }
    script.wait_until(|e| e.len() == 1).await; // actor is held inside the first write
    for i in 3..8 {
        sink.try_push(i).unwrap();
    }
    let barrier = tokio::spawn({
        let sink = sink.clone();
        async move { sink.flush().await }
    });
    settle().await;
    sink.try_push(8).unwrap();

    let shutdown = tokio::spawn(handle.shutdown());
    settle().await;
    // The queue is closed before the backlog is drained: a racing producer
    // gets its message back instead of losing it in a dead queue.
    match sink.try_push(100) {
        Err(TryPushError::Closed(msg)) => assert_eq!(msg, 100),
        other => panic!("expected Closed(100) after shutdown began, got {other:?}"),
    }
    assert!(matches!(sink.push_blocking(101).await, Err(PushError::Closed(101))));

    script.release_writes(usize::MAX >> 4);
    shutdown.await.unwrap().unwrap();
    barrier.await.unwrap().expect("a barrier queued before shutdown is answered");
    assert_eq!(script.written(), (0..9).collect::<Vec<_>>());
    let events = script.events();
    assert_eq!(events.last(), Some(&Event::Close), "close comes last: {events:?}");
    assert_eq!(events.iter().filter(|e| **e == Event::Close).count(), 1);
    let stats = sink.stats();
    assert_eq!((stats.pushed, stats.written, stats.pending, stats.dropped), (9, 9, 0, 0));
    assert!(matches!(sink.flush().await, Err(FlushError::Closed)));
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_failures_no_flush_reported() {
    let script = Script::new();
    script.fail_writes([true]);
    let (sink, handle, _token) = spawn(&script, config(10));
    sink.try_push(1).unwrap();
    match handle.shutdown().await {
        Err(ShutdownError::Drain { source, later_failures: 0 }) => {
            assert!(chain(&source).contains("write failure"), "{source}")
        }
        other => panic!("the final write's failure was lost: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_returns_by_its_deadline_when_the_drain_hangs() {
    let script = Script::gated_writes(); // never released: the drain hangs
    let (sink, handle, _token) = spawn(&script, config(2));
    for i in 0..5 {
        sink.try_push(i).unwrap();
    }
    let started = tokio::time::Instant::now();
    match handle.shutdown_timeout(Duration::from_secs(2)).await {
        Err(ShutdownError::TimedOut { deadline, pending }) => {
            assert_eq!(deadline, Duration::from_secs(2));
            assert_eq!(pending, 3, "the queued messages; the hung batch [0, 1] was handed to the drain");
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // The books are closed when shutdown_timeout returns: what the queue held is abandoned.
    let stats = sink.stats();
    assert_eq!((stats.pushed, stats.written, stats.pending, stats.abandoned), (5, 2, 0, 3));
    assert_eq!(stats.pushed, stats.dropped + stats.written + stats.pending + stats.abandoned);
    assert!(matches!(sink.flush().await, Err(FlushError::Closed)), "the aborted actor answers no barrier");
}

#[tokio::test(start_paused = true)]
async fn shutdown_timeout_is_clean_when_the_drain_finishes_in_time() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(2));
    sink.try_push(1).unwrap();
    handle.shutdown_timeout(Duration::from_secs(2)).await.unwrap();
    assert_eq!(script.written(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_token_stops_the_actor_and_join_waits_for_it() {
    let script = Script::new();
    let (sink, handle, token) = spawn(&script, config(10));
    sink.try_push(1).unwrap();
    token.cancel();
    handle.join().await.unwrap();
    assert_eq!(script.written(), vec![1]);
    assert!(sink.is_closed());
}

#[tokio::test(start_paused = true)]
async fn dropping_every_sink_clone_drains_and_ends_the_actor() {
    let script = Script::new();
    let (sink, handle, _token) = spawn(&script, config(10));
    let clone = sink.clone();
    sink.try_push(1).unwrap();
    clone.try_push(2).unwrap();
    drop(sink);
    drop(clone);
    handle.join().await.unwrap();
    assert_eq!(script.events(), vec![Event::Write(vec![1, 2]), Event::Close]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_drain_is_reported_and_flush_says_closed() {
    let script = Script::new();
    script.panic_on_write();
    let (sink, handle, _token) = spawn(&script, config(1));
    for i in 1..=3 {
        sink.try_push(i).unwrap();
    }
    assert!(matches!(sink.flush().await, Err(FlushError::Closed)));
    match handle.shutdown().await {
        Err(ShutdownError::ActorFailed(err)) => assert!(err.is_panic()),
        other => panic!("expected ActorFailed, got {other:?}"),
    }
    // Message 1 was handed to the drain, which panicked on it; 2 and 3 died
    // with the queue: abandoned, not left pending.
    let stats = sink.stats();
    assert_eq!((stats.pushed, stats.written, stats.pending, stats.abandoned), (3, 1, 0, 2));
}

#[test]
fn spawn_on_works_from_a_thread_without_a_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let script = Script::new();
    let token = CancellationToken::new();
    let (sink, handle) = BackgroundSink::spawn_on(script.drain(), config(10), token.clone(), runtime.handle()).unwrap();
    std::thread::spawn(move || {
        // A plain thread: no tokio context here, and try_push needs none.
        for i in 0..10 {
            sink.try_push(i).unwrap();
        }
    })
    .join()
    .unwrap();
    runtime.block_on(handle.shutdown()).unwrap();
    assert_eq!(script.written(), (0..10).collect::<Vec<_>>());
}

#[test]
fn an_invalid_config_is_refused_with_the_setting_named() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let script = Script::new();
    let err = BackgroundSink::spawn_on(
        script.drain(),
        SinkConfig::default().with_batch_size(0),
        CancellationToken::new(),
        runtime.handle(),
    )
    .unwrap_err();
    assert_eq!(err.setting(), "batch_size");
}

/// The queue is allocated whole when the sink starts: a capacity the machine
/// cannot hold is an error naming it, not an abort.
#[test]
fn a_queue_too_large_to_allocate_is_refused_with_the_setting_named() {
    struct Huge;
    impl SinkDrain<[u8; 1 << 16]> for Huge {
        async fn write_batch(&mut self, _batch: Vec<[u8; 1 << 16]>) -> Result<(), DrainError> {
            Ok(())
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // 2^32 slots of 64 KiB: 256 TiB, more than a 47-bit address space holds,
    // whatever the kernel's overcommit policy.
    let config = SinkConfig::default().with_queue_capacity(SinkConfig::MAX_QUEUE_CAPACITY);
    assert_eq!(config.validate(), Ok(()), "the capacity itself is allowed");
    let err = BackgroundSink::spawn_on(Huge, config, CancellationToken::new(), runtime.handle()).unwrap_err();
    assert_eq!((err.setting(), err.value()), ("queue_capacity", SinkConfig::MAX_QUEUE_CAPACITY.to_string().as_str()));
    assert!(err.to_string().contains("could not be allocated"), "{err}");
}

/// Many producers race with the actor on a multi-thread runtime; `pending`
/// must never wrap below zero, and the books must balance at the end.
#[test]
fn counters_balance_and_pending_never_underflows_under_racing_producers() {
    counters_balance_under_racing_producers(1);
}

/// The same with the queue cut into 4 shards: each producer thread in its own.
#[test]
fn counters_balance_and_pending_never_underflows_under_racing_producers_on_shards() {
    counters_balance_under_racing_producers(4);
}

fn counters_balance_under_racing_producers(shards: usize) {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let script = Script::new();
    let token = CancellationToken::new();
    let cfg = SinkConfig::default().with_queue_capacity(64).with_batch_size(16).with_queue_shards(shards);
    let (sink, handle) = BackgroundSink::spawn_on(script.drain(), cfg, token.clone(), runtime.handle()).unwrap();

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let sink = sink.clone();
        let done = done.clone();
        move || {
            let mut max_pending = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                max_pending = max_pending.max(sink.stats().pending);
            }
            max_pending
        }
    });
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let (mut accepted, mut dropped) = (0u64, 0u64);
                for i in 0..PER_PRODUCER {
                    match sink.try_push(p * PER_PRODUCER + i) {
                        Ok(()) => accepted += 1,
                        Err(TryPushError::Full(_)) => dropped += 1,
                        Err(other) => panic!("unexpected refusal {other:?}"),
                    }
                }
                (accepted, dropped)
            })
        })
        .collect();
    let (accepted, dropped) =
        producers.into_iter().map(|p| p.join().unwrap()).fold((0, 0), |(a, d), (pa, pd)| (a + pa, d + pd));
    runtime.block_on(handle.shutdown()).unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let max_pending = watcher.join().unwrap();

    // The queue (64) + one batch in the actor (16) + one in-flight push per producer.
    assert!(max_pending <= 64 + 16 + PRODUCERS, "pending reached {max_pending}: it wrapped below zero");
    let stats = sink.stats();
    assert_eq!(stats.pushed, PRODUCERS * PER_PRODUCER);
    assert_eq!(stats.dropped, dropped);
    assert_eq!(stats.written, accepted);
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.pushed, stats.dropped + stats.written + stats.pending);
    let mut written = script.written();
    assert_eq!(written.len() as u64, accepted);
    written.sort_unstable();
    written.dedup();
    assert_eq!(written.len() as u64, accepted, "a message was written twice");
}

/// The actor sleeps between batches and is woken only by the push that
/// completes one. With a flush interval of an hour, a lost wake-up leaves a
/// full batch unwritten for the rest of the test: every batch here is full,
/// so every message must be written long before the timer could help.
#[test]
fn racing_producers_never_leave_a_full_batch_asleep() {
    racing_producers_full_batches(1);
}

/// The same with the queue cut into 4 shards (the actor then sleeps until
/// some shard reaches its share of the batch; see `WakeAt::position_in_shard`),
/// and into 3, so that threads share shards unevenly.
#[test]
fn racing_producers_never_leave_a_full_batch_asleep_on_shards() {
    racing_producers_full_batches(4);
    racing_producers_full_batches(3);
}

fn racing_producers_full_batches(shards: usize) {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 8_000;
    const BATCH: u64 = 8;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let script = Script::new();
    let cfg = SinkConfig::default()
        .with_queue_shards(shards)
        // Every shard has room for everything: a thread's shard may be shared.
        .with_queue_capacity((PRODUCERS * PER_PRODUCER) as usize * shards)
        .with_batch_size(BATCH as usize)
        .with_flush_interval(Duration::from_secs(3600));
    let (sink, handle) =
        BackgroundSink::spawn_on(script.drain(), cfg, CancellationToken::new(), runtime.handle()).unwrap();
    for round in 0..4 {
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_PRODUCER / 4 {
                        sink.try_push(p * PER_PRODUCER + round * PER_PRODUCER / 4 + i).expect("room for every message");
                        // Gives the actor time to fall asleep between pushes,
                        // so that pushes land on a sleeping actor often.
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|p| p.join().unwrap());
        let expected = (round + 1) * PRODUCERS * PER_PRODUCER / 4;
        assert_eq!(expected % BATCH, 0, "every batch is full");
        // Waits for the counter, not for time: a lost wake-up makes this
        // time out (the next timer is an hour away), never pass.
        let written = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), async {
                while sink.stats().written < expected {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
        });
        assert!(written.is_ok(), "round {round}: {:?} of {expected} written", sink.stats());
    }
    runtime.block_on(handle.shutdown()).unwrap();
    assert_eq!(script.written().len() as u64, PRODUCERS * PER_PRODUCER);
}

/// A drain that waits on many requests reports the first failure and folds
/// the rest into it; the sink's flush counts them all.
#[tokio::test(start_paused = true)]
async fn failures_a_drain_folds_into_one_error_are_counted_by_the_flush() {
    struct Folding;
    impl otlp_sink::SinkDrain<u64> for Folding {
        async fn write_batch(&mut self, _batch: Vec<u64>) -> Result<(), otlp_sink::sink::DrainError> {
            Ok(())
        }
        async fn flush_durable(&mut self) -> Result<(), otlp_sink::sink::DrainError> {
            Err(otlp_sink::sink::DrainError::new(DrainErrorKind::Permanent, "3 requests refused")
                .with_later_failures(2))
        }
    }
    let (sink, handle) = BackgroundSink::spawn(Folding, config(10), CancellationToken::new()).unwrap();
    sink.try_push(1).unwrap();
    match sink.flush().await {
        Err(FlushError::Drain { source, later_failures }) => {
            assert_eq!((source.kind(), source.later_failures(), later_failures), (DrainErrorKind::Permanent, 2, 2));
        }
        other => panic!("expected a drain failure, got {other:?}"),
    }
    // Shutdown calls `close` (here the default `Ok`), not `flush_durable`.
    handle.shutdown().await.unwrap();
}

/// A flush on a sharded queue covers what every thread pushed before it,
/// whichever shard each thread's messages went to, and each thread's
/// messages are written in the order it pushed them.
#[test]
fn a_sharded_flush_covers_every_shard_and_keeps_each_threads_order() {
    const THREADS: u64 = 6;
    const EACH: u64 = 500;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let script = Script::new();
    // 4 shards of 1000 for 6 threads: two shards carry two threads each.
    let cfg = SinkConfig::default()
        .with_queue_capacity(4_000)
        .with_queue_shards(4)
        .with_batch_size(64)
        .with_flush_interval(Duration::from_secs(3600));
    let (sink, handle) =
        BackgroundSink::spawn_on(script.drain(), cfg, CancellationToken::new(), runtime.handle()).unwrap();
    for round in 0..3u64 {
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let sink = &sink;
                s.spawn(move || {
                    for i in 0..EACH {
                        sink.try_push((round * THREADS + t) * 10_000 + i).expect("room for every message");
                    }
                });
            }
        });
        // Everything above happened before this flush: it must all be written.
        runtime.block_on(sink.flush()).expect("flushed");
        let written = script.written();
        assert_eq!(written.len() as u64, (round + 1) * THREADS * EACH, "round {round}: the flush left some behind");
        for producer in 0..(round + 1) * THREADS {
            let mine: Vec<u64> = written.iter().copied().filter(|v| v / 10_000 == producer).collect();
            assert_eq!(mine, (0..EACH).map(|i| producer * 10_000 + i).collect::<Vec<_>>(), "producer {producer}");
        }
        let events = script.events();
        assert_eq!(events.last(), Some(&Event::Durable), "the flush ended with flush_durable");
        assert_eq!(sink.stats().flushes, round + 1);
    }
    let stats = sink.stats();
    assert_eq!(
        (stats.pushed, stats.written, stats.dropped, stats.pending),
        (3 * THREADS * EACH, 3 * THREADS * EACH, 0, 0)
    );
    runtime.block_on(handle.shutdown()).unwrap();
}

/// A sharded queue is bounded per shard: one thread alone fills its shard's
/// share, and every refusal is counted.
#[tokio::test(start_paused = true)]
async fn one_thread_fills_its_shard_and_the_refusals_are_counted() {
    let script = Script::gated_writes();
    let (sink, handle, _token) = spawn(&script, config(100).with_queue_capacity(10).with_queue_shards(2));
    let accepted = (0..20).filter(|&i| sink.try_push(i).is_ok()).count();
    assert_eq!(accepted, 5, "this thread's shard holds 5 of the 10");
    let stats = sink.stats();
    assert_eq!((stats.pushed, stats.dropped, stats.pending), (20, 15, 5));
    script.release_writes(usize::MAX >> 4);
    handle.shutdown().await.unwrap();
    assert_eq!(script.written(), (0..5).collect::<Vec<_>>());
}
