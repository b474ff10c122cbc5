//! How a [`BackgroundSink`](crate::BackgroundSink) queues and batches.

use std::fmt;
use std::time::Duration;

/// What [`try_push`](crate::BackgroundSink::try_push) does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the message at once, hand it back in the error, and count it as
    /// dropped. Producers never wait. This is the default.
    #[default]
    Drop,
    /// Never drop: `try_push` always refuses (with
    /// [`TryPushError::WouldBlock`](crate::sink::TryPushError::WouldBlock)), and
    /// producers must use [`push_blocking`](crate::BackgroundSink::push_blocking),
    /// which waits for queue space.
    Block,
}

/// When the memory of a sink's queue is committed: on a push's first touch
/// (the default), or all of it when the sink starts.
///
/// The queue is one allocation of `queue_capacity` slots, each the size of a
/// message plus 8 bytes. For the [`OtlpExporter`]'s sinks, per 10 000 slots:
/// 3.6 MB of spans (`SpanData`, 352 bytes), 5.4 MB of log records, 0.9 MB
/// of metric points; at the default capacities (10 000 spans, 10 000 log
/// records, 65 536 points) 14.7 MB in all. Whichever this setting says, the
/// queue never allocates again and never takes more than that.
///
/// Measured on a 2-core VM (the README's "Benchmarks"):
/// - at rest (`cargo run --release -p vs-official -- --only 6 --rounds 3`,
///   "RSS at rest"): a process holding an [`OtlpExporter`] of three signals
///   with the three SDK providers holds 6.9 MB with `Lazy`, 21.4 MB with
///   `Resident` (the official stack: 6.7 MB);
/// - a push during the queue's first lap (`cargo bench --bench try_push --
///   first_lap`, A/B rounds of one fresh 10 000-span queue): 168 ns with
///   `Lazy` against 21 ns with `Resident`, about 1.6 µs per page fault, one
///   per 11 spans; with the actor taking from the queue at the same time,
///   faults cost more (over 1 µs a span in `benches/span_processor.rs` with
///   a lazy queue of 4 M spans). After one lap every page is resident and a
///   push costs the same with either.
///
/// [`OtlpExporter`]: crate::OtlpExporter
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueMemory {
    /// Allocate the queue zeroed and let the kernel commit each page when a
    /// push first writes it. A sink at rest holds almost none of its queue;
    /// a push that is the first to touch a page (one in
    /// `4096 / (message size + 8)`, during the queue's first lap only) takes
    /// a page fault. This is the default.
    #[default]
    Lazy,
    /// Write every page of the queue when the sink starts, so that no push
    /// ever takes a page fault: for latency-critical producers. The whole
    /// queue is resident from the start, `queue_capacity * (message size +
    /// 8)` bytes: 3.6 MB per 10 000 spans, 5.4 MB per 10 000 log records,
    /// 0.9 MB per 10 000 metric points.
    Resident,
}

/// Settings of a [`BackgroundSink`](crate::BackgroundSink).
///
/// ```
/// use std::time::Duration;
/// use otlp_sink::{sink::Overflow, SinkConfig};
///
/// let config = SinkConfig::default()
///     .with_queue_capacity(50_000)
///     .with_batch_size(1024)
///     .with_flush_interval(Duration::from_millis(250))
///     .with_overflow(Overflow::Drop);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    pub(crate) queue_capacity: usize,
    pub(crate) batch_size: usize,
    /// 0: batches by count only.
    pub(crate) batch_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) overflow: Overflow,
    pub(crate) queue_memory: QueueMemory,
    pub(crate) queue_shards: usize,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 256,
            batch_bytes: 0,
            flush_interval: Duration::from_millis(100),
            overflow: Overflow::Drop,
            queue_memory: QueueMemory::Lazy,
            queue_shards: 1,
        }
    }
}

