//! Pass 2: splitting. The groups are walked in order while a [`Sizer`] keeps
//! the exact encoded size of the request being filled; whole runs of points
//! are then moved into each request's tree with `split_off`, never one by
//! one, and each tree is written to bytes once.

use super::group::{BucketGroup, ResourceGroup, ScopeGroup};
use super::size::{Path, Sizer};
use crate::otlp::wire::field_len;

use super::{BucketNode, EncodeError, Encoded, EncodedRequest, Encoding, Leaves, ResourceNode, ScopeNode};

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

pub(super) fn split<S: Encoding>(
    groups: Vec<ResourceGroup<S>>,
    limit: usize,
    mut rejected: Vec<EncodeError>,
) -> Encoded {
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
                // Once a leaf of this bucket is in, the open chain is the
                // bucket's path, and `bound` is at least the request's
                // exact size: a leaf that fits under it is added without
                // measuring the request again (nearly every leaf).
                let mut bound: Option<usize> = None;
                for (i, &len) in bucket.lens.iter().enumerate() {
                    let field = field_len(path.shape.leaf_tag, len);
                    if let Some(b) = bound.filter(|b| b + field <= limit) {
                        sizer.add_leaf(field);
                        bound = Some(b + field);
                        let request = trees.len() - 1;
                        trees[request].points += 1;
                        if runs.last().is_none_or(|&(_, q)| q != request) {
                            runs.push((kept, request));
                        }
                        kept += 1;
                        continue;
                    }
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
                    bound = Some(sizer.total() + Sizer::PREFIX_GROWTH);
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
