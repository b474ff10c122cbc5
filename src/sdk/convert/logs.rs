//! An SDK log record ([`SdkLogRecord`]) into a [`LogRecord`].

use std::sync::Arc;

use opentelemetry::logs::{AnyValue as SdkAny, Severity as SdkSeverity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::logs::SdkLogRecord;

use super::{nanos, span_id, trace_id, ScopeCache};
use crate::otlp::{AnyValue, KeyValue, LogRecord, Resource, Severity};

/// This crate's severities in OTLP order: `SEVERITIES[n - 1]` has number `n`.
const SEVERITIES: [Severity; 24] = [
    Severity::Trace,
    Severity::Trace2,
    Severity::Trace3,
    Severity::Trace4,
    Severity::Debug,
    Severity::Debug2,
    Severity::Debug3,
    Severity::Debug4,
    Severity::Info,
    Severity::Info2,
    Severity::Info3,
    Severity::Info4,
    Severity::Warn,
    Severity::Warn2,
    Severity::Warn3,
    Severity::Warn4,
    Severity::Error,
    Severity::Error2,
    Severity::Error3,
    Severity::Error4,
    Severity::Fatal,
    Severity::Fatal2,
    Severity::Fatal3,
    Severity::Fatal4,
];

/// Both enums number severities 1 to 24 as OTLP does.
fn severity(severity: SdkSeverity) -> Severity {
    SEVERITIES[(severity as usize).clamp(1, 24) - 1]
}

/// A log body or attribute value. Maps become lists of pairs (in the map's
/// iteration order); a kind this crate does not know yet is sent as its
/// debug text.
fn any_value(value: &SdkAny) -> AnyValue {
    match value {
        SdkAny::Int(i) => AnyValue::Int(*i),
        SdkAny::Double(d) => AnyValue::Double(*d),
        SdkAny::String(s) => AnyValue::String(s.as_str().to_owned()),
        SdkAny::Boolean(b) => AnyValue::Bool(*b),
        SdkAny::Bytes(bytes) => AnyValue::Bytes(bytes.as_ref().clone()),
        SdkAny::ListAny(items) => AnyValue::Array(items.iter().map(any_value).collect()),
        SdkAny::Map(map) => AnyValue::Map(
            map.iter().map(|(k, v)| KeyValue { key: k.as_str().to_owned(), value: any_value(v) }).collect(),
        ),
        other => AnyValue::String(format!("{other:?}")),
    }
}

/// Converts one record. The scope is the logger's, renamed to the record's
/// target when it has one (as the OpenTelemetry OTLP exporter does, so that
/// `tracing` events group by their module); `scopes` shares one `Arc<Scope>`
/// per scope and target.
pub(crate) fn log_record(
    record: &SdkLogRecord,
    scope: &InstrumentationScope,
    resource: &Arc<Resource>,
    scopes: &mut ScopeCache,
) -> LogRecord {
    let target = record.target().map(|t| t.as_ref()).filter(|t| !t.is_empty());
    let mut converted =
        LogRecord::new(Arc::clone(resource), scopes.get(scope, target), record.timestamp().map_or(0, nanos))
            .with_observed_time(record.observed_timestamp().map_or(0, nanos))
            .with_attributes(
                record.attributes_iter().map(|(k, v)| KeyValue { key: k.as_str().to_owned(), value: any_value(v) }),
            );
    converted.severity_number = record.severity_number().map(severity);
    converted.severity_text = record.severity_text().unwrap_or_default().to_owned();
    converted.body = record.body().map(any_value);
    converted.event_name = record.event_name().unwrap_or_default().to_owned();
    if let Some(context) = record.trace_context() {
        converted.trace_id = trace_id(context.trace_id);
        converted.span_id = span_id(context.span_id);
        converted.flags = context.trace_flags.map_or(0, |f| u32::from(f.to_u8()));
    }
    converted
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Context, Key};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};

    use super::*;

    /// Keeps what the SDK emits, converted.
    #[derive(Debug, Default, Clone)]
    struct Keep(Arc<std::sync::Mutex<Vec<LogRecord>>>);

    impl LogProcessor for Keep {
        fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
            let resource = Arc::new(Resource::default());
            let converted = log_record(record, scope, &resource, &mut ScopeCache::default());
            self.0.lock().unwrap().push(converted);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn emit(build: impl FnOnce(&mut SdkLogRecord), scope: InstrumentationScope) -> LogRecord {
        let keep = Keep::default();
        let provider = SdkLoggerProvider::builder().with_log_processor(keep.clone()).build();
        let logger = provider.logger_with_scope(scope);
        let mut record = logger.create_log_record();
        build(&mut record);
        logger.emit(record);
        let mut kept = keep.0.lock().unwrap();
        assert_eq!(kept.len(), 1);
        kept.remove(0)
    }

    #[test]
    fn every_field_of_a_record_is_carried() {
        let context = Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes([1; 16]),
            SpanId::from_bytes([2; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        ));
        let _attached = context.attach();
        let r = emit(
            |record| {
                record.set_timestamp(UNIX_EPOCH + Duration::from_nanos(1_000));
                record.set_observed_timestamp(UNIX_EPOCH + Duration::from_nanos(2_000));
                record.set_severity_number(SdkSeverity::Warn2);
                record.set_severity_text("WARN");
                record.set_body("pool exhausted".into());
                record.set_event_name("db.pool.exhausted");
                record.set_target("my_app::db");
                record.add_attribute("db.pool.size", 16);
                record.add_attribute("ok", false);
            },
            InstrumentationScope::builder("db-lib").with_version("3").build(),
        );
        assert_eq!((r.time_unix_nano, r.observed_time_unix_nano), (1_000, 2_000));
        assert_eq!((r.severity_number, r.severity_text.as_str()), (Some(Severity::Warn2), "WARN"));
        assert_eq!(r.body, Some(AnyValue::String("pool exhausted".into())));
        assert_eq!(r.event_name, "db.pool.exhausted");
        assert_eq!(r.attributes, vec![KeyValue::new("db.pool.size", 16_i64), KeyValue::new("ok", false)]);
        assert_eq!((r.trace_id, r.span_id, r.flags), (Some([1; 16]), Some([2; 8]), 1));
        assert_eq!((r.scope.name.as_str(), r.scope.version.as_str()), ("my_app::db", "3"), "target names the scope");
    }

    #[test]
    fn a_bare_record_has_zero_times_no_severity_and_the_loggers_scope() {
        let r = emit(|_| {}, InstrumentationScope::builder("plain").build());
        assert_eq!(r.time_unix_nano, 0);
        assert!(r.observed_time_unix_nano > 0, "the SDK sets the observed time");
        assert_eq!((r.severity_number, r.severity_text.as_str(), r.body.as_ref()), (None, "", None));
        assert_eq!((r.trace_id, r.span_id, r.flags), (None, None, 0));
        assert_eq!(r.scope.name, "plain");
    }

    #[test]
    fn structured_bodies_keep_their_shape() {
        let map = HashMap::from([(Key::new("n"), SdkAny::Int(1))]);
        let body = SdkAny::ListAny(Box::new(vec![
            SdkAny::Double(0.5),
            SdkAny::Boolean(true),
            SdkAny::Bytes(Box::new(vec![0xde, 0xad])),
            SdkAny::Map(Box::new(map)),
        ]));
        assert_eq!(
            any_value(&body),
            AnyValue::Array(vec![
                AnyValue::Double(0.5),
                AnyValue::Bool(true),
                AnyValue::Bytes(vec![0xde, 0xad]),
                AnyValue::Map(vec![KeyValue::new("n", 1_i64)]),
            ])
        );
    }

    #[test]
    fn every_severity_keeps_its_number() {
        use SdkSeverity::*;
        let all = [
            Trace, Trace2, Trace3, Trace4, Debug, Debug2, Debug3, Debug4, Info, Info2, Info3, Info4, Warn, Warn2,
            Warn3, Warn4, Error, Error2, Error3, Error4, Fatal, Fatal2, Fatal3, Fatal4,
        ];
        for s in all {
            assert_eq!(severity(s) as i32, s as i32, "{s:?}");
        }
    }
}
