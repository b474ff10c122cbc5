//! The spooled drain's cost per point against the memory-only path: the
//! same batches (50 counters x 100 series x 3 attributes, 5 000 points)
//! written to a `MetricsDrain` and flushed, to the in-process receiver on
//! loopback, in three ways:
//!
//! - `memory`: `MetricsDrain::connect`, flushed (acknowledged);
//! - `spool_persisted`: `connect_spooled`, flushed (appended and fsynced;
//!   the sender delivers meanwhile);
//! - `spool_delivered`: `connect_spooled`, flushed, then the `Delivered`
//!   wait (acknowledged, and the records settled).
//!
//! Criterion times wall clock; after it, each way is run again for a fixed
//! number of batches and the process's CPU time (user + system, from
//! `/proc/self/stat`, all threads: the receiver's included) per point is
//! printed, with the ratio to `memory`.
//!
//! Run: `cargo bench --bench spool_drain` (the spool is under the system's
//! temporary directory; set `TMPDIR` to measure another disk).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otlp_sink::config::SpoolConfig;
use otlp_sink::receiver::Receiver;
use otlp_sink::{otlp::MetricPoint, ExporterConfig, MetricsDrain, SinkDrain};

#[path = "support/points.rs"]
mod points;
use points::{Points, POINTS};

const CPU_BATCHES: u64 = 200;

/// User + system CPU time of the whole process so far (Linux), in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Memory,
    Persisted,
    Delivered,
}

fn round(runtime: &tokio::runtime::Runtime, drain: &mut MetricsDrain, way: Way, points: Vec<MetricPoint>) {
    runtime.block_on(async {
        SinkDrain::<MetricPoint>::write_batch(drain, points).await.unwrap();
        SinkDrain::<MetricPoint>::flush_durable(drain).await.unwrap();
        if way == Way::Delivered {
            drain.spool().unwrap().delivered(Duration::from_secs(30)).await.unwrap();
        }
    })
}

fn spool_vs_memory(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let receiver = runtime.block_on(Receiver::start()).expect("receiver");
    let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env().unwrap();
    let scratch = tempfile::tempdir().expect("tempdir");
    let points = Points::new("spool_drain");
    let ways = [("memory", Way::Memory), ("spool_persisted", Way::Persisted), ("spool_delivered", Way::Delivered)];
    let mut drains: Vec<MetricsDrain> = ways
        .iter()
        .enumerate()
        .map(|(i, (_, way))| {
            runtime.block_on(async {
                match way {
                    Way::Memory => MetricsDrain::connect(&config).await.unwrap(),
                    _ => {
                        let spool = SpoolConfig::new(scratch.path().join(format!("s{i}")));
                        MetricsDrain::connect_spooled(&config, &spool).await.unwrap()
                    }
                }
            })
        })
        .collect();

    let mut group = c.benchmark_group("spool_vs_memory");
    group.throughput(Throughput::Elements(POINTS));
    group.measurement_time(Duration::from_secs(5));
    for ((name, way), drain) in ways.iter().zip(drains.iter_mut()) {
        group.bench_function(*name, |b| {
            b.iter_batched(|| points.batch(), |batch| round(&runtime, drain, *way, batch), BatchSize::LargeInput)
        });
    }
    group.finish();

    let mut memory_cpu = None;
    for ((name, way), drain) in ways.iter().zip(drains.iter_mut()) {
        let batches: Vec<_> = (0..CPU_BATCHES).map(|_| points.batch()).collect();
        // Let the previous way's sender finish first.
        runtime.block_on(async {
            if let Some(spool) = drain.spool() {
                spool.delivered(Duration::from_secs(30)).await.unwrap();
            }
        });
        let (Some(before), wall) = (cpu_seconds(), std::time::Instant::now()) else { return };
        for batch in batches {
            round(&runtime, drain, *way, batch);
        }
        if let Some(spool) = drain.spool() {
            // The sender's delivery is part of the spool's cost.
            runtime.block_on(spool.delivered(Duration::from_secs(60))).unwrap();
        }
        let cpu = cpu_seconds().unwrap() - before;
        let per_point = cpu / (CPU_BATCHES * POINTS) as f64 * 1e9;
        let ratio = memory_cpu.map_or(1.0, |m| per_point / m);
        memory_cpu.get_or_insert(per_point);
        eprintln!(
            "spool_vs_memory/{name}: {per_point:.0} ns CPU per point (process-wide, receiver included), {ratio:.2}x memory; wall {:.0} ns per point",
            wall.elapsed().as_secs_f64() / (CPU_BATCHES * POINTS) as f64 * 1e9
        );
    }
    for drain in drains {
        if let Some(spool) = drain.spool() {
            let s = spool.stats();
            eprintln!("{}: syncs {}, bytes on disk {}", spool.dir().display(), s.syncs, s.bytes_on_disk);
        }
    }
    drop(receiver);
}

criterion_group!(benches, spool_vs_memory);
criterion_main!(benches);
