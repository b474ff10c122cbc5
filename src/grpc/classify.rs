//! Which failed gRPC exports are tried again: the OTLP specification's
//! table from a status code (and the delay the server asked for in
//! `google.rpc.RetryInfo`) to a [`RetryDecision`], plus what the transport
//! under tonic says of its own failures (a reset connection, a TLS
//! certificate refused). Pure, so tested without a network.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use prost::Message as _;
use tonic::{Code, Status};

use crate::deliver::{ExportStatus, Failure, GrpcCode, RetryDecision, RpcStatus, StatusCode};
use crate::tls::TlsError;

/// Classifies a failed export by its gRPC status code and the retry delay the
/// server sent with it (`google.rpc.RetryInfo`), per the OTLP specification:
///
/// | code | without RetryInfo | with RetryInfo |
/// |---|---|---|
/// | CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS | `Retry` | `Throttle(delay)` |
/// | RESOURCE_EXHAUSTED | `Permanent` | `Throttle(delay)` |
/// | every other code | `Permanent` | `Permanent` |
///
/// `OK` is not a failure; should a status carrying it reach this function (a
/// malformed response), it is not retried.
pub(crate) fn classify(code: Code, server_delay: Option<Duration>) -> RetryDecision {
    let retry_unless_throttled = match server_delay {
        Some(delay) => RetryDecision::Throttle(delay),
        None => RetryDecision::Retry,
    };
    // Every code is listed, with no catch-all arm, so a code added to tonic
    // fails to compile here instead of silently becoming permanent.
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => retry_unless_throttled,
        // Retryable only when the server says recovery is possible, which it
        // does by sending RetryInfo.
        Code::ResourceExhausted => server_delay.map_or(RetryDecision::Permanent, RetryDecision::Throttle),
        Code::Ok
        | Code::Unknown
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::Unimplemented
        | Code::Internal
        | Code::Unauthenticated => RetryDecision::Permanent,
    }
}

/// [`classify`] applied to a whole status.
pub(crate) fn classify_status(status: &Status) -> RetryDecision {
    classify(status.code(), server_retry_delay(status))
}

/// The retry delay a server attached to `status`, if it attached one.
///
/// tonic hands over the `grpc-status-details-bin` trailer as
/// [`Status::details`]: a serialized `google.rpc.Status` whose `details` may
/// hold a `google.rpc.RetryInfo`. `Some` means a RetryInfo was found; its
/// delay is zero when it has none or a negative one. Undecodable bytes give
/// `None`, never a panic.
pub(crate) fn server_retry_delay(status: &Status) -> Option<Duration> {
    retry_delay_from_details(status.details())
}

fn retry_delay_from_details(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|any| is_retry_info(&any.type_url))
        .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok())
        .map(|info| info.retry_delay.map_or(Duration::ZERO, ProtoDuration::to_duration))
}

/// Whether an `Any` type URL names `google.rpc.RetryInfo`. Only the part after
/// the last `/` is compared: the host part of a type URL is not significant.
fn is_retry_info(type_url: &[u8]) -> bool {
    let name = type_url.rsplit(|&b| b == b'/').next().unwrap_or_default();
    name == RETRY_INFO_NAME.as_bytes()
}

