//! The span adapters: [`OtlpSpanProcessor`] (straight into the sink) and
//! [`OtlpSpanExporter`] (under the SDK's `BatchSpanProcessor`), and the drain
//! that converts spans on the export runtime.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use opentelemetry_sdk::Resource as SdkResource;

use super::convert;
use super::error::SdkError;
use super::runtime::ExportRuntime;
use super::shared::ExporterState;
use crate::Signal;

/// A [`SpanProcessor`] that queues each ended span straight into the traces
/// sink: no second queue, no thread of its own.
///
/// - `on_end` (on the thread that ends the span) drops unsampled spans, as
///   the SDK's processors do, and spans ended on the exporter's own threads
///   (see [`OtlpExporter`](crate::OtlpExporter)'s *No feedback*), and
///   `try_push`es the rest: it never waits and
///   takes no lock; a full queue is a counted drop. The span is converted to
///   OTLP later, on the export runtime, so the caller pays for a queue slot
///   and nothing else.
/// - `force_flush` is the sink's barrier: `Ok` means the collector
///   acknowledged every span ended before the call and none was dropped
///   since the previous flush. Bounded by the
///   [flush timeout](crate::sdk::OtlpExporterBuilder::with_flush_timeout).
/// - `shutdown_with_timeout` shuts the traces sink down, delivering
///   everything, within the timeout.
/// - `set_resource` (called by the provider's builder) sets the resource
///   sent with the spans.
pub struct OtlpSpanProcessor {
    shared: Arc<ExporterState>,
}

impl fmt::Debug for OtlpSpanProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSpanProcessor").finish_non_exhaustive()
    }
}

impl OtlpSpanProcessor {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { shared }
    }
}

impl SpanProcessor for OtlpSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // A span that ends on the exporter's own threads is the transport's
        // (h2's, made by tracing-opentelemetry): exporting it would make
        // more of them, for as long as the process lives.
        if ExportRuntime::on_current_thread() {
            self.shared.traces.count_suppressed();
            return;
        }
        if span.span_context.is_sampled() {
            self.shared.traces.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.shared.flush(Signal::Traces).map_err(Into::into)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.shutdown(Signal::Traces, timeout).map_err(Into::into)
    }

    fn set_resource(&mut self, resource: &SdkResource) {
        self.shared.span_resource.set(convert::resource(resource));
    }
}

/// A [`SpanExporter`] for the SDK's `BatchSpanProcessor`: `export` queues
/// the batch in the traces sink without waiting (drops are counted and
/// reported as an error the SDK logs).
///
/// The SDK's batch processor never calls its exporter's `force_flush`, so
/// under it `provider.force_flush()` is not a barrier: call this exporter's
/// [`force_flush`](SpanExporter::force_flush) (or
/// [`OtlpExporter::force_flush`](crate::OtlpExporter::force_flush)) after
/// it, or use [`OtlpSpanProcessor`]. The provider's shutdown reaches this
/// exporter's shutdown, which delivers everything.
pub struct OtlpSpanExporter {
    shared: Arc<ExporterState>,
}

impl fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSpanExporter").finish_non_exhaustive()
    }
}

impl OtlpSpanExporter {
    pub(crate) fn new(shared: Arc<ExporterState>) -> Self {
        Self { shared }
    }

    fn push(&self, batch: Vec<SpanData>) -> Result<(), SdkError> {
        let pipe = &self.shared.traces;
        let mut refused = 0_u64;
        for span in batch {
            refused += u64::from(!pipe.push(span));
        }
        match refused {
            0 => Ok(()),
            _ if pipe.sink.is_closed() => Err(SdkError::AlreadyShutdown { signal: Signal::Traces }),
            items => Err(SdkError::dropped_at_export(Signal::Traces, items)),
        }
    }
}

impl SpanExporter for OtlpSpanExporter {
    /// Queues the batch and returns at once: the future is already complete.
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(self.push(batch).map_err(Into::into))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.shutdown(Signal::Traces, timeout).map_err(Into::into)
    }

    /// The traces sink's barrier.
    fn force_flush(&self) -> OTelSdkResult {
        self.shared.flush(Signal::Traces).map_err(Into::into)
    }

    fn set_resource(&mut self, resource: &SdkResource) {
        self.shared.span_resource.set(convert::resource(resource));
    }
}
