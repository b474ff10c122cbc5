//! A sink in front of a drain, fed a known number of items, flushed and
//! shut down ([`deliver`]); and the comparison of what it delivered with
//! what rotel counted ([`assert_all_arrived`]). For the rotel tests of both
//! transports.

use std::time::{Duration, Instant};

use otlp_sink::deliver::{DeliveryStats, DeliveryStatsHandle};
use otlp_sink::sink::FlushError;
use otlp_sink::{BackgroundSink, SinkConfig, SinkDrain};
use tokio_util::sync::CancellationToken;

use super::rotel::{Rotel, Signal};

/// How long to wait for rotel's count lines after the flush returned.
pub const WAIT: Duration = Duration::from_secs(30);

/// What [`deliver`] saw: the flush's result, the drain's final counters, how long the flush took.
pub struct Delivered {
    pub flushed: Result<(), FlushError>,
    pub stats: DeliveryStats,
    pub took: Duration,
}

/// Pushes `items` into a sink in front of `drain` (all at once: the queue holds
/// them all, so none is dropped), flushes, shuts the sink down, and returns
/// the flush's result and the drain's counters.
pub async fn deliver<T: Send + 'static>(
    drain: impl SinkDrain<T>,
    stats: DeliveryStatsHandle,
    items: Vec<T>,
    batch_size: usize,
) -> Delivered {
    let sink_config = SinkConfig::default().with_queue_capacity(items.len().max(1)).with_batch_size(batch_size);
    let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).expect("sink");
    let pushed = items.len() as u64;
    for item in items {
        sink.try_push(item).unwrap_or_else(|e| panic!("queue refused an item: {e}"));
    }
    let started = Instant::now();
    let flushed = sink.flush().await;
    let took = started.elapsed();
    handle.shutdown().await.expect("clean shutdown");
    let stats = stats.snapshot();
    assert_eq!(stats.items_sent, pushed, "every pushed item went into a request");
    assert_eq!(stats.in_flight, 0);
    Delivered { flushed, stats, took }
}

/// Asserts that the flush succeeded, that the drain counted every item as
/// acknowledged without a retry, and that rotel logged exactly those items
/// in exactly the drain's requests.
pub fn assert_all_arrived(rotel: &Rotel, signal: Signal, sent: u64, delivered: &Delivered) {
    if let Err(e) = &delivered.flushed {
        panic!("flush failed: {e}: {:?}", std::error::Error::source(e));
    }
    let stats = &delivered.stats;
    assert_eq!((stats.acked, stats.failed, stats.rejected, stats.retries), (sent, 0, 0, 0), "{stats:?}");
    let counts = rotel
        .wait_until(WAIT, |c| c.items(signal) >= sent && c.requests_of(signal) >= stats.requests)
        .unwrap_or_else(|e| panic!("rotel did not log all of {stats:?}:\n{e}"));
    assert_eq!(counts.items(signal), sent, "rotel counted {counts}");
    assert_eq!(counts.requests_of(signal), stats.requests, "rotel counted {counts}");
    assert_eq!(counts.malformed, 0);
}
