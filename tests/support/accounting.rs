//! The accounting rule of a sink in front of an OTLP drain (gRPC or HTTP), and the
//! pipeline the fault tests build.
//!
//! After shutdown every point pushed is in exactly one place:
//!
//! ```text
//! pushed == acked + dropped (overflow) + rejected (partial success, encoder) + failed (+ abandoned)
//! ```
//!
//! `abandoned` (points a shutdown deadline threw away before they reached the
//! drain) belongs with `failed`; it is zero unless a test aborts the sink.

use std::error::Error;

use otlp_sink::{
    config::ExporterConfigBuilder,
    deliver::{DeliveryStats, DeliveryStatsHandle, ExportError, GrpcCode, StatusCode},
    otlp::MetricPoint,
    sink::{DrainErrorKind, FlushError, ShutdownError, SinkStats},
    BackgroundSink, MetricsDrain, SinkConfig, SinkHandle,
};
use tokio_util::sync::CancellationToken;

/// A metrics sink, its owner's handle and its drain's counters.
pub struct Pipeline {
    pub sink: BackgroundSink<MetricPoint>,
    pub handle: SinkHandle,
    pub export: DeliveryStatsHandle,
}

impl Pipeline {
    pub async fn start(config: ExporterConfigBuilder, sink_config: SinkConfig) -> Self {
        let config = config.build_without_env().expect("valid exporter config");
        let drain = MetricsDrain::connect(&config).await.expect("drain");
        let export = drain.stats();
        let (sink, handle) = BackgroundSink::spawn(drain, sink_config, CancellationToken::new()).expect("sink");
        Self { sink, handle, export }
    }

    /// Pushes every point with `try_push`; returns how many the queue refused.
    pub fn offer(&self, points: Vec<MetricPoint>) -> u64 {
        points.into_iter().map(|p| u64::from(self.sink.try_push(p).is_err())).sum()
    }

    /// Shuts the sink down (waiting as long as it takes) and returns the
    /// shutdown's result with the final counters of both halves.
    pub async fn shutdown(self) -> (Result<(), ShutdownError>, Books) {
        let result = self.handle.shutdown().await;
        (result, Books { sink: self.sink.stats(), export: self.export.snapshot() })
    }
}

/// The final counters of a pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Books {
    pub sink: SinkStats,
    pub export: DeliveryStats,
}

impl Books {
    pub fn read(sink: &BackgroundSink<MetricPoint>, export: &DeliveryStatsHandle) -> Self {
        Self { sink: sink.stats(), export: export.snapshot() }
    }

    /// `failed` in the rule: failed for good in the drain, plus abandoned by the sink.
    pub fn failed(&self) -> u64 {
        self.export.failed + self.sink.abandoned
    }

    /// Asserts the accounting rule, exactly, and that nothing is still in
    /// motion (call it after shutdown). Prints the ledger.
    pub fn assert_balanced(&self, test: &str) {
        let (s, e) = (&self.sink, &self.export);
        println!(
            "[{test}] pushed {} = acked {} + dropped {} + rejected {} + failed {} (drain {} + abandoned {}); retries {}, requests {}",
            s.pushed,
            e.acked,
            s.dropped,
            e.rejected,
            self.failed(),
            e.failed,
            s.abandoned,
            e.retries,
            e.requests
        );
        assert_eq!(s.pending, 0, "nothing may stay pending after shutdown: {s:?}");
        assert_eq!(e.in_flight, 0, "no request may stay in flight after shutdown: {e:?}");
        assert_eq!(
            s.written,
            e.acked + e.rejected + e.failed,
            "the drain must settle every point handed to it exactly once: {s:?} {e:?}"
        );
        assert_eq!(
            e.acked + s.dropped + e.rejected + self.failed(),
            s.pushed,
            "acked + dropped + rejected + failed == pushed: {s:?} {e:?}"
        );
    }
}

use super::errors::chain;

/// What a failed flush says: the drain error's kind and item count, the
/// `ExportError` under it, its status and gRPC code, and the whole chain as
/// text.
pub struct Failure {
    pub kind: DrainErrorKind,
    pub items: Option<u64>,
    pub later: u64,
    /// The last attempt's status, whatever the transport.
    pub status: Option<StatusCode>,
    /// The gRPC code of that status, for a gRPC status.
    pub code: Option<GrpcCode>,
    pub chain: String,
}

pub fn failure(err: &FlushError) -> Failure {
    match err {
        FlushError::Drain { source, later_failures } => {
            let export = source.source().and_then(|s| s.downcast_ref::<ExportError>());
            Failure {
                kind: source.kind(),
                items: source.items(),
                later: *later_failures,
                status: export.and_then(ExportError::code),
                code: export.and_then(ExportError::code).and_then(|code| match code {
                    StatusCode::Grpc(code) => Some(code),
                    _ => None,
                }),
                chain: chain(err),
            }
        }
        other => panic!("expected a drain failure, got {other:?}"),
    }
}
