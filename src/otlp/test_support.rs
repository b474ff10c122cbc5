//! Helpers for the encoding tests: real bytes, real decoding.

use std::sync::Arc;

use prost::Message;

use super::encode::{encode, Encoded, Signal};
use super::{KeyValue, Resource, Scope};

/// Encodes `points` under `limit`, then checks every request the way a
/// receiver would see it: encodes it to bytes, checks the size the encoder
/// reported is the real one and within the limit, and decodes the bytes with
/// the generated types. Returns the decoded requests and the rejections.
pub(crate) fn encode_and_decode<S: Signal>(
    points: Vec<S::Point>,
    limit: usize,
) -> (Vec<S::Request>, Vec<super::EncodeError>, Vec<usize>)
where
    S::Request: PartialEq + std::fmt::Debug,
{
    let Encoded { requests, rejected } = encode::<S>(points, limit);
    let mut decoded = Vec::with_capacity(requests.len());
    let mut counts = Vec::with_capacity(requests.len());
    for sent in requests {
        let bytes = sent.request.encode_to_vec();
        assert_eq!(bytes.len(), sent.encoded_len, "reported size differs from the real one");
        assert_eq!(sent.request.encoded_len(), sent.encoded_len);
        assert!(sent.encoded_len <= limit, "request of {} bytes over the {limit}-byte limit", sent.encoded_len);
        assert!(sent.points > 0, "empty request");
        let back = S::Request::decode(bytes.as_slice()).expect("the request decodes");
        assert_eq!(back, sent.request, "decoding gives back another tree");
        decoded.push(back);
        counts.push(sent.points);
    }
    (decoded, rejected, counts)
}

pub(crate) fn resource(service: &str) -> Arc<Resource> {
    Arc::new(Resource::new([KeyValue::new("service.name", service)]))
}

pub(crate) fn scope(name: &str) -> Arc<Scope> {
    Arc::new(Scope::new(name).with_version("1.0.0"))
}
