//! The OTLP/HTTP transport (`http/protobuf`): one [`Transport`](crate::deliver)
//! implementation over hyper-util's pooled HTTP/1.1 client (TLS through the
//! crate's own connector, as on gRPC), and the classification of its
//! failures per the OTLP specification.
//!
//! ```text
//! engine --bytes--> HttpTransport::send: POST <base>/v1/<signal>, Content-Type: application/x-protobuf
//!                     [Content-Encoding: gzip | zstd], the configured headers, User-Agent: otlp-sink/<version>
//!          <-------- 2xx: the body (an Export*ServiceResponse, maybe empty) for the engine to decode
//!          <-------- else: HTTP status + the body's google.rpc.Status message + Retry-After -> Failure
//! ```
//!
//! - Connections are HTTP/1.1 with keep-alive, pooled: as many idle ones are
//!   kept as requests may be in flight (`max_in_flight`), so a steady window
//!   reuses its connections.
//! - The attempt's timeout bounds all of it: connecting, sending, and reading
//!   the whole response. A server that accepts and never answers fails the
//!   attempt in that time, and the engine retries it within its budget.
//! - Retried: 429, 502, 503 and 504 (after at least `Retry-After` when the
//!   server sends one, in seconds or as an HTTP-date), a connection refused,
//!   reset or closed before the whole answer, and a timeout. Every other
//!   status is permanent, reported with its code and the message of the
//!   body's `google.rpc.Status` (or the start of a body that is not one).

mod classify;
mod client;

pub(crate) use client::HttpTransport;
