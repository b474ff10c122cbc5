//! Metric points, and their [`Encoding`].

use std::sync::Arc;

use prost::encoding::key_len;
use prost::Message;

use super::common::{KeyValue, Resource, Scope};
use super::encode::{
    header_len, EncodeError, Encoding, Level, ResourceNode, ScopeNode, Shape, HEAD_TAG, RESOURCE_TAG, SCHEMA_URL_TAG,
    SCOPE_TAG,
};
use super::wire::{
    attributes_len, bytes_field_len, double_nonzero_len, field_len, fixed64_field_len, fixed64_nonzero_len,
    optional_double_len, packed_fixed64_len, packed_varint_len, put_attributes, put_bytes, put_bytes_nonempty,
    put_double, put_double_nonzero, put_fixed64, put_fixed64_nonzero, put_len_prefix, put_optional_double,
    put_packed_fixed64, put_packed_varint, put_varint_field, put_varint_nonzero, varint_nonzero_len, zigzag32,
    Attribute,
};
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

/// The metrics encoding: [`EncodedMetricPoint`]s (from [`MetricPoint`]s, or
/// written straight from the SDK's data) into `ExportMetricsServiceRequest`s,
/// one `Metric` per descriptor under each scope.
#[derive(Debug)]
pub(crate) struct Metrics;

/// `ScopeMetrics.metrics`.
const METRICS_TAG: u32 = 2;
/// `data_points` in `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` and `Summary`.
const DATA_POINTS_TAG: u32 = 1;
/// `aggregation_temporality` in `Sum`, `Histogram` and `ExponentialHistogram`.
const TEMPORALITY_TAG: u32 = 2;
/// `Sum.is_monotonic`.
const MONOTONIC_TAG: u32 = 3;

/// Field numbers shared by the data point messages.
mod point_tags {
    /// `start_time_unix_nano` in every data point.
    pub(super) const START: u32 = 2;
    /// `time_unix_nano` in every data point.
    pub(super) const TIME: u32 = 3;
    /// `count` in histogram, exponential histogram and summary points.
    pub(super) const COUNT: u32 = 4;
    /// `sum` in histogram, exponential histogram and summary points.
    pub(super) const SUM: u32 = 5;
}

/// The data point message of a [`MetricPoint`], without the shared parts
/// (resource, scope, descriptor) that the tree above it carries.
impl MetricPoint {
    /// Size of the fields every data point message has, under the
    /// message's own numbers for attributes and flags.
    fn common_len(&self, attributes: u32, flags: u32) -> usize {
        fixed64_nonzero_len(point_tags::START, self.start_time_unix_nano)
            + fixed64_nonzero_len(point_tags::TIME, self.time_unix_nano)
            + attributes_len(attributes, &self.attributes)
            + varint_nonzero_len(flags, u64::from(self.flags))
    }

    /// Size of the exemplars as field `tag`. (A `SummaryDataPoint` has no
    /// such field: a summary's exemplars are not sent.)
    fn exemplars_len(&self, tag: u32) -> usize {
        self.exemplars.iter().map(|e| field_len(tag, e.encoded_len())).sum()
    }

    /// Size of the data point message (`NumberDataPoint`,
    /// `HistogramDataPoint`, `ExponentialHistogramDataPoint` or
    /// `SummaryDataPoint`, according to the value), whose value has been
    /// checked against the descriptor's kind.
    fn data_point_len(&self) -> usize {
        match &self.value {
            // NumberDataPoint: as_double = 4 / as_int = 6, exemplars = 5, attributes = 7, flags = 8.
            MetricValue::Int(_) | MetricValue::Double(_) => {
                self.common_len(7, 8) + self.exemplars_len(5) + fixed64_field_len(4)
            }
            // HistogramDataPoint: exemplars = 8, attributes = 9, flags = 10.
            MetricValue::Histogram(h) => {
                self.common_len(9, 10)
                    + self.exemplars_len(8)
                    + fixed64_nonzero_len(point_tags::COUNT, h.count)
                    + optional_double_len(point_tags::SUM, h.sum)
                    + packed_fixed64_len(6, h.bucket_counts.len())
                    + packed_fixed64_len(7, h.explicit_bounds.len())
                    + optional_double_len(11, h.min)
                    + optional_double_len(12, h.max)
            }
            // ExponentialHistogramDataPoint: attributes = 1, flags = 10, exemplars = 11.
            MetricValue::ExponentialHistogram(h) => {
                self.common_len(1, 10)
                    + self.exemplars_len(11)
                    + fixed64_nonzero_len(point_tags::COUNT, h.count)
                    + optional_double_len(point_tags::SUM, h.sum)
                    + varint_nonzero_len(6, zigzag32(h.scale))
                    + fixed64_nonzero_len(7, h.zero_count)
                    + field_len(8, h.positive.encoded_len())
                    + field_len(9, h.negative.encoded_len())
                    + optional_double_len(12, h.min)
                    + optional_double_len(13, h.max)
                    + double_nonzero_len(14, h.zero_threshold)
            }
            // SummaryDataPoint: attributes = 7, flags = 8, no exemplars.
            MetricValue::Summary(s) => {
                self.common_len(7, 8)
                    + fixed64_nonzero_len(point_tags::COUNT, s.count)
                    + double_nonzero_len(point_tags::SUM, s.sum)
                    + s.quantiles.iter().map(|q| field_len(6, q.encoded_len())).sum::<usize>()
            }
        }
    }

