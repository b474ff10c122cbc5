//! The consumer side of a [`BackgroundSink`](crate::BackgroundSink): the
//! [`SinkDrain`] trait and the error a drain reports.

use std::error::Error;
use std::fmt;
use std::future::Future;

/// Where the batches of a [`BackgroundSink`](crate::BackgroundSink) go.
///
/// A drain is owned by the sink's actor task and runs only there, never on a
/// producer's path. Its methods take `&mut self` and are awaited one at a
/// time: `write_batch` is never called concurrently for one drain instance.
///
/// A drain must not block the thread it runs on: use async I/O, or move
/// blocking work to [`tokio::task::spawn_blocking`]. The test
/// `tests/sync_in_async.rs` rejects blocking file, socket and sleep calls in
/// any `impl SinkDrain` under `src/`.
///
/// # Example
///
/// ```
/// use otlp_sink::{sink::DrainError, SinkDrain};
///
/// /// Keeps every batch in memory.
/// struct Collect(Vec<Vec<u64>>);
///
/// impl SinkDrain<u64> for Collect {
///     async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
///         self.0.push(batch);
///         Ok(())
///     }
/// }
/// ```
pub trait SinkDrain<T: Send>: Send + 'static {
    /// Writes one batch. The batch is never empty.
    ///
    /// A drain may return before the batch is durable (for example, once a
    /// request is on the wire); [`flush_durable`](Self::flush_durable) is where
    /// it waits for confirmation.
    ///
    /// # Errors
    ///
    /// A failed write is logged and counted by the sink, reported by the next
    /// [`flush`](crate::BackgroundSink::flush), and the actor goes on with the
    /// next batch: the sink never retries a batch itself.
    fn write_batch(&mut self, batch: Vec<T>) -> impl Future<Output = Result<(), DrainError>> + Send;

    /// The size of `item` as this drain will write it, in bytes, for a sink
    /// that cuts its batches by bytes ([`SinkConfig::with_batch_bytes`](crate::SinkConfig::with_batch_bytes)).
    /// Called by the actor for every item it batches, and only when that
    /// setting is on: it must be cheap.
    ///
    /// The default weighs every item 0, so batches are cut by count only.
    fn item_bytes(&self, item: &T) -> usize {
        let _ = item;
        0
    }

    /// Returns once everything written so far is durable in this drain's sense
    /// (for a network drain: acknowledged by the peer).
    ///
    /// The default returns `Ok(())` at once, which is right for a drain whose
    /// `write_batch` is already durable when it returns.
    ///
    /// # Errors
    ///
    /// The first failure among the writes it waited for.
    fn flush_durable(&mut self) -> impl Future<Output = Result<(), DrainError>> + Send {
        async { Ok(()) }
    }

    /// Called once, last, when the sink shuts down, after the final batch was
    /// written. It should make everything durable and release resources.
    ///
    /// The default returns `Ok(())` at once.
    ///
    /// # Errors
    ///
    /// Anything that could not be made durable.
    fn close(&mut self) -> impl Future<Output = Result<(), DrainError>> + Send {
        async { Ok(()) }
    }
}

/// What kind of failure a [`DrainError`] is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrainErrorKind {
    /// The destination accepted the request but refused some items for good
    /// (OTLP partial success). They are not retried and are not durable.
    Rejected,
    /// The destination refused the data with an error that retrying cannot fix.
    Permanent,
    /// Retryable failures went on until the retry budget ran out.
    RetriesExhausted,
    /// The destination did not answer in time.
    TimedOut,
    /// An item is too large to be sent on its own.
    TooLarge,
    /// An item is malformed (for example, a histogram whose bucket counts do
    /// not fit its bounds) and was not sent.
    Invalid,
    /// The drain is closed and accepts nothing more.
    Closed,
    /// The drain's disk store (the spool) refused or lost items: full, a
    /// write or an fsync failed, a record expired or was damaged.
    Storage,
    /// Not a loss: the items are kept on disk (the spool) for a later
    /// delivery, by this process or the next start.
    Kept,
    /// Any other failure.
    Other,
}

impl fmt::Display for DrainErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rejected => "rejected by the destination",
            Self::Permanent => "permanent failure",
            Self::RetriesExhausted => "retries exhausted",
            Self::TimedOut => "timed out",
            Self::TooLarge => "item too large",
            Self::Invalid => "invalid item, not sent",
            Self::Closed => "drain closed",
            Self::Storage => "spool failure",
            Self::Kept => "kept in the spool for a later delivery",
            Self::Other => "drain failure",
        })
    }
}

/// The error a [`SinkDrain`] returns.
///
/// It carries a [`kind`](Self::kind), the number of items it cost when the
/// drain knows it, and the underlying cause as its [`source`](Error::source).
/// `Display` shows the kind and the count; walk `source()` for the cause.
#[derive(Debug)]
pub struct DrainError {
    kind: DrainErrorKind,
    items: Option<u64>,
    /// Further failures the drain folded into this one (it reports the first).
    later_failures: u64,
    source: Box<dyn Error + Send + Sync + 'static>,
}

impl DrainError {
    /// Creates an error of `kind` caused by `source`.
    pub fn new(kind: DrainErrorKind, source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Self { kind, items: None, later_failures: 0, source: source.into() }
    }

    /// Records how many items this failure cost (not delivered, or rejected).
    #[must_use]
    pub fn with_items(mut self, items: u64) -> Self {
        self.items = Some(items);
        self
    }

    /// Records that `count` further failures happened after this one and
    /// are reported through it (a drain that waits for many requests reports
    /// the first failure and counts the rest). A sink adds them to its
    /// flush's [`later_failures`](crate::sink::FlushError::Drain).
    #[must_use]
    pub fn with_later_failures(mut self, count: u64) -> Self {
        self.later_failures = count;
        self
    }

    /// Counts `count` more failures into this one.
    pub(crate) fn add_later_failures(&mut self, count: u64) {
        self.later_failures += count;
    }

    /// How many further failures this error stands for, after itself.
    pub fn later_failures(&self) -> u64 {
        self.later_failures
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> DrainErrorKind {
        self.kind
    }

    /// How many items this failure cost, when the drain knows it.
    pub fn items(&self) -> Option<u64> {
        self.items
    }
}

/// The first failure since the last report, with the count of those after
/// it folded into it ([`DrainError::later_failures`]): how the sink's actor,
/// and a drain that waits on many requests, each report every failure
/// exactly once.
#[derive(Debug, Default)]
pub(crate) struct Unreported(Option<DrainError>);

impl Unreported {
    /// Records `failure`: the first one is kept, a later one (and those it
    /// stands for) counted into it.
    pub(crate) fn record(&mut self, failure: DrainError) {
        match &mut self.0 {
            None => self.0 = Some(failure),
            Some(first) => first.add_later_failures(1 + failure.later_failures()),
        }
    }

    /// Takes the failure to report, if any, leaving nothing.
    pub(crate) fn take(&mut self) -> Option<DrainError> {
        self.0.take()
    }
}

// The cause is not repeated here: it is the `source()`, which error
// reporters print after this line.
impl fmt::Display for DrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(items) = self.items {
            write!(f, " ({items} items)")?;
        }
        Ok(())
    }
}

impl Error for DrainError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_items_and_cause() {
        let err = DrainError::new(DrainErrorKind::Rejected, "bad data point").with_items(3);
        assert_eq!(err.to_string(), "rejected by the destination (3 items)");
        assert_eq!(err.kind(), DrainErrorKind::Rejected);
        assert_eq!(err.items(), Some(3));
        assert_eq!(err.source().unwrap().to_string(), "bad data point");
    }
}
