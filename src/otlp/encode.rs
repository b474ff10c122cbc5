//! The one encoder shared by metrics, spans and logs.
//!
//! [`encode`] turns a flat batch of points back into the OTLP tree (one
//! `ResourceX` per resource, one `ScopeX` per scope under it, and for metrics
//! one `Metric` per descriptor under that) and cuts the tree into requests
//! whose encoded size stays within a limit.
//!
//! It works in two passes:
//!
//! 1. Grouping. Each point is moved into its group's leaves (its attribute
//!    vectors and strings are moved, not copied) and its encoded length is
//!    measured once. Groups are found by
//!    `Arc::ptr_eq` first, then by value, so equal resources held in
//!    different `Arc`s still share one `ResourceX`.
//! 2. Splitting. The groups are walked in order while a [`Sizer`] keeps the
//!    exact encoded size of the request being filled: the point lengths, the
//!    headers of the enclosing messages, and the tag and length-prefix bytes
//!    of every level, whose varints grow as the content grows. A point that
//!    would push the request over the limit starts a new one; a point that
//!    does not fit even alone is rejected with [`EncodeError::TooLarge`].
//!    Whole runs of points are then moved into each request's tree with
//!    `split_off`, never one by one, and each tree is written to bytes once.
//!
//! Each signal plugs in through the [`Encoding`] trait: how to take a point
//! apart, how to turn it into its leaf, and how to write the request from
//! the tree (spans and logs through their prost structs, metrics with the
//! hand-written writer of `wire.rs`).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use prost::Message;

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

/// Why a point was left out of the encoded requests. The other points of the
/// batch are still encoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The point cannot be sent: alone in a request, with the resource, scope
    /// (and, for metrics, metric) messages around it, it encodes to more than
    /// the request size limit.
    TooLarge {
        /// What the point is: `"metric data point"`, `"span"` or `"log record"`.
        item: &'static str,
        /// The size of the smallest request that could carry it, in bytes.
        encoded_len: usize,
        /// The request size limit, in bytes.
        limit: usize,
    },
    /// A metric point whose value does not fit its descriptor's kind, such as
    /// a histogram value under a sum descriptor.
    KindMismatch {
        /// The metric's name.
        metric: String,
        /// The descriptor's kind: `"sum"`, `"gauge"`, `"histogram"`,
        /// `"exponential histogram"` or `"summary"`.
        kind: &'static str,
        /// The value's kind: `"int"`, `"double"`, `"histogram"`,
        /// `"exponential histogram"` or `"summary"`.
        value: &'static str,
    },
    /// An explicit-bucket histogram point whose bucket counts do not fit its
    /// bounds: OTLP requires one more count than bounds (the last bucket is
    /// unbounded above), or no counts and no bounds. A collector could only
    /// guess which buckets the counts belong to, so the point is not sent.
    BucketMismatch {
        /// The metric's name.
        metric: String,
        /// How many bucket counts the point has.
        bucket_counts: usize,
        /// How many explicit bounds it has.
        explicit_bounds: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { item, encoded_len, limit } => write!(
                f,
                "a single {item} needs a request of {encoded_len} bytes, more than the {limit}-byte request limit"
            ),
            Self::KindMismatch { metric, kind, value } => {
                write!(f, "metric `{metric}` is a {kind} but a point carries a {value} value")
            }
            Self::BucketMismatch { metric, bucket_counts, explicit_bounds } => write!(
                f,
                "histogram `{metric}` has a point with {bucket_counts} bucket counts for {explicit_bounds} explicit \
                 bounds; OTLP requires one more count than bounds, or neither"
            ),
        }
    }
}

impl Error for EncodeError {}

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
/// written once, generic over `S: Encoding`: it
/// calls [`encode::<S>`](encode), sends each request's body (an encoded
/// `S::Request`) to [`EXPORT_PATH`](Self::EXPORT_PATH), decodes the
/// `S::Response` with prost, and reads partial success with
/// [`partial_success`](Self::partial_success).
pub(crate) trait Encoding: Send + Sync + 'static {
    /// The point as the encoder takes it in: the sink's point for spans and
    /// logs, an `EncodedMetricPoint` for metrics ([`encode`] converts).
    type Point: Send + 'static;
    /// What groups points below the scope: the metric descriptor for
    /// metrics, `()` for spans and logs (all of a scope's points in one list).
    type Key: Clone + Eq + Hash;
    /// A run of protobuf leaves belonging to one key, as it goes into the
    /// request: the metric's `data` for metrics, a `Vec` of spans or records.
    type Leaves: Leaves;
    /// The export request, for example `ExportMetricsServiceRequest`: the
    /// message that [`write`](Self::write)'s bytes encode.
    type Request: Message + Default + Send + 'static;
    /// The export response, for example `ExportMetricsServiceResponse`.
    type Response: Message + Default + Send + 'static;

    /// What one point is called in errors and logs.
    const ITEM: &'static str;
    /// The gRPC method path of the signal's `Export` call.
    const EXPORT_PATH: &'static str;

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

    /// The partial-success part of a response: how many points the receiver
    /// refused, and its message. `(0, "")` when the field is absent.
    fn partial_success(response: &Self::Response) -> (i64, &str);
}

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

