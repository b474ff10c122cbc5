//! What ending a span costs the threads that end it, three ways measured in
//! ONE process, in alternating rounds, so that the machine's drift between
//! variants (criterion runs them one after the other) cannot move the ratios:
//!
//! - `floor`: each 352-byte `SpanData` moved into a slot of a preallocated,
//!   already touched array, with no synchronisation at all: what any
//!   processor that takes the span by value pays;
//! - `ours`: `OtlpSpanProcessor::on_end` (an `OtlpExporter` sending to the
//!   in-process `Receiver`), its queue one ring (`with_queue_shards(1)`),
//!   sized so that nothing drops;
//! - `ours, sharded`: the same with the queue cut into `--shards` shards
//!   (`SinkConfig::with_queue_shards`; default 8, the exporter's default,
//!   `OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS`), each the size of the
//!   one-ring queue, so that a thread alone still has room for a round;
//! - `official`: the SDK's `BatchSpanProcessor::on_end`, with an exporter
//!   that counts and discards.
//!
//! Each at 1 and at 8 threads. A round times every variant once, in an order
//! that rotates from round to round; round 0 warms up and is not counted.
//! The timing threads live for the whole run, as an application's do (a
//! sharded queue's thread keeps its shard from round to round). Each makes
//! its spans before a barrier (untimed), then times its own loop of moves
//! or `on_end` calls; the figure of a variant in a round is
//! the mean over its threads of (loop time / spans). The processors are
//! flushed after each timed loop (untimed), so no backlog carries over.
//!
//! Prints min / median / max ns per span of each variant and the ratios of
//! the medians (ours / floor, ours / official, at 1 and 8 threads), and the
//! load average at start and end. Progress goes to stderr. Fails if any
//! timed span was dropped, by either processor.
//!
//! Each figure is given twice: by the wall clock (what the caller waits,
//! time spent off the core included: on 2 shared cores, the export runtime
//! and the receiver that `ours` keeps busy, and other programs, preempt the
//! timed threads) and by the threads' own CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`: what the calls cost the core they run on,
//! cache misses and system calls included, waits for a core left out).
//!
//! Run: `cargo bench --bench on_end_ab` (about 10 s); options after `--`:
//! `--rounds N` (default 61), `--spans N` (spans per round and thread
//! count, default 20000), `--threads 1,8`, `--shards N`, `--fresh-threads`
//! (new timing threads for every loop, as `vs_official` spawns them), `--only floor|ours|ours,|official`
//! (that variant alone, at the first thread count: for `perf record`).

use std::future::Future;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Instant;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor};
use otlp_sink::receiver::Receiver;
use otlp_sink::{sink::QueueMemory, OtlpExporter, Signal, SinkConfig};

#[path = "support/spans.rs"]
mod spans;
use spans::span;

/// Counts the batch processor's spans and drops them.
#[derive(Debug)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(batch);
        std::future::ready(Ok(()))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Floor,
    Ours,
    OursSharded,
    Official,
}

const VARIANTS: [Variant; 4] = [Variant::Floor, Variant::Ours, Variant::OursSharded, Variant::Official];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor (move into a preallocated slot)",
            Self::Ours => "ours (OtlpSpanProcessor::on_end)",
            Self::OursSharded => "ours, sharded queue (--shards)",
            Self::Official => "official (BatchSpanProcessor::on_end)",
        }
    }
}

struct Args {
    /// `--only floor|ours|ours,|official`: time that variant alone (for `perf`), no ratios.
    only: Option<Variant>,
    rounds: usize,
    spans: usize,
    shards: usize,
    /// `--fresh-threads`: new timing threads for every loop (as
    /// `vs_official`'s W3 spawns them), not threads that live for the run.
    fresh_threads: bool,
    threads: Vec<usize>,
}

fn args() -> Args {
    let mut parsed = Args {
        only: None,
        rounds: 61,
        spans: 20_000,
        shards: otlp_sink::sdk::OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS,
        fresh_threads: false,
        threads: vec![1, 8],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => parsed.rounds = value("--rounds").parse().expect("--rounds N"),
            "--only" => {
                let name = value("--only");
                let found = VARIANTS.into_iter().find(|v| v.name().starts_with(&name));
                parsed.only = Some(found.unwrap_or_else(|| panic!("--only {name}: not floor, ours or official")));
            }
            "--fresh-threads" => parsed.fresh_threads = true,
            "--shards" => parsed.shards = value("--shards").parse().expect("--shards N"),
            "--spans" => parsed.spans = value("--spans").parse().expect("--spans N"),
            "--threads" => {
                parsed.threads = value("--threads").split(',').map(|t| t.parse().expect("--threads 1,8")).collect();
            }
            // `cargo bench` passes `--bench`; libtest's other flags mean nothing here.
            _ => {}
        }
    }
    assert!(parsed.rounds > 0 && parsed.spans > 0, "--rounds and --spans must be positive");
    parsed
}

