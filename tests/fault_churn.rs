//! Restart churn: rotel is killed (SIGKILL) and restarted every 3 s for a
//! minute while points stream to it at a steady 20 000 a second. Afterwards
//! the accounting rule holds exactly, rotel's own count covers everything
//! acknowledged (with no more duplicates than points in flight at the
//! kills; see `tests/support/kills.rs` for how a kill can also cost rotel a
//! line), memory stayed flat, and no task or file descriptor outlives the
//! exporter.
//!
//! About 65 s of wall time by design; in a file of its own so that nextest
//! runs it beside the others (see the override in `.config/nextest.toml`).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otlp_sink::{config::RetryPolicy, sink::Overflow, ExporterConfig, SinkConfig};
use support::accounting::Pipeline;
use support::errors::chain;
use support::kills::Kills;
use support::points::Shared;
use support::rotel::Rotel;

const RUN: Duration = Duration::from_secs(60);
const RESTART_EVERY: Duration = Duration::from_secs(3);

/// This process's resident memory, in KiB (`VmRSS` in `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
}

/// File descriptors this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Polls `condition` every 50 ms for at most `limit`; returns whether it held.
async fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while !condition() {
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_restarted_every_three_seconds_for_a_minute_loses_nothing_unaccounted_and_leaks_nothing() {
    let mut rotel = Rotel::start();
    let (tasks_before, fds_before) = (alive_tasks(), open_fds());

    // Each cut request is retried until rotel is back, some 50 ms later.
    let retry = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(500))
        .with_max_elapsed(Duration::from_secs(10));
    let config = ExporterConfig::builder()
        .with_endpoint(rotel.endpoint())
        .with_timeout(Duration::from_secs(2))
        .with_max_request_bytes(256 * 1024)
        .with_retry_policy(retry);
    let sink_config =
        SinkConfig::default().with_queue_capacity(50_000).with_batch_size(2_000).with_overflow(Overflow::Drop);
    let p = Pipeline::start(config, sink_config).await;

    let stop = Arc::new(AtomicBool::new(false));
    // 100 points every 5 ms; a full queue is a counted drop, never a wait.
    let producer = {
        let (sink, stop) = (p.sink.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let shared = Shared::new();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                for point in shared.counters(1, 100) {
                    let _ = sink.try_push(point);
                }
            }
        })
    };
    let sampler = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push(rss_kib());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };

    let started = Instant::now();
    let mut kills = Kills::new();
    while started.elapsed() + RESTART_EVERY <= RUN {
        tokio::time::sleep(RESTART_EVERY).await;
        kills.kill(&mut rotel, &p.export, false).await;
        kills.restart(&mut rotel, &p.export);
    }
    stop.store(true, Ordering::Relaxed);
    producer.await.expect("the producer");
    let samples = sampler.await.expect("the sampler");

    p.sink
        .flush()
        .await
        .unwrap_or_else(|e| panic!("rotel is up and every cut request fits the retry budget: {}", chain(&e)));
    let sink = p.sink.clone();
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("restart churn");
    let e = books.export;
    assert_eq!((e.failed, e.rejected), (0, 0), "{e:?}");

    // rotel's own count: everything acked, duplicates only from the kills.
    let counted = kills.finish(&mut rotel, e.acked, "restart churn");

    // Memory: the peak of the last third of the run stays within 25 % (at
    // least 2 MiB, for allocator noise) of the first third's: it does not
    // grow with time, restarts or reconnections.
    let third = samples.len() / 3;
    let first_peak = *samples[..third].iter().max().unwrap();
    let last_peak = *samples[samples.len() - third..].iter().max().unwrap();
    let (low, high) = (samples.iter().min().unwrap(), samples.iter().max().unwrap());
    // The peak of each 10 s of the run (40 samples), for the record.
    let peaks: Vec<u64> = samples.chunks(40).map(|c| *c.iter().max().unwrap()).collect();
    println!("RSS peak per 10 s, KiB: {peaks:?}");
    println!(
        "{} restarts in {:?}: pushed {}, acked {}, dropped {}, retries {}, rotel counted {counted}; \
         RSS {low}..{high} KiB, peak {first_peak} KiB in the first third, {last_peak} KiB in the last",
        kills.kills,
        started.elapsed(),
        books.sink.pushed,
        e.acked,
        books.sink.dropped,
        e.retries
    );
    assert!(kills.kills >= 19, "{} restarts", kills.kills);
    let margin = (first_peak / 4).max(2 * 1024);
    assert!(last_peak <= first_peak + margin, "memory grew: {first_peak} KiB at first, {last_peak} KiB at the end");

    // Leaks: once the exporter is gone, its tasks end and its sockets close.
    drop(sink);
    let tasks_settled = eventually(Duration::from_secs(5), || alive_tasks() <= tasks_before).await;
    assert!(tasks_settled, "{} tasks alive, {tasks_before} before the exporter", alive_tasks());
    // rotel's pipes are the same before and after (one generation each).
    let fds_settled = eventually(Duration::from_secs(5), || open_fds() <= fds_before).await;
    assert!(fds_settled, "{} file descriptors open, {fds_before} before the exporter", open_fds());
}