const RETRY_INFO_NAME: &str = "google.rpc.RetryInfo";
#[cfg(any(test, feature = "receiver"))]
const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// Builds the status a throttling server returns: `code` and `message`, with a
/// `google.rpc.RetryInfo` asking for `delay`, the way a real server puts it in
/// `grpc-status-details-bin`. The in-process receiver uses it to script
/// throttling.
#[cfg(any(test, feature = "receiver"))]
pub(crate) fn status_with_retry_delay(code: Code, message: &str, delay: Duration) -> Status {
    let retry_info = RetryInfo { retry_delay: Some(ProtoDuration::from_duration(delay)) };
    let details = RpcStatus {
        code: code as i32,
        message: message.as_bytes().to_vec(),
        details: vec![crate::deliver::Any {
            type_url: RETRY_INFO_TYPE_URL.as_bytes().to_vec(),
            value: retry_info.encode_to_vec(),
        }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

// The well-known messages only gRPC reads: RetryInfo and its Duration
// (RpcStatus and Any are shared with the other transport, in `deliver`).

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

impl ProtoDuration {
    /// A negative delay asks for no wait; an absurd one saturates (the retry
    /// budget then refuses it).
    fn to_duration(self) -> Duration {
        match (u64::try_from(self.seconds), u64::try_from(self.nanos)) {
            (Ok(seconds), Ok(nanos)) => Duration::from_secs(seconds).saturating_add(Duration::from_nanos(nanos)),
            _ => Duration::ZERO,
        }
    }

    #[cfg(any(test, feature = "receiver"))]
    fn from_duration(duration: Duration) -> Self {
        Self {
            seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
            // Below one billion, so it always fits.
            nanos: duration.subsec_nanos() as i32,
        }
    }
}

/// The OTLP retry classification, plus one fact of the transport: a status
/// with a source was made on this side by the HTTP/2 transport (a reset
/// connection, a collector killed mid-request), not sent by the collector.
/// tonic reports those as UNKNOWN, which the spec table calls permanent, but
/// the request may simply not have arrived, so they are retried like
/// UNAVAILABLE. A TLS certificate failure is the exception: retrying cannot fix it.
/// A [`TlsError`] from this crate's connector is one for certain; other
/// certificate failures (a client certificate the collector refuses) are
/// recognised from rustls's errors.
pub(crate) fn classify_attempt(status: &Status) -> Failure {
    if let Some(error) = tls_failure(status) {
        return Failure::Tls(error.clone());
    }
    Failure::Status { status: export_status(status), decision: decide(status) }
}

fn decide(status: &Status) -> RetryDecision {
    if status.code() == Code::Unknown && status.source().is_some() {
        if certificate_failure(status) {
            return RetryDecision::Permanent;
        }
        return classify(Code::Unavailable, None);
    }
    if status.code() == Code::Unavailable && certificate_failure(status) {
        return RetryDecision::Permanent;
    }
    classify_status(status)
}

/// The [`TlsError`] of the connector in the status's source chain, if there
/// is one. An `io::Error`'s `source` skips the error it wraps, so that one is
/// looked at too.
fn tls_failure(status: &Status) -> Option<&TlsError> {
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(err) = cause {
        let wrapped = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn Error);
        if let Some(tls) = [Some(err), wrapped].into_iter().flatten().find_map(|e| e.downcast_ref::<TlsError>()) {
            return Some(tls);
        }
        cause = err.source();
    }
    None
}

/// Whether a rustls certificate error is anywhere in the status's source
/// chain: the collector's certificate refused here, or ours refused (or
/// missing) there, which the collector says with a fatal TLS alert.
///
/// Two forms reach here. A failure during the handshake keeps its type: an
/// `io::Error` wrapping a `rustls::Error`. A failure after it does not: with
/// TLS 1.3 the client finishes its handshake before the server checks the
/// client certificate, so a missing or untrusted client certificate arrives
/// as an alert on the first read of the HTTP/2 connection, and h2 keeps only
/// the kind and the text of the I/O errors it reports. For those the text of
/// an `InvalidData` I/O error is compared with what rustls prints for the
/// same errors (a unit test pins those texts to rustls's `Display`).
fn certificate_failure(status: &Status) -> bool {
    use tokio_rustls::rustls::Error as TlsError;
    let mut cause: Option<&(dyn Error + 'static)> = status.source();
    while let Some(err) = cause {
        let io = err.downcast_ref::<std::io::Error>();
        let inner = io.and_then(|io| io.get_ref()).map(|e| e as &dyn Error);
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<TlsError>() {
                return matches!(
                    tls,
                    TlsError::InvalidCertificate(_) | TlsError::AlertReceived(_) | TlsError::NoCertificatesPresented
                );
            }
        }
        if let (Some(io), Some(inner)) = (io, inner) {
            if io.kind() == std::io::ErrorKind::InvalidData && is_certificate_error_text(&inner.to_string()) {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

/// What rustls prints for the errors [`certificate_failure`] looks for:
/// `InvalidCertificate(_)`, `AlertReceived(_)`, `NoCertificatesPresented`.
const CERTIFICATE_ERROR_TEXTS: [&str; 3] =
    ["invalid peer certificate: ", "received fatal alert: ", "peer sent no certificates"];

fn is_certificate_error_text(text: &str) -> bool {
    CERTIFICATE_ERROR_TEXTS.iter().any(|prefix| text.starts_with(prefix))
}

/// tonic's status as this crate reports it; the transport's error under it,
/// if it made one, stays reachable as the source.
fn export_status(status: &Status) -> ExportStatus {
    let exported = ExportStatus::new(StatusCode::Grpc(grpc_code(status.code())), status.message());
    match status.source() {
        Some(_) => exported.with_source(Cause(status.clone())),
        None => exported,
    }
}

/// A status made on this side by tonic: it stands for the transport's error
/// under it, whose text it shows and whose causes follow it.
#[derive(Debug)]
struct Cause(Status);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.source() {
            Some(e) => fmt::Display::fmt(e, f),
            None => f.write_str(self.0.message()),
        }
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source().and_then(Error::source)
    }
}

/// tonic's code as this crate's.
pub(crate) fn grpc_code(code: Code) -> GrpcCode {
    match code {
        Code::Ok => GrpcCode::Ok,
        Code::Cancelled => GrpcCode::Cancelled,
        Code::Unknown => GrpcCode::Unknown,
        Code::InvalidArgument => GrpcCode::InvalidArgument,
        Code::DeadlineExceeded => GrpcCode::DeadlineExceeded,
        Code::NotFound => GrpcCode::NotFound,
        Code::AlreadyExists => GrpcCode::AlreadyExists,
        Code::PermissionDenied => GrpcCode::PermissionDenied,
        Code::ResourceExhausted => GrpcCode::ResourceExhausted,
        Code::FailedPrecondition => GrpcCode::FailedPrecondition,
        Code::Aborted => GrpcCode::Aborted,
        Code::OutOfRange => GrpcCode::OutOfRange,
        Code::Unimplemented => GrpcCode::Unimplemented,
        Code::Internal => GrpcCode::Internal,
        Code::Unavailable => GrpcCode::Unavailable,
        Code::DataLoss => GrpcCode::DataLoss,
        Code::Unauthenticated => GrpcCode::Unauthenticated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::Any;

    use proptest::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    // --- classification: one assertion per code, against the spec table ---

    #[test]
    fn spec_table_without_retry_info() {
        use RetryDecision::{Permanent, Retry};
        assert_eq!(classify(Code::Ok, None), Permanent);
        assert_eq!(classify(Code::Cancelled, None), Retry);
        assert_eq!(classify(Code::Unknown, None), Permanent);
        assert_eq!(classify(Code::InvalidArgument, None), Permanent);
        assert_eq!(classify(Code::DeadlineExceeded, None), Retry);
        assert_eq!(classify(Code::NotFound, None), Permanent);
        assert_eq!(classify(Code::AlreadyExists, None), Permanent);
        assert_eq!(classify(Code::PermissionDenied, None), Permanent);
        assert_eq!(classify(Code::ResourceExhausted, None), Permanent);
        assert_eq!(classify(Code::FailedPrecondition, None), Permanent);
        assert_eq!(classify(Code::Aborted, None), Retry);
        assert_eq!(classify(Code::OutOfRange, None), Retry);
        assert_eq!(classify(Code::Unimplemented, None), Permanent);
        assert_eq!(classify(Code::Internal, None), Permanent);
        assert_eq!(classify(Code::Unavailable, None), Retry);
        assert_eq!(classify(Code::DataLoss, None), Retry);
        assert_eq!(classify(Code::Unauthenticated, None), Permanent);
    }

    #[test]
    fn spec_table_with_retry_info() {
        use RetryDecision::{Permanent, Throttle};
        let d = Some(Duration::from_millis(1500));
        let throttle = Throttle(Duration::from_millis(1500));
        assert_eq!(classify(Code::Ok, d), Permanent);
        assert_eq!(classify(Code::Cancelled, d), throttle);
        assert_eq!(classify(Code::Unknown, d), Permanent);
        assert_eq!(classify(Code::InvalidArgument, d), Permanent);
        assert_eq!(classify(Code::DeadlineExceeded, d), throttle);
        assert_eq!(classify(Code::NotFound, d), Permanent);
        assert_eq!(classify(Code::AlreadyExists, d), Permanent);
        assert_eq!(classify(Code::PermissionDenied, d), Permanent);
        assert_eq!(classify(Code::ResourceExhausted, d), throttle);
        assert_eq!(classify(Code::FailedPrecondition, d), Permanent);
        assert_eq!(classify(Code::Aborted, d), throttle);
        assert_eq!(classify(Code::OutOfRange, d), throttle);
        assert_eq!(classify(Code::Unimplemented, d), Permanent);
        assert_eq!(classify(Code::Internal, d), Permanent);
        assert_eq!(classify(Code::Unavailable, d), throttle);
        assert_eq!(classify(Code::DataLoss, d), throttle);
        assert_eq!(classify(Code::Unauthenticated, d), Permanent);
    }

    #[test]
    fn resource_exhausted_with_zero_delay_retry_info_is_still_retryable() {
        // The presence of RetryInfo is the signal, whatever the delay.
        assert_eq!(classify(Code::ResourceExhausted, Some(Duration::ZERO)), RetryDecision::Throttle(Duration::ZERO));
    }

    // --- the server's delay, in and out of a tonic::Status ---

    #[test]
    fn built_status_carries_code_message_and_delay() {
        let status = status_with_retry_delay(Code::ResourceExhausted, "slow down", Duration::from_millis(2500));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "slow down");
        assert_eq!(server_retry_delay(&status), Some(Duration::from_millis(2500)));
        assert_eq!(classify_status(&status), RetryDecision::Throttle(Duration::from_millis(2500)));
    }

    #[test]
    fn delay_survives_the_grpc_status_details_bin_trailer() {
        let sent = status_with_retry_delay(Code::Unavailable, "restarting", Duration::new(3, 250_000_000));
        let response = sent.into_http::<()>();
        assert!(response.headers().contains_key("grpc-status-details-bin"));
        let received = Status::from_header_map(response.headers()).expect("a status in the headers");
        assert_eq!(received.code(), Code::Unavailable);
        assert_eq!(server_retry_delay(&received), Some(Duration::new(3, 250_000_000)));
    }

    #[test]
    fn status_without_details_has_no_delay() {
        assert_eq!(server_retry_delay(&Status::unavailable("down")), None);
        assert_eq!(classify_status(&Status::unavailable("down")), RetryDecision::Retry);
        assert_eq!(classify_status(&Status::resource_exhausted("full")), RetryDecision::Permanent);
    }

    fn details_with(any: Vec<Any>) -> Vec<u8> {
        RpcStatus { code: Code::Unavailable as i32, message: b"m".to_vec(), details: any }.encode_to_vec()
    }

    fn retry_info_any(type_url: &str, delay: Option<ProtoDuration>) -> Any {
        Any { type_url: type_url.as_bytes().to_vec(), value: RetryInfo { retry_delay: delay }.encode_to_vec() }
    }

    #[test]
    fn other_detail_types_are_not_retry_info() {
        let error_info =
            Any { type_url: b"type.googleapis.com/google.rpc.ErrorInfo".to_vec(), value: vec![10, 1, b'x'] };
        assert_eq!(retry_delay_from_details(&details_with(vec![error_info])), None);
    }

    #[test]
    fn retry_info_is_found_among_other_details_and_under_another_host() {
        let error_info = Any { type_url: b"type.googleapis.com/google.rpc.ErrorInfo".to_vec(), value: vec![] };
        let info = retry_info_any("example.com/google.rpc.RetryInfo", Some(ProtoDuration { seconds: 7, nanos: 0 }));
        assert_eq!(retry_delay_from_details(&details_with(vec![error_info, info])), Some(7 * SECOND));
    }

    #[test]
    fn retry_info_without_delay_or_with_negative_delay_means_no_wait() {
        let none = retry_info_any(RETRY_INFO_TYPE_URL, None);
        assert_eq!(retry_delay_from_details(&details_with(vec![none])), Some(Duration::ZERO));
        let negative = retry_info_any(RETRY_INFO_TYPE_URL, Some(ProtoDuration { seconds: -5, nanos: 0 }));
        assert_eq!(retry_delay_from_details(&details_with(vec![negative])), Some(Duration::ZERO));
        let negative_nanos = retry_info_any(RETRY_INFO_TYPE_URL, Some(ProtoDuration { seconds: 0, nanos: -1 }));
        assert_eq!(retry_delay_from_details(&details_with(vec![negative_nanos])), Some(Duration::ZERO));
    }

    #[test]
    fn absurd_delays_saturate_instead_of_panicking() {
        let huge = retry_info_any(RETRY_INFO_TYPE_URL, Some(ProtoDuration { seconds: i64::MAX, nanos: i32::MAX }));
        let delay = retry_delay_from_details(&details_with(vec![huge])).unwrap();
        assert!(delay >= Duration::from_secs(i64::MAX as u64), "{delay:?}");
        // And a budget refuses it.
        assert!(!crate::config::RetryPolicy::default().allows_retry(Duration::ZERO, delay));
    }

    #[test]
    fn garbage_details_give_none() {
        assert_eq!(retry_delay_from_details(&[0xff, 0xff, 0xff]), None);
        // A RetryInfo whose payload is garbage is ignored, not an error.
        let broken = Any { type_url: RETRY_INFO_TYPE_URL.as_bytes().to_vec(), value: vec![0x0a, 0xff] };
        assert_eq!(retry_delay_from_details(&details_with(vec![broken])), None);
        let status = Status::with_details(Code::Unavailable, "x", vec![0x1a, 0x05, 0x00].into());
        assert_eq!(classify_status(&status), RetryDecision::Retry);
    }

    #[test]
    fn invalid_utf8_in_the_message_does_not_hide_the_retry_info() {
        let info = retry_info_any(RETRY_INFO_TYPE_URL, Some(ProtoDuration { seconds: 2, nanos: 0 }));
        let bytes = RpcStatus { code: 8, message: vec![0xc3, 0x28], details: vec![info] }.encode_to_vec();
        assert_eq!(retry_delay_from_details(&bytes), Some(2 * SECOND));
    }

    proptest! {
        #[test]
        fn arbitrary_details_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let status = Status::with_details(Code::ResourceExhausted, "x", bytes.into());
            let decision = classify_status(&status);
            prop_assert!(matches!(decision, RetryDecision::Permanent | RetryDecision::Throttle(_)));
        }

        #[test]
        fn any_delay_round_trips(secs in 0u64..=i64::MAX as u64, nanos in 0u32..1_000_000_000) {
            let delay = Duration::new(secs, nanos);
            let status = status_with_retry_delay(Code::Unavailable, "x", delay);
            prop_assert_eq!(server_retry_delay(&status), Some(delay));
        }
    }
}

#[cfg(test)]
mod attempt_tests {
    use std::sync::Arc;

    use tokio_rustls::rustls::{AlertDescription, CertificateError, Error as TlsError};

    use super::*;
    use crate::deliver::ExportError;
    use crate::sink::DrainErrorKind;

    /// A status as tonic reports a transport failure: `code`, with `source`
    /// below it.
    fn transport_status(code: Code, source: impl Error + Send + Sync + 'static) -> Status {
        let mut status = Status::new(code, "transport error");
        status.set_source(Arc::new(source));
        status
    }

    /// What the engine would do after `status`.
    fn decision(status: &Status) -> RetryDecision {
        match classify_attempt(status) {
            Failure::Tls(_) => RetryDecision::Permanent,
            Failure::Status { decision, .. } => decision,
        }
    }

    fn io(error: impl Into<Box<dyn Error + Send + Sync>>) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, error)
    }

    #[test]
    fn the_error_texts_are_what_rustls_prints() {
        let errors = [
            TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
            TlsError::AlertReceived(AlertDescription::CertificateRequired),
            TlsError::NoCertificatesPresented,
        ];
        for (error, prefix) in errors.iter().zip(CERTIFICATE_ERROR_TEXTS) {
            assert!(error.to_string().starts_with(prefix), "rustls prints {error} for {error:?}, not {prefix}..");
        }
    }

    #[test]
    fn a_certificate_error_is_permanent_whether_typed_or_flattened_to_text() {
        let refused = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let required = TlsError::AlertReceived(AlertDescription::CertificateRequired);
        for status in [
            // During the handshake: the rustls error keeps its type.
            transport_status(Code::Unavailable, io(refused.clone())),
            transport_status(Code::Unknown, io(required.clone())),
            // After it, through h2: only the text is left.
            transport_status(Code::Unknown, io(required.to_string())),
            transport_status(Code::Unknown, io(refused.to_string())),
        ] {
            assert_eq!(decision(&status), RetryDecision::Permanent, "{status:?}");
        }
    }

    #[test]
    fn a_tls_error_of_the_connector_is_permanent_and_reported_as_such_not_as_a_status() {
        let end = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        let refused = crate::tls::TlsError::client_certificate_required(end);
        // Directly below the status (the client's refusal), or deeper in the
        // chain (a connect error, wrapped by tonic and tower).
        let direct = transport_status(Code::Unavailable, refused.clone());
        let nested = transport_status(Code::Unavailable, io(refused.clone()));
        for status in [direct, nested] {
            assert_eq!(decision(&status), RetryDecision::Permanent, "{status:?}");
            let Failure::Tls(error) = classify_attempt(&status) else { panic!("not reported as TLS: {status:?}") };
            let failure = ExportError::Tls { error, attempts: 1 };
            let ExportError::Tls { error, attempts } = &failure else { unreachable!() };
            assert_eq!((error.kind(), *attempts), (crate::tls::TlsErrorKind::ClientCertificateRequired, 1));
            assert_eq!(failure.code(), None, "no gRPC status was involved");
            assert_eq!(failure.kind(), DrainErrorKind::Permanent);
            assert_eq!(failure.to_string(), refused.to_string(), "the TLS error is the message");
        }
    }

    #[test]
    fn a_permanent_status_without_a_tls_error_stays_a_refusal() {
        let Failure::Status { status, decision } = classify_attempt(&Status::permission_denied("no")) else {
            panic!("not a status")
        };
        assert_eq!(decision, RetryDecision::Permanent);
        assert_eq!(status.code(), StatusCode::Grpc(GrpcCode::PermissionDenied));
        assert_eq!(status.message(), "no");
    }

    #[test]
    fn other_transport_failures_stay_retryable() {
        for status in [
            transport_status(Code::Unknown, io("connection reset")),
            transport_status(Code::Unknown, std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            // The text alone, without an InvalidData I/O error around it, is not enough.
            transport_status(Code::Unknown, std::io::Error::other("received fatal alert: CertificateRequired")),
            transport_status(Code::Unavailable, io(TlsError::General("internal".into()))),
        ] {
            assert_ne!(decision(&status), RetryDecision::Permanent, "{status:?}");
        }
    }
}
