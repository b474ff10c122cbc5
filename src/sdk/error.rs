//! Errors of the SDK adapters, and how they reach the SDK's `OTelSdkError`.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;

use super::runtime::RunError;
use crate::{
    config::ExporterConfigError,
    deliver::{Outage, SpoolOpenError},
    sink::{DrainError, SinkConfigError},
    tls::ConnectError,
    Signal,
};

/// Why an [`OtlpExporter`](crate::OtlpExporter) could not be built.
#[non_exhaustive]
#[derive(Debug)]
pub enum BuildError {
    /// The exporter settings are invalid: a bad environment variable, a
    /// variable naming something this version does not support (such as
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), a bad setting made in
    /// code, or a TLS file that cannot be read.
    ///
    /// Its `Display` is the [`ExporterConfigError`]'s: the variable or
    /// setting, the value (never a header value) and what is wrong, for
    /// example `invalid OTEL_EXPORTER_OTLP_TIMEOUT = "soon": not a
    /// non-negative whole number of milliseconds`. Its
    /// [`source`](Error::source) is therefore the cause below that error
    /// (the parse or I/O error), so that a printed chain does not repeat it.
    Config {
        /// The signal whose own variable is at fault
        /// (`OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`: logs), as
        /// [`ExporterConfigError::signal`] says. `None` for a generic
        /// `OTEL_EXPORTER_OTLP_*` variable or a setting made in code, which
        /// apply to every signal and are reported once.
        signal: Option<Signal>,
        /// What is wrong, naming the variable or setting and the value.
        source: ExporterConfigError,
    },
    /// A sink setting is out of range.
    Sink {
        /// The signal whose sink settings are invalid.
        signal: Signal,
        /// The setting and its value.
        source: SinkConfigError,
    },
    /// The signal's OTLP client (gRPC or HTTP) could not be set up (TLS
    /// settings refused).
    Connect {
        /// The signal whose client failed.
        signal: Signal,
        /// Why.
        source: ConnectError,
    },
    /// The signal's spool directory could not be opened: held by another
    /// process (its lock file), unsafe permissions, an I/O error. The
    /// message names the directory.
    Spool {
        /// The signal whose spool failed.
        signal: Signal,
        /// Why, naming the directory.
        source: SpoolOpenError,
    },
    /// The export runtime's threads could not be started.
    Runtime(io::Error),
}

impl BuildError {
    /// A configuration error, under the signal its variable belongs to.
    pub(crate) fn config(source: ExporterConfigError) -> Self {
        Self::Config { signal: source.signal(), source }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The variable (per signal or not) or the setting names itself.
            Self::Config { source, .. } => fmt::Display::fmt(source, f),
            Self::Sink { signal, .. } => write!(f, "invalid {} sink settings", signal.name()),
            Self::Connect { signal, .. } => write!(f, "cannot set up the {} OTLP client", signal.name()),
            Self::Spool { signal, source } => write!(f, "cannot open the {} spool: {source}", signal.name()),
            Self::Runtime(_) => f.write_str("cannot start the export runtime"),
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // `Display` already shows the configuration error itself.
            Self::Config { source, .. } => source.source(),
            Self::Sink { source, .. } => Some(source),
            Self::Connect { source, .. } => Some(source),
            // `Display` shows the spool's error itself.
            Self::Spool { source, .. } => source.source(),
            Self::Runtime(e) => Some(e),
        }
    }
}

/// What an operation of the SDK adapters was doing when it failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Handing a batch to the queue (`export` of an exporter under the SDK's
    /// own batch processor or periodic reader).
    Export,
    /// A `force_flush`.
    Flush,
    /// A shutdown (explicit, or the exporter's drop).
    Shutdown,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Flush => "flush",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Items of one signal that were not delivered to the collector, by cause.
/// A flush reports those lost since the previous flush or shutdown reported;
/// a shutdown, those since the last flush. Each item is reported once.
///
/// Items are metric data points, spans or log records, according to the
/// signal. The same items are counted, for the whole life of the exporter,
/// in [`OtlpExporter::stats`](crate::OtlpExporter::stats).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Undelivered {
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Refused by the collector item by item (its partial success), or not
    /// sent because they were too large or invalid. Never retried.
    pub rejected: u64,
    /// In requests the collector refused, or that did not reach it before
    /// the retry budget ran out.
    pub failed: u64,
    /// Still queued, or sent and awaiting the collector's answer, when a
    /// shutdown's deadline passed: abandoned unconfirmed (some may have
    /// reached the collector).
    pub unfinished: u64,
    /// Recorded after the signal was shut down, and refused.
    pub refused_after_shutdown: u64,
    /// Lost to the spool's bounds or to damage: the spool full, a record
    /// past its age bound or damaged on disk, a write the disk refused.
    pub spool_dropped: u64,
    /// Not lost: kept in the spool at shutdown, for the next start to
    /// deliver (reported by a shutdown only).
    pub kept: u64,
}