/// A worker's floor slots: allocated and touched once, reused by every round.
fn floor_slots(len: usize) -> Vec<MaybeUninit<SpanData>> {
    let mut slots: Vec<MaybeUninit<SpanData>> = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialisation; every byte is written
    // once so that the pages are resident.
    unsafe {
        slots.set_len(len);
        std::ptr::write_bytes(slots.as_mut_ptr(), 0, len);
    }
    slots
}

/// The calling thread's CPU time: unlike the wall clock, it leaves out the
/// time the thread waits for a core, which on 2 shared cores is most of the
/// wall clock's spread (the export runtime and the receiver of `ours`, other
/// programs).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What a worker is asked to time: one loop of `variant` over `per_thread`
/// spans, started with the other workers of the job at `barrier`.
struct Job {
    variant: Variant,
    per_thread: usize,
    barrier: Arc<Barrier>,
}

/// A timing thread, alive for the whole run like an application's threads
/// (a sharded queue's thread keeps its shard, as it would in a program):
/// makes its spans (untimed), waits at the job's barrier, times its loop,
/// and sends back ns per span by the wall clock and by its CPU time.
fn worker(
    jobs: mpsc::Receiver<Job>,
    results: mpsc::Sender<[f64; 2]>,
    processors: [&dyn SpanProcessor; 3],
    mut slots: Vec<MaybeUninit<SpanData>>,
) {
    for Job { variant, per_thread, barrier } in jobs {
        let processor = match variant {
            Variant::Ours | Variant::Floor => processors[0],
            Variant::OursSharded => processors[1],
            Variant::Official => processors[2],
        };
        let spans: Vec<SpanData> = (0..per_thread).map(|_| span("on_end_ab")).collect();
        barrier.wait();
        let cpu = thread_cpu_ns();
        let started = Instant::now();
        if variant == Variant::Floor {
            for (slot, sp) in slots.iter_mut().zip(spans) {
                slot.write(black_box(sp));
            }
        } else {
            for sp in spans {
                processor.on_end(sp);
            }
        }
        let took = started.elapsed();
        let cpu = thread_cpu_ns() - cpu;
        if variant == Variant::Floor {
            for slot in &mut slots[..per_thread] {
                // SAFETY: the loop above wrote these, each is dropped once here.
                unsafe { slot.assume_init_drop() };
            }
        }
        let sent = results.send([took.as_nanos() as f64 / per_thread as f64, cpu as f64 / per_thread as f64]);
        sent.expect("the main thread waits for every result");
    }
}

