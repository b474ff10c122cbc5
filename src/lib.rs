//! # otlp-sink
//!
//! An OpenTelemetry exporter whose hot path never waits on the network, and
//! whose flush returns only when everything before it is durable.
//!
//! ```text
//! producers --try_push--> BackgroundSink (bounded queue) --> actor --> SinkDrain::write_batch
//!                                                              |
//! flush() ------------barrier, FIFO with the data-------------+--> SinkDrain::flush_durable
//! ```
//!
//! - [`BackgroundSink`] is the generic core. Producers push into a bounded
//!   queue without awaiting ([`BackgroundSink::try_push`]); a full queue is a
//!   counted drop, never a stall. One actor task batches messages by size or
//!   by [`flush_interval`](SinkConfig::with_flush_interval) and hands each
//!   batch to a [`SinkDrain`].
//! - [`BackgroundSink::flush`] is a barrier that travels through the queue
//!   behind the data. The actor writes its partial batch, awaits the drain's
//!   [`flush_durable`](SinkDrain::flush_durable), and only then answers: `Ok`
//!   means every message accepted before the call is durable. An error is the
//!   first failure since the previous barrier, reported once.
//! - [`SinkHandle`] is the owner's handle on the actor:
//!   [`shutdown`](SinkHandle::shutdown) drains everything and closes the
//!   drain; [`shutdown_timeout`](SinkHandle::shutdown_timeout) returns by its
//!   deadline even if the drain hangs, and says so.
//! - [`SinkStats`] counts what was pushed, dropped, written and failed, so
//!   nothing is lost without being counted.
//!
//! ## Layout
//!
//! - `src/sink/`: the queue, the actor loop, the [`SinkDrain`] trait, errors
//!   and counters. Generic over the message type; it knows nothing of OTLP.
//! - `src/otlp/`: telemetry points ([`MetricPoint`], [`SpanRecord`],
//!   [`LogRecord`]) and their encoding into OTLP protobuf requests cut to a
//!   byte limit, written once for all signals. Pure: no I/O.
//! - `proto/`: the OTLP schema (version in `proto/README.md`), compiled by
//!   `build.rs` into `src/pb.rs`.
//! - `src/config/`: the exporter's settings ([`ExporterConfig`]): a builder,
//!   the `OTEL_EXPORTER_OTLP_*` environment read through a lookup function,
//!   and their merge, code over environment over defaults. Pure.
//! - `src/grpc/`: the gRPC transport; so far the classification of failed
//!   exports and the backoff between attempts ([`RetryPolicy`]).

#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod config;
mod grpc;
mod otlp;
pub(crate) mod pb;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "sdk")]
mod sdk;
mod sink;

pub use config::{
    Compression, EnvSettings, ExporterConfig, ExporterConfigBuilder, ExporterConfigError, ExporterConfigErrorKind,
    Headers, Signal, TemporalityPreference, ValueOrigin,
};
pub use grpc::{
    ConnectError, ExportError, ExportStats, ExportStatsHandle, LogsDrain, MetricsDrain, RetryPolicy, TracesDrain,
};
pub use sink::{
    BackgroundSink, ConfigError, DrainError, DrainErrorKind, FlushError, Overflow, PushError, ShutdownError,
    SinkConfig, SinkDrain, SinkHandle, SinkStats, TryPushError,
};

#[cfg(feature = "sdk")]
pub use sdk::{
    BuildError, ExporterStats, OtlpExporter, OtlpExporterBuilder, OtlpLogExporter, OtlpLogProcessor,
    OtlpMetricExporter, OtlpMetricReader, OtlpSpanExporter, OtlpSpanProcessor, SdkError, SignalStats,
};

pub use otlp::{
    AnyValue, EncodeError, Exemplar, ExemplarValue, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    KeyValue, LogRecord, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Quantile, Resource, Scope, Severity,
    SpanEvent, SpanKind, SpanLink, SpanRecord, SpanStatus, SummaryValue, Temporality,
};
