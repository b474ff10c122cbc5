//! Configuration of an [`OtlpExporter`] as a user meets it, through
//! `OtlpExporter::builder()`: the OTLP environment (read through a lookup
//! function; the process environment only in a child process) per signal,
//! the builder's settings layered over it setting by setting, the path that
//! ignores it, the protocol chosen per signal (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`
//! honoured, `http/json` refused by name),
//! the text of a `BuildError`, TLS from PEM given in code, the temporality
//! preference end to end, the resource and scopes the collector receives,
//! and the README's table of defaults.

#![cfg(all(feature = "sdk", feature = "receiver"))]

mod support;

use std::collections::HashMap;
use std::error::Error as _;
use std::time::Duration;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::metrics::reader::MetricReader as _;
use opentelemetry_sdk::metrics::{InstrumentKind, Temporality};
use otlp_sink::receiver::{Receiver, ReceiverTls};
use otlp_sink::{
    config::{Compression, ExporterConfigErrorKind, RetryPolicy, TemporalityPreference, TlsConfig, ValueOrigin},
    sdk::{BuildError, OtlpExporterBuilder},
    ExporterConfig, OtlpExporter, Protocol, Signal, SinkConfig,
};
use support::background_receiver::BackgroundReceiver;
use support::sdk;

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
            resources[0].attributes.contains(&otlp_sink::otlp::KeyValue::new("service.name", "otlp-sink-sdk-tests")),
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

/// The environment of a deployment: a collector that is not this test's
/// receiver, credentials in headers, a timeout and compression.
fn deployment_env() -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1".into()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=from-env,authorization=Bearer%20env-token".into()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "4000".into()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into()),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none".into()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
    ]
}

/// Quick retries, so that a test whose endpoint is wrong fails fast.
fn quick() -> RetryPolicy {
    RetryPolicy::new().with_initial_delay(Duration::from_millis(20)).with_max_elapsed(Duration::from_secs(2))
}

#[test]
fn builder_settings_layer_over_the_environment_setting_by_setting() {
    let receiver = BackgroundReceiver::start();
    let lookup = env(&deployment_env());

    // Code sets only the endpoint: every other setting is the environment's.
    let builder = OtlpExporter::builder().with_endpoint(receiver.endpoint()).with_retry_policy(quick());
    let metrics = builder.resolve_config(Signal::Metrics, &lookup).expect("resolves");
    assert_eq!(metrics.endpoint().to_string(), format!("{}/", receiver.endpoint()), "code wins");
    assert_eq!(metrics.timeout(), Duration::from_secs(4), "from OTEL_EXPORTER_OTLP_TIMEOUT");
    assert_eq!(metrics.compression(), Compression::Gzip, "from OTEL_EXPORTER_OTLP_COMPRESSION");
    assert_eq!(metrics.protocol(), Protocol::Grpc);
    let traces = builder.resolve_config(Signal::Traces, &lookup).expect("resolves");
    assert_eq!(traces.compression(), Compression::None, "the per-signal variable wins over the generic one");

    // And a real flush: the data reaches the code's endpoint, with the environment's headers.
    let exporter = builder.clone().build_with_lookup(&lookup).expect("builds");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("the receiver acknowledges everything");
    let counts = receiver.counts();
    assert_eq!(
        (counts.metrics.acked, counts.traces.acked, counts.logs.acked),
        (sdk::METRIC_POINTS, sdk::SPANS, sdk::LOG_RECORDS)
    );
    assert_eq!(receiver.last_header("x-tenant").as_deref(), Some("from-env"));
    assert_eq!(receiver.last_header("authorization").as_deref(), Some("Bearer env-token"), "percent-decoded");
    sdk::shutdown(&p).unwrap();

    // Code sets more: each setting it sets wins, the others stay the environment's.
    let receiver = BackgroundReceiver::start();
    let builder = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_header("X-Tenant", "from-code")
        .with_timeout(Duration::from_millis(2500))
        .with_compression(Compression::Zstd)
        .with_retry_policy(quick());
    let metrics = builder.resolve_config(Signal::Metrics, &lookup).expect("resolves");
    assert_eq!((metrics.timeout(), metrics.compression()), (Duration::from_millis(2500), Compression::Zstd));
    assert_eq!(metrics.headers().names().collect::<Vec<_>>(), ["x-tenant", "authorization"]);
    let exporter = builder.build_with_lookup(&lookup).expect("builds");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("acknowledged");
    assert_eq!(receiver.last_header("x-tenant").as_deref(), Some("from-code"), "code wins for its header");
    assert_eq!(receiver.last_header("authorization").as_deref(), Some("Bearer env-token"), "the rest stay");
    sdk::shutdown(&p).unwrap();
}