impl Undelivered {
    /// Every item not delivered, whatever the cause.
    pub fn total(&self) -> u64 {
        self.dropped
            + self.rejected
            + self.failed
            + self.unfinished
            + self.refused_after_shutdown
            + self.spool_dropped
            + self.kept
    }

    /// The items lost, whatever the cause: [`total`](Self::total) but the
    /// items [`kept`](Self::kept) in the spool.
    pub fn lost(&self) -> u64 {
        self.total() - self.kept
    }

    /// What is in `self` and was not in `earlier` (counters only grow).
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            dropped: self.dropped.saturating_sub(earlier.dropped),
            rejected: self.rejected.saturating_sub(earlier.rejected),
            failed: self.failed.saturating_sub(earlier.failed),
            unfinished: self.unfinished.saturating_sub(earlier.unfinished),
            refused_after_shutdown: self.refused_after_shutdown.saturating_sub(earlier.refused_after_shutdown),
            spool_dropped: self.spool_dropped.saturating_sub(earlier.spool_dropped),
            kept: self.kept,
        }
    }

    /// `1 200 spans not delivered: 1 000 dropped because the queue was full, 200 ...`.
    fn describe(&self, signal: Signal, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} not delivered", items(self.total(), signal))?;
        let causes = [
            (self.dropped, "dropped because the queue was full"),
            (self.rejected, "rejected by the collector or too large to send"),
            (self.failed, "in requests the collector refused or never answered"),
            (self.unfinished, "still queued or awaiting the collector's answer at the deadline"),
            (self.refused_after_shutdown, "recorded after shutdown"),
            (self.spool_dropped, "lost to the spool's bounds or damage"),
            (self.kept, "kept in the spool for the next start"),
        ];
        let mut separator = ": ";
        for (count, cause) in causes.into_iter().filter(|(count, _)| *count > 0) {
            write!(f, "{separator}{count} {cause}")?;
            separator = ", ";
        }
        Ok(())
    }
}

/// What a flush that timed out was still waiting for.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waiting {
    /// Items still in the queue, not yet sent.
    pub queued: u64,
    /// Export requests sent and not yet answered.
    pub requests_in_flight: u64,
    /// The collector's failures so far, when its latest attempt failed.
    pub outage: Option<Outage>,
    /// With a spool, at the `Delivered` level: items the flush waited for
    /// that are not delivered yet, all of them safe in the spool (fsynced)
    /// and delivered later, or by the next start.
    pub persisted: u64,
}

/// Why a flush, collection or shutdown of the SDK adapters did not return
/// `Ok`. Its text says, in items of the signal (metric data points, spans,
/// log records), what was not delivered and why.
///
/// The SDK's traits return [`OTelSdkError`]; this converts into it
/// (`From`), keeping the whole message. A second shutdown becomes
/// [`OTelSdkError::AlreadyShutdown`], a timeout with nothing more to say
/// [`OTelSdkError::Timeout`], anything else
/// [`OTelSdkError::InternalFailure`] with the full text (so a timed-out flush
/// still names the collector's last failure).
#[non_exhaustive]
#[derive(Debug)]
pub enum SdkError {
    /// Items were not delivered. `cause` is the first failure the collector
    /// or the transport reported, when one did (a full queue has none).
    NotDelivered {
        /// The signal.
        signal: Signal,
        /// What reported it.
        operation: Operation,
        /// What was not delivered, by cause.
        lost: Undelivered,
        /// The first failure, with the count of later ones inside it.
        cause: Option<DrainError>,
    },
    /// The SDK failed to collect metrics.
    Collect(OTelSdkError),
    /// The flush did not finish within its timeout. The items are still
    /// queued or in flight; a later flush reports what becomes of them.
    FlushTimedOut {
        /// The signal.
        signal: Signal,
        /// The timeout that passed.
        timeout: Duration,
        /// What it was still waiting for.
        waiting: Waiting,
    },
    /// The shutdown did not finish within its timeout.
    ShutdownTimedOut {
        /// The signal.
        signal: Signal,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// The signal's pipeline is already shut down.
    AlreadyShutdown {
        /// The signal.
        signal: Signal,
    },
    /// Called from a thread of the export runtime itself (for example from a
    /// metric callback during a collection), where waiting would wait on
    /// itself. Refused at once.
    OnExportRuntime,
}

/// `1 span`, `3 log records`, `2 metric points`.
pub(crate) fn items(count: u64, signal: Signal) -> String {
    let (one, many) = match signal {
        Signal::Metrics => ("metric point", "metric points"),
        Signal::Traces => ("span", "spans"),
        Signal::Logs => ("log record", "log records"),
    };
    format!("{count} {}", if count == 1 { one } else { many })
}

impl SdkError {
    /// Reads a [`RunError`] of an operation on `signal` that was not a flush
    /// (a flush's timeout says what it waited for: see [`FlushTimedOut`](Self::FlushTimedOut)).
    pub(crate) fn from_run(err: RunError, signal: Signal, timeout: Duration) -> Self {
        match err {
            RunError::TimedOut => Self::ShutdownTimedOut { signal, timeout },
            RunError::Stopped => Self::AlreadyShutdown { signal },
            RunError::OnExportRuntime => Self::OnExportRuntime,
        }
    }

