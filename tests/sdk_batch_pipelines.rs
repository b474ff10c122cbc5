//! The exporters under the SDK's own machinery: `PeriodicReader`,
//! `BatchSpanProcessor`, `BatchLogProcessor`. There the SDK never asks the
//! exporter for a barrier, so the documented recipe is the provider's
//! `force_flush` (the SDK hands its data over) followed by
//! `OtlpExporter::force_flush` (the barrier); the provider's shutdown reaches
//! the exporters' shutdown, which delivers everything.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::time::Duration;

use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use otlp_sink::config::TemporalityPreference;
use support::background_receiver::BackgroundReceiver;
use support::sdk;

fn sdk_batching(exporter: &otlp_sink::OtlpExporter) -> sdk::Providers {
    sdk::Providers {
        meters: SdkMeterProvider::builder()
            .with_resource(sdk::resource())
            .with_reader(
                PeriodicReader::builder(exporter.metric_exporter()).with_interval(Duration::from_secs(3600)).build(),
            )
            .build(),
        tracers: SdkTracerProvider::builder()
            .with_resource(sdk::resource())
            .with_batch_exporter(exporter.span_exporter())
            .build(),
        loggers: SdkLoggerProvider::builder()
            .with_resource(sdk::resource())
            .with_batch_exporter(exporter.log_exporter())
            .build(),
    }
}

#[test]
fn provider_flush_then_exporter_flush_delivers_everything() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk_batching(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("the SDK handed its data to the exporters");
    exporter.force_flush().expect("the barrier");
    let counts = receiver.counts();
    assert_eq!(
        (counts.metrics.acked, counts.traces.acked, counts.logs.acked),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS),
        "acknowledged when the exporter's flush returned"
    );
    // The resource the SDK gave the exporters travels with the data.
    for signal in [otlp_sink::Signal::Metrics, otlp_sink::Signal::Traces, otlp_sink::Signal::Logs] {
        let resources = receiver.resources(signal);
        assert!(
            resources[0].attributes.contains(&otlp_sink::otlp::KeyValue::new("service.name", "otlp-sink-sdk-tests")),
            "{signal:?}: {resources:?}"
        );
    }
    sdk::shutdown(&p).expect("clean shutdown");
}

#[test]
fn provider_shutdown_alone_delivers_everything() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk_batching(&exporter);
    sdk::record(&p);
    sdk::shutdown(&p).expect("clean shutdown");
    let counts = receiver.counts();
    assert_eq!(
        (counts.metrics.acked, counts.traces.acked, counts.logs.acked),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS),
        "acknowledged when the providers' shutdown returned"
    );
    assert_eq!(exporter.stats().metrics.sink.dropped, 0);
}

#[test]
fn the_metric_exporter_reports_the_temporality_it_was_built_with() {
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter as _;
    use opentelemetry_sdk::metrics::Temporality;
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()).with_temporality(TemporalityPreference::LowMemory));
    assert_eq!(exporter.metric_exporter().temporality(), Temporality::LowMemory);
}
