//! The one encoder shared by metrics, spans and logs.
//!
//! [`encode`] turns a flat batch of points back into the OTLP tree (one
//! `ResourceX` per resource, one `ScopeX` per scope under it, and for metrics
//! one `Metric` per descriptor under that) and cuts the tree into requests
//! whose encoded size stays within a limit.
//!
//! It works in two passes:
//!
//! 1. Grouping (`group.rs`). Each point is moved into its group's leaves (its attribute
//!    vectors and strings are moved, not copied) and its encoded length is
//!    measured once. Groups are found by
//!    `Arc::ptr_eq` first, then by value, so equal resources held in
//!    different `Arc`s still share one `ResourceX`.
//! 2. Splitting (`split.rs`). The groups are walked in order while a
//!    [`Sizer`](size::Sizer) (`size.rs`) keeps the
//!    exact encoded size of the request being filled: the point lengths, the
//!    headers of the enclosing messages, and the tag and length-prefix bytes
//!    of every level, whose varints grow as the content grows. A point that
//!    would push the request over the limit starts a new one; a point that
//!    does not fit even alone is rejected with [`EncodeError::TooLarge`]
//!    (`error.rs`).
//!    Whole runs of points are then moved into each request's tree with
//!    `split_off`, never one by one, and each tree is written to bytes once.
//!
//! Each signal plugs in through the [`Encoding`] trait (here), logs
//! through [`FlatEncoding`] (`flat.rs`), which writes the rest once: how to take a point
//! apart, how to turn it into its leaf, and how to write the request from
//! the tree (logs through their prost structs; metrics and spans, whose
//! leaves are already bytes, with the hand-written writer of `wire.rs`).

mod error;
mod flat;
mod group;
mod size;
mod split;
#[cfg(test)]
mod tests;

use std::hash::Hash;
use std::sync::Arc;

use prost::Message;

pub use error::EncodeError;
#[cfg(test)]
pub(crate) use flat::encode_request;
pub(crate) use flat::FlatEncoding;

use super::common::{Resource, Scope};
use super::wire::{bytes_field_len, field_len};
use crate::pb::common::v1::InstrumentationScope as PbScope;
use crate::pb::resource::v1::Resource as PbResource;

/// Field number of `resource_{metrics,spans,logs}` in every export request.
pub(crate) const RESOURCE_TAG: u32 = 1;
/// Field number of `scope_{metrics,spans,logs}` in every `ResourceX`.
pub(crate) const SCOPE_TAG: u32 = 2;
/// Field number of `resource` in `ResourceX` and of `scope` in `ScopeX`.
pub(crate) const HEAD_TAG: u32 = 1;
/// Field number of `schema_url` in `ResourceX` and `ScopeX`.
pub(crate) const SCHEMA_URL_TAG: u32 = 3;

/// Size of a `ResourceX` or `ScopeX` holding only its head message and its
/// schema URL (prost skips an empty string).
pub(crate) fn header_len(head_len: usize, schema_url: &str) -> usize {
    field_len(HEAD_TAG, head_len) + bytes_field_len(SCHEMA_URL_TAG, schema_url.as_bytes())
}

/// A batch encoded into requests, plus the points that had to be left out.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The requests, in the order of the groups of the batch. Each one's
    /// body is at most the limit given to [`encode`] long.
    pub(crate) requests: Vec<EncodedRequest>,
    /// One error per point left out: points that cannot be encoded (kind
    /// mismatches, malformed histograms) first, in batch order, then points
    /// too large to send, in group order.
    pub(crate) rejected: Vec<EncodeError>,
}

/// One export request and what it carries.
#[derive(Debug)]
pub(crate) struct EncodedRequest {
    /// The signal's export request encoded as protobuf, ready for the gRPC
    /// codec. Its size is the one the splitter computed before writing it
    /// (checked in debug builds).
    pub(crate) body: Vec<u8>,
    /// How many points (data points, spans or log records) it carries.
    pub(crate) points: usize,
}

/// One OTLP signal, as far as encoding is concerned: its point type, its
/// protobuf request and response, and the hooks the shared encoder needs.
///
/// Implemented once per signal, by the marker types [`Metrics`](super::Metrics),
/// [`Traces`](super::Traces) and [`Logs`](super::Logs). A transport can be
/// written once, generic over `S: Encoding`: it calls [`encode::<S>`](encode)
/// and sends each request's body (an encoded `S::Request`). What transports
/// need of the signal's service (its gRPC method, HTTP path and response) is
/// not here: it is the delivery engine's `Service`, written once there.
pub(crate) trait Encoding: Send + Sync + 'static {
    /// The point as the encoder takes it in: the sink's point for logs, an
    /// `EncodedMetricPoint` for metrics, an `EncodedSpan` for spans
    /// ([`encode`] converts).
    type Point: Send + 'static;
    /// What groups points below the scope: the metric descriptor for
    /// metrics, `()` for spans and logs (all of a scope's points in one list).
    type Key: Clone + Eq + Hash;
    /// A run of protobuf leaves belonging to one key, as it goes into the
    /// request: the points' bytes for metrics and spans, a `Vec` of records
    /// for logs.
    type Leaves: Leaves;
    /// The export request, for example `ExportMetricsServiceRequest`: the
    /// message that [`write`](Self::write)'s bytes encode.
    type Request: Message + Default + Send + 'static;

    /// What one point is called in errors and logs.
    const ITEM: &'static str;

    /// The shared parts of a point, borrowed to find its group.
    fn parts(point: &Self::Point) -> (&Arc<Resource>, &Arc<Scope>, &Self::Key);

    /// An empty run for `key`, and the shape of the messages between the
    /// scope and the leaves (nothing for spans and logs; `Metric` and its
    /// data message for metrics).
    fn bucket(key: &Self::Key) -> (Self::Leaves, Shape);

    /// Moves `point` into protobuf, appends it to `leaves` and returns its
    /// encoded length (the leaf message alone, without its tag and length
    /// prefix).
    ///
    /// # Errors
    ///
    /// When the point cannot be encoded under this key; it is then dropped.
    fn push(leaves: &mut Self::Leaves, key: &Self::Key, point: Self::Point) -> Result<usize, EncodeError>;

    /// Writes the request for its tree as protobuf bytes; `encoded_len` is
    /// their exact size as the splitter computed it. Must emit exactly the
    /// tree: one `ResourceX` per node with its `resource` and the node's
    /// schema URL, one `ScopeX` per scope node with its `scope`, and the
    /// leaves as [`bucket`](Self::bucket)'s shape says, or the size
    /// accounting no longer matches.
    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8>;
}