    /// Appends the fields of the data point message: exactly
    /// [`data_point_len`](Self::data_point_len) bytes, in the order prost
    /// writes them (by field number).
    fn put_data_point(&self, buf: &mut Vec<u8>) {
        let times = |buf: &mut Vec<u8>| {
            put_fixed64_nonzero(buf, point_tags::START, self.start_time_unix_nano);
            put_fixed64_nonzero(buf, point_tags::TIME, self.time_unix_nano);
        };
        let exemplars = |buf: &mut Vec<u8>, tag| {
            for exemplar in &self.exemplars {
                put_len_prefix(buf, tag, exemplar.encoded_len());
                exemplar.put(buf);
            }
        };
        let flags = |buf: &mut Vec<u8>, tag| put_varint_nonzero(buf, tag, u64::from(self.flags));
        match &self.value {
            MetricValue::Int(_) | MetricValue::Double(_) => {
                times(buf);
                match self.value {
                    MetricValue::Int(i) => put_fixed64(buf, 6, i as u64),
                    MetricValue::Double(d) => put_double(buf, 4, d),
                    _ => unreachable!("matched above"),
                }
                exemplars(buf, 5);
                put_attributes(buf, 7, &self.attributes);
                flags(buf, 8);
            }
            MetricValue::Histogram(h) => {
                times(buf);
                put_fixed64_nonzero(buf, point_tags::COUNT, h.count);
                put_optional_double(buf, point_tags::SUM, h.sum);
                put_packed_fixed64(buf, 6, h.bucket_counts.iter().copied());
                put_packed_fixed64(buf, 7, h.explicit_bounds.iter().map(|b| b.to_bits()));
                exemplars(buf, 8);
                put_attributes(buf, 9, &self.attributes);
                flags(buf, 10);
                put_optional_double(buf, 11, h.min);
                put_optional_double(buf, 12, h.max);
            }
            MetricValue::ExponentialHistogram(h) => {
                put_attributes(buf, 1, &self.attributes);
                times(buf);
                put_fixed64_nonzero(buf, point_tags::COUNT, h.count);
                put_optional_double(buf, point_tags::SUM, h.sum);
                put_varint_nonzero(buf, 6, zigzag32(h.scale));
                put_fixed64_nonzero(buf, 7, h.zero_count);
                put_len_prefix(buf, 8, h.positive.encoded_len());
                h.positive.put(buf);
                put_len_prefix(buf, 9, h.negative.encoded_len());
                h.negative.put(buf);
                flags(buf, 10);
                exemplars(buf, 11);
                put_optional_double(buf, 12, h.min);
                put_optional_double(buf, 13, h.max);
                put_double_nonzero(buf, 14, h.zero_threshold);
            }
            MetricValue::Summary(s) => {
                times(buf);
                put_fixed64_nonzero(buf, point_tags::COUNT, s.count);
                put_double_nonzero(buf, point_tags::SUM, s.sum);
                for q in &s.quantiles {
                    put_len_prefix(buf, 6, q.encoded_len());
                    q.put(buf);
                }
                put_attributes(buf, 7, &self.attributes);
                flags(buf, 8);
            }
        }
    }
}

impl Exemplar {
    /// Size of the `Exemplar` message.
    fn encoded_len(&self) -> usize {
        fixed64_nonzero_len(2, self.time_unix_nano)
            + fixed64_field_len(3)
            + self.span_id.map_or(0, |id| bytes_field_len(4, &id))
            + self.trace_id.map_or(0, |id| bytes_field_len(5, &id))
            + attributes_len(7, &self.filtered_attributes)
    }

    /// Appends the fields of the `Exemplar` message: time = 2, the value
    /// (as_double = 3 or as_int = 6, a oneof written at its first number),
    /// span_id = 4, trace_id = 5, filtered_attributes = 7.
    fn put(&self, buf: &mut Vec<u8>) {
        put_fixed64_nonzero(buf, 2, self.time_unix_nano);
        match self.value {
            ExemplarValue::Double(d) => put_double(buf, 3, d),
            ExemplarValue::Int(i) => put_fixed64(buf, 6, i as u64),
        }
        if let Some(id) = self.span_id {
            put_bytes(buf, 4, &id);
        }
        if let Some(id) = self.trace_id {
            put_bytes(buf, 5, &id);
        }
        put_attributes(buf, 7, &self.filtered_attributes);
    }
}

