//! Which failed OTLP/HTTP exports are tried again: the OTLP specification's
//! rule from an HTTP status (and the `Retry-After` the server sent with it)
//! to a [`RetryDecision`], what the error body says, and what the transport
//! under hyper says of its own failures (a refused or reset connection, a
//! response cut short, a TLS certificate refused). Pure, so tested without a
//! network.

use std::error::Error;
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::HeaderMap;
use prost::Message as _;

use crate::config::ProxyWantsCredentials;
use crate::deliver::{ExportStatus, Failure, RetryDecision, RpcStatus, StatusCode};
use crate::tls::{Refusal, TlsError};

/// Classifies a failed export by its HTTP status and the delay the server
/// asked for in `Retry-After`, per the OTLP/HTTP specification:
///
/// | status | without `Retry-After` | with `Retry-After` |
/// |---|---|---|
/// | 429, 502, 503, 504 | `Retry` | `Throttle(delay)` |
/// | every other status | `Permanent` | `Permanent` |
///
/// A success (2xx) is not a failure and never reaches here; should one do,
/// it is not retried.
pub(crate) fn classify(status: u16, retry_after: Option<Duration>) -> RetryDecision {
    match status {
        429 | 502 | 503 | 504 => retry_after.map_or(RetryDecision::Retry, RetryDecision::Throttle),
        _ => RetryDecision::Permanent,
    }
}

/// The wait a `Retry-After` value asks for, in either of its forms: a number
/// of seconds (`120`), or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`),
/// which is read against `now` (a date already past asks for no wait).
/// `None` for a value that is neither: the policy's backoff then applies.
/// A number of seconds too large to hold saturates (and the retry budget
/// then refuses it).
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-success answer as a failure: its status, the message its body
/// holds, and the decision [`classify`] makes (with `Retry-After` read
/// against `now`).
pub(crate) fn refusal(status: http::StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let delay = headers.get(RETRY_AFTER).and_then(|value| value.to_str().ok()).and_then(|v| retry_after(v, now));
    let content_type = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
    let message = body_message(status, content_type, body);
    let status_code = status.as_u16();
    Failure::Status {
        status: ExportStatus::new(StatusCode::Http(status_code), message),
        decision: classify(status_code, delay),
    }
}

/// How much of a body that is not a `google.rpc.Status` is quoted.
const QUOTED_BYTES: usize = 200;

/// What an error response's body says, for the error's message:
///
/// - a protobuf `google.rpc.Status` (what the specification asks servers to
///   send): its message, or the status's reason phrase when it has none;
/// - no body: the reason phrase (`Service Unavailable`);
/// - anything else (a proxy's HTML or text, JSON): the reason phrase and the
///   fact that the body is not a `google.rpc.Status`, with the start of the
///   body if it is text, or its size if it is not.
///
/// Never panics, whatever the bytes.
pub(crate) fn body_message(status: http::StatusCode, content_type: Option<&str>, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    if body.is_empty() {
        return reason.to_owned();
    }
    // A body that says it is something else is not read as protobuf: text
    // can happen to parse as one.
    let maybe_protobuf = content_type.is_none_or(|t| {
        let media = t.split(';').next().unwrap_or("").trim();
        media.eq_ignore_ascii_case("application/x-protobuf") || media.eq_ignore_ascii_case("application/protobuf")
    });
    if maybe_protobuf {
        if let Ok(status) = RpcStatus::decode(body) {
            let message = String::from_utf8_lossy(&status.message).trim().to_owned();
            return if message.is_empty() { reason.to_owned() } else { message };
        }
    }
    let separator = if reason.is_empty() { "" } else { " " };
    match quoted_text(body) {
        Some(text) => format!("{reason}{separator}(the body is not a protobuf google.rpc.Status; it reads {text:?})"),
        None => format!("{reason}{separator}(a body of {} bytes that is not a protobuf google.rpc.Status)", body.len()),
    }
}

