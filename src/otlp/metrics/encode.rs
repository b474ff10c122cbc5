//! The metrics encoding: a [`MetricPoint`]'s data point message, sized and
//! written by hand (`wire.rs`), the [`EncodedMetricPoint`] that carries it,
//! and the [`Metrics`] encoding that writes whole requests from them.

use std::sync::Arc;

use prost::encoding::key_len;
use prost::Message;

use super::Exemplar;
use super::{
    ExemplarValue, ExponentialBuckets, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Quantile, Temporality,
};
use crate::otlp::common::{Resource, Scope};
use crate::otlp::encode::{
    header_len, EncodeError, Encoding, Level, ResourceNode, ScopeNode, Shape, HEAD_TAG, RESOURCE_TAG, SCHEMA_URL_TAG,
    SCOPE_TAG,
};
#[cfg(feature = "sdk")]
use crate::otlp::wire::Attribute;
use crate::otlp::wire::{
    attributes_len, bytes_field_len, double_nonzero_len, field_len, fixed64_field_len, fixed64_nonzero_len,
    optional_double_len, packed_fixed64_len, packed_varint_len, put_attributes, put_bytes, put_bytes_nonempty,
    put_double, put_double_nonzero, put_fixed64, put_fixed64_nonzero, put_len_prefix, put_optional_double,
    put_packed_fixed64, put_packed_varint, put_varint_field, put_varint_nonzero, varint_nonzero_len, zigzag32,
};
use crate::pb::collector::metrics::v1 as collector;

/// The metrics encoding: [`EncodedMetricPoint`]s (from [`MetricPoint`]s, or
/// written straight from the SDK's data) into `ExportMetricsServiceRequest`s,
/// one `Metric` per descriptor under each scope.
#[derive(Debug)]
pub(crate) struct Metrics;

/// `ScopeMetrics.metrics`.
pub(super) const METRICS_TAG: u32 = 2;
/// `data_points` in `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` and `Summary`.
pub(super) const DATA_POINTS_TAG: u32 = 1;
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

/// Already encoded: its data point message's bytes (0 for a point that
/// cannot be sent, which no request carries).
impl crate::otlp::EncodedSize for EncodedMetricPoint {
    fn encoded_size(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len)
    }
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

    const ITEM: &'static str = "metric data point";

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
}
