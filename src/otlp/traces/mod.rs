//! Finished spans, and their [`Encoding`].

use std::sync::Arc;

mod encode;

#[cfg(test)]
use super::common::{attributes_into_pb, id_bytes};
use super::common::{KeyValue, Resource, Scope};
use crate::pb::trace::v1 as pb;

pub(crate) use encode::Traces;
#[cfg(feature = "sdk")]
pub(crate) use encode::{EncodedSpan, EventParts, LinkParts, SpanHead, SpanTail, SpanWriter, StatusParts};

/// How a span relates to its caller and callees.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// An operation inside the application.
    #[default]
    Internal,
    /// The handling of a remote request.
    Server,
    /// A request to a remote service.
    Client,
    /// The sending of a message to a broker.
    Producer,
    /// The receipt of a message from a broker.
    Consumer,
}

impl SpanKind {
    fn into_pb(self) -> i32 {
        use pb::span::SpanKind as Kind;
        (match self {
            Self::Internal => Kind::Internal,
            Self::Server => Kind::Server,
            Self::Client => Kind::Client,
            Self::Producer => Kind::Producer,
            Self::Consumer => Kind::Consumer,
        }) as i32
    }
}

/// The outcome of a span.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SpanStatus {
    /// No status was set.
    #[default]
    Unset,
    /// Marked successful by the application or operator.
    Ok,
    /// Failed, with a description for developers (may be empty).
    Error(String),
}

impl SpanStatus {
    /// `None` for [`Unset`](Self::Unset): OTLP reads an absent status as unset.
    #[cfg(test)]
    fn into_pb(self) -> Option<pb::Status> {
        use pb::status::StatusCode;
        match self {
            Self::Unset => None,
            Self::Ok => Some(pb::Status { message: String::new(), code: StatusCode::Ok as i32 }),
            Self::Error(message) => Some(pb::Status { message, code: StatusCode::Error as i32 }),
        }
    }
}

/// Something that happened at one instant during a span.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// The event's name.
    pub name: String,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// What describes it.
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped before this crate saw them.
    pub dropped_attributes_count: u32,
}

impl SpanEvent {
    /// An event with no attributes.
    pub fn new(name: impl Into<String>, time_unix_nano: u64) -> Self {
        Self { name: name.into(), time_unix_nano, attributes: Vec::new(), dropped_attributes_count: 0 }
    }

    /// Sets the attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    #[cfg(test)]
    fn into_pb(self) -> pb::span::Event {
        pb::span::Event {
            time_unix_nano: self.time_unix_nano,
            name: self.name,
            attributes: attributes_into_pb(self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
        }
    }
}

/// A reference from a span to another span, in the same trace or another.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    /// The linked span's trace.
    pub trace_id: [u8; 16],
    /// The linked span.
    pub span_id: [u8; 8],
    /// The linked span's W3C `tracestate`; may be empty.
    pub trace_state: String,
    /// What describes the link.
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped before this crate saw them.
    pub dropped_attributes_count: u32,
    /// W3C trace flags in the low 8 bits, and the remote bits as in
    /// [`SpanRecord::flags`].
    pub flags: u32,
}

impl SpanLink {
    /// A link with no trace state, attributes or flags.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8]) -> Self {
        Self {
            trace_id,
            span_id,
            trace_state: String::new(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: 0,
        }
    }

    /// Sets the attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    #[cfg(test)]
    fn into_pb(self) -> pb::span::Link {
        pb::span::Link {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: self.trace_state,
            attributes: attributes_into_pb(self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
            flags: self.flags,
        }
    }
}

/// A finished span.
///
/// ```
/// use std::sync::Arc;
/// use otlp_sink::otlp::{KeyValue, Resource, Scope, SpanKind, SpanRecord, SpanStatus};
///
/// let resource = Arc::new(Resource::new([KeyValue::new("service.name", "checkout")]));
/// let scope = Arc::new(Scope::new("checkout.http"));
/// let span = SpanRecord::new(resource, scope, [1; 16], [2; 8], "GET /cart")
///     .with_kind(SpanKind::Server)
///     .with_time(1_700_000_000_000_000_000, 1_700_000_000_250_000_000)
///     .with_status(SpanStatus::Ok);
/// assert_eq!(span.parent_span_id, None);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// The entity that produced the span.
    pub resource: Arc<Resource>,
    /// The instrumentation scope that recorded it.
    pub scope: Arc<Scope>,
    /// The trace it belongs to; not all zero.
    pub trace_id: [u8; 16],
    /// The span's id; not all zero.
    pub span_id: [u8; 8],
    /// The parent span, or `None` for a root span.
    pub parent_span_id: Option<[u8; 8]>,
    /// The W3C `tracestate`; may be empty.
    pub trace_state: String,
    /// W3C trace flags in the low 8 bits; bit 8 set when whether the parent
    /// is remote is known, bit 9 set when it is remote.
    pub flags: u32,
    /// The operation's name.
    pub name: String,
    /// How the span relates to its caller and callees.
    pub kind: SpanKind,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_time_unix_nano: u64,
    /// What describes the operation.
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped before this crate saw them.
    pub dropped_attributes_count: u32,
    /// Events during the span.
    pub events: Vec<SpanEvent>,
    /// How many events were dropped.
    pub dropped_events_count: u32,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
    /// How many links were dropped.
    pub dropped_links_count: u32,
    /// The outcome.
    pub status: SpanStatus,
}

