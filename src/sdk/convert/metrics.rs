//! One SDK collection ([`ResourceMetrics`]) into the metrics encoding's
//! points ([`EncodedMetricPoint`]s). The protobuf bytes are written by
//! `otlp`, from the parts this module hands it.

use std::ops::ControlFlow;
use std::sync::Arc;

use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Exemplar as SdkExemplar, ExponentialBucket, Metric, MetricData, ResourceMetrics,
};
use opentelemetry_sdk::metrics::Temporality as SdkTemporality;

use opentelemetry::Value;

use super::{key_value_ref, nanos, span_id, trace_id, value_ref};
use crate::otlp::{
    Attribute, AttributeValue, EncodedMetricPoint, Exemplar, ExemplarValue, ExponentialBuckets,
    ExponentialHistogramValue, HistogramValue, KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue,
    NumberRun, NumberValue, Resource, Scope, Temporality,
};

/// The three number types the SDK aggregates.
trait Number: Copy {
    /// The value of a sum or gauge point.
    fn number(self) -> NumberValue;
    /// The value of a sum or gauge point, as a [`MetricPoint`] carries it.
    fn point(self) -> MetricValue {
        match self.number() {
            NumberValue::Int(i) => MetricValue::Int(i),
            NumberValue::Double(d) => MetricValue::Double(d),
        }
    }
    /// The value of an exemplar.
    fn exemplar(self) -> ExemplarValue;
    /// As a float, for histogram sums, minima and maxima.
    fn float(self) -> f64;
}

impl Number for i64 {
    fn number(self) -> NumberValue {
        NumberValue::Int(self)
    }
    fn exemplar(self) -> ExemplarValue {
        ExemplarValue::Int(self)
    }
    fn float(self) -> f64 {
        self as f64
    }
}

/// OTLP integers are signed 64-bit. A `u64` that fits is sent exactly as an
/// integer; one above `i64::MAX` is sent as the nearest double rather than
/// wrapped to a negative number or clamped to a wrong value.
impl Number for u64 {
    fn number(self) -> NumberValue {
        i64::try_from(self).map_or(NumberValue::Double(self as f64), NumberValue::Int)
    }
    fn exemplar(self) -> ExemplarValue {
        i64::try_from(self).map_or(ExemplarValue::Double(self as f64), ExemplarValue::Int)
    }
    fn float(self) -> f64 {
        self as f64
    }
}

impl Number for f64 {
    fn number(self) -> NumberValue {
        NumberValue::Double(self)
    }
    fn exemplar(self) -> ExemplarValue {
        ExemplarValue::Double(self)
    }
    fn float(self) -> f64 {
        self
    }
}

fn temporality(temporality: SdkTemporality) -> Temporality {
    match temporality {
        SdkTemporality::Cumulative => Temporality::Cumulative,
        // The data carries the temporality an instrument resolved to; a
        // preference (low memory) never reaches it, and would mean delta.
        _ => Temporality::Delta,
    }
}

fn exemplars<'a, T: Number + 'a>(exemplars: impl Iterator<Item = &'a SdkExemplar<T>>) -> Vec<Exemplar> {
    exemplars.map(|e| exemplar(e.filtered_attributes(), e.time(), e.value, *e.trace_id(), *e.span_id())).collect()
}

/// One exemplar, from its parts. (The SDK's `Exemplar` has no public
/// constructor, and SDK 0.33 never fills exemplars in, so the tests check
/// this function.) All-zero ids mean no trace context.
fn exemplar<'a, T: Number>(
    filtered_attributes: impl Iterator<Item = &'a opentelemetry::KeyValue>,
    time: std::time::SystemTime,
    value: T,
    trace: [u8; 16],
    span: [u8; 8],
) -> Exemplar {
    Exemplar {
        filtered_attributes: filtered_attributes.map(key_value_ref).collect(),
        time_unix_nano: nanos(time),
        value: value.exemplar(),
        trace_id: trace_id(opentelemetry::trace::TraceId::from_bytes(trace)),
        span_id: span_id(opentelemetry::trace::SpanId::from_bytes(span)),
    }
}

fn buckets(bucket: &ExponentialBucket) -> ExponentialBuckets {
    ExponentialBuckets { offset: bucket.offset(), bucket_counts: bucket.counts().collect() }
}