/// Encodes a request built from prost structs into a buffer of exactly
/// `encoded_len` bytes.
pub(crate) fn encode_request(request: &impl Message, encoded_len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(encoded_len);
    request.encode(&mut body).expect("a Vec grows as needed");
    debug_assert_eq!(body.len(), encoded_len, "the splitter's size differs from prost's");
    body
}

/// Joins runs of leaves. With the unit key a scope holds a single run, which
/// is moved as is.
pub(crate) fn concat<T>(runs: impl Iterator<Item = Vec<T>>) -> Vec<T> {
    let mut all = Vec::new();
    for mut run in runs {
        if all.is_empty() {
            all = run;
        } else {
            all.append(&mut run);
        }
    }
    all
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
    let groups = Grouper::<S>::group(points, &mut rejected);
    split::<S>(groups, max_request_bytes, rejected)
}

// ---------------------------------------------------------------------------
// Pass 1: grouping.

struct ResourceGroup<S: Encoding> {
    resource: Arc<Resource>,
    pb: PbResource,
    /// Encoded size of the `ResourceX` without its scopes.
    header: usize,
    scopes: Vec<ScopeGroup<S>>,
}

struct ScopeGroup<S: Encoding> {
    scope: Arc<Scope>,
    pb: PbScope,
    /// Encoded size of the `ScopeX` without its leaves.
    header: usize,
    buckets: Vec<BucketGroup<S>>,
    /// Bucket index by key, for points that arrive out of order.
    by_key: HashMap<S::Key, usize>,
}

struct BucketGroup<S: Encoding> {
    key: S::Key,
    shape: Shape,
    leaves: S::Leaves,
    /// Encoded length of each leaf, parallel to `leaves`.
    lens: Vec<usize>,
}

/// Size of a `ResourceX` or `ScopeX` holding only its head message and its
/// schema URL (prost skips an empty string).
pub(crate) fn header_len(head_len: usize, schema_url: &str) -> usize {
    field_len(HEAD_TAG, head_len) + bytes_field_len(SCHEMA_URL_TAG, schema_url.as_bytes())
}

struct Grouper<S: Encoding> {
    groups: Vec<ResourceGroup<S>>,
    /// Where the previous point went: the common case is a run of points
    /// with the same resource, scope and key.
    last: Option<(usize, usize, usize)>,
}

impl<S: Encoding> Grouper<S> {
    fn group(
        points: impl IntoIterator<Item = impl Into<S::Point>>,
        rejected: &mut Vec<EncodeError>,
    ) -> Vec<ResourceGroup<S>> {
        let mut grouper = Self { groups: Vec::new(), last: None };
        for point in points {
            let point = point.into();
            let (r, s, b) = grouper.locate(&point);
            let bucket = &mut grouper.groups[r].scopes[s].buckets[b];
            match S::push(&mut bucket.leaves, &bucket.key, point) {
                Ok(len) => bucket.lens.push(len),
                Err(err) => rejected.push(err),
            }
            grouper.last = Some((r, s, b));
        }
        grouper.groups
    }

    fn locate(&mut self, point: &S::Point) -> (usize, usize, usize) {
        let (resource, scope, key) = S::parts(point);
        if let Some((r, s, b)) = self.last {
            let group = &self.groups[r];
            if Arc::ptr_eq(&group.resource, resource) {
                let scope_group = &group.scopes[s];
                if Arc::ptr_eq(&scope_group.scope, scope) {
                    if scope_group.buckets[b].key == *key {
                        return (r, s, b);
                    }
                    return (r, s, self.bucket(r, s, key));
                }
                let s = self.scope(r, scope);
                return (r, s, self.bucket(r, s, key));
            }
        }
        let r = self.resource(resource);
        let s = self.scope(r, scope);
        (r, s, self.bucket(r, s, key))
    }

    fn resource(&mut self, resource: &Arc<Resource>) -> usize {
        let found = (self.groups.iter().position(|g| Arc::ptr_eq(&g.resource, resource)))
            .or_else(|| self.groups.iter().position(|g| *g.resource == **resource));
        found.unwrap_or_else(|| {
            let pb = resource.to_pb();
            let header = header_len(pb.encoded_len(), &resource.schema_url);
            self.groups.push(ResourceGroup { resource: Arc::clone(resource), pb, header, scopes: Vec::new() });
            self.groups.len() - 1
        })
    }

