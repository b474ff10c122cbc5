//! The stage timeline of one flush (after workload 1's rounds): where the
//! time of one `force_flush` of 50 counters x 1000 series over gRPC goes,
//! for each side.
//!
//! Stages, in ms from `force_flush` being called:
//! - collection done: the official side's, when the SDK's reader enters
//!   the exporter's `export()` (a [`TimingExporter`] around the official
//!   `MetricExporter`); this crate's, from its DEBUG event
//!   `otlp_sink::sdk::collect` "metric collection queued" and its fields
//!   `collected_us` and `queued_us` (see [`CollectLayer`]);
//! - the first request byte and the last response byte, seen by a
//!   forwarding [`Proxy`] between the exporter and rotel's gRPC port;
//! - `force_flush` returned.
//!
//! The proxy is in this flush's path only, never in the timed rounds.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

/// What the proxy saw since it was last armed.
#[derive(Default, Clone, Copy)]
struct Marks {
    armed: bool,
    first_up: Option<Instant>,
    last_down: Option<Instant>,
    bytes_up: u64,
    bytes_down: u64,
    connections: u64,
}

/// A TCP forwarder on 127.0.0.1 (an ephemeral port) to one upstream
/// address, two std threads per connection, that records, once armed, the
/// time of the first byte it forwards upstream and of the last byte it
/// forwards back (each when read, just before it is written on).
pub struct Proxy {
    addr: SocketAddr,
    marks: Arc<Mutex<Marks>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let marks = Arc::new(Mutex::new(Marks::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (Arc::clone(&marks), Arc::clone(&stop));
        std::thread::Builder::new().name("timeline-proxy".into()).spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    return;
                }
                let Ok(client) = client else { continue };
                let server = match TcpStream::connect(upstream) {
                    Ok(server) => server,
                    Err(e) => {
                        eprintln!("[vs_official] timeline proxy: connecting to {upstream}: {e}");
                        continue;
                    }
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                m.lock().unwrap().connections += 1;
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let (up, down) = (Arc::clone(&m), Arc::clone(&m));
                std::thread::spawn(move || pump(client, server, &up, true));
                std::thread::spawn(move || pump(s2, c2, &down, false));
            }
        })?;
        Ok(Proxy { addr, marks, stop })
    }

    /// `http://127.0.0.1:PORT`, for an exporter's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forgets what was seen; from now on the first and last bytes are recorded.
    fn arm(&self) {
        let mut m = self.marks.lock().unwrap();
        *m = Marks { armed: true, connections: m.connections, ..Marks::default() };
    }

    fn marks(&self) -> Marks {
        *self.marks.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` into `to` until either end closes; `up` is client -> rotel.
/// Bytes are marked when the proxy has read them, just before it forwards
/// them: so the marks of what the far end has received are always set.
fn pump(mut from: TcpStream, mut to: TcpStream, marks: &Mutex<Marks>, up: bool) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        {
            let mut m = marks.lock().unwrap();
            if m.armed && up {
                m.first_up.get_or_insert(now);
                m.bytes_up += n as u64;
            } else if m.armed {
                m.last_down = Some(now);
                m.bytes_down += n as u64;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// The official exporter, with the time its `export()` was entered: the
/// SDK's collection is done then.
#[derive(Debug)]
struct TimingExporter<E> {
    inner: E,
    entered: Arc<Mutex<Option<Instant>>>,
}

impl<E: PushMetricExporter> PushMetricExporter for TimingExporter<E> {
    fn export(&self, metrics: &ResourceMetrics) -> impl Future<Output = OTelSdkResult> + Send {
        *self.entered.lock().unwrap() = Some(Instant::now());
        self.inner.export(metrics)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The target and message of this crate's collection event.
const COLLECT_TARGET: &str = "otlp_sink::sdk::collect";
const COLLECT_MESSAGE: &str = "metric collection queued";

/// One "metric collection queued" event, and when it arrived.
#[derive(Clone, Copy, Debug, Default)]
struct CollectEvent {
    at: Option<Instant>,
    message_matches: bool,
    points: Option<u64>,
    collected_us: Option<u64>,
    queued_us: Option<u64>,
}

impl Visit for CollectEvent {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "points" => self.points = Some(value),
            "collected_us" => self.collected_us = Some(value),
            "queued_us" => self.queued_us = Some(value),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }
    // `Duration::as_micros()` is a u128.
    fn record_u128(&mut self, field: &Field, value: u128) {
        if let Ok(v) = u64::try_from(value) {
            self.record_u64(field, v);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message_matches = value == COLLECT_MESSAGE;
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message_matches = format!("{value:?}") == COLLECT_MESSAGE;
        }
    }
}

/// A layer that keeps this crate's collection events.
struct CollectLayer {
    events: Arc<Mutex<Vec<CollectEvent>>>,
}

impl<S: tracing::Subscriber> Layer<S> for CollectLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut e = CollectEvent { at: Some(Instant::now()), ..CollectEvent::default() };
        event.record(&mut e);
        if e.message_matches {
            self.events.lock().unwrap().push(e);
        }
    }
}

/// A subscriber with [`CollectLayer`] alone, filtered to [`COLLECT_TARGET`]
/// at DEBUG, and the events it keeps.
fn collect_subscriber() -> (impl tracing::Subscriber + Send + Sync, Arc<Mutex<Vec<CollectEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let filter = tracing_subscriber::filter::Targets::new().with_target(COLLECT_TARGET, tracing::Level::DEBUG);
    let layer = CollectLayer { events: Arc::clone(&events) }.with_filter(filter);
    (tracing_subscriber::registry().with(layer), events)
}

/// Installs [`collect_subscriber`] as the global subscriber (this crate's
/// event may come from any thread); `None` (and a progress line) if a
/// global subscriber was already set.
fn collect_events() -> Option<Arc<Mutex<Vec<CollectEvent>>>> {
    let (subscriber, events) = collect_subscriber();
    match tracing::subscriber::set_global_default(subscriber) {
        Ok(()) => Some(events),
        Err(e) => {
            crate::progress(format!("timeline: no tracing subscriber installed ({e}): otlp-sink's stages are n/a"));
            None
        }
    }
}

/// One side's stages, each `Some(ms from force_flush called)` when known.
#[derive(Default)]
struct Stages {
    started: Option<f64>,
    collected: Option<f64>,
    queued: Option<f64>,
    first_request_byte: Option<f64>,
    last_response_byte: Option<f64>,
    returned: f64,
    bytes_up: u64,
    bytes_down: u64,
    event: Option<CollectEvent>,
}

impl Stages {
    fn json(&self) -> serde_json::Value {
        json!({
            "force_flush_called_ms": 0.0,
            "collection_started_ms": self.started,
            "collection_done_ms": self.collected,
            "last_point_queued_ms": self.queued,
            "first_request_byte_ms": self.first_request_byte,
            "last_response_byte_ms": self.last_response_byte,
            "force_flush_returned_ms": self.returned,
            "request_bytes": self.bytes_up,
            "response_bytes": self.bytes_down,
            "collect_event": self.event.map(|e| json!({
                "points": e.points, "collected_us": e.collected_us, "queued_us": e.queued_us,
            })),
        })
    }
}

fn ms(t0: Instant, t: Option<Instant>) -> Option<f64> {
    t.map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1e3)
}

/// This crate's collection stages in ms from `t0`: (started, collected,
/// last point queued), from its event. The fields count from the
/// collection's start; the event is taken to be emitted when the last
/// point was queued, so the start is its arrival less `queued_us`. All
/// `None` without the event or its `queued_us`.
fn collect_stages(t0: Instant, event: Option<CollectEvent>) -> (Option<f64>, Option<f64>, Option<f64>) {
    let start = event.and_then(|e| e.at?.checked_sub(Duration::from_micros(e.queued_us?)));
    let at = |us: Option<u64>| Some(start? + Duration::from_micros(us?));
    (ms(t0, start), ms(t0, event.and_then(|e| at(e.collected_us))), ms(t0, event.and_then(|e| at(e.queued_us))))
}

/// Warms `provider`'s connection up with one flush through the proxy, then
/// times the next: returns the proxy's marks, t0 and force_flush's return.
fn flush_through(
    proxy: &Proxy,
    provider: &SdkMeterProvider,
    rec: &crate::Recorder,
    rotel: &crate::rotel::Rotel,
    before: impl FnOnce(),
) -> (Marks, Instant, Instant) {
    let mut sent = rotel.metric_points();
    rec.record();
    provider.force_flush().expect("warm-up flush");
    sent += rec.points();
    crate::wait_rotel(rotel, crate::rotel::Signal::Metrics, sent);
    rec.record();
    before();
    proxy.arm();
    let t0 = Instant::now();
    provider.force_flush().expect("timeline flush");
    let returned = Instant::now();
    sent += rec.points();
    crate::wait_rotel(rotel, crate::rotel::Signal::Metrics, sent);
    (proxy.marks(), t0, returned)
}

/// Runs the timeline flush for both sides; returns the table and the JSON.
pub fn run(rotel: &crate::rotel::Rotel, rt: &tokio::runtime::Runtime) -> (String, serde_json::Value) {
    const COUNTERS: usize = 50;
    let attrs = crate::attribute_sets();
    let events = collect_events();
    let proxy = Proxy::start(rotel.grpc_addr()).expect("timeline proxy");

    crate::progress(format!(
        "timeline: official, one flush of {COUNTERS} counters x {} series through a proxy",
        crate::SERIES
    ));
    let entered = Arc::new(Mutex::new(None));
    let official = {
        let _guard = rt.enter();
        let inner = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(proxy.endpoint())
            .build()
            .expect("official exporter");
        let exporter = TimingExporter { inner, entered: Arc::clone(&entered) };
        SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).with_interval(crate::NEVER).build())
            .build()
    };
    let rec = crate::Recorder::new(&official, COUNTERS, attrs.clone());
    let (marks, t0, returned) = flush_through(&proxy, &official, &rec, rotel, || *entered.lock().unwrap() = None);
    let off = Stages {
        started: None,
        collected: ms(t0, *entered.lock().unwrap()),
        queued: None,
        first_request_byte: ms(t0, marks.first_up),
        last_response_byte: ms(t0, marks.last_down),
        returned: ms(t0, Some(returned)).unwrap_or_default(),
        bytes_up: marks.bytes_up,
        bytes_down: marks.bytes_down,
        event: None,
    };
    official.shutdown().ok();

    crate::progress(format!(
        "timeline: otlp-sink, one flush of {COUNTERS} counters x {} series through a proxy",
        crate::SERIES
    ));
    let exporter = crate::our_exporter(crate::config(&proxy.endpoint()), None);
    let ours = crate::our_provider(&exporter);
    let rec = crate::Recorder::new(&ours, COUNTERS, attrs);
    let clear = || {
        if let Some(events) = &events {
            events.lock().unwrap().clear();
        }
    };
    let (marks, t0, returned) = flush_through(&proxy, &ours, &rec, rotel, clear);
    let event = events.as_ref().and_then(|e| e.lock().unwrap().last().copied());
    let (started, collected, queued) = collect_stages(t0, event);
    let mine = Stages {
        started,
        collected,
        queued,
        first_request_byte: ms(t0, marks.first_up),
        last_response_byte: ms(t0, marks.last_down),
        returned: ms(t0, Some(returned)).unwrap_or_default(),
        bytes_up: marks.bytes_up,
        bytes_down: marks.bytes_down,
        event,
    };
    ours.shutdown().ok();
    drop(exporter);
    drop(proxy);

    let cell = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    let rows = [
        ("force_flush called", Some(0.0), Some(0.0)),
        ("collection started", off.started, mine.started),
        ("collection done", off.collected, mine.collected),
        ("last point queued", off.queued, mine.queued),
        ("first request byte at the proxy", off.first_request_byte, mine.first_request_byte),
        ("last response byte at the proxy", off.last_response_byte, mine.last_response_byte),
        ("force_flush returned", Some(off.returned), Some(mine.returned)),
    ];
    let mut table = format!(
        "Timeline of one gRPC flush, {COUNTERS} counters x {} series (ms from force_flush called)\n\n",
        crate::SERIES
    );
    table.push_str("| stage | official | otlp-sink |\n| --- | ---: | ---: |\n");
    for (stage, a, b) in rows {
        table.push_str(&format!("| {stage} | {} | {} |\n", cell(a), cell(b)));
    }
    table.push_str(&format!(
        "| request / response bytes | {} / {} | {} / {} |\n",
        off.bytes_up, off.bytes_down, mine.bytes_up, mine.bytes_down
    ));
    if mine.started.is_some() {
        table.push_str(
            "\notlp-sink's collection stages: from its \"metric collection queued\" event, taken to be emitted \
             when the last point was queued (collection started = the event's time less queued_us)\n",
        );
    }
    if event.is_none() {
        table.push_str("\notlp-sink's collection stages: n/a (no \"metric collection queued\" event was seen)\n");
    } else if mine.collected.is_none() {
        table.push_str("\notlp-sink's collection stages: n/a (the event carries no collected_us / queued_us)\n");
    }
    let json = json!({
        "counters": COUNTERS,
        "series": crate::SERIES,
        "official": off.json(),
        "otlp-sink": mine.json(),
    });
    (table, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_keeps_the_collect_event_and_its_fields_only() {
        let (subscriber, events) = collect_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "otlp_sink::sdk::collect", points = 50_000u64, collected_us = 1200u64, queued_us = 3400u64, "metric collection queued");
            // Same target, another message; another target, same message; below DEBUG.
            tracing::debug!(target: "otlp_sink::sdk::collect", points = 1u64, "something else");
            tracing::debug!(target: "otlp_sink::sdk::other", points = 2u64, "metric collection queued");
            tracing::trace!(target: "otlp_sink::sdk::collect", points = 3u64, "metric collection queued");
            // The fields absent (the crate before they were added): kept, fields None.
            tracing::debug!(target: "otlp_sink::sdk::collect", "metric collection queued");
            // Signed and 128-bit values read as well.
            tracing::debug!(
                target: "otlp_sink::sdk::collect",
                points = 7i64,
                collected_us = 8u128,
                queued_us = 9usize,
                "metric collection queued"
            );
        });
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!((events[2].points, events[2].collected_us, events[2].queued_us), (Some(7), Some(8), Some(9)));
        assert_eq!(
            (events[0].points, events[0].collected_us, events[0].queued_us),
            (Some(50_000), Some(1200), Some(3400))
        );
        assert!(events[0].at.is_some());
        assert_eq!((events[1].points, events[1].collected_us, events[1].queued_us), (None, None, None));
    }

    #[test]
    fn our_stages_count_back_from_the_event() {
        let t0 = Instant::now();
        let event = |queued_us| CollectEvent {
            at: Some(t0 + Duration::from_millis(30)),
            message_matches: true,
            points: Some(50_000),
            collected_us: Some(12_000),
            queued_us,
        };
        let (started, collected, queued) = collect_stages(t0, Some(event(Some(25_000))));
        let close = |v: Option<f64>, want: f64| (v.unwrap() - want).abs() < 1e-6;
        assert!(
            close(started, 5.0) && close(collected, 17.0) && close(queued, 30.0),
            "{started:?} {collected:?} {queued:?}"
        );
        assert_eq!(collect_stages(t0, Some(event(None))), (None, None, None));
        assert_eq!(collect_stages(t0, None), (None, None, None));
    }

    #[test]
    fn the_proxy_forwards_both_ways_and_marks_only_once_armed() {
        // An upstream that answers each read with the same bytes, reversed in case.
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || s.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
                    break;
                }
            }
        });
        let proxy = Proxy::start(upstream_addr).unwrap();
        let mut client = TcpStream::connect(proxy.addr).unwrap();
        let mut reply = [0u8; 5];
        client.write_all(b"hello").unwrap();
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"HELLO");
        let before = proxy.marks();
        assert!(before.first_up.is_none() && before.last_down.is_none() && before.bytes_up == 0, "not armed yet");

        proxy.arm();
        let t0 = Instant::now();
        client.write_all(b"again").unwrap();
        client.read_exact(&mut reply).unwrap();
        let got = Instant::now();
        assert_eq!(&reply, b"AGAIN");
        let m = proxy.marks();
        let (first, last) = (m.first_up.expect("first byte up"), m.last_down.expect("last byte down"));
        assert!(t0 <= first && first <= last && last <= got);
        assert_eq!((m.bytes_up, m.bytes_down, m.connections), (5, 5, 1));
    }
}