impl ExponentialBuckets {
    /// Size of the `Buckets` message: offset = 1 (`sint32`), bucket_counts = 2 (packed).
    fn encoded_len(&self) -> usize {
        varint_nonzero_len(1, zigzag32(self.offset)) + packed_varint_len(2, &self.bucket_counts)
    }

    /// Appends the fields of the `Buckets` message.
    fn put(&self, buf: &mut Vec<u8>) {
        put_varint_nonzero(buf, 1, zigzag32(self.offset));
        put_packed_varint(buf, 2, &self.bucket_counts);
    }
}

impl Quantile {
    /// Size of the `ValueAtQuantile` message: quantile = 1, value = 2.
    fn encoded_len(&self) -> usize {
        double_nonzero_len(1, self.quantile) + double_nonzero_len(2, self.value)
    }

    /// Appends the fields of the `ValueAtQuantile` message.
    fn put(&self, buf: &mut Vec<u8>) {
        put_double_nonzero(buf, 1, self.quantile);
        put_double_nonzero(buf, 2, self.value);
    }
}

/// The `Metric` message's field number for a kind's data message, and the
/// data message's size without its points.
fn data_head(kind: MetricKind) -> (u32, usize) {
    let temporality = |t: Temporality| varint_nonzero_len(TEMPORALITY_TAG, t.into_pb() as u64);
    match kind {
        MetricKind::Gauge => (5, 0),
        MetricKind::Sum { monotonic, temporality: t } => {
            (7, temporality(t) + if monotonic { key_len(MONOTONIC_TAG) + 1 } else { 0 })
        }
        MetricKind::Histogram { temporality: t } => (9, temporality(t)),
        MetricKind::ExponentialHistogram { temporality: t } => (10, temporality(t)),
        MetricKind::Summary => (11, 0),
    }
}

/// Appends the fields of a data message that follow its points.
fn put_data_tail(buf: &mut Vec<u8>, kind: MetricKind) {
    match kind {
        MetricKind::Sum { monotonic, temporality } => {
            put_varint_nonzero(buf, TEMPORALITY_TAG, temporality.into_pb() as u64);
            if monotonic {
                put_varint_field(buf, MONOTONIC_TAG, 1);
            }
        }
        MetricKind::Histogram { temporality } | MetricKind::ExponentialHistogram { temporality } => {
            put_varint_nonzero(buf, TEMPORALITY_TAG, temporality.into_pb() as u64);
        }
        MetricKind::Gauge | MetricKind::Summary => {}
    }
}

/// Size of the `Metric` message without its data: name = 1, description = 2,
/// unit = 3 (no metadata).
fn metric_head_len(descriptor: &MetricDescriptor) -> usize {
    bytes_field_len(1, descriptor.name.as_bytes())
        + bytes_field_len(2, descriptor.description.as_bytes())
        + bytes_field_len(3, descriptor.unit.as_bytes())
}

/// Sizes of one metric's run in a request: the data message and the `Metric` message.
fn metric_lens(descriptor: &MetricDescriptor, points: &[Vec<u8>]) -> (usize, usize) {
    let (data_tag, data_head) = data_head(descriptor.kind);
    let data = data_head + points.iter().map(|p| field_len(DATA_POINTS_TAG, p.len())).sum::<usize>();
    (data, metric_head_len(descriptor) + field_len(data_tag, data))
}

/// Size of a `ScopeMetrics` message.
fn scope_metrics_len(scope: &ScopeNode<Metrics>) -> usize {
    header_len(scope.scope.encoded_len(), &scope.schema_url)
        + (scope.buckets.iter())
            .map(|bucket| field_len(METRICS_TAG, metric_lens(&bucket.key, &bucket.leaves).1))
            .sum::<usize>()
}