/// Every data point of one collection, in the SDK's order, as the metrics
/// encoding takes it in: the resource converted once, each scope and each
/// metric's descriptor once, into a vector sized once (a collection can
/// hold many thousands of points). Sum and gauge points without exemplars
/// (nearly all of them) are written straight from the SDK's attributes
/// ([`NumberRun`], runs of one buffer each), with no owned copy of any string; the
/// others go through a [`MetricPoint`].
pub(crate) fn encoded_resource_metrics(rm: &ResourceMetrics) -> Vec<EncodedMetricPoint> {
    let mut all = Vec::new();
    // One chunk: the whole collection, taken as it is.
    let _ = encoded_in_chunks(rm, usize::MAX, |chunk| {
        std::mem::swap(&mut all, chunk);
        ControlFlow::Continue(())
    });
    all
}

/// The number of data points in a collection.
pub(crate) fn collection_points(rm: &ResourceMetrics) -> usize {
    rm.scope_metrics().flat_map(|sm| sm.metrics()).map(point_count).sum()
}

/// The points of [`encoded_resource_metrics`], in the same order, handed to
/// `take` as they are converted, whole metrics at a time, in chunks of at
/// least `chunk` points (the last one may be smaller): so that the first
/// points can be on their way while the rest are converted. `take` empties
/// the chunk it is given, or stops the conversion with `Break`; the points
/// left in a chunk are dropped. Returns how `take` last answered.
pub(crate) fn encoded_in_chunks(
    rm: &ResourceMetrics,
    chunk: usize,
    mut take: impl FnMut(&mut Vec<EncodedMetricPoint>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let resource = Arc::new(super::resource(rm.resource()));
    // Whole: sized once, exactly. In chunks: a chunk's worth, grown by the
    // metric that passes it (the points are not counted a second time).
    let capacity = if chunk == usize::MAX { collection_points(rm) } else { chunk };
    let mut points = Vec::with_capacity(capacity);
    for sm in rm.scope_metrics() {
        let scope = Arc::new(super::scope(sm.scope(), None));
        for metric in sm.metrics() {
            match metric.data() {
                AggregatedMetrics::I64(data) => push_encoded(&mut points, &resource, &scope, metric, data),
                AggregatedMetrics::U64(data) => push_encoded(&mut points, &resource, &scope, metric, data),
                AggregatedMetrics::F64(data) => push_encoded(&mut points, &resource, &scope, metric, data),
            }
            if points.len() >= chunk {
                take(&mut points)?;
                points.clear();
            }
        }
    }
    if points.is_empty() {
        return ControlFlow::Continue(());
    }
    take(&mut points)
}

/// The SDK's attributes, handed to the writer as [`value_ref`] would convert
/// them: strings borrowed, scalars by value, the rest converted.
impl Attribute for opentelemetry::KeyValue {
    #[inline]
    fn key(&self) -> &str {
        self.key.as_str()
    }

    #[inline]
    fn value(&self) -> AttributeValue<'_> {
        match &self.value {
            Value::String(s) => AttributeValue::Str(s.as_str()),
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::I64(i) => AttributeValue::Int(*i),
            Value::F64(f) => AttributeValue::Double(*f),
            // Arrays and kinds yet unknown: rare, converted.
            other => AttributeValue::Owned(value_ref(other)),
        }
    }
}

/// Room for a metric's first sum or gauge point: the three fixed64 fields
/// (27 bytes) and a few short attributes. Later runs of the same metric
/// start with as much room as the run before took.
const NUMBER_POINT_START: usize = 96;

/// Encodes one metric's points onto `points`.
fn push_encoded<T: Number + 'static>(
    points: &mut Vec<EncodedMetricPoint>,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    metric: &Metric,
    data: &MetricData<T>,
) {
    let descriptor = descriptor(metric, data);
    let run = |count: usize| {
        let room = count.min(NumberRun::POINTS) * NUMBER_POINT_START;
        NumberRun::new(Arc::clone(resource), Arc::clone(scope), Arc::clone(&descriptor), room)
    };
    match data {
        MetricData::Sum(sum) if sum.data_points().all(|p| p.exemplars().next().is_none()) => {
            let times = (nanos(sum.start_time()), nanos(sum.time()));
            let run = run(sum.data_points().size_hint().0);
            write_numbers(points, run, sum.data_points(), |run, p| {
                run.push(p.attributes(), times, p.value().number());
            });
        }
        MetricData::Gauge(gauge) if gauge.data_points().all(|p| p.exemplars().next().is_none()) => {
            let times = (gauge.start_time().map_or(0, nanos), nanos(gauge.time()));
            let run = run(gauge.data_points().size_hint().0);
            write_numbers(points, run, gauge.data_points(), |run, p| {
                run.push(p.attributes(), times, p.value().number());
            });
        }
        _ => {
            let mut converted = Vec::new();
            push_points(&mut converted, resource, scope, descriptor, data);
            points.extend(converted.into_iter().map(EncodedMetricPoint::from));
        }
    }
}