    /// `items` dropped for a full queue by an exporter's `export`.
    pub(crate) fn dropped_at_export(signal: Signal, items: u64) -> Self {
        let lost = Undelivered { dropped: items, ..Undelivered::default() };
        Self::NotDelivered { signal, operation: Operation::Export, lost, cause: None }
    }

    /// The signal concerned, when there is one.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Self::NotDelivered { signal, .. }
            | Self::FlushTimedOut { signal, .. }
            | Self::ShutdownTimedOut { signal, .. }
            | Self::AlreadyShutdown { signal } => Some(*signal),
            Self::Collect(_) => Some(Signal::Metrics),
            Self::OnExportRuntime => None,
        }
    }

    /// What was not delivered, for [`NotDelivered`](Self::NotDelivered).
    pub fn undelivered(&self) -> Option<Undelivered> {
        match self {
            Self::NotDelivered { lost, .. } => Some(*lost),
            _ => None,
        }
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDelivered { signal, operation, lost, .. } => {
                write!(f, "{} {}: ", signal.name(), operation.name())?;
                lost.describe(*signal, f)
            }
            Self::Collect(e) => write!(f, "metric collection failed: {e}"),
            Self::FlushTimedOut { signal, timeout, waiting } => {
                write!(f, "{} flush did not finish within {timeout:?}", signal.name())?;
                let mut separator = ": ";
                if waiting.queued > 0 {
                    write!(f, "{separator}{} still queued", items(waiting.queued, *signal))?;
                    separator = ", ";
                }
                if waiting.persisted > 0 {
                    write!(
                        f,
                        "{separator}{} persisted in the spool, not yet delivered (nothing lost)",
                        items(waiting.persisted, *signal)
                    )?;
                    separator = ", ";
                }
                if waiting.requests_in_flight > 0 {
                    write!(f, "{separator}{} request(s) awaiting the collector", waiting.requests_in_flight)?;
                    separator = "; ";
                }
                match &waiting.outage {
                    Some(outage) => write!(f, "{separator}{outage}"),
                    None if waiting.requests_in_flight > 0 => write!(f, "; no attempt has failed yet"),
                    None => Ok(()),
                }
            }
            Self::ShutdownTimedOut { signal, timeout } => {
                write!(f, "{} shutdown did not finish within {timeout:?}", signal.name())
            }
            Self::AlreadyShutdown { signal } => write!(f, "the {} pipeline is shut down", signal.name()),
            Self::OnExportRuntime => {
                f.write_str("called from the export runtime's own thread, where waiting would wait on itself; refused")
            }
        }
    }
}

impl Error for SdkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::NotDelivered { cause: Some(cause), .. } => Some(cause),
            Self::Collect(e) => Some(e),
            _ => None,
        }
    }
}

/// The error and its causes, joined: `a: b: c`. A cause whose text its
/// parent already shows (a [`DrainError`](crate::sink::DrainError) prints its
/// cause) is not repeated.
pub(crate) fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let line = e.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = e.source();
    }
    text
}