/// Writes an `ExportMetricsServiceRequest` field by field, each message's
/// length prefix from the sizes measured when the points were grouped: no
/// prost struct is built and no point is measured again.
fn write_request(resources: Vec<ResourceNode<Metrics>>, encoded_len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(encoded_len);
    for resource in &resources {
        let resource_len = header_len(resource.resource.encoded_len(), &resource.schema_url)
            + resource.scopes.iter().map(|scope| field_len(SCOPE_TAG, scope_metrics_len(scope))).sum::<usize>();
        put_len_prefix(&mut buf, RESOURCE_TAG, resource_len);
        prost::encoding::message::encode(HEAD_TAG, &resource.resource, &mut buf);
        for scope in &resource.scopes {
            put_len_prefix(&mut buf, SCOPE_TAG, scope_metrics_len(scope));
            prost::encoding::message::encode(HEAD_TAG, &scope.scope, &mut buf);
            for bucket in &scope.buckets {
                let descriptor = &*bucket.key;
                let (data_len, metric_len) = metric_lens(descriptor, &bucket.leaves);
                put_len_prefix(&mut buf, METRICS_TAG, metric_len);
                put_bytes_nonempty(&mut buf, 1, descriptor.name.as_bytes());
                put_bytes_nonempty(&mut buf, 2, descriptor.description.as_bytes());
                put_bytes_nonempty(&mut buf, 3, descriptor.unit.as_bytes());
                put_len_prefix(&mut buf, data_head(descriptor.kind).0, data_len);
                for point in &bucket.leaves {
                    put_bytes(&mut buf, DATA_POINTS_TAG, point);
                }
                put_data_tail(&mut buf, descriptor.kind);
            }
            put_bytes_nonempty(&mut buf, SCHEMA_URL_TAG, scope.schema_url.as_bytes());
        }
        put_bytes_nonempty(&mut buf, SCHEMA_URL_TAG, resource.schema_url.as_bytes());
    }
    // Checked in release builds too (once a request, so it costs nothing):
    // a request whose length prefixes disagree with its bytes would be
    // misread by the collector, so a sizing bug must stop the drain loudly
    // (the sink reports a failed actor) rather than send it.
    assert_eq!(buf.len(), encoded_len, "the splitter's size differs from the written bytes");
    buf
}

/// Checks `value` against `descriptor`'s kind, as OTLP requires.
fn check(descriptor: &MetricDescriptor, value: &MetricValue) -> Result<(), EncodeError> {
    match (descriptor.kind, value) {
        (MetricKind::Sum { .. } | MetricKind::Gauge, MetricValue::Int(_) | MetricValue::Double(_))
        | (MetricKind::ExponentialHistogram { .. }, MetricValue::ExponentialHistogram(_))
        | (MetricKind::Summary, MetricValue::Summary(_)) => Ok(()),
        (MetricKind::Histogram { .. }, MetricValue::Histogram(h)) if !h.buckets_fit_bounds() => {
            Err(EncodeError::BucketMismatch {
                metric: descriptor.name.clone(),
                bucket_counts: h.bucket_counts.len(),
                explicit_bounds: h.explicit_bounds.len(),
            })
        }
        (MetricKind::Histogram { .. }, MetricValue::Histogram(_)) => Ok(()),
        _ => Err(EncodeError::KindMismatch {
            metric: descriptor.name.clone(),
            kind: descriptor.kind.name(),
            value: value.name(),
        }),
    }
}

/// A metric data point with its data point message encoded, or known to be
/// unsendable: what the [`Metrics`] encoding groups and cuts into requests.
/// A [`MetricPoint`] becomes one with [`From`]; the SDK adapters write sum
/// and gauge points straight from the SDK's data with
/// [`number`](Self::number), never copying them into a [`MetricPoint`].
#[derive(Debug)]
pub(crate) struct EncodedMetricPoint {
    /// The entity that produced the point.
    pub(crate) resource: Arc<Resource>,
    /// The instrumentation scope that recorded it.
    pub(crate) scope: Arc<Scope>,
    /// The metric it belongs to; its kind says which data point message
    /// `data` holds.
    pub(crate) descriptor: Arc<MetricDescriptor>,
    /// The data point message's bytes (without tag and length prefix), or
    /// why the point cannot be sent; it is then counted as rejected at
    /// encoding.
    pub(crate) data: Result<Vec<u8>, EncodeError>,
}

/// Checks the point's value against its descriptor's kind, then writes its
/// data point message, sized first so that it is allocated once.
impl From<MetricPoint> for EncodedMetricPoint {
    fn from(point: MetricPoint) -> Self {
        let data = check(&point.descriptor, &point.value).map(|()| {
            let len = point.data_point_len();
            let mut buf = Vec::with_capacity(len);
            point.put_data_point(&mut buf);
            debug_assert_eq!(buf.len(), len, "a data point's size differs from its bytes");
            buf
        });
        let MetricPoint { resource, scope, descriptor, .. } = point;
        Self { resource, scope, descriptor, data }
    }
}

