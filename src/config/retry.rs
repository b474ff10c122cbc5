//! How a failed export is retried: the backoff between attempts and the time
//! budget of a request. Pure: a retry number and a random draw in, a delay out.

use std::time::Duration;

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
/// use otlp_sink::config::RetryPolicy;
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
            let delay = p.backoff(retries, 0.0);
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
