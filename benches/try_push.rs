//! The producer's hot path: `BackgroundSink::try_push` with the drain held
//! back, so the actor takes nothing off the queue while a sample is timed and
//! every timed push is a real enqueue (the queue is sized for the sample).
//!
//! Beside it, `crossbeam_queue::ArrayQueue::push` in the same shape: the
//! lock-free bounded queue the hand-written ring has to beat to be kept.
//!
//! `first_lap`: pushes of span-sized messages into a fresh queue of the
//! default 10 000 slots, so that every timed push is in the queue's first
//! lap, with the queue's memory committed lazily (the default) or all at
//! start ([`QueueMemory::Resident`]), and a lazy queue's second lap
//! (`lazy_second_lap`: the steady state). criterion times each variant;
//! after it, `first_lap_ab` alternates the three, A B C A B C, in rounds of
//! one fresh queue each, and prints min, median and max ns per push and the ratio of
//! the medians: criterion's variants run one after the other, and a shared
//! machine drifts in between.
//!
//! Run: `cargo bench --bench try_push` (`-- first_lap` for the first lap alone)

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use otlp_sink::{
    sink::QueueMemory,
    sink::{DrainError, TryPushError},
    BackgroundSink, SinkConfig, SinkDrain, SinkHandle,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A drain that waits for a permit before each batch: held back until the
/// benchmark releases it after timing.
struct HeldBack {
    gate: Arc<Semaphore>,
    /// Calls to `write_batch` so far, counted on entry.
    entered: Arc<AtomicUsize>,
}

impl<T: Send + 'static> SinkDrain<T> for HeldBack {
    async fn write_batch(&mut self, batch: Vec<T>) -> Result<(), DrainError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.expect("gate open").forget();
        black_box(batch);
        Ok(())
    }
}

struct Fixture<T = u64> {
    sink: BackgroundSink<T>,
    handle: SinkHandle,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

fn fixture<T: Send + 'static>(runtime: &tokio::runtime::Runtime, config: SinkConfig) -> Fixture<T> {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let drain = HeldBack { gate: gate.clone(), entered: entered.clone() };
    let (sink, handle) =
        BackgroundSink::spawn_on(drain, config, CancellationToken::new(), runtime.handle()).expect("valid config");
    Fixture { sink, handle, gate, entered }
}

impl<T: Send + 'static> Fixture<T> {
    /// Lets the drain go and waits for the actor to finish: not timed.
    fn finish(self, runtime: &tokio::runtime::Runtime) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        drop(self.sink);
        runtime.block_on(self.handle.shutdown()).expect("clean shutdown");
    }
}

/// Room for every timed push, so each one is a real enqueue.
fn capacity(iters: u64, threads: usize) -> usize {
    (iters as usize * threads).max(1) + 512
}

/// Each of `threads` producer threads pushes `iters` messages through its
/// own handle (from `handle`); the time returned is the mean of the
/// threads' own elapsed times, so the figure is the cost of one push as a
/// producer sees it.
fn timed_pushes<H: Send>(
    threads: usize,
    iters: u64,
    handle: impl Fn() -> H,
    push: impl Fn(&H, u64) + Sync,
) -> Duration {
    let start = Barrier::new(threads);
    let total: Duration = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let handle = handle();
                let (start, push) = (&start, &push);
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for i in 0..iters {
                        push(&handle, black_box(i));
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total / threads as u32
}

fn producers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("try_push");
    group.throughput(Throughput::Elements(1));
    // The measurement time is criterion's (5 s unless `--measurement-time`
    // says otherwise): set here, it would override the command line.

    for threads in [1usize, 8] {
        group.bench_with_input(BenchmarkId::new("producers", threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                // Resident: each sample's queue is fresh, so with the lazy
                // default every push would be in a first lap (`first_lap`
                // times that); this figure is the push into memory already
                // committed, as in any lap after the first.
                let config = SinkConfig::default()
                    .with_queue_capacity(capacity(iters, threads))
                    .with_queue_memory(QueueMemory::Resident);
                let fixture = fixture(&runtime, config);
                let per_push = timed_pushes(
                    threads,
                    iters,
                    || fixture.sink.clone(),
                    |sink, i| {
                        if let Err(err) = sink.try_push(i) {
                            panic!("push refused: {err}");
                        }
                    },
                );
                fixture.finish(&runtime);
                per_push
            });
        });
    }

    // The same pushes into an `ArrayQueue` of the same capacity, with no
    // consumer (nothing would take from it while a sample is timed either).
    // The ring's figure above also has the sink's own work in it: the
    // overflow policy check and the `wake_at` load.
    for threads in [1usize, 8] {
        group.bench_with_input(BenchmarkId::new("array_queue", threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                let queue = Arc::new(ArrayQueue::new(capacity(iters, threads)));
                let per_push = timed_pushes(
                    threads,
                    iters,
                    || Arc::clone(&queue),
                    |queue, i| {
                        if let Err(refused) = queue.push(i) {
                            panic!("push refused: {refused}");
                        }
                    },
                );
                // Dropped untimed, like the sink's fixture.
                drop(queue);
                per_push
            });
        });
    }

    // The drop path: the queue is full, so every push is refused and counted.
    group.bench_function("full_queue_drop", |b| {
        let fixture = fixture(&runtime, SinkConfig::default().with_queue_capacity(1024).with_batch_size(1));
        // Once the actor holds one message inside the gated write, nothing
        // leaves the queue: fill it, and every timed push is refused.
        fixture.sink.try_push(0).expect("empty queue");
        while fixture.entered.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        while fixture.sink.try_push(0).is_ok() {}
        b.iter(|| match fixture.sink.try_push(black_box(1)) {
            Err(TryPushError::Full(msg)) => black_box(msg),
            other => panic!("expected a full queue, got {other:?}"),
        });
        fixture.finish(&runtime);
    });
    group.finish();
}

