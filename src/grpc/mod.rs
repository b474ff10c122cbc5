//! The gRPC transport: the [`GrpcDrain`] that sends encoded batches to a
//! collector with a window of requests in flight, the one client every
//! signal shares, its TLS connector, and the classification of failed
//! exports with the backoff between attempts.

mod client;
mod drain;
mod outage;
mod retry;
mod tls;

pub use client::ConnectError;
#[cfg(feature = "sdk")]
pub(crate) use drain::GrpcDrain;
pub use drain::{ExportError, ExportStats, ExportStatsHandle, LogsDrain, MetricsDrain, TracesDrain};
pub use outage::Outage;
#[cfg(feature = "receiver")]
pub(crate) use retry::status_with_retry_delay;
pub use retry::RetryPolicy;
pub use tls::{TlsError, TlsErrorKind};
