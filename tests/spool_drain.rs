//! The spooled drains against the in-process receiver: a sink flush is the
//! `Persisted` level and the spool handle's wait the `Delivered` one; an
//! outage longer than the retry budget keeps the records on disk and
//! delivers them when the collector answers again; a restart replays what
//! the previous drain left, first and in order; the lock and the
//! permissions; the accounting rule, exactly, in each.

#![cfg(all(feature = "receiver", unix))]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use otlp_sink::config::{RetryPolicy, SpoolConfig};
use otlp_sink::deliver::{DeliveryStatsHandle, GrpcCode, NotDelivered, SpoolHandle, SpoolOpenError};
use otlp_sink::otlp::{KeyValue, MetricPoint, Resource};
use otlp_sink::receiver::{Receiver, Reply};
use otlp_sink::sink::{DrainErrorKind, ShutdownError};
use otlp_sink::{BackgroundSink, ExporterConfig, MetricsDrain, Signal, SinkConfig, SinkHandle};
use support::points::Shared;
use tokio_util::sync::CancellationToken;

/// A retry budget far shorter than the outages below.
fn short_budget() -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(50))
        .with_max_elapsed(Duration::from_millis(300))
}

struct Pipeline {
    sink: BackgroundSink<MetricPoint>,
    handle: SinkHandle,
    export: DeliveryStatsHandle,
    spool: SpoolHandle,
}

async fn pipeline(receiver: &Receiver, dir: &Path, close_budget: Duration) -> Pipeline {
    let config = ExporterConfig::builder()
        .with_endpoint(receiver.endpoint())
        .with_retry_policy(short_budget())
        .build_without_env()
        .unwrap();
    let drain = MetricsDrain::connect_spooled_with_close_budget(&config, &SpoolConfig::new(dir), close_budget)
        .await
        .expect("spooled drain");
    let (export, spool) = (drain.stats(), drain.spool().expect("a spooled drain has a spool handle"));
    let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).unwrap();
    Pipeline { sink, handle, export, spool }
}

/// `n` points under a resource of their own, so that the receiver's
/// resource list tells batches apart in arrival order.
fn batch(name: &str, n: usize) -> Vec<MetricPoint> {
    let resource = Arc::new(Resource::new([KeyValue::new("service.name", name.to_string())]));
    Shared { resource, scope: Shared::new().scope }.counters(1, n)
}

fn push(sink: &BackgroundSink<MetricPoint>, points: Vec<MetricPoint>) {
    for p in points {
        sink.try_push(p).expect("queue has room");
    }
}

/// `written + replayed == acked + rejected + failed + spool.dropped() + spooled`.
fn assert_accounts(p: &Pipeline) {
    accounts(&p.sink, &p.export, &p.spool);
}

fn accounts(sink: &BackgroundSink<MetricPoint>, export: &DeliveryStatsHandle, spool: &SpoolHandle) {
    let (s, e, sp) = (sink.stats(), export.snapshot(), spool.stats());
    assert_eq!(
        s.written + sp.replayed,
        e.acked + e.rejected + e.failed + sp.dropped() + sp.spooled,
        "sink {s:?}\nexport {e:?}\nspool {sp:?}"
    );
}

