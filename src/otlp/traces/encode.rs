//! The traces encoding: a span's `Span` message written by hand (`wire.rs`),
//! the [`EncodedSpan`] that carries it, and the [`Traces`] encoding that
//! writes whole requests from them.
//!
//! A [`SpanRecord`] becomes an [`EncodedSpan`] with [`From`]; the SDK
//! adapter writes one straight from the SDK's span data with the same
//! [`SpanWriter`], never copying it into a [`SpanRecord`] first. Either
//! way the bytes are the ones prost writes for the `Span` message (fields in
//! tag order, proto3 defaults skipped); the tests check it byte for byte.

use std::sync::Arc;

use prost::Message;

use super::{SpanEvent, SpanKind, SpanLink, SpanRecord, SpanStatus};
use crate::otlp::common::{Resource, Scope};
use crate::otlp::encode::{
    header_len, EncodeError, EncodedSize, Encoding, ResourceNode, ScopeNode, Shape, HEAD_TAG, RESOURCE_TAG,
    SCHEMA_URL_TAG, SCOPE_TAG,
};
use crate::otlp::wire::{
    attributes_len, bytes_field_len, field_len, fixed32_nonzero_len, fixed64_nonzero_len, put_attributes, put_bytes,
    put_bytes_nonempty, put_fixed32_nonzero, put_fixed64_nonzero, put_len_prefix, put_varint_nonzero,
    varint_nonzero_len, Attribute,
};
use crate::pb::collector::trace::v1 as collector;

/// The traces signal: [`EncodedSpan`]s (from [`SpanRecord`]s, or written
/// straight from the SDK's spans) into `ExportTraceServiceRequest`s.
#[derive(Debug)]
pub(crate) struct Traces;

/// `ScopeSpans.spans`.
const SPANS_TAG: u32 = 2;

/// Field numbers of the `Span` message.
mod span_tags {
    pub(super) const TRACE_ID: u32 = 1;
    pub(super) const SPAN_ID: u32 = 2;
    pub(super) const TRACE_STATE: u32 = 3;
    pub(super) const PARENT_SPAN_ID: u32 = 4;
    pub(super) const NAME: u32 = 5;
    pub(super) const KIND: u32 = 6;
    pub(super) const START: u32 = 7;
    pub(super) const END: u32 = 8;
    pub(super) const ATTRIBUTES: u32 = 9;
    pub(super) const DROPPED_ATTRIBUTES: u32 = 10;
    pub(super) const EVENTS: u32 = 11;
    pub(super) const DROPPED_EVENTS: u32 = 12;
    pub(super) const LINKS: u32 = 13;
    pub(super) const DROPPED_LINKS: u32 = 14;
    pub(super) const STATUS: u32 = 15;
    pub(super) const FLAGS: u32 = 16;
}

/// A span with its `Span` message encoded: what the [`Traces`] encoding
/// groups and cuts into requests.
#[derive(Debug)]
pub(crate) struct EncodedSpan {
    /// The entity that produced the span.
    pub(crate) resource: Arc<Resource>,
    /// The instrumentation scope that recorded it.
    pub(crate) scope: Arc<Scope>,
    /// The `Span` message's bytes, without tag and length prefix.
    pub(crate) data: Vec<u8>,
}

/// Already encoded: its `Span` message's bytes.
impl EncodedSize for EncodedSpan {
    fn encoded_size(&self) -> usize {
        self.data.len()
    }
}

/// The fields of a `Span` before its attributes, as [`SpanWriter::new`]
/// writes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanHead<'a> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) trace_state: &'a str,
    /// `None` for a root span (the field is left out).
    pub(crate) parent_span_id: Option<[u8; 8]>,
    pub(crate) name: &'a str,
    pub(crate) kind: SpanKind,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    /// Written after the events (its field lies between them and the links).
    pub(crate) dropped_events_count: u32,
}

/// A span's event, borrowed, for [`SpanWriter::event`].
#[derive(Debug)]
pub(crate) struct EventParts<'a, A> {
    pub(crate) time_unix_nano: u64,
    pub(crate) name: &'a str,
    pub(crate) attributes: &'a [A],
    pub(crate) dropped_attributes_count: u32,
}

impl<A: Attribute> EventParts<'_, A> {
    /// Size of the `Span.Event` message: time = 1, name = 2, attributes = 3,
    /// dropped_attributes_count = 4.
    fn encoded_len(&self) -> usize {
        fixed64_nonzero_len(1, self.time_unix_nano)
            + bytes_field_len(2, self.name.as_bytes())
            + attributes_len(3, self.attributes)
            + varint_nonzero_len(4, u64::from(self.dropped_attributes_count))
    }

    fn put(&self, buf: &mut Vec<u8>) {
        put_fixed64_nonzero(buf, 1, self.time_unix_nano);
        put_bytes_nonempty(buf, 2, self.name.as_bytes());
        put_attributes(buf, 3, self.attributes);
        put_varint_nonzero(buf, 4, u64::from(self.dropped_attributes_count));
    }
}

