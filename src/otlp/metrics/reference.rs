//! The encoder this crate had before the hand-written writer, kept as the
//! test oracle: every point moved into its prost struct, measured and
//! encoded by prost. [`Metrics`](super::Metrics) must write the very same
//! bytes.

use std::sync::Arc;

use prost::Message;

use super::encode::{DATA_POINTS_TAG, METRICS_TAG};
use super::{ExemplarValue, ExponentialBuckets, MetricDescriptor, MetricKind, MetricPoint, MetricValue};
use crate::otlp::common::{attributes_into_pb, id_bytes, Resource, Scope};
use crate::otlp::encode::{encode_request, retain_indices, EncodeError, Encoding, Leaves, Level, ResourceNode, Shape};
use crate::otlp::Exemplar;
use crate::pb::collector::metrics::v1 as collector;
use crate::pb::metrics::v1 as pb;

/// The metrics signal through prost structs.
pub(crate) struct ProstMetrics;

fn exemplar_into_pb(exemplar: Exemplar) -> pb::Exemplar {
    pb::Exemplar {
        filtered_attributes: attributes_into_pb(exemplar.filtered_attributes),
        time_unix_nano: exemplar.time_unix_nano,
        span_id: id_bytes(exemplar.span_id),
        trace_id: id_bytes(exemplar.trace_id),
        value: Some(match exemplar.value {
            ExemplarValue::Int(i) => pb::exemplar::Value::AsInt(i),
            ExemplarValue::Double(d) => pb::exemplar::Value::AsDouble(d),
        }),
    }
}

fn buckets_into_pb(buckets: ExponentialBuckets) -> pb::exponential_histogram_data_point::Buckets {
    pb::exponential_histogram_data_point::Buckets { offset: buckets.offset, bucket_counts: buckets.bucket_counts }
}

impl Encoding for ProstMetrics {
    type Point = MetricPoint;
    type Key = Arc<MetricDescriptor>;
    type Leaves = pb::metric::Data;
    type Request = collector::ExportMetricsServiceRequest;

    const ITEM: &'static str = "metric data point";

    fn parts(point: &MetricPoint) -> (&Arc<Resource>, &Arc<Scope>, &Arc<MetricDescriptor>) {
        (&point.resource, &point.scope, &point.descriptor)
    }

