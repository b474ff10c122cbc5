//! The gRPC transport: one [`Transport`](crate::deliver) implementation over
//! a tonic channel (TLS through the crate's own connector), the
//! classification of its failures per the OTLP specification, and the public
//! per-signal drains built on the delivery engine.

mod classify;
mod client;
mod drains;

#[cfg(feature = "receiver")]
pub(crate) use classify::status_with_retry_delay;
#[cfg(feature = "sdk")]
pub(crate) use drains::connect;
pub use drains::{LogsDrain, MetricsDrain, TracesDrain};
