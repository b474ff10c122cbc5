//! Helpers for the encoding tests: real bytes, real decoding.

use std::sync::Arc;

use prost::Message;

use super::encode::{encode, Encoded, Encoding};
use super::{KeyValue, Resource, Scope};

/// Encodes `points` under `limit`, then checks every request the way a
/// receiver would see it: checks the size the encoder reported is the real
/// one and within the limit, decodes the bytes with the generated types, and
/// checks that prost, encoding the decoded message again, writes the very
/// same bytes (so a hand-written writer is byte-for-byte what prost would
/// send). Returns the decoded requests, the rejections and the point counts.
pub(crate) fn encode_and_decode<S: Encoding>(
    points: Vec<impl Into<S::Point>>,
    limit: usize,
) -> (Vec<S::Request>, Vec<super::EncodeError>, Vec<usize>) {
    let Encoded { requests, rejected } = encode::<S>(points, limit);
    let mut decoded = Vec::with_capacity(requests.len());
    let mut counts = Vec::with_capacity(requests.len());
    for sent in requests {
        // `write` checks in debug builds (as tests are) that the splitter's size is the body's.
        let len = sent.body.len();
        assert!(len <= limit, "request of {len} bytes over the {limit}-byte limit");
        assert!(sent.points > 0, "empty request");
        let back = S::Request::decode(sent.body.as_slice()).expect("the request decodes");
        assert_eq!(back.encoded_len(), len);
        assert!(back.encode_to_vec() == sent.body, "prost writes other bytes for the decoded request");
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

/// For the `#[ignore]` timing harnesses: runs `round` 15 times (each returns
/// how many points it timed and how long they took) and prints the minimum,
/// median and maximum nanoseconds a point under `label`.
pub(crate) fn print_ns_per_point(label: &str, mut round: impl FnMut() -> (usize, std::time::Duration)) {
    let mut ns: Vec<f64> = (0..15)
        .map(|_| {
            let (points, took) = round();
            took.as_nanos() as f64 / points as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    println!("{label}, ns/point: min {:.1} median {:.1} max {:.1}", ns[0], ns[ns.len() / 2], ns[ns.len() - 1]);
}
