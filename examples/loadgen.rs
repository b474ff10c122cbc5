//! A load generator for the OTLP drains (gRPC or HTTP): pushes points (or spans, or log
//! records) through a `BackgroundSink` into a `MetricsDrain` (`TracesDrain`,
//! `LogsDrain`), flushes, and reports how many the collector acknowledged and
//! how fast.
//!
//! ```sh
//! cargo run --release --example loadgen -- --points 1000000
//! cargo run --release --example loadgen -- --endpoint http://127.0.0.1:4317 --signal logs --compression gzip
//! cargo run --release --example loadgen -- --protocol http/protobuf --endpoint http://127.0.0.1:4318
//! cargo run --example loadgen -- --spool /var/tmp/my-spool --flush-every 10000   # through a durable spool
//! cargo run --example loadgen -- --spool /var/tmp/my-spool --replay-only           # deliver what it holds
//! cargo run --example loadgen -- --help
//! ```
//!
//! Without `--endpoint` it starts the crate's in-process receiver on loopback
//! and sends there (to its gRPC or its OTLP/HTTP listener, as the protocol
//! says). Progress goes to standard error every 500 ms; at the end
//! one JSON line goes to standard output. The exit status is 0 when the final
//! flush succeeded, 1 when it failed (the JSON line is printed anyway), and 2
//! for a bad command line.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otlp_sink::receiver::Receiver;
use otlp_sink::{
    config::{Compression, SpoolConfig},
    deliver::{DeliveryStats, DeliveryStatsHandle, SpoolHandle, SpoolStats},
    otlp::{
        KeyValue, LogRecord, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope, Severity,
        SpanRecord, Temporality,
    },
    sink::{Overflow, SinkStats, TryPushError},
    BackgroundSink, ExporterConfig, LogsDrain, MetricsDrain, Protocol, Signal, SinkConfig, SinkDrain, TracesDrain,
};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
loadgen: push telemetry through otlp-sink's BackgroundSink and OTLP drain, then flush

Usage: loadgen [OPTIONS]

