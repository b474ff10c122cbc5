//! A minimal protobuf writer for the hot path: sizes and writes the OTLP
//! messages this crate sends straight from its own types, with no generated
//! struct in between.
//!
//! Every `*_len` function returns the exact size prost would give the same
//! message, and every `put_*` function writes the bytes prost would write for
//! it (fields in tag order, proto3 defaults skipped, oneofs always written), so
//! a receiver cannot tell the two apart. The tests check both against prost.

use prost::encoding::{encoded_len_varint, key_len};

use super::common::{AnyValue, KeyValue};

/// Protobuf wire type of varints (`int64`, `uint32`, `bool`, enums, `sint32`).
const VARINT: u32 = 0;
/// Protobuf wire type of 8-byte values (`fixed64`, `sfixed64`, `double`).
const FIXED64: u32 = 1;
/// Protobuf wire type of length-delimited values (strings, bytes, messages,
/// packed repeated fields).
const LEN: u32 = 2;
/// Protobuf wire type of 4-byte values (`fixed32`).
const FIXED32: u32 = 5;

/// The size of a length-delimited field (key, length prefix, content)
/// holding `content` bytes.
pub(crate) fn field_len(tag: u32, content: usize) -> usize {
    key_len(tag) + encoded_len_varint(content as u64) + content
}

/// The size of a string or bytes field that proto3 skips when empty.
pub(crate) fn bytes_field_len(tag: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        field_len(tag, bytes.len())
    }
}

/// The size of a `fixed64`, `sfixed64` or `double` field (key and 8 bytes).
pub(crate) fn fixed64_field_len(tag: u32) -> usize {
    key_len(tag) + 8
}

/// The size of a varint field holding `value`.
pub(crate) fn varint_field_len(tag: u32, value: u64) -> usize {
    key_len(tag) + encoded_len_varint(value)
}

/// `sint32` zig-zag encoding: small magnitudes, either sign, stay short.
pub(crate) fn zigzag32(value: i32) -> u64 {
    u64::from(((value << 1) ^ (value >> 31)) as u32)
}

/// Appends `value` as a base-128 varint.
#[inline]
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends the key of field `tag`: its number and wire type.
#[inline]
fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: u32) {
    put_varint(buf, u64::from(tag << 3 | wire_type));
}

/// Appends the key and length prefix of a length-delimited field whose
/// `content` bytes the caller writes next.
#[inline]
pub(crate) fn put_len_prefix(buf: &mut Vec<u8>, tag: u32, content: usize) {
    put_key(buf, tag, LEN);
    put_varint(buf, content as u64);
}

/// Appends a string or bytes field, always (a oneof member or a non-empty value).
#[inline]
pub(crate) fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_len_prefix(buf, tag, bytes.len());
    buf.extend_from_slice(bytes);
}

/// Appends a string or bytes field unless it is empty (the proto3 default).
#[inline]
pub(crate) fn put_bytes_nonempty(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(buf, tag, bytes);
    }
}

/// Appends a `fixed64` or `sfixed64` field (given as its bits), always.
pub(crate) fn put_fixed64(buf: &mut Vec<u8>, tag: u32, bits: u64) {
    put_key(buf, tag, FIXED64);
    buf.extend_from_slice(&bits.to_le_bytes());
}

/// Appends a `fixed64` field unless it is 0 (the proto3 default).
pub(crate) fn put_fixed64_nonzero(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        put_fixed64(buf, tag, value);
    }
}