#[cfg(feature = "sdk")]
impl EncodedMetricPoint {
    /// A sum or gauge point with no exemplars and no flags, written straight
    /// from its parts, as [`From<MetricPoint>`](#impl-From<MetricPoint>-for-EncodedMetricPoint)
    /// writes the same point: `attributes` is called twice (to size, then to
    /// write), and must give the same attributes each time. `descriptor`
    /// must be a sum or a gauge.
    pub(crate) fn number<'a, A, I>(
        resource: Arc<Resource>,
        scope: Arc<Scope>,
        descriptor: Arc<MetricDescriptor>,
        attributes: impl Fn() -> I,
        start_time_unix_nano: u64,
        time_unix_nano: u64,
        value: NumberValue,
    ) -> Self
    where
        A: Attribute + 'a,
        I: Iterator<Item = &'a A>,
    {
        debug_assert!(matches!(descriptor.kind, MetricKind::Sum { .. } | MetricKind::Gauge));
        // NumberDataPoint, as `put_data_point` writes it with no exemplars and no flags.
        let len = fixed64_nonzero_len(point_tags::START, start_time_unix_nano)
            + fixed64_nonzero_len(point_tags::TIME, time_unix_nano)
            + fixed64_field_len(4)
            + attributes_len(7, attributes());
        let mut buf = Vec::with_capacity(len);
        put_fixed64_nonzero(&mut buf, point_tags::START, start_time_unix_nano);
        put_fixed64_nonzero(&mut buf, point_tags::TIME, time_unix_nano);
        match value {
            NumberValue::Int(i) => put_fixed64(&mut buf, 6, i as u64),
            NumberValue::Double(d) => put_double(&mut buf, 4, d),
        }
        put_attributes(&mut buf, 7, attributes());
        debug_assert_eq!(buf.len(), len);
        Self { resource, scope, descriptor, data: Ok(buf) }
    }
}

/// The value of a sum or gauge point, for [`EncodedMetricPoint::number`].
#[cfg(feature = "sdk")]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumberValue {
    /// `as_int`.
    Int(i64),
    /// `as_double`.
    Double(f64),
}

impl Encoding for Metrics {
    type Point = EncodedMetricPoint;
    type Key = Arc<MetricDescriptor>;
    type Leaves = Vec<Vec<u8>>;
    type Request = collector::ExportMetricsServiceRequest;
    type Response = collector::ExportMetricsServiceResponse;

    const ITEM: &'static str = "metric data point";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

    fn parts(point: &EncodedMetricPoint) -> (&Arc<Resource>, &Arc<Scope>, &Arc<MetricDescriptor>) {
        (&point.resource, &point.scope, &point.descriptor)
    }

    fn bucket(descriptor: &Arc<MetricDescriptor>) -> (Vec<Vec<u8>>, Shape) {
        let (data_tag, data_header) = data_head(descriptor.kind);
        let shape = Shape::nested(
            Level { tag: METRICS_TAG, header: metric_head_len(descriptor) },
            Level { tag: data_tag, header: data_header },
            DATA_POINTS_TAG,
        );
        (Vec::new(), shape)
    }

    fn push(
        points: &mut Vec<Vec<u8>>,
        _descriptor: &Arc<MetricDescriptor>,
        point: EncodedMetricPoint,
    ) -> Result<usize, EncodeError> {
        let data = point.data?;
        let len = data.len();
        points.push(data);
        Ok(len)
    }

    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8> {
        write_request(resources, encoded_len)
    }

