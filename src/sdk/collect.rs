//! The metric reader's collections: collect (on a blocking thread of the
//! export runtime, since collection runs the application's callbacks),
//! convert, and queue, one collection at a time; the interval loop; and the
//! final collection of a shutdown.

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
use crate::{sink::TryPushError, BackgroundSink};

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

impl Collector {
    /// Collects, converts and queues, waiting for queue space until
    /// `deadline`. Runs on the export runtime.
    pub(crate) async fn collect_and_push(self: Arc<Self>, deadline: Instant) -> Result<Collected, SdkError> {
        let mut turn = Arc::clone(&self.turn).lock_owned().await;
        let manual = Arc::clone(&self);
        // Collection calls the application's callbacks and can take a while:
        // not on a worker, where it would hold up the actors.
        let (turn_back, points) = tokio::task::spawn_blocking(move || {
            let collected = manual.manual.collect(&mut turn).map(|()| convert::encoded_resource_metrics(&turn));
            (turn, collected)
        })
        .await
        .map_err(|e| SdkError::Collect(OTelSdkError::InternalFailure(format!("metric collection panicked: {e}"))))?;
        let points = points.map_err(SdkError::Collect)?;
        let mut outcome = Collected::default();
        let mut points = points.into_iter();
        for point in points.by_ref() {
            match self.sink.push_until(point, deadline).await {
                Ok(()) => outcome.queued += 1,
                Err(TryPushError::Closed(_)) => {
                    outcome.refused += 1;
                    break;
                }
                Err(_) => outcome.dropped += 1,
            }
        }
        outcome.refused += points.len() as u64;
        self.refused.fetch_add(outcome.refused, Ordering::Relaxed);
        drop(turn_back);
        Ok(outcome)
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