/// Writes each of `data_points` into `run` with `write`, handing the run's
/// points over to `points` every [`NumberRun::POINTS`] and at the end.
fn write_numbers<'a, P: 'a>(
    points: &mut Vec<EncodedMetricPoint>,
    mut run: NumberRun,
    data_points: impl Iterator<Item = &'a P>,
    mut write: impl FnMut(&mut NumberRun, &'a P),
) {
    for point in data_points {
        write(&mut run, point);
        if run.len() == NumberRun::POINTS {
            run.finish(points);
        }
    }
    run.finish_last(points);
}

/// How many data points a metric holds.
fn point_count(metric: &Metric) -> usize {
    fn count<T>(data: &MetricData<T>) -> usize {
        match data {
            MetricData::Sum(sum) => sum.data_points().count(),
            MetricData::Gauge(gauge) => gauge.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(h) => h.data_points().count(),
        }
    }
    match metric.data() {
        AggregatedMetrics::I64(data) => count(data),
        AggregatedMetrics::U64(data) => count(data),
        AggregatedMetrics::F64(data) => count(data),
    }
}

/// The descriptor of `metric`, whose data is `data`.
fn descriptor<T>(metric: &Metric, data: &MetricData<T>) -> Arc<MetricDescriptor> {
    let kind = match data {
        MetricData::Sum(sum) => {
            MetricKind::Sum { monotonic: sum.is_monotonic(), temporality: temporality(sum.temporality()) }
        }
        MetricData::Gauge(_) => MetricKind::Gauge,
        MetricData::Histogram(h) => MetricKind::Histogram { temporality: temporality(h.temporality()) },
        MetricData::ExponentialHistogram(h) => {
            MetricKind::ExponentialHistogram { temporality: temporality(h.temporality()) }
        }
    };
    Arc::new(MetricDescriptor::new(metric.name(), kind).with_description(metric.description()).with_unit(metric.unit()))
}

/// Converts the points of a metric described by `descriptor` onto `points`.
fn push_points<T: Number + 'static>(
    points: &mut Vec<MetricPoint>,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
    descriptor: Arc<MetricDescriptor>,
    data: &MetricData<T>,
) {
    let point =
        |attributes: Vec<KeyValue>, start: u64, time: u64, value: MetricValue, exemplars: Vec<Exemplar>| MetricPoint {
            resource: Arc::clone(resource),
            scope: Arc::clone(scope),
            descriptor: Arc::clone(&descriptor),
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            value,
            exemplars,
            flags: 0,
        };
    match data {
        MetricData::Sum(sum) => {
            let (start, time) = (nanos(sum.start_time()), nanos(sum.time()));
            points.extend(sum.data_points().map(|p| {
                point(copy_attributes(p.attributes()), start, time, p.value().point(), exemplars(p.exemplars()))
            }));
        }
        MetricData::Gauge(gauge) => {
            let (start, time) = (gauge.start_time().map_or(0, nanos), nanos(gauge.time()));
            points.extend(gauge.data_points().map(|p| {
                point(copy_attributes(p.attributes()), start, time, p.value().point(), exemplars(p.exemplars()))
            }));
        }
        MetricData::Histogram(h) => {
            let (start, time) = (nanos(h.start_time()), nanos(h.time()));
            points.extend(h.data_points().map(|p| {
                let value = MetricValue::Histogram(HistogramValue {
                    count: p.count(),
                    sum: Some(p.sum().float()),
                    bucket_counts: p.bucket_counts().collect(),
                    explicit_bounds: p.bounds().collect(),
                    min: p.min().map(Number::float),
                    max: p.max().map(Number::float),
                });
                point(copy_attributes(p.attributes()), start, time, value, exemplars(p.exemplars()))
            }));
        }
        MetricData::ExponentialHistogram(h) => {
            let (start, time) = (nanos(h.start_time()), nanos(h.time()));
            points.extend(h.data_points().map(|p| {
                let value = MetricValue::ExponentialHistogram(ExponentialHistogramValue {
                    count: p.count() as u64,
                    sum: Some(p.sum().float()),
                    scale: i32::from(p.scale()),
                    zero_count: p.zero_count(),
                    zero_threshold: p.zero_threshold(),
                    positive: buckets(p.positive_bucket()),
                    negative: buckets(p.negative_bucket()),
                    min: p.min().map(Number::float),
                    max: p.max().map(Number::float),
                });
                point(copy_attributes(p.attributes()), start, time, value, exemplars(p.exemplars()))
            }));
        }
    }
}

