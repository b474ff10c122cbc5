//! Quickstart: OpenTelemetry metrics, spans and logs through this crate, end
//! to end, in one command.
//!
//! ```sh
//! cargo run --example quickstart                                                    # in-process receiver, OTLP/gRPC
//! OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf cargo run --example quickstart          # in-process receiver, OTLP/HTTP
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example quickstart  # your collector (gRPC)
//! OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
//!   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --example quickstart  # your collector (HTTP)
//! ```
//!
//! Without `OTEL_EXPORTER_OTLP_ENDPOINT` it starts the crate's OTLP receiver
//! on loopback and sends there: to its gRPC listener, or to its OTLP/HTTP
//! listener when `OTEL_EXPORTER_OTLP_PROTOCOL` is `http/protobuf` (this
//! crate's default protocol is `grpc`; the OpenTelemetry specification's is
//! `http/protobuf`). The per-signal `OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL`
//! variables apply too, but the quickstart picks the receiver's listener by
//! the generic one only. It records counters, a histogram, spans and
//! log records through the standard OpenTelemetry API, calls `force_flush`
//! on each provider and prints what was acknowledged per signal. When
//! `force_flush` returns `Ok`, the collector has acknowledged everything
//! recorded before it: the counts are final, nothing is still in flight.
//!
//! Note that `main` is a plain function: the exporter needs no tokio runtime
//! from the application (it runs its own).

use std::time::Instant;

use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use otlp_sink::receiver::Receiver;
use otlp_sink::{OtlpExporter, Signal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Where to send: your collector, or a receiver in this process.
    let collector = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|v| !v.trim().is_empty());
    let mut local = None;
    let exporter = match &collector {
        Some(endpoint) => {
            println!("sending to the collector at {endpoint} (OTEL_EXPORTER_OTLP_ENDPOINT)");
            // Every OTEL_EXPORTER_OTLP_* variable applies.
            OtlpExporter::builder().build()?
        }
        None => {
            // The receiver is a tokio server; it gets a runtime of its own.
            let runtime = tokio::runtime::Runtime::new()?;
            let receiver = runtime.block_on(Receiver::start())?;
            // The exporter refuses a protocol it does not know; the
            // receiver's listener follows the one it will use.
            let http = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p.trim() == "http/protobuf");
            let (protocol, endpoint) =
                if http { ("OTLP/HTTP", receiver.http_endpoint()) } else { ("OTLP/gRPC", receiver.endpoint()) };
            println!("no OTEL_EXPORTER_OTLP_ENDPOINT: sending {protocol} to the in-process receiver at {endpoint}");
            local = Some((runtime, receiver));
            // Code sets the endpoint; every other OTEL_EXPORTER_OTLP_* variable still applies.
            OtlpExporter::builder().with_endpoint(endpoint).build()?
        }
    };

    // 2. The standard OpenTelemetry SDK providers, on this crate's reader and processors.
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "otlp-sink-quickstart".into());
    let resource = Resource::builder().with_service_name(service).build();
    let meters =
        SdkMeterProvider::builder().with_resource(resource.clone()).with_reader(exporter.metric_reader()).build();
    let tracers = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(exporter.span_processor())
        .build();
    let loggers =
        SdkLoggerProvider::builder().with_resource(resource).with_log_processor(exporter.log_processor()).build();

    // 3. Record through the OpenTelemetry API.
    let meter = meters.meter("quickstart");
    let requests = meter.u64_counter("http.server.requests").with_unit("{request}").build();
    let latency = meter.f64_histogram("http.server.duration").with_unit("ms").build();
    let tracer = tracers.tracer("quickstart");
    let logger = loggers.logger("quickstart");
    for (route, ms) in [("/", 3.2), ("/cart", 12.5), ("/checkout", 48.0), ("/cart", 9.1)] {
        let attributes = [KeyValue::new("http.route", route)];
        requests.add(1, &attributes);
        latency.record(ms, &attributes);
        let mut span = tracer.start(format!("GET {route}"));
        span.set_attribute(KeyValue::new("http.route", route));
        let mut record = logger.create_log_record();
        record.set_severity_number(Severity::Info);
        record.set_severity_text("INFO");
        record.set_body(format!("served {route} in {ms} ms").into());
        logger.emit(record);
        span.end();
    }
    println!("recorded: 3 counter series and 3 histogram series, 4 spans, 4 log records");

    // 4. The barrier: Ok means the collector acknowledged all of it.
    let mut failed_flushes = 0;
    for (signal, flush) in [
        ("metrics", Box::new(|| meters.force_flush()) as Box<dyn Fn() -> _>),
        ("traces", Box::new(|| tracers.force_flush())),
        ("logs", Box::new(|| loggers.force_flush())),
    ] {
        let started = Instant::now();
        match flush() {
            Ok(()) => println!("{signal:>7}: force_flush Ok in {:.1?}", started.elapsed()),
            Err(err) => {
                failed_flushes += 1;
                println!("{signal:>7}: force_flush FAILED after {:.1?}: {err}", started.elapsed());
            }
        }
    }

    // 5. What was acknowledged, per signal.
    let units = [(Signal::Metrics, "metric data points"), (Signal::Traces, "spans"), (Signal::Logs, "log records")];
    match &local {
        Some((_, receiver)) => {
            let counts = receiver.counts();
            println!("the receiver acknowledged:");
            for (signal, unit) in units {
                let c = counts.signal(signal);
                println!(
                    "  {:>7}: {} {unit} in {} request(s), {} of them over HTTP",
                    format!("{signal:?}").to_lowercase(),
                    c.acked,
                    c.requests,
                    c.http_requests
                );
            }
        }
        None => {
            let stats = exporter.stats();
            println!("the collector acknowledged (the exporter's counters):");
            for (signal, unit) in units {
                let s = stats.signal(signal);
                println!(
                    "  {:>7}: {} {unit} ({} sent, {} rejected, {} failed, {} dropped)",
                    format!("{signal:?}").to_lowercase(),
                    s.export.acked,
                    s.export.items_sent,
                    s.export.rejected,
                    s.export.failed,
                    s.sink.dropped
                );
            }
        }
    }

    // 6. Shut down: delivers anything recorded since, within 5 s each.
    meters.shutdown()?;
    tracers.shutdown()?;
    loggers.shutdown()?;
    if let Some((runtime, receiver)) = local {
        runtime.block_on(receiver.shutdown());
    }
    if failed_flushes > 0 {
        return Err(format!("{failed_flushes} force_flush call(s) failed: not everything was acknowledged").into());
    }
    Ok(())
}
