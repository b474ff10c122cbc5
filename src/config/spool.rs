//! The durable spool's settings: where, how large, how old, and what a full
//! spool does. Pure data; the spool itself is under the drains.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a full spool does with a new export request.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Refuse the new request: the spool keeps the start of an outage.
    DropNewest,
    /// Delete the oldest segment until the new request fits: the spool keeps
    /// the most recent `max_bytes` of telemetry. The default: the oldest
    /// data is the first a collector refuses for its age when it returns,
    /// and the newest is what dashboards and alerts need; a cumulative
    /// metric's newest point also carries what its older points held.
    #[default]
    EvictOldest,
}

/// What a flush waits for, with a spool.
///
/// Without a spool both levels mean the same: the collector acknowledged
/// everything before the flush (there is no disk to persist to).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushLevel {
    /// The collector acknowledged everything accepted before the flush (or
    /// refused it for good, which the flush reports). The default.
    #[default]
    Delivered,
    /// Everything accepted before the flush is written to the spool and
    /// fsynced: it survives a crash of the process and a power loss, and
    /// the next start delivers it if this one does not.
    Persisted,
}

/// Where and within what bounds a signal's spool keeps its export requests.
///
/// ```
/// use std::time::Duration;
/// use otlp_sink::config::{FullPolicy, SpoolConfig};
///
/// let spool = SpoolConfig::new("/var/lib/myapp/otlp-spool/metrics")
///     .with_max_bytes(64 << 20)
///     .with_max_record_age(Some(Duration::from_secs(6 * 3600)))
///     .with_full_policy(FullPolicy::EvictOldest);
/// assert_eq!(spool.max_bytes(), 64 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    dir: PathBuf,
    max_bytes: u64,
    max_record_age: Option<Duration>,
    full_policy: FullPolicy,
}

impl SpoolConfig {
    /// The defaults: 256 MiB, records dropped at replay after 24 hours,
    /// [`FullPolicy::EvictOldest`].
    ///
    /// `dir` is created mode 0700 if missing; it must belong to this user
    /// and be writable by nobody else, and one process at a time holds it
    /// (a lock file). Choose a directory of the application's own, never a
    /// shared temporary directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            max_bytes: 256 << 20,
            max_record_age: Some(Duration::from_secs(24 * 3600)),
            full_policy: FullPolicy::EvictOldest,
        }
    }

    /// The most bytes the spool's files may hold (at least 4096; checked
    /// when the spool opens).
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Records older than this are dropped (counted) instead of sent;
    /// `None`: no age bound.
    #[must_use]
    pub fn with_max_record_age(mut self, age: Option<Duration>) -> Self {
        self.max_record_age = age;
        self
    }

    /// What a full spool does.
    #[must_use]
    pub fn with_full_policy(mut self, policy: FullPolicy) -> Self {
        self.full_policy = policy;
        self
    }

    /// The same bounds for another directory.
    #[must_use]
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The size bound in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The age bound.
    pub fn max_record_age(&self) -> Option<Duration> {
        self.max_record_age
    }

    /// The full-spool policy.
    pub fn full_policy(&self) -> FullPolicy {
        self.full_policy
    }
}