/// Appends a `fixed32` field unless it is 0 (the proto3 default).
pub(crate) fn put_fixed32_nonzero(buf: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        put_key(buf, tag, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// The size of a `fixed32` field that proto3 skips when 0.
pub(crate) fn fixed32_nonzero_len(tag: u32, value: u32) -> usize {
    if value != 0 {
        key_len(tag) + 4
    } else {
        0
    }
}

/// The size of a `fixed64` field that proto3 skips when 0.
pub(crate) fn fixed64_nonzero_len(tag: u32, value: u64) -> usize {
    if value != 0 {
        fixed64_field_len(tag)
    } else {
        0
    }
}

/// The size of an `optional double` field: written whenever it is present.
pub(crate) fn optional_double_len(tag: u32, value: Option<f64>) -> usize {
    value.map_or(0, |_| fixed64_field_len(tag))
}

/// Appends an `optional double` field when it is present, whatever its value.
pub(crate) fn put_optional_double(buf: &mut Vec<u8>, tag: u32, value: Option<f64>) {
    if let Some(value) = value {
        put_double(buf, tag, value);
    }
}

/// Appends a `double` field, always (a oneof member or an `optional` one).
pub(crate) fn put_double(buf: &mut Vec<u8>, tag: u32, value: f64) {
    put_fixed64(buf, tag, value.to_bits());
}

/// Appends a plain proto3 `double` field unless it equals 0.0 (so -0.0 is
/// skipped too, and NaN is written, as prost does).
pub(crate) fn put_double_nonzero(buf: &mut Vec<u8>, tag: u32, value: f64) {
    if value != 0.0 {
        put_double(buf, tag, value);
    }
}

/// The size of a plain proto3 `double` field: nothing when it equals 0.0.
pub(crate) fn double_nonzero_len(tag: u32, value: f64) -> usize {
    if value != 0.0 {
        fixed64_field_len(tag)
    } else {
        0
    }
}

/// Appends a varint field, always.
pub(crate) fn put_varint_field(buf: &mut Vec<u8>, tag: u32, value: u64) {
    put_key(buf, tag, VARINT);
    put_varint(buf, value);
}

/// Appends a varint field unless it is 0 (the proto3 default).
pub(crate) fn put_varint_nonzero(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        put_varint_field(buf, tag, value);
    }
}

/// The size of a varint field that proto3 skips when 0.
pub(crate) fn varint_nonzero_len(tag: u32, value: u64) -> usize {
    if value != 0 {
        varint_field_len(tag, value)
    } else {
        0
    }
}

/// The size of a packed repeated field of 8-byte values; nothing when empty.
pub(crate) fn packed_fixed64_len(tag: u32, count: usize) -> usize {
    if count == 0 {
        0
    } else {
        field_len(tag, count * 8)
    }
}

/// Appends a packed repeated field of 8-byte values (given as their bits)
/// unless there are none.
pub(crate) fn put_packed_fixed64(buf: &mut Vec<u8>, tag: u32, values: impl ExactSizeIterator<Item = u64>) {
    if values.len() == 0 {
        return;
    }
    put_len_prefix(buf, tag, values.len() * 8);
    for bits in values {
        buf.extend_from_slice(&bits.to_le_bytes());
    }
}

/// The content size of packed varints.
fn packed_varints_content(values: &[u64]) -> usize {
    values.iter().map(|&v| encoded_len_varint(v)).sum()
}

/// The size of a packed repeated `uint64` field; nothing when empty.
pub(crate) fn packed_varint_len(tag: u32, values: &[u64]) -> usize {
    if values.is_empty() {
        0
    } else {
        field_len(tag, packed_varints_content(values))
    }
}

/// Appends a packed repeated `uint64` field unless it is empty.
pub(crate) fn put_packed_varint(buf: &mut Vec<u8>, tag: u32, values: &[u64]) {
    if values.is_empty() {
        return;
    }
    put_len_prefix(buf, tag, packed_varints_content(values));
    for &value in values {
        put_varint(buf, value);
    }
}

// ---------------------------------------------------------------------------
// `opentelemetry.proto.common.v1`: AnyValue, KeyValue and their lists.

/// `AnyValue.string_value`.
const STRING_VALUE: u32 = 1;
/// `AnyValue.bool_value`.
const BOOL_VALUE: u32 = 2;
/// `AnyValue.int_value`.
const INT_VALUE: u32 = 3;
/// `AnyValue.double_value`.
const DOUBLE_VALUE: u32 = 4;
/// `AnyValue.array_value`.
const ARRAY_VALUE: u32 = 5;
/// `AnyValue.kvlist_value`.
const KVLIST_VALUE: u32 = 6;
/// `AnyValue.bytes_value`.
const BYTES_VALUE: u32 = 7;
/// `values` in `ArrayValue` and `KeyValueList`.
const VALUES: u32 = 1;
/// `KeyValue.key`.
const KEY: u32 = 1;
/// `KeyValue.value`.
const VALUE: u32 = 2;

/// The size of the `AnyValue` message holding the string `s`.
fn string_value_len(s: &str) -> usize {
    field_len(STRING_VALUE, s.len())
}

/// Appends the fields of the `AnyValue` message holding the string `s`.
#[inline]
fn put_string_value(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, STRING_VALUE, s.as_bytes());
}