/// What an item weighs in a request, for sinks that cut batches by bytes
/// ([`SinkConfig::with_batch_bytes`](crate::SinkConfig::with_batch_bytes)):
/// the bytes of its leaf message where the item is already encoded, 0
/// (unweighed, so batches are cut by count) where finding out would cost
/// an encoding.
pub(crate) trait EncodedSize {
    /// The item's encoded size in bytes, or 0.
    fn encoded_size(&self) -> usize {
        0
    }
}

impl EncodedSize for super::MetricPoint {}
impl EncodedSize for super::SpanRecord {}
impl EncodedSize for super::LogRecord {}

/// A run of protobuf leaves that can be cut without touching each leaf.
pub(crate) trait Leaves: Sized {
    /// Moves the leaves from `at` on into a new run, keeping the headers.
    fn split_off(&mut self, at: usize) -> Self;
    /// Keeps the leaves for whose index `keep` returns true, in order.
    fn retain_indices(&mut self, keep: impl FnMut(usize) -> bool);
}

impl<T> Leaves for Vec<T> {
    fn split_off(&mut self, at: usize) -> Self {
        Vec::split_off(self, at)
    }

    fn retain_indices(&mut self, keep: impl FnMut(usize) -> bool) {
        retain_indices(self, keep);
    }
}

/// `Vec::retain` with the element's index instead of the element.
pub(crate) fn retain_indices<T>(items: &mut Vec<T>, mut keep: impl FnMut(usize) -> bool) {
    let mut index = 0;
    items.retain(|_| {
        let kept = keep(index);
        index += 1;
        kept
    });
}

/// One message between the scope and the leaves, for size accounting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level {
    /// Its field number in the enclosing message.
    pub(crate) tag: u32,
    /// The encoded size of its own fields, without the child messages.
    pub(crate) header: usize,
}

/// The messages between a `ScopeX` and the leaves of one key, outermost
/// first, and the leaves' field number in the innermost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    levels: [Level; 2],
    depth: usize,
    leaf_tag: u32,
}

impl Shape {
    /// Leaves directly in the `ScopeX`, under field `leaf_tag`.
    pub(crate) const fn flat(leaf_tag: u32) -> Self {
        let none = Level { tag: 0, header: 0 };
        Self { levels: [none, none], depth: 0, leaf_tag }
    }

    /// Leaves two messages below the `ScopeX` (a `Metric`, then its data).
    pub(crate) const fn nested(outer: Level, inner: Level, leaf_tag: u32) -> Self {
        Self { levels: [outer, inner], depth: 2, leaf_tag }
    }
}

/// One resource's part of a request.
pub(crate) struct ResourceNode<S: Encoding + ?Sized> {
    pub(crate) resource: PbResource,
    pub(crate) schema_url: String,
    pub(crate) scopes: Vec<ScopeNode<S>>,
}

/// One scope's part of a request.
pub(crate) struct ScopeNode<S: Encoding + ?Sized> {
    pub(crate) scope: PbScope,
    pub(crate) schema_url: String,
    pub(crate) buckets: Vec<BucketNode<S>>,
}

/// One key's run of leaves in a request.
pub(crate) struct BucketNode<S: Encoding + ?Sized> {
    pub(crate) key: S::Key,
    pub(crate) leaves: S::Leaves,
}

/// Encodes `points` into export requests of at most `max_request_bytes`
/// each (exact protobuf size: the length of each body).
///
/// Points are grouped by resource, then scope, then key, in order of first
/// appearance; within a group they keep their batch order. Points that
/// cannot be encoded are returned in [`Encoded::rejected`] while the others
/// are still encoded.
///
/// A point may come in any form that converts into the encoding's own
/// (a [`MetricPoint`](super::MetricPoint) into an `EncodedMetricPoint`, for
/// example): each is converted as it is grouped.
pub(crate) fn encode<S: Encoding>(
    points: impl IntoIterator<Item = impl Into<S::Point>>,
    max_request_bytes: usize,
) -> Encoded {
    let mut rejected = Vec::new();
    let groups = group::Grouper::<S>::group(points, &mut rejected);
    split::split::<S>(groups, max_request_bytes, rejected)
}