/// The start of `body` as one line of text, or `None` when it is not text.
fn quoted_text(body: &[u8]) -> Option<String> {
    let prefix = &body[..body.len().min(QUOTED_BYTES)];
    let text = match std::str::from_utf8(prefix) {
        Ok(text) => text,
        // Cut inside a character: the whole characters before the cut.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&prefix[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > prefix.len() {
        line.push_str("...");
    }
    Some(line)
}

/// An attempt that got no whole answer, from the error hyper or the
/// connector reported:
///
/// - this crate's [`TlsError`] anywhere in the chain, or a refusal the
///   connections recorded (a collector that ended a TLS 1.3 connection for
///   want of a client certificate): [`Failure::Tls`], permanent;
/// - a proxy's 407 to a tunnel's `CONNECT` ([`ProxyWantsCredentials`]):
///   permanent, as a forwarding proxy's 407 answer is;
/// - a certificate error of rustls (the collector refused ours after the
///   handshake): permanent;
/// - every other failure (refused, reset, closed mid-response, DNS): retried,
///   as the request may not have arrived.
pub(crate) fn transport_failure(error: Box<dyn Error + Send + Sync>, refusal: Option<&Refusal>) -> Failure {
    if let Some(tls) = find_in_chain::<TlsError>(&*error) {
        return Failure::Tls(tls.clone());
    }
    if let Some(refused) = refusal.and_then(Refusal::get) {
        return Failure::Tls(refused);
    }
    if let Some(refused) = find_in_chain::<ProxyWantsCredentials>(&*error) {
        return proxy_wants_credentials(refused);
    }
    let connecting = find_in_chain::<hyper_util::client::legacy::Error>(&*error).is_some_and(|e| e.is_connect());
    let (decision, message) = if certificate_failure(&*error) {
        (RetryDecision::Permanent, "the TLS connection failed over a certificate")
    } else if connecting {
        (RetryDecision::Retry, "cannot connect")
    } else {
        (RetryDecision::Retry, "the connection ended before the whole answer")
    };
    Failure::Status { status: ExportStatus::new(StatusCode::Unreachable, message).with_source(Cause(error)), decision }
}

/// The transport's error under a status: its chain as it came, less
/// hyper-util's own wrapper, which says only its kind (`client error
/// (Connect)`), already said in the status's message.
#[derive(Debug)]
struct Cause(Box<dyn Error + Send + Sync>);

impl Cause {
    /// The first error of the chain that is not hyper-util's wrapper.
    fn first(&self) -> &(dyn Error + 'static) {
        let mut error: &(dyn Error + 'static) = &*self.0;
        while let (true, Some(source)) = (error.is::<hyper_util::client::legacy::Error>(), error.source()) {
            error = source;
        }
        error
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.first(), f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.first().source()
    }
}

/// A proxy's 407, to a tunnel's `CONNECT` or to a forwarded request: the
/// proxy's answer, not the collector's, and permanent (the credentials will
/// not change by retrying).
pub(crate) fn proxy_wants_credentials(refused: &ProxyWantsCredentials) -> Failure {
    Failure::Status {
        status: ExportStatus::new(StatusCode::Http(407), refused.to_string()),
        decision: RetryDecision::Permanent,
    }
}

/// An attempt that got no whole answer within `timeout`.
pub(crate) fn timed_out(timeout: Duration, per_attempt: Duration) -> Failure {
    let message = if timeout < per_attempt {
        format!("no answer within the {timeout:?} left of the retry budget")
    } else {
        format!("no answer within the {timeout:?} per-attempt timeout")
    };
    Failure::Status { status: ExportStatus::new(StatusCode::TimedOut, message), decision: RetryDecision::Retry }
}

/// The errors of a chain, each looked at itself and, for an `io::Error`,
/// through the error it wraps (whose `source` it skips).
fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&e| e.source()).flat_map(|e| {
        let wrapped = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|inner| inner as &dyn Error);
        [Some(e), wrapped].into_iter().flatten()
    })
}

