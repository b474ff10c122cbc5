//! End to end against a real collector (rotel, see `tests/support/ROTEL.md`):
//! telemetry recorded through the standard OpenTelemetry API, `force_flush`
//! on each provider, and rotel's own count of what it received per signal.
//! Run `scripts/install-test-deps.sh` once first.

#![cfg(feature = "sdk")]

mod support;

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use support::rotel::{Rotel, Signal};
use support::sdk;

/// rotel prints its count line as it takes the request in; give it time.
const WAIT: Duration = Duration::from_secs(10);

const COUNTERS: u64 = 10;
const SERIES: u64 = 100;
const EXTRA_SPANS: u64 = 200;

#[test]
fn every_signal_recorded_through_the_api_reaches_rotel_in_full() {
    let rotel = Rotel::start();
    let exporter = sdk::build(sdk::builder(&rotel.endpoint()));
    let p = sdk::providers(&exporter);

    sdk::record(&p);
    let meter = p.meters.meter("otlp-sink/rotel");
    for c in 0..COUNTERS {
        let counter = meter.u64_counter(format!("jobs_{c}")).build();
        for s in 0..SERIES {
            counter.add(s + 1, &[KeyValue::new("series", s as i64)]);
        }
    }
    let tracer = p.tracers.tracer("otlp-sink/rotel");
    for i in 0..EXTRA_SPANS {
        tracer.in_span(format!("job {i}"), |_cx| {});
    }
    let points = sdk::METRIC_POINTS + COUNTERS * SERIES;
    let spans = sdk::SPANS + EXTRA_SPANS;

    sdk::flush(&p).expect("force_flush on every provider");
    let stats = exporter.stats();
    // What the exporter saw acknowledged when the flush returned...
    assert_eq!(
        (stats.metrics.export.acked, stats.traces.export.acked, stats.logs.export.acked),
        (points, spans, sdk::LOG_RECORDS)
    );
    // ...is what the collector counted.
    assert_eq!(rotel.wait_for(Signal::Metrics, points, WAIT).expect("metric points"), points);
    assert_eq!(rotel.wait_for(Signal::Traces, spans, WAIT).expect("spans"), spans);
    assert_eq!(rotel.wait_for(Signal::Logs, sdk::LOG_RECORDS, WAIT).expect("log records"), sdk::LOG_RECORDS);

    // Cumulative: a second collection sends every series again; shutdown
    // makes the final collection.
    p.meters.force_flush().expect("second metrics flush");
    sdk::shutdown(&p).expect("clean shutdown");
    assert_eq!(rotel.wait_for(Signal::Metrics, 3 * points, WAIT).expect("three collections"), 3 * points);
    let counts = rotel.counts();
    assert_eq!(
        (counts.items(Signal::Traces), counts.items(Signal::Logs)),
        (spans, sdk::LOG_RECORDS),
        "nothing sent twice"
    );
    assert_eq!(counts.malformed, 0);
}
