//! The collector is down when the exporter starts and comes up 3 s later:
//! everything pushed meanwhile is delivered within the retry window, and the
//! flush waits for it and then returns `Ok`: never before the collector
//! exists. rotel is the collector; its own count must equal what was pushed.
//!
//! About 4 s of wall time: in a file of its own so that nextest runs it
//! beside the others.

mod support;

use std::time::{Duration, Instant};

use otlp_sink::{config::RetryPolicy, ExporterConfig, SinkConfig};
use support::accounting::Pipeline;
use support::errors::chain;
use support::points::Shared;
use support::rotel::{Rotel, Signal};

const DOWN_FOR: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_comes_up_three_seconds_late_gets_everything_and_flush_waits_for_it() {
    // Started once to own a port, then killed: nothing listens there now.
    let mut rotel = Rotel::start();
    rotel.kill();
    // The whole window fits the retry budget: 100 ms, 150 ms, ... 500 ms apart, for 10 s.
    let retry = RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_millis(500))
        .with_max_elapsed(Duration::from_secs(10));
    let config = ExporterConfig::builder()
        .with_endpoint(rotel.endpoint())
        .with_timeout(Duration::from_secs(2))
        .with_max_request_bytes(64 * 1024)
        .with_retry_policy(retry);
    let p = Pipeline::start(config, SinkConfig::default().with_queue_capacity(20_000).with_batch_size(1_000)).await;
    assert_eq!(p.offer(Shared::new().counters(10, 1_000)), 0);

    let started = Instant::now();
    let collector = std::thread::spawn(move || {
        std::thread::sleep(DOWN_FOR);
        let up_from = Instant::now();
        rotel.restart();
        (rotel, up_from)
    });
    let flushed = p.sink.flush().await;
    let returned = Instant::now();
    let (rotel, up_from) = collector.join().expect("the collector thread");

    if let Err(err) = &flushed {
        panic!("the collector came up within the retry window, yet: {}", chain(err));
    }
    assert!(returned > up_from, "flush returned Ok before the collector was started: a false Ok");
    println!("flush waited {:?} for a collector down {DOWN_FOR:?}", returned - started);
    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("collector down at start");
    let e = books.export;
    assert_eq!((e.acked, e.failed, e.rejected), (10_000, 0, 0));
    assert!(e.retries > 0, "the first attempts found nobody: {e:?}");
    // The collector's own count: every point once (it was down, so nothing
    // reached it twice), in as many requests as the drain made.
    let counts = rotel
        .wait_until(Duration::from_secs(30), |c| {
            c.items(Signal::Metrics) >= 10_000 && c.requests_of(Signal::Metrics) >= e.requests
        })
        .unwrap_or_else(|err| panic!("rotel did not log all of {e:?}:\n{err}"));
    assert_eq!(counts.items(Signal::Metrics), 10_000, "rotel counted {counts}");
    assert_eq!(counts.requests_of(Signal::Metrics), e.requests, "rotel counted {counts}");
}
