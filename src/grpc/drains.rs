//! The public OTLP/gRPC drains, one per signal: the delivery engine over
//! the gRPC transport, for users who feed a [`BackgroundSink`](crate::BackgroundSink)
//! with this crate's own points.

use super::client::GrpcTransport;
use crate::config::ExporterConfig;
use crate::deliver::Service;
use crate::deliver::{DeliveryDrain, DeliverySettings, DeliveryStatsHandle};
use crate::sink::{DrainError, SinkDrain};
use crate::tls::ConnectError;

/// The delivery engine over gRPC.
pub(crate) type GrpcDrain<S> = DeliveryDrain<S, GrpcTransport>;

/// Prepares the engine for `config`. The connection is made lazily by the
/// first request, so a collector that is not up yet is not an error here.
///
/// Must be called inside a tokio runtime (the runtime the sink's actor runs
/// on): the channel's connection task is spawned there.
///
/// # Errors
///
/// A [`ConnectError`] when a TLS file cannot be read or is refused.
pub(crate) async fn connect<S: Service>(config: &ExporterConfig) -> Result<GrpcDrain<S>, ConnectError> {
    let transport = GrpcTransport::connect(config).await?;
    let settings = DeliverySettings {
        max_request_bytes: config.max_request_bytes(),
        max_in_flight: config.max_in_flight(),
        retry: *config.retry_policy(),
        attempt_timeout: config.timeout(),
    };
    Ok(DeliveryDrain::new(transport, settings))
}

/// Declares the public drain of one signal: a thin wrapper around
/// [`GrpcDrain`], which stays crate-private with its encoding trait.
macro_rules! signal_drain {
    ($(#[$doc:meta])* $name:ident, $signal:ty, $point:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(GrpcDrain<$signal>);

        impl $name {
            /// Prepares the drain for `config`. The connection is made lazily
            /// by the first request, so a collector that is not up yet is not
            /// an error here.
            ///
            /// Call it inside the tokio runtime the sink's actor will run on:
            /// the channel's connection task is spawned there.
            ///
            /// # Errors
            ///
            /// A [`ConnectError`] when a TLS file cannot be read or is refused.
            pub async fn connect(config: &ExporterConfig) -> Result<Self, ConnectError> {
                connect(config).await.map(Self)
            }

            /// A handle that reads this drain's counters from anywhere, also
            /// after the drain was moved into a sink.
            pub fn stats(&self) -> DeliveryStatsHandle {
                self.0.stats()
            }
        }

        impl SinkDrain<$point> for $name {
            fn write_batch(
                &mut self,
                batch: Vec<$point>,
            ) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                self.0.write_batch(batch)
            }

            fn flush_durable(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                SinkDrain::<$point>::flush_durable(&mut self.0)
            }

            fn close(&mut self) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                SinkDrain::<$point>::close(&mut self.0)
            }
        }
    };
}

signal_drain!(
    /// A [`SinkDrain`] that sends metric data points to an OTLP/gRPC collector's
    /// `MetricsService/Export`. See [`BackgroundSink`](crate::BackgroundSink)
    /// for the queue in front of it.
    ///
    /// - Each batch is encoded into requests of at most
    ///   [`max_request_bytes`](crate::config::ExporterConfigBuilder::with_max_request_bytes),
    ///   so a collection of any size is delivered; a point too large to fit any
    ///   request is counted as rejected and reported, its neighbours are sent.
    /// - Up to [`max_in_flight`](crate::config::ExporterConfigBuilder::with_max_in_flight)
    ///   requests are outstanding at once. `write_batch` returns once its
    ///   requests are on their way; it waits only when every slot is taken.
    /// - Each request is retried per the OTLP spec (see [`RetryPolicy`](crate::config::RetryPolicy)), each
    ///   attempt bounded by the configured timeout.
    /// - [`flush_durable`](SinkDrain::flush_durable) waits until every request
    ///   made so far has finished (acknowledged, partially rejected, or failed
    ///   for good) and reports the first failure since the previous call, with
    ///   an [`ExportError`](crate::deliver::ExportError) as its source. So a sink flush that returns `Ok`
    ///   means the collector acknowledged everything before it.
    /// - `write_batch` itself never fails: every failure surfaces through
    ///   `flush_durable`, with exact counts in [`DeliveryStats`](crate::deliver::DeliveryStats).
    MetricsDrain,
    crate::otlp::Metrics,
    crate::otlp::MetricPoint
);

signal_drain!(
    /// A [`SinkDrain`] that sends spans to an OTLP/gRPC collector's
    /// `TraceService/Export`. It works as [`MetricsDrain`] does.
    TracesDrain,
    crate::otlp::Traces,
    crate::otlp::SpanRecord
);

signal_drain!(
    /// A [`SinkDrain`] that sends log records to an OTLP/gRPC collector's
    /// `LogsService/Export`. It works as [`MetricsDrain`] does.
    LogsDrain,
    crate::otlp::Logs,
    crate::otlp::LogRecord
);
