//! Which failed exports are tried again, and after how long.
//!
//! Both halves are pure, so they are tested without a network or a clock:
//!
//! - [`classify`] maps a gRPC status code, and the delay the server asked for
//!   if it asked, to a [`RetryDecision`], following the table of the OTLP
//!   specification. [`server_retry_delay`] finds that delay in a
//!   [`tonic::Status`].
//! - [`RetryPolicy`] turns a retry number and a random draw into a backoff
//!   delay, and says whether another attempt still fits the time budget.

use std::time::Duration;

use prost::Message as _;
use tonic::{Code, Status};

/// What to do after an export attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Try again after the policy's backoff.
    Retry,
    /// The server asked for a pause: try again after at least this long
    /// (and at least the policy's backoff).
    Throttle(Duration),
    /// Trying again cannot help: the data is dropped and reported.
    Permanent,
}

impl RetryDecision {
    /// How long to wait before retry number `retry` (0 for the first retry),
    /// or `None` when the failure is permanent. `random` is a draw in `[0, 1)`.
    ///
    /// A throttle waits `max(backoff, server delay)`: the server's delay is a
    /// floor, never a shortcut past the backoff.
    pub(crate) fn delay(self, policy: &RetryPolicy, retry: u32, random: f64) -> Option<Duration> {
        match self {
            Self::Permanent => None,
            Self::Retry => Some(policy.backoff(retry, random)),
            Self::Throttle(server) => Some(policy.backoff(retry, random).max(server)),
        }
    }
}

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
        details: vec![Any { type_url: RETRY_INFO_TYPE_URL.as_bytes().to_vec(), value: retry_info.encode_to_vec() }],
    };
    Status::with_details(code, message, details.encode_to_vec().into())
}

// The few well-known protobuf messages needed here, declared by hand rather
// than compiled from .proto files. Text fields are declared `bytes`: the wire
// format is the same, and a peer's invalid UTF-8 in a message we do not need
// must not cost us the RetryInfo next to it.

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(bytes = "vec", tag = "2")]
    message: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(bytes = "vec", tag = "1")]
    type_url: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

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

