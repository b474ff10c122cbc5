//! Metric points, and the metrics [`Signal`].

use std::sync::Arc;

use prost::Message;

use super::common::{attributes_into_pb, id_bytes, KeyValue, Resource, Scope};
use super::encode::{retain_indices, EncodeError, Leaves, Level, ResourceNode, Shape, Signal};
use crate::pb::collector::metrics::v1 as collector;
use crate::pb::metrics::v1 as pb;

/// Whether a point covers the interval since the previous export or
/// everything since a fixed start time.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Temporality {
    /// The change over `(start_time, time]`, where `start_time` is the
    /// previous point's `time`.
    Delta,
    /// The total since a fixed `start_time`.
    Cumulative,
}

impl Temporality {
    fn into_pb(self) -> i32 {
        match self {
            Self::Delta => pb::AggregationTemporality::Delta as i32,
            Self::Cumulative => pb::AggregationTemporality::Cumulative as i32,
        }
    }
}

/// What kind of aggregation a metric's points are, and so which values they
/// carry.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A sum (counter or up-down counter). Points carry [`MetricValue::Int`]
    /// or [`MetricValue::Double`].
    Sum {
        /// Whether the sum only ever increases (a counter).
        monotonic: bool,
        /// How the points relate in time.
        temporality: Temporality,
    },
    /// The last value observed. Points carry [`MetricValue::Int`] or
    /// [`MetricValue::Double`].
    Gauge,
    /// Explicit-bucket histograms. Points carry [`MetricValue::Histogram`].
    Histogram {
        /// How the points relate in time.
        temporality: Temporality,
    },
    /// Base-2 exponential histograms. Points carry
    /// [`MetricValue::ExponentialHistogram`].
    ExponentialHistogram {
        /// How the points relate in time.
        temporality: Temporality,
    },
    /// Quantile summaries. Points carry [`MetricValue::Summary`].
    Summary,
}

impl MetricKind {
    fn name(self) -> &'static str {
        match self {
            Self::Sum { .. } => "sum",
            Self::Gauge => "gauge",
            Self::Histogram { .. } => "histogram",
            Self::ExponentialHistogram { .. } => "exponential histogram",
            Self::Summary => "summary",
        }
    }
}

/// What every point of one metric stream shares: its name, description, unit
/// and kind.
///
/// Points hold it in an [`Arc`], and all points with the same descriptor
/// (the same `Arc`, or equal values) under one scope are encoded as one OTLP
/// `Metric`.
///
/// ```
/// use otlp_sink::{MetricDescriptor, MetricKind, Temporality};
///
/// let requests = MetricDescriptor::new(
///     "http.server.requests",
///     MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
/// )
/// .with_unit("{request}")
/// .with_description("Requests served");
/// assert_eq!(requests.unit, "{request}");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricDescriptor {
    /// The metric's name.
    pub name: String,
    /// What the metric measures; may be empty.
    pub description: String,
    /// The UCUM unit, such as `ms` or `By`; may be empty.
    pub unit: String,
    /// The aggregation, which decides the values its points carry.
    pub kind: MetricKind,
}

impl MetricDescriptor {
    /// A descriptor with no description and no unit.
    pub fn new(name: impl Into<String>, kind: MetricKind) -> Self {
        Self { name: name.into(), description: String::new(), unit: String::new(), kind }
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the unit.
    #[must_use]
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = unit.into();
        self
    }
}

/// The value of one metric point. It must match the descriptor's
/// [`MetricKind`]; a point whose value does not is rejected at encoding with
/// [`EncodeError::KindMismatch`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    /// An integer, for a sum or a gauge.
    Int(i64),
    /// A float, for a sum or a gauge.
    Double(f64),
    /// An explicit-bucket histogram.
    Histogram(HistogramValue),
    /// A base-2 exponential histogram.
    ExponentialHistogram(ExponentialHistogramValue),
    /// A quantile summary.
    Summary(SummaryValue),
}

impl MetricValue {
    fn name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Double(_) => "double",
            Self::Histogram(_) => "histogram",
            Self::ExponentialHistogram(_) => "exponential histogram",
            Self::Summary(_) => "summary",
        }
    }
}