/// The size of the `AnyValue` message for `value`.
fn any_value_len(value: &AnyValue) -> usize {
    match value {
        AnyValue::String(s) => string_value_len(s),
        AnyValue::Bool(_) => key_len(BOOL_VALUE) + 1,
        AnyValue::Int(i) => varint_field_len(INT_VALUE, *i as u64),
        AnyValue::Double(_) => fixed64_field_len(DOUBLE_VALUE),
        AnyValue::Bytes(b) => field_len(BYTES_VALUE, b.len()),
        AnyValue::Array(values) => field_len(ARRAY_VALUE, array_len(values)),
        AnyValue::Map(pairs) => field_len(KVLIST_VALUE, attributes_len(VALUES, pairs)),
    }
}

/// The content size of an `ArrayValue`.
fn array_len(values: &[AnyValue]) -> usize {
    values.iter().map(|v| field_len(VALUES, any_value_len(v))).sum()
}

/// Appends the fields of the `AnyValue` message for `value`.
fn put_any_value(buf: &mut Vec<u8>, value: &AnyValue) {
    match value {
        AnyValue::String(s) => put_string_value(buf, s),
        AnyValue::Bool(b) => put_varint_field(buf, BOOL_VALUE, u64::from(*b)),
        AnyValue::Int(i) => put_varint_field(buf, INT_VALUE, *i as u64),
        AnyValue::Double(d) => put_double(buf, DOUBLE_VALUE, *d),
        AnyValue::Bytes(b) => put_bytes(buf, BYTES_VALUE, b),
        AnyValue::Array(values) => {
            put_len_prefix(buf, ARRAY_VALUE, array_len(values));
            for v in values {
                put_len_prefix(buf, VALUES, any_value_len(v));
                put_any_value(buf, v);
            }
        }
        AnyValue::Map(pairs) => {
            put_len_prefix(buf, KVLIST_VALUE, attributes_len(VALUES, pairs));
            put_attributes(buf, VALUES, pairs);
        }
    }
}

/// An attribute's value as the writer sees it: borrowed where its owner
/// holds it in a form the writer knows, owned where it had to be converted.
#[derive(Debug)]
pub(crate) enum AttributeValue<'a> {
    /// A string value.
    Str(&'a str),
    /// An integer value.
    Int(i64),
    /// A boolean value.
    Bool(bool),
    /// A floating-point value.
    Double(f64),
    /// A value held as this crate's [`AnyValue`].
    Any(&'a AnyValue),
    /// A value converted for the writer (scalars of another crate's types,
    /// their arrays).
    #[cfg(feature = "sdk")]
    Owned(AnyValue),
}

impl AttributeValue<'_> {
    /// The size of the `AnyValue` message.
    #[inline]
    fn encoded_len(&self) -> usize {
        match self {
            Self::Str(s) => string_value_len(s),
            Self::Int(i) => varint_field_len(INT_VALUE, *i as u64),
            Self::Bool(_) => key_len(BOOL_VALUE) + 1,
            Self::Double(_) => fixed64_field_len(DOUBLE_VALUE),
            Self::Any(value) => any_value_len(value),
            #[cfg(feature = "sdk")]
            Self::Owned(value) => any_value_len(value),
        }
    }

    /// Appends the fields of the `AnyValue` message (exactly `encoded_len` bytes).
    #[inline]
    fn put(&self, buf: &mut Vec<u8>) {
        match self {
            Self::Str(s) => put_string_value(buf, s),
            Self::Int(i) => put_varint_field(buf, INT_VALUE, *i as u64),
            Self::Bool(b) => put_varint_field(buf, BOOL_VALUE, u64::from(*b)),
            Self::Double(d) => put_double(buf, DOUBLE_VALUE, *d),
            Self::Any(value) => put_any_value(buf, value),
            #[cfg(feature = "sdk")]
            Self::Owned(value) => put_any_value(buf, value),
        }
    }
}

/// An attribute as the writer sees it: a key and a value. This crate's
/// [`KeyValue`] is one; the SDK adapters hand the SDK's attributes to the
/// writer through it without copying them into [`KeyValue`]s first.
pub(crate) trait Attribute {
    /// The attribute's name.
    fn key(&self) -> &str;
    /// The attribute's value.
    fn value(&self) -> AttributeValue<'_>;
}

impl Attribute for KeyValue {
    fn key(&self) -> &str {
        &self.key
    }