fn copy_attributes<'a>(kvs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> Vec<KeyValue> {
    kvs.map(key_value_ref).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Context, InstrumentationScope, KeyValue as SdkKv};
    use opentelemetry_sdk::metrics::reader::MetricReader as _;
    use opentelemetry_sdk::metrics::{Aggregation, Instrument, ManualReader, SdkMeterProvider, Stream};

    use super::*;
    use crate::otlp::AnyValue;

    /// Every data point of one collection as a [`MetricPoint`], in the SDK's
    /// order; points share the resource, scope and descriptor. The
    /// reference for [`encoded_resource_metrics`], which the reader uses.
    fn resource_metrics(rm: &ResourceMetrics) -> Vec<MetricPoint> {
        let resource = Arc::new(super::super::resource(rm.resource()));
        let total = rm.scope_metrics().flat_map(|sm| sm.metrics()).map(point_count).sum();
        let mut points = Vec::with_capacity(total);
        for sm in rm.scope_metrics() {
            let scope = Arc::new(super::super::scope(sm.scope(), None));
            for metric in sm.metrics() {
                match metric.data() {
                    AggregatedMetrics::I64(data) => {
                        push_points(&mut points, &resource, &scope, descriptor(metric, data), data)
                    }
                    AggregatedMetrics::U64(data) => {
                        push_points(&mut points, &resource, &scope, descriptor(metric, data), data)
                    }
                    AggregatedMetrics::F64(data) => {
                        push_points(&mut points, &resource, &scope, descriptor(metric, data), data)
                    }
                }
            }
        }
        points
    }

    /// A provider whose reader the test collects from, with `temporality`.
    fn provider(temporality: SdkTemporality) -> (SdkMeterProvider, Arc<ManualReader>) {
        let reader = Arc::new(ManualReader::builder().with_temporality(temporality).build());
        #[derive(Debug)]
        struct Shared(Arc<ManualReader>);
        impl opentelemetry_sdk::metrics::reader::MetricReader for Shared {
            fn register_pipeline(&self, pipeline: std::sync::Weak<opentelemetry_sdk::metrics::Pipeline>) {
                self.0.register_pipeline(pipeline)
            }
            fn collect(&self, rm: &mut ResourceMetrics) -> opentelemetry_sdk::error::OTelSdkResult {
                self.0.collect(rm)
            }
            fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
                self.0.force_flush()
            }
            fn shutdown_with_timeout(&self, t: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
                self.0.shutdown_with_timeout(t)
            }
            fn temporality(&self, kind: opentelemetry_sdk::metrics::InstrumentKind) -> SdkTemporality {
                self.0.temporality(kind)
            }
        }
        let exponential = |i: &Instrument| {
            (i.name() == "exp").then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Base2ExponentialHistogram {
                        max_size: 160,
                        max_scale: 20,
                        record_min_max: true,
                    })
                    .build()
                    .unwrap()
            })
        };
        let provider = SdkMeterProvider::builder()
            .with_resource(
                opentelemetry_sdk::Resource::builder_empty()
                    .with_attribute(SdkKv::new("service.name", "convert-test"))
                    .build(),
            )
            .with_reader(Shared(Arc::clone(&reader)))
            .with_view(exponential)
            .build();
        (provider, reader)
    }

    fn collect(reader: &ManualReader) -> Vec<MetricPoint> {
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        resource_metrics(&rm)
    }

    fn find<'a>(points: &'a [MetricPoint], name: &str) -> Vec<&'a MetricPoint> {
        points.iter().filter(|p| p.descriptor.name == name).collect()
    }

    fn single<'a>(points: &'a [MetricPoint], name: &str) -> &'a MetricPoint {
        let found = find(points, name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]
    }

    #[test]
    fn sums_of_each_number_type_keep_value_kind_and_monotonicity() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder("lib").with_version("0.1").with_attributes([SdkKv::new("a", 1)]).build(),
        );
        meter.u64_counter("u").with_unit("{req}").with_description("requests").build().add(7, &[SdkKv::new("k", "v")]);
        meter.f64_counter("f").build().add(2.5, &[]);
        meter.i64_up_down_counter("i").build().add(-4, &[]);
        let points = collect(&reader);

        let u = single(&points, "u");
        assert_eq!(u.value, MetricValue::Int(7));
        assert_eq!(u.attributes, vec![KeyValue::new("k", "v")]);
        assert_eq!((u.descriptor.unit.as_str(), u.descriptor.description.as_str()), ("{req}", "requests"));
        assert_eq!(u.descriptor.kind, MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative });
        assert!(u.start_time_unix_nano > 0 && u.time_unix_nano >= u.start_time_unix_nano);
        assert_eq!(single(&points, "f").value, MetricValue::Double(2.5));
        let i = single(&points, "i");
        assert_eq!(i.value, MetricValue::Int(-4));
        assert_eq!(i.descriptor.kind, MetricKind::Sum { monotonic: false, temporality: Temporality::Cumulative });

        // Resource and scope: converted once, shared by every point.
        assert!(points.windows(2).all(|w| Arc::ptr_eq(&w[0].resource, &w[1].resource)));
        assert!(points.windows(2).all(|w| Arc::ptr_eq(&w[0].scope, &w[1].scope)));
        assert_eq!(u.resource.attributes, vec![KeyValue::new("service.name", "convert-test")]);
        assert_eq!((u.scope.name.as_str(), u.scope.version.as_str()), ("lib", "0.1"));
        assert_eq!(u.scope.attributes, vec![KeyValue::new("a", 1_i64)]);
    }

    #[test]
    fn series_of_one_metric_share_one_descriptor() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let counter = provider.meter("m").u64_counter("c").build();
        for i in 0..5 {
            counter.add(1, &[SdkKv::new("series", i)]);
        }
        let points = collect(&reader);
        let series = find(&points, "c");
        assert_eq!(series.len(), 5);
        assert_eq!(points.capacity(), points.len(), "the points were not counted before they were converted");
        assert!(series.windows(2).all(|w| Arc::ptr_eq(&w[0].descriptor, &w[1].descriptor)));
    }

    #[test]
    fn delta_temporality_reaches_the_points() {
        let (provider, reader) = provider(SdkTemporality::Delta);
        let meter = provider.meter("m");
        meter.u64_counter("c").build().add(3, &[]);
        meter.f64_histogram("h").build().record(1.0, &[]);
        meter.i64_up_down_counter("ud").build().add(1, &[]);
        let points = collect(&reader);
        assert_eq!(
            single(&points, "c").descriptor.kind,
            MetricKind::Sum { monotonic: true, temporality: Temporality::Delta }
        );
        assert_eq!(single(&points, "h").descriptor.kind, MetricKind::Histogram { temporality: Temporality::Delta });
        // Delta preference keeps up-down counters cumulative.
        assert_eq!(
            single(&points, "ud").descriptor.kind,
            MetricKind::Sum { monotonic: false, temporality: Temporality::Cumulative }
        );
        // A second delta collection starts where the first ended.
        let first_end = single(&points, "c").time_unix_nano;
        meter.u64_counter("c").build().add(1, &[]);
        let again = collect(&reader);
        let c = single(&again, "c");
        assert_eq!(c.value, MetricValue::Int(1));
        assert_eq!(c.start_time_unix_nano, first_end);
    }

    #[test]
    fn gauges_of_each_number_type() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter("m");
        meter.u64_gauge("gu").build().record(9, &[]);
        meter.i64_gauge("gi").build().record(-9, &[]);
        meter.f64_gauge("gf").build().record(21.5, &[]);
        let _observed = meter.f64_observable_gauge("og").with_callback(|o| o.observe(0.75, &[])).build();
        let points = collect(&reader);
        assert_eq!(single(&points, "gu").value, MetricValue::Int(9));
        assert_eq!(single(&points, "gi").value, MetricValue::Int(-9));
        assert_eq!(single(&points, "gf").value, MetricValue::Double(21.5));
        let og = single(&points, "og");
        assert_eq!((og.value.clone(), og.descriptor.kind), (MetricValue::Double(0.75), MetricKind::Gauge));
        assert!(og.time_unix_nano > 0);
    }

    #[test]
    fn histograms_keep_count_sum_buckets_bounds_min_and_max() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter("m");
        let h = meter.f64_histogram("h").with_boundaries(vec![1.0, 5.0]).build();
        for v in [0.5, 2.0, 3.0, 9.0] {
            h.record(v, &[]);
        }
        meter.u64_histogram("hu").with_boundaries(vec![10.0]).build().record(4, &[]);
        let points = collect(&reader);
        let MetricValue::Histogram(value) = &single(&points, "h").value else { panic!() };
        assert_eq!(
            value,
            &HistogramValue {
                count: 4,
                sum: Some(14.5),
                bucket_counts: vec![1, 2, 1],
                explicit_bounds: vec![1.0, 5.0],
                min: Some(0.5),
                max: Some(9.0),
            }
        );
        let MetricValue::Histogram(value) = &single(&points, "hu").value else { panic!() };
        assert_eq!((value.count, value.sum, value.min, value.max), (1, Some(4.0), Some(4.0), Some(4.0)));
        assert_eq!(value.bucket_counts, vec![1, 0]);
    }

    #[test]
    fn exponential_histograms_keep_scale_zero_bucket_and_both_ranges() {
        let (provider, reader) = provider(SdkTemporality::Delta);
        let h = provider.meter("m").f64_histogram("exp").build();
        for v in [0.0, 1.5, 3.0, 3.5, 100.0] {
            h.record(v, &[]);
        }
        let points = collect(&reader);
        let p = single(&points, "exp");
        assert_eq!(p.descriptor.kind, MetricKind::ExponentialHistogram { temporality: Temporality::Delta });
        let MetricValue::ExponentialHistogram(value) = &p.value else { panic!("{:?}", p.value) };
        assert_eq!(value.count, 5);
        assert_eq!(value.zero_count, 1);
        assert_eq!(value.sum, Some(108.0));
        assert_eq!((value.min, value.max), (Some(0.0), Some(100.0)));
        assert_eq!(value.positive.bucket_counts.iter().sum::<u64>(), 4);
        assert!(value.negative.bucket_counts.is_empty());
        assert!(value.scale <= 20 && value.scale > -10, "{}", value.scale);
        // Bucket i covers (base^i, base^(i+1)]: 100 lies in the last bucket.
        let base = 2f64.powf(2f64.powi(-value.scale));
        let last = value.positive.offset + value.positive.bucket_counts.len() as i32 - 1;
        assert!(base.powi(last) < 100.0 && 100.0 <= base.powi(last + 1) * (1.0 + 1e-9));
    }

    #[test]
    fn exemplars_carry_value_time_trace_and_filtered_attributes() {
        let time = std::time::UNIX_EPOCH + Duration::from_nanos(1_234);
        let filtered = [SdkKv::new("user", "u1")];
        let e = exemplar(filtered.iter(), time, 5_u64, [7; 16], [9; 8]);
        assert_eq!(
            e,
            Exemplar::new(1_234, 5_i64)
                .with_trace([7; 16], [9; 8])
                .with_filtered_attributes([KeyValue::new("user", "u1")])
        );
        let e = exemplar([].iter(), time, 2.5_f64, [0; 16], [0; 8]);
        assert_eq!((e.value, e.trace_id, e.span_id), (ExemplarValue::Double(2.5), None, None), "no trace context");
        assert_eq!(exemplar([].iter(), time, -3_i64, [1; 16], [2; 8]).value, ExemplarValue::Int(-3));
        assert_eq!(exemplar([].iter(), time, u64::MAX, [1; 16], [2; 8]).value, ExemplarValue::Double(u64::MAX as f64));
    }

    #[test]
    fn the_sdk_sends_no_exemplars_and_points_carry_none() {
        // Recorded inside a sampled span: an SDK that kept exemplars would
        // attach one here. 0.33 does not; when it does, this test fails and
        // points start carrying them through `exemplar` above.
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let counter = provider.meter("m").u64_counter("c").build();
        let cx = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([9; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        {
            let _guard = cx.attach();
            counter.add(5, &[SdkKv::new("k", "v")]);
        }
        let points = collect(&reader);
        assert!(single(&points, "c").exemplars.is_empty());
    }

    #[test]
    fn u64_above_i64_max_becomes_a_double_instead_of_wrapping() {
        assert_eq!(5_u64.point(), MetricValue::Int(5));
        assert_eq!((i64::MAX as u64).point(), MetricValue::Int(i64::MAX));
        assert_eq!(u64::MAX.point(), MetricValue::Double(u64::MAX as f64));
        assert_eq!(u64::MAX.exemplar(), ExemplarValue::Double(u64::MAX as f64));
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        provider.meter("m").u64_counter("big").build().add(u64::MAX, &[]);
        let points = collect(&reader);
        assert_eq!(single(&points, "big").value, MetricValue::Double(u64::MAX as f64));
    }

    #[test]
    fn attribute_values_keep_their_types_in_points() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        provider
            .meter("m")
            .u64_counter("c")
            .build()
            .add(1, &[SdkKv::new("b", true), SdkKv::new("d", 0.5), SdkKv::new("i", 3), SdkKv::new("s", "x")]);
        let points = collect(&reader);
        let mut attributes = single(&points, "c").attributes.clone();
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        let values: Vec<AnyValue> = attributes.into_iter().map(|kv| kv.value).collect();
        assert_eq!(values, vec![AnyValue::Bool(true), AnyValue::Double(0.5), AnyValue::Int(3), "x".into()]);
    }

    /// The SDK path's cost beyond the collection: one collection of 50
    /// counters x 1000 series x 3 attributes, converted and encoded into
    /// 4 MiB requests as the reader and the drain do. Timing only; run in
    /// release: `cargo test --release --lib -- --ignored --nocapture timing_sdk`.
    #[test]
    #[ignore = "timing harness, run by hand in release"]
    fn timing_sdk_collection() {
        use crate::otlp::{encode, Metrics};

        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter("timing");
        let attrs: Vec<[SdkKv; 3]> = (0..1000)
            .map(|i| {
                [SdkKv::new("route", format!("/r/{i}")), SdkKv::new("code", 200 + i % 5), SdkKv::new("host", "h1")]
            })
            .collect();
        let counters: Vec<_> = (0..50).map(|c| meter.u64_counter(format!("requests_{c}")).build()).collect();
        for c in &counters {
            for a in &attrs {
                c.add(1, a);
            }
        }
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        crate::otlp::test_support::print_ns_per_point("SDK convert + encode", || {
            let started = std::time::Instant::now();
            let points = encoded_resource_metrics(&rm);
            let n = points.len();
            let encoded = encode::<Metrics>(points, 4 * 1024 * 1024);
            let elapsed = started.elapsed();
            assert!(encoded.rejected.is_empty() && n == 50_000);
            (n, elapsed)
        });
    }

    #[test]
    fn a_metric_s_points_are_written_in_runs_of_at_most_run_points() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter("runs");
        let many = meter.u64_counter("many").build();
        // (The SDK keeps at most 2000 series a metric.)
        for i in 0..NumberRun::POINTS + 452 {
            many.add(1, &[SdkKv::new("series", i as i64), SdkKv::new("route", format!("/r/{i}"))]);
        }
        meter.f64_gauge("one").build().record(0.5, &[]);
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        let encoded = encoded_resource_metrics(&rm);
        let points = resource_metrics(&rm);
        assert_eq!(encoded.len(), points.len());
        for (one, point) in encoded.iter().zip(&points) {
            assert_eq!(one.data(), EncodedMetricPoint::from(point.clone()).data(), "{}", point.descriptor.name);
        }
        // Consecutive points sharing a run: 1024 and 452 of "many",
        // and the gauge's point in a run of its own, in the SDK's order.
        let mut runs: Vec<(String, usize)> = Vec::new();
        for (i, one) in encoded.iter().enumerate() {
            match runs.last_mut() {
                Some((_, n)) if one.same_run(&encoded[i - 1]) => *n += 1,
                _ => runs.push((one.descriptor().name.clone(), 1)),
            }
        }
        let mut expected = vec![("many".to_owned(), 1024), ("many".to_owned(), 452)];
        if runs[0].0 == "one" {
            expected.insert(0, ("one".to_owned(), 1));
        } else {
            expected.push(("one".to_owned(), 1));
        }
        assert_eq!(runs, expected);
    }

    #[test]
    fn chunks_are_whole_metrics_in_order_and_stop_when_told() {
        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter("chunks");
        // Metrics of 300, 1, 300 and 50 series.
        for (name, series) in [("a", 300), ("b", 1), ("c", 300), ("d", 50)] {
            let counter = meter.u64_counter(name).build();
            for i in 0..series {
                counter.add(1, &[SdkKv::new("series", i)]);
            }
        }
        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        let whole = encoded_resource_metrics(&rm);
        assert_eq!(whole.len(), 651);
        assert_eq!(collection_points(&rm), 651);

        let mut chunks: Vec<Vec<EncodedMetricPoint>> = Vec::new();
        let flow = encoded_in_chunks(&rm, 250, |chunk| {
            chunks.push(std::mem::take(chunk));
            ControlFlow::Continue(())
        });
        assert_eq!(flow, ControlFlow::Continue(()));
        // A chunk is handed over once it holds at least 250 points, after a
        // whole metric: the SDK's order of metrics decides the cuts.
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let mut expected: Vec<usize> = Vec::new();
        let mut open = 0;
        for metric in rm.scope_metrics().flat_map(|sm| sm.metrics()) {
            open += point_count(metric);
            if open >= 250 {
                expected.push(std::mem::take(&mut open));
            }
        }
        if open > 0 {
            expected.push(open);
        }
        assert_eq!(sizes, expected);
        let bytes = |p: &EncodedMetricPoint| p.data().map(<[u8]>::to_vec).map_err(Clone::clone);
        let joined: Vec<_> = chunks.iter().flatten().map(bytes).collect();
        assert_eq!(joined, whole.iter().map(bytes).collect::<Vec<_>>(), "same points, same order");

        let mut taken = 0;
        let flow = encoded_in_chunks(&rm, 1, |chunk| {
            taken += chunk.len();
            chunk.clear();
            ControlFlow::Break(())
        });
        assert_eq!(flow, ControlFlow::Break(()));
        assert!(taken > 0 && taken < 651, "the conversion stopped after the first chunk: {taken}");
    }

    #[test]
    fn encoded_points_are_the_bytes_of_the_converted_points() {
        use opentelemetry::{Array, Key, StringValue};

        use crate::otlp::{encode, Metrics};

        let (provider, reader) = provider(SdkTemporality::Cumulative);
        let meter = provider.meter_with_scope(
            InstrumentationScope::builder("lib")
                .with_version("0.1")
                .with_schema_url("https://example.com/s")
                .with_attributes([SdkKv::new("scope.attr", 1)])
                .build(),
        );
        let every_value = [
            SdkKv::new("static", "text"),
            SdkKv::new(Key::new(String::from("owned")), String::from("owned text")),
            SdkKv::new(Key::from(Arc::<str>::from("shared")), StringValue::from(Arc::<str>::from("shared text"))),
            SdkKv::new("empty", ""),
            SdkKv::new("bool", false),
            SdkKv::new("int", -12),
            SdkKv::new("double", 2.5),
            SdkKv::new("bools", opentelemetry::Value::Array(Array::Bool(vec![true, false]))),
            SdkKv::new("ints", opentelemetry::Value::Array(Array::I64(vec![1, -2]))),
            SdkKv::new("doubles", opentelemetry::Value::Array(Array::F64(vec![0.5]))),
            SdkKv::new("strings", opentelemetry::Value::Array(Array::String(vec!["a".into(), "b".into()]))),
        ];
        let counter = meter.u64_counter("c").with_unit("{req}").with_description("requests").build();
        counter.add(3, &every_value);
        counter.add(4, &[]);
        for i in 0..200 {
            counter.add(1, &[SdkKv::new("series", i), SdkKv::new("route", format!("/r/{i}"))]);
        }
        meter.u64_counter("big").build().add(u64::MAX, &[SdkKv::new("k", "v")]);
        meter.f64_counter("f").build().add(0.25, &every_value[..3]);
        meter.i64_up_down_counter("ud").build().add(-4, &[]);
        meter.i64_gauge("gi").build().record(-9, &every_value[4..]);
        meter.f64_gauge("gf").build().record(21.5, &[]);
        meter.f64_histogram("h").with_boundaries(vec![1.0, 5.0]).build().record(2.0, &every_value);
        meter.f64_histogram("exp").build().record(3.5, &[SdkKv::new("k", "v")]);

        let mut rm = ResourceMetrics::default();
        reader.collect(&mut rm).unwrap();
        let points = resource_metrics(&rm);
        let encoded = encoded_resource_metrics(&rm);
        assert_eq!(encoded.capacity(), encoded.len(), "the points were not counted before they were encoded");
        assert_eq!(points.len(), encoded.len());
        assert!(points.len() > 200);
        for (point, one) in points.iter().zip(&encoded) {
            assert!(Arc::ptr_eq(one.resource(), encoded[0].resource()));
            assert_eq!(point.scope, *one.scope());
            assert_eq!(point.descriptor, *one.descriptor());
            let expected = EncodedMetricPoint::from(point.clone());
            assert_eq!(one.data(), expected.data(), "{}", point.descriptor.name);
        }
        // And whole requests, cut at several sizes.
        for limit in [usize::MAX, 8192, 600] {
            let ours = encode::<Metrics>(encoded_resource_metrics(&rm), limit);
            let theirs = encode::<Metrics>(resource_metrics(&rm), limit);
            assert!(ours.rejected.is_empty() && theirs.rejected.is_empty());
            let bodies =
                |e: &crate::otlp::Encoded| e.requests.iter().map(|r| (r.points, r.body.clone())).collect::<Vec<_>>();
            assert_eq!(bodies(&ours), bodies(&theirs), "limit {limit}");
        }
    }
}
