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
fn metric_lens(descriptor: &MetricDescriptor, points: &[SendablePoint]) -> (usize, usize) {
    let (data_tag, data_head) = data_head(descriptor.kind);
    let data = data_head + points.iter().map(|p| field_len(DATA_POINTS_TAG, p.range.len())).sum::<usize>();
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
                    put_bytes(&mut buf, DATA_POINTS_TAG, point.bytes());
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

/// Points of one metric that one conversion wrote together: the parts they
/// share, and their data point messages back to back. Each
/// [`EncodedMetricPoint`] holds the run and its own range of `bytes`, so a
/// point costs no allocation of its own and one reference count, not three.
#[derive(Debug)]
pub(crate) struct PointRun {
    /// The entity that produced the points.
    resource: Arc<Resource>,
    /// The instrumentation scope that recorded them.
    scope: Arc<Scope>,
    /// The metric they belong to; its kind says which data point message
    /// each range of `bytes` holds.
    descriptor: Arc<MetricDescriptor>,
    /// The data point messages (without tag and length prefix), in order.
    bytes: Vec<u8>,
}

/// A metric data point with its data point message encoded, or known to be
/// unsendable: what the [`Metrics`] encoding groups and cuts into requests.
/// A [`MetricPoint`] becomes one with [`From`]; the SDK adapters write sum
/// and gauge points straight from the SDK's data with a [`NumberRun`],
/// never copying them into a [`MetricPoint`].
#[derive(Debug)]
pub(crate) struct EncodedMetricPoint {
    /// The run the point was written in.
    run: Arc<PointRun>,
    /// Where its data point message lies in the run's bytes, or why the
    /// point cannot be sent; it is then counted as rejected at encoding.
    data: Result<std::ops::Range<usize>, Box<EncodeError>>,
}

impl EncodedMetricPoint {
    /// The entity that produced the point.
    pub(crate) fn resource(&self) -> &Arc<Resource> {
        &self.run.resource
    }

    /// The instrumentation scope that recorded it.
    pub(crate) fn scope(&self) -> &Arc<Scope> {
        &self.run.scope
    }

    /// The metric it belongs to.
    pub(crate) fn descriptor(&self) -> &Arc<MetricDescriptor> {
        &self.run.descriptor
    }

    /// Whether the two points were written in the same run.
    #[cfg(all(test, feature = "sdk"))]
    pub(crate) fn same_run(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.run, &other.run)
    }

    /// The data point message's bytes (without tag and length prefix), or
    /// why the point cannot be sent.
    #[cfg(all(test, feature = "sdk"))]
    pub(crate) fn data(&self) -> Result<&[u8], &EncodeError> {
        match &self.data {
            Ok(range) => Ok(&self.run.bytes[range.clone()]),
            Err(err) => Err(err),
        }
    }
}

/// Already encoded: its data point message's bytes (0 for a point that
/// cannot be sent, which no request carries).
impl crate::otlp::EncodedSize for EncodedMetricPoint {
    fn encoded_size(&self) -> usize {
        self.data.as_ref().map_or(0, |range| range.len())
    }
}

/// Checks the point's value against its descriptor's kind, then writes its
/// data point message, sized first so that it is allocated once, as a run
/// of its own.
impl From<MetricPoint> for EncodedMetricPoint {
    fn from(point: MetricPoint) -> Self {
        let written = check(&point.descriptor, &point.value).map(|()| {
            let len = point.data_point_len();
            let mut buf = Vec::with_capacity(len);
            point.put_data_point(&mut buf);
            debug_assert_eq!(buf.len(), len, "a data point's size differs from its bytes");
            buf
        });
        let MetricPoint { resource, scope, descriptor, .. } = point;
        let (bytes, data) = match written {
            Ok(bytes) => {
                let len = bytes.len();
                (bytes, Ok(0..len))
            }
            Err(err) => (Vec::new(), Err(Box::new(err))),
        };
        Self { run: Arc::new(PointRun { resource, scope, descriptor, bytes }), data }
    }
}

/// A point of a request being assembled: one that can be sent.
#[derive(Debug)]
pub(crate) struct SendablePoint {
    run: Arc<PointRun>,
    range: std::ops::Range<usize>,
}

impl SendablePoint {
    /// The data point message's bytes.
    fn bytes(&self) -> &[u8] {
        &self.run.bytes[self.range.clone()]
    }
}

/// Sum and gauge points of one metric with no exemplars and no flags,
/// written straight from their parts into one buffer, as
/// [`From<MetricPoint>`](#impl-From<MetricPoint>-for-EncodedMetricPoint)
/// writes each such point; [`finish`](Self::finish) hands them over as
/// [`EncodedMetricPoint`]s of one [`PointRun`].
///
/// Each point is written in one pass over its attributes, which are
/// measured as they are written, for their length prefixes.
#[cfg(feature = "sdk")]
#[derive(Debug)]
pub(crate) struct NumberRun {
    resource: Arc<Resource>,
    scope: Arc<Scope>,
    descriptor: Arc<MetricDescriptor>,
    /// The points written since the last `finish`.
    bytes: Vec<u8>,
    /// Where each of those points ends in `bytes`.
    ends: Vec<usize>,
}