impl From<SdkError> for OTelSdkError {
    fn from(err: SdkError) -> Self {
        match err {
            SdkError::FlushTimedOut { timeout, waiting, .. } if waiting == Waiting::default() => {
                OTelSdkError::Timeout(timeout)
            }
            SdkError::ShutdownTimedOut { timeout, .. } => OTelSdkError::Timeout(timeout),
            SdkError::AlreadyShutdown { .. } => OTelSdkError::AlreadyShutdown,
            SdkError::Collect(e) => e,
            other => OTelSdkError::InternalFailure(chain(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::DrainErrorKind;

    #[test]
    fn a_refusal_names_the_items_lost_by_cause_and_keeps_the_collectors_words() {
        let drain = DrainError::new(DrainErrorKind::Permanent, "collector refused: INVALID_ARGUMENT").with_items(10);
        let err = SdkError::NotDelivered {
            signal: Signal::Traces,
            operation: Operation::Flush,
            lost: Undelivered { failed: 10, dropped: 2, ..Undelivered::default() },
            cause: Some(drain),
        };
        let OTelSdkError::InternalFailure(text) = OTelSdkError::from(err) else { panic!("not an internal failure") };
        assert_eq!(
            text,
            "traces flush: 12 spans not delivered: 2 dropped because the queue was full, 10 in requests the \
             collector refused or never answered: permanent failure (10 items): collector refused: INVALID_ARGUMENT"
        );
    }

    #[test]
    fn a_shutdown_past_its_deadline_counts_what_it_abandoned_in_the_signals_words() {
        let err = SdkError::NotDelivered {
            signal: Signal::Logs,
            operation: Operation::Shutdown,
            lost: Undelivered { unfinished: 1, ..Undelivered::default() },
            cause: None,
        };
        let text = err.to_string();
        assert_eq!(
            text,
            "logs shutdown: 1 log record not delivered: 1 still queued or awaiting the collector's answer at the deadline"
        );
        for internal in ["actor", "drain", "sink"] {
            assert!(!text.contains(internal), "{text}");
        }
    }

    #[test]
    fn a_timed_out_flush_names_what_it_waited_for_and_the_last_failure() {
        let waiting = Waiting {
            queued: 500,
            requests_in_flight: 2,
            outage: Some(Outage {
                endpoint: "http://127.0.0.1:4317".into(),
                failed_attempts: 3,
                failing_for: Duration::from_millis(1900),
                last_failure: "connection refused".into(),
            }),
            persisted: 0,
        };
        let err = SdkError::FlushTimedOut { signal: Signal::Traces, timeout: Duration::from_secs(2), waiting };
        let OTelSdkError::InternalFailure(text) = OTelSdkError::from(err) else { panic!("the cause would be lost") };
        assert_eq!(
            text,
            "traces flush did not finish within 2s: 500 spans still queued, 2 request(s) awaiting the collector; \
             the collector at http://127.0.0.1:4317 failed 3 attempt(s) over 1.9s, the last with: connection refused"
        );
        let hanging = Waiting { requests_in_flight: 1, ..Waiting::default() };
        let err =
            SdkError::FlushTimedOut { signal: Signal::Metrics, timeout: Duration::from_secs(2), waiting: hanging };
        assert!(err.to_string().ends_with("1 request(s) awaiting the collector; no attempt has failed yet"), "{err}");
    }

    #[test]
    fn timeouts_and_second_shutdowns_keep_their_sdk_meaning() {
        let timeout = Duration::from_millis(1500);
        let err = SdkError::FlushTimedOut { signal: Signal::Logs, timeout, waiting: Waiting::default() };
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::Timeout(t) if t == timeout));
        let err = SdkError::from_run(RunError::TimedOut, Signal::Logs, timeout);
        assert_eq!(err.to_string(), "logs shutdown did not finish within 1.5s");
        let err = SdkError::from_run(RunError::Stopped, Signal::Metrics, timeout);
        assert_eq!(err.signal(), Some(Signal::Metrics));
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::AlreadyShutdown));
        let err = SdkError::from_run(RunError::OnExportRuntime, Signal::Metrics, timeout);
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::InternalFailure(m) if m.contains("export runtime")));
    }

    #[test]
    fn a_spooled_flush_that_timed_out_and_a_kept_shutdown_say_nothing_is_lost() {
        let waiting = Waiting { persisted: 40, ..Waiting::default() };
        let err = SdkError::FlushTimedOut { signal: Signal::Logs, timeout: Duration::from_secs(1), waiting };
        assert_eq!(
            err.to_string(),
            "logs flush did not finish within 1s: 40 log records persisted in the spool, not yet delivered (nothing lost)"
        );
        let lost = Undelivered { kept: 7, ..Undelivered::default() };
        assert_eq!((lost.total(), lost.lost()), (7, 0));
        let err = SdkError::NotDelivered { signal: Signal::Traces, operation: Operation::Shutdown, lost, cause: None };
        assert_eq!(err.to_string(), "traces shutdown: 7 spans not delivered: 7 kept in the spool for the next start");
    }

    #[test]
    fn item_words_agree_with_their_count() {
        assert_eq!(items(1, Signal::Metrics), "1 metric point");
        assert_eq!(items(2, Signal::Logs), "2 log records");
        assert_eq!(items(0, Signal::Traces), "0 spans");
    }
}