/// A message of a span's size (`SpanData` is 352 bytes).
type SpanSized = [u64; 44];

/// The default queue capacity: one lap of it is what `first_lap` times.
const LAP: usize = 10_000;

/// Pushes `pushes` span-sized messages into fresh queues of [`LAP`] slots
/// (a new one every `LAP` pushes, made and dropped untimed), committed as
/// `memory` says; returns the time of the pushes alone. Each queue is one
/// fresh mapping (the sink maps its slots from the kernel), so a lazy one
/// is uncommitted when the timing starts. With `second_lap`, a whole lap is
/// pushed and taken first, untimed, so that the timed pushes are the
/// steady state of a queue past its first lap.
fn lap_pushes(runtime: &tokio::runtime::Runtime, memory: QueueMemory, second_lap: bool, pushes: u64) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = pushes;
    while left > 0 {
        let n = left.min(LAP as u64);
        let config = SinkConfig::default().with_queue_capacity(LAP).with_queue_memory(memory);
        let fixture = fixture::<SpanSized>(runtime, config);
        if second_lap {
            for i in 0..LAP as u64 {
                fixture.sink.try_push([i; 44]).expect("room for a lap");
            }
            // One permit per batch at most, then the flush: every message is
            // taken; the permits left are taken back, so that the drain is
            // held back again while the second lap is timed.
            fixture.gate.add_permits(LAP);
            runtime.block_on(fixture.sink.flush()).expect("the first lap written");
            let left = u32::try_from(fixture.gate.available_permits()).expect("at most LAP");
            fixture.gate.try_acquire_many(left).expect("no one else takes permits").forget();
        }
        let began = Instant::now();
        for i in 0..n {
            if let Err(err) = fixture.sink.try_push(black_box([i; 44])) {
                panic!("push refused: {err}");
            }
        }
        timed += began.elapsed();
        fixture.finish(runtime);
        left -= n;
    }
    timed
}

/// The variants `first_lap` and `first_lap_ab` time: (name, memory, second lap).
const LAP_VARIANTS: [(&str, QueueMemory, bool); 3] = [
    ("lazy", QueueMemory::Lazy, false),
    ("resident", QueueMemory::Resident, false),
    ("lazy_second_lap", QueueMemory::Lazy, true),
];

fn first_lap(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("first_lap");
    group.throughput(Throughput::Elements(1));
    for (name, memory, second_lap) in LAP_VARIANTS {
        group.bench_function(name, |b| b.iter_custom(|iters| lap_pushes(&runtime, memory, second_lap, iters)));
    }
    group.finish();
}

/// `first_lap`'s variants alternated, A B C A B C, one whole lap a round.
/// Runs unless a filter is given that `first_lap` does not contain.
fn first_lap_ab(_: &mut Criterion) {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !"first_lap_ab".contains(f.as_str())) {
        return;
    }
    const ROUNDS: usize = 41;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut ns = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        for (i, (_, memory, second_lap)) in LAP_VARIANTS.into_iter().enumerate() {
            ns[i].push(lap_pushes(&runtime, memory, second_lap, LAP as u64).as_nanos() as f64 / LAP as f64);
        }
    }
    let mut medians = [0.0; 3];
    for (i, (name, ..)) in LAP_VARIANTS.into_iter().enumerate() {
        ns[i].sort_by(f64::total_cmp);
        medians[i] = ns[i][ROUNDS / 2];
        println!(
            "first_lap_ab/{name}: ns per push over a lap of {LAP}, {ROUNDS} rounds: min {:.1} median {:.1} max {:.1}",
            ns[i][0],
            medians[i],
            ns[i][ROUNDS - 1]
        );
    }
    println!(
        "first_lap_ab: median ratios lazy / resident {:.2}, lazy_second_lap / resident {:.2}",
        medians[0] / medians[1],
        medians[2] / medians[1]
    );
}

criterion_group!(benches, producers, first_lap, first_lap_ab);
criterion_main!(benches);
