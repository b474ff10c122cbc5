//! The one small trait a transport implements: send an encoded request, and
//! say what came back. Everything else (the window, retries, accounting) is
//! the engine's.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::retry::RetryDecision;
use super::service::Service;
use super::status::ExportStatus;
use crate::tls::TlsError;

/// A way to reach a collector: gRPC or HTTP. Cloned into each request's task.
pub(crate) trait Transport: Clone + Send + Sync + 'static {
    /// The collector's address, as reports name it.
    fn endpoint(&self) -> String;

    /// One attempt: sends `body`, an encoded export request of `S`, waits at
    /// most `timeout` for the answer, and returns the response's body (an
    /// encoded `S::Response`).
    fn send<S: Service>(&self, body: Bytes, timeout: Duration) -> impl Future<Output = Result<Bytes, Failure>> + Send;
}

/// Why one attempt failed, classified by the transport that saw it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The collector's status, or one the transport made for a failure of
    /// its own, with what the OTLP specification says to do about it.
    Status {
        /// What came back.
        status: ExportStatus,
        /// Retry, throttle, or give up.
        decision: RetryDecision,
    },
    /// The TLS connection failed in a way retrying cannot fix.
    Tls(TlsError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, .. } => {
                write!(f, "{status}")?;
                // The transport's innermost cause (e.g. `Connection refused`),
                // which the message alone may not say.
                let mut cause = std::error::Error::source(status);
                let mut innermost = None;
                while let Some(e) = cause {
                    innermost = Some(e);
                    cause = e.source();
                }
                match innermost.map(ToString::to_string) {
                    Some(text) if !status.message().contains(&text) => write!(f, " ({text})"),
                    _ => Ok(()),
                }
            }
            Self::Tls(error) => fmt::Display::fmt(error, f),
        }
    }
}
