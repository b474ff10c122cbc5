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
//!                                                       |                                  -> transport (gRPC | HTTP)
//!    force_flush -------barrier, FIFO with the data-----+--> SinkDrain::flush_durable (all acks in)
//!
//! with a spool (opt-in):    SinkDrain::write_batch = encode -> append (spool) ; flush_durable = fsync (Persisted)
//!                           sender task: spool -> deliver -> settle -> cursor (Delivered)
//! ```
//!
//! ## Quick start
//!
//! Most applications need one type, [`OtlpExporter`] (feature `sdk`, on by
//! default). It hands the `opentelemetry_sdk` 0.33 providers a metric
//! reader, span and log processors whose `force_flush` returns `Ok` only
//! once the collector acknowledged everything recorded before it. Settings
//! come from code first, then the `OTEL_EXPORTER_OTLP_*` environment, then
//! the defaults; over OTLP/HTTP, `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`
//! and `NO_PROXY` name the proxy, as for the official HTTP exporter (see
//! [`ExporterConfig`]'s "Proxies").
//!
//! ```
//! use opentelemetry::trace::{Tracer as _, TracerProvider as _};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use otlp_sink::{OtlpExporter, Signal};
//! # use otlp_sink::receiver::Receiver;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Runtime::new()?;
//! # let receiver = rt.block_on(Receiver::start())?;
//! # let endpoint = receiver.endpoint();
//! // Hold the exporter until the application is done: its drop delivers
//! // what is still queued.
//! let exporter = OtlpExporter::builder().with_endpoint(endpoint).build()?;
//! let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
//!
//! tracers.tracer("app").in_span("work", |_cx| {});
//! tracers.force_flush()?; // Ok: the collector acknowledged the span.
//!
//! let traces = exporter.stats().signal(Signal::Traces);
//! assert_eq!(traces.export.acked, 1);
//! # assert_eq!(receiver.counts().traces.acked, 1);
//! exporter.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! Everything the exporter runs lives on an export runtime of its own, so
//! `force_flush` and shutdown return from any thread: inside a tokio runtime
//! of any flavor, on a plain thread, or in a `Drop` at the end of `main`.
//!
//! ## The modules, one per layer
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`sdk`] | [`OtlpExporter`], its builder, the adapters it hands out, their counters and [`SdkError`] |
//! | [`sink`] | [`BackgroundSink`], the generic core: a bounded queue, one batching actor, the [`SinkDrain`] trait, [`SinkHandle`] for shutdown, and their errors and counters |
//! | [`otlp`] | telemetry points ([`MetricPoint`](otlp::MetricPoint), [`SpanRecord`](otlp::SpanRecord), [`LogRecord`](otlp::LogRecord)) for users who feed a sink themselves |
//! | the root | [`MetricsDrain`], [`TracesDrain`] and [`LogsDrain`]: the OTLP drains for those points |
//! | [`deliver`] | what the drains report: [`DeliveryStats`](deliver::DeliveryStats), [`ExportError`](deliver::ExportError) with a transport-neutral [`ExportStatus`](deliver::ExportStatus), [`Outage`](deliver::Outage); with a spool, [`SpoolHandle`](deliver::SpoolHandle) (the `Delivered` wait) and [`SpoolStats`](deliver::SpoolStats) |
//! | [`config`] | [`ExporterConfig`]: endpoint, [`Protocol`], headers, TLS, compression, size cap, in-flight window, [`RetryPolicy`](config::RetryPolicy), the spool's [`SpoolConfig`](config::SpoolConfig) and [`FlushLevel`](config::FlushLevel), and how each is read from the environment |
//! | [`tls`] | errors of the TLS setup, naming what to configure |
//! | `receiver` | an in-process OTLP receiver (gRPC and HTTP) for examples and tests (feature `receiver`, opt-in) |
//!
//! The pieces under the exporter are public for applications that want them
//! directly:
//!
//! - [`BackgroundSink::try_push`] costs nanoseconds: a ring of slots
//!   allocated up front, where a push is one compare-and-swap and a write,
//!   and no producer ever waits for another. A full queue is a counted
//!   drop, never a stall. The queue may be cut into shards, one per
//!   producer thread ([`SinkConfig::with_queue_shards`]), so that threads
//!   on different cores do not take turns on one tail; the exporter's span
//!   and log queues have 8 by default.
//! - [`BackgroundSink::flush`] is a barrier that travels through the queue
//!   behind the data. `Ok` means every message accepted before the call is
//!   durable; an error is the first failure since the previous barrier,
//!   reported once.
//! - [`SinkHandle::shutdown_timeout`] returns by its deadline even if the
//!   drain hangs, and counts what it abandoned.
//! - The drains cut requests under a size cap, keep a window of them in
//!   flight, retry per the OTLP specification within a budget, and count
//!   every item exactly once as acknowledged, rejected or failed, over the
//!   transport the configuration's [`Protocol`] names: gRPC (this crate's
//!   default) or OTLP/HTTP with protobuf bodies (`http/protobuf`, the
//!   specification's default).
//!
//! ## Source layout
//!
//! - `src/sink/`: the queue (`ring.rs`, cut into shards by `shards.rs`,
//!   both model-checked with loom in `loom_tests.rs`), the actor loop, the drain trait, errors and
//!   counters. Generic over the message type; it knows nothing of OTLP.
//! - `src/otlp/`: the points and their encoding into OTLP protobuf requests
//!   cut to a byte limit, written once for all signals. Pure: no I/O.
//! - `proto/`: the OTLP schema (version in `proto/README.md`), compiled by
//!   `build.rs` into `src/pb.rs`.
//! - `src/deliver/`: the one delivery engine, generic over a transport: the
//!   window, a ticket per request so each item is counted once, the retry
//!   loop within the budget, the outage report, and transport-neutral
//!   errors. A transport implements one small trait.
//! - `src/grpc/`: the gRPC transport over tonic, and the classification of
//!   its failures per the OTLP specification.
//! - `src/http/`: the OTLP/HTTP transport over hyper-util's pooled HTTP/1.1
//!   client (straight, or through an HTTP proxy), and the classification of
//!   its answers (status, `Retry-After`, the body's `google.rpc.Status`)
//!   per the OTLP specification.
//! - `src/drains/`: the public per-signal drains, over the transport the
//!   configuration names (`mod.rs`), directly or under the durable spool
//!   (`spooled.rs`: appends and fsyncs on the blocking pool, a sender task
//!   that delivers the records in order through the delivery engine).
//! - `src/tls.rs`: the rustls client configuration and connector, for every
//!   transport (through a proxy's `CONNECT` tunnel for OTLP/HTTP);
//!   `src/tcp.rs`: the TCP stream beneath (Nagle off, quick acks).
//! - `src/sdk/`: the adapters to `opentelemetry_sdk`, the export runtime
//!   they run on, and the pure conversions from the SDK's data to points.
//! - `src/config/`: the settings, the environment read through a lookup
//!   function (`proxy.rs`: the proxy variables), and their merge. Pure.
//! - `src/receiver/`: the in-process receiver, OTLP/gRPC and OTLP/HTTP.
//! - `src/spool/`: the durable spool's storage layer (segments of CRC32C
//!   framed records, the cursor, recovery, bounds); synchronous file I/O
//!   for the blocking pool. Crate-private: its drain is `src/drains/spooled.rs`.
//!
//! The layers import one way: `config`, `sink`, `otlp` and `spool` import
//! no other layer; `tls` imports `config`; `deliver` those four; `grpc` and
//! `http` those and `deliver`, not each other; `drains` the two transports
//! and `spool`;
//! `sdk` sits on top. `tests/layers.rs` checks that table, and that no two
//! sibling modules import each other at any depth.

#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod config;
pub mod deliver;
mod drains;
mod grpc;
mod http;
pub mod otlp;
pub(crate) mod pb;
#[cfg(feature = "receiver")]
pub mod receiver;
#[cfg(feature = "sdk")]
pub mod sdk;
pub mod sink;
// The durable spool's storage layer, under the spooled drains.
mod spool;
// The TCP connection under the gRPC channels and the TLS connector.
mod tcp;
pub mod tls;

pub use config::{ExporterConfig, Protocol, Signal};
pub use drains::{LogsDrain, MetricsDrain, TracesDrain};
#[cfg(feature = "sdk")]
pub use sdk::{is_export_thread, OtlpExporter, SdkError};
pub use sink::{BackgroundSink, SinkConfig, SinkDrain, SinkHandle};