    fn bucket(descriptor: &Arc<MetricDescriptor>) -> (pb::metric::Data, Shape) {
        use pb::metric::Data;
        let data = match descriptor.kind {
            MetricKind::Sum { monotonic, temporality } => Data::Sum(pb::Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality.into_pb(),
                is_monotonic: monotonic,
            }),
            MetricKind::Gauge => Data::Gauge(pb::Gauge { data_points: Vec::new() }),
            MetricKind::Histogram { temporality } => Data::Histogram(pb::Histogram {
                data_points: Vec::new(),
                aggregation_temporality: temporality.into_pb(),
            }),
            MetricKind::ExponentialHistogram { temporality } => Data::ExponentialHistogram(pb::ExponentialHistogram {
                data_points: Vec::new(),
                aggregation_temporality: temporality.into_pb(),
            }),
            MetricKind::Summary => Data::Summary(pb::Summary { data_points: Vec::new() }),
        };
        // The `Metric` without its data, and the data message without points.
        let metric_header = metric_head(descriptor).encoded_len();
        let (data_tag, data_header) = match &data {
            Data::Gauge(m) => (5, m.encoded_len()),
            Data::Sum(m) => (7, m.encoded_len()),
            Data::Histogram(m) => (9, m.encoded_len()),
            Data::ExponentialHistogram(m) => (10, m.encoded_len()),
            Data::Summary(m) => (11, m.encoded_len()),
        };
        let shape = Shape::nested(
            Level { tag: METRICS_TAG, header: metric_header },
            Level { tag: data_tag, header: data_header },
            DATA_POINTS_TAG,
        );
        (data, shape)
    }

    fn push(
        data: &mut pb::metric::Data,
        descriptor: &Arc<MetricDescriptor>,
        point: MetricPoint,
    ) -> Result<usize, EncodeError> {
        use pb::metric::Data;
        let MetricPoint { attributes, start_time_unix_nano, time_unix_nano, value, exemplars, flags, .. } = point;
        // Moved into protobuf before the kind is checked: a mismatch is a bug
        // in the producer, not a path worth optimizing.
        let attributes = attributes_into_pb(attributes);
        let exemplars = exemplars.into_iter().map(exemplar_into_pb).collect();
        let number = |attributes, exemplars, value| pb::NumberDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano,
            exemplars,
            flags,
            value: Some(value),
        };
        let len = match (data, value) {
            (Data::Sum(pb::Sum { data_points, .. }) | Data::Gauge(pb::Gauge { data_points }), MetricValue::Int(i)) => {
                push_len(data_points, number(attributes, exemplars, pb::number_data_point::Value::AsInt(i)))
            }
            (
                Data::Sum(pb::Sum { data_points, .. }) | Data::Gauge(pb::Gauge { data_points }),
                MetricValue::Double(d),
            ) => push_len(data_points, number(attributes, exemplars, pb::number_data_point::Value::AsDouble(d))),
            (Data::Histogram(_), MetricValue::Histogram(h)) if !h.buckets_fit_bounds() => {
                return Err(EncodeError::BucketMismatch {
                    metric: descriptor.name.clone(),
                    bucket_counts: h.bucket_counts.len(),
                    explicit_bounds: h.explicit_bounds.len(),
                })
            }
            (Data::Histogram(histogram), MetricValue::Histogram(h)) => push_len(
                &mut histogram.data_points,
                pb::HistogramDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    count: h.count,
                    sum: h.sum,
                    bucket_counts: h.bucket_counts,
                    explicit_bounds: h.explicit_bounds,
                    exemplars,
                    flags,
                    min: h.min,
                    max: h.max,
                },
            ),
            (Data::ExponentialHistogram(histogram), MetricValue::ExponentialHistogram(h)) => push_len(
                &mut histogram.data_points,
                pb::ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    count: h.count,
                    sum: h.sum,
                    scale: h.scale,
                    zero_count: h.zero_count,
                    positive: Some(buckets_into_pb(h.positive)),
                    negative: Some(buckets_into_pb(h.negative)),
                    flags,
                    exemplars,
                    min: h.min,
                    max: h.max,
                    zero_threshold: h.zero_threshold,
                },
            ),
            (Data::Summary(summary), MetricValue::Summary(s)) => push_len(
                &mut summary.data_points,
                pb::SummaryDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    count: s.count,
                    sum: s.sum,
                    quantile_values: s
                        .quantiles
                        .into_iter()
                        .map(|q| pb::summary_data_point::ValueAtQuantile { quantile: q.quantile, value: q.value })
                        .collect(),
                    flags,
                },
            ),
            (_, value) => {
                return Err(EncodeError::KindMismatch {
                    metric: descriptor.name.clone(),
                    kind: descriptor.kind.name(),
                    value: value.name(),
                })
            }
        };
        Ok(len)
    }

    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8> {
        let resource_metrics = resources
            .into_iter()
            .map(|resource| pb::ResourceMetrics {
                resource: Some(resource.resource),
                schema_url: resource.schema_url,
                scope_metrics: (resource.scopes.into_iter())
                    .map(|scope| pb::ScopeMetrics {
                        scope: Some(scope.scope),
                        schema_url: scope.schema_url,
                        metrics: (scope.buckets.into_iter())
                            .map(|bucket| pb::Metric { data: Some(bucket.leaves), ..metric_head(&bucket.key) })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        encode_request(&collector::ExportMetricsServiceRequest { resource_metrics }, encoded_len)
    }
}

/// A `Metric` with the descriptor's fields and no data.
fn metric_head(descriptor: &MetricDescriptor) -> pb::Metric {
    pb::Metric {
        name: descriptor.name.clone(),
        description: descriptor.description.clone(),
        unit: descriptor.unit.clone(),
        metadata: Vec::new(),
        data: None,
    }
}

/// Measures `point`, then appends it.
fn push_len<T: Message>(points: &mut Vec<T>, point: T) -> usize {
    let len = point.encoded_len();
    points.push(point);
    len
}

impl Leaves for pb::metric::Data {
    fn split_off(&mut self, at: usize) -> Self {
        use pb::metric::Data;
        match self {
            Data::Gauge(m) => Data::Gauge(pb::Gauge { data_points: m.data_points.split_off(at) }),
            Data::Sum(m) => Data::Sum(pb::Sum { data_points: m.data_points.split_off(at), ..*m }),
            Data::Histogram(m) => Data::Histogram(pb::Histogram { data_points: m.data_points.split_off(at), ..*m }),
            Data::ExponentialHistogram(m) => {
                Data::ExponentialHistogram(pb::ExponentialHistogram { data_points: m.data_points.split_off(at), ..*m })
            }
            Data::Summary(m) => Data::Summary(pb::Summary { data_points: m.data_points.split_off(at) }),
        }
    }

    fn retain_indices(&mut self, keep: impl FnMut(usize) -> bool) {
        use pb::metric::Data;
        match self {
            Data::Gauge(m) => retain_indices(&mut m.data_points, keep),
            Data::Sum(m) => retain_indices(&mut m.data_points, keep),
            Data::Histogram(m) => retain_indices(&mut m.data_points, keep),
            Data::ExponentialHistogram(m) => retain_indices(&mut m.data_points, keep),
            Data::Summary(m) => retain_indices(&mut m.data_points, keep),
        }
    }
}
