//! The two well-known protobuf messages every transport reads or writes,
//! declared by hand rather than compiled from `.proto` files:
//! `google.rpc.Status` (a gRPC status's details, an OTLP/HTTP failure's
//! body) and the `google.protobuf.Any` it holds.
//!
//! Text fields are declared `bytes`: the wire format is the same, and a
//! peer's invalid UTF-8 must not cost the rest of the message.

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    /// The message, as sent.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) message: Vec<u8>,
    /// Typed details, such as `google.rpc.RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Any {
    /// The type of `value`, as a URL whose last segment names the message.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) type_url: Vec<u8>,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) value: Vec<u8>,
}

impl RpcStatus {
    /// A status with `code` and `message` and no details.
    #[cfg(any(test, feature = "receiver"))]
    pub(crate) fn new(code: i32, message: &str) -> Self {
        Self { code, message: message.as_bytes().to_vec(), details: Vec::new() }
    }
}
