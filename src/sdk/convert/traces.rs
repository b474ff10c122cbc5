//! A finished SDK span ([`SpanData`]) into a [`SpanRecord`].

use std::sync::Arc;

use opentelemetry::trace::{SpanContext, SpanKind as SdkKind, Status};
use opentelemetry_sdk::trace::SpanData;

use super::{attributes, nanos, span_id, ScopeCache};
use crate::otlp::{Resource, SpanEvent, SpanKind, SpanLink, SpanRecord, SpanStatus};

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

fn status(status: Status) -> SpanStatus {
    match status {
        Status::Unset => SpanStatus::Unset,
        Status::Ok => SpanStatus::Ok,
        Status::Error { description } => SpanStatus::Error(description.into_owned()),
    }
}

/// Converts one span, moving its strings and attributes. `resource` is the
/// one the SDK gave the processor; `scopes` shares one `Arc<Scope>` per
/// instrumentation scope.
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
