//! The producer's hot path: `BackgroundSink::try_push` with the drain held
//! back, so the actor takes nothing off the queue while a sample is timed and
//! every timed push is a real enqueue (the queue is sized for the sample).
//!
//! Beside it, `crossbeam_queue::ArrayQueue::push` in the same shape: the
//! lock-free bounded queue the hand-written ring has to beat to be kept.
//!
//! Run: `cargo bench --bench try_push`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use otlp_sink::{
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

impl SinkDrain<u64> for HeldBack {
    async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        self.gate.acquire().await.expect("gate open").forget();
        black_box(batch);
        Ok(())
    }
}

struct Fixture {
    sink: BackgroundSink<u64>,
    handle: SinkHandle,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

fn fixture(runtime: &tokio::runtime::Runtime, config: SinkConfig) -> Fixture {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let drain = HeldBack { gate: gate.clone(), entered: entered.clone() };
    let (sink, handle) =
        BackgroundSink::spawn_on(drain, config, CancellationToken::new(), runtime.handle()).expect("valid config");
    Fixture { sink, handle, gate, entered }
}

impl Fixture {
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
                let fixture = fixture(&runtime, SinkConfig::default().with_queue_capacity(capacity(iters, threads)));
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

criterion_group!(benches, producers);
criterion_main!(benches);