Options:
  --endpoint URL             collector to send to (http:// or https://); without it,
                             an in-process receiver on loopback is started
  --protocol P               grpc | http/protobuf                           [grpc]
                             (unset: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc)
  --signal SIGNAL            metrics | traces | logs                        [metrics]
  --points N                 total points (spans, log records) to push      [1000000]
  --series S                 series per metric: metrics = ceil(N / S)      [1000]
                             (metrics only)
  --batch B                  sink batch size                                [4096]
  --queue Q                  sink queue capacity                            [65536]
  --in-flight K              export requests awaiting an answer at once     [4]
  --max-request-bytes BYTES  largest encoded export request                 [4194304]
  --compression C            none | gzip | zstd                             [none]
  --producers P              producer threads                               [1]
  --block                    producers wait for queue space (push_blocking)
                             instead of dropping when it is full (try_push)
  --spool DIR                send through a durable spool in DIR (mode 0700)
  --flush-every N            a Persisted flush after every N points (one producer);
                             after each completed one, a JSON line on standard output:
                             {\"flush\": k, \"flushed_through\": <points accepted before it>, \"mode\": \"persisted\"}
  --deliver                  with --flush-every: each flush also waits for Delivered
                             (mode \"delivered\")
  --replay-only              push nothing: deliver what the spool holds, exit once it
                             is empty (or at --deadline); needs --spool
  --deadline SECS            how long the final Delivered wait may take with --spool [30]
  --help                     print this help

OTEL_EXPORTER_OTLP_* variables (headers, certificate, timeout, ...) apply to
what the flags leave unset.

Progress goes to standard error. At the end one JSON line goes to standard
output: signal, protocol, pushed, acked, dropped, rejected, failed, seconds,
points_per_sec (acked per second), requests, receiver_received (what the
in-process receiver counted; null with --endpoint), and with --spool: replayed,
resent, spooled (left on disk), spool_dropped (null without a spool). Exit status: 0 when the
final flush succeeded, 1 when it failed, 2 for a bad command line.
";

/// What a spooled drain's close gives delivery: the final flush has waited
/// `--deadline` already.
const CLOSE_BUDGET: Duration = Duration::from_secs(1);

/// The command line, parsed.
#[derive(Debug, Clone)]
struct Options {
    endpoint: Option<String>,
    /// `None`: as the environment says, else gRPC.
    protocol: Option<Protocol>,
    signal: Signal,
    points: u64,
    series: u64,
    batch: usize,
    queue: usize,
    in_flight: usize,
    max_request_bytes: usize,
    /// `None`: as the environment says, else the crate's default.
    compression: Option<Compression>,
    producers: u64,
    block: bool,
    spool: Option<PathBuf>,
    flush_every: Option<u64>,
    deliver: bool,
    replay_only: bool,
    deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            endpoint: None,
            protocol: None,
            signal: Signal::Metrics,
            points: 1_000_000,
            series: 1_000,
            batch: 4_096,
            queue: 65_536,
            in_flight: ExporterConfig::DEFAULT_MAX_IN_FLIGHT,
            max_request_bytes: ExporterConfig::DEFAULT_MAX_REQUEST_BYTES,
            compression: None,
            producers: 1,
            block: false,
            spool: None,
            flush_every: None,
            deliver: false,
            replay_only: false,
            deadline: Duration::from_secs(30),
        }
    }
}

/// A command line that cannot be used, naming the flag at fault.
#[derive(Debug, PartialEq)]
enum UsageError {
    UnknownFlag(String),
    MissingValue(&'static str),
    BadValue { flag: &'static str, value: String, expected: String },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFlag(flag) => write!(f, "unknown flag {flag}"),
            Self::MissingValue(flag) => write!(f, "{flag} needs a value"),
            Self::BadValue { flag, value, expected } => {
                write!(f, "{flag}: invalid value {value:?}: expected {expected}")
            }
        }
    }
}

/// What the command line asks for.
enum Command {
    Run(Options),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    const FLAGS: [&str; 17] = [
        "--endpoint",
        "--protocol",
        "--signal",
        "--points",
        "--series",
        "--batch",
        "--queue",
        "--in-flight",
        "--max-request-bytes",
        "--compression",
        "--producers",
        "--block",
        "--spool",
        "--flush-every",
        "--deliver",
        "--replay-only",
        "--deadline",
    ];
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        // `--flag value` or `--flag=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let Some(&flag) = FLAGS.iter().find(|f| **f == name) else {
            return Err(UsageError::UnknownFlag(arg));
        };
        if matches!(flag, "--block" | "--deliver" | "--replay-only") {
            if inline.is_some() {
                return Err(UsageError::BadValue { flag, value: arg, expected: "no value".into() });
            }
            match flag {
                "--block" => options.block = true,
                "--deliver" => options.deliver = true,
                _ => options.replay_only = true,
            }
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or(UsageError::MissingValue(flag))?,
        };
        let bad = |expected: &str| UsageError::BadValue { flag, value: value.clone(), expected: expected.to_owned() };
        let positive = || value.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| bad("a positive integer"));
        let positive_usize = || positive().and_then(|n| usize::try_from(n).map_err(|_| bad("a smaller integer")));
        match flag {
            "--endpoint" => {
                // Checked here, so that a bad URL is a usage error naming the flag.
                if let Err(e) = ExporterConfig::builder().with_endpoint(&value).build_without_env() {
                    return Err(bad(&format!("an http:// or https:// URL ({})", error_chain(&e))));
                }
                options.endpoint = Some(value.clone());
            }
            "--protocol" => {
                options.protocol = Some(match value.as_str() {
                    "grpc" => Protocol::Grpc,
                    "http/protobuf" => Protocol::HttpProtobuf,
                    _ => return Err(bad("grpc or http/protobuf")),
                })
            }
            "--signal" => {
                options.signal = match value.as_str() {
                    "metrics" => Signal::Metrics,
                    "traces" => Signal::Traces,
                    "logs" => Signal::Logs,
                    _ => return Err(bad("metrics, traces or logs")),
                }
            }
            "--points" => options.points = positive()?,
            "--series" => options.series = positive()?,
            "--batch" => options.batch = positive_usize()?,
            "--queue" => options.queue = positive_usize()?,
            "--in-flight" => options.in_flight = positive_usize()?,
            "--max-request-bytes" => options.max_request_bytes = positive_usize()?,
            "--producers" => options.producers = positive()?,
            "--spool" => options.spool = Some(PathBuf::from(&value)),
            "--flush-every" => options.flush_every = Some(positive()?),
            "--deadline" => options.deadline = Duration::from_secs(positive()?),
            "--compression" => {
                options.compression = Some(match value.as_str() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "zstd" => Compression::Zstd,
                    _ => return Err(bad("none, gzip or zstd")),
                })
            }
            _ => unreachable!("every flag in FLAGS is handled"),
        }
    }
    let conflict = |flag: &'static str, value: &str, expected: &str| {
        Err(UsageError::BadValue { flag, value: value.to_owned(), expected: expected.to_owned() })
    };
    if options.replay_only && options.spool.is_none() {
        return conflict("--replay-only", "", "--spool DIR beside it");
    }
    if options.flush_every.is_some() && options.producers != 1 {
        return conflict("--flush-every", &options.producers.to_string(), "--producers 1 (the points before a flush)");
    }
    if options.deliver && options.flush_every.is_none() {
        return conflict("--deliver", "", "--flush-every N beside it");
    }
    if options.replay_only {
        options.points = 0;
    }
    Ok(Command::Run(options))
}

