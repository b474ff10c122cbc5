//! The metrics encoding against what a collector decodes, and byte for byte
//! against the prost oracle in `reference.rs`.

use proptest::prelude::*;

use prost::Message;

use super::reference;
use super::*;
use crate::otlp::test_support::{encode_and_decode, resource, scope};
use crate::otlp::{AnyValue, EncodeError};
use crate::pb::collector::metrics::v1 as collector;
use crate::pb::metrics::v1 as pb;
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
    assert_eq!((e.time_unix_nano, e.trace_id.as_slice(), e.span_id.as_slice()), (T0 + 5, &[7; 16][..], &[9; 8][..]));

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
            let decoded = |body: &[u8]| collector::ExportMetricsServiceRequest::decode(body).map(|r| format!("{r:#?}"));
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
    crate::otlp::test_support::print_ns_per_point("direct MetricPoint encode", || {
        let points = batch();
        let n = points.len();
        let started = std::time::Instant::now();
        let encoded = crate::otlp::encode::encode::<Metrics>(points, 4 * 1024 * 1024);
        let elapsed = started.elapsed();
        assert!(encoded.rejected.is_empty());
        (n, elapsed)
    });
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
    (0..2usize, 0..2usize, 0..5usize, value, proptest::collection::vec(attribute, 0..4), any::<bool>(), any::<u64>())
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
