//! OTLP/HTTP through an HTTP proxy named by `HTTP_PROXY`, `HTTPS_PROXY` and
//! `NO_PROXY`, as the official exporter's HTTP client reads them, against a
//! real proxy (proxy.py) and the in-process receiver: an `http://`
//! collector through the proxy's forwarding, an `https://` one through a
//! `CONNECT` tunnel with TLS end to end, credentials from the proxy's URL,
//! `NO_PROXY`, a proxy that is down, gRPC left alone, and the variables
//! read from a real process environment (loadgen, a child process).

#![cfg(feature = "receiver")]

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use otlp_sink::config::{EnvSettings, ExporterConfigErrorKind, RetryPolicy, ValueOrigin};
use otlp_sink::receiver::{Receiver, ReceiverTls};
use otlp_sink::{ExporterConfig, Protocol, Signal};
use support::dead::DeadPort;
use support::errors::chain;
use support::http_proxy::HttpProxy;
use support::tls::{send_with, Pki, Sent, POINTS};

/// Retries that give up within a second: a proxy that is down fails the
/// flush quickly.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_millis(100))
        .with_max_elapsed(Duration::from_secs(1))
}

/// The exporter's settings in code for `endpoint` over `protocol`; the
/// environment comes at the build.
fn config(protocol: Protocol, endpoint: &str) -> otlp_sink::config::ExporterConfigBuilder {
    ExporterConfig::builder().with_protocol(protocol).with_endpoint(endpoint).with_retry_policy(quick_retries())
}

/// An environment of exactly `vars`.
fn env(vars: &[(&str, &str)]) -> EnvSettings {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    EnvSettings::from_lookup(Signal::Metrics, |name| vars.get(name).cloned()).expect("valid variables")
}

/// Builds with the environment `vars`, then sends and flushes [`POINTS`].
async fn send_through(builder: otlp_sink::config::ExporterConfigBuilder, vars: &[(&str, &str)]) -> Sent {
    send_with(&builder.build_with_env(env(vars)).expect("valid exporter config")).await
}

fn assert_delivered(sent: &Sent, receiver: &Receiver) {
    if let Err(e) = &sent.flushed {
        panic!("flush through the proxy: {}", chain(e));
    }
    assert_eq!((sent.stats.acked, sent.stats.failed), (POINTS, 0));
    assert_eq!(receiver.counts().metrics.acked, POINTS);
}

#[tokio::test]
async fn an_http_collector_is_reached_through_http_proxy_which_forwards_each_request() {
    let receiver = Receiver::builder().start().await.unwrap();
    let proxy = HttpProxy::start(None);
    let endpoint = receiver.http_endpoint();
    let sent = send_through(config(Protocol::HttpProtobuf, &endpoint), &[("HTTP_PROXY", &proxy.url(None))]).await;

    assert_delivered(&sent, &receiver);
    let log = proxy.access_log();
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        log.iter().any(|l| l.contains(&format!("POST {authority}/v1/metrics - 200"))),
        "the proxy forwarded the export request: {log:?}"
    );
}

#[tokio::test]
async fn an_https_collector_is_reached_through_a_connect_tunnel_of_https_proxy() {
    let pki = Pki::new("http-proxy-tunnel");
    let (cert, key) = pki.server_pem();
    let receiver = Receiver::builder().with_tls(ReceiverTls::new(cert, key)).start().await.unwrap();
    let proxy = HttpProxy::start(None);
    let endpoint = receiver.http_endpoint();
    assert!(endpoint.starts_with("https://localhost:"), "{endpoint}");
    let builder = config(Protocol::HttpProtobuf, &endpoint).with_ca_certificate(&pki.ca_file);
    let sent = send_through(builder, &[("HTTPS_PROXY", &proxy.url(None))]).await;

    assert_delivered(&sent, &receiver);
    let log = proxy.access_log();
    let authority = endpoint.trim_start_matches("https://").trim_end_matches('/');
    assert!(log.iter().any(|l| l.contains(&format!("CONNECT {authority}"))), "a CONNECT tunnel: {log:?}");
    assert!(!log.iter().any(|l| l.contains("POST")), "the proxy saw no request, only the tunnel: {log:?}");
}

#[tokio::test]
async fn credentials_in_the_proxy_url_answer_a_proxy_that_asks_for_them() {
    let pki = Pki::new("http-proxy-auth");
    let (cert, key) = pki.server_pem();
    let receiver = Receiver::builder().with_tls(ReceiverTls::new(cert, key)).start().await.unwrap();
    let proxy = HttpProxy::start(Some("otel:s3cret"));
    let endpoint = receiver.http_endpoint();
    let builder = || config(Protocol::HttpProtobuf, &endpoint).with_ca_certificate(&pki.ca_file);

    let refused = send_through(builder(), &[("HTTPS_PROXY", &proxy.url(None))]).await;
    let err = chain(refused.flushed.as_ref().expect_err("the proxy wants credentials"));
    assert!(err.contains("407") && err.contains("credentials"), "{err}");
    assert!(err.contains(&format!("{}/ (HTTPS_PROXY)", proxy.url(None))), "the proxy is named: {err}");
    assert_eq!((refused.stats.retries, receiver.counts().metrics.acked), (0, 0), "a 407 is not retried");

    let sent = send_through(builder(), &[("HTTPS_PROXY", &proxy.url(Some("otel:s3cret")))]).await;
    assert_delivered(&sent, &receiver);
}

