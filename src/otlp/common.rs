//! What every signal shares: attribute values, the resource and the
//! instrumentation scope.

use crate::pb::common::v1 as pb;
use crate::pb::resource::v1 as pb_resource;

/// An attribute value, or the body of a log record.
///
/// Converts from the usual Rust types:
///
/// ```
/// use otlp_sink::otlp::AnyValue;
///
/// assert_eq!(AnyValue::from("GET"), AnyValue::String("GET".to_string()));
/// assert_eq!(AnyValue::from(200), AnyValue::Int(200));
/// assert_eq!(AnyValue::from(0.5), AnyValue::Double(0.5));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    /// A UTF-8 string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values, possibly of mixed types.
    Array(Vec<AnyValue>),
    /// A nested map; keys should be unique.
    Map(Vec<KeyValue>),
}

impl AnyValue {
    /// Moves the value into its protobuf form; strings and byte buffers are
    /// moved, not copied.
    pub(crate) fn into_pb(self) -> pb::AnyValue {
        use pb::any_value::Value;
        let value = match self {
            Self::String(s) => Value::StringValue(s),
            Self::Bool(b) => Value::BoolValue(b),
            Self::Int(i) => Value::IntValue(i),
            Self::Double(d) => Value::DoubleValue(d),
            Self::Bytes(b) => Value::BytesValue(b),
            Self::Array(values) => {
                Value::ArrayValue(pb::ArrayValue { values: values.into_iter().map(Self::into_pb).collect() })
            }
            Self::Map(pairs) => Value::KvlistValue(pb::KeyValueList { values: attributes_into_pb(pairs) }),
        };
        pb::AnyValue { value: Some(value) }
    }
}

impl From<String> for AnyValue {
    fn from(value: String) -> Self {
        Self::String(value)
    }
}

impl From<&str> for AnyValue {
    fn from(value: &str) -> Self {
        Self::String(value.to_owned())
    }
}

impl From<bool> for AnyValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<i64> for AnyValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for AnyValue {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<f64> for AnyValue {
    fn from(value: f64) -> Self {
        Self::Double(value)
    }
}

impl From<Vec<u8>> for AnyValue {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

impl From<Vec<AnyValue>> for AnyValue {
    fn from(value: Vec<AnyValue>) -> Self {
        Self::Array(value)
    }
}

/// One attribute: a key and its value.
///
/// ```
/// use otlp_sink::otlp::{AnyValue, KeyValue};
///
/// let kv = KeyValue::new("http.response.status_code", 200);
/// assert_eq!(kv.value, AnyValue::Int(200));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute name. Keys should be unique within one list.
    pub key: String,
    /// The attribute value.
    pub value: AnyValue,
}

impl KeyValue {
    /// A pair from anything that converts into a key and an [`AnyValue`].
    pub fn new(key: impl Into<String>, value: impl Into<AnyValue>) -> Self {
        Self { key: key.into(), value: value.into() }
    }

    /// Moves the pair into its protobuf form.
    pub(crate) fn into_pb(self) -> pb::KeyValue {
        pb::KeyValue { key: self.key, value: Some(self.value.into_pb()) }
    }
}

/// Moves a list of attributes into protobuf. The two element types have the
/// same size, so the standard library reuses the allocation in place.
pub(crate) fn attributes_into_pb(attributes: Vec<KeyValue>) -> Vec<pb::KeyValue> {
    attributes.into_iter().map(KeyValue::into_pb).collect()
}

/// Copies a shared list of attributes into protobuf (once per group, not per
/// point).
fn attributes_to_pb(attributes: &[KeyValue]) -> Vec<pb::KeyValue> {
    attributes.iter().cloned().map(KeyValue::into_pb).collect()
}

/// The entity that produced the telemetry: a service, a process, a host.
///
/// Points hold it in an [`Arc`](std::sync::Arc), so one resource is shared by
/// every point it produced and encoded once per request.
///
/// ```
/// use otlp_sink::otlp::{KeyValue, Resource};
///
/// let resource = Resource::new([KeyValue::new("service.name", "checkout")])
///     .with_schema_url("https://opentelemetry.io/schemas/1.26.0");
/// assert_eq!(resource.attributes.len(), 1);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// Attributes that describe the entity, such as `service.name`.
    pub attributes: Vec<KeyValue>,
    /// How many attributes were dropped before they reached this crate.
    pub dropped_attributes_count: u32,
    /// The schema the attributes follow; empty when unknown.
    pub schema_url: String,
}