#[test]
fn build_without_env_reads_no_variable() {
    let receiver = BackgroundReceiver::start();
    let mut vars = deployment_env();
    // Each of these would fail a build that reads the environment.
    vars.push(("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json".into()));
    vars.push(("OTEL_METRIC_EXPORT_INTERVAL", "soon".into()));
    let lookup = env(&vars);
    let builder = OtlpExporter::builder().with_endpoint(receiver.endpoint()).with_header("x-code", "1");
    assert!(builder.clone().build_with_lookup(&lookup).is_err(), "this environment is refused when read");
    assert!(matches!(builder.resolve_config(Signal::Traces, |_| None), Ok(c) if c.headers().len() == 1));

    let exporter = builder.build_without_env().expect("nothing read, nothing refused");
    assert_eq!(exporter.export_interval(), Duration::from_secs(60), "the default, not the environment's");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("acknowledged");
    assert_eq!(receiver.counts().traces.acked, sdk::SPANS);
    assert_eq!(receiver.last_header("x-code").as_deref(), Some("1"));
    sdk::shutdown(&p).unwrap();
}

/// The child half of [`build_reads_the_process_environment_and_build_without_env_does_not`],
/// run in a process of its own whose environment the parent sets.
#[test]
#[ignore = "run by build_reads_the_process_environment_and_build_without_env_does_not, in a child process"]
fn child_with_a_process_environment() {
    let endpoint = std::env::var("OTLP_SINK_TEST_RECEIVER").expect("run by the parent test");
    let err = OtlpExporter::builder().with_endpoint(&endpoint).build().expect_err("build() reads the process env");
    assert!(err.to_string().starts_with(r#"invalid OTEL_EXPORTER_OTLP_PROTOCOL = "http/json": "#), "{err}");

    let exporter = OtlpExporter::builder()
        .with_endpoint(&endpoint)
        .with_header("x-code", "child")
        .build_without_env()
        .expect("build_without_env() reads none of it");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("acknowledged");
    sdk::shutdown(&p).unwrap();
}

#[test]
fn build_reads_the_process_environment_and_build_without_env_does_not() {
    let receiver = BackgroundReceiver::start();
    // The test's own process environment is never changed: the child gets one of its own.
    let status = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--ignored", "--exact", "child_with_a_process_environment", "--test-threads", "1"])
        .env_clear()
        .env("OTLP_SINK_TEST_RECEIVER", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-env=from-env")
        .status()
        .expect("the child runs");
    assert!(status.success(), "the child test failed: {status}");
    assert_eq!(receiver.counts().traces.acked, sdk::SPANS, "the child's build_without_env exporter delivered");
    assert_eq!(receiver.last_header("x-code").as_deref(), Some("child"));
    assert_eq!(receiver.last_header("x-env"), None, "no header from the environment");
}

#[test]
fn http_json_is_refused_at_build_naming_the_variable_and_what_is_supported() {
    let receiver = BackgroundReceiver::start();
    for (variable, signal) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", None),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(Signal::Traces)),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", Some(Signal::Logs)),
    ] {
        let err = OtlpExporter::builder()
            .with_endpoint(receiver.endpoint())
            .build_with_lookup(env(&[(variable, "http/json".into())]))
            .expect_err("OTLP/HTTP with JSON bodies is not spoken here");
        let BuildError::Config { signal: got, source } = &err else { panic!("{err:?}") };
        assert_eq!(*got, signal, "{variable}");
        assert_eq!(source.kind(), ExporterConfigErrorKind::UnsupportedProtocol);
        let text = err.to_string();
        assert!(text.starts_with(&format!("invalid {variable} = \"http/json\": ")), "{text}");
        assert!(text.contains("supports grpc and http/protobuf"), "{text}");
    }
    let err = OtlpExporter::builder()
        .build_with_lookup(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into())]))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid OTEL_EXPORTER_OTLP_PROTOCOL = \"http/json\": this exporter supports grpc and http/protobuf, not \
         http/json (OTLP/HTTP with JSON bodies); set it to http/protobuf (the same port, 4318 by default, protobuf \
         bodies) or grpc, or unset it (grpc)"
    );

    // An unknown protocol is refused too, even when code sets one.
    let err = OtlpExporter::builder()
        .with_protocol(Protocol::Grpc)
        .build_with_lookup(env(&[("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http".into())]))
        .unwrap_err();
    assert!(matches!(&err, BuildError::Config { signal: Some(Signal::Metrics), source }
        if source.kind() == ExporterConfigErrorKind::UnknownProtocol && source.value() == Some("http")));

    // Code's protocol wins over the environment's http/json, and the data gets through.
    let exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_protocol(Protocol::Grpc)
        .build_with_lookup(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into())]))
        .expect("code wins");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("acknowledged");
    assert_eq!(receiver.counts().metrics.acked, sdk::METRIC_POINTS);
    sdk::shutdown(&p).unwrap();
}