    fn value(&self) -> AttributeValue<'_> {
        match &self.value {
            AnyValue::String(s) => AttributeValue::Str(s),
            AnyValue::Int(i) => AttributeValue::Int(*i),
            AnyValue::Bool(b) => AttributeValue::Bool(*b),
            AnyValue::Double(d) => AttributeValue::Double(*d),
            other => AttributeValue::Any(other),
        }
    }
}

/// The size of the `KeyValue` message of an attribute whose `AnyValue` is
/// `value_len` bytes (the value is always present).
fn key_value_len(key: &str, value_len: usize) -> usize {
    bytes_field_len(KEY, key.as_bytes()) + field_len(VALUE, value_len)
}

/// The size of a repeated `KeyValue` field numbered `tag`.
pub(crate) fn attributes_len<'a, A: Attribute + 'a>(tag: u32, attributes: impl IntoIterator<Item = &'a A>) -> usize {
    attributes.into_iter().map(|kv| field_len(tag, key_value_len(kv.key(), kv.value().encoded_len()))).sum()
}

/// Appends a repeated `KeyValue` field numbered `tag`. Each value is
/// measured once, for both length prefixes.
pub(crate) fn put_attributes<'a, A: Attribute + 'a>(
    buf: &mut Vec<u8>,
    tag: u32,
    attributes: impl IntoIterator<Item = &'a A>,
) {
    for kv in attributes {
        let value = kv.value();
        let value_len = value.encoded_len();
        put_len_prefix(buf, tag, key_value_len(kv.key(), value_len));
        put_bytes_nonempty(buf, KEY, kv.key().as_bytes());
        put_len_prefix(buf, VALUE, value_len);
        value.put(buf);
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::pb::common::v1 as pb;

    /// Our bytes for `kv` as a field `tag`, and prost's for the same pair.
    fn both(tag: u32, kv: &KeyValue) -> (Vec<u8>, Vec<u8>) {
        let mut ours = Vec::new();
        put_attributes(&mut ours, tag, [kv]);
        assert_eq!(ours.len(), attributes_len(tag, [kv]), "{kv:?}: size differs from bytes");
        let list = pb::KeyValueList { values: vec![kv.clone().into_pb()] };
        (ours, list.encode_to_vec())
    }

    #[test]
    fn attributes_of_every_value_kind_match_prost_byte_for_byte() {
        let long = "x".repeat(300);
        let values = [
            AnyValue::from("GET"),
            AnyValue::from(""),
            AnyValue::from(long.as_str()),
            AnyValue::Bool(true),
            AnyValue::Bool(false),
            AnyValue::Int(0),
            AnyValue::Int(-1),
            AnyValue::Int(i64::MAX),
            AnyValue::Double(0.0),
            AnyValue::Double(-2.5),
            AnyValue::Bytes(vec![]),
            AnyValue::Bytes(vec![0xde, 0xad]),
            AnyValue::Array(vec![]),
            AnyValue::Array(vec![
                AnyValue::from(1),
                AnyValue::from("two"),
                AnyValue::Array(vec![AnyValue::Bool(true)]),
            ]),
            AnyValue::Map(vec![]),
            AnyValue::Map(vec![KeyValue::new("inner", 3.5), KeyValue::new("", AnyValue::Map(vec![]))]),
        ];
        for value in values {
            for key in ["k", "", long.as_str()] {
                let kv = KeyValue::new(key, value.clone());
                let (ours, prost) = both(1, &kv);
                assert_eq!(ours, prost, "{kv:?}");
            }
        }
    }

    #[test]
    fn scalar_helpers_match_prost() {
        use prost::encoding;
        for value in [0_u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut ours = Vec::new();
            put_varint(&mut ours, value);
            let mut theirs = Vec::new();
            encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
        }
        for value in [0, 1, -1, 63, -64, i32::MAX, i32::MIN] {
            let mut ours = Vec::new();
            put_varint(&mut ours, zigzag32(value));
            let mut theirs = Vec::new();
            encoding::sint32::encode(6, &value, &mut theirs);
            assert_eq!(&theirs[1..], ours.as_slice(), "{value}");
        }
        let values = [0_u64, 1, 300, u64::MAX];
        let mut ours = Vec::new();
        put_packed_varint(&mut ours, 2, &values);
        assert_eq!(ours.len(), packed_varint_len(2, &values));
        let mut theirs = Vec::new();
        encoding::uint64::encode_packed(2, &values, &mut theirs);
        assert_eq!(ours, theirs);
    }
}
