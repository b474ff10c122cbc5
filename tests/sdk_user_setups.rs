//! Programs written the way users write them, each run as a child process
//! against a real collector (rotel): the exporter configured from the
//! `OTEL_EXPORTER_OTLP_*` environment, `tracing-opentelemetry` and the log
//! appender installed as a global subscriber with `.init()` (or scoped),
//! and `main` returning without a shutdown.
//!
//! - **No feedback.** With the layers installed globally at TRACE (no
//!   filter), at DEBUG (`RUST_LOG=debug`), or scoped, the application records
//!   10 spans and 10 events, flushes, and stays idle for 3 s. Before the
//!   guard in the span and log processors, h2's own spans and events on the
//!   exporter's threads were exported (thousands a second at TRACE), making
//!   more of them. The collector must hold exactly the application's records,
//!   and at TRACE the exporter must have seen, and suppressed, the
//!   transport's own telemetry: proof that this setup is the one that leaked.
//! - **The SDK's own batch processors**, under which the exporter cannot
//!   tell where a span was made: with the layers filtered by
//!   `otlp_sink::is_export_thread()`, as documented, the same holds.
//! - **Exit without shutdown.** With the layers installed by `.init()`, the
//!   global dispatcher keeps the tracer and its provider alive after `main`
//!   returns, so no provider is ever dropped. The exporter held in `main`
//!   delivers everything when it drops: 500 of 500 spans, exit status 0.
//!
//! - **OTLP/HTTP from the environment.** With
//!   `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` and
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` a base URL of an OTLP/HTTP receiver, the
//!   SDK adapters (metric reader, span and log processors) deliver every
//!   signal: rotel's HTTP receiver counts exactly what the exporter says was
//!   acknowledged, and the in-process receiver sees every request arrive on
//!   its HTTP listener.
//!
//! - **Many threads.** With the layers installed by `.init()`, spans and
//!   events recorded on 8 threads of the application's own and in 32 tasks
//!   of a multi-threaded tokio runtime go into the span and log queues'
//!   shards (one per producer thread, by default). When the providers'
//!   `force_flush` returns, from `main`, everything queued has been
//!   acknowledged, and rotel holds exactly that.
//!
//! The 3 s idle period is the scenario itself (the feedback loop needs no
//! activity to run), not a wait for something to happen.

#![cfg(feature = "sdk")]

mod support;

use std::process::ExitCode;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use otlp_sink::OtlpExporter;
use support::child;
use support::rotel::{Rotel, Signal};
use tracing_subscriber::filter::dynamic_filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

/// Spans, and events (one inside each span), the application records.
const RECORDS: u64 = 10;
/// Spans the exit scenario records.
const EXIT_SPANS: u64 = 500;
/// Threads of its own the many-threads application records on, and spans each records.
const THREADS: u64 = 8;
const PER_THREAD: u64 = 1_000;
/// Tokio tasks it records in, and spans each records (a multiple of 5).
const TASKS: u64 = 32;
const PER_TASK: u64 = 100;
/// How long the application stays idle after its first flush.
const IDLE: Duration = Duration::from_secs(3);
/// A child must exit by then.
const CHILD_BOUND: Duration = Duration::from_secs(60);
/// rotel prints its count line just after answering; give it time.
const WAIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    child::main(
        &[
            ("global_subscriber_at_trace_exports_only_the_application", || no_feedback("global-trace", &[])),
            ("global_subscriber_at_debug_from_rust_log_exports_only_the_application", || {
                no_feedback("global-env-filter", &[("RUST_LOG", "debug")])
            }),
            ("scoped_subscriber_at_trace_exports_only_the_application", || no_feedback("scoped-trace", &[])),
            ("sdk_batch_processors_with_the_documented_filter_export_only_the_application", || {
                no_feedback("global-trace-sdk-batch", &[])
            }),
            ("global_subscriber_and_main_returning_without_shutdown_delivers_every_span", exit_without_shutdown),
            ("env_http_protobuf_delivers_every_signal_to_rotels_http_receiver", env_http_protobuf_to_rotel),
            ("env_http_protobuf_is_honoured_every_request_arrives_over_http", env_http_protobuf_to_the_receiver),
            ("spans_and_events_from_many_threads_are_all_acknowledged_when_force_flush_returns", many_threads),
        ],
        app,
    )
}

/// The environment a user's deployment sets for the official exporter.
fn otel_env(rotel: &Rotel) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rotel.endpoint()),
        ("OTEL_SERVICE_NAME", "user-setup".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000".to_owned()),
    ]
}

fn spawn(scenario: &str, rotel: &Rotel, extra: &[(&str, &str)]) -> std::process::Output {
    let env = otel_env(rotel);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    let mut command = child::command(scenario, &env);
    // Whatever the test runner's environment says, the child decides its level.
    if !extra.iter().any(|(k, _)| *k == "RUST_LOG") {
        command.env_remove("RUST_LOG");
    }
    let output = child::run(command, CHILD_BOUND, scenario);
    assert!(output.status.success(), "{scenario}: the child exited with {}", output.status);
    output
}

/// The counters the child printed as its last line: `{"traces": {...}, "logs": {...}}`.
fn child_stats(output: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no stats line ({e}) in the child's output:\n{text}"))
}

fn no_feedback(scenario: &str, extra: &[(&str, &str)]) {
    let rotel = Rotel::start();
    let stats = child_stats(&spawn(scenario, &rotel, extra));
    for signal in ["traces", "logs"] {
        let s = &stats[signal];
        assert_eq!(s["pushed"], RECORDS, "{scenario}: only the application's {signal} were queued: {stats}");
        assert_eq!(s["acked"], RECORDS, "{scenario}: {stats}");
    }
    if scenario == "global-trace" {
        // The transport's own spans and events were produced on the
        // exporter's threads, reached the processors, and were dropped there.
        for signal in ["traces", "logs"] {
            assert!(stats[signal]["suppressed"].as_u64() > Some(0), "{scenario}: {signal} not exercised: {stats}");
        }
    }
    let counts = rotel
        .wait_until(WAIT, |c| c.items(Signal::Traces) >= RECORDS && c.items(Signal::Logs) >= RECORDS)
        .expect("the application's records reach the collector");
    assert_eq!(
        (counts.items(Signal::Traces), counts.items(Signal::Logs)),
        (RECORDS, RECORDS),
        "{scenario}: the collector holds exactly the application's records"
    );
    assert_eq!(counts.malformed, 0);
}

fn exit_without_shutdown() {
    let rotel = Rotel::start();
    let output = spawn("exit-without-shutdown", &rotel, &[]);
    assert!(output.stdout.is_empty(), "the child prints nothing");
    let delivered = rotel.wait_for(Signal::Traces, EXIT_SPANS, WAIT).expect("spans reach the collector");
    assert_eq!(delivered, EXIT_SPANS, "every span recorded before main returned");
}

/// The span and log queues are cut into shards by default, one per
/// producer thread (up to 8): a flush must cover every shard, whichever
/// threads pushed into them and whichever thread flushes. What was
/// acknowledged when the providers' `force_flush` returned, before any
/// shutdown, is everything the application queued, and rotel holds exactly
/// that. What a full shard dropped (on a busy machine the actor can fall
/// behind) is counted, and the flush's error names it.
fn many_threads() {
    let rotel = Rotel::start();
    let stats = child_stats(&spawn("many-threads", &rotel, &[]));
    let total = THREADS * PER_THREAD + TASKS * PER_TASK;
    // A shard that filled (its producers outran the actor, as on a busy
    // machine) drops and counts: everything recorded is either queued or
    // counted as dropped, everything queued was acknowledged, and the flush
    // said `Ok` exactly when nothing was dropped, or named the drops.
    let [traces, logs] = [("traces", "spans"), ("logs", "log records")].map(|(signal, items)| {
        let s = &stats[signal];
        // `pushed` counts what was offered: queued or dropped.
        let (pushed, dropped) = (s["pushed"].as_u64().unwrap(), s["dropped"].as_u64().unwrap());
        assert_eq!(pushed, total, "{signal}: everything recorded was offered: {stats}");
        let queued = pushed - dropped;
        // Not vacuous: the flush covered much more than any one shard holds.
        assert!(queued >= total / 4, "{signal}: a good part of it queued: {stats}");
        assert_eq!(s["acked"], queued, "{signal}: acknowledged when force_flush returned: {stats}");
        match (dropped, s["flush_error"].as_str()) {
            (0, None) => {}
            (0, Some(error)) => panic!("{signal}: nothing was lost, yet the flush failed: {error}"),
            (_, None) => panic!("{signal}: {dropped} dropped, yet the flush said Ok: {stats}"),
            (_, Some(error)) => {
                let named = format!("{dropped} {items} not delivered: {dropped} dropped because the queue was full");
                assert!(error.contains(&named), "{signal}: the flush names the drops ({named}): {error}");
            }
        }
        queued
    });
    let counts = rotel
        .wait_until(WAIT, |c| c.items(Signal::Traces) >= traces && c.items(Signal::Logs) >= logs)
        .expect("every span and record reaches the collector");
    assert_eq!((counts.items(Signal::Traces), counts.items(Signal::Logs)), (traces, logs), "{counts}");
    assert_eq!(counts.malformed, 0);
}

/// The environment of a deployment on OTLP/HTTP, aimed at `base`.
fn http_env(base: &str) -> [(&'static str, String); 2] {
    [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()), ("OTEL_EXPORTER_OTLP_ENDPOINT", base.to_owned())]
}

/// The acknowledged count per signal the child printed, checked against
/// what it queued: all of it, and something of each signal.
fn acked_per_signal(stats: &serde_json::Value) -> [u64; 3] {
    ["metrics", "traces", "logs"].map(|signal| {
        let s = &stats[signal];
        let (pushed, acked) = (s["pushed"].as_u64().unwrap(), s["acked"].as_u64().unwrap());
        assert!(acked > 0 && acked == pushed, "{signal}: {stats}");
        acked
    })
}

fn env_http_protobuf_to_rotel() {
    let rotel = Rotel::start();
    let env = http_env(&rotel.http_endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let [metrics, traces, logs] = acked_per_signal(&child_stats(&spawn("sdk-adapters", &rotel, &env)));
    let counts = rotel
        .wait_until(WAIT, |c| {
            c.items(Signal::Metrics) >= metrics && c.items(Signal::Traces) >= traces && c.items(Signal::Logs) >= logs
        })
        .expect("every signal reaches rotel's HTTP receiver");
    let received = [Signal::Metrics, Signal::Traces, Signal::Logs].map(|s| counts.items(s));
    assert_eq!(received, [metrics, traces, logs], "rotel counted exactly what was acknowledged: {counts}");
    assert_eq!(counts.malformed, 0);
}

fn env_http_protobuf_to_the_receiver() {
    // rotel is only there for `spawn`'s other variables; the endpoint is the receiver's.
    let rotel = Rotel::start();
    let receiver = support::background_receiver::BackgroundReceiver::start();
    let env = http_env(&receiver.http_endpoint());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let [metrics, traces, logs] = acked_per_signal(&child_stats(&spawn("sdk-adapters", &rotel, &env)));
    let c = receiver.counts();
    assert_eq!((c.metrics.acked, c.traces.acked, c.logs.acked), (metrics, traces, logs), "{c:?}");
    for (signal, s) in [("metrics", c.metrics), ("traces", c.traces), ("logs", c.logs)] {
        assert!(s.requests > 0 && s.http_requests == s.requests, "{signal}: every request over HTTP: {s:?}");
    }
    assert_eq!(rotel.requests(), 0, "nothing went to rotel's gRPC port");
}

/// The child: a user's `main`.
fn app(scenario: &str) {
    let exporter = OtlpExporter::builder().build().expect("the exporter builds from the environment");
    if scenario == "global-trace-sdk-batch" {
        return sdk_batch_application(&exporter);
    }
    if scenario == "sdk-adapters" {
        return sdk_adapters_application(exporter);
    }
    let tracers = SdkTracerProvider::builder().with_span_processor(exporter.span_processor()).build();
    let loggers = SdkLoggerProvider::builder().with_log_processor(exporter.log_processor()).build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracers.tracer("user-app")))
        .with(OpenTelemetryTracingBridge::new(&loggers));
    match scenario {
        "global-trace" => subscriber.init(),
        "global-env-filter" => subscriber.with(EnvFilter::from_default_env()).init(),
        "scoped-trace" => {
            let _scope = tracing::subscriber::set_default(subscriber);
            return idle_application(&exporter, &tracers, &loggers);
        }
        "many-threads" => {
            subscriber.init();
            return many_threads_application(&exporter, &tracers, &loggers);
        }
        "exit-without-shutdown" => {
            subscriber.init();
            for i in 0..EXIT_SPANS {
                let _span = tracing::info_span!("request", i).entered();
            }
            // `main` returns: the global dispatcher keeps `tracers` alive;
            // `exporter`, declared first, drops last and delivers.
            return;
        }
        other => panic!("unknown scenario {other}"),
    }
    idle_application(&exporter, &tracers, &loggers);
}

/// Records spans, each with an event inside, on [`THREADS`] threads of its
/// own and in [`TASKS`] tasks of a multi-threaded tokio runtime (each span
/// ends on whichever worker runs its task), flushes both providers from
/// `main`, and prints what had been acknowledged when the flushes returned,
/// before any shutdown.
fn many_threads_application(exporter: &OtlpExporter, tracers: &SdkTracerProvider, loggers: &SdkLoggerProvider) {
    let record = |who: u64, n: u64| {
        for i in 0..n {
            let _span = tracing::info_span!("request", who, i).entered();
            tracing::info!(who, i, "handled");
        }
    };
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || record(t, PER_THREAD));
        }
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().expect("a runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                tokio::spawn(async move {
                    for _ in 0..PER_TASK / 5 {
                        record(THREADS + t, 5);
                        // The next five may run on another worker.
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("the task ran");
        }
    });
    // A flush reports the drops since the previous one: the parent checks
    // its verdict against the counters.
    let verdict = |flushed: opentelemetry_sdk::error::OTelSdkResult| flushed.err().map(|e| e.to_string());
    let flushed = [verdict(tracers.force_flush()), verdict(loggers.force_flush())];
    let stats = exporter.stats();
    let json = |s: otlp_sink::sdk::PipelineStats, flushed: &Option<String>| serde_json::json!({ "pushed": s.sink.pushed, "dropped": s.sink.dropped, "acked": s.export.acked, "flush_error": flushed });
    let line = serde_json::json!({ "traces": json(stats.traces, &flushed[0]), "logs": json(stats.logs, &flushed[1]) });
    drop(runtime);
    exporter.shutdown().expect("clean shutdown");
    println!("{line}");
}

/// Records, flushes, stays idle, flushes again, shuts down, and prints the
/// counters as one JSON line.
fn idle_application(exporter: &OtlpExporter, tracers: &SdkTracerProvider, loggers: &SdkLoggerProvider) {
    for i in 0..RECORDS {
        let _span = tracing::info_span!("work", i).entered();
        tracing::info!(i, "did some work");
    }
    tracers.force_flush().expect("spans flushed");
    loggers.force_flush().expect("log records flushed");
    std::thread::sleep(IDLE);
    tracers.force_flush().expect("nothing new, or only the application's");
    loggers.force_flush().expect("nothing new, or only the application's");
    // Under the SDK's own batch processors the providers' flush is no barrier.
    exporter.force_flush().expect("everything acknowledged");
    exporter.shutdown().expect("clean shutdown");
    let stats = exporter.stats();
    let json = |s: otlp_sink::sdk::PipelineStats| serde_json::json!({ "pushed": s.sink.pushed, "acked": s.export.acked, "suppressed": s.suppressed });
    println!("{}", serde_json::json!({ "traces": json(stats.traces), "logs": json(stats.logs) }));
}

/// The exporters under the SDK's own batch processors, which cannot tell
/// where a span or record was made: the `tracing` layers are filtered with
/// `is_export_thread()`, as the crate's docs say to.
fn sdk_batch_application(exporter: &OtlpExporter) {
    let tracers = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter.span_exporter()).build())
        .build();
    let loggers = SdkLoggerProvider::builder()
        .with_log_processor(BatchLogProcessor::builder(exporter.log_exporter()).build())
        .build();
    let spans = tracing_opentelemetry::layer().with_tracer(tracers.tracer("user-app"));
    tracing_subscriber::registry()
        .with(spans.with_filter(dynamic_filter_fn(|_, _| !otlp_sink::is_export_thread())))
        .with(
            OpenTelemetryTracingBridge::new(&loggers)
                .with_filter(dynamic_filter_fn(|_, _| !otlp_sink::is_export_thread())),
        )
        .init();
    idle_application(exporter, &tracers, &loggers);
}

/// The SDK's three providers on this crate's reader and processors, as the
/// environment configured the exporter: records each signal, flushes, shuts
/// down, and prints the counters as one JSON line.
fn sdk_adapters_application(exporter: OtlpExporter) {
    let providers = support::sdk::providers(&exporter);
    support::sdk::record(&providers);
    support::sdk::flush(&providers).expect("every signal flushed");
    support::sdk::shutdown(&providers).expect("every provider shut down");
    exporter.shutdown().expect("clean shutdown");
    let stats = exporter.stats();
    let json =
        |s: otlp_sink::sdk::PipelineStats| serde_json::json!({ "pushed": s.sink.pushed, "acked": s.export.acked });
    println!(
        "{}",
        serde_json::json!({ "metrics": json(stats.metrics), "traces": json(stats.traces), "logs": json(stats.logs) })
    );
}
