//! The public OTLP drains, one per signal: the one delivery engine over the
//! transport the configuration names (gRPC or HTTP), for users who feed a
//! [`BackgroundSink`](crate::BackgroundSink) with this crate's own points.
//! Each sends directly, or through a durable spool on disk (`spooled.rs`).

mod spooled;

use std::time::Duration;

use bytes::Bytes;

use crate::config::{ExporterConfig, Protocol, SpoolConfig};
use crate::deliver::{DeliveryDrain, DeliverySettings, DeliveryStatsHandle, SpoolHandle, SpoolOpenError};
use crate::deliver::{Failure, Service, Transport};
use crate::grpc::GrpcTransport;
use crate::http::HttpTransport;
use crate::otlp::EncodedSize;
use crate::sink::{DrainError, SinkDrain};
use crate::tls::ConnectError;

/// The transport [`ExporterConfig::protocol`] names: one type, so that there
/// is one engine type and one public drain type per signal, whichever it is.
#[derive(Debug, Clone)]
pub(crate) enum AnyTransport {
    /// OTLP/gRPC.
    Grpc(GrpcTransport),
    /// OTLP/HTTP with protobuf bodies.
    Http(HttpTransport),
}

impl AnyTransport {
    /// Prepares the transport of `config`'s protocol for `S`'s requests.
    async fn connect<S: Service>(config: &ExporterConfig) -> Result<Self, ConnectError> {
        match config.protocol() {
            Protocol::Grpc => GrpcTransport::connect(config).await.map(Self::Grpc),
            Protocol::HttpProtobuf => HttpTransport::connect(config, S::HTTP_PATH).await.map(Self::Http),
        }
    }
}

impl Transport for AnyTransport {
    fn endpoint(&self) -> String {
        match self {
            Self::Grpc(grpc) => grpc.endpoint(),
            Self::Http(http) => http.endpoint(),
        }
    }

    async fn send<S: Service>(&self, body: Bytes, timeout: Duration) -> Result<Bytes, Failure> {
        match self {
            Self::Grpc(grpc) => grpc.send::<S>(body, timeout).await,
            Self::Http(http) => http.send::<S>(body, timeout).await,
        }
    }
}

/// The delivery engine over the configured transport.
pub(crate) type OtlpDrain<S> = DeliveryDrain<S, AnyTransport>;

/// Prepares the engine for `config`, over the transport its
/// [`protocol`](ExporterConfig::protocol) names. The connection is made
/// lazily by the first request, so a collector that is not up yet is not an
/// error here.
///
/// Must be called inside a tokio runtime (the runtime the sink's actor runs
/// on): the transport's connection tasks are spawned there.
///
/// # Errors
///
/// A [`ConnectError`] when a TLS file cannot be read or is refused.
pub(crate) async fn connect<S: Service>(config: &ExporterConfig) -> Result<OtlpDrain<S>, ConnectError> {
    let transport = AnyTransport::connect::<S>(config).await?;
    let settings = DeliverySettings {
        max_request_bytes: config.max_request_bytes(),
        max_in_flight: config.max_in_flight(),
        retry: *config.retry_policy(),
        attempt_timeout: config.timeout(),
    };
    Ok(DeliveryDrain::new(transport, settings))
}

pub(crate) use spooled::SpooledDrain;

/// How long a spooled drain's close gives delivery, by default, before it
/// leaves the rest on disk for the next start.
pub(crate) const DEFAULT_CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// A signal's drain: the engine directly, or under a spool. Behind the
/// public drains and the SDK adapters.
// One per signal, made once and never moved on a hot path: the size of the
// direct engine costs nothing, a box would cost an indirection per batch.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Inner<S: Service> {
    Direct(OtlpDrain<S>),
    Spooled(SpooledDrain<S>),
}

impl<S: Service> Inner<S> {
    /// The delivery engine's counters.
    pub(crate) fn stats(&self) -> DeliveryStatsHandle {
        match self {
            Inner::Direct(d) => d.stats(),
            Inner::Spooled(d) => d.stats(),
        }
    }

    /// The spool's handle, when there is a spool.
    pub(crate) fn spool(&self) -> Option<SpoolHandle> {
        match self {
            Inner::Direct(_) => None,
            Inner::Spooled(d) => Some(d.handle()),
        }
    }
}

impl<S: Service, P: Into<S::Point> + EncodedSize + Send + 'static> SinkDrain<P> for Inner<S> {
    fn item_bytes(&self, item: &P) -> usize {
        item.encoded_size()
    }

    async fn write_batch(&mut self, batch: Vec<P>) -> Result<(), DrainError> {
        match self {
            Inner::Direct(d) => d.write_batch(batch).await,
            Inner::Spooled(d) => SinkDrain::<P>::write_batch(d, batch).await,
        }
    }

    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        match self {
            Inner::Direct(d) => SinkDrain::<P>::flush_durable(d).await,
            Inner::Spooled(d) => SinkDrain::<P>::flush_durable(d).await,
        }
    }

    async fn close(&mut self) -> Result<(), DrainError> {
        match self {
            Inner::Direct(d) => SinkDrain::<P>::close(d).await,
            Inner::Spooled(d) => SinkDrain::<P>::close(d).await,
        }
    }
}

