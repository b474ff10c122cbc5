//! Conversions from the SDK's data to the points the `otlp` encodings take
//! in: no I/O, no shared state, and no protobuf written here. Log records
//! become [`LogRecord`](crate::otlp::LogRecord)s; a metric collection becomes
//! the metrics encoding's one form, `EncodedMetricPoint`s, and a span the
//! traces encoding's, an `EncodedSpan`, both built by `otlp` from the parts
//! handed to it (the SDK's strings and attributes are read in place, through
//! `otlp`'s `Attribute` trait, never copied). What many points share is converted
//! once and shared through an `Arc`: one [`Resource`] per collection
//! (metrics) or per `set_resource` (spans, logs), one [`Scope`] per
//! instrumentation scope, one [`MetricDescriptor`](crate::otlp::MetricDescriptor)
//! per metric.

mod logs;
mod metrics;
mod traces;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::{Array, InstrumentationScope, Value};

use crate::otlp::{AnyValue, KeyValue, Resource, Scope};

pub(crate) use logs::log_record;
pub(crate) use metrics::{collection_points, encoded_in_chunks, encoded_resource_metrics};
pub(crate) use traces::encoded_span;

/// Nanoseconds since the Unix epoch; 0 for a time before it, `u64::MAX` for
/// one past the year 2554.
pub(crate) fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
/// An attribute, taking its key and value (owned strings are moved, not copied).
pub(crate) fn key_value(kv: opentelemetry::KeyValue) -> KeyValue {
    KeyValue { key: kv.key.into(), value: value(kv.value) }
}

/// An attribute, copied from a borrowed one.
pub(crate) fn key_value_ref(kv: &opentelemetry::KeyValue) -> KeyValue {
    KeyValue { key: kv.key.as_str().to_owned(), value: value_ref(&kv.value) }
}

#[cfg(test)]
/// Converts attributes, moving them.
pub(crate) fn attributes(kvs: Vec<opentelemetry::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(key_value).collect()
}

#[cfg(test)]
/// An attribute value. Arrays become OTLP arrays of their element type.
/// A kind this crate does not know yet (the SDK's enums are non-exhaustive)
/// is sent as its text.
pub(crate) fn value(value: Value) -> AnyValue {
    match value {
        Value::Bool(b) => AnyValue::Bool(b),
        Value::I64(i) => AnyValue::Int(i),
        Value::F64(f) => AnyValue::Double(f),
        Value::String(s) => AnyValue::String(s.into()),
        Value::Array(Array::Bool(items)) => AnyValue::Array(items.into_iter().map(AnyValue::Bool).collect()),
        Value::Array(Array::I64(items)) => AnyValue::Array(items.into_iter().map(AnyValue::Int).collect()),
        Value::Array(Array::F64(items)) => AnyValue::Array(items.into_iter().map(AnyValue::Double).collect()),
        Value::Array(Array::String(items)) => {
            AnyValue::Array(items.into_iter().map(|s| AnyValue::String(s.into())).collect())
        }
        other => AnyValue::String(other.as_str().into_owned()),
    }
}

/// An attribute value, copied from a borrowed one: the same conversion as
/// [`value`], without cloning the SDK's value first (each string is copied
/// once, straight from its text, whatever holds it).
pub(crate) fn value_ref(value: &Value) -> AnyValue {
    let string = |s: &opentelemetry::StringValue| AnyValue::String(s.as_str().to_owned());
    match value {
        Value::Bool(b) => AnyValue::Bool(*b),
        Value::I64(i) => AnyValue::Int(*i),
        Value::F64(f) => AnyValue::Double(*f),
        Value::String(s) => string(s),
        Value::Array(Array::Bool(items)) => AnyValue::Array(items.iter().copied().map(AnyValue::Bool).collect()),
        Value::Array(Array::I64(items)) => AnyValue::Array(items.iter().copied().map(AnyValue::Int).collect()),
        Value::Array(Array::F64(items)) => AnyValue::Array(items.iter().copied().map(AnyValue::Double).collect()),
        Value::Array(Array::String(items)) => AnyValue::Array(items.iter().map(string).collect()),
        other => AnyValue::String(other.as_str().into_owned()),
    }
}

/// The SDK's resource, with its schema URL. Its attributes are those the SDK
/// was given, including what it read from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`.
pub(crate) fn resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    let attributes =
        resource.iter().map(|(key, value)| KeyValue { key: key.as_str().to_owned(), value: value_ref(value) });
    Resource::new(attributes).with_schema_url(resource.schema_url().unwrap_or_default())
}

