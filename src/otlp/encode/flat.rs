//! The encoding of the signals whose leaves are prost messages straight
//! under the `ScopeX`, one list per scope (logs), written once: each
//! such signal says only what its messages are.

use std::sync::Arc;

use prost::Message;

use super::{EncodeError, Encoding, ResourceNode, Shape};
use crate::otlp::common::{Resource, Scope};
use crate::pb::common::v1::InstrumentationScope as PbScope;
use crate::pb::resource::v1::Resource as PbResource;

/// A signal whose points each become one prost message (its leaf), listed
/// directly in the `ScopeX`: what [`Encoding`] needs of it beyond the walk,
/// which the blanket implementation below writes once.
pub(crate) trait FlatEncoding: Send + Sync + 'static {
    /// The point the sink carries.
    type Point: Send + 'static;
    /// The point's protobuf message, such as `Span`.
    type Leaf: Message;
    /// The `ScopeX` message, such as `ScopeSpans`.
    type ScopeX;
    /// The `ResourceX` message, such as `ResourceSpans`.
    type ResourceX;
    /// The export request: [`Encoding::Request`].
    type Request: Message + Default + Send + 'static;

    /// [`Encoding::ITEM`].
    const ITEM: &'static str;
    /// The leaves' field number in the `ScopeX`.
    const LEAF_TAG: u32;

    /// The point's resource and scope.
    fn parts(point: &Self::Point) -> (&Arc<Resource>, &Arc<Scope>);
    /// Moves the point into its protobuf message.
    fn into_leaf(point: Self::Point) -> Self::Leaf;
    /// A `ScopeX` of `leaves`.
    fn scope(scope: PbScope, schema_url: String, leaves: Vec<Self::Leaf>) -> Self::ScopeX;
    /// A `ResourceX` of `scopes`.
    fn resource(resource: PbResource, schema_url: String, scopes: Vec<Self::ScopeX>) -> Self::ResourceX;
    /// The request carrying `resources`.
    fn request(resources: Vec<Self::ResourceX>) -> Self::Request;
}

impl<F: FlatEncoding> Encoding for F {
    type Point = F::Point;
    type Key = ();
    type Leaves = Vec<F::Leaf>;
    type Request = F::Request;

    const ITEM: &'static str = F::ITEM;

    fn parts(point: &F::Point) -> (&Arc<Resource>, &Arc<Scope>, &()) {
        let (resource, scope) = F::parts(point);
        (resource, scope, &())
    }

    fn bucket(_: &()) -> (Vec<F::Leaf>, Shape) {
        (Vec::new(), Shape::flat(F::LEAF_TAG))
    }

    fn push(leaves: &mut Vec<F::Leaf>, _: &(), point: F::Point) -> Result<usize, EncodeError> {
        let leaf = F::into_leaf(point);
        let len = leaf.encoded_len();
        leaves.push(leaf);
        Ok(len)
    }

    fn write(resources: Vec<ResourceNode<Self>>, encoded_len: usize) -> Vec<u8> {
        let resources = resources
            .into_iter()
            .map(|resource| {
                let scopes = (resource.scopes.into_iter())
                    .map(|scope| {
                        F::scope(scope.scope, scope.schema_url, concat(scope.buckets.into_iter().map(|b| b.leaves)))
                    })
                    .collect();
                F::resource(resource.resource, resource.schema_url, scopes)
            })
            .collect();
        encode_request(&F::request(resources), encoded_len)
    }
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
fn concat<T>(runs: impl Iterator<Item = Vec<T>>) -> Vec<T> {
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