    fn partial_success(response: &collector::ExportMetricsServiceResponse) -> (i64, &str) {
        response.partial_success.as_ref().map_or((0, ""), |p| (p.rejected_data_points, p.error_message.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::otlp::test_support::{encode_and_decode, resource, scope};
    use crate::otlp::AnyValue;
    use pb::metric::Data;

    /// The encoder this crate had before the hand-written writer, kept as
    /// the reference: every point moved into its prost struct, measured and
    /// encoded by prost. [`Metrics`] must write the very same bytes.
    mod reference {
        use std::sync::Arc;

        use prost::Message;

        use super::super::{
            ExemplarValue, ExponentialBuckets, MetricDescriptor, MetricKind, MetricPoint, MetricValue, DATA_POINTS_TAG,
            METRICS_TAG,
        };
        use crate::otlp::common::{attributes_into_pb, id_bytes, Resource, Scope};
        use crate::otlp::encode::{
            encode_request, retain_indices, EncodeError, Encoding, Leaves, Level, ResourceNode, Shape,
        };
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
            pb::exponential_histogram_data_point::Buckets {
                offset: buckets.offset,
                bucket_counts: buckets.bucket_counts,
            }
        }

        impl Encoding for ProstMetrics {
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
                    MetricKind::ExponentialHistogram { temporality } => {
                        Data::ExponentialHistogram(pb::ExponentialHistogram {
                            data_points: Vec::new(),
                            aggregation_temporality: temporality.into_pb(),
                        })
                    }
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
                let MetricPoint { attributes, start_time_unix_nano, time_unix_nano, value, exemplars, flags, .. } =
                    point;
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
                    (
                        Data::Sum(pb::Sum { data_points, .. }) | Data::Gauge(pb::Gauge { data_points }),
                        MetricValue::Int(i),
                    ) => push_len(data_points, number(attributes, exemplars, pb::number_data_point::Value::AsInt(i))),
                    (
                        Data::Sum(pb::Sum { data_points, .. }) | Data::Gauge(pb::Gauge { data_points }),
                        MetricValue::Double(d),
                    ) => {
                        push_len(data_points, number(attributes, exemplars, pb::number_data_point::Value::AsDouble(d)))
                    }
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
                                .map(|q| pb::summary_data_point::ValueAtQuantile {
                                    quantile: q.quantile,
                                    value: q.value,
                                })
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

            fn partial_success(response: &collector::ExportMetricsServiceResponse) -> (i64, &str) {
                response
                    .partial_success
                    .as_ref()
                    .map_or((0, ""), |p| (p.rejected_data_points, p.error_message.as_str()))
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
                    Data::Histogram(m) => {
                        Data::Histogram(pb::Histogram { data_points: m.data_points.split_off(at), ..*m })
                    }
                    Data::ExponentialHistogram(m) => Data::ExponentialHistogram(pb::ExponentialHistogram {
                        data_points: m.data_points.split_off(at),
                        ..*m
                    }),
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
    }

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

    /// Encodes `points` under `limit` as the drain does (each converted into
    /// an [`EncodedMetricPoint`]) and with the prost reference, and checks
    /// both give the same requests byte for byte and the same rejections.
    /// Returns the number of requests.
    fn same_as_prost(points: Vec<MetricPoint>, limit: usize) -> usize {
        use crate::otlp::encode::encode;
        let ours = encode::<Metrics>(points.clone(), limit);
        let theirs = encode::<reference::ProstMetrics>(points, limit);
        assert_eq!(ours.rejected, theirs.rejected);
        assert_eq!(ours.requests.len(), theirs.requests.len());
        for (i, (a, b)) in ours.requests.iter().zip(&theirs.requests).enumerate() {
            assert_eq!(a.points, b.points, "request {i}");
            if a.body != b.body {
                let decoded =
                    |body: &[u8]| collector::ExportMetricsServiceRequest::decode(body).map(|r| format!("{r:#?}"));
                panic!("request {i} differs:\n{:?}\n{:?}", decoded(&a.body), decoded(&b.body));
            }
        }
        ours.requests.len()
    }

    /// One point of every kind and shape, under resources and scopes with and
    /// without attributes and schema URLs.
    fn every_kind() -> Vec<MetricPoint> {
        let plain_resource = Arc::new(Resource::default());
        let rich_resource = Arc::new(
            Resource::new([KeyValue::new("service.name", "svc"), KeyValue::new("host.cores", 4)])
                .with_schema_url("https://example.com/r")
                .with_dropped_attributes_count(2),
        );
        let plain_scope = Arc::new(Scope::default());
        let rich_scope = Arc::new(
            Scope::new("lib")
                .with_version("1.2.3")
                .with_attributes([KeyValue::new("scope.attr", true)])
                .with_schema_url("https://example.com/s"),
        );
        let sum = |monotonic, temporality| descriptor("sum", MetricKind::Sum { monotonic, temporality });
        let descriptors = [
            sum(true, Temporality::Cumulative),
            sum(false, Temporality::Delta),
            Arc::new(MetricDescriptor::new("bare.gauge", MetricKind::Gauge)),
            descriptor("gauge", MetricKind::Gauge),
            descriptor("histogram", MetricKind::Histogram { temporality: Temporality::Delta }),
            descriptor("exponential", MetricKind::ExponentialHistogram { temporality: Temporality::Cumulative }),
            descriptor("summary", MetricKind::Summary),
        ];
        let exemplars = vec![
            Exemplar::new(T0, 3_i64).with_trace([7; 16], [9; 8]),
            Exemplar::new(0, -1.5).with_filtered_attributes([KeyValue::new("user", "u1"), KeyValue::new("n", -4)]),
            Exemplar::new(T1, i64::MIN),
        ];
        let attributes = vec![
            KeyValue::new("method", "GET"),
            KeyValue::new("", ""),
            KeyValue::new("code", 200),
            KeyValue::new("ratio", -0.0),
            KeyValue::new("ok", false),
            KeyValue::new("raw", vec![0_u8, 255]),
            KeyValue::new("list", vec![AnyValue::from(1), AnyValue::from("x"), AnyValue::Array(vec![])]),
            KeyValue::new(
                "map",
                AnyValue::Map(vec![KeyValue::new("inner", 2.5), KeyValue::new("m", AnyValue::Map(vec![]))]),
            ),
        ];
        let values = |d: &MetricDescriptor| -> Vec<MetricValue> {
            match d.kind {
                MetricKind::Sum { .. } | MetricKind::Gauge => vec![
                    MetricValue::Int(0),
                    MetricValue::Int(-7),
                    MetricValue::Int(i64::MAX),
                    MetricValue::Double(0.0),
                    MetricValue::Double(-0.0),
                    MetricValue::Double(f64::INFINITY),
                    MetricValue::Double(21.5),
                ],
                MetricKind::Histogram { .. } => vec![
                    MetricValue::Histogram(HistogramValue::default()),
                    MetricValue::Histogram(HistogramValue {
                        count: 6,
                        sum: Some(0.0),
                        bucket_counts: vec![1, 0, 5],
                        explicit_bounds: vec![-1.0, 5.0],
                        min: Some(-3.0),
                        max: None,
                    }),
                    MetricValue::Histogram(HistogramValue {
                        count: 1,
                        sum: None,
                        bucket_counts: vec![1],
                        explicit_bounds: vec![],
                        min: None,
                        max: Some(0.0),
                    }),
                ],
                MetricKind::ExponentialHistogram { .. } => vec![
                    MetricValue::ExponentialHistogram(ExponentialHistogramValue::default()),
                    MetricValue::ExponentialHistogram(ExponentialHistogramValue {
                        count: 10,
                        sum: Some(12.5),
                        scale: -3,
                        zero_count: 2,
                        zero_threshold: 1e-9,
                        positive: ExponentialBuckets { offset: -2, bucket_counts: vec![1, 0, 400, u64::MAX] },
                        negative: ExponentialBuckets { offset: 5, bucket_counts: vec![3] },
                        min: Some(-40.0),
                        max: Some(0.0),
                    }),
                    MetricValue::ExponentialHistogram(ExponentialHistogramValue {
                        scale: 20,
                        zero_threshold: -0.0,
                        positive: ExponentialBuckets { offset: i32::MIN, bucket_counts: vec![] },
                        ..Default::default()
                    }),
                ],
                MetricKind::Summary => vec![
                    MetricValue::Summary(SummaryValue::default()),
                    MetricValue::Summary(SummaryValue {
                        count: 4,
                        sum: 10.0,
                        quantiles: vec![
                            Quantile { quantile: 0.0, value: 1.0 },
                            Quantile { quantile: 0.5, value: 0.0 },
                            Quantile { quantile: 1.0, value: 4.0 },
                        ],
                    }),
                ],
            }
        };
        let mut points = Vec::new();
        for (i, d) in descriptors.iter().enumerate() {
            for (j, value) in values(d).into_iter().enumerate() {
                let (resource, scope) =
                    if (i + j) % 2 == 0 { (&rich_resource, &rich_scope) } else { (&plain_resource, &plain_scope) };
                let point = MetricPoint::new(resource.clone(), scope.clone(), d.clone(), value);
                let point = match j % 3 {
                    // No attributes, no times, no exemplars, no flags: every default skipped.
                    0 => point,
                    1 => point
                        .with_attributes(attributes.clone())
                        .with_time(T0, T1)
                        .with_exemplars(exemplars.clone())
                        .with_flags(MetricPoint::NO_RECORDED_VALUE),
                    _ => point.with_attributes(attributes[..1].to_vec()).with_time(0, T1).with_flags(u32::MAX),
                };
                points.push(point);
            }
        }
        points
    }

    #[test]
    fn every_metric_kind_is_written_as_prost_writes_it() {
        let points = every_kind();
        assert!(points.len() > 20);
        assert_eq!(same_as_prost(points.clone(), usize::MAX), 1);
        // The same points cut into many requests, down to one point per request.
        for limit in [4096, 700, 300] {
            assert!(same_as_prost(points.clone(), limit) > 1, "{limit}");
        }
        // And each point alone.
        for point in points {
            assert_eq!(same_as_prost(vec![point], usize::MAX), 1);
        }
    }

    #[test]
    fn rejected_points_are_rejected_as_before() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let counter = cumulative_counter("requests");
        let histogram = descriptor("latency", MetricKind::Histogram { temporality: Temporality::Delta });
        let bad_buckets = HistogramValue { bucket_counts: vec![1], explicit_bounds: vec![1.0], ..Default::default() };
        let points = vec![
            MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Int(1)),
            MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Summary(SummaryValue::default())),
            MetricPoint::new(res.clone(), sc.clone(), histogram.clone(), MetricValue::Histogram(bad_buckets)),
            MetricPoint::new(res.clone(), sc.clone(), histogram, MetricValue::Double(1.0)),
            MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Int(2))
                .with_attributes([KeyValue::new("pad", "p".repeat(2000))]),
            MetricPoint::new(res, sc, counter, MetricValue::Int(3)),
        ];
        assert_eq!(same_as_prost(points, 1000), 1);
    }

