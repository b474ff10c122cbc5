//! What ending a span costs the thread that ends it: this crate's
//! `OtlpSpanProcessor::on_end` (one `try_push` of the SDK's span; the OTLP
//! conversion happens later, on the export runtime) against the SDK's
//! `BatchSpanProcessor::on_end` (a send into its own channel), on the same
//! spans.
//!
//! Each sample ends its spans in a tight loop (timed), then flushes (not
//! timed), so that neither processor carries a backlog from one sample into
//! the next: the OTLP side really encodes and sends to a receiver on
//! loopback, far slower than the batch processor's discarding exporter.
//! Both queues are sized so that no timed span is dropped, which would make
//! it look cheaper; the run fails if one was.
//!
//! A third figure is the floor any processor that takes the span by value
//! pays: moving each span into a slot of a preallocated, already touched
//! array, with no synchronisation at all.
//!
//! Two more: what the no-feedback guard costs (`is_export_thread()`, which
//! both `on_end` and `emit` call first, measured alone), and this crate's
//! `OtlpLogProcessor::emit` (the guard, a copy of the lent record, a
//! `try_push`), so the guard's share of each is on one screen.
//!
//! Run: `cargo bench --bench span_processor` (or `-- no_feedback_guard`,
//! `-- log_emit` for those alone).

use std::future::Future;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanExporter, SpanProcessor};
use otlp_sink::receiver::Receiver;
use otlp_sink::{sink::QueueMemory, OtlpExporter, Signal, SinkConfig};

#[path = "support/spans.rs"]
mod spans;
use spans::span;

/// Takes the batch processor's spans and does nothing with them.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        drop(batch);
        std::future::ready(Ok(()))
    }
}

/// Ends `iters` spans made beforehand; only the `on_end` calls are timed.
fn timed_on_end(processor: &impl SpanProcessor, iters: u64) -> Duration {
    let spans: Vec<SpanData> = (0..iters).map(|_| span("bench")).collect();
    let started = Instant::now();
    for s in spans {
        processor.on_end(s);
    }
    let took = started.elapsed();
    processor.force_flush().expect("flushed between samples");
    took
}

/// Moves `iters` spans made beforehand into preallocated slots whose pages
/// are already resident (as a queue's are); only the moves are timed.
fn timed_move(iters: u64) -> Duration {
    let spans: Vec<SpanData> = (0..iters).map(|_| span("bench")).collect();
    let mut slots: Vec<MaybeUninit<SpanData>> = Vec::with_capacity(spans.len());
    // SAFETY: `MaybeUninit` needs no initialization; the bytes are then
    // written once so that every page is resident before the timing.
    unsafe {
        slots.set_len(spans.len());
        std::ptr::write_bytes(slots.as_mut_ptr(), 0, slots.len());
    }
    let started = Instant::now();
    for (slot, s) in slots.iter_mut().zip(spans) {
        slot.write(black_box(s));
    }
    let took = started.elapsed();
    for slot in &mut slots {
        // SAFETY: every slot was written in the loop above, and is dropped once.
        unsafe { slot.assume_init_drop() };
    }
    took
}

fn on_end(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(Receiver::start()).unwrap();
    let exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_signal_sink_config(
            Signal::Traces,
            // Resident: with the lazy default, a queue this large is still
            // in its first lap during the whole run, and every 11th span
            // would take a page fault (`benches/try_push.rs`, `first_lap`).
            SinkConfig::default()
                .with_queue_capacity(1 << 22)
                .with_batch_size(2048)
                .with_queue_memory(QueueMemory::Resident),
        )
        .build_without_env()
        .unwrap();
    let ours = exporter.span_processor();
    let batch = BatchSpanProcessor::builder(Discard)
        .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(1 << 22).build())
        .build();

    let mut group = c.benchmark_group("span_on_end");
    group.throughput(Throughput::Elements(1));
    group.bench_function("otlp_sink_span_processor", |b| {
        b.iter_custom(|iters| timed_on_end(&ours, iters));
    });
    group.bench_function("sdk_batch_span_processor", |b| {
        b.iter_custom(|iters| timed_on_end(&batch, iters));
    });
    group.bench_function("floor_move_into_preallocated_slots", |b| {
        b.iter_custom(timed_move);
    });
    group.finish();

    ours.force_flush().expect("every span delivered");
    let dropped = exporter.stats().traces.sink.dropped;
    assert_eq!(dropped, 0, "spans were dropped: the measurement is void");
    batch.shutdown().expect("the batch processor drained");
    exporter.shutdown().expect("clean shutdown");
}

/// A log record as the appender makes it: severity, body, two attributes.
fn log_record() -> SdkLogRecord {
    // Records can only be made by a logger; this one is never emitted to.
    let provider = SdkLoggerProvider::builder().build();
    let mut record = provider.logger("bench").create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_body(AnyValue::from("request handled"));
    record.add_attribute("http.route", "/orders/{id}");
    record.add_attribute("status", 200);
    record
}

/// Emits `iters` copies of a record; only the `emit` calls are timed.
fn timed_emit(processor: &impl LogProcessor, iters: u64) -> Duration {
    let scope = InstrumentationScope::builder("bench").build();
    let mut records: Vec<SdkLogRecord> = (0..iters).map(|_| log_record()).collect();
    let started = Instant::now();
    for record in &mut records {
        processor.emit(record, &scope);
    }
    let took = started.elapsed();
    processor.force_flush().expect("flushed between samples");
    took
}

fn guard_and_emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("no_feedback_guard");
    group.throughput(Throughput::Elements(1));
    group.bench_function("is_export_thread", |b| b.iter(|| black_box(otlp_sink::is_export_thread())));
    group.finish();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = runtime.block_on(Receiver::start()).unwrap();
    let exporter = OtlpExporter::builder()
        .with_endpoint(receiver.endpoint())
        .with_signal_sink_config(Signal::Logs, SinkConfig::default().with_queue_capacity(1 << 21).with_batch_size(2048))
        .build_without_env()
        .unwrap();
    let ours = exporter.log_processor();
    let mut group = c.benchmark_group("log_emit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("otlp_sink_log_processor", |b| b.iter_custom(|iters| timed_emit(&ours, iters)));
    group.finish();
    let dropped = exporter.stats().logs.sink.dropped;
    assert_eq!(dropped, 0, "records were dropped: the measurement is void");
    exporter.shutdown().expect("clean shutdown");
}

criterion_group!(benches, on_end, guard_and_emit);
criterion_main!(benches);