/// Makes the points. Shared by the producer threads; each makes its own range.
struct Workload {
    resource: Arc<Resource>,
    scope: Arc<Scope>,
    series: u64,
}

impl Workload {
    fn new(series: u64) -> Self {
        Self {
            resource: Arc::new(Resource::new([
                KeyValue::new("service.name", "otlp-sink-loadgen"),
                KeyValue::new("host.name", "loadgen"),
            ])),
            scope: Arc::new(Scope::new("otlp-sink/loadgen").with_version(env!("CARGO_PKG_VERSION"))),
            series,
        }
    }

    /// Point `k` is series `k % S` of counter `k / S`, with 3 attributes. The
    /// descriptor of the current counter is made once and shared, as an SDK does.
    fn metrics(&self) -> impl FnMut(u64) -> MetricPoint + Send + 'static {
        let (resource, scope, series) = (self.resource.clone(), self.scope.clone(), self.series);
        let mut current: Option<(u64, Arc<MetricDescriptor>)> = None;
        move |k| {
            let metric = k / series;
            let descriptor = match &current {
                Some((m, descriptor)) if *m == metric => descriptor.clone(),
                _ => {
                    let kind = MetricKind::Sum { monotonic: true, temporality: Temporality::Cumulative };
                    let descriptor = Arc::new(MetricDescriptor::new(format!("loadgen.requests_{metric}"), kind));
                    current = Some((metric, descriptor.clone()));
                    descriptor
                }
            };
            let s = k % series;
            MetricPoint::new(resource.clone(), scope.clone(), descriptor, MetricValue::Int(k as i64))
                .with_attributes([
                    KeyValue::new("series", s as i64),
                    KeyValue::new("route", format!("/api/{}", s % 17)),
                    KeyValue::new("ok", s % 3 != 0),
                ])
                .with_time(1_000_000_000, 2_000_000_000)
        }
    }

    /// Span `k`: trace `k / 8`, 3 attributes.
    fn traces(&self) -> impl FnMut(u64) -> SpanRecord + Send + 'static {
        let (resource, scope) = (self.resource.clone(), self.scope.clone());
        move |k| {
            let mut trace_id = [0u8; 16];
            trace_id[8..].copy_from_slice(&(k / 8 + 1).to_be_bytes());
            SpanRecord::new(resource.clone(), scope.clone(), trace_id, (k + 1).to_be_bytes(), "GET /api/items")
                .with_time(1_000_000_000 + k, 1_000_050_000 + k)
                .with_attributes([
                    KeyValue::new("http.request.method", "GET"),
                    KeyValue::new("http.response.status_code", 200),
                    KeyValue::new("loadgen.index", k as i64),
                ])
        }
    }

    /// Log record `k`, with a body and 2 attributes.
    fn logs(&self) -> impl FnMut(u64) -> LogRecord + Send + 'static {
        let (resource, scope) = (self.resource.clone(), self.scope.clone());
        move |k| {
            LogRecord::new(resource.clone(), scope.clone(), 1_000_000_000 + k)
                .with_severity(Severity::Info, "INFO")
                .with_body(format!("request {k} served"))
                .with_attributes([KeyValue::new("loadgen.index", k as i64), KeyValue::new("route", "/api/items")])
        }
    }
}

/// What one run did.
struct Report {
    sink: SinkStats,
    export: DeliveryStats,
    spool: Option<SpoolStats>,
    seconds: f64,
    flush_error: Option<String>,
}