/// A span's link, borrowed, for [`SpanWriter::link`].
#[derive(Debug)]
pub(crate) struct LinkParts<'a, A> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) trace_state: &'a str,
    pub(crate) attributes: &'a [A],
    pub(crate) dropped_attributes_count: u32,
    pub(crate) flags: u32,
}

impl<A: Attribute> LinkParts<'_, A> {
    /// Size of the `Span.Link` message: trace_id = 1, span_id = 2,
    /// trace_state = 3, attributes = 4, dropped_attributes_count = 5,
    /// flags = 6 (`fixed32`).
    fn encoded_len(&self) -> usize {
        field_len(1, self.trace_id.len())
            + field_len(2, self.span_id.len())
            + bytes_field_len(3, self.trace_state.as_bytes())
            + attributes_len(4, self.attributes)
            + varint_nonzero_len(5, u64::from(self.dropped_attributes_count))
            + fixed32_nonzero_len(6, self.flags)
    }

    fn put(&self, buf: &mut Vec<u8>) {
        put_bytes(buf, 1, &self.trace_id);
        put_bytes(buf, 2, &self.span_id);
        put_bytes_nonempty(buf, 3, self.trace_state.as_bytes());
        put_attributes(buf, 4, self.attributes);
        put_varint_nonzero(buf, 5, u64::from(self.dropped_attributes_count));
        put_fixed32_nonzero(buf, 6, self.flags);
    }
}

/// A span's status, borrowed, for [`SpanWriter::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusParts<'a> {
    /// Left out: OTLP reads an absent status as unset.
    Unset,
    /// Code `STATUS_CODE_OK`, no message.
    Ok,
    /// Code `STATUS_CODE_ERROR` with its message (left out when empty).
    Error(&'a str),
}

impl StatusParts<'_> {
    /// The `Status` message's code (field 3) and message (field 2), `None`
    /// when unset.
    fn fields(&self) -> Option<(u64, &str)> {
        match *self {
            Self::Unset => None,
            Self::Ok => Some((1, "")),
            Self::Error(message) => Some((2, message)),
        }
    }
}

/// Where a [`SpanWriter`] is in the `Span` message: its methods must come
/// in field order (checked in debug builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Head,
    Attributes,
    Events,
    Links,
}

/// Writes one `Span` message, field by field in tag order, into one
/// buffer: [`new`](Self::new) (ids, names, kind, times), then
/// [`attributes`](Self::attributes), each [`event`](Self::event), each
/// [`link`](Self::link), and [`finish`](Self::finish) (the dropped counts,
/// the status and the flags). Only the events' and links' messages are
/// sized before they are written (they need a length prefix); the span's
/// own attributes are measured once, as they are written.
#[derive(Debug)]
pub(crate) struct SpanWriter {
    buf: Vec<u8>,
    stage: Stage,
    dropped_events_count: u32,
}

/// What [`SpanWriter::finish`] writes after the links.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanTail<'a> {
    pub(crate) dropped_links_count: u32,
    pub(crate) status: StatusParts<'a>,
    pub(crate) flags: u32,
}

impl SpanWriter {
    /// Starts a span's message in a buffer of `capacity` bytes (it grows if
    /// that is short) with the fields before its attributes.
    pub(crate) fn new(capacity: usize, head: &SpanHead<'_>) -> Self {
        use span_tags::*;
        let mut buf = Vec::with_capacity(capacity);
        put_bytes(&mut buf, TRACE_ID, &head.trace_id);
        put_bytes(&mut buf, SPAN_ID, &head.span_id);
        put_bytes_nonempty(&mut buf, TRACE_STATE, head.trace_state.as_bytes());
        if let Some(parent) = head.parent_span_id {
            put_bytes(&mut buf, PARENT_SPAN_ID, &parent);
        }
        put_bytes_nonempty(&mut buf, NAME, head.name.as_bytes());
        put_varint_nonzero(&mut buf, KIND, head.kind.into_pb() as u64);
        put_fixed64_nonzero(&mut buf, START, head.start_time_unix_nano);
        put_fixed64_nonzero(&mut buf, END, head.end_time_unix_nano);
        Self { buf, stage: Stage::Head, dropped_events_count: head.dropped_events_count }
    }