/// Prepares `S`'s drain for `config`: behind a spool in `spool`'s directory
/// when there is one, whose close gives delivery `close_budget`.
///
/// # Errors
///
/// As the public drains' `connect_spooled`.
pub(crate) async fn open<S: Service>(
    config: &ExporterConfig,
    spool: Option<&SpoolConfig>,
    close_budget: Duration,
) -> Result<Inner<S>, SpoolOpenError> {
    let engine = connect(config).await.map_err(SpoolOpenError::Connect)?;
    match spool {
        None => Ok(Inner::Direct(engine)),
        Some(spool) => SpooledDrain::open(engine, config, spool, close_budget).await.map(Inner::Spooled),
    }
}

/// Declares the public drain of one signal: a thin wrapper around
/// [`OtlpDrain`] or [`SpooledDrain`], which stay crate-private with their
/// encoding trait.
macro_rules! signal_drain {
    ($(#[$doc:meta])* $name:ident, $signal:ty, $point:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Inner<$signal>);

        impl $name {
            /// Prepares the drain for `config`, over the transport its
            /// [`protocol`](ExporterConfig::protocol) names: gRPC, or
            /// OTLP/HTTP to [`export_url`](ExporterConfig::export_url). The
            /// connection is made lazily by the first request, so a
            /// collector that is not up yet is not an error here.
            ///
            /// Call it inside the tokio runtime the sink's actor will run on:
            /// the transport's connection tasks are spawned there.
            ///
            /// # Errors
            ///
            /// A [`ConnectError`] when a TLS file cannot be read or is refused.
            pub async fn connect(config: &ExporterConfig) -> Result<Self, ConnectError> {
                connect(config).await.map(|d| Self(Inner::Direct(d)))
            }

            /// Prepares the drain for `config` behind a durable spool in
            /// `spool`'s directory (see [`MetricsDrain`]'s docs, "With a
            /// spool", for an example): each batch's requests are appended there, a sink
            /// flush is the `Persisted` level (everything before it
            /// fsynced), and a sender task delivers the records in order,
            /// first what an earlier process left. Read the counters and wait
            /// for the `Delivered` level with [`spool`](Self::spool).
            ///
            /// At close it gives delivery 5 seconds
            /// ([`connect_spooled_with_close_budget`](Self::connect_spooled_with_close_budget)
            /// to change it), then leaves the rest on disk.
            ///
            /// # Errors
            ///
            /// A [`SpoolOpenError`] naming the directory: held by another
            /// process (its lock file), unsafe permissions, an I/O error; or
            /// the transport's [`ConnectError`].
            pub async fn connect_spooled(config: &ExporterConfig, spool: &SpoolConfig) -> Result<Self, SpoolOpenError> {
                Self::connect_spooled_with_close_budget(config, spool, DEFAULT_CLOSE_BUDGET).await
            }

            /// As [`connect_spooled`](Self::connect_spooled), with the time
            /// a close gives delivery before it leaves the rest on disk.
            ///
            /// # Errors
            ///
            /// As [`connect_spooled`](Self::connect_spooled).
            pub async fn connect_spooled_with_close_budget(
                config: &ExporterConfig,
                spool: &SpoolConfig,
                close_budget: Duration,
            ) -> Result<Self, SpoolOpenError> {
                open(config, Some(spool), close_budget).await.map(Self)
            }

            /// A handle that reads this drain's delivery counters from
            /// anywhere, also after the drain was moved into a sink.
            pub fn stats(&self) -> DeliveryStatsHandle {
                self.0.stats()
            }

            /// The spool's handle (counters, the `Delivered` wait), for a
            /// drain made by [`connect_spooled`](Self::connect_spooled).
            pub fn spool(&self) -> Option<SpoolHandle> {
                self.0.spool()
            }
        }

        impl SinkDrain<$point> for $name {
            fn write_batch(
                &mut self,
                batch: Vec<$point>,
            ) -> impl std::future::Future<Output = Result<(), DrainError>> + Send {
                SinkDrain::<$point>::write_batch(&mut self.0, batch)
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
    /// A [`SinkDrain`] that sends metric data points to an OTLP collector:
    /// over gRPC to `MetricsService/Export`, or over OTLP/HTTP to
    /// `POST /v1/metrics`, as the configuration's
    /// [`protocol`](crate::ExporterConfig::protocol) says. See
    /// [`BackgroundSink`](crate::BackgroundSink) for the queue in front of it.
    /// Both transports share everything below.
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
    ///
    /// # Example
    ///
    /// The same points over each transport, and what the counters say.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use otlp_sink::otlp::{MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope};
    /// use otlp_sink::{BackgroundSink, ExporterConfig, MetricsDrain, Protocol, SinkConfig};
    /// use tokio_util::sync::CancellationToken;
    /// # use otlp_sink::receiver::Receiver;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let receiver = Receiver::start().await?;
    /// let gauge = Arc::new(MetricDescriptor::new("queue.depth", MetricKind::Gauge));
    /// let (resource, scope) = (Arc::new(Resource::new([])), Arc::new(Scope::new("app")));
    ///
    /// for (protocol, endpoint) in [(Protocol::Grpc, receiver.endpoint()), (Protocol::HttpProtobuf, receiver.http_endpoint())] {
    ///     let config = ExporterConfig::builder().with_protocol(protocol).with_endpoint(endpoint).build_without_env()?;
    ///     let drain = MetricsDrain::connect(&config).await?;
    ///     let stats = drain.stats(); // still readable once the sink owns the drain
    ///     let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new())?;
    ///     for depth in 0..3 {
    ///         sink.try_push(MetricPoint::new(resource.clone(), scope.clone(), gauge.clone(), MetricValue::Int(depth)))?;
    ///     }
    ///     sink.flush().await?; // Ok: the collector acknowledged all three
    ///     let delivered = stats.snapshot();
    ///     assert_eq!((delivered.acked, delivered.rejected, delivered.failed), (3, 0, 0));
    ///     handle.shutdown().await?;
    /// }
    /// # assert_eq!(receiver.counts().metrics.acked, 6);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # With a spool
    ///
    /// [`connect_spooled`](Self::connect_spooled) puts a durable spool on
    /// disk between the sink and the network: each batch's requests are
    /// appended to segment files there (on tokio's blocking pool), a sink
    /// flush returns once they are fsynced (the `Persisted` level), and a
    /// sender task delivers the records in order, through the same window,
    /// retries and counters, first what an earlier process left. A record
    /// whose retries outlast the retry budget stays on disk and is sent
    /// again later; only an acknowledgement, a rejection or a permanent
    /// failure settles it. [`spool`](Self::spool) hands out the
    /// [`SpoolHandle`](crate::deliver::SpoolHandle): the `Delivered` wait and
    /// the spool's counters.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    ///
    /// use otlp_sink::config::SpoolConfig;
    /// use otlp_sink::otlp::{MetricDescriptor, MetricKind, MetricPoint, MetricValue, Resource, Scope};
    /// use otlp_sink::{BackgroundSink, ExporterConfig, MetricsDrain, SinkConfig};
    /// use tokio_util::sync::CancellationToken;
    /// # use otlp_sink::receiver::Receiver;
    ///
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let receiver = Receiver::start().await?;
    /// # let scratch = tempfile::tempdir()?;
    /// # let dir = scratch.path().join("metrics");
    /// let config = ExporterConfig::builder().with_endpoint(receiver.endpoint()).build_without_env()?;
    /// let drain = MetricsDrain::connect_spooled(&config, &SpoolConfig::new(&dir)).await?;
    /// let (export, spool) = (drain.stats(), drain.spool().expect("spooled"));
    /// let (sink, handle) = BackgroundSink::spawn(drain, SinkConfig::default(), CancellationToken::new())?;
    ///
    /// let gauge = Arc::new(MetricDescriptor::new("queue.depth", MetricKind::Gauge));
    /// let (resource, scope) = (Arc::new(Resource::new([])), Arc::new(Scope::new("app")));
    /// sink.try_push(MetricPoint::new(resource, scope, gauge, MetricValue::Int(7)))?;
    /// sink.flush().await?;                              // Persisted: fsynced in `dir`
    /// spool.delivered(Duration::from_secs(10)).await?;  // Delivered: acknowledged
    /// assert_eq!(export.snapshot().acked, 1);
    /// assert_eq!(spool.stats().spooled, 0);
    /// handle.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    MetricsDrain,
    crate::otlp::Metrics,
    crate::otlp::MetricPoint
);

signal_drain!(
    /// A [`SinkDrain`] that sends spans to an OTLP collector: over gRPC to
    /// `TraceService/Export`, or over OTLP/HTTP to `POST /v1/traces`. It
    /// works as [`MetricsDrain`] does.
    TracesDrain,
    crate::otlp::Traces,
    crate::otlp::SpanRecord
);

signal_drain!(
    /// A [`SinkDrain`] that sends log records to an OTLP collector: over gRPC
    /// to `LogsService/Export`, or over OTLP/HTTP to `POST /v1/logs`. It
    /// works as [`MetricsDrain`] does.
    LogsDrain,
    crate::otlp::Logs,
    crate::otlp::LogRecord
);
