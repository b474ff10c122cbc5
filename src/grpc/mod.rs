//! The gRPC transport: one [`Transport`](crate::deliver) implementation over
//! a tonic channel (TLS through the crate's own connector), and the
//! classification of its failures per the OTLP specification. The public
//! drains that use it (or the HTTP transport) are in `src/drains.rs`.

mod classify;
mod client;

#[cfg(feature = "receiver")]
pub(crate) use classify::status_with_retry_delay;
pub(crate) use client::GrpcTransport;
