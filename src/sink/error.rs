//! Errors of the sink's producer, flush and shutdown paths.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use super::DrainError;

/// Why [`try_push`](crate::BackgroundSink::try_push) refused a message. The
/// message is handed back, so the caller can retry, spill or count it.
#[non_exhaustive]
pub enum TryPushError<T> {
    /// The queue is full and the overflow policy is
    /// [`Overflow::Drop`](crate::sink::Overflow::Drop). The message was counted as dropped.
    Full(T),
    /// The overflow policy is [`Overflow::Block`](crate::sink::Overflow::Block):
    /// `try_push` never queues; use
    /// [`push_blocking`](crate::BackgroundSink::push_blocking). Not counted.
    WouldBlock(T),
    /// The sink is shut down. Not counted.
    Closed(T),
}

impl<T> TryPushError<T> {
    /// Takes back the refused message.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(msg) | Self::WouldBlock(msg) | Self::Closed(msg) => msg,
        }
    }
}

// Manual impls: the message type need not be `Debug`, and must not be printed.
impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "Full(..)",
            Self::WouldBlock(_) => "WouldBlock(..)",
            Self::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "sink queue is full; message dropped",
            Self::WouldBlock(_) => "sink overflow policy is Block; use push_blocking",
            Self::Closed(_) => "sink is shut down",
        })
    }
}

impl<T> Error for TryPushError<T> {}

/// Why [`push_blocking`](crate::BackgroundSink::push_blocking) refused a
/// message. The message is handed back.
#[non_exhaustive]
pub enum PushError<T> {
    /// The sink is shut down.
    Closed(T),
}

impl<T> PushError<T> {
    /// Takes back the refused message.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(msg) => msg,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Closed(..)")
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sink is shut down")
    }
}

impl<T> Error for PushError<T> {}

/// Why a [`flush`](crate::BackgroundSink::flush) barrier did not return `Ok`.
#[non_exhaustive]
#[derive(Debug)]
pub enum FlushError {
    /// A write or durability check failed since the previous barrier that
    /// reported. `source` is the first such failure; `later_failures` counts
    /// the ones after it in the same window, so every failure is reported by
    /// exactly one barrier.
    Drain {
        /// The first failure.
        source: DrainError,
        /// How many more failures happened before this barrier.
        later_failures: u64,
    },
    /// The sink's actor is gone (shut down, or aborted at a shutdown deadline):
    /// nothing is known about durability.
    Closed,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Drain { later_failures: 0, .. } => {
                f.write_str("flush failed: a write failed since the previous flush")
            }
            Self::Drain { later_failures, .. } => {
                write!(f, "flush failed: a write failed since the previous flush, and {later_failures} more after it")
            }
            Self::Closed => f.write_str("flush failed: the sink is shut down"),
        }
    }
}

impl Error for FlushError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Drain { source, .. } => Some(source),
            Self::Closed => None,
        }
    }
}

/// Why shutting a sink down did not end cleanly.
#[non_exhaustive]
#[derive(Debug)]
pub enum ShutdownError {
    /// Failures after the last reported barrier (during the final drain, the
    /// last write or [`close`](crate::SinkDrain::close)) that no flush reported.
    Drain {
        /// The first unreported failure.
        source: DrainError,
        /// How many more failures came after it.
        later_failures: u64,
    },
    /// The actor did not finish within the deadline (a drain hung) and was
    /// aborted. `pending` messages were accepted but never handed to the
    /// drain; they are counted in [`SinkStats::abandoned`](crate::sink::SinkStats::abandoned).
    /// What the drain held is for the drain to count (the gRPC drains count
    /// their unfinished requests as failed).
    TimedOut {
        /// The deadline that passed.
        deadline: Duration,
        /// Messages accepted but never handed to the drain.
        pending: u64,
    },
    /// The actor task panicked (a drain panicked) or was cancelled by its runtime.
    ActorFailed(tokio::task::JoinError),
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Drain { later_failures, .. } => {
                write!(f, "sink shut down with unreported write failures (first shown, {later_failures} more)")
            }
            Self::TimedOut { deadline, pending } => write!(
                f,
                "sink shutdown did not finish within {deadline:?}; the actor was aborted with {pending} messages never handed to the drain"
            ),
            Self::ActorFailed(_) => f.write_str("sink actor task failed"),
        }
    }
}

impl Error for ShutdownError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Drain { source, .. } => Some(source),
            Self::TimedOut { .. } => None,
            Self::ActorFailed(e) => Some(e),
        }
    }
}