#[cfg(feature = "sdk")]
impl NumberRun {
    /// The points of a run: enough that a run's allocation and reference
    /// count are shared widely, few enough that a point held in a queue
    /// keeps a bounded buffer alive (about 100 KiB for short attributes).
    pub(crate) const POINTS: usize = 1024;

    /// An empty run of `descriptor`'s points, which must be a sum or a
    /// gauge, with room for `bytes` bytes of points.
    pub(crate) fn new(
        resource: Arc<Resource>,
        scope: Arc<Scope>,
        descriptor: Arc<MetricDescriptor>,
        bytes: usize,
    ) -> Self {
        debug_assert!(matches!(descriptor.kind, MetricKind::Sum { .. } | MetricKind::Gauge));
        Self { resource, scope, descriptor, bytes: Vec::with_capacity(bytes), ends: Vec::new() }
    }

    /// The points written since the last [`finish`](Self::finish).
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Writes one point: its `NumberDataPoint`, as `put_data_point` writes
    /// it with no exemplars and no flags.
    pub(crate) fn push<'a, A, I>(
        &mut self,
        attributes: I,
        (start_time_unix_nano, time_unix_nano): (u64, u64),
        value: NumberValue,
    ) where
        A: Attribute + 'a,
        I: Iterator<Item = &'a A>,
    {
        let buf = &mut self.bytes;
        put_fixed64_nonzero(buf, point_tags::START, start_time_unix_nano);
        put_fixed64_nonzero(buf, point_tags::TIME, time_unix_nano);
        match value {
            NumberValue::Int(i) => put_fixed64(buf, 6, i as u64),
            NumberValue::Double(d) => put_double(buf, 4, d),
        }
        put_attributes(buf, 7, attributes);
        self.ends.push(buf.len());
    }

    /// Appends the points written since the last call to `out`, as one
    /// run, and starts the next run with as much room as this one took.
    pub(crate) fn finish(&mut self, out: &mut Vec<EncodedMetricPoint>) {
        let room = self.bytes.len();
        let bytes = std::mem::replace(&mut self.bytes, Vec::with_capacity(room));
        self.hand_over(bytes, out);
    }

    /// [`finish`](Self::finish) for the metric's last run: no room is
    /// made for a next one.
    pub(crate) fn finish_last(mut self, out: &mut Vec<EncodedMetricPoint>) {
        let bytes = std::mem::take(&mut self.bytes);
        self.hand_over(bytes, out);
    }

    /// Appends the points written since the last hand-over, whose bytes
    /// are `bytes`, to `out` as one run.
    fn hand_over(&mut self, bytes: Vec<u8>, out: &mut Vec<EncodedMetricPoint>) {
        if self.ends.is_empty() {
            return;
        }
        let run = Arc::new(PointRun {
            resource: Arc::clone(&self.resource),
            scope: Arc::clone(&self.scope),
            descriptor: Arc::clone(&self.descriptor),
            bytes,
        });
        let mut start = 0;
        out.extend(self.ends.drain(..).map(|end| {
            let point = EncodedMetricPoint { run: Arc::clone(&run), data: Ok(start..end) };
            start = end;
            point
        }));
    }
}

/// The value of a sum or gauge point, for [`NumberRun::push`].
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
    type Leaves = Vec<SendablePoint>;
    type Request = collector::ExportMetricsServiceRequest;

    const ITEM: &'static str = "metric data point";

    fn parts(point: &EncodedMetricPoint) -> (&Arc<Resource>, &Arc<Scope>, &Arc<MetricDescriptor>) {
        (point.resource(), point.scope(), point.descriptor())
    }

    fn bucket(descriptor: &Arc<MetricDescriptor>) -> (Vec<SendablePoint>, Shape) {
        let (data_tag, data_header) = data_head(descriptor.kind);
        let shape = Shape::nested(
            Level { tag: METRICS_TAG, header: metric_head_len(descriptor) },
            Level { tag: data_tag, header: data_header },
            DATA_POINTS_TAG,
        );
        (Vec::new(), shape)
    }

    fn push(
        points: &mut Vec<SendablePoint>,
        _descriptor: &Arc<MetricDescriptor>,
        point: EncodedMetricPoint,
    ) -> Result<usize, EncodeError> {
        let EncodedMetricPoint { run, data } = point;
        let range = data.map_err(|err| *err)?;
        let len = range.len();
        points.push(SendablePoint { run, range });
        Ok(len)
    }

    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8> {
        write_request(resources, encoded_len)
    }
}