    /// The span's attributes and how many were dropped.
    pub(crate) fn attributes<A: Attribute>(&mut self, attributes: &[A], dropped: u32) {
        debug_assert!(self.stage < Stage::Attributes, "attributes written twice or late");
        self.stage = Stage::Attributes;
        put_attributes(&mut self.buf, span_tags::ATTRIBUTES, attributes);
        put_varint_nonzero(&mut self.buf, span_tags::DROPPED_ATTRIBUTES, u64::from(dropped));
    }

    /// One event, after the attributes and before any link.
    pub(crate) fn event<A: Attribute>(&mut self, event: &EventParts<'_, A>) {
        debug_assert!(self.stage <= Stage::Events, "an event after a link");
        self.stage = Stage::Events;
        put_len_prefix(&mut self.buf, span_tags::EVENTS, event.encoded_len());
        event.put(&mut self.buf);
    }

    /// One link, after the events.
    pub(crate) fn link<A: Attribute>(&mut self, link: &LinkParts<'_, A>) {
        self.end_events();
        put_len_prefix(&mut self.buf, span_tags::LINKS, link.encoded_len());
        link.put(&mut self.buf);
    }

    /// Writes the dropped events count (field 12, between the events and the
    /// links), once.
    fn end_events(&mut self) {
        if self.stage < Stage::Links {
            self.stage = Stage::Links;
            put_varint_nonzero(&mut self.buf, span_tags::DROPPED_EVENTS, u64::from(self.dropped_events_count));
        }
    }

    /// The fields after the links; the message's bytes.
    pub(crate) fn finish(mut self, tail: &SpanTail<'_>) -> Vec<u8> {
        use span_tags::*;
        self.end_events();
        put_varint_nonzero(&mut self.buf, DROPPED_LINKS, u64::from(tail.dropped_links_count));
        if let Some((code, message)) = tail.status.fields() {
            let len = bytes_field_len(2, message.as_bytes()) + varint_nonzero_len(3, code);
            put_len_prefix(&mut self.buf, STATUS, len);
            put_bytes_nonempty(&mut self.buf, 2, message.as_bytes());
            put_varint_nonzero(&mut self.buf, 3, code);
        }
        put_fixed32_nonzero(&mut self.buf, FLAGS, tail.flags);
        self.buf
    }
}

impl SpanStatus {
    fn parts(&self) -> StatusParts<'_> {
        match self {
            Self::Unset => StatusParts::Unset,
            Self::Ok => StatusParts::Ok,
            Self::Error(message) => StatusParts::Error(message),
        }
    }
}

/// Writes the span's `Span` message, sized first so that it is allocated
/// once (the user's path: a record is written once, so sizing it costs
/// less than regrowing its buffer).
impl From<SpanRecord> for EncodedSpan {
    fn from(span: SpanRecord) -> Self {
        let head = SpanHead {
            trace_id: span.trace_id,
            span_id: span.span_id,
            trace_state: &span.trace_state,
            parent_span_id: span.parent_span_id,
            name: &span.name,
            kind: span.kind,
            start_time_unix_nano: span.start_time_unix_nano,
            end_time_unix_nano: span.end_time_unix_nano,
            dropped_events_count: span.dropped_events_count,
        };
        let tail =
            SpanTail { dropped_links_count: span.dropped_links_count, status: span.status.parts(), flags: span.flags };
        let events: Vec<_> = span.events.iter().map(SpanEvent::parts).collect();
        let links: Vec<_> = span.links.iter().map(SpanLink::parts).collect();
        let len = span_len(&head, &span.attributes, span.dropped_attributes_count, &events, &links, &tail);
        let mut writer = SpanWriter::new(len, &head);
        writer.attributes(&span.attributes, span.dropped_attributes_count);
        for event in &events {
            writer.event(event);
        }
        for link in &links {
            writer.link(link);
        }
        let data = writer.finish(&tail);
        debug_assert_eq!(data.len(), len, "a span's size differs from its bytes");
        drop((events, links));
        let SpanRecord { resource, scope, .. } = span;
        Self { resource, scope, data }
    }
}

impl SpanEvent {
    fn parts(&self) -> EventParts<'_, crate::otlp::KeyValue> {
        EventParts {
            time_unix_nano: self.time_unix_nano,
            name: &self.name,
            attributes: &self.attributes,
            dropped_attributes_count: self.dropped_attributes_count,
        }
    }
}

impl SpanLink {
    fn parts(&self) -> LinkParts<'_, crate::otlp::KeyValue> {
        LinkParts {
            trace_id: self.trace_id,
            span_id: self.span_id,
            trace_state: &self.trace_state,
            attributes: &self.attributes,
            dropped_attributes_count: self.dropped_attributes_count,
            flags: self.flags,
        }
    }
}