/// Runs the producers, the progress printer and the final flush for one
/// signal. `make_generator` gives each producer thread its own point maker.
async fn drive<T, D, G>(
    options: &Options,
    drain: D,
    export: DeliveryStatsHandle,
    spool: Option<SpoolHandle>,
    make_generator: impl Fn() -> G,
) -> Result<Report, Box<dyn std::error::Error>>
where
    T: Send + 'static,
    D: SinkDrain<T>,
    G: FnMut(u64) -> T + Send + 'static,
{
    let overflow = if options.block { Overflow::Block } else { Overflow::Drop };
    let config =
        SinkConfig::default().with_queue_capacity(options.queue).with_batch_size(options.batch).with_overflow(overflow);
    let (sink, handle) = BackgroundSink::spawn(drain, config, CancellationToken::new())?;
    let started = Instant::now();

    // Producers are plain threads, as an application's are: `try_push` never
    // awaits; with --block, `push_blocking` waits for space on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let per_producer = options.points.div_ceil(options.producers);
    let mut producers = Vec::new();
    for p in 0..options.producers {
        let range = (p * per_producer).min(options.points)..((p + 1) * per_producer).min(options.points);
        let (sink, runtime, block) = (sink.clone(), runtime.clone(), options.block);
        let (flush_every, deliver, spool) = (options.flush_every, options.deliver, spool.clone());
        let mut generate = make_generator();
        producers.push(std::thread::spawn(move || {
            let (mut accepted, mut flushes) = (0u64, 0u64);
            for (i, k) in range.enumerate() {
                let point = generate(k);
                if block {
                    if runtime.block_on(sink.push_blocking(point)).is_err() {
                        return;
                    }
                    accepted += 1;
                } else {
                    match sink.try_push(point) {
                        Ok(()) => accepted += 1,
                        Err(TryPushError::Closed(_)) => return,
                        // A full queue (`Full`) was counted as a drop by the sink.
                        Err(_) => {}
                    }
                }
                if flush_every.is_some_and(|n| (i as u64 + 1).is_multiple_of(n)) {
                    // A plain thread: blocking on the flush is what an application does.
                    let flushed = runtime.block_on(async {
                        sink.flush().await.map_err(|e| error_chain(&e))?;
                        match (&spool, deliver) {
                            (Some(spool), true) => {
                                spool.delivered(Duration::from_secs(30)).await.map_err(|e| error_chain(&e))
                            }
                            _ => Ok(()),
                        }
                    });
                    match flushed {
                        Ok(()) => {
                            flushes += 1;
                            let mode = if deliver { "delivered" } else { "persisted" };
                            println!(r#"{{"flush": {flushes}, "flushed_through": {accepted}, "mode": "{mode}"}}"#);
                        }
                        Err(e) => eprintln!("loadgen: flush after {accepted} points failed: {e}"),
                    }
                }
            }
        }));
    }

    let progress = {
        let (sink, export) = (sink.clone(), export.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.tick().await;
            let mut last = (Instant::now(), 0u64);
            loop {
                tick.tick().await;
                let now = Instant::now();
                let snapshot = export.snapshot();
                let rate = (snapshot.acked - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                print_progress(started, &sink.stats(), &snapshot, rate);
                last = (now, snapshot.acked);
            }
        })
    };

    tokio::task::spawn_blocking(move || {
        for producer in producers {
            producer.join().expect("a producer thread panicked");
        }
    })
    .await?;
    let mut flushed = sink.flush().await.map_err(|e| error_chain(&e));
    if let (Some(spool), Ok(())) = (&spool, &flushed) {
        // With a spool the flush is Persisted: wait for Delivered too.
        flushed = spool.delivered(options.deadline).await.map_err(|e| error_chain(&e));
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.abort();
    let sink_stats = sink.stats();
    let export_stats = export.snapshot();
    print_progress(started, &sink_stats, &export_stats, export_stats.acked as f64 / seconds);
    drop(sink);
    // Everything was flushed: shutdown only closes the drain.
    if let Err(e) = handle.shutdown_timeout(Duration::from_secs(10)).await {
        eprintln!("loadgen: shutdown: {}", error_chain(&e));
    }
    let spool = spool.map(|s| s.stats());
    Ok(Report { sink: sink_stats, export: export_stats, spool, seconds, flush_error: flushed.err() })
}

fn print_progress(started: Instant, sink: &SinkStats, export: &DeliveryStats, rate: f64) {
    eprintln!(
        "loadgen: {:6.1}s pushed {} acked {} dropped {} in flight {} requests {} rate {:.0}/s",
        started.elapsed().as_secs_f64(),
        sink.pushed,
        export.acked,
        sink.dropped,
        export.in_flight,
        export.requests,
        rate
    );
}

/// The error and its sources, `: `-separated, leaving out a source whose
/// text its parent already printed.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut parent = text.clone();
    let mut cause = err.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !parent.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        parent = message;
        cause = e.source();
    }
    text
}

