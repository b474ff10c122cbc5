//! The spool's storage layer on the local disk: append throughput (MB/s)
//! for 64 KiB and 1 MiB records, with and without an fsync per record, the
//! latency of `sync` (the `Persisted` flush) after one record, and the
//! read-back (replay) throughput.
//!
//! The spool is crate-private, so its source is compiled into this bench
//! by path: the same code, with no public surface made for the bench.
//!
//! Run: `cargo bench --bench spool` (the scratch directory is under the
//! system's temporary directory; set `TMPDIR` to measure another disk).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[allow(dead_code, unused_imports)]
#[path = "../src/spool/mod.rs"]
mod spool;

use spool::{Spool, SpoolOptions};

fn open(dir: &std::path::Path) -> Spool {
    Spool::open(dir, SpoolOptions::default()).expect("open").0
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("spool_append");
    g.measurement_time(Duration::from_secs(5));
    for (name, size) in [("64KiB", 64usize << 10), ("1MiB", 1 << 20)] {
        let payload = vec![0x5a_u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        let t = tempfile::tempdir().expect("tempdir");
        let mut s = open(&t.path().join("metrics"));
        // Appended and settled at once, as a sender keeping up would: the
        // spool stays small, segments roll and are deleted as they fill.
        g.bench_function(BenchmarkId::new("write", name), |b| {
            b.iter(|| {
                let seq = s.append(black_box(&payload), 1000).expect("append");
                s.settle(seq).expect("settle");
            })
        });
        g.bench_function(BenchmarkId::new("write+fsync", name), |b| {
            b.iter(|| {
                let seq = s.append(black_box(&payload), 1000).expect("append");
                s.sync().expect("sync");
                s.settle(seq).expect("settle");
            })
        });
        s.close().expect("close");
    }
    g.finish();
}

fn sync_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("spool_sync");
    g.measurement_time(Duration::from_secs(5));
    for (name, size) in [("4KiB", 4usize << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)] {
        let payload = vec![0xa5_u8; size];
        let t = tempfile::tempdir().expect("tempdir");
        let mut s = open(&t.path().join("logs"));
        // Only the fsync is timed: one record appended before each.
        g.bench_function(BenchmarkId::new("after_one_record", name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let seq = s.append(&payload, 1000).expect("append");
                    let start = Instant::now();
                    s.sync().expect("sync");
                    total += start.elapsed();
                    s.settle(seq).expect("settle");
                }
                total
            })
        });
        s.close().expect("close");
    }
    g.finish();
}

/// Replay: records read back in order for delivery and settled, from a
/// spool written just before (so from the page cache, as after a short
/// outage; a cold start after a reboot reads the disk instead).
fn read_back(c: &mut Criterion) {
    let mut g = c.benchmark_group("spool_read");
    g.measurement_time(Duration::from_secs(5));
    for (name, size) in [("64KiB", 64usize << 10), ("1MiB", 1 << 20)] {
        let payload = vec![0x3c_u8; size];
        let t = tempfile::tempdir().expect("tempdir");
        let mut s = open(&t.path().join("traces"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new("next_unsent+settle", name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                // In chunks of 32 MiB at most, well inside the spool's
                // bound, so that nothing is evicted before it is read.
                let chunk = ((32 << 20) / size as u64).max(1);
                while left > 0 {
                    let n = left.min(chunk);
                    for _ in 0..n {
                        s.append(&payload, 1000).expect("append");
                    }
                    let start = Instant::now();
                    let mut read = 0;
                    while read < n {
                        let batch = s.next_unsent(16).expect("next_unsent");
                        assert!(!batch.is_empty(), "appended records are there to read");
                        read += batch.len() as u64;
                        for r in batch {
                            black_box(&r.payload);
                            s.settle(r.seq).expect("settle");
                        }
                    }
                    total += start.elapsed();
                    left -= n;
                }
                total
            })
        });
        s.close().expect("close");
    }
    g.finish();
}

criterion_group!(benches, append, sync_latency, read_back);
criterion_main!(benches);
