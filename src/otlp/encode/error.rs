//! Why a point is left out of the encoded requests.

use std::error::Error;
use std::fmt;

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
