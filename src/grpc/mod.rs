//! The gRPC transport. For now: which failures are retried, and the backoff
//! between attempts.

mod retry;

pub use retry::RetryPolicy;
