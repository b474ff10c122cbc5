//! How the receiver answers one request ([`Reply`]), on either listener, and
//! the two tables that carry a reply scripted in one protocol's terms over
//! to the other.

use std::time::{Duration, SystemTime};

use crate::deliver::GrpcCode;

/// How the receiver answers one request, on either listener.
///
/// Most replies mean the same on gRPC and OTLP/HTTP. A reply written in one
/// protocol's terms is carried over to the other by a fixed table:
///
/// - [`Status`](Self::Status) and [`Throttle`](Self::Throttle) on HTTP: the
///   HTTP status that `google/rpc/code.proto` pairs with the code (see
///   [`http_status_for`]), with a protobuf `google.rpc.Status` body holding
///   the code and message; a throttle adds `Retry-After` with its delay
///   rounded up to whole seconds. The retry rules of the two protocols
///   differ, so a mapped reply can be retryable on one and not the other:
///   ABORTED (retryable on gRPC) becomes 409 (permanent on HTTP), and
///   RESOURCE_EXHAUSTED without `RetryInfo` (permanent on gRPC) becomes 429
///   (retryable on HTTP).
/// - [`Http`](Self::Http) on gRPC: the code that gRPC's
///   `http-grpc-status-mapping.md` gives the HTTP status (see
///   [`grpc_code_for`]; a 2xx is OK), with the body's message, and a
///   `google.rpc.RetryInfo` when it has a `Retry-After` that parses.
/// - [`CloseMidResponse`](Self::CloseMidResponse) on gRPC: the server under
///   the gRPC side cannot cut a connection from inside a service, so it
///   answers UNAVAILABLE, which is what a gRPC client reports for a
///   connection that broke.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Accept everything.
    Ok,
    /// Accept the request but refuse `rejected` of its items (OTLP partial
    /// success), with the collector's `message`.
    PartialSuccess {
        /// Items refused.
        rejected: i64,
        /// The collector's explanation.
        message: String,
    },
    /// Fail with a gRPC status (on HTTP, its paired HTTP status).
    Status {
        /// The gRPC status code.
        code: GrpcCode,
        /// The status message.
        message: String,
    },
    /// Fail with a gRPC status carrying `google.rpc.RetryInfo` with `delay`
    /// (on HTTP, its paired HTTP status with `Retry-After`).
    Throttle {
        /// The gRPC status code (RESOURCE_EXHAUSTED or UNAVAILABLE, usually).
        code: GrpcCode,
        /// The retry delay the client must wait at least.
        delay: Duration,
    },
    /// Answer with this HTTP response (on gRPC, its paired code).
    Http(HttpReply),
    /// Send the response's head and the first half of its body, then close
    /// the connection (on gRPC, UNAVAILABLE). The request's items count as
    /// failed.
    CloseMidResponse,
    /// Wait `delay`, then answer with `then`.
    Delayed {
        /// How long to wait before answering.
        delay: Duration,
        /// The answer after the wait.
        then: Box<Reply>,
    },
    /// Never answer, on a connection kept open (the client's per-attempt
    /// timeout must fire).
    Hang,
}

impl Reply {
    /// A gRPC error with `code` and a generic message.
    pub fn status(code: GrpcCode) -> Self {
        Self::Status { code, message: format!("scripted {code:?}") }
    }

    /// `then`, answered after `delay`.
    pub fn delayed(delay: Duration, then: Reply) -> Self {
        Self::Delayed { delay, then: Box::new(then) }
    }

    /// An HTTP answer with `status` and the default body of
    /// [`HttpReply::new`].
    ///
    /// # Panics
    ///
    /// When `status` is not in `200..=599`.
    pub fn http(status: u16) -> Self {
        Self::Http(HttpReply::new(status))
    }
}

/// An HTTP answer: a status, an optional `Retry-After` and a body.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct HttpReply {
    /// The HTTP status, in `200..=599`.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<RetryAfter>,
    /// The body.
    pub body: HttpBody,
}

impl HttpReply {
    /// An answer with `status`. Its body is empty for a 2xx (an empty body is
    /// a valid `Export*ServiceResponse` with no partial success), and
    /// otherwise a `google.rpc.Status` with the message
    /// `scripted HTTP <status>`.
    ///
    /// # Panics
    ///
    /// When `status` is not in `200..=599`.
    pub fn new(status: u16) -> Self {
        assert!((200..=599).contains(&status), "a scripted HTTP status must be in 200..=599, not {status}");
        let body = if (200..300).contains(&status) {
            HttpBody::Empty
        } else {
            HttpBody::Status { message: format!("scripted HTTP {status}") }
        };
        Self { status, retry_after: None, body }
    }

