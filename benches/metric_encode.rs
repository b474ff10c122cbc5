//! The direct `MetricsDrain` user's cost per point: `MetricPoint`s written
//! to a `MetricsDrain` and flushed, against the in-process receiver on
//! loopback. Each sample is one batch of 50 counters x 100 series x 3
//! attributes (5 000 points), encoded into requests, sent, acknowledged.
//! The figure includes gRPC and the receiver's decoding, which run on the
//! same cores: the encoding alone is timed by the crate's `#[ignore]`
//! harness `timing_direct_metric_points`.
//!
//! Run: `cargo bench --bench metric_encode`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otlp_sink::receiver::Receiver;
use otlp_sink::{ExporterConfig, MetricsDrain, SinkDrain};

#[path = "support/points.rs"]
mod points;
use points::{Points, POINTS};

fn metrics_drain(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (receiver, mut drain) = runtime.block_on(async {
        let receiver = Receiver::start().await.expect("receiver");
        let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env().unwrap();
        let drain = MetricsDrain::connect(&config).await.expect("drain");
        (receiver, drain)
    });
    let points = Points::new("metric_encode");

    let mut group = c.benchmark_group("metrics_drain");
    group.throughput(Throughput::Elements(POINTS));
    group.bench_function("write_batch_and_flush_5000_points", |b| {
        b.iter_batched(
            || points.batch(),
            |points| {
                runtime.block_on(async {
                    drain.write_batch(points).await.unwrap();
                    drain.flush_durable().await.unwrap();
                })
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    drop(receiver);
}

criterion_group!(benches, metrics_drain);
criterion_main!(benches);