impl SinkConfig {
    /// How many messages (data and flush barriers) the queue holds. Default 10 000.
    ///
    /// The queue is allocated whole when the sink starts, and committed as
    /// [`with_queue_memory`](Self::with_queue_memory) says: see
    /// [`QueueMemory`] for its memory.
    #[must_use]
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How many messages make a full batch, written at once. Default 256.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How many bytes of items make a full batch, as the drain weighs them
    /// ([`SinkDrain::item_bytes`](crate::SinkDrain::item_bytes)): a batch is
    /// written once it holds [`batch_size`](Self::with_batch_size) messages
    /// or this many bytes, whichever comes first. Default 0: by count only.
    ///
    /// For a drain whose requests have a size limit, a batch close to that
    /// limit makes fewer, larger requests, which a collector receives for
    /// less CPU per item. The [`OtlpExporter`](crate::OtlpExporter)'s metrics
    /// sink uses it (see [`OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES`](crate::sdk::OtlpExporterBuilder::DEFAULT_METRICS_BATCH_BYTES)).
    /// A drain that does not weigh its items (the default `item_bytes`
    /// weighs every item 0) batches by count only, whatever this says.
    #[must_use]
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// How long a partial batch may wait before it is written. Default 100 ms.
    #[must_use]
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// What a full queue does to `try_push`. Default [`Overflow::Drop`].
    #[must_use]
    pub fn with_overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// When the queue's memory is committed. Default [`QueueMemory::Lazy`]:
    /// page by page, as pushes first reach it. [`QueueMemory::Resident`]
    /// commits it all when the sink starts, so that no push takes a page
    /// fault, at the cost of the whole queue's memory from the start.
    #[must_use]
    pub fn with_queue_memory(mut self, memory: QueueMemory) -> Self {
        self.queue_memory = memory;
        self
    }

    /// Into how many sub-queues (shards) the queue is cut. Default 1 (the
    /// [`OtlpExporter`](crate::OtlpExporter)'s span and log queues:
    /// [`DEFAULT_QUEUE_SHARDS`](crate::sdk::OtlpExporterBuilder::DEFAULT_QUEUE_SHARDS)).
    ///
    /// Each producer thread pushes into one shard, picked by an index the
    /// thread takes on its first push (thread `i` of the process into shard
    /// `i % shards`), so producers on different cores do not take turns on
    /// one queue tail. Each thread's messages stay in order (one thread, one
    /// shard), and a flush barrier covers every shard. The capacity is
    /// split: each shard holds `queue_capacity / shards` messages (the first
    /// `queue_capacity % shards` one more), so a producer thread alone can
    /// fill only its shard's share before its pushes are dropped, counted as
    /// with one queue.
    #[must_use]
    pub fn with_queue_shards(mut self, shards: usize) -> Self {
        self.queue_shards = shards;
        self
    }

    /// Into how many shards the queue is cut.
    pub fn queue_shards(&self) -> usize {
        self.queue_shards
    }

