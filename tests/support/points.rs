//! Telemetry points with known counts, for the drain tests.

use std::sync::Arc;

use otlp_sink::otlp::{
    KeyValue, LogRecord, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Severity, SpanRecord,
    Temporality,
};

/// Shared by every point one test makes, as an SDK's points share them.
pub struct Shared {
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            resource: Arc::new(Resource::new([KeyValue::new("service.name", "otlp-sink-tests")])),
            scope: Arc::new(Scope::new("otlp-sink/tests").with_version("1")),
        }
    }

    /// `metrics` monotonic counters with `series` points each, 3 attributes a point.
    pub fn counters(&self, metrics: usize, series: usize) -> Vec<MetricPoint> {
        let mut points = Vec::with_capacity(metrics * series);
        for m in 0..metrics {
            let descriptor = Arc::new(
                MetricDescriptor::new(
                    format!("requests_{m}"),
                    MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
                )
                .with_unit("1"),
            );
            for s in 0..series {
                points.push(
                    MetricPoint::new(
                        self.resource.clone(),
                        self.scope.clone(),
                        descriptor.clone(),
                        MetricValue::Int(s as i64),
                    )
                    .with_attributes([
                        KeyValue::new("series", s as i64),
                        KeyValue::new("route", format!("/api/{}", s % 17)),
                        KeyValue::new("ok", s % 3 != 0),
                    ])
                    .with_time(1_000_000_000, 2_000_000_000),
                );
            }
        }
        points
    }

    /// `n` spans with distinct ids.
    pub fn spans(&self, n: usize) -> Vec<SpanRecord> {
        (0..n)
            .map(|i| {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                SpanRecord::new(
                    self.resource.clone(),
                    self.scope.clone(),
                    trace_id,
                    (i as u64 + 1).to_be_bytes(),
                    format!("span {i}"),
                )
                .with_time(1_000, 2_000)
            })
            .collect()
    }

    /// `n` log records.
    pub fn logs(&self, n: usize) -> Vec<LogRecord> {
        (0..n)
            .map(|i| {
                LogRecord::new(self.resource.clone(), self.scope.clone(), 1_000 + i as u64)
                    .with_severity(Severity::Info, "INFO")
                    .with_body(format!("record {i}"))
            })
            .collect()
    }
}
