//! The metric reader's collections: collect (on a blocking thread of the
//! export runtime, since collection runs the application's callbacks),
//! convert, and queue, one collection at a time; the interval loop; and the
//! final collection of a shutdown.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader as _;
use opentelemetry_sdk::metrics::ManualReader;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::convert;
use super::error::SdkError;
use super::pipe::ShutdownJob;
use crate::otlp::EncodedMetricPoint;
use crate::sink::{Refused, TryPushError};
use crate::BackgroundSink;

/// What a collection needs; shared with the interval task. It holds no
/// `Arc<ExporterState>`: nothing running on the export runtime may hold the last
/// handle on the exporter, whose drop waits on that runtime.
pub(crate) struct Collector {
    pub(crate) manual: ManualReader,
    pub(crate) sink: BackgroundSink<EncodedMetricPoint>,
    /// The metrics pipe's count of items refused after shutdown.
    pub(crate) refused: Arc<AtomicU64>,
    /// Held from the start of a collection until its last point is queued:
    /// one collection at a time. Also keeps the SDK's buffer between
    /// collections.
    pub(crate) turn: Arc<tokio::sync::Mutex<ResourceMetrics>>,
}

/// What one collection did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Collected {
    pub(crate) queued: u64,
    /// Refused because the queue stayed full past the deadline (counted by the sink).
    pub(crate) dropped: u64,
    /// Refused because the sink is shut down.
    pub(crate) refused: u64,
}

/// How many converted points the collection queues at a time: whole
/// metrics, at least this many points. Small enough that the first request
/// is on its way while the rest of a large collection is converted, large
/// enough that entering the runtime to queue them costs nothing per point.
const QUEUE_CHUNK: usize = 1024;

impl Collector {
    /// Collects, converts and queues, waiting for queue space until
    /// `deadline`. Runs on the export runtime; the work itself on one of its
    /// blocking threads.
    pub(crate) async fn collect_and_push(self: Arc<Self>, deadline: Instant) -> Result<Collected, SdkError> {
        let turn = Arc::clone(&self.turn).lock_owned().await;
        let runtime = tokio::runtime::Handle::current();
        // Collection calls the application's callbacks and can take a while:
        // not on a worker, where it would hold up the actors.
        let outcome = tokio::task::spawn_blocking(move || {
            let mut turn = turn;
            self.collect_and_push_blocking(&mut turn, &runtime, deadline)
        })
        .await
        .map_err(|e| SdkError::Collect(OTelSdkError::InternalFailure(format!("metric collection panicked: {e}"))))?;
        outcome
    }

    /// The SDK's collection into `buffer`, then its points converted and
    /// queued a chunk at a time, each chunk as soon as it is converted: the
    /// sink's actor batches and sends the first points while the rest are
    /// still being converted. On a blocking thread of `runtime`.
    fn collect_and_push_blocking(
        &self,
        buffer: &mut ResourceMetrics,
        runtime: &tokio::runtime::Handle,
        deadline: Instant,
    ) -> Result<Collected, SdkError> {
        let started = std::time::Instant::now();
        self.manual.collect(buffer).map_err(SdkError::Collect)?;
        let collected = started.elapsed();
        let total = convert::collection_points(buffer) as u64;
        let mut outcome = Collected::default();
        let _ =
            convert::encoded_in_chunks(buffer, QUEUE_CHUNK, |chunk| self.queue(chunk, runtime, deadline, &mut outcome));
        // Points never queued after the sink closed, converted or not.
        outcome.refused = total - outcome.queued - outcome.dropped;
        self.refused.fetch_add(outcome.refused, Ordering::Relaxed);
        tracing::debug!(
            points = total,
            collected_us = collected.as_micros() as u64,
            queued_us = started.elapsed().as_micros() as u64,
            "metric collection queued"
        );
        Ok(outcome)
    }

    /// Queues one chunk of points, waiting for space until `deadline` (on
    /// `runtime`, only for a point that found the queue full); stops at the
    /// first refused for shutdown.
    fn queue(
        &self,
        chunk: &mut Vec<EncodedMetricPoint>,
        runtime: &tokio::runtime::Handle,
        deadline: Instant,
        outcome: &mut Collected,
    ) -> ControlFlow<()> {
        for point in chunk.drain(..) {
            let full = match self.sink.try_queue(point) {
                Ok(()) => {
                    outcome.queued += 1;
                    continue;
                }
                Err(Refused::Closed(_)) => return ControlFlow::Break(()),
                Err(Refused::Full(point)) => point,
            };
            match runtime.block_on(self.sink.push_until(full, deadline)) {
                Ok(()) => outcome.queued += 1,
                Err(TryPushError::Closed(_)) => return ControlFlow::Break(()),
                Err(_) => outcome.dropped += 1,
            }
        }
        ControlFlow::Continue(())
    }
}

/// The interval loop: collect every `interval` until cancelled. A collection
/// may wait for queue space until the next one is due.
pub(crate) async fn collect_periodically(collector: Arc<Collector>, interval: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            // Stop first: a reader being shut down makes its own final collection.
            biased;
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match Arc::clone(&collector).collect_and_push(Instant::now() + interval).await {
            // The sink is shut down: nothing more to collect for.
            Ok(Collected { refused, .. }) if refused > 0 => return,
            Ok(Collected { dropped, .. }) if dropped > 0 => {
                tracing::warn!(dropped, "metric points dropped: the queue stayed full for a whole interval");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %super::error::chain(&err), "periodic metric collection failed"),
        }
    }
}

/// The metrics pipe's shutdown within `budget`: a final collection by each
/// of `collectors` (given half of it), then the sink's shutdown, delivering
/// everything. A collection still running at its deadline (an observable
/// callback that hangs) is left behind and reported; its points are refused.
pub(crate) async fn final_collection_then(
    collectors: Vec<Arc<Collector>>,
    budget: Duration,
    shutdown: ShutdownJob<EncodedMetricPoint>,
) -> Result<(), SdkError> {
    let started = Instant::now();
    let mut collected = Ok(());
    for collector in collectors {
        let left = (budget / 2).saturating_sub(started.elapsed());
        let collecting = Arc::clone(&collector).collect_and_push(Instant::now() + left);
        let outcome = match tokio::time::timeout(left, collecting).await {
            Ok(outcome) => outcome.map(drop),
            Err(_) => Err(SdkError::Collect(OTelSdkError::Timeout(budget / 2))),
        };
        collected = collected.and(outcome);
        // The SDK's reader takes a lock that a running collection holds:
        // released on a blocking thread, never waited for here.
        tokio::task::spawn_blocking(move || collector.manual.shutdown());
    }
    let closed = shutdown.run(budget.saturating_sub(started.elapsed())).await;
    // What was lost matters more than a collection that failed.
    closed.and(collected)
}
