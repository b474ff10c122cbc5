//! Configuration of an [`OtlpExporter`]: the OTLP environment (read through a
//! lookup function, never the process environment) per signal, code over
//! environment, the temporality preference end to end, and the resource and
//! scopes the collector receives.

#![cfg(all(feature = "sdk", feature = "receiver"))]

#[path = "support/background_receiver.rs"]
mod background_receiver;
#[path = "support/sdk.rs"]
mod sdk;

use std::collections::HashMap;
use std::time::Duration;

use background_receiver::BackgroundReceiver;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::metrics::reader::MetricReader as _;
use opentelemetry_sdk::metrics::{InstrumentKind, Temporality};
use otlp_sink::{BuildError, OtlpExporter, Signal, TemporalityPreference};

fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    move |name| vars.get(name).cloned()
}

#[test]
fn the_environment_sets_temporality_and_interval_and_code_wins() {
    let receiver = BackgroundReceiver::start();
    let lookup = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1500".into()),
    ]);
    let exporter = OtlpExporter::builder().build_with_lookup(&lookup).expect("builds");
    assert_eq!(exporter.temporality(), TemporalityPreference::Delta);
    assert_eq!(exporter.export_interval(), Duration::from_millis(1500));
    let reader = exporter.metric_reader();
    assert_eq!(reader.temporality(InstrumentKind::Counter), Temporality::Delta);
    assert_eq!(reader.temporality(InstrumentKind::Histogram), Temporality::Delta);
    assert_eq!(reader.temporality(InstrumentKind::UpDownCounter), Temporality::Cumulative);

    let exporter = OtlpExporter::builder()
        .with_temporality(TemporalityPreference::Cumulative)
        .with_export_interval(Duration::from_secs(7))
        .build_with_lookup(&lookup)
        .expect("builds");
    assert_eq!(exporter.temporality(), TemporalityPreference::Cumulative);
    assert_eq!(exporter.export_interval(), Duration::from_secs(7));
    assert_eq!(exporter.metric_reader().temporality(InstrumentKind::Counter), Temporality::Cumulative);

    let defaults = OtlpExporter::builder().build_with_lookup(|_| None).expect("builds");
    assert_eq!(defaults.temporality(), TemporalityPreference::Cumulative);
    assert_eq!(defaults.export_interval(), Duration::from_secs(60));
}

#[test]
fn a_bad_variable_is_a_build_error_naming_the_signal_and_the_variable() {
    let err = OtlpExporter::builder()
        .build_with_lookup(env(&[("OTEL_METRIC_EXPORT_INTERVAL", "soon".into())]))
        .expect_err("not milliseconds");
    let BuildError::Config { signal, source } = &err else { panic!("{err:?}") };
    assert_eq!(
        (*signal, source.variable(), source.value()),
        (Some(Signal::Metrics), Some("OTEL_METRIC_EXPORT_INTERVAL"), Some("soon"))
    );

    let err = OtlpExporter::builder()
        .build_with_lookup(env(&[("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "-1".into())]))
        .expect_err("not milliseconds");
    let BuildError::Config { signal, source } = &err else { panic!("{err:?}") };
    assert_eq!((*signal, source.variable()), (Some(Signal::Logs), Some("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT")));
    assert_eq!(
        err.to_string(),
        r#"invalid OTEL_EXPORTER_OTLP_LOGS_TIMEOUT = "-1": not a non-negative whole number of milliseconds"#
    );
}

#[test]
fn per_signal_endpoints_and_code_settings_over_the_environment() {
    let main = BackgroundReceiver::start();
    let traces = BackgroundReceiver::start();
    let lookup = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", main.endpoint()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.endpoint()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=from-env".into()),
    ]);
    let exporter = OtlpExporter::builder()
        .with_header("x-tenant", "from-code")
        .with_export_interval(Duration::from_secs(3600))
        .build_with_lookup(lookup)
        .expect("builds");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).unwrap();
    let (main_counts, traces_counts) = (main.counts(), traces.counts());
    assert_eq!(
        (main_counts.metrics.acked, main_counts.traces.acked, main_counts.logs.acked),
        (sdk::METRIC_POINTS, 0, sdk::LOG_RECORDS)
    );
    assert_eq!(traces_counts.traces.acked, sdk::SPANS);
    assert_eq!(main.last_header("x-tenant").as_deref(), Some("from-code"), "code wins over the environment");
    assert_eq!(traces.last_header("x-tenant").as_deref(), Some("from-code"));
    sdk::shutdown(&p).unwrap();
}

#[test]
fn delta_temporality_sends_changes_and_cumulative_sends_totals() {
    for (temporality, second_flush) in [
        // Only the up-down counter (cumulative under delta) is sent again.
        (TemporalityPreference::Delta, 1),
        (TemporalityPreference::Cumulative, sdk::METRIC_POINTS),
    ] {
        let receiver = BackgroundReceiver::start();
        let exporter = sdk::build(sdk::builder(&receiver.endpoint()).with_temporality(temporality));
        let p = sdk::providers(&exporter);
        sdk::record(&p);
        p.meters.force_flush().unwrap();
        assert_eq!(receiver.counts().metrics.acked, sdk::METRIC_POINTS, "{temporality:?}");
        p.meters.force_flush().unwrap();
        assert_eq!(receiver.counts().metrics.acked, sdk::METRIC_POINTS + second_flush, "{temporality:?}");
        sdk::shutdown(&p).unwrap();
    }
}

#[test]
fn resource_scopes_and_log_targets_reach_the_collector() {
    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    let logger = p.loggers.logger("otlp-sink/tests");
    let mut record = logger.create_log_record();
    record.set_target("my_app::db");
    record.set_body("with a target".into());
    logger.emit(record);
    sdk::flush(&p).unwrap();
    for signal in [Signal::Metrics, Signal::Traces, Signal::Logs] {
        let resources = receiver.resources(signal);
        assert_eq!(resources.len(), 1, "{signal:?}: {resources:?}");
        assert!(
            resources[0].attributes.contains(&otlp_sink::KeyValue::new("service.name", "otlp-sink-sdk-tests")),
            "{signal:?}: {resources:?}"
        );
    }
    assert_eq!(receiver.scope_names(Signal::Metrics), ["otlp-sink/tests"]);
    assert_eq!(receiver.scope_names(Signal::Traces), ["otlp-sink/tests"]);
    let mut log_scopes = receiver.scope_names(Signal::Logs);
    log_scopes.sort();
    assert_eq!(log_scopes, ["my_app::db", "otlp-sink/tests"], "a record's target names its scope");
    sdk::shutdown(&p).unwrap();
}
