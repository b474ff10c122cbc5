//! Log records, and their [`Encoding`].

use std::sync::Arc;

use super::common::{attributes_into_pb, id_bytes, AnyValue, KeyValue, Resource, Scope};
use super::encode::FlatEncoding;
use crate::pb::collector::logs::v1 as collector;
use crate::pb::common::v1::InstrumentationScope as PbScope;
use crate::pb::logs::v1 as pb;
use crate::pb::resource::v1::Resource as PbResource;

/// The normalized severity of a log record: four steps each of trace, debug,
/// info, warn, error and fatal, numbered 1 to 24 as in OTLP.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i32)]
pub enum Severity {
    /// TRACE (1): the finest tracing detail.
    Trace = 1,
    /// TRACE2 (2): the finest tracing detail, step 2 of 4.
    Trace2 = 2,
    /// TRACE3 (3): the finest tracing detail, step 3 of 4.
    Trace3 = 3,
    /// TRACE4 (4): the finest tracing detail, step 4 of 4.
    Trace4 = 4,
    /// DEBUG (5): debugging detail.
    Debug = 5,
    /// DEBUG2 (6): debugging detail, step 2 of 4.
    Debug2 = 6,
    /// DEBUG3 (7): debugging detail, step 3 of 4.
    Debug3 = 7,
    /// DEBUG4 (8): debugging detail, step 4 of 4.
    Debug4 = 8,
    /// INFO (9): a normal event.
    Info = 9,
    /// INFO2 (10): a normal event, step 2 of 4.
    Info2 = 10,
    /// INFO3 (11): a normal event, step 3 of 4.
    Info3 = 11,
    /// INFO4 (12): a normal event, step 4 of 4.
    Info4 = 12,
    /// WARN (13): a possible problem.
    Warn = 13,
    /// WARN2 (14): a possible problem, step 2 of 4.
    Warn2 = 14,
    /// WARN3 (15): a possible problem, step 3 of 4.
    Warn3 = 15,
    /// WARN4 (16): a possible problem, step 4 of 4.
    Warn4 = 16,
    /// ERROR (17): an error.
    Error = 17,
    /// ERROR2 (18): an error, step 2 of 4.
    Error2 = 18,
    /// ERROR3 (19): an error, step 3 of 4.
    Error3 = 19,
    /// ERROR4 (20): an error, step 4 of 4.
    Error4 = 20,
    /// FATAL (21): an error that stops the program.
    Fatal = 21,
    /// FATAL2 (22): an error that stops the program, step 2 of 4.
    Fatal2 = 22,
    /// FATAL3 (23): an error that stops the program, step 3 of 4.
    Fatal3 = 23,
    /// FATAL4 (24): an error that stops the program, step 4 of 4.
    Fatal4 = 24,
}

/// One log record (or event, when it has an event name).
///
/// ```
/// use std::sync::Arc;
/// use otlp_sink::otlp::{KeyValue, LogRecord, Resource, Scope, Severity};
///
/// let resource = Arc::new(Resource::new([KeyValue::new("service.name", "checkout")]));
/// let scope = Arc::new(Scope::new("checkout.db"));
/// let record = LogRecord::new(resource, scope, 1_700_000_000_000_000_000)
///     .with_severity(Severity::Warn, "WARN")
///     .with_body("connection pool exhausted")
///     .with_attributes([KeyValue::new("db.pool.size", 16)]);
/// assert_eq!(record.severity_number, Some(Severity::Warn));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// The entity that produced the record.
    pub resource: Arc<Resource>,
    /// The instrumentation scope that emitted it.
    pub scope: Arc<Scope>,
    /// When the event happened, in nanoseconds since the Unix epoch; 0 when unknown.
    pub time_unix_nano: u64,
    /// When the logging pipeline observed it; 0 when unknown.
    pub observed_time_unix_nano: u64,
    /// The normalized severity, if known.
    pub severity_number: Option<Severity>,
    /// The level as the source spelled it; may be empty.
    pub severity_text: String,
    /// The message: a string, or structured data.
    pub body: Option<AnyValue>,
    /// What describes the occurrence.
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped before this crate saw them.
    pub dropped_attributes_count: u32,
    /// The trace the record was emitted in, if any.
    pub trace_id: Option<[u8; 16]>,
    /// The span the record was emitted in, if any.
    pub span_id: Option<[u8; 8]>,
    /// W3C trace flags in the low 8 bits.
    pub flags: u32,
    /// The kind of event this record is; empty for a plain log record.
    pub event_name: String,
}

impl LogRecord {
    /// A record at `time_unix_nano` (also used as the observed time), with
    /// nothing else set.
    pub fn new(resource: Arc<Resource>, scope: Arc<Scope>, time_unix_nano: u64) -> Self {
        Self {
            resource,
            scope,
            time_unix_nano,
            observed_time_unix_nano: time_unix_nano,
            severity_number: None,
            severity_text: String::new(),
            body: None,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            trace_id: None,
            span_id: None,
            flags: 0,
            event_name: String::new(),
        }
    }

    /// Sets the observed time.
    #[must_use]
    pub fn with_observed_time(mut self, observed_time_unix_nano: u64) -> Self {
        self.observed_time_unix_nano = observed_time_unix_nano;
        self
    }