    /// Adds a `Retry-After` header.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: RetryAfter) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// A `google.rpc.Status` body with `message` (and the gRPC code paired
    /// with the status).
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.body = HttpBody::Status { message: message.into() };
        self
    }

    /// A body of any bytes, sent with this `Content-Type`: an HTML error
    /// page from a proxy, say.
    #[must_use]
    pub fn with_raw_body(mut self, content_type: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = HttpBody::Raw { content_type: content_type.into(), bytes: bytes.into() };
        self
    }

    /// No body at all.
    #[must_use]
    pub fn with_empty_body(mut self) -> Self {
        self.body = HttpBody::Empty;
        self
    }

    /// Whether the status is a 2xx: the request's items count as acked.
    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The body of an [`HttpReply`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpBody {
    /// No body (`Content-Length: 0`).
    Empty,
    /// A protobuf `google.rpc.Status` (`Content-Type:
    /// application/x-protobuf`) with the gRPC code paired with the HTTP
    /// status and this message, as the OTLP specification says a failure's
    /// body may be.
    Status {
        /// The status message.
        message: String,
    },
    /// These bytes, with this `Content-Type`.
    Raw {
        /// The `Content-Type` header.
        content_type: String,
        /// The body.
        bytes: Vec<u8>,
    },
}

/// A `Retry-After` header value.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// Delay-seconds: `Retry-After: 1`.
    Seconds(u64),
    /// An HTTP-date this long after the moment the answer is sent, written
    /// when it is sent (`Retry-After: Tue, 01 Dec 2026 11:30:02 GMT`). An
    /// HTTP-date has whole seconds: the date is rounded down, so the client
    /// learns a delay between `delay - 1s` and `delay`.
    DateIn(Duration),
    /// This text, verbatim (a malformed value, say).
    Text(String),
}

impl RetryAfter {
    /// The header's text, for an answer sent at `now`.
    pub(super) fn header_value(&self, now: SystemTime) -> String {
        match self {
            Self::Seconds(seconds) => seconds.to_string(),
            Self::DateIn(delay) => httpdate::fmt_http_date(now + *delay),
            Self::Text(text) => text.clone(),
        }
    }

    /// The delay it asks for, seen at `now`: `None` for text that is neither
    /// delay-seconds nor an HTTP-date.
    pub(super) fn delay(&self, now: SystemTime) -> Option<Duration> {
        match self {
            Self::Seconds(seconds) => Some(Duration::from_secs(*seconds)),
            Self::DateIn(delay) => Some(*delay),
            Self::Text(text) => {
                let text = text.trim();
                if let Ok(seconds) = text.parse::<u64>() {
                    return Some(Duration::from_secs(seconds));
                }
                let date = httpdate::parse_http_date(text).ok()?;
                Some(date.duration_since(now).unwrap_or(Duration::ZERO))
            }
        }
    }
}

/// The HTTP status that `google/rpc/code.proto` pairs with a gRPC code: how
/// a [`Reply::Status`] or [`Reply::Throttle`] is answered on the HTTP
/// listener.
///
/// | gRPC code | HTTP |
/// |---|---|
/// | OK | 200 |
/// | CANCELLED | 499 |
/// | UNKNOWN, INTERNAL, DATA_LOSS | 500 |
/// | INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE | 400 |
/// | DEADLINE_EXCEEDED | 504 |
/// | NOT_FOUND | 404 |
/// | ALREADY_EXISTS, ABORTED | 409 |
/// | PERMISSION_DENIED | 403 |
/// | RESOURCE_EXHAUSTED | 429 |
/// | UNIMPLEMENTED | 501 |
/// | UNAVAILABLE | 503 |
/// | UNAUTHENTICATED | 401 |
pub fn http_status_for(code: GrpcCode) -> u16 {
    match code {
        GrpcCode::Ok => 200,
        GrpcCode::Cancelled => 499,
        GrpcCode::Unknown | GrpcCode::Internal | GrpcCode::DataLoss => 500,
        GrpcCode::InvalidArgument | GrpcCode::FailedPrecondition | GrpcCode::OutOfRange => 400,
        GrpcCode::DeadlineExceeded => 504,
        GrpcCode::NotFound => 404,
        GrpcCode::AlreadyExists | GrpcCode::Aborted => 409,
        GrpcCode::PermissionDenied => 403,
        GrpcCode::ResourceExhausted => 429,
        GrpcCode::Unimplemented => 501,
        GrpcCode::Unavailable => 503,
        GrpcCode::Unauthenticated => 401,
    }
}

/// The gRPC code that gRPC's `doc/http-grpc-status-mapping.md` gives an HTTP
/// status: how a [`Reply::Http`] is answered on the gRPC listener.
///
/// | HTTP | gRPC code |
/// |---|---|
/// | 2xx | OK |
/// | 400 | INTERNAL |
/// | 401 | UNAUTHENTICATED |
/// | 403 | PERMISSION_DENIED |
/// | 404 | UNIMPLEMENTED |
/// | 429, 502, 503, 504 | UNAVAILABLE |
/// | any other | UNKNOWN |
///
/// The retryable statuses of OTLP/HTTP (429, 502, 503, 504) land on a
/// retryable code, and every other status on a permanent one.
pub fn grpc_code_for(status: u16) -> GrpcCode {
    match status {
        200..=299 => GrpcCode::Ok,
        400 => GrpcCode::Internal,
        401 => GrpcCode::Unauthenticated,
        403 => GrpcCode::PermissionDenied,
        404 => GrpcCode::Unimplemented,
        429 | 502 | 503 | 504 => GrpcCode::Unavailable,
        _ => GrpcCode::Unknown,
    }
}