/// An explicit-bucket histogram.
///
/// `bucket_counts` has one more entry than `explicit_bounds` (the last bucket
/// is unbounded above), or both are empty when only count and sum are known.
/// A point that breaks this is not sent: encoding rejects it with
/// [`EncodeError::BucketMismatch`], and the drain counts it as rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramValue {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum, when it is meaningful (values were not negative).
    pub sum: Option<f64>,
    /// Values per bucket; bucket `i` holds values in
    /// `(explicit_bounds[i-1], explicit_bounds[i]]`.
    pub bucket_counts: Vec<u64>,
    /// Upper bounds of all buckets but the last, strictly increasing.
    pub explicit_bounds: Vec<f64>,
    /// The smallest value recorded, when known.
    pub min: Option<f64>,
    /// The largest value recorded, when known.
    pub max: Option<f64>,
}

impl HistogramValue {
    /// Whether the counts fit the bounds as OTLP requires: one more count
    /// than bounds, or neither.
    fn buckets_fit_bounds(&self) -> bool {
        let (counts, bounds) = (self.bucket_counts.len(), self.explicit_bounds.len());
        counts == bounds + 1 || (counts == 0 && bounds == 0)
    }
}

/// A base-2 exponential histogram: bucket `i` holds values in
/// `(base^i, base^(i+1)]`, where `base = 2^(2^-scale)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExponentialHistogramValue {
    /// How many values were recorded, zero bucket and both ranges included.
    pub count: u64,
    /// Their sum, when it is meaningful.
    pub sum: Option<f64>,
    /// The resolution: higher means narrower buckets.
    pub scale: i32,
    /// How many values fell in `[-zero_threshold, zero_threshold]`.
    pub zero_count: u64,
    /// The half-width of the zero bucket; 0 means exact zeros only.
    pub zero_threshold: f64,
    /// Buckets of positive values.
    pub positive: ExponentialBuckets,
    /// Buckets of negative values, by absolute value.
    pub negative: ExponentialBuckets,
    /// The smallest value recorded, when known.
    pub min: Option<f64>,
    /// The largest value recorded, when known.
    pub max: Option<f64>,
}

/// A run of consecutive exponential buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExponentialBuckets {
    /// The bucket index of `bucket_counts[0]`.
    pub offset: i32,
    /// Values per bucket, from index `offset` up.
    pub bucket_counts: Vec<u64>,
}

impl ExponentialBuckets {
    fn into_pb(self) -> pb::exponential_histogram_data_point::Buckets {
        pb::exponential_histogram_data_point::Buckets { offset: self.offset, bucket_counts: self.bucket_counts }
    }
}

/// A quantile summary. Count and sum are cumulative.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryValue {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Values at quantiles, in increasing quantile order.
    pub quantiles: Vec<Quantile>,
}

/// The value at one quantile of a distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    /// The quantile, in `[0, 1]`: 0 is the minimum, 1 the maximum.
    pub quantile: f64,
    /// The value at that quantile.
    pub value: f64,
}

/// The value of an [`Exemplar`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExemplarValue {
    /// An integer measurement.
    Int(i64),
    /// A float measurement.
    Double(f64),
}

impl From<i64> for ExemplarValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<f64> for ExemplarValue {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

/// One raw measurement kept alongside an aggregated point, with the trace
/// context it was recorded in.
///
/// ```
/// use otlp_sink::{Exemplar, KeyValue};
///
/// let exemplar = Exemplar::new(1_700_000_000_000_000_000, 42.5)
///     .with_trace([7; 16], [9; 8])
///     .with_filtered_attributes([KeyValue::new("user.id", "u-1")]);
/// assert_eq!(exemplar.span_id, Some([9; 8]));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Attributes of the measurement that the aggregation dropped.
    pub filtered_attributes: Vec<KeyValue>,
    /// When the measurement was made, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// The measurement.
    pub value: ExemplarValue,
    /// The trace it was recorded in, if any.
    pub trace_id: Option<[u8; 16]>,
    /// The span it was recorded in, if any.
    pub span_id: Option<[u8; 8]>,
}

impl Exemplar {
    /// An exemplar with no attributes and no trace context.
    pub fn new(time_unix_nano: u64, value: impl Into<ExemplarValue>) -> Self {
        Self { filtered_attributes: Vec::new(), time_unix_nano, value: value.into(), trace_id: None, span_id: None }
    }

    /// Sets the trace and span the measurement was recorded in.
    #[must_use]
    pub fn with_trace(mut self, trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        self.trace_id = Some(trace_id);
        self.span_id = Some(span_id);
        self
    }

