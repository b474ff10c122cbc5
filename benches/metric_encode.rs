//! The direct `MetricsDrain` user's cost per point: `MetricPoint`s written
//! to a `MetricsDrain` and flushed, against the in-process receiver on
//! loopback. Each sample is one batch of 50 counters x 100 series x 3
//! attributes (5 000 points), encoded into requests, sent, acknowledged.
//! The figure includes gRPC and the receiver's decoding, which run on the
//! same cores: the encoding alone is timed by the crate's `#[ignore]`
//! harness `timing_direct_metric_points`.
//!
//! Run: `cargo bench --bench metric_encode`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otlp_sink::receiver::Receiver;
use otlp_sink::{
    otlp::{KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Temporality},
    ExporterConfig, MetricsDrain, SinkDrain,
};

const COUNTERS: usize = 50;
const SERIES: i64 = 100;

fn batch(resource: &Arc<Resource>, scope: &Arc<Scope>, descriptors: &[Arc<MetricDescriptor>]) -> Vec<MetricPoint> {
    let mut points = Vec::with_capacity(descriptors.len() * SERIES as usize);
    for d in descriptors {
        for i in 0..SERIES {
            points.push(
                MetricPoint::new(resource.clone(), scope.clone(), d.clone(), MetricValue::Int(i))
                    .with_attributes([
                        KeyValue::new("route", format!("/r/{i}")),
                        KeyValue::new("code", 200 + i % 5),
                        KeyValue::new("host", "h1"),
                    ])
                    .with_time(1_700_000_000_000_000_000, 1_700_000_060_000_000_000),
            );
        }
    }
    points
}

fn metrics_drain(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (receiver, mut drain) = runtime.block_on(async {
        let receiver = Receiver::start().await.expect("receiver");
        let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env().unwrap();
        let drain = MetricsDrain::connect(&config).await.expect("drain");
        (receiver, drain)
    });
    let resource = Arc::new(Resource::new([KeyValue::new("service.name", "bench")]));
    let scope = Arc::new(Scope::new("metric_encode"));
    let descriptors: Vec<_> = (0..COUNTERS)
        .map(|c| {
            Arc::new(MetricDescriptor::new(
                format!("requests_{c}"),
                MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
            ))
        })
        .collect();

    let mut group = c.benchmark_group("metrics_drain");
    group.throughput(Throughput::Elements(COUNTERS as u64 * SERIES as u64));
    group.bench_function("write_batch_and_flush_5000_points", |b| {
        b.iter_batched(
            || batch(&resource, &scope, &descriptors),
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