fn find_in_chain<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    chain(error).find_map(|e| e.downcast_ref::<T>())
}

/// Whether a rustls certificate error is in the chain: the collector's
/// certificate refused here, or ours refused (or missing) there, which the
/// collector says with a fatal alert. hyper keeps the I/O error itself, so
/// the rustls error is still typed.
fn certificate_failure(error: &(dyn Error + 'static)) -> bool {
    use tokio_rustls::rustls::Error as RustlsError;
    find_in_chain::<RustlsError>(error).is_some_and(|e| {
        matches!(
            e,
            RustlsError::InvalidCertificate(_) | RustlsError::AlertReceived(_) | RustlsError::NoCertificatesPresented
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn rpc_status(message: &str) -> Vec<u8> {
        RpcStatus { code: 14, message: message.as_bytes().to_vec(), details: Vec::new() }.encode_to_vec()
    }

    // --- classification: one assertion per status of the specification ---

    #[test]
    fn retryable_statuses_are_exactly_429_502_503_504() {
        use RetryDecision::{Permanent, Retry, Throttle};
        for status in [429, 502, 503, 504] {
            assert_eq!(classify(status, None), Retry, "{status}");
            assert_eq!(classify(status, Some(2 * SECOND)), Throttle(2 * SECOND), "{status}");
        }
        for status in [400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 431, 500, 501, 505, 511, 599, 300, 100] {
            assert_eq!(classify(status, None), Permanent, "{status}");
            assert_eq!(classify(status, Some(SECOND)), Permanent, "{status}: Retry-After does not make it retryable");
        }
    }

    proptest! {
        #[test]
        fn every_status_but_the_four_is_permanent(status in 100u16..1000, delay in proptest::option::of(0u64..100)) {
            let decision = classify(status, delay.map(Duration::from_secs));
            let retryable = matches!(status, 429 | 502 | 503 | 504);
            prop_assert_eq!(decision != RetryDecision::Permanent, retryable);
        }

        #[test]
        fn any_body_gives_a_message_and_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..400),
            content_type in proptest::option::of("[ -~]{0,30}"),
        ) {
            let message = body_message(http::StatusCode::BAD_REQUEST, content_type.as_deref(), &body);
            prop_assert!(message.len() <= 3 * QUOTED_BYTES + 200, "{}", message);
        }

        #[test]
        fn any_retry_after_value_never_panics(value in "\\PC{0,40}") {
            let _ = retry_after(&value, SystemTime::now());
        }
    }

    // --- Retry-After, both forms ---

    #[test]
    fn retry_after_reads_delay_seconds() {
        let now = SystemTime::now();
        assert_eq!(retry_after("1", now), Some(SECOND));
        assert_eq!(retry_after(" 120 ", now), Some(120 * SECOND));
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)), "saturates");
        assert_eq!(retry_after("-1", now), None);
        assert_eq!(retry_after("1.5", now), None);
        assert_eq!(retry_after("", now), None);
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_reads_an_http_date_against_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(30 * SECOND));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO), "past: no wait");
        // The two obsolete forms HTTP/1.1 still requires a recipient to read.
        assert_eq!(retry_after("Wednesday, 21-Oct-15 07:28:05 GMT", now), Some(5 * SECOND));
        assert_eq!(retry_after("Wed Oct 21 07:28:10 2015", now), Some(10 * SECOND));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:30", now), None, "not a date");
    }

    #[test]
    fn a_refusal_carries_the_status_the_body_message_and_the_servers_delay() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:02 GMT"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        let Failure::Status { status, decision } =
            refusal(http::StatusCode::TOO_MANY_REQUESTS, &headers, &rpc_status("slow down"), now)
        else {
            panic!("not a status")
        };
        assert_eq!(decision, RetryDecision::Throttle(2 * SECOND));
        assert_eq!((status.code(), status.message()), (StatusCode::Http(429), "slow down"));
        assert_eq!(status.to_string(), "HTTP 429: slow down");

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        let Failure::Status { status, decision } = refusal(http::StatusCode::SERVICE_UNAVAILABLE, &headers, b"", now)
        else {
            panic!("not a status")
        };
        assert_eq!(decision, RetryDecision::Throttle(SECOND));
        assert_eq!(status.to_string(), "HTTP 503: Service Unavailable");

        let Failure::Status { status, decision } =
            refusal(http::StatusCode::PAYLOAD_TOO_LARGE, &HeaderMap::new(), &rpc_status("too big: 9 MiB"), now)
        else {
            panic!("not a status")
        };
        assert_eq!(decision, RetryDecision::Permanent);
        assert_eq!(status.to_string(), "HTTP 413: too big: 9 MiB");
        assert_eq!(status.http_status(), Some(413));
    }

    // --- the body's message ---

    #[test]
    fn a_google_rpc_status_body_gives_its_message() {
        let bad = http::StatusCode::BAD_REQUEST;
        assert_eq!(body_message(bad, Some("application/x-protobuf"), &rpc_status("no resource")), "no resource");
        assert_eq!(body_message(bad, None, &rpc_status("no content type")), "no content type");
        assert_eq!(body_message(bad, Some("application/protobuf; x=1"), &rpc_status("m")), "m");
        assert_eq!(body_message(bad, None, &rpc_status("")), "Bad Request", "a Status without a message");
        assert_eq!(body_message(bad, None, b""), "Bad Request");
        let invalid_utf8 = RpcStatus { code: 3, message: b"caf\xe9".to_vec(), details: Vec::new() }.encode_to_vec();
        assert_eq!(body_message(bad, None, &invalid_utf8), "caf\u{fffd}");
    }

    #[test]
    fn a_body_that_is_not_protobuf_is_said_to_be_so_and_quoted_when_text() {
        let unavailable = http::StatusCode::SERVICE_UNAVAILABLE;
        let html = b"<html>\r\n<body>upstream   connect error</body>\r\n</html>";
        assert_eq!(
            body_message(unavailable, Some("text/html"), html),
            "Service Unavailable (the body is not a protobuf google.rpc.Status; it reads \
             \"<html> <body>upstream connect error</body> </html>\")"
        );
        // Declared protobuf, but it is not.
        let message = body_message(unavailable, Some("application/x-protobuf"), b"\xff\xff\xff\x01garbage");
        assert_eq!(message, "Service Unavailable (a body of 11 bytes that is not a protobuf google.rpc.Status)");
        // Text that would parse as protobuf is not read as one when it says it is text.
        let json = br#"{"code":3,"message":"bad"}"#;
        let message = body_message(http::StatusCode::BAD_REQUEST, Some("application/json"), json);
        assert!(message.contains(r#"it reads "{\"code\":3,\"message\":\"bad\"}""#), "{message}");
        // A long body is cut, on a character boundary.
        let long = "é".repeat(300);
        let message = body_message(unavailable, Some("text/plain"), long.as_bytes());
        assert!(message.ends_with("...\")") && message.matches('é').count() == QUOTED_BYTES / 2, "{message}");
    }

    // --- what the transport says of its own failures ---

    fn decision_of(failure: &Failure) -> RetryDecision {
        match failure {
            Failure::Status { decision, .. } => *decision,
            Failure::Tls(_) => RetryDecision::Permanent,
        }
    }

    #[derive(Debug)]
    struct Wrapper(&'static str, Box<dyn Error + Send + Sync>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.1)
        }
    }

    #[test]
    fn a_reset_connection_is_retried_and_says_why() {
        let reset = Wrapper("connection error", Box::new(io::Error::from(io::ErrorKind::ConnectionReset)));
        let failure = transport_failure(Box::new(reset), None);
        let Failure::Status { status, decision } = &failure else { panic!("not a status") };
        assert_eq!(*decision, RetryDecision::Retry);
        assert_eq!(status.code(), StatusCode::Unreachable);
        assert_eq!(status.message(), "the connection ended before the whole answer");
        let source = status.source().expect("the transport's error stays reachable");
        assert_eq!(source.to_string(), "connection error");
        let io = source.source().and_then(|e| e.downcast_ref::<io::Error>()).expect("typed, under it");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(
            failure.to_string(),
            "no HTTP answer: the connection ended before the whole answer (connection reset)"
        );
    }

    #[test]
    fn a_tls_error_of_the_connector_is_permanent_and_reported_as_tls() {
        let tls = TlsError::client_certificate_required(io::Error::from(io::ErrorKind::UnexpectedEof));
        // As the connector returns it, and as the connection's I/O error wraps it.
        for error in [
            Box::new(Wrapper("client error (Connect)", Box::new(tls.clone()))) as Box<dyn Error + Send + Sync>,
            Box::new(Wrapper("connection error", Box::new(io::Error::new(io::ErrorKind::UnexpectedEof, tls.clone())))),
        ] {
            let Failure::Tls(found) = transport_failure(error, None) else { panic!("not TLS") };
            assert_eq!(found.kind(), crate::tls::TlsErrorKind::ClientCertificateRequired);
        }
        // Recorded by the connections, while the error itself says only that the connection closed.
        let refusal = Refusal::default();
        refusal.set_for_test(tls);
        let closed = Box::new(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(transport_failure(closed, Some(&refusal)), Failure::Tls(_)));
    }

    #[test]
    fn a_tunnels_407_is_permanent_and_names_the_proxy() {
        let refused = ProxyWantsCredentials::new("http://proxy:3128/ (HTTPS_PROXY)");
        // As the connector returns it, under hyper-util's wrapper.
        let error = Box::new(Wrapper("client error (Connect)", Box::new(refused)));
        let Failure::Status { status, decision } = transport_failure(error, None) else { panic!("not a status") };
        assert_eq!((status.code(), decision), (StatusCode::Http(407), RetryDecision::Permanent));
        let message = status.message();
        assert!(message.contains("through the proxy http://proxy:3128/ (HTTPS_PROXY)"), "{message}");
        assert!(message.contains("credentials"), "{message}");
    }

    #[test]
    fn a_certificate_refused_by_rustls_is_permanent() {
        use tokio_rustls::rustls::{AlertDescription, CertificateError, Error as RustlsError};
        for rustls in [
            RustlsError::InvalidCertificate(CertificateError::UnknownIssuer),
            RustlsError::AlertReceived(AlertDescription::BadCertificate),
            RustlsError::NoCertificatesPresented,
        ] {
            let error = Wrapper("connection error", Box::new(io::Error::new(io::ErrorKind::InvalidData, rustls)));
            assert_eq!(decision_of(&transport_failure(Box::new(error), None)), RetryDecision::Permanent);
        }
        let other = io::Error::new(io::ErrorKind::InvalidData, RustlsError::General("internal".into()));
        assert_eq!(decision_of(&transport_failure(Box::new(other), None)), RetryDecision::Retry);
    }

    #[test]
    fn a_timeout_is_retried_and_names_the_limit() {
        let Failure::Status { status, decision } = timed_out(SECOND, SECOND) else { panic!("not a status") };
        assert_eq!((status.code(), decision), (StatusCode::TimedOut, RetryDecision::Retry));
        assert_eq!(status.to_string(), "timed out: no answer within the 1s per-attempt timeout");
        let Failure::Status { status, .. } = timed_out(SECOND / 2, SECOND) else { panic!("not a status") };
        assert_eq!(status.message(), "no answer within the 500ms left of the retry budget");
    }
}