    fn scope(&mut self, r: usize, scope: &Arc<Scope>) -> usize {
        let scopes = &mut self.groups[r].scopes;
        let found = (scopes.iter().position(|g| Arc::ptr_eq(&g.scope, scope)))
            .or_else(|| scopes.iter().position(|g| *g.scope == **scope));
        found.unwrap_or_else(|| {
            let pb = scope.to_pb();
            let header = header_len(pb.encoded_len(), &scope.schema_url);
            scopes.push(ScopeGroup {
                scope: Arc::clone(scope),
                pb,
                header,
                buckets: Vec::new(),
                by_key: HashMap::new(),
            });
            scopes.len() - 1
        })
    }

    fn bucket(&mut self, r: usize, s: usize, key: &S::Key) -> usize {
        let group = &mut self.groups[r].scopes[s];
        if let Some(&b) = group.by_key.get(key) {
            return b;
        }
        let (leaves, shape) = S::bucket(key);
        group.buckets.push(BucketGroup { key: key.clone(), shape, leaves, lens: Vec::new() });
        let b = group.buckets.len() - 1;
        group.by_key.insert(key.clone(), b);
        b
    }
}

// ---------------------------------------------------------------------------
// Pass 2: splitting.

/// Resource, scope, key and leaf messages nest at most this deep.
const MAX_DEPTH: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Open {
    tag: u32,
    /// Bytes of the message so far: its header plus its closed children;
    /// the open child (the next level) is not included.
    content: usize,
}

/// The exact encoded size of the request being filled.
///
/// It keeps the chain of messages still open (the current `ResourceX`,
/// `ScopeX`, and the key's levels), since their length prefixes change as
/// they grow, and the total of the `ResourceX` entries already closed.
/// It is `Copy` and a few words long, so a candidate state is computed on a
/// copy and kept only if it fits.
#[derive(Debug, Clone, Copy)]
struct Sizer {
    closed: usize,
    open: [Open; MAX_DEPTH],
    depth: usize,
    /// The resource, scope and bucket of the open chain.
    path: (usize, usize, usize),
}

/// The headers along one bucket's path.
struct Path<'a> {
    ids: (usize, usize, usize),
    resource_header: usize,
    scope_header: usize,
    shape: &'a Shape,
}

impl Sizer {
    const EMPTY: Self = Self { closed: 0, open: [Open { tag: 0, content: 0 }; MAX_DEPTH], depth: 0, path: (0, 0, 0) };

    fn total(&self) -> usize {
        let inner =
            self.open[..self.depth].iter().rev().fold(0, |inner, level| field_len(level.tag, level.content + inner));
        self.closed + inner
    }

    /// Closes the open messages below the first `keep`.
    fn close_to(&mut self, keep: usize) {
        while self.depth > keep {
            self.depth -= 1;
            let level = self.open[self.depth];
            let size = field_len(level.tag, level.content);
            match self.depth {
                0 => self.closed += size,
                parent => self.open[parent - 1].content += size,
            }
        }
    }

    fn push(&mut self, tag: u32, header: usize) {
        self.open[self.depth] = Open { tag, content: header };
        self.depth += 1;
    }

    /// This state with one more leaf of `len` bytes on `path`.
    fn with_leaf(mut self, path: &Path<'_>, len: usize) -> Self {
        let (r, s, b) = path.ids;
        let keep = match self.depth {
            0 => 0,
            _ if self.path.0 != r => 0,
            _ if self.path.1 != s => 1,
            _ if self.path.2 != b => 2,
            depth => depth,
        };
        self.close_to(keep);
        if self.depth == 0 {
            self.push(RESOURCE_TAG, path.resource_header);
        }
        if self.depth == 1 {
            self.push(SCOPE_TAG, path.scope_header);
        }
        if self.depth == 2 {
            for level in &path.shape.levels[..path.shape.depth] {
                self.push(level.tag, level.header);
            }
        }
        self.open[self.depth - 1].content += field_len(path.shape.leaf_tag, len);
        self.path = path.ids;
        self
    }
}

/// A request being assembled.
struct Tree<S: Encoding> {
    resources: Vec<ResourceNode<S>>,
    /// The resource and scope groups of the last nodes.
    last: Option<(usize, usize)>,
    points: usize,
    encoded_len: usize,
}

impl<S: Encoding> Tree<S> {
    fn new() -> Self {
        Self { resources: Vec::new(), last: None, points: 0, encoded_len: 0 }
    }

