//! A finished SDK span ([`SpanData`]) into an [`EncodedSpan`]: its `Span`
//! message written straight from the SDK's data (its strings and attributes
//! read in place, through `otlp`'s `Attribute` trait), with no
//! [`SpanRecord`](crate::otlp::SpanRecord) and no prost struct in between.
//! The tests' oracle, [`span`], converts into a `SpanRecord` instead.

use std::sync::Arc;

use opentelemetry::trace::{SpanContext, SpanKind as SdkKind, Status};
use opentelemetry_sdk::trace::SpanData;

#[cfg(test)]
use super::attributes;
use super::{nanos, span_id, ScopeCache};
use crate::otlp::{
    EncodedSpan, EventParts, LinkParts, Resource, SpanHead, SpanKind, SpanTail, SpanWriter, StatusParts,
};
#[cfg(test)]
use crate::otlp::{SpanEvent, SpanLink, SpanRecord, SpanStatus};

/// OTLP `SpanFlags`: whether the parent's (or link's) remoteness is known…
const HAS_IS_REMOTE: u32 = 0x100;
/// …and whether it is remote.
const IS_REMOTE: u32 = 0x200;

/// W3C trace flags in the low byte, and the remote bits: the SDK always
/// knows whether a context is remote.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn kind(kind: &SdkKind) -> SpanKind {
    match kind {
        SdkKind::Client => SpanKind::Client,
        SdkKind::Server => SpanKind::Server,
        SdkKind::Producer => SpanKind::Producer,
        SdkKind::Consumer => SpanKind::Consumer,
        SdkKind::Internal => SpanKind::Internal,
    }
}

fn status_parts(status: &Status) -> StatusParts<'_> {
    match status {
        Status::Unset => StatusParts::Unset,
        Status::Ok => StatusParts::Ok,
        Status::Error { description } => StatusParts::Error(description),
    }
}

/// Writes one span's `Span` message into a buffer of `capacity` bytes (it
/// grows if that is short: the caller passes a little more than its
/// previous span took). `resource` is the one the SDK gave the processor;
/// `scopes` shares one `Arc<Scope>` per instrumentation scope.
pub(crate) fn encoded_span(
    data: &SpanData,
    resource: &Arc<Resource>,
    scopes: &mut ScopeCache,
    capacity: usize,
) -> EncodedSpan {
    let context = &data.span_context;
    let trace_state = context.trace_state().header();
    let head = SpanHead {
        trace_id: context.trace_id().to_bytes(),
        span_id: context.span_id().to_bytes(),
        trace_state: &trace_state,
        parent_span_id: span_id(data.parent_span_id),
        name: &data.name,
        kind: kind(&data.span_kind),
        start_time_unix_nano: nanos(data.start_time),
        end_time_unix_nano: nanos(data.end_time),
        dropped_events_count: data.events.dropped_count,
    };
    let mut writer = SpanWriter::new(capacity, &head);
    writer.attributes(&data.attributes, data.dropped_attributes_count);
    for e in &data.events.events {
        writer.event(&EventParts {
            time_unix_nano: nanos(e.timestamp),
            name: &e.name,
            attributes: &e.attributes,
            dropped_attributes_count: e.dropped_attributes_count,
        });
    }
    for l in &data.links.links {
        let trace_state = l.span_context.trace_state().header();
        writer.link(&LinkParts {
            trace_id: l.span_context.trace_id().to_bytes(),
            span_id: l.span_context.span_id().to_bytes(),
            trace_state: &trace_state,
            attributes: &l.attributes,
            dropped_attributes_count: l.dropped_attributes_count,
            flags: flags(&l.span_context, l.span_context.is_remote()),
        });
    }
    let bytes = writer.finish(&SpanTail {
        dropped_links_count: data.links.dropped_count,
        status: status_parts(&data.status),
        flags: flags(context, data.parent_span_is_remote),
    });
    EncodedSpan { resource: Arc::clone(resource), scope: scopes.get(&data.instrumentation_scope, None), data: bytes }
}

