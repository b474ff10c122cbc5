//! The collector is killed with SIGKILL while points stream to it. rotel is
//! the collector: its own count is compared with the drain's.
//!
//! The guarantee is at-least-once. A request in flight at the kill may have
//! been counted by the collector while its answer never came back; the drain
//! then retries it (or gives up on it), and the collector's total can exceed
//! what the drain calls acked. Those duplicates are counted, printed, and
//! bounded by the points in flight at the kill. What must never happen is a
//! false `Ok`: a flush that returns `Ok` while the collector lacks a point
//! pushed before it. (rotel logs a request after answering it, so a kill can
//! also cost the line of a request it did answer: `tests/support/kills.rs`
//! kills only once rotel has logged everything acknowledged, and bounds the
//! rest.)
//!
//! A few seconds each, in a file of their own so that nextest runs them
//! beside the others. The sleeps let the stream run before and after the
//! kill; no assertion depends on their length.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use otlp_sink::{
    config::RetryPolicy, otlp::MetricPoint, sink::DrainErrorKind, BackgroundSink, ExporterConfig, SinkConfig,
};
use support::accounting::{failure, Pipeline};
use support::errors::chain;
use support::kills::Kills;
use support::points::Shared;
use support::rotel::{Rotel, Signal};

/// Metric points pushed at a steady rate by a task, until stopped.
struct Stream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Stream {
    /// `per_tick` points every 5 ms.
    fn start(sink: BackgroundSink<MetricPoint>, per_tick: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let shared = Shared::new();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut offered = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                tick.tick().await;
                for point in shared.counters(1, per_tick) {
                    offered += 1;
                    // The queue holds far more than the test pushes: every point is accepted.
                    sink.try_push(point).unwrap_or_else(|e| panic!("the queue refused a point: {e}"));
                }
            }
            offered
        });
        Self { stop, task }
    }

    /// Stops pushing and returns how many points were pushed.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the stream task")
    }
}

fn config(rotel: &Rotel, budget: Duration) -> otlp_sink::config::ExporterConfigBuilder {
    let retry = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(200))
        .with_max_elapsed(budget);
    ExporterConfig::builder()
        .with_endpoint(rotel.endpoint())
        .with_timeout(Duration::from_secs(2))
        .with_max_request_bytes(1024 * 1024)
        .with_retry_policy(retry)
}

/// Batches (and so requests) of a few thousand points: while the collector
/// is down each request spends the whole retry budget, and a few large ones
/// do it together (four in flight) where many small ones would queue up.
fn sink_config() -> SinkConfig {
    SinkConfig::default().with_queue_capacity(500_000).with_batch_size(5_000)
}

/// Killed mid-stream and kept down longer than the retry budget: the flush
/// fails (never a false `Ok`), and after a restart later data is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_mid_stream_fails_the_flush_and_later_data_arrives_after_a_restart() {
    let mut rotel = Rotel::start();
    let mut kills = Kills::new();
    let p = Pipeline::start(config(&rotel, Duration::from_secs(2)), sink_config()).await;
    let stream = Stream::start(p.sink.clone(), 250);
    tokio::time::sleep(Duration::from_secs(1)).await;
    kills.kill(&mut rotel, &p.export, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pushed = stream.stop().await;

    // rotel stays down for the whole flush: it cannot be Ok.
    let err = p.sink.flush().await.expect_err("the collector is down: a flush Ok now would be false");
    let f = failure(&err);
    assert!(matches!(f.kind, DrainErrorKind::RetriesExhausted | DrainErrorKind::TimedOut), "{}", f.chain);
    println!("flush while the collector is dead: {}", chain(&err));
    let lost = p.export.snapshot();
    assert!(lost.failed > 0 && lost.acked < pushed, "{lost:?}");

    kills.restart(&mut rotel, &p.export);
    let first_life = rotel.counts().items(Signal::Metrics);
    assert_eq!(p.offer(Shared::new().counters(5, 1_000)), 0);
    p.sink.flush().await.unwrap_or_else(|e| panic!("after the restart: {}", chain(&e)));
    assert_eq!(p.export.snapshot().acked - lost.acked, 5_000, "the later data, all of it");

    let (result, books) = p.shutdown().await;
    result.expect("the failures were reported by the first flush");
    books.assert_balanced("SIGKILL, down past the budget");
    assert_eq!(books.sink.pushed, pushed + 5_000);
    let counted = kills.finish(&mut rotel, books.export.acked, "SIGKILL, down past the budget");
    assert!(counted - first_life >= 5_000, "the second life counted the later data");
}

/// Killed mid-stream and restarted at once: the retries deliver everything
/// within the budget, the flush returns `Ok`, and that `Ok` is true: rotel
/// counted every point pushed before it, some possibly twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_and_restarted_mid_stream_gets_everything_at_least_once() {
    let mut rotel = Rotel::start();
    let mut kills = Kills::new();
    let p = Pipeline::start(config(&rotel, Duration::from_secs(15)), sink_config()).await;
    let stream = Stream::start(p.sink.clone(), 250);
    tokio::time::sleep(Duration::from_secs(1)).await;
    kills.kill(&mut rotel, &p.export, true).await;
    kills.restart(&mut rotel, &p.export);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pushed = stream.stop().await;

    p.sink.flush().await.unwrap_or_else(|e| panic!("the collector was back within the budget: {}", chain(&e)));
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("SIGKILL, quick restart");
    let e = books.export;
    assert_eq!((e.acked, e.failed, books.sink.pushed), (pushed, 0, pushed));
    // Whether a request was cut by the kill (and retried) depends on where
    // the kill fell; the books and rotel's count hold either way.
    println!("retries after the kill: {}", e.retries);
    // Never a false Ok: rotel has every point pushed before the flush (less
    // only what the kill's instant can explain, which `finish` bounds).
    kills.finish(&mut rotel, pushed, "SIGKILL, quick restart");
}
