//! Why a request's items are not delivered, whatever the transport.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use super::status::{ExportStatus, GrpcCode, StatusCode};
use crate::otlp::EncodeError;
use crate::sink::{DrainError, DrainErrorKind};
use crate::tls::TlsError;

/// Why items sent by a [`MetricsDrain`](crate::MetricsDrain),
/// [`TracesDrain`](crate::TracesDrain) or [`LogsDrain`](crate::LogsDrain)
/// are not durable. It is the [`source`](Error::source) of the
/// [`DrainError`] the drain reports, and so of the
/// [`FlushError`](crate::sink::FlushError) a flush returns.
#[non_exhaustive]
#[derive(Debug)]
pub enum ExportError {
    /// The collector refused a request with a status that must not be retried
    /// (over gRPC INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,
    /// UNIMPLEMENTED, RESOURCE_EXHAUSTED without RetryInfo, ...; over HTTP
    /// every 4xx and 5xx but 429, 502, 503 and 504). Its items are lost.
    Refused {
        /// The status.
        status: ExportStatus,
        /// Attempts made, the last included.
        attempts: u32,
    },
    /// Retryable failures went on until the retry budget ran out. Its items
    /// are lost.
    RetriesExhausted {
        /// The last attempt's status (for a per-attempt timeout DEADLINE_EXCEEDED
        /// over gRPC, [`StatusCode::TimedOut`] over HTTP).
        status: ExportStatus,
        /// Attempts made.
        attempts: u32,
        /// Time from the first attempt to giving up.
        elapsed: Duration,
    },
    /// The TLS connection to the collector failed in a way retrying cannot
    /// fix (the collector requires a client certificate none is configured
    /// for, or its certificate is not trusted here). The collector answered
    /// no request. Its items are lost.
    ///
    /// Its message and its [`source`](Error::source) are the [`TlsError`]'s:
    /// what failed, the variables and builder method to set, then rustls's
    /// reason.
    Tls {
        /// What failed, and what to configure.
        error: TlsError,
        /// Attempts made, the last included.
        attempts: u32,
    },
    /// The collector answered with success, but with a body that is not an
    /// export response. Its items are counted as failed: nothing says they
    /// were kept.
    UndecodableResponse {
        /// What the decoder said.
        reason: String,
    },
    /// The collector accepted a request but refused some of its items (OTLP
    /// partial success). They are not retried.
    PartialSuccess {
        /// Items refused.
        rejected: u64,
        /// The collector's explanation.
        message: String,
    },
    /// An item could not be encoded (too large to fit any request, or
    /// malformed); the rest of its batch was sent. When a batch has several,
    /// this is the first of its kind, and the drain error counts them all.
    Encode(EncodeError),
}

impl ExportError {
    /// The status code, for the failures that have one.
    pub fn code(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => Some(status.code()),
            Self::Tls { .. } | Self::UndecodableResponse { .. } | Self::PartialSuccess { .. } | Self::Encode(_) => None,
        }
    }

    pub(crate) fn kind(&self) -> DrainErrorKind {
        match self {
            Self::Refused { .. } | Self::Tls { .. } | Self::UndecodableResponse { .. } => DrainErrorKind::Permanent,
            Self::RetriesExhausted { status, .. }
                if matches!(status.code(), StatusCode::Grpc(GrpcCode::DeadlineExceeded) | StatusCode::TimedOut) =>
            {
                DrainErrorKind::TimedOut
            }
            Self::RetriesExhausted { .. } => DrainErrorKind::RetriesExhausted,
            Self::PartialSuccess { .. } => DrainErrorKind::Rejected,
            Self::Encode(EncodeError::TooLarge { .. }) => DrainErrorKind::TooLarge,
            Self::Encode(_) => DrainErrorKind::Invalid,
        }
    }

    pub(crate) fn into_drain_error(self, items: u64) -> DrainError {
        DrainError::new(self.kind(), self).with_items(items)
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, attempts } => write!(
                f,
                "collector refused the request with {} after {attempts} attempt(s): {}",
                status.code(),
                status.message()
            ),
            Self::RetriesExhausted { status, attempts, elapsed } => write!(
                f,
                "gave up after {attempts} attempts in {elapsed:.1?}; last status {}: {}",
                status.code(),
                status.message()
            ),
            // What TLS error says is the whole message: transparent.
            Self::Tls { error, .. } => fmt::Display::fmt(error, f),
            Self::UndecodableResponse { reason } => {
                write!(f, "the collector answered with success but an undecodable body: {reason}")
            }
            Self::PartialSuccess { rejected, message } => {
                write!(f, "collector rejected {rejected} item(s): {message}")
            }
            // The reason is the source, not repeated here.
            Self::Encode(_) => f.write_str("an item was not sent"),
        }
    }
}

impl Error for ExportError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // The status's code and message are already in this error's
            // text: its cause is what the transport reported under it.
            Self::Refused { status, .. } | Self::RetriesExhausted { status, .. } => status.source(),
            Self::Tls { error, .. } => error.source(),
            Self::Encode(e) => Some(e),
            Self::UndecodableResponse { .. } | Self::PartialSuccess { .. } => None,
        }
    }
}