#[test]
fn http_protobuf_is_honoured_per_signal_and_code_wins_over_it() {
    // (Delivery over HTTP through the adapters is in tests/http_transport.rs.)
    let lookup = env(&[
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example/otlp/".into()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/t".into()),
    ]);
    let builder = OtlpExporter::builder();
    let resolve = |b: &OtlpExporterBuilder, signal| b.resolve_config(signal, &lookup).expect("resolves");
    let metrics = resolve(&builder, Signal::Metrics);
    assert_eq!(metrics.protocol(), Protocol::HttpProtobuf);
    assert_eq!(metrics.export_url(Signal::Metrics), "https://collector.example/otlp/v1/metrics", "a base URL");
    let traces = resolve(&builder, Signal::Traces);
    assert_eq!(traces.protocol(), Protocol::HttpProtobuf);
    assert_eq!(traces.export_url(Signal::Traces), "https://traces.example/t", "the signal's own: as given");
    let logs = resolve(&builder, Signal::Logs);
    assert_eq!(logs.protocol(), Protocol::Grpc, "the per-signal variable wins");
    assert_eq!(logs.export_url(Signal::Logs), "https://collector.example/otlp/", "gRPC: as given");

    // Nothing set: gRPC to :4317; http/protobuf alone: :4318.
    let none = OtlpExporter::builder().resolve_config(Signal::Metrics, |_| None).unwrap();
    assert_eq!((none.protocol(), none.endpoint().to_string()), (Protocol::Grpc, "http://localhost:4317/".into()));
    let http_only = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into())]);
    let http = OtlpExporter::builder().resolve_config(Signal::Metrics, &http_only).unwrap();
    assert_eq!(http.export_url(Signal::Metrics), "http://localhost:4318/v1/metrics");

    // Code wins for every signal.
    let grpc = OtlpExporter::builder().with_protocol(Protocol::Grpc);
    assert!([Signal::Metrics, Signal::Traces, Signal::Logs]
        .iter()
        .all(|&s| resolve(&grpc, s).protocol() == Protocol::Grpc));
    let http = OtlpExporter::builder().with_protocol(Protocol::HttpProtobuf);
    assert_eq!(resolve(&http, Signal::Logs).protocol(), Protocol::HttpProtobuf);
}

