//! The drains behind the SDK adapters' sinks: they convert the SDK's spans
//! and log records to this crate's points on the export runtime (never on
//! the thread that recorded them), then hand them to the signal's delivery
//! engine.

use std::sync::{Arc, RwLock};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::SdkLogRecord;
use opentelemetry_sdk::trace::SpanData;

use super::convert::{self, ScopeCache};
use crate::drains::Inner;
use crate::otlp::{EncodedSpan, LogRecord, Logs, Resource, Traces};
use crate::{sink::DrainError, SinkDrain};

/// The resource the SDK gave a signal's adapters through `set_resource`,
/// read by that signal's drain once per batch.
#[derive(Debug, Default)]
pub(crate) struct ResourceSlot(RwLock<Arc<Resource>>);

impl ResourceSlot {
    pub(crate) fn get(&self) -> Arc<Resource> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn set(&self, resource: Resource) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(resource);
    }
}

/// A record as the SDK emitted it, with its logger's scope: what the logs
/// sink queues. Converted to OTLP on the export runtime.
#[derive(Debug)]
pub(crate) struct LogItem {
    pub(crate) record: SdkLogRecord,
    pub(crate) scope: InstrumentationScope,
}

/// Writes the SDK's spans' protobuf bytes ([`EncodedSpan`]s) on the export
/// runtime, then hands them to the OTLP traces drain (gRPC or HTTP, maybe
/// under a spool).
pub(crate) struct SpansAdapterDrain {
    inner: Inner<Traces>,
    resource: Arc<ResourceSlot>,
    scopes: ScopeCache,
    /// The size of the last span written: the next one's buffer starts a
    /// little larger ([`SPAN_SLACK`]), so that it is seldom regrown.
    last_len: usize,
}

/// The buffer of a drain's first span: ids, name, kind, times, flags and a
/// few short attributes.
const SPAN_START: usize = 192;
/// What a span's buffer has beyond the size of the previous span.
const SPAN_SLACK: usize = 32;

impl SpansAdapterDrain {
    pub(crate) fn new(inner: Inner<Traces>, resource: Arc<ResourceSlot>) -> Self {
        Self { inner, resource, scopes: ScopeCache::default(), last_len: SPAN_START - SPAN_SLACK }
    }
}

impl SinkDrain<SpanData> for SpansAdapterDrain {
    async fn write_batch(&mut self, batch: Vec<SpanData>) -> Result<(), DrainError> {
        let resource = self.resource.get();
        let mut spans = Vec::with_capacity(batch.len());
        for span in &batch {
            let encoded = convert::encoded_span(span, &resource, &mut self.scopes, self.last_len + SPAN_SLACK);
            self.last_len = encoded.data.len();
            spans.push(encoded);
        }
        drop(batch);
        self.inner.write_batch(spans).await
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        SinkDrain::<EncodedSpan>::flush_durable(&mut self.inner).await
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        SinkDrain::<EncodedSpan>::close(&mut self.inner).await
    }
}

/// Converts the SDK's records into [`LogRecord`](crate::otlp::LogRecord)s on the
/// export runtime, then hands them to the OTLP logs drain (gRPC or HTTP,
/// maybe under a spool).
pub(crate) struct LogsAdapterDrain {
    inner: Inner<Logs>,
    resource: Arc<ResourceSlot>,
    scopes: ScopeCache,
}

impl LogsAdapterDrain {
    pub(crate) fn new(inner: Inner<Logs>, resource: Arc<ResourceSlot>) -> Self {
        Self { inner, resource, scopes: ScopeCache::default() }
    }
}

impl SinkDrain<LogItem> for LogsAdapterDrain {
    async fn write_batch(&mut self, batch: Vec<LogItem>) -> Result<(), DrainError> {
        let resource = self.resource.get();
        let records: Vec<LogRecord> = batch
            .iter()
            .map(|item| convert::log_record(&item.record, &item.scope, &resource, &mut self.scopes))
            .collect();
        self.inner.write_batch(records).await
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        SinkDrain::<LogRecord>::flush_durable(&mut self.inner).await
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        SinkDrain::<LogRecord>::close(&mut self.inner).await
    }
}