impl Resource {
    /// A resource with these attributes, no schema URL and nothing dropped.
    pub fn new(attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        Self { attributes: attributes.into_iter().collect(), ..Self::default() }
    }

    /// Sets the schema URL of the attributes.
    #[must_use]
    pub fn with_schema_url(mut self, schema_url: impl Into<String>) -> Self {
        self.schema_url = schema_url.into();
        self
    }

    /// Sets how many attributes were dropped before this crate saw them.
    #[must_use]
    pub fn with_dropped_attributes_count(mut self, count: u32) -> Self {
        self.dropped_attributes_count = count;
        self
    }

    /// The protobuf form, copied from the shared value.
    pub(crate) fn to_pb(&self) -> pb_resource::Resource {
        pb_resource::Resource {
            attributes: attributes_to_pb(&self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
        }
    }
}

/// The instrumentation scope: the library, module or component that recorded
/// the telemetry.
///
/// Shared by its points through an [`Arc`](std::sync::Arc), like [`Resource`].
///
/// ```
/// use otlp_sink::otlp::Scope;
///
/// let scope = Scope::new("my-crate").with_version("1.2.0");
/// assert_eq!(scope.name, "my-crate");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// The scope's name; empty when unknown.
    pub name: String,
    /// The scope's version; empty when unknown.
    pub version: String,
    /// Attributes of the scope itself.
    pub attributes: Vec<KeyValue>,
    /// How many scope attributes were dropped before this crate saw them.
    pub dropped_attributes_count: u32,
    /// The schema that the telemetry under this scope follows; empty when unknown.
    pub schema_url: String,
}

impl Scope {
    /// A scope with this name and nothing else.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    /// Sets the version.
    #[must_use]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the scope's own attributes.
    #[must_use]
    pub fn with_attributes(mut self, attributes: impl IntoIterator<Item = KeyValue>) -> Self {
        self.attributes = attributes.into_iter().collect();
        self
    }

    /// Sets the schema URL.
    #[must_use]
    pub fn with_schema_url(mut self, schema_url: impl Into<String>) -> Self {
        self.schema_url = schema_url.into();
        self
    }

    /// The protobuf form, copied from the shared value.
    pub(crate) fn to_pb(&self) -> pb::InstrumentationScope {
        pb::InstrumentationScope {
            name: self.name.clone(),
            version: self.version.clone(),
            attributes: attributes_to_pb(&self.attributes),
            dropped_attributes_count: self.dropped_attributes_count,
        }
    }
}

/// A trace or span id as protobuf bytes: empty when absent.
pub(crate) fn id_bytes<const N: usize>(id: Option<[u8; N]>) -> Vec<u8> {
    id.map_or_else(Vec::new, |id| id.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_keep_their_shape() {
        let value = AnyValue::Map(vec![
            KeyValue::new("list", vec![AnyValue::from(1), AnyValue::from("two"), AnyValue::from(false)]),
            KeyValue::new("bytes", vec![0xde_u8, 0xad]),
            KeyValue::new("pi", 3.5),
        ]);
        let pb = value.into_pb();
        use pb::any_value::Value;
        let Some(Value::KvlistValue(map)) = pb.value else { panic!("not a map: {pb:?}") };
        assert_eq!(map.values.len(), 3);
        assert_eq!(map.values[0].key, "list");
        let Some(Value::ArrayValue(list)) = map.values[0].value.clone().unwrap().value else { panic!("not a list") };
        let items: Vec<_> = list.values.into_iter().map(|v| v.value.unwrap()).collect();
        assert_eq!(items, vec![Value::IntValue(1), Value::StringValue("two".into()), Value::BoolValue(false)]);
        assert_eq!(map.values[1].value.clone().unwrap().value, Some(Value::BytesValue(vec![0xde, 0xad])));
        assert_eq!(map.values[2].value.clone().unwrap().value, Some(Value::DoubleValue(3.5)));
    }

    #[test]
    fn attribute_lists_are_moved_in_place() {
        // The encoder's cost per point depends on this: converting a point's
        // attributes reuses their allocation instead of copying the list.
        let attributes: Vec<KeyValue> = (0..10).map(|i| KeyValue::new("k", i)).collect();
        let before = attributes.as_ptr() as usize;
        let converted = attributes_into_pb(attributes);
        assert_eq!(converted.as_ptr() as usize, before, "KeyValue and its protobuf form no longer have one layout");
        assert_eq!(converted.len(), 10);
    }

    #[test]
    fn ids_are_empty_when_absent() {
        assert!(id_bytes::<8>(None).is_empty());
        assert_eq!(id_bytes(Some([1u8; 8])), vec![1u8; 8]);
    }
}