async fn run(options: Options) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let receiver = match &options.endpoint {
        Some(_) => None,
        None => Some(Receiver::start().await?),
    };
    let mut builder = ExporterConfig::builder()
        .with_max_in_flight(options.in_flight)
        .with_max_request_bytes(options.max_request_bytes);
    if let Some(protocol) = options.protocol {
        builder = builder.with_protocol(protocol);
    }
    if let Some(compression) = options.compression {
        builder = builder.with_compression(compression);
    }
    // The flag, else the environment, else gRPC: as the exporter decides it,
    // so that the in-process receiver's listener of that protocol is used.
    let protocol = builder.clone().build_from_env(options.signal)?.protocol();
    let endpoint = match (&options.endpoint, &receiver) {
        (Some(endpoint), _) => endpoint.clone(),
        (None, Some(receiver)) if protocol == Protocol::HttpProtobuf => receiver.http_endpoint(),
        (None, Some(receiver)) => receiver.endpoint(),
        (None, None) => unreachable!("a receiver is started when no endpoint is given"),
    };
    let config = builder.with_endpoint(&endpoint).build_from_env(options.signal)?;
    config.validate()?;
    eprintln!(
        "loadgen: {} {:?} over {} to {endpoint}{}, compression {:?}, {} in flight, requests <= {} bytes, {}",
        options.points,
        options.signal,
        config.protocol().as_str(),
        if receiver.is_some() { " (in-process receiver)" } else { "" },
        config.compression(),
        config.max_in_flight(),
        config.max_request_bytes(),
        if options.block { "producers block when the queue is full" } else { "a full queue drops" },
    );

    let workload = Workload::new(options.series);
    let spool = options.spool.as_ref().map(SpoolConfig::new);
    let report = match options.signal {
        Signal::Metrics => {
            let drain = match &spool {
                Some(spool) => MetricsDrain::connect_spooled_with_close_budget(&config, spool, CLOSE_BUDGET).await?,
                None => MetricsDrain::connect(&config).await?,
            };
            let (stats, spool) = (drain.stats(), drain.spool());
            drive(&options, drain, stats, spool, || workload.metrics()).await?
        }
        Signal::Traces => {
            let drain = match &spool {
                Some(spool) => TracesDrain::connect_spooled_with_close_budget(&config, spool, CLOSE_BUDGET).await?,
                None => TracesDrain::connect(&config).await?,
            };
            let (stats, spool) = (drain.stats(), drain.spool());
            drive(&options, drain, stats, spool, || workload.traces()).await?
        }
        Signal::Logs => {
            let drain = match &spool {
                Some(spool) => LogsDrain::connect_spooled_with_close_budget(&config, spool, CLOSE_BUDGET).await?,
                None => LogsDrain::connect(&config).await?,
            };
            let (stats, spool) = (drain.stats(), drain.spool());
            drive(&options, drain, stats, spool, || workload.logs()).await?
        }
        other => return Err(format!("unsupported signal {other:?}").into()),
    };

    let received = receiver.as_ref().map(|r| r.counts().signal(options.signal).received);
    // By hand, to keep the fields in this order (serde_json's map sorts them).
    let line = format!(
        concat!(
            r#"{{"signal":"{}","protocol":"{}","pushed":{},"acked":{},"dropped":{},"rejected":{},"failed":{},"#,
            r#""seconds":{:.3},"points_per_sec":{:.0},"requests":{},"receiver_received":{},"#,
            r#""replayed":{},"resent":{},"spooled":{},"spool_dropped":{}}}"#
        ),
        signal_name(options.signal),
        config.protocol().as_str(),
        report.sink.pushed,
        report.export.acked,
        report.sink.dropped,
        report.export.rejected,
        report.export.failed,
        report.seconds,
        report.export.acked as f64 / report.seconds,
        report.export.requests,
        received.map_or_else(|| "null".to_owned(), |n| n.to_string()),
        spool_field(&report.spool, |s| s.replayed),
        spool_field(&report.spool, |s| s.resent),
        spool_field(&report.spool, |s| s.spooled),
        spool_field(&report.spool, SpoolStats::dropped),
    );
    println!("{line}");
    if let Some(receiver) = receiver {
        receiver.shutdown().await;
    }
    match report.flush_error {
        None => Ok(ExitCode::SUCCESS),
        Some(error) => {
            eprintln!("loadgen: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A spool counter for the JSON line: `null` without a spool.
fn spool_field(spool: &Option<SpoolStats>, field: impl Fn(&SpoolStats) -> u64) -> String {
    spool.as_ref().map_or_else(|| "null".to_owned(), |s| field(s).to_string())
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Metrics => "metrics",
        Signal::Traces => "traces",
        Signal::Logs => "logs",
        _ => "unknown",
    }
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {}", error_chain(&*e));
            ExitCode::FAILURE
        }
    }
}