#[test]
fn a_build_error_names_the_variable_and_value_and_a_signal_only_for_a_per_signal_variable() {
    let build = |vars: &[(&str, &str)]| {
        let vars: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        OtlpExporter::builder().build_with_lookup(env(&vars)).expect_err("a bad variable")
    };

    // A generic variable: reported once, under no signal, and the text says no "metrics".
    let err = build(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]);
    assert!(matches!(err, BuildError::Config { signal: None, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"invalid OTEL_EXPORTER_OTLP_TIMEOUT = "soon": not a non-negative whole number of milliseconds"#
    );
    assert!(err.source().unwrap().is::<std::num::ParseIntError>(), "the cause, not the same text again");

    // A per-signal variable: its signal, which its name says.
    let err = build(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli")]);
    assert!(matches!(err, BuildError::Config { signal: Some(Signal::Traces), .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"invalid OTEL_EXPORTER_OTLP_TRACES_COMPRESSION = "brotli": the compression must be none, gzip or zstd"#
    );

    // A header value is never shown, even in the chain.
    let err = build(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization Bearer s3cr3t")]);
    assert_eq!(
        err.to_string(),
        "invalid OTEL_EXPORTER_OTLP_HEADERS (entry 1, value hidden): a header must be written name=value, \
         with a non-empty name"
    );
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));

    // A certificate file that does not exist, named by a generic variable.
    let err = build(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/definitely/not/here/ca.pem")]);
    assert!(matches!(err, BuildError::Config { signal: None, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"invalid OTEL_EXPORTER_OTLP_CERTIFICATE = "/definitely/not/here/ca.pem": the file cannot be read"#
    );
    assert_eq!(err.source().unwrap().downcast_ref::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::NotFound);

    // A setting made in code: named as a setting.
    let err = OtlpExporter::builder().with_timeout(Duration::ZERO).build_without_env().unwrap_err();
    assert!(
        matches!(&err, BuildError::Config { signal: None, source } if source.origin() == ValueOrigin::Code("timeout"))
    );
    assert_eq!(err.to_string(), r#"invalid setting `timeout` = "0ns": must be greater than zero"#);
}

/// A receiver with TLS on a runtime of its own, demanding a client
/// certificate from `client_ca`: (runtime, receiver, server CA PEM).
fn tls_receiver(
    client_ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
) -> (tokio::runtime::Runtime, Receiver, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "server CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca).unwrap();
    let tls = ReceiverTls::new(cert.pem(), key.serialize_pem()).with_client_ca(client_ca.pem());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let receiver = runtime.block_on(Receiver::builder().with_tls(tls).start()).expect("TLS receiver starts");
    (runtime, receiver, ca.pem())
}

fn client_ca() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "client CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

#[test]
fn mutual_tls_from_pem_given_to_with_tls_config() {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
    let clients = client_ca();
    let (runtime, receiver, server_ca) = tls_receiver(&clients);
    let mut params = CertificateParams::new(vec!["client".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &clients).unwrap();

    let tls =
        TlsConfig::new().with_ca_certificate_pem(server_ca).with_client_identity_pem(cert.pem(), key.serialize_pem());
    let exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_tls_config(tls)
        .with_timeout(Duration::from_secs(5))
        .with_retry_policy(RetryPolicy::disabled())
        .with_export_interval(Duration::from_secs(3600))
        // The environment names files that do not exist: the code's PEM wins.
        .build_with_lookup(env(&[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/not/here/ca.pem".into()),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/not/here/c.pem".into()),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/not/here/c.key".into()),
        ]))
        .expect("builds");
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    sdk::flush(&p).expect("acknowledged over mutual TLS");
    assert_eq!(receiver.counts().traces.acked, sdk::SPANS);
    sdk::shutdown(&p).unwrap();
    runtime.block_on(receiver.shutdown());
}
/// The README's table of defaults, checked against the code: each row that
/// names a constant or a default shows the value the code has.
#[test]
fn the_readme_defaults_table_matches_the_code() {
    let readme = include_str!("../README.md");
    let start = readme.find("<!-- defaults-table -->").expect("the README marks its defaults table");
    let table = &readme[start..];
    let table = &table[..table.find("\n\n").unwrap_or(table.len())];
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no row names {name} in the README's defaults table"))
    };
    let sink = SinkConfig::default();
    let retry = RetryPolicy::default();
    let checks: Vec<(&str, String)> = vec![
        ("DEFAULT_METRICS_QUEUE_CAPACITY", OtlpExporterBuilder::DEFAULT_METRICS_QUEUE_CAPACITY.to_string()),
        ("DEFAULT_METRICS_BATCH_SIZE", OtlpExporterBuilder::DEFAULT_METRICS_BATCH_SIZE.to_string()),
        ("DEFAULT_METRICS_BATCH_BYTES", OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES.to_string()),
        ("DEFAULT_QUEUE_CAPACITY", OtlpExporterBuilder::DEFAULT_QUEUE_CAPACITY.to_string()),
        ("DEFAULT_QUEUE_SHARDS", OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS.to_string()),
        ("spans, log records: batch", sink.batch_size().to_string()),
        ("flush_interval", format!("{:?}", sink.flush_interval())),
        ("DEFAULT_FLUSH_TIMEOUT", format!("{:?}", OtlpExporter::DEFAULT_FLUSH_TIMEOUT)),
        ("DEFAULT_SHUTDOWN_TIMEOUT", format!("{:?}", OtlpExporter::DEFAULT_SHUTDOWN_TIMEOUT)),
        ("DEFAULT_TIMEOUT", format!("{:?}", ExporterConfig::DEFAULT_TIMEOUT)),
        ("max_elapsed", format!("{:?}", retry.max_elapsed())),
        ("DEFAULT_MAX_IN_FLIGHT", ExporterConfig::DEFAULT_MAX_IN_FLIGHT.to_string()),
        ("DEFAULT_MAX_REQUEST_BYTES", ExporterConfig::DEFAULT_MAX_REQUEST_BYTES.to_string()),
        ("DEFAULT_ENDPOINT", ExporterConfig::DEFAULT_ENDPOINT.to_string()),
        ("DEFAULT_HTTP_ENDPOINT", ExporterConfig::DEFAULT_HTTP_ENDPOINT.to_string()),
        (
            "DEFAULT_METRIC_EXPORT_INTERVAL",
            format!("{:?}", otlp_sink::config::EnvSettings::DEFAULT_METRIC_EXPORT_INTERVAL),
        ),
        ("DEFAULT_EXPORT_THREADS", OtlpExporterBuilder::DEFAULT_EXPORT_THREADS.to_string()),
        ("SpoolConfig::max_bytes", otlp_sink::config::SpoolConfig::new("d").max_bytes().to_string()),
        (
            "SpoolConfig::max_record_age",
            format!("{:?}", otlp_sink::config::SpoolConfig::new("d").max_record_age().expect("an age bound")),
        ),
    ];
    for (name, value) in checks {
        let line = row(name);
        assert!(line.contains(&format!("`{value}`")), "the README's row for {name} should show `{value}`: {line}");
    }
}

/// The README's bounded shutdown path: against a collector that never
/// answers, the exporter's shutdown returns by its timeout, and the meter
/// provider's shutdown afterwards at once.
#[test]
fn the_readme_shutdown_path_is_bounded_by_the_exporters_timeout() {
    use otlp_sink::receiver::Reply;
    let receiver = BackgroundReceiver::start();
    for signal in [Signal::Metrics, Signal::Traces, Signal::Logs] {
        receiver.set_default(signal, Reply::Hang);
    }
    let exporter = sdk::build(
        sdk::builder(&receiver.endpoint())
            .with_timeout(Duration::from_secs(60))
            .with_shutdown_timeout(Duration::from_millis(400)),
    );
    let p = sdk::providers(&exporter);
    sdk::record(&p);
    let started = std::time::Instant::now();
    assert!(exporter.shutdown().is_err(), "nothing was acknowledged");
    let _ = p.meters.shutdown();
    let _ = p.tracers.shutdown();
    let _ = p.loggers.shutdown();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}, not about 0.4 s");
}

/// The metrics sink's default batches are cut by bytes: a collection of
/// 60 000 points (about 4.5 MB) leaves in requests of about
/// `DEFAULT_METRICS_BATCH_BYTES` each, not in batches of a fixed count
/// (8 192 points would make 8 requests).
#[test]
fn a_large_collection_leaves_in_requests_of_the_default_batch_bytes() {
    use opentelemetry::metrics::MeterProvider as _;

    let receiver = BackgroundReceiver::start();
    let exporter = sdk::build(sdk::builder(&receiver.endpoint()));
    let provider =
        opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(exporter.metric_reader()).build();
    let meter = provider.meter("batch-bytes");
    for c in 0..60 {
        let counter = meter.u64_counter(format!("requests_{c}")).build();
        for series in 0..1000 {
            counter.add(1, &[opentelemetry::KeyValue::new("route", format!("/r/{series}"))]);
        }
    }
    provider.force_flush().expect("flush");
    let export = exporter.stats().metrics.export;
    assert_eq!((export.acked, export.items_sent), (60_000, 60_000));
    let batch = OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES as u64;
    // Each request but the last carries at least a batch's bytes of points.
    let at_most = export.bytes.div_ceil(batch);
    assert!(
        export.requests >= 2 && export.requests <= at_most,
        "{} requests for {} bytes: batches of {batch} bytes would make at most {at_most}",
        export.requests,
        export.bytes
    );
    provider.shutdown().ok();
    drop(exporter);
}
