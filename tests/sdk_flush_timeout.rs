//! A flush against a collector that is down or hangs says why it is still
//! waiting, and the outage is logged at once, not when the retry budget
//! runs out.
//!
//! - Connection refused, flush timeout 2 s: the error names the signal, what
//!   is still waiting, the collector's address, the attempts that failed and
//!   for how long, and the last failure; a WARN naming the collector was
//!   logged before the flush returned.
//! - A collector that accepts and never answers: the error says a request is
//!   awaiting the collector and that no attempt has failed yet.
//! - With the default flush timeout and retry budget, a flush against a
//!   collector that is down returns the failure itself, not a timeout: the
//!   budget (25 s) ends before the flush timeout (30 s).

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SdkTracerProvider;
use otlp_sink::receiver::Reply;
use otlp_sink::{config::RetryPolicy, OtlpExporter, Signal};
use support::background_receiver::BackgroundReceiver;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::Layer;

const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The crate's WARN events, as text, with when they were seen.
static WARNINGS: Mutex<Vec<(Instant, String)>> = Mutex::new(Vec::new());

struct CaptureWarnings;

impl<S: tracing::Subscriber> Layer<S> for CaptureWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target().starts_with("otlp_sink") {
            let mut text = String::new();
            event.record(&mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                let _ = write!(text, "{}={value:?} ", field.name());
            });
            WARNINGS.lock().unwrap().push((Instant::now(), text));
        }
    }
}

/// Installs the capturing subscriber once per process (the export runtime's
/// threads see only the global one).
fn capture_warnings() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CaptureWarnings))
            .expect("the only global subscriber of this binary");
    });
}

fn warnings_mentioning(text: &str) -> Vec<(Instant, String)> {
    WARNINGS.lock().unwrap().iter().filter(|(_, w)| w.contains(text)).cloned().collect()
}

/// A loopback address where nothing listens.
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn tracers(exporter: &OtlpExporter) -> SdkTracerProvider {
    let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
    let tracer = tracers.tracer("flush-timeout");
    for i in 0..20 {
        tracer.in_span(format!("span {i}"), |_cx| {});
    }
    tracers
}

fn lookup(endpoint: String) -> impl Fn(&str) -> Option<String> {
    move |name| (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
}

#[test]
fn a_flush_timing_out_on_a_collector_that_is_down_names_the_last_failure() {
    capture_warnings();
    let endpoint = closed_endpoint();
    let exporter = OtlpExporter::builder()
        .with_flush_timeout(FLUSH_TIMEOUT)
        .build_with_lookup(lookup(endpoint.clone()))
        .expect("builds");
    let tracers = tracers(&exporter);
    let started = Instant::now();
    let err = tracers.force_flush().expect_err("nothing can be delivered");
    let returned = Instant::now();
    assert!(returned - started < FLUSH_TIMEOUT + Duration::from_secs(1), "{:?}", returned - started);
    // (The SDK wraps each processor's error in its own list.)
    let OTelSdkError::InternalFailure(text) = err else { panic!("the cause would be lost: {err:?}") };
    assert!(text.contains("traces flush did not finish within 2s"), "{text}");
    assert!(text.contains("awaiting the collector") || text.contains("spans still queued"), "{text}");
    let collector = endpoint.trim_start_matches("http://");
    assert!(text.contains(&format!("the collector at http://{collector}")), "{text}");
    assert!(text.contains("attempt(s) over") && text.contains("the last with: Unavailable"), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");

    // The outage was logged as soon as it began, well before the flush gave up.
    let warned = warnings_mentioning(collector);
    let (first, message) = warned.first().unwrap_or_else(|| panic!("no WARN names {collector}"));
    assert!(*first < returned, "logged after the flush returned");
    assert!(message.contains("retrying"), "{message}");
    assert!(warned.len() <= 2, "rate-limited: {warned:?}");
    let _ = exporter.shutdown_with_timeout(Duration::from_millis(200));
}

#[test]
fn a_flush_timing_out_on_a_collector_that_never_answers_says_so() {
    let receiver = BackgroundReceiver::start();
    receiver.set_default(Signal::Traces, Reply::Hang);
    let exporter = OtlpExporter::builder()
        .with_flush_timeout(FLUSH_TIMEOUT)
        .build_with_lookup(lookup(receiver.endpoint()))
        .expect("builds");
    let tracers = tracers(&exporter);
    let err = tracers.force_flush().expect_err("the collector never answers");
    let OTelSdkError::InternalFailure(text) = err else { panic!("the cause would be lost: {err:?}") };
    assert!(
        text.contains(
            "traces flush did not finish within 2s: 1 request(s) awaiting the collector; no attempt has failed yet"
        ),
        "{text}"
    );
    let _ = exporter.shutdown_with_timeout(Duration::from_millis(200));
}

#[test]
fn by_default_the_retry_budget_ends_before_the_flush_timeout() {
    assert!(RetryPolicy::default().max_elapsed() + Duration::from_secs(2) < OtlpExporter::DEFAULT_FLUSH_TIMEOUT);
    let exporter = OtlpExporter::builder().build_with_lookup(lookup(closed_endpoint())).expect("builds");
    let tracers = tracers(&exporter);
    let started = Instant::now();
    let err = tracers.force_flush().expect_err("nothing can be delivered");
    let took = started.elapsed();
    let OTelSdkError::InternalFailure(text) = err else { panic!("{err:?}") };
    // The request's own failure, not the flush's timeout.
    assert!(text.contains("traces flush: 20 spans not delivered: 20 in requests the collector refused"), "{text}");
    assert!(text.contains("retries exhausted"), "{text}");
    assert!(took < OtlpExporter::DEFAULT_FLUSH_TIMEOUT, "took {took:?}");
    let _ = exporter.shutdown_with_timeout(Duration::from_millis(200));
}