    fn append(
        &mut self,
        r: usize,
        s: usize,
        resource: &ResourceGroup<S>,
        scope: &ScopeGroup<S>,
        bucket: BucketNode<S>,
    ) {
        // `last` is set only after a node was pushed, so when it matches,
        // the nodes it names are the last ones.
        let same_resource = matches!(self.last, Some((lr, _)) if lr == r);
        let same_scope = same_resource && matches!(self.last, Some((_, ls)) if ls == s);
        if !same_resource {
            self.resources.push(ResourceNode {
                resource: resource.pb.clone(),
                schema_url: resource.resource.schema_url.clone(),
                scopes: Vec::new(),
            });
        }
        let last = self.resources.len() - 1;
        let scopes = &mut self.resources[last].scopes;
        if !same_scope {
            scopes.push(ScopeNode {
                scope: scope.pb.clone(),
                schema_url: scope.scope.schema_url.clone(),
                buckets: Vec::new(),
            });
        }
        let last = scopes.len() - 1;
        scopes[last].buckets.push(bucket);
        self.last = Some((r, s));
    }
}

fn split<S: Encoding>(groups: Vec<ResourceGroup<S>>, limit: usize, mut rejected: Vec<EncodeError>) -> Encoded {
    let mut trees: Vec<Tree<S>> = vec![Tree::new()];
    let mut sizer = Sizer::EMPTY;

    for (r, mut resource) in groups.into_iter().enumerate() {
        let scopes = std::mem::take(&mut resource.scopes);
        for (s, mut scope) in scopes.into_iter().enumerate() {
            let buckets = std::mem::take(&mut scope.buckets);
            for (b, bucket) in buckets.into_iter().enumerate() {
                let path = Path {
                    ids: (r, s, b),
                    resource_header: resource.header,
                    scope_header: scope.header,
                    shape: &bucket.shape,
                };
                // (index among the kept leaves where a run starts, its request)
                let mut runs: Vec<(usize, usize)> = Vec::new();
                let mut dropped: Vec<usize> = Vec::new();
                let mut kept = 0;
                for (i, &len) in bucket.lens.iter().enumerate() {
                    let candidate = sizer.with_leaf(&path, len);
                    if candidate.total() <= limit {
                        sizer = candidate;
                    } else {
                        let alone = Sizer::EMPTY.with_leaf(&path, len);
                        let alone_len = alone.total();
                        if alone_len > limit {
                            dropped.push(i);
                            rejected.push(EncodeError::TooLarge { item: S::ITEM, encoded_len: alone_len, limit });
                            continue;
                        }
                        // The current request holds at least one point:
                        // were it empty, the candidate would be `alone`.
                        let current = trees.len() - 1;
                        trees[current].encoded_len = sizer.total();
                        trees.push(Tree::new());
                        sizer = alone;
                    }
                    let request = trees.len() - 1;
                    trees[request].points += 1;
                    if runs.last().is_none_or(|&(_, q)| q != request) {
                        runs.push((kept, request));
                    }
                    kept += 1;
                }
                place(&mut trees, r, s, &resource, &scope, bucket, &runs, &dropped);
            }
        }
    }
    let last = trees.len() - 1;
    trees[last].encoded_len = sizer.total();

    let requests = trees
        .into_iter()
        .filter(|tree| tree.points > 0)
        .map(|tree| EncodedRequest { body: S::write(tree.resources, tree.encoded_len), points: tree.points })
        .collect();
    Encoded { requests, rejected }
}

/// Moves one bucket's leaves into the requests its runs were assigned to.
#[allow(clippy::too_many_arguments)]
fn place<S: Encoding>(
    trees: &mut [Tree<S>],
    r: usize,
    s: usize,
    resource: &ResourceGroup<S>,
    scope: &ScopeGroup<S>,
    bucket: BucketGroup<S>,
    runs: &[(usize, usize)],
    dropped: &[usize],
) {
    let BucketGroup { key, mut leaves, .. } = bucket;
    if !dropped.is_empty() {
        let mut dropped = dropped.iter().copied().peekable();
        leaves.retain_indices(|i| {
            let drop = dropped.peek() == Some(&i);
            if drop {
                dropped.next();
            }
            !drop
        });
    }
    let Some((&(_, first), rest)) = runs.split_first() else { return };
    // Cut from the back, so each leaf moves once however many runs there are.
    let mut tails: Vec<(usize, S::Leaves)> = Vec::with_capacity(rest.len());
    for &(start, request) in rest.iter().rev() {
        tails.push((request, leaves.split_off(start)));
    }
    trees[first].append(r, s, resource, scope, BucketNode { key: key.clone(), leaves });
    for (request, leaves) in tails.into_iter().rev() {
        trees[request].append(r, s, resource, scope, BucketNode { key: key.clone(), leaves });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::otlp::test_support::{encode_and_decode, resource, scope};
    use crate::otlp::{
        AnyValue, KeyValue, LogRecord, Logs, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Metrics,
        Temporality,
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
        let (requests, rejected, counts) =
            encode_and_decode::<Logs>(records, LIMIT);
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
}
