//! Quickstart: a `BackgroundSink` in front of a drain, end to end.
//!
//! Four producer tasks push 25 000 messages each without awaiting; the actor
//! batches them into the drain; `flush` returns once everything before it is
//! durable; shutdown drains the rest. The counters show where every message went.
//!
//! Run: `cargo run --example quickstart`

use std::time::Duration;

use otlp_sink::{BackgroundSink, DrainError, SinkConfig, SinkDrain};
use tokio_util::sync::CancellationToken;

/// A drain that stands in for a network exporter: it "sends" each batch and
/// counts what it has acknowledged.
#[derive(Default)]
struct CountingDrain {
    batches: u64,
    items: u64,
}

impl SinkDrain<u64> for CountingDrain {
    async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
        tokio::time::sleep(Duration::from_micros(50)).await; // a network round trip
        self.batches += 1;
        self.items += batch.len() as u64;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        println!("drain closed: {} messages in {} batches", self.items, self.batches);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = CancellationToken::new();
    let config = SinkConfig::default().with_queue_capacity(200_000).with_batch_size(512);
    let (sink, handle) = BackgroundSink::spawn(CountingDrain::default(), config, shutdown)?;

    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut dropped = 0u64;
                for i in 0..25_000 {
                    if sink.try_push(p * 25_000 + i).is_err() {
                        dropped += 1;
                    }
                }
                dropped
            })
        })
        .collect();
    for producer in producers {
        producer.await?;
    }

    sink.flush().await?;
    let stats = sink.stats();
    println!(
        "after flush: pushed {} written {} dropped {} pending {} (flush Ok: all written and durable)",
        stats.pushed, stats.written, stats.dropped, stats.pending
    );
    handle.shutdown().await?;
    Ok(())
}
