//! The collector's failures as this side sees them: the outage going on now
//! (attempts that failed since the last success). Its first failed attempt
//! is logged at WARN at once, later ones at most every [`WARN_EVERY`] with
//! a count, and its recovery at INFO. A flush that times out reads it, so it
//! can say why it is still waiting.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How often an outage that goes on is reported again.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// The collector's failures since its last success: what the exporter saw
/// of an outage that is still going on.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    /// The collector's address.
    pub endpoint: String,
    /// Attempts that failed since the last success.
    pub failed_attempts: u64,
    /// Time since the first of them.
    pub failing_for: Duration,
    /// The latest failure, as the transport or the collector reported it.
    pub last_failure: String,
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the collector at {} failed {} attempt(s) over {:.1?}, the last with: {}",
            self.endpoint, self.failed_attempts, self.failing_for, self.last_failure
        )
    }
}

/// One collector's outage, shared by every request to it.
#[derive(Debug)]
pub(crate) struct OutageTracker {
    endpoint: String,
    /// Whether `state` holds an outage: lets a success skip the lock.
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the first failed attempt of the outage ended; `None` when none is going on.
    since: Option<Instant>,
    failed_attempts: u64,
    last_failure: String,
    /// When the outage was last reported at WARN, and its count then.
    warned: Option<(Instant, u64)>,
}

impl OutageTracker {
    pub(crate) fn new(endpoint: String) -> Self {
        Self { endpoint, failing: AtomicBool::new(false), state: Mutex::default() }
    }

    /// Records a failed attempt. `retry_in` is the wait before the next
    /// attempt, `None` when the request gives up.
    pub(crate) fn failed(&self, failure: &dyn fmt::Display, retry_in: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let since = *state.since.get_or_insert(now);
        state.failed_attempts += 1;
        state.last_failure = failure.to_string();
        self.failing.store(true, Ordering::Relaxed);
        let attempts = state.failed_attempts;
        let due = match state.warned {
            None => true,
            Some((at, _)) => now.duration_since(at) >= WARN_EVERY,
        };
        if !due {
            tracing::debug!(endpoint = %self.endpoint, error = %failure, ?retry_in, "export attempt failed");
            return;
        }
        let since_warned = attempts - state.warned.map_or(0, |(_, count)| count);
        state.warned = Some((now, attempts));
        drop(state);
        let failing_for = now.duration_since(since);
        match (attempts, retry_in) {
            (1, Some(delay)) => tracing::warn!(
                endpoint = %self.endpoint, error = %failure, retry_in = ?delay,
                "export attempt failed; retrying (an outage is reported again at most every {WARN_EVERY:?})"
            ),
            (1, None) => tracing::warn!(endpoint = %self.endpoint, error = %failure, "export attempt failed"),
            _ => tracing::warn!(
                endpoint = %self.endpoint, error = %failure, failed_attempts = attempts, since_last_report = since_warned,
                ?failing_for, "the collector is still failing"
            ),
        }
    }

    /// Records a successful attempt: the outage, if any, is over.
    pub(crate) fn succeeded(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.failing.store(false, Ordering::Relaxed);
        if let Some(since) = state.since.take() {
            let failed_attempts = std::mem::take(&mut state.failed_attempts);
            state.warned = None;
            drop(state);
            tracing::info!(endpoint = %self.endpoint, failed_attempts, after = ?since.elapsed(), "export recovered");
        }
    }

    /// The outage going on, if any.
    pub(crate) fn current(&self) -> Option<Outage> {
        if !self.failing.load(Ordering::Relaxed) {
            return None;
        }
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let since = state.since?;
        Some(Outage {
            endpoint: self.endpoint.clone(),
            failed_attempts: state.failed_attempts,
            failing_for: since.elapsed(),
            last_failure: state.last_failure.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_counts_its_attempts_until_a_success_ends_it() {
        let tracker = OutageTracker::new("http://127.0.0.1:4317".into());
        assert_eq!(tracker.current(), None);
        tracker.failed(&"connection refused", Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(1500)).await;
        tracker.failed(&"connection reset", None);
        let outage = tracker.current().expect("an outage");
        assert_eq!(outage.failed_attempts, 2);
        assert_eq!(outage.failing_for, Duration::from_millis(1500));
        assert_eq!(outage.last_failure, "connection reset");
        assert_eq!(
            outage.to_string(),
            "the collector at http://127.0.0.1:4317 failed 2 attempt(s) over 1.5s, the last with: connection reset"
        );
        tracker.succeeded();
        assert_eq!(tracker.current(), None);
        tracker.failed(&"refused again", None);
        assert_eq!(tracker.current().map(|o| o.failed_attempts), Some(1), "a new outage starts from one");
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_reported_at_once_then_at_most_every_ten_seconds() {
        let tracker = OutageTracker::new("http://collector".into());
        let due = |tracker: &OutageTracker| tracker.state.lock().unwrap().warned.map(|(_, count)| count);
        tracker.failed(&"down", Some(Duration::from_secs(1)));
        assert_eq!(due(&tracker), Some(1), "the first failure is reported at once");
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(1)).await;
            tracker.failed(&"down", Some(Duration::from_secs(1)));
        }
        assert_eq!(due(&tracker), Some(1), "not again within ten seconds");
        tokio::time::advance(WARN_EVERY).await;
        tracker.failed(&"down", None);
        assert_eq!(due(&tracker), Some(7), "reported again, with the count");
    }
}