/// The exact size of the `Span` message [`SpanWriter`] writes from these parts.
fn span_len<A: Attribute>(
    head: &SpanHead<'_>,
    attributes: &[A],
    dropped_attributes_count: u32,
    events: &[EventParts<'_, A>],
    links: &[LinkParts<'_, A>],
    tail: &SpanTail<'_>,
) -> usize {
    use span_tags::*;
    field_len(TRACE_ID, 16)
        + field_len(SPAN_ID, 8)
        + bytes_field_len(TRACE_STATE, head.trace_state.as_bytes())
        + head.parent_span_id.map_or(0, |_| field_len(PARENT_SPAN_ID, 8))
        + bytes_field_len(NAME, head.name.as_bytes())
        + varint_nonzero_len(KIND, head.kind.into_pb() as u64)
        + fixed64_nonzero_len(START, head.start_time_unix_nano)
        + fixed64_nonzero_len(END, head.end_time_unix_nano)
        + attributes_len(ATTRIBUTES, attributes)
        + varint_nonzero_len(DROPPED_ATTRIBUTES, u64::from(dropped_attributes_count))
        + events.iter().map(|e| field_len(EVENTS, e.encoded_len())).sum::<usize>()
        + varint_nonzero_len(DROPPED_EVENTS, u64::from(head.dropped_events_count))
        + links.iter().map(|l| field_len(LINKS, l.encoded_len())).sum::<usize>()
        + varint_nonzero_len(DROPPED_LINKS, u64::from(tail.dropped_links_count))
        + tail.status.fields().map_or(0, |(code, message)| {
            field_len(STATUS, bytes_field_len(2, message.as_bytes()) + varint_nonzero_len(3, code))
        })
        + fixed32_nonzero_len(FLAGS, tail.flags)
}

/// Size of a `ScopeSpans` message.
fn scope_spans_len(scope: &ScopeNode<Traces>, scope_len: usize) -> usize {
    header_len(scope_len, &scope.schema_url)
        + (scope.buckets.iter())
            .flat_map(|bucket| bucket.leaves.iter())
            .map(|span| field_len(SPANS_TAG, span.len()))
            .sum::<usize>()
}

/// Writes an `ExportTraceServiceRequest` field by field, each message's
/// length prefix from the spans' sizes: no prost struct is built for the
/// spans and no span is measured again.
fn write_request(resources: Vec<ResourceNode<Traces>>, encoded_len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(encoded_len);
    for resource in &resources {
        let scope_lens: Vec<(usize, usize)> = (resource.scopes.iter())
            .map(|scope| {
                let head = scope.scope.encoded_len();
                (head, scope_spans_len(scope, head))
            })
            .collect();
        let resource_len = header_len(resource.resource.encoded_len(), &resource.schema_url)
            + scope_lens.iter().map(|&(_, len)| field_len(SCOPE_TAG, len)).sum::<usize>();
        put_len_prefix(&mut buf, RESOURCE_TAG, resource_len);
        prost::encoding::message::encode(HEAD_TAG, &resource.resource, &mut buf);
        for (scope, &(_, scope_len)) in resource.scopes.iter().zip(&scope_lens) {
            put_len_prefix(&mut buf, SCOPE_TAG, scope_len);
            prost::encoding::message::encode(HEAD_TAG, &scope.scope, &mut buf);
            for span in scope.buckets.iter().flat_map(|bucket| bucket.leaves.iter()) {
                put_bytes(&mut buf, SPANS_TAG, span);
            }
            put_bytes_nonempty(&mut buf, SCHEMA_URL_TAG, scope.schema_url.as_bytes());
        }
        put_bytes_nonempty(&mut buf, SCHEMA_URL_TAG, resource.schema_url.as_bytes());
    }
    // Checked in release builds too, once a request, as the metrics writer
    // does: a request whose length prefixes disagree with its bytes would be
    // misread by the collector.
    assert_eq!(buf.len(), encoded_len, "the splitter's size differs from the written bytes");
    buf
}

impl Encoding for Traces {
    type Point = EncodedSpan;
    type Key = ();
    type Leaves = Vec<Vec<u8>>;
    type Request = collector::ExportTraceServiceRequest;

    const ITEM: &'static str = "span";

    fn parts(span: &EncodedSpan) -> (&Arc<Resource>, &Arc<Scope>, &()) {
        (&span.resource, &span.scope, &())
    }

    fn bucket(_: &()) -> (Vec<Vec<u8>>, Shape) {
        (Vec::new(), Shape::flat(SPANS_TAG))
    }

    fn push(spans: &mut Vec<Vec<u8>>, _: &(), span: EncodedSpan) -> Result<usize, EncodeError> {
        let len = span.data.len();
        spans.push(span.data);
        Ok(len)
    }

    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8> {
        write_request(resources, encoded_len)
    }
}
