//! The exact encoded size of a request as it is filled, for the splitter.

use super::{Shape, RESOURCE_TAG, SCOPE_TAG};
use crate::otlp::wire::field_len;

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
pub(super) struct Sizer {
    closed: usize,
    open: [Open; MAX_DEPTH],
    depth: usize,
    /// The resource, scope and bucket of the open chain.
    path: (usize, usize, usize),
}

/// The headers along one bucket's path.
pub(super) struct Path<'a> {
    pub(super) ids: (usize, usize, usize),
    pub(super) resource_header: usize,
    pub(super) scope_header: usize,
    pub(super) shape: &'a Shape,
}

impl Sizer {
    pub(super) const EMPTY: Self =
        Self { closed: 0, open: [Open { tag: 0, content: 0 }; MAX_DEPTH], depth: 0, path: (0, 0, 0) };

    pub(super) fn total(&self) -> usize {
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

    /// How much [`total`](Self::total) can grow beyond the leaves added
    /// with [`add_leaf`](Self::add_leaf): each open message's length
    /// prefix, a varint, grows by less than 10 bytes however much its
    /// content grows.
    pub(super) const PREFIX_GROWTH: usize = 10 * MAX_DEPTH;

    /// Adds a leaf field of `field` bytes (tag, length prefix and content)
    /// to the innermost open message: the leaf's path must be the open
    /// chain's, as it is after [`with_leaf`](Self::with_leaf) on that path.
    pub(super) fn add_leaf(&mut self, field: usize) {
        debug_assert!(self.depth >= 2, "a leaf goes under an open scope");
        self.open[self.depth - 1].content += field;
    }

    /// This state with one more leaf of `len` bytes on `path`.
    pub(super) fn with_leaf(mut self, path: &Path<'_>, len: usize) -> Self {
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