/// One timed loop of `variant` on the first `threads` workers, then the
/// processor's flush (untimed): mean ns per span over the threads, by the
/// wall clock and by their CPU time.
fn timed(
    variant: Variant,
    threads: usize,
    per_thread: usize,
    workers: &[mpsc::Sender<Job>],
    results: &mpsc::Receiver<[f64; 2]>,
    processors: [&dyn SpanProcessor; 3],
) -> [f64; 2] {
    let barrier = Arc::new(Barrier::new(threads));
    for worker in &workers[..threads] {
        worker.send(Job { variant, per_thread, barrier: Arc::clone(&barrier) }).expect("a worker");
    }
    let mut sum = [0.0; 2];
    for _ in 0..threads {
        let [wall, cpu] = results.recv().expect("a worker's result");
        sum = [sum[0] + wall, sum[1] + cpu];
    }
    let flushed = match variant {
        Variant::Floor => Ok(()),
        Variant::Ours => processors[0].force_flush(),
        Variant::OursSharded => processors[1].force_flush(),
        Variant::Official => processors[2].force_flush(),
    };
    flushed.expect("flushed between rounds");
    sum.map(|n| n / threads as f64)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args = args();
    let load_before = loadavg();
    let max_threads = args.threads.iter().copied().max().expect("a thread count");
    // Room for a whole round of every thread count, so that nothing drops
    // even if the actor took nothing during the timed loop.
    let capacity = (args.spans + max_threads).next_power_of_two();

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let receiver = runtime.block_on(Receiver::start()).expect("the receiver");
    let exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_signal_sink_config(
            Signal::Traces,
            // Resident: a lazy queue this size is in its first lap for most
            // of the run, and every 11th push would take a page fault.
            SinkConfig::default()
                .with_queue_capacity(capacity)
                .with_queue_shards(1)
                .with_batch_size(2048)
                .with_queue_memory(QueueMemory::Resident),
        )
        .build_without_env()
        .expect("the exporter");
    let ours = exporter.span_processor();
    let sharded_exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_signal_sink_config(
            Signal::Traces,
            SinkConfig::default()
                .with_queue_capacity(capacity * args.shards)
                .with_queue_shards(args.shards)
                .with_batch_size(2048)
                .with_queue_memory(QueueMemory::Resident),
        )
        .build_without_env()
        .expect("the sharded exporter");
    let sharded = sharded_exporter.span_processor();
    let exported = Arc::new(AtomicU64::new(0));
    let official = BatchSpanProcessor::builder(Discard(Arc::clone(&exported)))
        .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(capacity).build())
        .build();
    let processors: [&dyn SpanProcessor; 3] = [&ours, &sharded, &official];

    // results[clock][thread count index][variant] = ns per span of each counted round.
    let mut results = vec![vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; args.threads.len()]; 2];
    let mut official_ended = 0u64;
    let started = Instant::now();
    std::thread::scope(|s| {
        let (result_tx, result_rx) = mpsc::channel();
        let workers: Vec<mpsc::Sender<Job>> = (0..max_threads)
            .map(|_| {
                let (job_tx, job_rx) = mpsc::channel();
                let (result_tx, slots) = (result_tx.clone(), floor_slots(args.spans));
                s.spawn(move || worker(job_rx, result_tx, processors, slots));
                job_tx
            })
            .collect();
        for round in 0..=args.rounds {
            eprintln!("round {round}/{} ({:.1} s)", args.rounds, started.elapsed().as_secs_f64());
            for (ti, &threads) in args.threads.iter().enumerate() {
                let per_thread = args.spans / threads;
                for k in 0..VARIANTS.len() {
                    let variant = VARIANTS[(round + k) % VARIANTS.len()];
                    if args.only.is_some_and(|only| only != variant) {
                        continue;
                    }
                    let ns = if args.fresh_threads {
                        std::thread::scope(|fresh| {
                            let (result_tx, result_rx) = mpsc::channel();
                            let workers: Vec<mpsc::Sender<Job>> = (0..threads)
                                .map(|_| {
                                    let (job_tx, job_rx) = mpsc::channel();
                                    let (result_tx, slots) = (result_tx.clone(), floor_slots(per_thread));
                                    fresh.spawn(move || worker(job_rx, result_tx, processors, slots));
                                    job_tx
                                })
                                .collect();
                            timed(variant, threads, per_thread, &workers, &result_rx, processors)
                        })
                    } else {
                        timed(variant, threads, per_thread, &workers, &result_rx, processors)
                    };
                    if variant == Variant::Official {
                        official_ended += (per_thread * threads) as u64;
                    }
                    if round > 0 {
                        for (clock, ns) in ns.into_iter().enumerate() {
                            results[clock][ti][variant as usize].push(ns);
                        }
                    }
                }
            }
        }
        // The workers end when their job channels close.
        drop(workers);
    });

    let ours_dropped = exporter.stats().traces.sink.dropped + sharded_exporter.stats().traces.sink.dropped;
    let official_lost = official_ended - exported.load(Ordering::Relaxed);
    println!(
        "on_end A/B: {} rounds (+1 warm-up), {} spans per round and thread count, {} threads, load average \
         {load_before} at start, {} at end",
        args.rounds,
        args.spans,
        if args.fresh_threads { "fresh" } else { "long-lived" },
        loadavg()
    );
    for (clock, label) in ["wall clock", "thread CPU time"].into_iter().enumerate() {
        if let Some(only) = args.only {
            let values = &mut results[clock][0][only as usize];
            values.sort_by(f64::total_cmp);
            println!("{label}: median {:.1} ns/span", median(values));
            continue;
        }
        println!("-- {label}");
        let mut medians = vec![[0.0; 4]; args.threads.len()];
        for (ti, &threads) in args.threads.iter().enumerate() {
            for variant in VARIANTS {
                let values = &mut results[clock][ti][variant as usize];
                values.sort_by(f64::total_cmp);
                let m = median(values);
                medians[ti][variant as usize] = m;
                println!(
                    "{threads} thread(s) {:<40} min {:>7.1}  median {:>7.1}  max {:>7.1} ns/span",
                    variant.name(),
                    values[0],
                    m,
                    values[values.len() - 1]
                );
            }
        }
        for (ti, &threads) in args.threads.iter().enumerate() {
            let [floor_m, ours_m, sharded_m, official_m] = medians[ti];
            println!(
                "{threads} thread(s), {label}: ours / floor {:.2}, ours / official {:.2}; sharded / floor {:.2}, \
                 sharded / official {:.2}, sharded / ours {:.2}",
                ours_m / floor_m,
                ours_m / official_m,
                sharded_m / floor_m,
                sharded_m / official_m,
                sharded_m / ours_m,
            );
        }
    }
    assert_eq!(ours_dropped, 0, "ours dropped {ours_dropped} spans: the measurement is void");
    assert_eq!(official_lost, 0, "the batch processor lost {official_lost} spans: the measurement is void");
    println!("dropped: none (ours: stats().traces.sink.dropped = 0; official: every span ended was exported)");
    official.shutdown().expect("the batch processor drained");
    exporter.shutdown().expect("clean shutdown");
    sharded_exporter.shutdown().expect("clean shutdown");
}
