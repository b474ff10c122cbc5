//! # otlp-sink
//!
//! An OpenTelemetry exporter whose hot path never waits on the network, and
//! whose flush returns only when everything before it is durable: for the
//! OpenTelemetry SDK, `force_flush` means the collector has it.
//!
//! ```text
//! SDK (metric reader / span processor / log processor / exporters)
//!    --try_push--> BackgroundSink (bounded queue) --> actor --> SinkDrain::write_batch
//!                                                       |        = encode (otlp) -> deliver: window + retry + accounting
//!                                                       |                                  -> Transport (gRPC)
//!    force_flush -------barrier, FIFO with the data-----+--> SinkDrain::flush_durable (all acks in)
//! ```
//!
//! - [`OtlpExporter`] plugs the crate into `opentelemetry_sdk` 0.33 (feature
//!   `sdk`, on by default): it hands out a [metric reader](OtlpMetricReader),
//!   [span](OtlpSpanProcessor) and [log](OtlpLogProcessor) processors whose
//!   `force_flush` returns `Ok` only once the collector acknowledged
//!   everything recorded before it, and exporters for the SDK's own batch
//!   processors. Everything it runs lives on an export runtime of its own,
//!   so `force_flush` and shutdown return from any thread: inside a tokio
//!   runtime of any flavor, on a plain thread, or in a `Drop` at the end of
//!   `main`. Hold the [`OtlpExporter`] until the application is done:
//!   its drop delivers everything still queued, even while a global
//!   `tracing` subscriber keeps the providers alive.
//! - [`BackgroundSink`] is the generic core. Producers push into a bounded
//!   queue without awaiting ([`BackgroundSink::try_push`]): a ring of slots
//!   allocated up front, where a push is one compare-and-swap and a write,
//!   and no producer ever waits for another. A full queue is a counted drop,
//!   never a stall. One actor task batches messages by size or
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
//! - [`MetricsDrain`], [`TracesDrain`] and [`LogsDrain`] are the OTLP/gRPC
//!   drains: one delivery engine (size-capped requests, a window of them in
//!   flight, retries per the OTLP specification, a `flush_durable` that
//!   waits for every answer) over the gRPC transport. A failure says what
//!   it cost ([`ExportError`], with a transport-neutral [`ExportStatus`]).
//! - [`SinkStats`] and [`DeliveryStats`] count what was pushed, dropped,
//!   written, acknowledged and failed, so nothing is lost without being counted.
//!
//! ## Layout
//!
//! - `src/sink/`: the queue (`ring.rs`), the actor loop, the [`SinkDrain`]
//!   trait, errors and counters. Generic over the message type; it knows nothing of OTLP.
//! - `src/otlp/`: telemetry points ([`MetricPoint`], [`SpanRecord`],
//!   [`LogRecord`]) and their encoding into OTLP protobuf requests cut to a
//!   byte limit, written once for all signals. Pure: no I/O.
//! - `proto/`: the OTLP schema (version in `proto/README.md`), compiled by
//!   `build.rs` into `src/pb.rs`.
//! - `src/deliver/`: the one delivery engine, generic over a transport: the
//!   window of requests in flight, a ticket per request so each item is
//!   counted once, the retry loop within the budget, the outage report, and
//!   transport-neutral errors. A transport implements one small trait.
//! - `src/grpc/`: the gRPC transport over tonic, the classification of its
//!   failures per the OTLP specification, and the public per-signal drains.
//! - `src/tls.rs`: the rustls client configuration and connector, for every
//!   transport ([`TlsError`] names what to configure).
//! - `src/sdk/`: thin adapters to `opentelemetry_sdk` (metrics, traces,
//!   logs), the export runtime they run on, and the pure conversions from the
//!   SDK's data to the points above.
//! - `src/config/`: the exporter's settings ([`ExporterConfig`]): a builder,
//!   the `OTEL_EXPORTER_OTLP_*` environment read through a lookup function,
//!   and their merge, code over environment over defaults; the
//!   [`RetryPolicy`]. Pure.
//!
//! The layers import one way: `config`, `sink` and `otlp` import no other
//! layer; `tls` imports `config`; `deliver` those four; `grpc` those and
//! `deliver`; `sdk` sits on top.
//! - `src/receiver.rs`: an in-process OTLP receiver for the quickstart and
//!   the tests (feature `receiver`, opt-in: a test double, so a library
//!   user compiles no server unless asking for one).

#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod config;
mod deliver;
mod drains;
mod grpc;
mod http;
mod otlp;
pub(crate) mod pb;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "sdk")]
mod sdk;
mod sink;
mod tls;

pub use config::{
    Compression, EnvSettings, ExporterConfig, ExporterConfigBuilder, ExporterConfigError, ExporterConfigErrorKind,
    Headers, Protocol, RetryPolicy, Signal, TemporalityPreference, TlsConfig, ValueOrigin,
};
pub use deliver::{DeliveryStats, DeliveryStatsHandle, ExportError, ExportStatus, GrpcCode, Outage, StatusCode};
pub use drains::{LogsDrain, MetricsDrain, TracesDrain};
pub use sink::{
    BackgroundSink, DrainError, DrainErrorKind, FlushError, Overflow, PushError, ShutdownError, SinkConfig,
    SinkConfigError, SinkDrain, SinkHandle, SinkStats, TryPushError,
};
pub use tls::{ConnectError, TlsError, TlsErrorKind};

#[cfg(feature = "sdk")]
pub use sdk::{
    is_export_thread, BuildError, ExporterStats, Operation, OtlpExporter, OtlpExporterBuilder, OtlpLogExporter,
    OtlpLogProcessor, OtlpMetricExporter, OtlpMetricReader, OtlpSpanExporter, OtlpSpanProcessor, PipelineStats,
    SdkError, Undelivered, Waiting,
};

pub use otlp::{
    AnyValue, EncodeError, Exemplar, ExemplarValue, ExponentialBuckets, ExponentialHistogramValue, HistogramValue,
    KeyValue, LogRecord, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Quantile, Resource, Scope, Severity,
    SpanEvent, SpanKind, SpanLink, SpanRecord, SpanStatus, SummaryValue, Temporality,
};
