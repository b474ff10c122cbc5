//! The providers are dropped at the end of `main`, inside the tokio runtime
//! `#[tokio::main]` makes, without anyone calling `shutdown`: what they
//! recorded is delivered before the process exits, and the process exits.
//!
//! That can only be seen from outside the process, so this is a test binary
//! without the libtest harness (`harness = false`): run with no arguments,
//! or by nextest with a test name, it starts a receiver, runs itself again
//! as the child that records and exits, and checks what the receiver got.
//! It answers `--list` as libtest does, so nextest can run it. The child runs
//! with `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` set, and the test
//! also checks that they reached the collector as the resource of every signal.

mod support;

use std::process::ExitCode;
use std::time::Duration;

use otlp_sink::{
    otlp::{AnyValue, KeyValue},
    Signal,
};
use support::background_receiver::BackgroundReceiver;
use support::child;
use support::sdk;

/// Where the child sends.
const ENDPOINT: &str = "OTLP_SINK_DROP_AT_EXIT_ENDPOINT";

/// The child must have exited by then: a hang at exit is a failure.
const CHILD_BOUND: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    child::main(
        &[
            ("drop_at_end_of_main_current_thread", || parent("current_thread")),
            ("drop_at_end_of_main_multi_thread", || parent("multi_thread")),
        ],
        child,
    )
}

/// Runs the child and checks what the receiver counted.
fn parent(flavor: &str) {
    let receiver = BackgroundReceiver::start();
    let endpoint = receiver.endpoint();
    let env = [
        (ENDPOINT, endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "drop-at-exit"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=observability"),
    ];
    let output =
        child::run(child::command(flavor, &env), CHILD_BOUND, "dropping the providers at the end of main hangs");
    assert!(output.status.success(), "child exited with {}", output.status);
    // The child exited after its drops returned: nothing may still be in flight.
    let counts = receiver.counts();
    assert_eq!(
        (counts.metrics.acked, counts.traces.acked, counts.logs.acked),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS),
        "delivered before the process exited: {counts:?}"
    );
    for signal in [Signal::Metrics, Signal::Traces, Signal::Logs] {
        let resources = receiver.resources(signal);
        assert_eq!(resources.len(), 1, "{signal:?}: {resources:?}");
        let attributes = &resources[0].attributes;
        for (key, value) in
            [("service.name", "drop-at-exit"), ("deployment.environment", "test"), ("team", "observability")]
        {
            assert!(
                attributes.contains(&KeyValue::new(key, AnyValue::from(value))),
                "{signal:?}: {key}={value} missing from {attributes:?}"
            );
        }
    }
}

/// The child: records through providers that are dropped, unshut, at the end
/// of an async `main` body, then exits.
fn child(flavor: &str) {
    let runtime = match flavor {
        "current_thread" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build(),
    }
    .expect("runtime");
    let endpoint = std::env::var(ENDPOINT).expect("endpoint");
    // What `#[tokio::main] async fn main` expands to.
    runtime.block_on(async move {
        // Only the exporter settings are kept away from the environment; the
        // providers take their resource from it, as an application's do.
        let exporter = sdk::build(sdk::builder(&endpoint));
        let providers = Providers::new(&exporter);
        sdk::record(&providers.0);
        drop(exporter);
        // `providers` is dropped here, at the end of the async body.
    });
}

/// The SDK's default resource: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`.
struct Providers(sdk::Providers);

impl Providers {
    fn new(exporter: &otlp_sink::OtlpExporter) -> Self {
        use opentelemetry_sdk::logs::SdkLoggerProvider;
        use opentelemetry_sdk::metrics::SdkMeterProvider;
        use opentelemetry_sdk::trace::SdkTracerProvider;
        Self(sdk::Providers {
            meters: SdkMeterProvider::builder().with_reader(exporter.metric_reader()).build(),
            tracers: SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build(),
            loggers: SdkLoggerProvider::builder().with_log_processor(exporter.log_processor()).build(),
        })
    }
}