    /// Sets the attributes the aggregation dropped.
    #[must_use]
    pub fn with_filtered_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.filtered_attributes = attributes.into_iter().collect();
        self
    }

    fn into_pb(self) -> pb::Exemplar {
        pb::Exemplar {
            filtered_attributes: attributes_into_pb(self.filtered_attributes),
            time_unix_nano: self.time_unix_nano,
            span_id: id_bytes(self.span_id),
            trace_id: id_bytes(self.trace_id),
            value: Some(match self.value {
                ExemplarValue::Int(i) => pb::exemplar::Value::AsInt(i),
                ExemplarValue::Double(d) => pb::exemplar::Value::AsDouble(d),
            }),
        }
    }
}

fn exemplars_into_pb(exemplars: Vec<Exemplar>) -> Vec<pb::Exemplar> {
    exemplars.into_iter().map(Exemplar::into_pb).collect()
}

/// One metric data point: a value for one attribute set of one metric over
/// one time interval.
///
/// The resource, scope and descriptor are shared [`Arc`]s: a batch of points
/// costs one copy of each, however many points there are, and the encoder
/// groups points by them.
///
/// ```
/// use std::sync::Arc;
/// use otlp_sink::{KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Temporality};
///
/// let resource = Arc::new(Resource::new([KeyValue::new("service.name", "checkout")]));
/// let scope = Arc::new(Scope::new("checkout.http"));
/// let requests = Arc::new(MetricDescriptor::new(
///     "http.server.requests",
///     MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
/// ));
///
/// let point = MetricPoint::new(resource, scope, requests, MetricValue::Int(17))
///     .with_attributes([KeyValue::new("http.request.method", "GET")])
///     .with_time(1_700_000_000_000_000_000, 1_700_000_060_000_000_000);
/// assert_eq!(point.value, MetricValue::Int(17));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct MetricPoint {
    /// The entity that produced the point.
    pub resource: Arc<Resource>,
    /// The instrumentation scope that recorded it.
    pub scope: Arc<Scope>,
    /// The metric it belongs to.
    pub descriptor: Arc<MetricDescriptor>,
    /// The attributes that identify the point's series within the metric.
    pub attributes: Vec<KeyValue>,
    /// Start of the interval, in nanoseconds since the Unix epoch (0 when
    /// unknown; ignored for gauges).
    pub start_time_unix_nano: u64,
    /// End of the interval: when the value was taken.
    pub time_unix_nano: u64,
    /// The value; must match the descriptor's kind.
    pub value: MetricValue,
    /// Sample measurements behind the value.
    pub exemplars: Vec<Exemplar>,
    /// OTLP data point flags, such as [`NO_RECORDED_VALUE`](Self::NO_RECORDED_VALUE).
    pub flags: u32,
}

impl MetricPoint {
    /// The flag that marks a series with no value in this interval (a
    /// staleness marker).
    pub const NO_RECORDED_VALUE: u32 = pb::DataPointFlags::NoRecordedValueMask as u32;

    /// A point with no attributes, times at 0, no exemplars and no flags.
    pub fn new(
        resource: Arc<Resource>,
        scope: Arc<Scope>,
        descriptor: Arc<MetricDescriptor>,
        value: MetricValue,
    ) -> Self {
        Self {
            resource,
            scope,
            descriptor,
            attributes: Vec::new(),
            start_time_unix_nano: 0,
            time_unix_nano: 0,
            value,
            exemplars: Vec::new(),
            flags: 0,
        }
    }

    /// Sets the attributes that identify the series.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    /// Sets the start and end of the interval, in nanoseconds since the Unix
    /// epoch.
    #[must_use]
    pub fn with_time(mut self, start_time_unix_nano: u64, time_unix_nano: u64) -> Self {
        self.start_time_unix_nano = start_time_unix_nano;
        self.time_unix_nano = time_unix_nano;
        self
    }

    /// Sets the exemplars.
    #[must_use]
    pub fn with_exemplars(mut self, exemplars: impl IntoIterator<Item = Exemplar>) -> Self {
        self.exemplars = exemplars.into_iter().collect();
        self
    }

    /// Sets the data point flags.
    #[must_use]
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }
}