    /// The direct `MetricsDrain` user's encoding cost: 50 counters x 1000
    /// series x 3 attributes of `MetricPoint`s, encoded into 4 MiB requests
    /// as the drain does. Timing only; run in release:
    /// `cargo test --release --lib -- --ignored --nocapture timing_direct`.
    #[test]
    #[ignore = "timing harness, run by hand in release"]
    fn timing_direct_metric_points() {
        let (res, sc) = (resource("svc"), scope("lib"));
        let descriptors: Vec<_> = (0..50).map(|c| cumulative_counter(&format!("requests_{c}"))).collect();
        let batch = || -> Vec<MetricPoint> {
            let mut points = Vec::with_capacity(50_000);
            for d in &descriptors {
                for i in 0..1000_i64 {
                    points.push(
                        MetricPoint::new(res.clone(), sc.clone(), d.clone(), MetricValue::Int(i))
                            .with_attributes([
                                KeyValue::new("route", format!("/r/{i}")),
                                KeyValue::new("code", 200 + i % 5),
                                KeyValue::new("host", "h1"),
                            ])
                            .with_time(T0, T1),
                    );
                }
            }
            points
        };
        let mut ns = Vec::new();
        for _ in 0..15 {
            let points = batch();
            let n = points.len();
            let started = std::time::Instant::now();
            let encoded = crate::otlp::encode::encode::<Metrics>(points, 4 * 1024 * 1024);
            let elapsed = started.elapsed();
            assert!(encoded.rejected.is_empty());
            drop(encoded);
            ns.push(elapsed.as_nanos() as f64 / n as f64);
        }
        ns.sort_by(f64::total_cmp);
        println!(
            "direct MetricPoint encode, ns/point: min {:.1} median {:.1} max {:.1}",
            ns[0],
            ns[ns.len() / 2],
            ns[ns.len() - 1]
        );
    }

