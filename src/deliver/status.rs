//! A failed attempt's status in this crate's own terms, whatever the
//! transport: a gRPC code or an HTTP status, the collector's message, and
//! the transport's error under it. No transport library's type shows here.

use std::error::Error;
use std::fmt;

/// A gRPC status code (the numbering of `grpc/status.proto`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    /// 0: not an error.
    Ok,
    /// 1: cancelled, typically by the caller or the transport.
    Cancelled,
    /// 2: unknown error.
    Unknown,
    /// 3: the request is invalid.
    InvalidArgument,
    /// 4: the deadline passed before the answer came.
    DeadlineExceeded,
    /// 5: not found.
    NotFound,
    /// 6: already exists.
    AlreadyExists,
    /// 7: the caller may not do this.
    PermissionDenied,
    /// 8: a resource (a quota, a size limit) is exhausted.
    ResourceExhausted,
    /// 9: the system is not in a state for this.
    FailedPrecondition,
    /// 10: aborted, typically by a concurrency conflict.
    Aborted,
    /// 11: out of range.
    OutOfRange,
    /// 12: not implemented or not supported.
    Unimplemented,
    /// 13: internal error.
    Internal,
    /// 14: the service is unavailable now.
    Unavailable,
    /// 15: data was lost.
    DataLoss,
    /// 16: the caller is not authenticated.
    Unauthenticated,
}

/// What a failed attempt's answer was, in its transport's terms.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCode {
    /// A gRPC status: sent by the collector, or made on this side by the
    /// gRPC transport for a failure of its own (a connection refused, a
    /// timeout).
    Grpc(GrpcCode),
    /// An HTTP status the collector answered with (OTLP/HTTP).
    Http(u16),
    /// No answer came (OTLP/HTTP): the connection could not be made, or it
    /// was reset or closed before the whole response arrived. Retried, as
    /// the request may not have arrived, unless the TLS connection failed
    /// over a certificate (the collector refused this side's). The
    /// transport's error is the status's [`source`](Error::source).
    Unreachable,
    /// No whole answer within the attempt's timeout (OTLP/HTTP): the
    /// connection, the request and the response together took too long.
    /// Retried within the retry budget.
    TimedOut,
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grpc(code) => write!(f, "{code:?}"),
            Self::Http(status) => write!(f, "HTTP {status}"),
            Self::Unreachable => f.write_str("no HTTP answer"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

/// One failed attempt's status: its code, the message that came with it,
/// and, for a failure the transport made on this side, its error as the
/// [`source`](Error::source).
#[derive(Debug)]
pub struct ExportStatus {
    code: StatusCode,
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl ExportStatus {
    /// A status of `code` with `message`.
    pub(crate) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), source: None }
    }

    /// Records the transport's error under this status.
    pub(crate) fn with_source(mut self, source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The status code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The HTTP status, for an answer over OTLP/HTTP.
    pub fn http_status(&self) -> Option<u16> {
        match self.code {
            StatusCode::Http(status) => Some(status),
            _ => None,
        }
    }

    /// The gRPC code, for a gRPC status.
    pub fn grpc_code(&self) -> Option<GrpcCode> {
        match self.code {
            StatusCode::Grpc(code) => Some(code),
            StatusCode::Http(_) | StatusCode::Unreachable | StatusCode::TimedOut => None,
        }
    }

    /// The message that came with it: the collector's, or the transport's.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Error for ExportStatus {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
