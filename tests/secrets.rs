//! Header values are usually credentials: they never show in `Debug`
//! output, in errors, or in the logs of a failing export.
//!
//! The exporter runs on a current-thread runtime on the test's thread, with
//! a `tracing` subscriber that records every event at TRACE level from every
//! crate (this one, tonic, hyper, h2) into a buffer. The receiver runs on a
//! runtime of its own, on other threads, outside that subscriber: what it
//! logs about requests it received is not the exporter's doing.

#![cfg(feature = "receiver")]

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_sink::receiver::{Receiver, Reply};
use otlp_sink::{
    config::{EnvSettings, RetryPolicy},
    deliver::GrpcCode,
    sink::FlushError,
    BackgroundSink, ExporterConfig, MetricsDrain, Signal, SinkConfig,
};
use support::errors::chain;
use support::points::Shared;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;

const TOKEN: &str = "s3cr3t-t0ken-7f3a9c";

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[test]
fn tokens_never_show_in_debug_errors_or_the_logs_of_failing_exports() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _capture = tracing::subscriber::set_default(subscriber);

    let collector = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let receiver = collector.block_on(Receiver::start()).expect("receiver");
    // A permanent refusal, a retried one, a partial success, then timeouts.
    receiver.script(
        Signal::Metrics,
        [
            Reply::Status { code: GrpcCode::Unauthenticated, message: "bad credentials".into() },
            Reply::status(GrpcCode::Unavailable),
            Reply::Ok,
            Reply::PartialSuccess { rejected: 2, message: "2 refused".into() },
            // Every attempt within the 700 ms budget times out (300 ms each).
            Reply::Hang,
            Reply::Hang,
            Reply::Hang,
            Reply::Hang,
        ],
    );

    let exporter = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut shown: Vec<String> = Vec::new();
    exporter.block_on(async {
        // Tokens from the environment (percent-encoded) and from code.
        let env_headers = format!("authorization=Bearer%20{TOKEN},x-api-key={TOKEN}-env");
        let env = EnvSettings::from_lookup(Signal::Metrics, |name| {
            (name == "OTEL_EXPORTER_OTLP_HEADERS").then(|| env_headers.clone())
        })
        .expect("valid headers");
        shown.push(format!("{env:?}"));
        let builder = ExporterConfig::builder()
            .with_endpoint(receiver.endpoint())
            .with_header("x-token", format!("{TOKEN}-code"))
            .with_timeout(Duration::from_millis(300))
            .with_retry_policy(
                RetryPolicy::new()
                    .with_initial_delay(Duration::from_millis(20))
                    .with_max_elapsed(Duration::from_millis(700)),
            );
        shown.push(format!("{builder:?}"));
        let config = builder.build_with_env(env).expect("valid config");
        shown.extend([format!("{config:?}"), format!("{config:#?}"), format!("{:?}", config.headers())]);
        let drain = MetricsDrain::connect(&config).await.expect("drain");
        shown.push(format!("{drain:?}"));
        let (sink, handle) =
            BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).expect("sink");
        shown.push(format!("{sink:?} {handle:?}"));

        let mut failures = 0;
        for round in 0..4 {
            for point in Shared::new().counters(1, 10) {
                sink.try_push(point).expect("queued");
            }
            match sink.flush().await {
                Ok(()) => {}
                Err(err) => {
                    failures += 1;
                    shown.extend([chain(&err), format!("{err:?}"), format!("{err:#?}")]);
                    if let FlushError::Drain { source, .. } = &err {
                        shown.push(format!("{:?}", std::error::Error::source(source)));
                    }
                }
            }
            if round == 0 {
                // The token was really sent: the test would see it if it leaked.
                assert_eq!(receiver.last_header("authorization").as_deref(), Some(&*format!("Bearer {TOKEN}")));
                assert_eq!(receiver.last_header("x-token").as_deref(), Some(&*format!("{TOKEN}-code")));
            }
        }
        assert_eq!(failures, 3, "refused, partially refused, timed out (the retried one succeeds)");
        shown.push(format!("{:?}", handle.shutdown_timeout(Duration::from_secs(5)).await));
    });
    drop(exporter);
    drop(collector);

    let logs = logs.text();
    // The subscriber saw the failures and the transport at work.
    assert!(logs.contains("export failed"), "the crate's own warnings were not captured:\n{logs}");
    assert!(logs.contains("h2::"), "the transport's TRACE events were not captured");
    for text in shown.iter().chain([&logs]) {
        assert!(!text.contains(TOKEN), "a token leaked into:\n{text}");
    }
    // Not even percent-encoded, as it came from the environment.
    assert!(!logs.contains("s3cr3t%2Dt0ken") && !logs.contains("Bearer%20"), "{logs}");
}
