//! Errors of the SDK adapters, and how they reach the SDK's `OTelSdkError`.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;

use super::runtime::RunError;
use crate::{ConfigError, ConnectError, ExporterConfigError, FlushError, ShutdownError, Signal};

/// Why an [`OtlpExporter`](crate::OtlpExporter) could not be built.
#[non_exhaustive]
#[derive(Debug)]
pub enum BuildError {
    /// The exporter settings are invalid: a bad environment variable, a
    /// variable naming something this version does not support (such as
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`), a bad setting made in
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
        source: ConfigError,
    },
    /// The gRPC client could not be set up (TLS settings refused).
    Connect {
        /// The signal whose client failed.
        signal: Signal,
        /// Why.
        source: ConnectError,
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
            Self::Sink { signal, .. } => write!(f, "invalid {} sink settings", signal_name(*signal)),
            Self::Connect { signal, .. } => write!(f, "cannot set up the {} gRPC client", signal_name(*signal)),
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
            Self::Runtime(e) => Some(e),
        }
    }
}

/// Why a flush, collection or shutdown of the SDK adapters did not return
/// `Ok`.
///
/// The SDK's traits return [`OTelSdkError`]; this converts into it
/// (`From`), keeping the whole cause chain in the message. A timeout becomes
/// [`OTelSdkError::Timeout`], a second shutdown
/// [`OTelSdkError::AlreadyShutdown`], anything else
/// [`OTelSdkError::InternalFailure`].
#[non_exhaustive]
#[derive(Debug)]
pub enum SdkError {
    /// The barrier returned: something sent since the previous barrier was
    /// not acknowledged (refused, rejected, retries exhausted...). The source
    /// says what and how many items.
    Flush {
        /// The signal.
        signal: Signal,
        /// The sink's report: the first failure and how many more.
        source: FlushError,
    },
    /// The shutdown ended, but not cleanly: failures no flush reported, or
    /// the sink's deadline passed with items not written.
    Shutdown {
        /// The signal.
        signal: Signal,
        /// The sink's report.
        source: ShutdownError,
    },
    /// Items were dropped since the previous barrier because the queue was
    /// full (or, for the metric reader, stayed full past the deadline): the
    /// collector never saw them. Counted in the sink's `dropped`.
    Dropped {
        /// The signal.
        signal: Signal,
        /// How many items.
        items: u64,
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

pub(crate) fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Metrics => "metrics",
        Signal::Traces => "traces",
        Signal::Logs => "logs",
    }
}

impl SdkError {
    /// Reads a [`RunError`] of an operation on `signal`.
    pub(crate) fn from_run(err: RunError, signal: Signal, shutdown: bool, timeout: Duration) -> Self {
        match err {
            RunError::TimedOut if shutdown => Self::ShutdownTimedOut { signal, timeout },
            RunError::TimedOut => Self::FlushTimedOut { signal, timeout },
            RunError::Stopped => Self::AlreadyShutdown { signal },
            RunError::OnExportRuntime => Self::OnExportRuntime,
        }
    }

    /// Reads a barrier's error.
    pub(crate) fn from_flush(err: FlushError, signal: Signal) -> Self {
        match err {
            FlushError::Closed => Self::AlreadyShutdown { signal },
            source => Self::Flush { signal, source },
        }
    }

    /// The signal concerned, when there is one.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            Self::Flush { signal, .. }
            | Self::Shutdown { signal, .. }
            | Self::FlushTimedOut { signal, .. }
            | Self::ShutdownTimedOut { signal, .. }
            | Self::Dropped { signal, .. }
            | Self::AlreadyShutdown { signal } => Some(*signal),
            Self::Collect(_) => Some(Signal::Metrics),
            Self::OnExportRuntime => None,
        }
    }
}

impl fmt::Display for SdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flush { signal, .. } => write!(f, "{} flush failed", signal_name(*signal)),
            Self::Shutdown { signal, .. } => write!(f, "{} shutdown did not end cleanly", signal_name(*signal)),
            Self::Dropped { signal, items } => write!(
                f,
                "{items} {} item(s) were dropped since the previous flush because the queue was full",
                signal_name(*signal)
            ),
            Self::Collect(e) => write!(f, "metric collection failed: {e}"),
            Self::FlushTimedOut { signal, timeout } => {
                write!(f, "{} flush did not finish within {timeout:?}", signal_name(*signal))
            }
            Self::ShutdownTimedOut { signal, timeout } => {
                write!(f, "{} shutdown did not finish within {timeout:?}", signal_name(*signal))
            }
            Self::AlreadyShutdown { signal } => write!(f, "the {} pipeline is shut down", signal_name(*signal)),
            Self::OnExportRuntime => {
                f.write_str("called from the export runtime's own thread, where waiting would wait on itself; refused")
            }
        }
    }
}

impl Error for SdkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Flush { source, .. } => Some(source),
            Self::Shutdown { source, .. } => Some(source),
            Self::Collect(e) => Some(e),
            _ => None,
        }
    }
}

/// The error and its causes, joined: `a: b: c`. A cause whose text its
/// parent already shows (a [`DrainError`](crate::DrainError) prints its
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
            SdkError::FlushTimedOut { timeout, .. } | SdkError::ShutdownTimedOut { timeout, .. } => {
                OTelSdkError::Timeout(timeout)
            }
            SdkError::AlreadyShutdown { .. } => OTelSdkError::AlreadyShutdown,
            SdkError::Collect(e) => e,
            other => OTelSdkError::InternalFailure(chain(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DrainError, DrainErrorKind};

    #[test]
    fn a_flush_failure_keeps_its_message_counts_and_cause_in_the_sdk_error() {
        let drain = DrainError::new(DrainErrorKind::Permanent, "collector refused: INVALID_ARGUMENT").with_items(10);
        let err = SdkError::from_flush(FlushError::Drain { source: drain, later_failures: 2 }, Signal::Traces);
        let OTelSdkError::InternalFailure(text) = OTelSdkError::from(err) else { panic!("not an internal failure") };
        assert_eq!(
            text,
            "traces flush failed: flush failed: a write failed since the previous flush, and 2 more after it: \
             permanent failure (10 items): collector refused: INVALID_ARGUMENT"
        );
    }

    #[test]
    fn timeouts_and_second_shutdowns_keep_their_sdk_meaning() {
        let timeout = Duration::from_millis(1500);
        let err = SdkError::from_run(RunError::TimedOut, Signal::Logs, false, timeout);
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::Timeout(t) if t == timeout));
        let err = SdkError::from_run(RunError::TimedOut, Signal::Logs, true, timeout);
        assert_eq!(err.to_string(), "logs shutdown did not finish within 1.5s");
        let err = SdkError::from_flush(FlushError::Closed, Signal::Metrics);
        assert_eq!(err.signal(), Some(Signal::Metrics));
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::AlreadyShutdown));
        let err = SdkError::from_run(RunError::OnExportRuntime, Signal::Metrics, false, timeout);
        assert!(matches!(OTelSdkError::from(err), OTelSdkError::InternalFailure(m) if m.contains("export runtime")));
    }
}
