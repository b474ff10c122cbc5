//! Metric points: what one metric stream shares ([`MetricDescriptor`]),
//! the values a point carries, and the point itself ([`MetricPoint`]).
//! Their encoding is in `encode.rs`; the prost oracle it is tested against,
//! in `reference.rs`.

mod encode;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use std::sync::Arc;

#[cfg(feature = "sdk")]
pub(crate) use encode::EncodedMetricPoint;
pub(crate) use encode::Metrics;
#[cfg(feature = "sdk")]
pub(crate) use encode::{NumberRun, NumberValue};

use super::common::{KeyValue, Resource, Scope};
#[cfg(doc)]
use super::encode::EncodeError;
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
/// use otlp_sink::otlp::{MetricDescriptor, MetricKind, Temporality};
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
/// use otlp_sink::otlp::{Exemplar, KeyValue};
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
/// use otlp_sink::otlp::{KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Temporality};
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
