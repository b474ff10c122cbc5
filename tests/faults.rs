//! Faults a collector or a network really produces, scripted against the
//! crate's in-process receiver (or a raw TCP peer), each ending with the
//! accounting rule checked exactly after shutdown (see
//! `tests/support/accounting.rs`) and the collector's own count compared
//! with the drain's.
//!
//! Real sockets on 127.0.0.1 and real time; timing assertions are lower
//! bounds that cannot pass early, or deadlines with a wide margin.

#![cfg(feature = "receiver")]

#[path = "support/accounting.rs"]
mod accounting;
#[path = "support/points.rs"]
mod points;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accounting::{chain, Books, Pipeline};
use otlp_sink::{DrainErrorKind, ExportError, ExporterConfig, RetryPolicy, ShutdownError, SinkConfig};
use points::Shared;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::Code;

/// Retries fast enough for tests: 20 ms, 40 ms, ... at most 100 ms apart, within `budget`.
fn quick_retries(budget: Duration) -> RetryPolicy {
    RetryPolicy::new()
        .with_initial_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(100))
        .with_max_elapsed(budget)
}

/// A peer that accepts TCP connections on 127.0.0.1 and holds them open,
/// reading and discarding whatever arrives, and never writes a byte: not
/// even the HTTP/2 preface. A hung collector, or a firewall that blackholes
/// after the handshake.
struct SilentPeer {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentPeer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let (connections, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (c, b) = (Arc::clone(&connections), Arc::clone(&bytes));
        let task = tokio::spawn(async move {
            // Dropped (and every connection with it) when the task is aborted.
            let mut held = JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::Relaxed);
                let b = Arc::clone(&b);
                held.spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        b.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
        Self { addr, connections, bytes, task }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The per-attempt timeout fires on every attempt, the retry budget runs out
/// before the shutdown deadline, and shutdown returns in time with an error
/// that says what happened: retries exhausted, last status DEADLINE_EXCEEDED
/// from the per-attempt timeout.
#[tokio::test]
async fn a_peer_that_never_answers_fails_each_attempt_on_its_timeout_and_shutdown_says_so() {
    let peer = SilentPeer::start().await;
    let attempt_timeout = Duration::from_millis(300);
    let config = ExporterConfig::builder()
        .with_endpoint(peer.endpoint())
        .with_timeout(attempt_timeout)
        .with_retry_policy(quick_retries(Duration::from_secs(1)));
    let p = Pipeline::start(config, SinkConfig::default()).await;
    assert_eq!(p.offer(Shared::new().counters(1, 100)), 0);

    let deadline = Duration::from_secs(10);
    let started = Instant::now();
    let result = p.handle.shutdown_timeout(deadline).await;
    let took = started.elapsed();

    let err = result.expect_err("nothing was acknowledged");
    let ShutdownError::Drain { source, later_failures } = &err else { panic!("expected a drain failure, got {err:?}") };
    assert_eq!((source.kind(), source.items(), *later_failures), (DrainErrorKind::TimedOut, Some(100), 0));
    let export = std::error::Error::source(source).and_then(|e| e.downcast_ref::<ExportError>()).unwrap();
    let ExportError::RetriesExhausted { status, attempts, .. } = export else { panic!("{export:?}") };
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(*attempts >= 2, "the timeout is retried within the budget: {attempts} attempt(s)");
    let text = chain(&err);
    assert!(text.contains("no answer within the 300ms per-attempt timeout"), "{text}");
    assert!(text.contains("timed out (100 items)"), "{text}");
    // Each attempt waited its full timeout, and the budget ended it long before the deadline.
    assert!(took >= attempt_timeout * 2 && took < deadline, "shutdown took {took:?}");
    assert!(peer.connections.load(Ordering::Relaxed) >= 1 && peer.bytes.load(Ordering::Relaxed) > 0);

    let books = Books::read(&p.sink, &p.export);
    books.assert_balanced("silent peer, budget < deadline");
    assert_eq!((books.export.acked, books.export.failed, books.sink.abandoned), (0, 100, 0));
}

/// The shutdown deadline passes while requests still wait on the silent
/// peer and batches wait in the queue: shutdown returns by its deadline with
/// `TimedOut`, and the books still balance: the unanswered and unsent points
/// are failed in the drain, the queued ones abandoned by the sink.
#[tokio::test]
async fn a_shutdown_deadline_before_the_retry_budget_returns_in_time_and_loses_nothing_unaccounted() {
    let peer = SilentPeer::start().await;
    let config = ExporterConfig::builder()
        .with_endpoint(peer.endpoint())
        .with_timeout(Duration::from_millis(200))
        .with_max_in_flight(1)
        .with_retry_policy(quick_retries(Duration::from_secs(30)));
    // Batches of 50: the first is sent, the second waits for the one slot, the rest queue.
    let sink_config = SinkConfig::default().with_batch_size(50).with_queue_capacity(1_000);
    let p = Pipeline::start(config, sink_config).await;
    assert_eq!(p.offer(Shared::new().counters(1, 500)), 0);
    // Until the actor holds the second batch: then the first is on the wire.
    let waited = Instant::now();
    while p.sink.stats().written < 100 {
        assert!(waited.elapsed() < Duration::from_secs(10), "the actor never took two batches: {:?}", p.sink.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let deadline = Duration::from_millis(800);
    let started = Instant::now();
    let result = p.handle.shutdown_timeout(deadline).await;
    let took = started.elapsed();

    match &result {
        Err(ShutdownError::TimedOut { deadline: d, pending }) => {
            assert_eq!((*d, *pending), (deadline, 400), "{}", chain(result.as_ref().unwrap_err()));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let text = chain(result.as_ref().unwrap_err());
    assert!(text.contains("did not finish within 800ms") && text.contains("400 messages"), "{text}");
    assert!(took >= deadline && took < deadline + Duration::from_secs(2), "shutdown took {took:?}");

    let books = Books::read(&p.sink, &p.export);
    books.assert_balanced("silent peer, deadline < budget");
    // 50 unanswered on the wire and 50 never sent, in the drain; 400 never reached it.
    assert_eq!((books.export.requests, books.export.failed, books.sink.abandoned), (1, 100, 400));
    assert!(books.export.retries >= 1, "the per-attempt timeout fired and was retried: {:?}", books.export);
}
