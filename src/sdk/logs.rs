//! The log adapters: [`OtlpLogProcessor`] (straight into the sink) and
//! [`OtlpLogExporter`] (under the SDK's `BatchLogProcessor`), and the drain
//! that converts records on the export runtime.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::Resource as SdkResource;

use super::convert;
use super::drains::LogItem;
use super::error::SdkError;
use super::runtime::ExportRuntime;
use super::shared::ExporterState;
use crate::Signal;

/// A [`LogProcessor`] that queues each record straight into the logs sink:
/// no second queue, no thread of its own.
///
/// - `emit` (on the thread that logs) drops records made on the exporter's
///   own threads (see [`OtlpExporter`](crate::OtlpExporter)'s *No
///   feedback*), copies the others, since the SDK lends them, and
///   `try_push`es them: it never waits and takes no lock; a full queue
///   is a counted drop. The OTLP conversion happens later, on the export
///   runtime.
/// - `force_flush` is the sink's barrier: `Ok` means the collector
///   acknowledged every record emitted before the call and none was dropped
///   since the previous flush. Bounded by the
///   [flush timeout](crate::sdk::OtlpExporterBuilder::with_flush_timeout).
/// - `shutdown_with_timeout` shuts the logs sink down, delivering
///   everything, within the timeout.
/// - `set_resource` (called by the provider's builder) sets the resource
///   sent with the records.
///
/// A record's target (the module path, for `tracing` events) becomes the
/// name of its instrumentation scope in OTLP, as with the OpenTelemetry OTLP
/// exporter.
pub struct OtlpLogProcessor {
    shared: Arc<ExporterState>,
}

impl fmt::Debug for OtlpLogProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogProcessor").finish_non_exhaustive()
    }
}

impl OtlpLogProcessor {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { shared }
    }
}

impl LogProcessor for OtlpLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        let pipe = &self.shared.logs;
        // A record made on the exporter's own threads is the transport's
        // `tracing` event (or this crate's own warning): never exported.
        if ExportRuntime::on_current_thread() {
            pipe.count_suppressed();
            return;
        }
        if pipe.sink.is_closed() {
            pipe.count_refused(1);
            return;
        }
        pipe.push(LogItem { record: record.clone(), scope: scope.clone() });
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.shared.flush(Signal::Logs).map_err(Into::into)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.shutdown(Signal::Logs, timeout).map_err(Into::into)
    }

    fn set_resource(&mut self, resource: &SdkResource) {
        self.shared.log_resource.set(convert::resource(resource));
    }
}

/// A [`LogExporter`] for the SDK's `BatchLogProcessor`: `export` queues the
/// batch in the logs sink without waiting (drops are counted and reported as
/// an error the SDK logs).
///
/// The SDK's `LogExporter` trait has no `force_flush`, so under the batch
/// processor `provider.force_flush()` is not a barrier: call this exporter's
/// [`force_flush`](Self::force_flush) (or
/// [`OtlpExporter::force_flush`](crate::OtlpExporter::force_flush)) after it,
/// or use [`OtlpLogProcessor`]. The provider's shutdown reaches this
/// exporter's shutdown, which delivers everything.
pub struct OtlpLogExporter {
    shared: Arc<ExporterState>,
}

impl fmt::Debug for OtlpLogExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogExporter").finish_non_exhaustive()
    }
}

impl OtlpLogExporter {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { shared }
    }

    /// The logs sink's barrier: `Ok` once the collector acknowledged every
    /// record exported before the call.
    ///
    /// # Errors
    ///
    /// See [`SdkError`].
    pub fn force_flush(&self) -> Result<(), SdkError> {
        self.shared.flush(Signal::Logs)
    }

    fn push(&self, batch: &LogBatch<'_>) -> Result<(), SdkError> {
        let pipe = &self.shared.logs;
        let mut refused = 0_u64;
        for (record, scope) in batch.iter() {
            refused += u64::from(!pipe.push(LogItem { record: record.clone(), scope: scope.clone() }));
        }
        match refused {
            0 => Ok(()),
            _ if pipe.sink.is_closed() => Err(SdkError::AlreadyShutdown { signal: Signal::Logs }),
            items => Err(SdkError::dropped_at_export(Signal::Logs, items)),
        }
    }
}

impl LogExporter for OtlpLogExporter {
    /// Queues the batch and returns at once: the future is already complete.
    fn export(&self, batch: LogBatch<'_>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.push(&batch).map_err(Into::into))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.shutdown(Signal::Logs, timeout).map_err(Into::into)
    }

    fn set_resource(&mut self, resource: &SdkResource) {
        self.shared.log_resource.set(convert::resource(resource));
    }
}