#[cfg(test)]
fn status(status: Status) -> SpanStatus {
    match status {
        Status::Unset => SpanStatus::Unset,
        Status::Ok => SpanStatus::Ok,
        Status::Error { description } => SpanStatus::Error(description.into_owned()),
    }
}

/// Converts one span into a [`SpanRecord`], moving its strings and
/// attributes: the tests' oracle for [`encoded_span`]. `resource` is the
/// one the SDK gave the processor; `scopes` shares one `Arc<Scope>` per
/// instrumentation scope.
#[cfg(test)]
pub(crate) fn span(data: SpanData, resource: &Arc<Resource>, scopes: &mut ScopeCache) -> SpanRecord {
    let context = &data.span_context;
    let events = data.events.events.into_iter().map(|e| {
        let mut event =
            SpanEvent::new(e.name.into_owned(), nanos(e.timestamp)).with_attributes(attributes(e.attributes));
        event.dropped_attributes_count = e.dropped_attributes_count;
        event
    });
    let links = data.links.links.into_iter().map(|l| {
        let mut link = SpanLink::new(l.span_context.trace_id().to_bytes(), l.span_context.span_id().to_bytes())
            .with_attributes(attributes(l.attributes));
        link.trace_state = l.span_context.trace_state().header();
        link.dropped_attributes_count = l.dropped_attributes_count;
        link.flags = flags(&l.span_context, l.span_context.is_remote());
        link
    });
    let mut record = SpanRecord::new(
        Arc::clone(resource),
        scopes.get(&data.instrumentation_scope, None),
        context.trace_id().to_bytes(),
        context.span_id().to_bytes(),
        data.name.into_owned(),
    )
    .with_kind(kind(&data.span_kind))
    .with_time(nanos(data.start_time), nanos(data.end_time))
    .with_flags(flags(context, data.parent_span_is_remote))
    .with_attributes(attributes(data.attributes))
    .with_events(events)
    .with_links(links)
    .with_status(status(data.status));
    record.parent_span_id = span_id(data.parent_span_id);
    record.trace_state = context.trace_state().header();
    record.dropped_attributes_count = data.dropped_attributes_count;
    record.dropped_events_count = data.events.dropped_count;
    record.dropped_links_count = data.links.dropped_count;
    record
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::{Event, Link, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue as SdkKv};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use prost::Message;

    use super::*;
    use crate::otlp::KeyValue;

    fn data() -> SpanData {
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "cache.miss",
            UNIX_EPOCH + Duration::from_nanos(150),
            vec![SdkKv::new("key", "c1")],
            2,
        ));
        events.dropped_count = 3;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            SpanContext::new(
                TraceId::from_bytes([4; 16]),
                SpanId::from_bytes([5; 8]),
                TraceFlags::SAMPLED,
                true,
                TraceState::from_key_value([("vendor", "x")]).unwrap(),
            ),
            vec![SdkKv::new("why", "batch")],
            1,
        ));
        links.dropped_count = 4;
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes([1; 16]),
                SpanId::from_bytes([2; 8]),
                TraceFlags::SAMPLED,
                false,
                TraceState::from_key_value([("k", "v")]).unwrap(),
            ),
            parent_span_id: SpanId::from_bytes([3; 8]),
            parent_span_is_remote: true,
            span_kind: SdkKind::Server,
            name: Cow::Borrowed("GET /cart"),
            start_time: UNIX_EPOCH + Duration::from_nanos(100),
            end_time: UNIX_EPOCH + Duration::from_nanos(250),
            attributes: vec![SdkKv::new("http.route", "/cart"), SdkKv::new("http.status", 200)],
            dropped_attributes_count: 5,
            events,
            links,
            status: Status::error("timed out"),
            instrumentation_scope: InstrumentationScope::builder("http").with_version("1.0").build(),
        }
    }

    /// The oracle: the span as the old path sent it, through a
    /// [`SpanRecord`] and prost.
    fn oracle(data: &SpanData) -> Vec<u8> {
        span(data.clone(), &Arc::new(Resource::default()), &mut ScopeCache::default()).into_pb().encode_to_vec()
    }

    /// Attribute lists of every value kind the SDK has, empty strings and
    /// long ones (two-byte length prefixes) included.
    fn attribute_sets() -> Vec<Vec<SdkKv>> {
        use opentelemetry::{Array, StringValue, Value};
        let long = "v".repeat(300);
        vec![
            vec![],
            vec![SdkKv::new("http.route", "/cart")],
            vec![
                SdkKv::new("s", "text"),
                SdkKv::new("empty", ""),
                SdkKv::new("", "empty key"),
                SdkKv::new("owned", String::from("owned")),
                SdkKv::new("long", long.clone()),
                SdkKv::new("t", true),
                SdkKv::new("f", false),
                SdkKv::new("i", -7_i64),
                SdkKv::new("zero", 0_i64),
                SdkKv::new("max", i64::MAX),
                SdkKv::new("d", 2.5),
                SdkKv::new("nd", -0.0),
                SdkKv::new("ab", Value::Array(Array::Bool(vec![true, false]))),
                SdkKv::new("ai", Value::Array(Array::I64(vec![1, -2, 300]))),
                SdkKv::new("af", Value::Array(Array::F64(vec![0.5]))),
                SdkKv::new("as", Value::Array(Array::String(vec![StringValue::from("a"), StringValue::from("")]))),
                SdkKv::new("ae", Value::Array(Array::I64(vec![]))),
            ],
            (0..40).map(|i| SdkKv::new(format!("key.{i}"), long.clone())).collect(),
        ]
    }

    /// Many spans: every kind, status, parent form and flag, events and
    /// links with and without attributes, dropped counts small and large,
    /// empty names and trace states.
    fn many() -> Vec<SpanData> {
        let kinds = [SdkKind::Internal, SdkKind::Server, SdkKind::Client, SdkKind::Producer, SdkKind::Consumer];
        let statuses =
            [Status::Unset, Status::Ok, Status::error("timed out"), Status::error(""), Status::error("x".repeat(200))];
        let attributes = attribute_sets();
        let names = ["GET /cart", "", "a very long operation name that is still one string"];
        let trace_states =
            [TraceState::default(), TraceState::from_key_value([("vendor", "x"), ("other", "y")]).unwrap()];
        let mut spans = Vec::new();
        for i in 0..120_usize {
            let mut d = data();
            d.span_kind = kinds[i % kinds.len()].clone();
            d.status = statuses[i % statuses.len()].clone();
            d.name = Cow::Owned(names[i % names.len()].to_owned());
            d.attributes = attributes[i % attributes.len()].clone();
            d.dropped_attributes_count = [0, 1, 300, u32::MAX][i % 4];
            d.span_context = SpanContext::new(
                TraceId::from_bytes([(i as u8).wrapping_add(1); 16]),
                SpanId::from_bytes([(i as u8).wrapping_add(2); 8]),
                TraceFlags::new([0, 1, 0xff][i % 3]),
                false,
                trace_states[i % 2].clone(),
            );
            (d.parent_span_id, d.parent_span_is_remote) = match i % 3 {
                0 => (SpanId::INVALID, false),
                1 => (SpanId::from_bytes([9; 8]), false),
                _ => (SpanId::from_bytes([8; 8]), true),
            };
            d.start_time = UNIX_EPOCH + Duration::from_nanos([0, 1, 1_700_000_000_000_000_000][i % 3]);
            d.end_time = UNIX_EPOCH + Duration::from_nanos([0, 2, 1_700_000_000_250_000_000][(i / 3) % 3]);
            let mut events = SpanEvents::default();
            for e in 0..i % 4 {
                let when = UNIX_EPOCH + Duration::from_nanos(if e == 0 { 0 } else { 150 + e as u64 });
                let name = if e == 1 { "" } else { "cache.miss" };
                events.events.push(Event::new(
                    name,
                    when,
                    attributes[(i + e) % attributes.len()].clone(),
                    [0, 2][e % 2],
                ));
            }
            events.dropped_count = [0, 3, 1000][i % 3];
            d.events = events;
            let mut links = SpanLinks::default();
            for l in 0..(i / 4) % 3 {
                let context = SpanContext::new(
                    TraceId::from_bytes([4; 16]),
                    SpanId::from_bytes([5 + l as u8; 8]),
                    TraceFlags::new([0, 1][l % 2]),
                    l % 2 == 1,
                    trace_states[(i + l) % 2].clone(),
                );
                links.links.push(Link::new(context, attributes[(i + l + 1) % attributes.len()].clone(), [0, 1][l % 2]));
            }
            links.dropped_count = [0, 4, 70_000][(i / 2) % 3];
            d.links = links;
            d.instrumentation_scope = match i % 3 {
                0 => InstrumentationScope::builder("http").with_version("1.0").build(),
                1 => InstrumentationScope::builder("db").with_attributes([SdkKv::new("k", "v")]).build(),
                _ => InstrumentationScope::builder("").with_schema_url("https://example/s").build(),
            };
            spans.push(d);
        }
        spans
    }

    #[test]
    fn encoded_spans_are_the_bytes_prost_writes_for_the_converted_span() {
        let resource = Arc::new(Resource::default());
        let mut scopes = ScopeCache::default();
        for (i, d) in many().iter().enumerate() {
            let expected = oracle(d);
            // Too small and ample capacities alike: the buffer grows as needed.
            for capacity in [0, expected.len(), 4096] {
                let ours = encoded_span(d, &resource, &mut scopes, capacity);
                assert!(ours.data == expected, "span {i} (capacity {capacity}): {d:?}");
                assert_eq!(crate::otlp::EncodedSize::encoded_size(&ours), expected.len());
            }
            // The user's path writes the same bytes from the converted record.
            let record = span(d.clone(), &resource, &mut scopes);
            assert!(EncodedSpan::from(record).data == expected, "span {i} through SpanRecord");
        }
    }

    #[test]
    fn whole_requests_cut_at_any_limit_decode_to_the_same_spans() {
        use crate::otlp::test_support::encode_and_decode;
        use crate::otlp::Traces;
        use crate::pb::trace::v1 as pb;

        let resource = Arc::new(Resource::new([KeyValue::new("service.name", "svc")]));
        let mut scopes = ScopeCache::default();
        let datas = many();
        // What the old path sent, per scope in order of first appearance
        // (the grouping order), each scope's spans in batch order.
        let mut expected: Vec<(String, Vec<pb::Span>)> = Vec::new();
        for d in &datas {
            let name = d.instrumentation_scope.name().to_owned();
            let pb_span = span(d.clone(), &resource, &mut scopes).into_pb();
            match expected.iter_mut().find(|(n, _)| *n == name) {
                Some((_, spans)) => spans.push(pb_span),
                None => expected.push((name, vec![pb_span])),
            }
        }
        let largest = datas.iter().map(|d| oracle(d).len()).max().unwrap();
        let total: usize = datas.iter().map(|d| oracle(d).len()).sum();
        for limit in [usize::MAX, total, total / 2, largest * 3, largest * 2, largest + 64] {
            let spans: Vec<EncodedSpan> = datas.iter().map(|d| encoded_span(d, &resource, &mut scopes, 64)).collect();
            let (requests, rejected, counts) = encode_and_decode::<Traces>(spans, limit);
            assert!(rejected.is_empty(), "limit {limit}: {rejected:?}");
            assert_eq!(counts.iter().sum::<usize>(), datas.len(), "limit {limit}");
            if limit < total {
                assert!(requests.len() > 1, "limit {limit}: {} request(s)", requests.len());
            }
            let mut got: Vec<(String, Vec<pb::Span>)> = Vec::new();
            for request in requests {
                for rs in request.resource_spans {
                    assert_eq!(rs.resource.unwrap().attributes[0].key, "service.name");
                    for ss in rs.scope_spans {
                        let name = ss.scope.unwrap().name;
                        match got.last_mut() {
                            Some((n, spans)) if *n == name => spans.extend(ss.spans),
                            _ => got.push((name, ss.spans)),
                        }
                    }
                }
            }
            assert!(got == expected, "limit {limit}: the decoded spans differ");
        }
    }

    #[test]
    fn every_field_of_a_span_is_carried() {
        let resource = Arc::new(Resource::new([KeyValue::new("service.name", "svc")]));
        let mut scopes = ScopeCache::default();
        let s = span(data(), &resource, &mut scopes);
        assert!(Arc::ptr_eq(&s.resource, &resource));
        assert_eq!((s.scope.name.as_str(), s.scope.version.as_str()), ("http", "1.0"));
        assert_eq!((s.trace_id, s.span_id, s.parent_span_id), ([1; 16], [2; 8], Some([3; 8])));
        assert_eq!((s.name.as_str(), s.kind, s.trace_state.as_str()), ("GET /cart", SpanKind::Server, "k=v"));
        assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (100, 250));
        assert_eq!(s.flags, 0x01 | HAS_IS_REMOTE | IS_REMOTE, "sampled, parent known remote");
        assert_eq!(s.attributes, vec![KeyValue::new("http.route", "/cart"), KeyValue::new("http.status", 200_i64)]);
        assert_eq!((s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count), (5, 3, 4));
        assert_eq!(s.status, SpanStatus::Error("timed out".into()));
        let e = &s.events[0];
        assert_eq!((e.name.as_str(), e.time_unix_nano, e.dropped_attributes_count), ("cache.miss", 150, 2));
        assert_eq!(e.attributes, vec![KeyValue::new("key", "c1")]);
        let l = &s.links[0];
        assert_eq!((l.trace_id, l.span_id, l.trace_state.as_str()), ([4; 16], [5; 8], "vendor=x"));
        assert_eq!((l.flags, l.dropped_attributes_count), (0x01 | HAS_IS_REMOTE | IS_REMOTE, 1));
        assert_eq!(l.attributes, vec![KeyValue::new("why", "batch")]);
    }

    #[test]
    fn a_root_span_has_no_parent_and_a_local_unsampled_context_has_no_flag_bits_but_known_remoteness() {
        let mut root = data();
        root.parent_span_id = SpanId::INVALID;
        root.parent_span_is_remote = false;
        root.span_context = SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        root.status = Status::Ok;
        root.span_kind = SdkKind::Internal;
        let s = span(root, &Arc::new(Resource::default()), &mut ScopeCache::default());
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.flags, HAS_IS_REMOTE);
        assert_eq!((s.status, s.kind, s.trace_state.as_str()), (SpanStatus::Ok, SpanKind::Internal, ""));
    }

    #[test]
    fn spans_of_one_scope_share_one_converted_scope() {
        let mut scopes = ScopeCache::default();
        let resource = Arc::new(Resource::default());
        let a = span(data(), &resource, &mut scopes);
        let b = span(data(), &resource, &mut scopes);
        assert!(Arc::ptr_eq(&a.scope, &b.scope));
        let mut other = data();
        other.instrumentation_scope = InstrumentationScope::builder("db").build();
        assert!(!Arc::ptr_eq(&a.scope, &span(other, &resource, &mut scopes).scope));
    }

    #[test]
    fn every_kind_maps() {
        let kinds = [
            (SdkKind::Client, SpanKind::Client),
            (SdkKind::Server, SpanKind::Server),
            (SdkKind::Producer, SpanKind::Producer),
            (SdkKind::Consumer, SpanKind::Consumer),
            (SdkKind::Internal, SpanKind::Internal),
        ];
        for (sdk, ours) in kinds {
            assert_eq!(kind(&sdk), ours);
        }
    }
}