impl SpanRecord {
    /// A root span of kind internal with no times, attributes, events, links
    /// or status.
    pub fn new(
        resource: Arc<Resource>,
        scope: Arc<Scope>,
        trace_id: [u8; 16],
        span_id: [u8; 8],
        name: impl Into<String>,
    ) -> Self {
        Self {
            resource,
            scope,
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::Internal,
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: SpanStatus::Unset,
        }
    }

    /// Sets the parent span.
    #[must_use]
    pub fn with_parent(mut self, parent_span_id: [u8; 8]) -> Self {
        self.parent_span_id = Some(parent_span_id);
        self
    }

    /// Sets the kind.
    #[must_use]
    pub fn with_kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the start and end, in nanoseconds since the Unix epoch.
    #[must_use]
    pub fn with_time(mut self, start_time_unix_nano: u64, end_time_unix_nano: u64) -> Self {
        self.start_time_unix_nano = start_time_unix_nano;
        self.end_time_unix_nano = end_time_unix_nano;
        self
    }

    /// Sets the attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    /// Sets the events.
    #[must_use]
    pub fn with_events(mut self, events: impl IntoIterator<Item = SpanEvent>) -> Self {
        self.events = events.into_iter().collect();
        self
    }

    /// Sets the links.
    #[must_use]
    pub fn with_links(mut self, links: impl IntoIterator<Item = SpanLink>) -> Self {
        self.links = links.into_iter().collect();
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: SpanStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the flags.
    #[must_use]
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// The prost message: the tests' oracle for the hand-written bytes.
    #[cfg(test)]
    pub(crate) fn into_pb(self) -> pb::Span {
        pb::Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: self.trace_state,
            parent_span_id: id_bytes(self.parent_span_id),
            flags: self.flags,
            name: self.name,
            kind: self.kind.into_pb(),
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: self.end_time_unix_nano,
            attributes: attributes_into_pb(self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
            events: self.events.into_iter().map(SpanEvent::into_pb).collect(),
            dropped_events_count: self.dropped_events_count,
            links: self.links.into_iter().map(SpanLink::into_pb).collect(),
            dropped_links_count: self.dropped_links_count,
            status: self.status.into_pb(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::test_support::{encode_and_decode, resource, scope};

    #[test]
    fn spans_keep_ids_times_events_links_and_status() {
        let (res, sc) = (resource("svc"), scope("http"));
        let mut child = SpanRecord::new(res.clone(), sc.clone(), [1; 16], [2; 8], "GET /cart")
            .with_parent([3; 8])
            .with_kind(SpanKind::Server)
            .with_time(100, 250)
            .with_flags(0x301)
            .with_attributes([KeyValue::new("http.route", "/cart")])
            .with_events([SpanEvent::new("cache.miss", 120).with_attributes([KeyValue::new("key", "c1")])])
            .with_links([SpanLink::new([4; 16], [5; 8]).with_attributes([KeyValue::new("why", "batch")])])
            .with_status(SpanStatus::Error("timed out".into()));
        child.trace_state = "vendor=1".into();
        child.dropped_attributes_count = 1;
        child.dropped_events_count = 2;
        child.dropped_links_count = 3;
        child.links[0].flags = 1;
        let root = SpanRecord::new(res, sc, [1; 16], [3; 8], "checkout").with_time(90, 300);

        let (requests, rejected, counts) = encode_and_decode::<Traces>(vec![child, root], usize::MAX);
        assert!(rejected.is_empty());
        assert_eq!(counts, [2]);
        let spans = &requests[0].resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 2);

        let s = &spans[0];
        assert_eq!((s.trace_id.as_slice(), s.span_id.as_slice()), (&[1; 16][..], &[2; 8][..]));
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert_eq!((s.name.as_str(), s.trace_state.as_str(), s.flags), ("GET /cart", "vendor=1", 0x301));
        assert_eq!(s.kind, pb::span::SpanKind::Server as i32);
        assert_eq!((s.start_time_unix_nano, s.end_time_unix_nano), (100, 250));
        assert_eq!(s.attributes[0].key, "http.route");
        assert_eq!((s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count), (1, 2, 3));
        let event = &s.events[0];
        assert_eq!(
            (event.name.as_str(), event.time_unix_nano, event.attributes[0].key.as_str()),
            ("cache.miss", 120, "key")
        );
        let link = &s.links[0];
        assert_eq!((link.trace_id.as_slice(), link.span_id.as_slice(), link.flags), (&[4; 16][..], &[5; 8][..], 1));
        assert_eq!(link.attributes[0].key, "why");
        let status = s.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (pb::status::StatusCode::Error as i32, "timed out"));

        let root = &spans[1];
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.kind, pb::span::SpanKind::Internal as i32);
        assert_eq!(root.status, None, "an unset status is left out");
        assert!(root.events.is_empty() && root.links.is_empty());
    }

    #[test]
    fn a_records_bytes_are_what_prost_writes_for_its_span() {
        use prost::Message;

        use super::encode::EncodedSpan;
        use crate::otlp::AnyValue;

        let (res, sc) = (resource("svc"), scope("s"));
        let long = "y".repeat(200);
        let attribute_sets = [
            vec![],
            vec![
                KeyValue::new("bytes", AnyValue::Bytes(vec![0, 1, 2])),
                KeyValue::new("empty bytes", AnyValue::Bytes(vec![])),
                KeyValue::new("map", AnyValue::Map(vec![KeyValue::new("inner", 1), KeyValue::new("", "")])),
                KeyValue::new("nested", AnyValue::Array(vec![AnyValue::Array(vec![AnyValue::from(long.as_str())])])),
                KeyValue::new("", ""),
            ],
        ];
        let statuses =
            [SpanStatus::Unset, SpanStatus::Ok, SpanStatus::Error(String::new()), SpanStatus::Error(long.clone())];
        let kinds = [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer];
        for i in 0..40_usize {
            let attributes = attribute_sets[i % 2].clone();
            let mut span =
                SpanRecord::new(res.clone(), sc.clone(), [0; 16], [0; 8], if i % 3 == 0 { "" } else { "op" })
                    .with_kind(kinds[i % 5])
                    .with_status(statuses[i % 4].clone())
                    .with_flags([0, 1, 0x301, u32::MAX][i % 4])
                    .with_time(0, [0, u64::MAX][i % 2])
                    .with_attributes(attributes.clone())
                    .with_events((0..i % 3).map(|e| {
                        let mut event = SpanEvent::new(["", "e"][e % 2], e as u64).with_attributes(attributes.clone());
                        event.dropped_attributes_count = e as u32 * 200;
                        event
                    }))
                    .with_links((0..i % 4).map(|l| {
                        let mut link = SpanLink::new([l as u8; 16], [l as u8; 8]).with_attributes(attributes.clone());
                        link.trace_state = ["", "k=v"][l % 2].into();
                        link.flags = [0, 0xff, 0x100, 0x300][l];
                        link.dropped_attributes_count = l as u32;
                        link
                    }));
            // An all-zero parent is still a parent field (8 zero bytes), as prost writes it.
            span.parent_span_id = [None, Some([0; 8]), Some([7; 8])][i % 3];
            span.trace_state = ["", "a=b"][i % 2].into();
            span.dropped_attributes_count = [0, 1, 128][i % 3];
            span.dropped_events_count = [0, 16_384][i % 2];
            span.dropped_links_count = [0, 5, 0][i % 3];
            let expected = span.clone().into_pb().encode_to_vec();
            assert!(EncodedSpan::from(span.clone()).data == expected, "{span:?}");
        }
    }

    #[test]
    fn ok_status_has_no_message() {
        let span = SpanRecord::new(resource("svc"), scope("s"), [1; 16], [2; 8], "op").with_status(SpanStatus::Ok);
        let (requests, _, _) = encode_and_decode::<Traces>(vec![span], usize::MAX);
        let status = requests[0].resource_spans[0].scope_spans[0].spans[0].status.clone().unwrap();
        assert_eq!(status, pb::Status { message: String::new(), code: pb::status::StatusCode::Ok as i32 });
    }
}