    /// Sets the severity and its text.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity, text: impl Into<String>) -> Self {
        self.severity_number = Some(severity);
        self.severity_text = text.into();
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<AnyValue>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    /// Sets the trace context the record was emitted in.
    #[must_use]
    pub fn with_trace(mut self, trace_id: [u8; 16], span_id: [u8; 8], flags: u32) -> Self {
        self.trace_id = Some(trace_id);
        self.span_id = Some(span_id);
        self.flags = flags;
        self
    }

    /// Sets the event name.
    #[must_use]
    pub fn with_event_name(mut self, event_name: impl Into<String>) -> Self {
        self.event_name = event_name.into();
        self
    }

    fn into_pb(self) -> pb::LogRecord {
        pb::LogRecord {
            time_unix_nano: self.time_unix_nano,
            observed_time_unix_nano: self.observed_time_unix_nano,
            severity_number: self.severity_number.map_or(pb::SeverityNumber::Unspecified as i32, |s| s as i32),
            severity_text: self.severity_text,
            body: self.body.map(AnyValue::into_pb),
            attributes: attributes_into_pb(self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
            flags: self.flags,
            trace_id: id_bytes(self.trace_id),
            span_id: id_bytes(self.span_id),
            event_name: self.event_name,
        }
    }
}

/// The logs signal: [`LogRecord`]s into `ExportLogsServiceRequest`s.
#[derive(Debug)]
pub(crate) struct Logs;

/// `ScopeLogs.log_records`.
const LOG_RECORDS_TAG: u32 = 2;

impl FlatEncoding for Logs {
    type Point = LogRecord;
    type Leaf = pb::LogRecord;
    type ScopeX = pb::ScopeLogs;
    type ResourceX = pb::ResourceLogs;
    type Request = collector::ExportLogsServiceRequest;

    const ITEM: &'static str = "log record";
    const LEAF_TAG: u32 = LOG_RECORDS_TAG;

    fn parts(record: &LogRecord) -> (&Arc<Resource>, &Arc<Scope>) {
        (&record.resource, &record.scope)
    }

    fn into_leaf(record: LogRecord) -> pb::LogRecord {
        record.into_pb()
    }

    fn scope(scope: PbScope, schema_url: String, log_records: Vec<pb::LogRecord>) -> pb::ScopeLogs {
        pb::ScopeLogs { scope: Some(scope), schema_url, log_records }
    }

    fn resource(resource: PbResource, schema_url: String, scope_logs: Vec<pb::ScopeLogs>) -> pb::ResourceLogs {
        pb::ResourceLogs { resource: Some(resource), schema_url, scope_logs }
    }

    fn request(resource_logs: Vec<pb::ResourceLogs>) -> collector::ExportLogsServiceRequest {
        collector::ExportLogsServiceRequest { resource_logs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::test_support::{encode_and_decode, resource, scope};
    use crate::pb::common::v1::any_value::Value;

    #[test]
    fn records_keep_body_severity_trace_context_and_event_name() {
        let (res, sc) = (resource("svc"), scope("db"));
        let warn = LogRecord::new(res.clone(), sc.clone(), 1_000)
            .with_observed_time(1_005)
            .with_severity(Severity::Warn2, "WARNING")
            .with_body("pool exhausted")
            .with_attributes([KeyValue::new("pool.size", 16)])
            .with_trace([1; 16], [2; 8], 1)
            .with_event_name("db.pool.exhausted");
        let structured = LogRecord::new(res, sc, 0)
            .with_body(AnyValue::Map(vec![KeyValue::new("user", "u1"), KeyValue::new("ok", true)]));

        let (requests, rejected, counts) = encode_and_decode::<Logs>(vec![warn, structured], usize::MAX);
        assert!(rejected.is_empty());
        assert_eq!(counts, [2]);
        let records = &requests[0].resource_logs[0].scope_logs[0].log_records;

        let r = &records[0];
        assert_eq!((r.time_unix_nano, r.observed_time_unix_nano), (1_000, 1_005));
        assert_eq!((r.severity_number, r.severity_text.as_str()), (14, "WARNING"));
        assert_eq!(r.severity_number, pb::SeverityNumber::Warn2 as i32);
        assert_eq!(r.body.as_ref().unwrap().value, Some(Value::StringValue("pool exhausted".into())));
        assert_eq!(r.attributes[0].key, "pool.size");
        assert_eq!(r.attributes[0].value.as_ref().unwrap().value, Some(Value::IntValue(16)));
        assert_eq!((r.trace_id.as_slice(), r.span_id.as_slice(), r.flags), (&[1; 16][..], &[2; 8][..], 1));
        assert_eq!(r.event_name, "db.pool.exhausted");

        let r = &records[1];
        assert_eq!(r.severity_number, pb::SeverityNumber::Unspecified as i32);
        assert!(r.trace_id.is_empty() && r.span_id.is_empty() && r.event_name.is_empty());
        let Some(Value::KvlistValue(map)) = &r.body.as_ref().unwrap().value else { panic!("{:?}", r.body) };
        let keys: Vec<_> = map.values.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["user", "ok"]);
    }

    #[test]
    fn severities_match_the_protocol_numbers() {
        assert_eq!(Severity::Trace as i32, pb::SeverityNumber::Trace as i32);
        assert_eq!(Severity::Debug3 as i32, pb::SeverityNumber::Debug3 as i32);
        assert_eq!(Severity::Info as i32, pb::SeverityNumber::Info as i32);
        assert_eq!(Severity::Error4 as i32, pb::SeverityNumber::Error4 as i32);
        assert_eq!(Severity::Fatal4 as i32, pb::SeverityNumber::Fatal4 as i32);
    }
}