fn service_names(receiver: &Receiver) -> Vec<String> {
    receiver
        .resources(Signal::Metrics)
        .iter()
        .map(|r| format!("{r:?}"))
        .map(|debug| {
            let known = ["before", "during", "after", "first"];
            known.iter().find(|n| debug.contains(*n)).map_or(debug.clone(), |n| n.to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_flush_is_persisted_then_the_wait_is_delivered() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("metrics");
    let p = pipeline(&receiver, &spool_dir, Duration::from_secs(5)).await;
    push(&p.sink, batch("first", 300));
    p.sink.flush().await.expect("persisted");
    assert!(p.spool.flushed_through() >= 1, "the flush persisted a record");
    assert_eq!(p.spool.stats().syncs, 1);
    p.spool.delivered(Duration::from_secs(10)).await.expect("delivered");
    assert_eq!(receiver.counts().metrics.acked, 300);
    assert_eq!(p.export.snapshot().acked, 300);
    assert_eq!(p.spool.stats().spooled, 0);
    assert_accounts(&p);
    let mode = std::fs::metadata(&spool_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the spool directory is private");
    p.handle.shutdown().await.expect("nothing left at shutdown");
    accounts(&p.sink, &p.export, &p.spool);
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_loses_nothing() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::status(GrpcCode::Unavailable));
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(&receiver, dir.path(), Duration::from_secs(5)).await;
    push(&p.sink, batch("during", 200));
    p.sink.flush().await.expect("persisted while the collector is down");
    // Several retry budgets (300 ms each) pass while the collector is down.
    match p.spool.delivered(Duration::from_millis(1500)).await {
        Err(NotDelivered::TimedOut { waiting, persisted, .. }) => {
            assert_eq!((waiting, persisted), (200, 200), "every waiting item is safe on disk");
        }
        other => panic!("expected a timed-out Delivered wait, got {other:?}"),
    }
    let export = p.export.snapshot();
    assert_eq!((export.acked, export.failed), (0, 0), "nothing counted lost: {export:?}");
    assert!(export.retries > 0, "the engine retried within its budget: {export:?}");
    assert_eq!(p.spool.stats().spooled, 200);
    assert_accounts(&p);
    assert!(receiver.counts().metrics.failed >= 200, "the collector refused at least one attempt");

    receiver.set_default(Signal::Metrics, Reply::Ok);
    p.spool.delivered(Duration::from_secs(40)).await.expect("delivered once the collector answers");
    assert_eq!(receiver.counts().metrics.acked, 200);
    let spool = p.spool.stats();
    assert_eq!(spool.spooled, 0);
    assert!(spool.redelivered >= 200, "sent again after the budget ran out: {spool:?}");
    assert_eq!(p.export.snapshot().failed, 0);
    assert_accounts(&p);
    p.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_delivers_what_the_last_process_left_first_and_counts_it_replayed() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::status(GrpcCode::Unavailable));
    let dir = tempfile::tempdir().unwrap();
    let first = pipeline(&receiver, dir.path(), Duration::from_millis(200)).await;
    push(&first.sink, batch("before", 120));
    first.sink.flush().await.unwrap();
    match first.handle.shutdown().await {
        Err(ShutdownError::Drain { source, .. }) => {
            assert_eq!(source.kind(), DrainErrorKind::Kept, "{source}");
            assert_eq!(source.items(), Some(120), "{source}");
            let text = std::error::Error::source(&source).unwrap().to_string();
            assert!(text.contains(&dir.path().display().to_string()), "names the directory: {text}");
        }
        other => panic!("expected the shutdown to say what it left, got {other:?}"),
    }
    assert_eq!(first.spool.stats().spooled, 120);
    assert_eq!(first.export.snapshot().failed, 0);
    accounts(&first.sink, &first.export, &first.spool);
    assert_eq!(receiver.counts().metrics.acked, 0);

    receiver.set_default(Signal::Metrics, Reply::Ok);
    let second = pipeline(&receiver, dir.path(), Duration::from_secs(5)).await;
    assert_eq!(second.spool.stats().replayed, 120);
    push(&second.sink, batch("after", 80));
    second.sink.flush().await.unwrap();
    second.spool.delivered(Duration::from_secs(10)).await.unwrap();
    assert_eq!(receiver.counts().metrics.acked, 200);
    assert_eq!(service_names(&receiver), ["before", "after"], "what the last process left goes first");
    accounts(&second.sink, &second.export, &second.spool);
    second.handle.shutdown().await.unwrap();
    accounts(&second.sink, &second.export, &second.spool);
}

#[tokio::test]
async fn a_second_drain_on_the_directory_and_an_unsafe_directory_are_refused_by_name() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env().unwrap();
    let held = MetricsDrain::connect_spooled(&config, &SpoolConfig::new(dir.path())).await.unwrap();
    match MetricsDrain::connect_spooled(&config, &SpoolConfig::new(dir.path())).await {
        Err(e @ SpoolOpenError::Locked { .. }) => {
            assert_eq!(e.dir(), Some(dir.path()));
            assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(held);

    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    match MetricsDrain::connect_spooled(&config, &SpoolConfig::new(open.path())).await {
        Err(e @ SpoolOpenError::Unsafe { .. }) => {
            assert!(e.to_string().contains("0777"), "{e}");
            assert!(e.to_string().contains(&open.path().display().to_string()), "{e}");
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

/// Leaves 10 records of 50 points in `dir` (the collector down, a shutdown
/// that keeps them), in one segment.
async fn leave_ten_records(receiver: &Receiver, dir: &Path) {
    receiver.set_default(Signal::Metrics, Reply::status(GrpcCode::Unavailable));
    let p = pipeline(receiver, dir, Duration::from_millis(100)).await;
    for k in 0..10 {
        push(&p.sink, batch(&format!("r{k}"), 50));
        p.sink.flush().await.unwrap();
    }
    assert!(matches!(p.handle.shutdown().await, Err(ShutdownError::Drain { .. })), "kept");
    assert_eq!(p.spool.stats().spooled, 500);
    receiver.set_default(Signal::Metrics, Reply::Ok);
}

fn the_segment(dir: &Path) -> std::path::PathBuf {
    let segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments.into_iter().next().unwrap()
}

/// Damage between two processes: a flipped byte in one record, a cut in the
/// last one, a deleted cursor. No panic; the damaged items are counted; every
/// other record is delivered by the next drain.
#[tokio::test]
async fn damage_between_two_processes_costs_only_the_damaged_records() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    leave_ten_records(&receiver, dir.path()).await;
    let segment = the_segment(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    let len = bytes.len();
    // A byte in the middle of the file (inside some record's payload), and
    // the last 10 bytes cut off (the last record torn).
    bytes[len / 2] ^= 0xff;
    bytes.truncate(len - 10);
    std::fs::write(&segment, &bytes).unwrap();
    std::fs::remove_file(dir.path().join("cursor")).unwrap();

    let p = pipeline(&receiver, dir.path(), Duration::from_secs(5)).await;
    let opened = p.spool.stats();
    assert_eq!(opened.replayed, 400, "two of ten records damaged: {opened:?}");
    assert_eq!(opened.lost_at_open + 50 * opened.lost_records_unknown, 100, "both counted: {opened:?}");
    p.sink.flush().await.unwrap();
    p.spool.delivered(Duration::from_secs(10)).await.expect("the others delivered");
    assert_eq!(receiver.counts().metrics.acked, 400);
    assert_accounts(&p);
    p.handle.shutdown().await.unwrap();
}

/// A spool bounded to 64 KiB through an outage: the oldest segments are
/// evicted, counted (also records in flight when their segment went), the
/// Delivered wait reports the loss, and the account stays exact.
#[tokio::test]
async fn a_full_spool_evicts_the_oldest_and_counts_every_item() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_default(Signal::Metrics, Reply::status(GrpcCode::Unavailable));
    let dir = tempfile::tempdir().unwrap();
    let config = ExporterConfig::builder()
        .with_endpoint(receiver.endpoint())
        .with_retry_policy(short_budget())
        .build_without_env()
        .unwrap();
    let spool = SpoolConfig::new(dir.path()).with_max_bytes(64 << 10);
    let drain = MetricsDrain::connect_spooled(&config, &spool).await.unwrap();
    let (export, handle_spool) = (drain.stats(), drain.spool().unwrap());
    let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new()).unwrap();
    let p = Pipeline { sink, handle, export, spool: handle_spool };
    for k in 0..60 {
        push(&p.sink, batch(&format!("b{k}"), 50));
        p.sink.flush().await.expect("persisted: eviction makes room");
    }
    let stats = p.spool.stats();
    assert!(stats.evicted > 0, "{stats:?}");
    assert!(stats.bytes_on_disk <= 64 << 10, "{stats:?}");
    assert_accounts(&p);

    receiver.set_default(Signal::Metrics, Reply::Ok);
    match p.spool.delivered(Duration::from_secs(40)).await {
        Err(NotDelivered::Failed(e)) => assert_eq!(e.kind(), DrainErrorKind::Storage, "{e}"),
        other => panic!("expected the evictions to be reported, got {other:?}"),
    }
    let (spool, export) = (p.spool.stats(), p.export.snapshot());
    assert_eq!(spool.spooled, 0);
    assert_eq!(export.acked + spool.evicted, 3000, "every item acked or evicted: {spool:?} {export:?}");
    assert_eq!(receiver.counts().metrics.acked, export.acked);
    assert_accounts(&p);
    p.handle.shutdown().await.unwrap();
}

/// The age bound: what a previous process left, older than the bound at
/// the next start, is dropped there and counted, never sent.
#[tokio::test]
async fn records_older_than_the_age_bound_are_dropped_at_replay_and_counted() {
    let receiver = Receiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The close budget alone (100 ms) ages them past the 1 ms bound.
    leave_ten_records(&receiver, dir.path()).await;
    let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env().unwrap();
    let spool = SpoolConfig::new(dir.path()).with_max_record_age(Some(Duration::from_millis(1)));
    let drain = MetricsDrain::connect_spooled(&config, &spool).await.unwrap();
    let handle = drain.spool().unwrap();
    let stats = handle.stats();
    assert_eq!((stats.replayed, stats.lost_at_open, stats.spooled), (0, 500, 0), "{stats:?}");
    handle.delivered(Duration::from_secs(5)).await.expect("nothing to deliver");
    assert_eq!(receiver.counts().metrics.acked, 0, "never sent");
}
