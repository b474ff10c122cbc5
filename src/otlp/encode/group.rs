//! Pass 1: grouping. Each point is moved into its group's leaves (its
//! attribute vectors and strings are moved, not copied) and its encoded
//! length is measured once. Groups are found by `Arc::ptr_eq` first, then by
//! value, so equal resources held in different `Arc`s still share one
//! `ResourceX`.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message;

use super::{header_len, EncodeError, Encoding, Shape};
use crate::otlp::common::{Resource, Scope};
use crate::pb::common::v1::InstrumentationScope as PbScope;
use crate::pb::resource::v1::Resource as PbResource;

pub(super) struct ResourceGroup<S: Encoding> {
    pub(super) resource: Arc<Resource>,
    pub(super) pb: PbResource,
    /// Encoded size of the `ResourceX` without its scopes.
    pub(super) header: usize,
    pub(super) scopes: Vec<ScopeGroup<S>>,
}

pub(super) struct ScopeGroup<S: Encoding> {
    pub(super) scope: Arc<Scope>,
    pub(super) pb: PbScope,
    /// Encoded size of the `ScopeX` without its leaves.
    pub(super) header: usize,
    pub(super) buckets: Vec<BucketGroup<S>>,
    /// Bucket index by key, for points that arrive out of order.
    pub(super) by_key: HashMap<S::Key, usize>,
}

pub(super) struct BucketGroup<S: Encoding> {
    pub(super) key: S::Key,
    pub(super) shape: Shape,
    pub(super) leaves: S::Leaves,
    /// Encoded length of each leaf, parallel to `leaves`.
    pub(super) lens: Vec<usize>,
}

pub(super) struct Grouper<S: Encoding> {
    pub(super) groups: Vec<ResourceGroup<S>>,
    /// Where the previous point went: the common case is a run of points
    /// with the same resource, scope and key.
    pub(super) last: Option<(usize, usize, usize)>,
}

impl<S: Encoding> Grouper<S> {
    pub(super) fn group(
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