#[tokio::test]
async fn a_forwarded_request_carries_the_proxy_credentials_and_one_without_fails_naming_the_proxy() {
    let receiver = Receiver::builder().start().await.unwrap();
    let proxy = HttpProxy::start(Some("otel:s3cret"));
    let endpoint = receiver.http_endpoint();

    let refused = send_through(config(Protocol::HttpProtobuf, &endpoint), &[("http_proxy", &proxy.url(None))]).await;
    let err = chain(refused.flushed.as_ref().expect_err("the proxy wants credentials"));
    assert!(err.contains(&format!("through the proxy {}/ (http_proxy)", proxy.url(None))), "{err}");
    assert!(err.contains("407") && err.contains("credentials"), "{err}");
    assert_eq!((refused.stats.retries, receiver.counts().metrics.acked), (0, 0), "a 407 is not retried");

    let sent =
        send_through(config(Protocol::HttpProtobuf, &endpoint), &[("http_proxy", &proxy.url(Some("otel:s3cret")))])
            .await;
    assert_delivered(&sent, &receiver);
}

#[tokio::test]
async fn no_proxy_sends_a_listed_collector_direct() {
    let receiver = Receiver::builder().start().await.unwrap();
    // Were the proxy used, nothing would arrive: it is down.
    let dead = DeadPort::new();
    let vars = [("HTTP_PROXY", dead.endpoint()), ("NO_PROXY", "example.com, localhost, 127.0.0.1".to_owned())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = send_through(config(Protocol::HttpProtobuf, &receiver.http_endpoint()), &vars).await;
    assert_delivered(&sent, &receiver);
}

#[tokio::test]
async fn a_proxy_that_is_down_fails_the_flush_naming_the_proxy_and_its_variable() {
    let receiver = Receiver::builder().start().await.unwrap();
    let dead = DeadPort::new();
    let sent =
        send_through(config(Protocol::HttpProtobuf, &receiver.http_endpoint()), &[("HTTP_PROXY", &dead.endpoint())])
            .await;
    let err = chain(sent.flushed.as_ref().expect_err("the proxy is down"));
    assert!(err.contains(&format!("through the proxy {}/ (HTTP_PROXY)", dead.endpoint())), "{err}");
    assert_eq!((sent.stats.acked, sent.stats.failed), (0, POINTS));
    assert_eq!(receiver.counts().metrics.requests, 0);
}

#[tokio::test]
async fn grpc_reads_no_proxy_variable_as_the_official_grpc_exporter() {
    let receiver = Receiver::builder().start().await.unwrap();
    let dead = DeadPort::new();
    let vars = [("HTTPS_PROXY", dead.endpoint()), ("HTTP_PROXY", dead.endpoint()), ("ALL_PROXY", dead.endpoint())];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = send_through(config(Protocol::Grpc, &receiver.endpoint()), &vars).await;
    assert_delivered(&sent, &receiver);
    // Nor is a proxy URL it would refuse checked.
    assert!(config(Protocol::Grpc, &receiver.endpoint())
        .build_with_env(env(&[("HTTPS_PROXY", "socks5://p:1080")]))
        .is_ok());
}

#[test]
fn an_unsupported_proxy_fails_the_build_naming_the_variable() {
    let err = config(Protocol::HttpProtobuf, "https://collector:4318")
        .build_with_env(env(&[("HTTPS_PROXY", "https://user:pw@proxy:443")]))
        .unwrap_err();
    assert_eq!(
        (err.origin(), err.kind()),
        (ValueOrigin::Env("HTTPS_PROXY"), ExporterConfigErrorKind::UnsupportedProxy)
    );
    let shown = err.to_string();
    assert!(
        shown.contains("HTTPS_PROXY") && shown.contains("https://***@proxy:443") && !shown.contains("pw"),
        "{shown}"
    );
}

/// loadgen builds its exporter from the process environment, as an
/// application does: `HTTP_PROXY` set in its environment sends its
/// requests through the proxy.
#[test]
fn loadgen_in_a_process_with_http_proxy_set_sends_through_the_proxy() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::builder().start()).unwrap();
    let proxy = HttpProxy::start(None);
    let out = Command::new(support::child::example("loadgen"))
        .args(["--endpoint", &receiver.http_endpoint(), "--protocol", "http/protobuf"])
        .args(["--points", "500", "--series", "50"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HTTP_PROXY", proxy.url(None))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "loadgen failed: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rt.block_on(async { receiver.counts() }).metrics.acked, 500, "{stdout}");
    let log = proxy.access_log();
    assert!(log.iter().any(|l| l.contains(" - POST ") && l.contains("/v1/metrics - 200")), "{log:?}");
}