/// A gRPC code's number in `grpc/status.proto`.
pub(super) fn code_number(code: GrpcCode) -> i32 {
    match code {
        GrpcCode::Ok => 0,
        GrpcCode::Cancelled => 1,
        GrpcCode::Unknown => 2,
        GrpcCode::InvalidArgument => 3,
        GrpcCode::DeadlineExceeded => 4,
        GrpcCode::NotFound => 5,
        GrpcCode::AlreadyExists => 6,
        GrpcCode::PermissionDenied => 7,
        GrpcCode::ResourceExhausted => 8,
        GrpcCode::FailedPrecondition => 9,
        GrpcCode::Aborted => 10,
        GrpcCode::OutOfRange => 11,
        GrpcCode::Unimplemented => 12,
        GrpcCode::Internal => 13,
        GrpcCode::Unavailable => 14,
        GrpcCode::DataLoss => 15,
        GrpcCode::Unauthenticated => 16,
    }
}

/// Every gRPC code, in the order of their numbers.
#[cfg(test)]
pub(super) const ALL_CODES: [GrpcCode; 17] = [
    GrpcCode::Ok,
    GrpcCode::Cancelled,
    GrpcCode::Unknown,
    GrpcCode::InvalidArgument,
    GrpcCode::DeadlineExceeded,
    GrpcCode::NotFound,
    GrpcCode::AlreadyExists,
    GrpcCode::PermissionDenied,
    GrpcCode::ResourceExhausted,
    GrpcCode::FailedPrecondition,
    GrpcCode::Aborted,
    GrpcCode::OutOfRange,
    GrpcCode::Unimplemented,
    GrpcCode::Internal,
    GrpcCode::Unavailable,
    GrpcCode::DataLoss,
    GrpcCode::Unauthenticated,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_numbers_follow_status_proto() {
        for (number, code) in ALL_CODES.iter().enumerate() {
            assert_eq!(code_number(*code), number as i32, "{code:?}");
        }
    }

    #[test]
    fn grpc_codes_map_to_the_http_status_code_proto_pairs_them_with() {
        let table: Vec<u16> = ALL_CODES.iter().map(|c| http_status_for(*c)).collect();
        assert_eq!(table, [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]);
    }

    #[test]
    fn http_statuses_map_to_the_grpc_code_of_the_grpc_mapping_document() {
        let cases = [
            (200, GrpcCode::Ok),
            (204, GrpcCode::Ok),
            (400, GrpcCode::Internal),
            (401, GrpcCode::Unauthenticated),
            (403, GrpcCode::PermissionDenied),
            (404, GrpcCode::Unimplemented),
            (413, GrpcCode::Unknown),
            (429, GrpcCode::Unavailable),
            (500, GrpcCode::Unknown),
            (502, GrpcCode::Unavailable),
            (503, GrpcCode::Unavailable),
            (504, GrpcCode::Unavailable),
        ];
        for (status, code) in cases {
            assert_eq!(grpc_code_for(status), code, "HTTP {status}");
        }
    }

    #[test]
    fn retryable_http_statuses_and_only_they_land_on_unavailable() {
        for status in 200..=599 {
            let retryable = matches!(status, 429 | 502 | 503 | 504);
            assert_eq!(grpc_code_for(status) == GrpcCode::Unavailable, retryable, "HTTP {status}");
        }
    }

    #[test]
    fn retry_after_values_render_and_parse_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        assert_eq!(RetryAfter::Seconds(1).header_value(now), "1");
        let date = RetryAfter::DateIn(Duration::from_secs(2)).header_value(now);
        assert_eq!(httpdate::parse_http_date(&date).unwrap(), now + Duration::from_secs(2));
        assert_eq!(RetryAfter::Text(date).delay(now), Some(Duration::from_secs(2)));
        assert_eq!(RetryAfter::Text(" 7 ".into()).delay(now), Some(Duration::from_secs(7)));
        assert_eq!(RetryAfter::Text("soon".into()).delay(now), None);
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(RetryAfter::Text(past).delay(now), Some(Duration::ZERO));
    }

    #[test]
    fn default_http_bodies_are_empty_for_success_and_a_status_otherwise() {
        assert_eq!(HttpReply::new(200).body, HttpBody::Empty);
        assert_eq!(HttpReply::new(503).body, HttpBody::Status { message: "scripted HTTP 503".into() });
        assert!(HttpReply::new(204).is_success() && !HttpReply::new(400).is_success());
    }

    #[test]
    #[should_panic(expected = "not 99")]
    fn an_http_status_outside_the_range_is_refused_when_scripted() {
        let _ = HttpReply::new(99);
    }
}
