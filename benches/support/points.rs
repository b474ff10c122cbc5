//! The metric points both drain benchmarks write (`benches/metric_encode.rs`
//! and `benches/spool_drain.rs`), so that their figures are of the same
//! batches: `COUNTERS` cumulative sums of `SERIES` series each, three short
//! attributes a point.

use std::sync::Arc;

use otlp_sink::otlp::{KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Temporality};

/// Counters in a batch.
pub const COUNTERS: usize = 50;
/// Series per counter.
pub const SERIES: i64 = 100;
/// Points in a batch.
pub const POINTS: u64 = COUNTERS as u64 * SERIES as u64;

/// What a batch's points share.
pub struct Points {
    resource: Arc<Resource>,
    scope: Arc<Scope>,
    descriptors: Vec<Arc<MetricDescriptor>>,
}

impl Points {
    /// The resource, a scope named `scope`, and the counters.
    pub fn new(scope: &str) -> Self {
        let descriptors = (0..COUNTERS)
            .map(|c| {
                Arc::new(MetricDescriptor::new(
                    format!("requests_{c}"),
                    MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
                ))
            })
            .collect();
        Self {
            resource: Arc::new(Resource::new([KeyValue::new("service.name", "bench")])),
            scope: Arc::new(Scope::new(scope)),
            descriptors,
        }
    }

    /// One batch: a point per series of every counter.
    pub fn batch(&self) -> Vec<MetricPoint> {
        let mut points = Vec::with_capacity(POINTS as usize);
        for d in &self.descriptors {
            for i in 0..SERIES {
                points.push(
                    MetricPoint::new(self.resource.clone(), self.scope.clone(), d.clone(), MetricValue::Int(i))
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
}