    /// The queue capacity.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The batch size in bytes; 0 when batches are cut by count only.
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// The flush interval.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// The overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// When the queue's memory is committed.
    pub fn queue_memory(&self) -> QueueMemory {
        self.queue_memory
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A [`SinkConfigError`] naming the setting and its bad value: a zero queue
    /// capacity, batch size, shard count or flush interval, a queue capacity
    /// above [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY), or more
    /// shards than the capacity or [`MAX_QUEUE_SHARDS`](Self::MAX_QUEUE_SHARDS).
    pub fn validate(&self) -> Result<(), SinkConfigError> {
        const POSITIVE: &str = "it must be greater than zero";
        if self.queue_capacity == 0 {
            return Err(SinkConfigError::new("queue_capacity", "0", POSITIVE));
        }
        if self.queue_capacity > Self::MAX_QUEUE_CAPACITY {
            return Err(SinkConfigError::new(
                "queue_capacity",
                self.queue_capacity.to_string(),
                "it must be at most 2^32 (SinkConfig::MAX_QUEUE_CAPACITY)",
            ));
        }
        if self.queue_shards == 0 {
            return Err(SinkConfigError::new("queue_shards", "0", POSITIVE));
        }
        if self.queue_shards > self.queue_capacity.min(Self::MAX_QUEUE_SHARDS) {
            return Err(SinkConfigError::new(
                "queue_shards",
                self.queue_shards.to_string(),
                "it must be at most the queue capacity and at most 64 (SinkConfig::MAX_QUEUE_SHARDS)",
            ));
        }
        if self.batch_size == 0 {
            return Err(SinkConfigError::new("batch_size", "0", POSITIVE));
        }
        if self.flush_interval.is_zero() {
            return Err(SinkConfigError::new("flush_interval", format!("{:?}", self.flush_interval), POSITIVE));
        }
        Ok(())
    }

    /// The largest queue capacity. The queue's slots are allocated when the
    /// sink starts, `queue_capacity` times (the size of a message plus 8
    /// bytes), and never more; [`QueueMemory`] says when that memory is
    /// committed.
    pub const MAX_QUEUE_CAPACITY: usize = 1 << 32;

    /// The most shards a queue may be cut into
    /// ([`with_queue_shards`](Self::with_queue_shards)).
    pub const MAX_QUEUE_SHARDS: usize = 64;
}

/// A [`SinkConfig`] setting out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfigError {
    setting: &'static str,
    value: String,
    reason: &'static str,
}

impl SinkConfigError {
    pub(crate) fn new(setting: &'static str, value: impl Into<String>, reason: &'static str) -> Self {
        Self { setting, value: value.into(), reason }
    }

    /// The name of the bad setting.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// The bad value, as text.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for SinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid sink setting {} = {}: {}", self.setting, self.value, self.reason)
    }
}

impl std::error::Error for SinkConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let c = SinkConfig::default();
        assert_eq!(c.queue_capacity(), 10_000);
        assert_eq!(c.batch_size(), 256);
        assert_eq!(c.batch_bytes(), 0);
        assert_eq!(c.flush_interval(), Duration::from_millis(100));
        assert_eq!(c.overflow(), Overflow::Drop);
        assert_eq!(c.queue_memory(), QueueMemory::Lazy);
        assert_eq!(c.queue_shards(), 1);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.with_queue_memory(QueueMemory::Resident).queue_memory(), QueueMemory::Resident);
    }

    #[test]
    fn zero_settings_are_named_in_the_error() {
        let err = SinkConfig::default().with_batch_size(0).validate().unwrap_err();
        assert_eq!(err.setting(), "batch_size");
        assert_eq!(err.to_string(), "invalid sink setting batch_size = 0: it must be greater than zero");

        let err = SinkConfig::default().with_queue_capacity(0).validate().unwrap_err();
        assert_eq!(err.setting(), "queue_capacity");

        let err = SinkConfig::default().with_flush_interval(Duration::ZERO).validate().unwrap_err();
        assert_eq!((err.setting(), err.value()), ("flush_interval", "0ns"));
    }

    #[test]
    fn a_shard_count_out_of_range_is_named_in_the_error() {
        let err = SinkConfig::default().with_queue_shards(0).validate().unwrap_err();
        assert_eq!((err.setting(), err.value()), ("queue_shards", "0"));
        let err = SinkConfig::default().with_queue_capacity(4).with_queue_shards(5).validate().unwrap_err();
        assert_eq!((err.setting(), err.value()), ("queue_shards", "5"));
        let err = SinkConfig::default().with_queue_shards(65).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid sink setting queue_shards = 65: it must be at most the queue capacity and at most 64 \
             (SinkConfig::MAX_QUEUE_SHARDS)"
        );
        assert_eq!(SinkConfig::default().with_queue_capacity(8).with_queue_shards(8).validate(), Ok(()));
    }

    #[test]
    fn huge_capacity_is_refused_not_a_panic() {
        let err = SinkConfig::default().with_queue_capacity(usize::MAX).validate().unwrap_err();
        assert_eq!(err.setting(), "queue_capacity");
        assert!(err.to_string().contains(&usize::MAX.to_string()), "{err}");
    }
}
