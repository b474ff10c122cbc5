//! What to do after an attempt failed: the decision a transport's
//! classification makes, and the wait it turns into under a
//! [`RetryPolicy`].

use std::time::Duration;

use crate::config::RetryPolicy;

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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

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
}
