//! The encoder's behaviour over whole batches: grouping, splitting to the
//! byte, rejections, and a property over random sizes, groups and limits.

use std::collections::HashMap;

use proptest::prelude::*;

use std::sync::Arc;

use super::*;
use crate::otlp::test_support::{encode_and_decode, resource, scope};
use crate::otlp::{
    AnyValue, KeyValue, LogRecord, Logs, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Metrics, Temporality,
};
use crate::pb::collector::logs::v1::ExportLogsServiceRequest;
use crate::pb::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::pb::common::v1::{any_value::Value, KeyValue as PbKeyValue};

fn record(resource: &Arc<Resource>, scope: &Arc<Scope>, id: i64, body_len: usize) -> LogRecord {
    LogRecord::new(resource.clone(), scope.clone(), 1)
        .with_attributes([KeyValue::new("id", id)])
        .with_body("x".repeat(body_len))
}

fn id_of(attributes: &[PbKeyValue]) -> i64 {
    match attributes.iter().find(|kv| kv.key == "id").and_then(|kv| kv.value.as_ref()?.value.as_ref()) {
        Some(Value::IntValue(id)) => *id,
        other => panic!("no id attribute: {other:?}"),
    }
}

fn log_ids(request: &ExportLogsServiceRequest) -> Vec<i64> {
    (request.resource_logs.iter())
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| id_of(&r.attributes))
        .collect()
}

/// A request size limit that a whole test batch fits (the drain's default, 4 MiB).
const LIMIT: usize = 4 * 1024 * 1024;

/// The size of the smallest request carrying `point`.
fn alone_len<S: Encoding>(point: impl Into<S::Point>) -> usize {
    let encoded = encode::<S>([point], usize::MAX);
    assert_eq!(encoded.requests.len(), 1);
    encoded.requests[0].body.len()
}

#[test]
fn an_empty_batch_makes_no_request() {
    let encoded = encode::<Logs>(Vec::<LogRecord>::new(), LIMIT);
    assert!(encoded.requests.is_empty() && encoded.rejected.is_empty());
}