/// An instrumentation scope. `name`, when given, replaces the scope's name:
/// log records use their target there, as the OpenTelemetry OTLP exporter does.
pub(crate) fn scope(scope: &InstrumentationScope, name: Option<&str>) -> Scope {
    Scope::new(name.unwrap_or(scope.name()))
        .with_version(scope.version().unwrap_or_default())
        .with_attributes(scope.attributes().map(key_value_ref))
        .with_schema_url(scope.schema_url().unwrap_or_default())
}

/// Converted scopes, so that the spans or records of one scope share one
/// `Arc<Scope>` (and the encoder one `ScopeSpans`). Owned by one drain: no
/// locks. Bounded: cleared when it grows past [`ScopeCache::LIMIT`] entries.
///
/// The scope asked for last (without a target) is remembered beside the
/// map and found by comparing it, not by hashing it: a batch's spans come
/// in runs of one scope, and hashing a scope (SipHash over its name,
/// version, schema URL and attributes) was several percent of the export
/// thread's time per span.
#[derive(Debug, Default)]
pub(crate) struct ScopeCache {
    scopes: HashMap<Arc<InstrumentationScope>, Targets>,
    entries: usize,
    last: Option<(Arc<InstrumentationScope>, Arc<Scope>)>,
}

/// The converted forms of one scope: as it is, and renamed by target.
#[derive(Debug, Default)]
struct Targets {
    plain: Option<Arc<Scope>>,
    by_target: HashMap<Box<str>, Arc<Scope>>,
}

impl ScopeCache {
    /// More distinct scopes (and targets) than this, and the cache starts over.
    pub(crate) const LIMIT: usize = 4096;

    /// The converted `scope`, renamed to `target` when one is given.
    pub(crate) fn get(&mut self, scope: &InstrumentationScope, target: Option<&str>) -> Arc<Scope> {
        if target.is_none() {
            if let Some((key, converted)) = &self.last {
                if **key == *scope {
                    return Arc::clone(converted);
                }
            }
        }
        if let Some((key, targets)) = self.scopes.get_key_value(scope) {
            let found = match target {
                None => targets.plain.clone(),
                Some(target) => targets.by_target.get(target).cloned(),
            };
            if let Some(found) = found {
                if target.is_none() {
                    self.last = Some((Arc::clone(key), Arc::clone(&found)));
                }
                return found;
            }
        }
        if self.entries >= Self::LIMIT {
            self.scopes.clear();
            self.entries = 0;
        }
        let converted = Arc::new(self::scope(scope, target));
        let key = match self.scopes.get_key_value(scope) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::new(scope.clone()),
        };
        let targets = self.scopes.entry(Arc::clone(&key)).or_default();
        match target {
            None => {
                targets.plain = Some(Arc::clone(&converted));
                self.last = Some((key, Arc::clone(&converted)));
            }
            Some(target) => {
                targets.by_target.insert(target.into(), Arc::clone(&converted));
            }
        }
        self.entries += 1;
        converted
    }

    /// How many converted scopes it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
    }
}

/// Trace ids as bytes, `None` for the invalid (all-zero) id.
fn trace_id(id: opentelemetry::trace::TraceId) -> Option<[u8; 16]> {
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_bytes())
}