    /// A random point: any kind, a few attributes of any size, maybe exemplars.
    fn arbitrary_point() -> impl Strategy<Value = (usize, usize, usize, MetricValue, Vec<KeyValue>, bool, u64)> {
        let value = prop_oneof![
            any::<i64>().prop_map(MetricValue::Int),
            any::<f64>().prop_map(MetricValue::Double),
            (proptest::collection::vec(any::<u64>(), 0..6), any::<Option<f64>>()).prop_map(|(counts, sum)| {
                let bounds = (1..counts.len()).map(|b| b as f64).collect();
                MetricValue::Histogram(HistogramValue {
                    count: 3,
                    sum,
                    bucket_counts: counts,
                    explicit_bounds: bounds,
                    min: sum,
                    max: None,
                })
            }),
            (any::<i32>(), proptest::collection::vec(any::<u64>(), 0..6), any::<f64>()).prop_map(
                |(scale, counts, zero)| {
                    MetricValue::ExponentialHistogram(ExponentialHistogramValue {
                        count: counts.len() as u64,
                        scale,
                        zero_threshold: zero,
                        positive: ExponentialBuckets { offset: scale / 2, bucket_counts: counts },
                        ..Default::default()
                    })
                }
            ),
            proptest::collection::vec((any::<f64>(), any::<f64>()), 0..4).prop_map(|qs| {
                let quantiles = qs.into_iter().map(|(quantile, value)| Quantile { quantile, value }).collect();
                MetricValue::Summary(SummaryValue { count: 1, sum: 2.0, quantiles })
            }),
        ];
        let attribute = (
            "[a-z]{0,3}",
            prop_oneof![
                ".{0,200}".prop_map(AnyValue::String),
                any::<i64>().prop_map(AnyValue::Int),
                any::<bool>().prop_map(AnyValue::Bool),
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(AnyValue::Bytes),
            ],
        )
            .prop_map(|(k, v)| KeyValue::new(k, v));
        (
            0..2usize,
            0..2usize,
            0..5usize,
            value,
            proptest::collection::vec(attribute, 0..4),
            any::<bool>(),
            any::<u64>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn random_points_and_limits_are_written_as_prost_writes_them(
            specs in proptest::collection::vec(arbitrary_point(), 0..60),
            limit in prop_oneof![100..600usize, 600..5_000usize, Just(usize::MAX)],
        ) {
            let resources = [resource("a"), Arc::new(Resource::default().with_schema_url("u"))];
            let scopes = [scope("one"), Arc::new(Scope::default())];
            // Each kind once, so every value meets the kind it belongs to and some meet others.
            let descriptors = [
                cumulative_counter("sum"),
                descriptor("gauge", MetricKind::Gauge),
                descriptor("histogram", MetricKind::Histogram { temporality: Temporality::Cumulative }),
                descriptor("exponential", MetricKind::ExponentialHistogram { temporality: Temporality::Delta }),
                descriptor("summary", MetricKind::Summary),
            ];
            let points: Vec<MetricPoint> = specs
                .into_iter()
                .map(|(r, s, d, value, attributes, exemplar, time)| {
                    let point = MetricPoint::new(resources[r].clone(), scopes[s].clone(), descriptors[d].clone(), value)
                        .with_attributes(attributes)
                        .with_time(time / 2, time);
                    if exemplar { point.with_exemplars([Exemplar::new(time, 1.0).with_trace([1; 16], [2; 8])]) } else { point }
                })
                .collect();
            same_as_prost(points, limit);
        }
    }
}