#[test]
fn a_batch_under_the_limit_is_one_request() {
    let (res, sc) = (resource("svc"), scope("lib"));
    let records = (0..1000).map(|i| record(&res, &sc, i, 100)).collect();
    let (requests, rejected, counts) = encode_and_decode::<Logs>(records, LIMIT);
    assert!(rejected.is_empty());
    assert_eq!(counts, [1000]);
    assert_eq!(log_ids(&requests[0]), (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_small_limit_cuts_the_batch_into_many_requests_in_order() {
    let (res, sc) = (resource("svc"), scope("lib"));
    let records = (0..500).map(|i| record(&res, &sc, i, 50)).collect();
    let (requests, rejected, counts) = encode_and_decode::<Logs>(records, 2048);
    assert!(rejected.is_empty());
    assert!(requests.len() >= 15, "only {} requests", requests.len());
    assert_eq!(counts.iter().sum::<usize>(), 500);
    let ids: Vec<i64> = requests.iter().flat_map(log_ids).collect();
    assert_eq!(ids, (0..500).collect::<Vec<_>>());
    for (request, count) in requests.iter().zip(&counts) {
        // Each request repeats the resource and scope its records need, once.
        assert_eq!(request.resource_logs.len(), 1);
        assert_eq!(request.resource_logs[0].scope_logs.len(), 1);
        assert_eq!(request.resource_logs[0].scope_logs[0].log_records.len(), *count);
    }
}

#[test]
fn the_limit_is_exact_to_the_byte() {
    let (res, sc) = (resource("svc"), scope("lib"));
    let batch = || (0..300).map(|i| record(&res, &sc, i, 40)).collect::<Vec<_>>();
    let whole = encode::<Logs>(batch(), usize::MAX);
    let size = whole.requests[0].body.len();

    let (_, _, counts) = encode_and_decode::<Logs>(batch(), size);
    assert_eq!(counts, [300], "a limit equal to the size fits the whole batch");
    let (_, _, counts) = encode_and_decode::<Logs>(batch(), size - 1);
    assert_eq!(counts, [299, 1], "one byte less moves the last record to a second request");
}

#[test]
fn an_oversized_point_is_rejected_and_its_neighbours_delivered() {
    let (res, sc) = (resource("svc"), scope("lib"));
    let limit = 4096;
    let huge = record(&res, &sc, 2, 10_000);
    let huge_len = alone_len::<Logs>(huge.clone());
    let records = vec![
        record(&res, &sc, 0, 10),
        record(&res, &sc, 1, 10),
        huge,
        record(&res, &sc, 3, 10),
        record(&res, &sc, 4, 10),
    ];
    let (requests, rejected, counts) = encode_and_decode::<Logs>(records, limit);
    assert_eq!(rejected, vec![EncodeError::TooLarge { item: "log record", encoded_len: huge_len, limit }]);
    assert!(huge_len > 10_000);
    assert_eq!(
        rejected[0].to_string(),
        format!("a single log record needs a request of {huge_len} bytes, more than the 4096-byte request limit")
    );
    // The neighbours are not pushed into a new request by the rejection.
    assert_eq!(counts, [4]);
    assert_eq!(log_ids(&requests[0]), [0, 1, 3, 4]);
}

#[test]
fn an_oversized_metric_point_leaves_its_metric_to_the_others() {
    let (res, sc) = (resource("svc"), scope("lib"));
    let counter = Arc::new(MetricDescriptor::new(
        "requests",
        MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative },
    ));
    let point = |id: i64, pad: usize| {
        MetricPoint::new(res.clone(), sc.clone(), counter.clone(), MetricValue::Int(id))
            .with_attributes([KeyValue::new("id", id), KeyValue::new("pad", "p".repeat(pad))])
    };
    let (requests, rejected, counts) =
        encode_and_decode::<Metrics>(vec![point(0, 1), point(1, 5000), point(2, 1)], 1000);
    assert!(matches!(rejected[..], [EncodeError::TooLarge { item: "metric data point", limit: 1000, .. }]));
    assert_eq!(counts, [2]);
    assert_eq!(metric_ids(&requests[0]), [("requests".to_string(), 0), ("requests".to_string(), 2)]);
}

fn metric_ids(request: &ExportMetricsServiceRequest) -> Vec<(String, i64)> {
    use crate::pb::metrics::v1::metric::Data;
    let mut out = Vec::new();
    for metric in request.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics) {
        match &metric.data {
            Some(Data::Sum(sum)) => {
                out.extend(sum.data_points.iter().map(|p| (metric.name.clone(), id_of(&p.attributes))));
            }
            Some(Data::Gauge(gauge)) => {
                out.extend(gauge.data_points.iter().map(|p| (metric.name.clone(), id_of(&p.attributes))));
            }
            other => panic!("unexpected data {other:?}"),
        }
    }
    out
}

// -----------------------------------------------------------------------
// Property: whatever the point sizes, groups and limit, every request is
// within the limit (by its real encoded size), every point is either
// delivered once or rejected because it cannot fit alone, and each
// group's points arrive in order.

/// A resource or scope index, and a payload size.
type Spec = (usize, usize, usize, usize);

fn specs(max_points: usize) -> impl Strategy<Value = (Vec<Spec>, usize)> {
    let spec = (0..3usize, 0..3usize, 0..4usize, prop_oneof![0..40usize, 0..400usize, 0..3000usize]);
    (proptest::collection::vec(spec, 0..max_points), prop_oneof![30..300usize, 300..5_000usize, 5_000..40_000usize])
}

fn resources() -> Vec<Arc<Resource>> {
    vec![
        resource("a"),
        Arc::new(Resource::new([KeyValue::new("service.name", "b")]).with_schema_url("https://example.com/s/1")),
        Arc::new(Resource::default()),
    ]
}

fn scopes() -> Vec<Arc<Scope>> {
    vec![
        scope("one"),
        Arc::new(Scope::new("two").with_schema_url("https://example.com/s/2")),
        Arc::new(Scope::default()),
    ]
}

/// Checks the split invariants, given each point's group key and id
/// (in batch order), the delivered (group, id) pairs in request order,
/// and the rejections.
fn check_split(
    groups: &[(usize, usize, usize)],
    alone: &[usize],
    delivered: &[((usize, usize, usize), i64)],
    rejected: &[EncodeError],
    counts: &[usize],
    limit: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(counts.iter().sum::<usize>() + rejected.len(), groups.len());
    prop_assert_eq!(delivered.len(), counts.iter().sum::<usize>());
    for error in rejected {
        match error {
            EncodeError::TooLarge { encoded_len, limit: l, .. } => {
                prop_assert!(*encoded_len > limit && *l == limit)
            }
            other => prop_assert!(false, "unexpected rejection {other:?}"),
        }
    }
    let mut expected: HashMap<(usize, usize, usize), Vec<i64>> = HashMap::new();
    for (id, (group, alone)) in groups.iter().zip(alone).enumerate() {
        if *alone <= limit {
            expected.entry(*group).or_default().push(id as i64);
        }
    }
    prop_assert_eq!(groups.len() - alone.iter().filter(|&&a| a <= limit).count(), rejected.len());
    let mut got: HashMap<(usize, usize, usize), Vec<i64>> = HashMap::new();
    for (group, id) in delivered {
        got.entry(*group).or_default().push(*id);
    }
    prop_assert_eq!(got, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn log_splits_keep_every_invariant((specs, limit) in specs(120)) {
        let (resources, scopes) = (resources(), scopes());
        let records: Vec<LogRecord> = specs
            .iter()
            .enumerate()
            .map(|(id, &(r, s, _, len))| record(&resources[r], &scopes[s], id as i64, len))
            .collect();
        let alone: Vec<usize> = records.iter().map(|p| alone_len::<Logs>(p.clone())).collect();
        let groups: Vec<_> = specs.iter().map(|&(r, s, _, _)| (r, s, 0)).collect();

        let (requests, rejected, counts) = encode_and_decode::<Logs>(records, limit);
        let mut delivered = Vec::new();
        for request in &requests {
            let mut seen_resources = Vec::new();
            for rl in &request.resource_logs {
                prop_assert!(!seen_resources.contains(&rl.resource), "resource repeated in one request");
                seen_resources.push(rl.resource.clone());
                let mut seen_scopes = Vec::new();
                for sl in &rl.scope_logs {
                    prop_assert!(!seen_scopes.contains(&sl.scope), "scope repeated under one resource");
                    seen_scopes.push(sl.scope.clone());
                    for lr in &sl.log_records {
                        let id = id_of(&lr.attributes);
                        delivered.push((groups[id as usize], id));
                    }
                }
            }
        }
        check_split(&groups, &alone, &delivered, &rejected, &counts, limit)?;
    }

    #[test]
    fn metric_splits_keep_every_invariant((specs, limit) in specs(120)) {
        let (resources, scopes) = (resources(), scopes());
        let descriptors: Vec<Arc<MetricDescriptor>> = (0..4)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    MetricKind::Sum { monotonic: i == 0, temporality: Temporality::Delta }
                } else {
                    MetricKind::Gauge
                };
                Arc::new(MetricDescriptor::new(format!("m{i}"), kind).with_unit("ms"))
            })
            .collect();
        let points: Vec<MetricPoint> = specs
            .iter()
            .enumerate()
            .map(|(id, &(r, s, d, len))| {
                MetricPoint::new(resources[r].clone(), scopes[s].clone(), descriptors[d].clone(), MetricValue::Double(1.5))
                    .with_attributes([KeyValue::new("id", id as i64), KeyValue::new("pad", AnyValue::Bytes(vec![7; len]))])
                    .with_time(1, 2)
            })
            .collect();
        let alone: Vec<usize> = points.iter().map(|p| alone_len::<Metrics>(p.clone())).collect();
        let groups: Vec<_> = specs.iter().map(|&(r, s, d, _)| (r, s, d)).collect();

        let (requests, rejected, counts) = encode_and_decode::<Metrics>(points, limit);
        let mut delivered = Vec::new();
        for request in &requests {
            for rm in &request.resource_metrics {
                for sm in &rm.scope_metrics {
                    let mut names: Vec<&str> = sm.metrics.iter().map(|m| m.name.as_str()).collect();
                    names.sort_unstable();
                    let before = names.len();
                    names.dedup();
                    prop_assert_eq!(before, names.len(), "a metric repeated under one scope");
                }
            }
            for (name, id) in metric_ids(request) {
                let group = groups[id as usize];
                prop_assert_eq!(name, format!("m{}", group.2));
                delivered.push((group, id));
            }
        }
        check_split(&groups, &alone, &delivered, &rejected, &counts, limit)?;
    }
}