/// How a failed export is retried: exponential backoff with jitter, within a
/// time budget.
///
/// The delay before retry `n` (0 for the first retry) is
/// `min(initial_delay × multiplierⁿ, max_delay)`, shortened by a random
/// fraction of at most `jitter`. Jitter only ever shortens, so `max_delay` is
/// a hard ceiling and clients that started together still spread out once
/// they all reach it. When the server asked for a delay (throttling), the
/// wait is the larger of the two.
///
/// Retries stop when the next attempt would start more than `max_elapsed`
/// after the first one began, and at once for a failure the OTLP
/// specification calls permanent. A retry's attempt is also cut to what is
/// left of `max_elapsed`, so the budget bounds a request's whole delivery
/// (unless the per-attempt timeout alone is longer: the first attempt always
/// has all of it).
///
/// The budget bounds each request; the exporter's flush timeout bounds the
/// caller's wait. By default the flush timeout (30 s) is longer than the
/// budget (25 s), so a flush against a collector that is down returns the
/// collector's failure rather than a timeout.
///
/// # Defaults
///
/// | setting | default | why |
/// |---|---|---|
/// | `initial_delay` | 1 s | a collector restarting behind a stable address is usually back within seconds; an in-process exporter wants its first retry soon, because a flush may be waiting on it |
/// | `max_delay` | 5 s | keeps a flush that waits on a retried request responsive; the Collector's 30 s suits a daemon with a persistent queue, not an application |
/// | `multiplier` | 1.5 | the Collector's and other SDKs' value: 1, 1.5, 2.25, 3.4, 5, 5, ... seconds |
/// | `jitter` | 0.5 | delays fall in (50 %, 100 %] of the backoff, enough to spread many processes restarted together |
/// | `max_elapsed` | 25 s | below the default flush timeout (30 s), so that a flush reports the failure itself; and under half the default metric export interval, so a request stops retrying before the next collection's data queues behind it |
///
/// ```
/// use std::time::Duration;
/// use otlp_sink::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_jitter(0.0);
/// assert_eq!(policy.backoff(0, 0.3), Duration::from_secs(1));
/// assert_eq!(policy.backoff(2, 0.3), Duration::from_millis(2250));
/// assert_eq!(policy.backoff(10, 0.3), Duration::from_secs(5)); // the ceiling
/// assert!(policy.allows_retry(Duration::from_secs(15), Duration::from_secs(5)));
/// assert!(!policy.allows_retry(Duration::from_secs(23), Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    initial_delay: Duration,
    max_delay: Duration,
    /// At least 1.0 and not NaN (the setter clamps).
    multiplier: f64,
    /// Within [0, 1] (the setter clamps).
    jitter: f64,
    max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The default policy; see the table in the type's documentation.
    pub const fn new() -> Self {
        Self {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            multiplier: 1.5,
            jitter: 0.5,
            max_elapsed: Duration::from_secs(25),
        }
    }

    /// A policy that never retries: every failure is final at once.
    pub const fn disabled() -> Self {
        Self::new().with_max_elapsed(Duration::ZERO)
    }

    /// The backoff before the first retry. Default 1 s.
    #[must_use]
    pub const fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The longest backoff between two attempts. Default 5 s. A server's
    /// throttling delay may still be longer.
    #[must_use]
    pub const fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How much each backoff grows over the previous one. Default 1.5. Values
    /// below 1.0, and NaN, are taken as 1.0 (a constant backoff).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        // `max` ignores NaN, so NaN becomes 1.0 as well.
        self.multiplier = multiplier.max(1.0);
        self
    }

    /// The largest fraction a random draw removes from a backoff. Default 0.5.
    /// Clamped to `[0, 1]`; NaN is taken as 0 (no jitter).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        self
    }

    /// How long after the first attempt began a retry may still start.
    /// Default 25 s. Zero disables retries.
    #[must_use]
    pub const fn with_max_elapsed(mut self, budget: Duration) -> Self {
        self.max_elapsed = budget;
        self
    }

    /// The backoff before the first retry.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest backoff.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The growth factor of the backoff.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The largest fraction jitter removes from a backoff.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// The retry time budget, counted from the start of the first attempt.
    pub fn max_elapsed(&self) -> Duration {
        self.max_elapsed
    }

    /// The backoff before retry number `retry` (0 for the first retry), given
    /// a uniform random draw `random` in `[0, 1)`.
    ///
    /// The result lies in `((1 − jitter) × base, base]` with
    /// `base = min(initial_delay × multiplierʳᵉᵗʳʸ, max_delay)`. A draw of 0
    /// gives `base` itself. Draws outside `[0, 1]` are clamped, NaN is taken
    /// as 0; this function never panics.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let cap = self.max_delay.as_secs_f64();
        let base = if self.initial_delay.is_zero() {
            // Avoids 0 × ∞ = NaN when the growth overflows.
            0.0
        } else {
            let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
            // Overflows to +∞ for large exponents, which `min` then caps.
            (self.initial_delay.as_secs_f64() * self.multiplier.powi(exponent)).min(cap)
        };
        let random = if random.is_nan() { 0.0 } else { random.clamp(0.0, 1.0) };
        let seconds = base * (1.0 - self.jitter * random);
        // The float round trip can land a hair above `max_delay` (or fail on
        // a `max_delay` near `Duration::MAX`): the ceiling is kept exactly.
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max_delay).min(self.max_delay)
    }

    /// Whether a retry that waits `delay` still fits the budget, `elapsed`
    /// being the time since the first attempt began: the retry must start by
    /// `max_elapsed`.
    pub fn allows_retry(&self, elapsed: Duration, delay: Duration) -> bool {
        elapsed.saturating_add(delay) <= self.max_elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!RetryPolicy::default().allows_retry(Duration::ZERO, delay));
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

    // --- backoff ---

    #[test]
    fn default_policy_matches_the_documented_table() {
        let p = RetryPolicy::default();
        assert_eq!(p.initial_delay(), SECOND);
        assert_eq!(p.max_delay(), 5 * SECOND);
        assert_eq!(p.multiplier(), 1.5);
        assert_eq!(p.jitter(), 0.5);
        assert_eq!(p.max_elapsed(), 25 * SECOND);
        assert_eq!(p, RetryPolicy::new());
    }

    #[test]
    fn backoff_grows_by_the_multiplier_up_to_the_ceiling() {
        let p = RetryPolicy::default();
        let no_jitter = 0.0;
        assert_eq!(p.backoff(0, no_jitter), SECOND);
        assert_eq!(p.backoff(1, no_jitter), Duration::from_millis(1500));
        assert_eq!(p.backoff(2, no_jitter), Duration::from_millis(2250));
        assert_eq!(p.backoff(3, no_jitter), Duration::from_micros(3_375_000));
        assert_eq!(p.backoff(4, no_jitter), 5 * SECOND, "5.06 s is capped");
        assert_eq!(p.backoff(u32::MAX, no_jitter), 5 * SECOND, "overflowing growth is capped");
    }

    #[test]
    fn jitter_only_shortens_by_at_most_its_fraction() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, 0.5), Duration::from_millis(750));
        assert_eq!(p.backoff(2, 0.5), Duration::from_micros(1_687_500));
        assert_eq!(p.backoff(9, 0.5), Duration::from_millis(3750), "jitter still applies at the ceiling");
        // A draw close to 1 removes almost the whole jitter fraction.
        assert!(p.backoff(0, 0.999_999) > Duration::from_millis(500));
        let no_jitter = p.with_jitter(0.0);
        assert_eq!(no_jitter.backoff(2, 0.9), Duration::from_millis(2250));
    }

    #[test]
    fn out_of_range_inputs_are_clamped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0, -3.0), SECOND);
        assert_eq!(p.backoff(0, f64::NAN), SECOND);
        assert_eq!(p.backoff(0, 7.0), Duration::from_millis(500));
        assert_eq!(p.with_multiplier(0.5).multiplier(), 1.0);
        assert_eq!(p.with_multiplier(f64::NAN).multiplier(), 1.0);
        assert_eq!(p.with_multiplier(0.5).backoff(6, 0.0), SECOND, "a multiplier below 1 is constant backoff");
        assert_eq!(p.with_jitter(2.0).jitter(), 1.0);
        assert_eq!(p.with_jitter(-1.0).jitter(), 0.0);
        assert_eq!(p.with_jitter(f64::NAN).jitter(), 0.0);
        assert_eq!(p.with_multiplier(f64::INFINITY).backoff(1, 0.0), 5 * SECOND);
        assert_eq!(p.with_initial_delay(Duration::ZERO).with_multiplier(f64::INFINITY).backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.with_max_delay(Duration::MAX).with_multiplier(1e300).backoff(40, 0.0), Duration::MAX);
    }

    #[test]
    fn max_delay_below_initial_delay_wins() {
        let p = RetryPolicy::default().with_initial_delay(10 * SECOND).with_max_delay(2 * SECOND);
        assert_eq!(p.backoff(0, 0.0), 2 * SECOND);
    }

    #[test]
    fn throttle_waits_the_longer_of_backoff_and_server_delay() {
        let p = RetryPolicy::default();
        assert_eq!(RetryDecision::Throttle(4 * SECOND).delay(&p, 0, 0.0), Some(4 * SECOND), "server longer");
        assert_eq!(
            RetryDecision::Throttle(Duration::from_millis(10)).delay(&p, 0, 0.0),
            Some(SECOND),
            "backoff longer"
        );
        // A server may ask for more than `max_delay`: it is honoured.
        assert_eq!(RetryDecision::Throttle(60 * SECOND).delay(&p, 9, 0.0), Some(60 * SECOND));
        assert_eq!(RetryDecision::Retry.delay(&p, 1, 0.0), Some(Duration::from_millis(1500)));
        assert_eq!(RetryDecision::Permanent.delay(&p, 0, 0.0), None);
    }

    #[test]
    fn budget_counts_from_the_first_attempt() {
        let p = RetryPolicy::default();
        assert!(p.allows_retry(Duration::ZERO, SECOND));
        assert!(p.allows_retry(20 * SECOND, 5 * SECOND), "ending exactly at the budget fits");
        assert!(!p.allows_retry(20 * SECOND + Duration::from_nanos(1), 5 * SECOND));
        assert!(!p.allows_retry(Duration::ZERO, 26 * SECOND), "a throttle longer than the budget is refused");
        assert!(!p.allows_retry(Duration::MAX, Duration::MAX), "saturates instead of overflowing");
        assert!(!RetryPolicy::disabled().allows_retry(Duration::ZERO, Duration::from_nanos(1)));
        assert!(RetryPolicy::disabled().allows_retry(Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn default_schedule_retries_seven_times_within_the_budget() {
        // With no jitter and instant failures, the waits are 1, 1.5, 2.25,
        // 3.375, then 5 s each: 7 retries start by 23.125 s, an 8th would
        // start at 28.125 s.
        let p = RetryPolicy::default();
        let mut elapsed = Duration::ZERO;
        let mut retries = 0;
        loop {
            let delay = RetryDecision::Retry.delay(&p, retries, 0.0).unwrap();
            if !p.allows_retry(elapsed, delay) {
                break;
            }
            elapsed += delay;
            retries += 1;
        }
        assert_eq!(retries, 7);
        assert_eq!(elapsed, Duration::from_micros(23_125_000));
    }

    proptest! {
        #[test]
        fn backoff_stays_within_its_bounds(
            initial_ms in 0u64..100_000,
            max_ms in 0u64..100_000,
            multiplier in 0.0f64..10.0,
            jitter in 0.0f64..=1.0,
            retry in 0u32..200,
            random in 0.0f64..1.0,
        ) {
            let p = RetryPolicy::default()
                .with_initial_delay(Duration::from_millis(initial_ms))
                .with_max_delay(Duration::from_millis(max_ms))
                .with_multiplier(multiplier)
                .with_jitter(jitter);
            let base = p.backoff(retry, 0.0);
            let delay = p.backoff(retry, random);
            prop_assert!(delay <= p.max_delay());
            prop_assert!(delay <= base);
            // (1 - jitter) × base, less a nanosecond of float rounding.
            let floor = base.mul_f64(1.0 - jitter).saturating_sub(Duration::from_nanos(1));
            prop_assert!(delay >= floor, "{delay:?} < {floor:?}");
            // Without jitter, the backoff never shrinks from one retry to the next.
            prop_assert!(p.backoff(retry + 1, 0.0) >= base);
        }
    }
}