/// The metrics signal: [`MetricPoint`]s into `ExportMetricsServiceRequest`s,
/// one `Metric` per descriptor under each scope.
#[derive(Debug)]
pub(crate) struct Metrics;

/// `ScopeMetrics.metrics`.
const METRICS_TAG: u32 = 2;
/// `data_points` in `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` and `Summary`.
const DATA_POINTS_TAG: u32 = 1;

impl Signal for Metrics {
    type Point = MetricPoint;
    type Key = Arc<MetricDescriptor>;
    type Leaves = pb::metric::Data;
    type Request = collector::ExportMetricsServiceRequest;
    type Response = collector::ExportMetricsServiceResponse;

    const ITEM: &'static str = "metric data point";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

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
        let exemplars = exemplars_into_pb(exemplars);
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
                    positive: Some(h.positive.into_pb()),
                    negative: Some(h.negative.into_pb()),
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

    fn assemble(resources: Vec<ResourceNode<Self>>) -> collector::ExportMetricsServiceRequest {
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
        collector::ExportMetricsServiceRequest { resource_metrics }
    }

    fn partial_success(response: &collector::ExportMetricsServiceResponse) -> (i64, &str) {
        response.partial_success.as_ref().map_or((0, ""), |p| (p.rejected_data_points, p.error_message.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::test_support::{encode_and_decode, resource, scope};
    use crate::otlp::AnyValue;
    use pb::metric::Data;

    const T0: u64 = 1_700_000_000_000_000_000;
    const T1: u64 = 1_700_000_060_000_000_000;

    fn descriptor(name: &str, kind: MetricKind) -> Arc<MetricDescriptor> {
        Arc::new(MetricDescriptor::new(name, kind).with_unit("1").with_description(format!("{name} help")))
    }

    fn cumulative_counter(name: &str) -> Arc<MetricDescriptor> {
        descriptor(name, MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative })
    }

    fn attr(v: &str) -> Vec<KeyValue> {
        vec![KeyValue::new("k", v)]
    }

    fn string_attr(kv: &crate::pb::common::v1::KeyValue) -> (&str, &str) {
        use crate::pb::common::v1::any_value::Value;
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => (kv.key.as_str(), s.as_str()),
            other => panic!("not a string attribute: {other:?}"),
        }
    }

    /// One request with everything in it; panics if there are several.
    fn single(points: Vec<MetricPoint>) -> collector::ExportMetricsServiceRequest {
        let (mut requests, rejected, _) = encode_and_decode::<Metrics>(points, usize::MAX);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(requests.len(), 1);
        requests.remove(0)
    }

    #[test]
    fn every_metric_kind_keeps_its_fields() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let point = |d: &Arc<MetricDescriptor>, v| MetricPoint::new(res.clone(), sc.clone(), d.clone(), v);
        let ints = cumulative_counter("requests");
        let doubles =
            descriptor("queue.depth.change", MetricKind::Sum { monotonic: false, temporality: Temporality::Delta });
        let gauge = descriptor("temperature", MetricKind::Gauge);
        let histogram = descriptor("latency", MetricKind::Histogram { temporality: Temporality::Delta });
        let exponential = descriptor("size", MetricKind::ExponentialHistogram { temporality: Temporality::Cumulative });
        let summary = descriptor("gc.pause", MetricKind::Summary);

        let request = single(vec![
            point(&ints, MetricValue::Int(-7))
                .with_attributes(attr("a"))
                .with_time(T0, T1)
                .with_exemplars([Exemplar::new(T0 + 5, 3_i64).with_trace([7; 16], [9; 8])]),
            point(&doubles, MetricValue::Double(2.5)).with_time(T0, T1).with_flags(MetricPoint::NO_RECORDED_VALUE),
            point(&gauge, MetricValue::Double(21.5)).with_time(0, T1),
            point(
                &histogram,
                MetricValue::Histogram(HistogramValue {
                    count: 6,
                    sum: Some(12.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![1.0, 5.0],
                    min: Some(0.5),
                    max: Some(9.0),
                }),
            )
            .with_time(T0, T1)
            .with_exemplars([Exemplar::new(T0 + 1, 4.5).with_filtered_attributes([KeyValue::new("user", "u1")])]),
            point(
                &exponential,
                MetricValue::ExponentialHistogram(ExponentialHistogramValue {
                    count: 10,
                    sum: None,
                    scale: -3,
                    zero_count: 2,
                    zero_threshold: 1e-9,
                    positive: ExponentialBuckets { offset: -2, bucket_counts: vec![1, 0, 4] },
                    negative: ExponentialBuckets { offset: 5, bucket_counts: vec![3] },
                    min: Some(-40.0),
                    max: None,
                }),
            )
            .with_time(T0, T1),
            point(
                &summary,
                MetricValue::Summary(SummaryValue {
                    count: 4,
                    sum: 10.0,
                    quantiles: vec![Quantile { quantile: 0.0, value: 1.0 }, Quantile { quantile: 1.0, value: 4.0 }],
                }),
            )
            .with_time(T0, T1),
        ]);

        assert_eq!(request.resource_metrics.len(), 1);
        let rm = &request.resource_metrics[0];
        assert_eq!(string_attr(&rm.resource.as_ref().unwrap().attributes[0]), ("service.name", "svc"));
        assert_eq!(rm.scope_metrics.len(), 1);
        let sm = &rm.scope_metrics[0];
        let scope = sm.scope.as_ref().unwrap();
        assert_eq!((scope.name.as_str(), scope.version.as_str()), ("lib", "1.0.0"));
        let metrics = &sm.metrics;
        let names: Vec<_> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["requests", "queue.depth.change", "temperature", "latency", "size", "gc.pause"]);
        assert!(metrics.iter().all(|m| m.unit == "1" && m.description == format!("{} help", m.name)));

        let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("{:?}", metrics[0].data) };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, pb::AggregationTemporality::Cumulative as i32);
        let p = &sum.data_points[0];
        assert_eq!(p.value, Some(pb::number_data_point::Value::AsInt(-7)));
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano, p.flags), (T0, T1, 0));
        assert_eq!(string_attr(&p.attributes[0]), ("k", "a"));
        let e = &p.exemplars[0];
        assert_eq!(e.value, Some(pb::exemplar::Value::AsInt(3)));
        assert_eq!(
            (e.time_unix_nano, e.trace_id.as_slice(), e.span_id.as_slice()),
            (T0 + 5, &[7; 16][..], &[9; 8][..])
        );

        let Some(Data::Sum(sum)) = &metrics[1].data else { panic!("{:?}", metrics[1].data) };
        assert!(!sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, pb::AggregationTemporality::Delta as i32);
        assert_eq!(sum.data_points[0].value, Some(pb::number_data_point::Value::AsDouble(2.5)));
        assert_eq!(sum.data_points[0].flags, pb::DataPointFlags::NoRecordedValueMask as u32);

        let Some(Data::Gauge(gauge)) = &metrics[2].data else { panic!("{:?}", metrics[2].data) };
        assert_eq!(gauge.data_points[0].value, Some(pb::number_data_point::Value::AsDouble(21.5)));
        assert_eq!((gauge.data_points[0].start_time_unix_nano, gauge.data_points[0].time_unix_nano), (0, T1));

        let Some(Data::Histogram(histogram)) = &metrics[3].data else { panic!("{:?}", metrics[3].data) };
        assert_eq!(histogram.aggregation_temporality, pb::AggregationTemporality::Delta as i32);
        let h = &histogram.data_points[0];
        assert_eq!((h.count, h.sum, h.min, h.max), (6, Some(12.0), Some(0.5), Some(9.0)));
        assert_eq!((h.bucket_counts.as_slice(), h.explicit_bounds.as_slice()), (&[1, 2, 3][..], &[1.0, 5.0][..]));
        assert_eq!((h.start_time_unix_nano, h.time_unix_nano), (T0, T1));
        let e = &h.exemplars[0];
        assert_eq!(e.value, Some(pb::exemplar::Value::AsDouble(4.5)));
        assert!(e.trace_id.is_empty() && e.span_id.is_empty());
        assert_eq!(string_attr(&e.filtered_attributes[0]), ("user", "u1"));

        let Some(Data::ExponentialHistogram(exponential)) = &metrics[4].data else { panic!("{:?}", metrics[4].data) };
        assert_eq!(exponential.aggregation_temporality, pb::AggregationTemporality::Cumulative as i32);
        let x = &exponential.data_points[0];
        assert_eq!((x.count, x.sum, x.scale, x.zero_count, x.zero_threshold), (10, None, -3, 2, 1e-9));
        assert_eq!((x.min, x.max), (Some(-40.0), None));
        let positive = x.positive.as_ref().unwrap();
        assert_eq!((positive.offset, positive.bucket_counts.as_slice()), (-2, &[1, 0, 4][..]));
        let negative = x.negative.as_ref().unwrap();
        assert_eq!((negative.offset, negative.bucket_counts.as_slice()), (5, &[3][..]));

        let Some(Data::Summary(summary)) = &metrics[5].data else { panic!("{:?}", metrics[5].data) };
        let s = &summary.data_points[0];
        assert_eq!((s.count, s.sum), (4, 10.0));
        let quantiles: Vec<_> = s.quantile_values.iter().map(|q| (q.quantile, q.value)).collect();
        assert_eq!(quantiles, [(0.0, 1.0), (1.0, 4.0)]);
    }

    #[test]
    fn points_are_grouped_by_resource_scope_and_descriptor() {
        let (res_a, res_b) = (resource("a"), resource("b"));
        // Equal to `res_a` but another allocation: still the same ResourceMetrics.
        let res_a_again = resource("a");
        let (lib1, lib2) = (scope("lib1"), scope("lib2"));
        let (x, y) = (cumulative_counter("x"), cumulative_counter("y"));
        let x_again = cumulative_counter("x");
        let p = |r: &Arc<Resource>, s: &Arc<Scope>, d: &Arc<MetricDescriptor>, v: &str| {
            MetricPoint::new(r.clone(), s.clone(), d.clone(), MetricValue::Int(1)).with_attributes(attr(v))
        };
        let request = single(vec![
            p(&res_a, &lib1, &x, "1"),
            p(&res_a, &lib1, &y, "2"),
            p(&res_b, &lib1, &x, "3"),
            p(&res_a, &lib2, &x, "4"),
            p(&res_a_again, &lib1, &x_again, "5"),
            p(&res_a, &lib1, &y, "6"),
        ]);

        // Expected tree: a { lib1 { x: [1, 5], y: [2, 6] }, lib2 { x: [4] } }, b { lib1 { x: [3] } },
        // read back as one "service/scope/metric=value" line per data point, in wire order.
        let mut lines = Vec::new();
        for rm in &request.resource_metrics {
            let service = string_attr(&rm.resource.as_ref().unwrap().attributes[0]).1;
            for sm in &rm.scope_metrics {
                let scope = &sm.scope.as_ref().unwrap().name;
                for m in &sm.metrics {
                    let Some(Data::Sum(sum)) = &m.data else { panic!("{:?}", m.data) };
                    for dp in &sum.data_points {
                        lines.push(format!("{service}/{scope}/{}={}", m.name, string_attr(&dp.attributes[0]).1));
                    }
                }
            }
        }
        assert_eq!(lines, ["a/lib1/x=1", "a/lib1/x=5", "a/lib1/y=2", "a/lib1/y=6", "a/lib2/x=4", "b/lib1/x=3"]);
        // One ResourceMetrics per resource, one ScopeMetrics per scope, one Metric per descriptor.
        let shape: Vec<Vec<usize>> = request
            .resource_metrics
            .iter()
            .map(|rm| rm.scope_metrics.iter().map(|sm| sm.metrics.len()).collect())
            .collect();
        assert_eq!(shape, [vec![2, 1], vec![1]]);
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_rejected_and_its_neighbours_kept() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let counter = cumulative_counter("requests");
        let histogram = descriptor("latency", MetricKind::Histogram { temporality: Temporality::Delta });
        let points = vec![
            MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Int(1)),
            MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Summary(SummaryValue::default())),
            MetricPoint::new(res.clone(), sc.clone(), histogram.clone(), MetricValue::Double(1.0)),
            MetricPoint::new(res, sc, counter, MetricValue::Int(2)),
        ];
        let (requests, rejected, counts) = encode_and_decode::<Metrics>(points, usize::MAX);
        assert_eq!(
            rejected,
            vec![
                EncodeError::KindMismatch { metric: "requests".into(), kind: "sum", value: "summary" },
                EncodeError::KindMismatch { metric: "latency".into(), kind: "histogram", value: "double" },
            ]
        );
        assert_eq!(rejected[0].to_string(), "metric `requests` is a sum but a point carries a summary value");
        assert_eq!(counts, [2]);
        // The histogram descriptor lost its only point, so no empty Metric is sent for it.
        let metrics = &requests[0].resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1);
        let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("{:?}", metrics[0].data) };
        let values: Vec<_> = sum.data_points.iter().map(|p| p.value).collect();
        use pb::number_data_point::Value::AsInt;
        assert_eq!(values, [Some(AsInt(1)), Some(AsInt(2))]);
    }

    #[test]
    fn a_histogram_whose_counts_do_not_fit_its_bounds_is_rejected_and_its_neighbours_kept() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let latency = descriptor("latency", MetricKind::Histogram { temporality: Temporality::Delta });
        let histogram = |counts: Vec<u64>, bounds: Vec<f64>| {
            let count = counts.iter().sum();
            let value = HistogramValue { count, bucket_counts: counts, explicit_bounds: bounds, ..Default::default() };
            MetricPoint::new(res.clone(), sc.clone(), latency.clone(), MetricValue::Histogram(value))
        };
        let points = vec![
            histogram(vec![1, 2, 3], vec![10.0, 20.0]), // fits: 3 counts, 2 bounds
            histogram(vec![1, 2], vec![10.0, 20.0]),    // one count short
            histogram(vec![], vec![]),                  // count and sum only: fits
            histogram(vec![1, 2, 3, 4], vec![10.0]),    // too many counts
            histogram(vec![], vec![5.0]),               // bounds without counts
            histogram(vec![7], vec![]),                 // one bucket, no bounds: fits
        ];
        let (requests, rejected, counts) = encode_and_decode::<Metrics>(points, usize::MAX);
        let mismatch = |bucket_counts, explicit_bounds| EncodeError::BucketMismatch {
            metric: "latency".into(),
            bucket_counts,
            explicit_bounds,
        };
        assert_eq!(rejected, vec![mismatch(2, 2), mismatch(4, 1), mismatch(0, 1)]);
        assert_eq!(
            rejected[0].to_string(),
            "histogram `latency` has a point with 2 bucket counts for 2 explicit bounds; \
             OTLP requires one more count than bounds, or neither"
        );
        assert_eq!(counts, [3]);
        let Some(Data::Histogram(h)) = &requests[0].resource_metrics[0].scope_metrics[0].metrics[0].data else {
            panic!("not a histogram")
        };
        let sent: Vec<(usize, usize)> =
            h.data_points.iter().map(|p| (p.bucket_counts.len(), p.explicit_bounds.len())).collect();
        assert_eq!(sent, [(3, 2), (0, 0), (1, 0)]);
    }

    #[test]
    fn a_metric_split_across_requests_keeps_its_header_in_each() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let counter = descriptor("requests", MetricKind::Sum { monotonic: true, temporality: Temporality::Delta });
        let points: Vec<_> = (0..200)
            .map(|i| {
                MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Int(i))
                    .with_attributes([KeyValue::new("series", AnyValue::Int(i))])
            })
            .collect();
        let (requests, rejected, counts) = encode_and_decode::<Metrics>(points, 1024);
        assert!(rejected.is_empty());
        assert!(requests.len() > 5, "only {} requests", requests.len());
        assert_eq!(counts.iter().sum::<usize>(), 200);
        let mut next = 0;
        for request in &requests {
            let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
            assert_eq!(metrics.len(), 1);
            assert_eq!((metrics[0].name.as_str(), metrics[0].unit.as_str()), ("requests", "1"));
            let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("{:?}", metrics[0].data) };
            assert!(sum.is_monotonic);
            assert_eq!(sum.aggregation_temporality, pb::AggregationTemporality::Delta as i32);
            for point in &sum.data_points {
                assert_eq!(point.value, Some(pb::number_data_point::Value::AsInt(next)));
                next += 1;
            }
        }
        assert_eq!(next, 200);
    }

    #[test]
    fn partial_success_reads_rejected_data_points() {
        let response = collector::ExportMetricsServiceResponse {
            partial_success: Some(collector::ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "bad".into(),
            }),
        };
        assert_eq!(Metrics::partial_success(&response), (3, "bad"));
        assert_eq!(Metrics::partial_success(&Default::default()), (0, ""));
    }

    #[cfg(feature = "receiver")]
    #[test]
    fn export_path_names_the_generated_service() {
        let service = crate::pb::collector::metrics::v1::metrics_service_server::SERVICE_NAME;
        assert_eq!(Metrics::EXPORT_PATH, format!("/{service}/Export"));
    }
}
