//! Telemetry points and their encoding into OTLP protobuf requests.
//!
//! Pure: no I/O and no transport. The point types ([`MetricPoint`],
//! [`SpanRecord`], [`LogRecord`]) are owned and cheap to move; what many
//! points share ([`Resource`], [`Scope`], [`MetricDescriptor`]) is held once
//! behind an `Arc`. The encoder, written once for all three signals in
//! `encode/`, rebuilds the OTLP tree from a flat batch and cuts it into
//! requests that fit a byte limit.
//!
//! - `common.rs`, `logs.rs`, `traces/mod.rs`, `metrics/mod.rs`: the point
//!   types; logs also state their messages for `encode/flat.rs`.
//! - `metrics/encode.rs`: a metric point's data point message, written by
//!   hand; every metric point, a [`MetricPoint`] or one the SDK adapters
//!   write straight from the SDK's data, is encoded through it once.
//! - `traces/encode.rs`: the same for spans: a span's `Span` message,
//!   written by hand from a [`SpanRecord`] or straight from the SDK's span.
//! - `encode/`: the `Encoding` trait, and the grouper, sizer and splitter
//!   shared by every signal.
//! - `wire.rs`: the minimal protobuf writer behind `metrics/encode.rs` and
//!   `traces/encode.rs`.

mod common;
mod encode;
mod logs;
mod metrics;
#[cfg(test)]
pub(crate) mod test_support;
mod traces;
pub(crate) mod wire;

pub use common::{AnyValue, KeyValue, Resource, Scope};
pub use encode::EncodeError;
pub use logs::{LogRecord, Severity};
pub use metrics::{
    Exemplar, ExemplarValue, ExponentialBuckets, ExponentialHistogramValue, HistogramValue, MetricDescriptor,
    MetricKind, MetricPoint, MetricValue, Quantile, SummaryValue, Temporality,
};
pub use traces::{SpanEvent, SpanKind, SpanLink, SpanRecord, SpanStatus};

// The encoder's crate-side API, for the gRPC drain.
#[allow(unused_imports)]
pub(crate) use encode::{encode, Encoded, EncodedRequest, EncodedSize, Encoding};
#[cfg(feature = "sdk")]
pub(crate) use metrics::EncodedMetricPoint;
#[cfg(feature = "sdk")]
pub(crate) use metrics::{NumberRun, NumberValue};
#[cfg(feature = "sdk")]
pub(crate) use traces::{EncodedSpan, EventParts, LinkParts, SpanHead, SpanTail, SpanWriter, StatusParts};
#[cfg(feature = "sdk")]
pub(crate) use wire::{Attribute, AttributeValue};
#[allow(unused_imports)]
pub(crate) use {logs::Logs, metrics::Metrics, traces::Traces};