/// Span ids as bytes, `None` for the invalid (all-zero) id.
fn span_id(id: opentelemetry::trace::SpanId) -> Option<[u8; 8]> {
    (id != opentelemetry::trace::SpanId::INVALID).then(|| id.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{Key, StringValue};

    #[test]
    fn times_are_nanoseconds_since_the_epoch_and_never_wrap() {
        assert_eq!(
            nanos(UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_123_456_789)),
            1_700_000_000_123_456_789
        );
        assert_eq!(nanos(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
        assert_eq!(nanos(UNIX_EPOCH), 0);
    }

    #[test]
    fn every_value_kind_keeps_its_type() {
        let cases = [
            (Value::Bool(true), AnyValue::Bool(true)),
            (Value::I64(-3), AnyValue::Int(-3)),
            (Value::F64(0.25), AnyValue::Double(0.25)),
            (Value::String("GET".into()), AnyValue::String("GET".into())),
            (Value::String(String::from("owned").into()), AnyValue::String("owned".into())),
            (Value::String(Arc::<str>::from("shared").into()), AnyValue::String("shared".into())),
            (Value::Array(Array::Bool(vec![true, false])), AnyValue::Array(vec![true.into(), false.into()])),
            (Value::Array(Array::I64(vec![1, 2])), AnyValue::Array(vec![1_i64.into(), 2_i64.into()])),
            (Value::Array(Array::F64(vec![1.5])), AnyValue::Array(vec![1.5.into()])),
            (
                Value::Array(Array::String(vec![StringValue::from("a"), StringValue::from(String::from("b"))])),
                AnyValue::Array(vec!["a".into(), "b".into()]),
            ),
        ];
        for (sdk, ours) in cases {
            assert_eq!(value_ref(&sdk), ours, "{sdk:?}");
            assert_eq!(value(sdk.clone()), ours, "{sdk:?}");
        }
    }

    #[test]
    fn attributes_keep_static_owned_and_shared_keys() {
        let kvs = vec![
            opentelemetry::KeyValue::new("static", 1),
            opentelemetry::KeyValue::new(Key::new(String::from("owned")), "v"),
            opentelemetry::KeyValue::new(Key::from(Arc::<str>::from("shared")), false),
        ];
        let converted = attributes(kvs.clone());
        assert_eq!(
            converted,
            vec![KeyValue::new("static", 1_i64), KeyValue::new("owned", "v"), KeyValue::new("shared", false)]
        );
        assert_eq!(kvs.iter().map(key_value_ref).collect::<Vec<_>>(), converted);
    }

    #[test]
    fn resources_keep_attributes_and_schema_url() {
        let sdk = opentelemetry_sdk::Resource::builder_empty()
            .with_schema_url([opentelemetry::KeyValue::new("service.name", "checkout")], "https://example/schema")
            .with_attribute(opentelemetry::KeyValue::new("host.cores", 2))
            .build();
        let ours = resource(&sdk);
        let mut attributes = ours.attributes.clone();
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(attributes, vec![KeyValue::new("host.cores", 2_i64), KeyValue::new("service.name", "checkout")]);
        assert_eq!(ours.schema_url, "https://example/schema");
    }

    #[test]
    fn scopes_keep_name_version_attributes_and_schema_or_take_a_target_as_name() {
        let sdk = InstrumentationScope::builder("my-lib")
            .with_version("1.2.3")
            .with_schema_url("https://example/scope")
            .with_attributes([opentelemetry::KeyValue::new("k", "v")])
            .build();
        let ours = scope(&sdk, None);
        assert_eq!((ours.name.as_str(), ours.version.as_str()), ("my-lib", "1.2.3"));
        assert_eq!(ours.attributes, vec![KeyValue::new("k", "v")]);
        assert_eq!(ours.schema_url, "https://example/scope");
        let renamed = scope(&sdk, Some("my_app::db"));
        assert_eq!((renamed.name.as_str(), renamed.version.as_str()), ("my_app::db", "1.2.3"));
        let bare = scope(&InstrumentationScope::builder("x").build(), None);
        assert_eq!((bare.version.as_str(), bare.schema_url.as_str()), ("", ""));
    }

    #[test]
    fn the_scope_cache_shares_one_arc_per_scope_and_target_and_stays_bounded() {
        let mut cache = ScopeCache::default();
        let a = InstrumentationScope::builder("a").build();
        let b = InstrumentationScope::builder("b").with_version("2").build();
        let first = cache.get(&a, None);
        assert!(Arc::ptr_eq(&first, &cache.get(&a.clone(), None)));
        assert!(!Arc::ptr_eq(&first, &cache.get(&b, None)));
        let targeted = cache.get(&a, Some("t"));
        assert_eq!(targeted.name, "t");
        assert!(Arc::ptr_eq(&targeted, &cache.get(&a, Some("t"))));
        assert_eq!(cache.len(), 3);
        // Back and forth between scopes (past the remembered last one): the same Arcs.
        for _ in 0..2 {
            assert!(Arc::ptr_eq(&first, &cache.get(&a, None)));
            let other = cache.get(&b, None);
            assert_eq!((other.name.as_str(), other.version.as_str()), ("b", "2"));
            assert!(Arc::ptr_eq(&other, &cache.get(&b.clone(), None)));
        }
        // A scope equal to the last one but for its attributes is another scope.
        let a_attrs =
            InstrumentationScope::builder("a").with_attributes([opentelemetry::KeyValue::new("k", 1)]).build();
        cache.get(&a, None);
        let with_attrs = cache.get(&a_attrs, None);
        assert!(!Arc::ptr_eq(&first, &with_attrs));
        assert_eq!(with_attrs.attributes, vec![KeyValue::new("k", 1_i64)]);
        assert_eq!(cache.len(), 4);
        for i in 0..ScopeCache::LIMIT + 10 {
            cache.get(&a, Some(&format!("target{i}")));
        }
        assert!(cache.len() <= ScopeCache::LIMIT, "{}", cache.len());
    }
}
