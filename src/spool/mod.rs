//! The spool's storage layer: a durable, append-only queue of encoded
//! export requests in one directory per signal.
//!
//! Synchronous `std::fs` code: call it from `spawn_blocking` or a thread of
//! its own, never on an async worker. It knows nothing of OTLP, encoding or
//! transports: a record is opaque bytes plus the count of telemetry items
//! they carry (for accounting).
//!
//! ```text
//! <dir>/                     mode 0700, owned by this user, writable by nobody else
//!   lock                     an exclusive advisory lock for the spool's lifetime (holder's pid inside)
//!   cursor                   the last settled sequence number (temp + rename + fsync dir)
//!   00000000000000000001.seg segment: header + records, named by its first sequence number
//!   00000000000000000417.seg files mode 0600
//! ```
//!
//! The format is in [`format`](mod@format)'s docs. Sequence numbers start at 1 and rise
//! by one per appended record, across segments and restarts, so that a gap
//! between two valid records counts the records lost there exactly.
//!
//! ## Levels
//!
//! - [`Spool::append`] hands the record to the OS in one `write` of a
//!   fully built buffer: it survives a crash of the process (the page cache
//!   keeps it), not a power loss.
//! - [`Spool::sync`] fsyncs every segment written since the last one, and
//!   the directory when files came or went: everything appended before it
//!   survives a power loss. This is the `Persisted` level.
//! - [`Spool::settle`] marks a record done (acknowledged, rejected or
//!   failed for good), in any order. The cursor moves over the contiguous
//!   prefix of settled records; a segment all of whose records are below it
//!   is deleted (the cursor is persisted first).
//!
//! ## Cursor persistence
//!
//! Writing the cursor costs two fsyncs (file and directory). `settle` and
//! `sync` write it at most once per [`SpoolOptions::cursor_interval`] (a
//! `Persisted` flush is about the records, so it does not pay for the
//! cursor each time), and always before deleting a segment; `close` writes
//! it whenever it moved.
//! After a crash, records settled since the last write are delivered again:
//! delivery is at least once, and the re-sends are bounded by one interval
//! of acknowledgements (plus the records in flight). The cursor file also
//! holds the last sequence number handed out for delivery, so that the
//! next process can tell a re-send ([`Record::resent`],
//! [`Recovered::sent_before`]) from a first send.
//!
//! ## Recovery ([`Spool::open`])
//!
//! Segments are read in order. Each record's CRC32C is checked; at a bad
//! one the scan tries every following byte offset until a frame checks
//! (see [`format::scan`]), so no valid record is skipped. A damaged end of
//! the last segment (a crash mid-write: torn; or a whole frame that fails
//! its checksum: corrupt) is truncated at the last valid record. A segment
//! with another magic or an unknown version is left alone and reported.
//! Records older than `max_record_age` are dropped. Every loss is counted
//! in [`Recovered`]. New records always go to a new segment, so recovery
//! never appends after bytes it could not read.
//!
//! ## A full spool
//!
//! The default policy is [`FullPolicy::EvictOldest`]: the spool holds the
//! most recent `max_bytes` of telemetry. An outage long enough to fill the
//! spool is long enough that its oldest data is the first a collector
//! refuses (many backends refuse points hours old, which is why the spool
//! has an age bound at all), while the newest is what dashboards and alerts
//! need when the collector returns; a cumulative metric's newest point also
//! carries everything its older points held. Dropping the newest instead
//! would keep, through a long outage, data that expires at replay and
//! refuse the data that would still be accepted. Both policies count every
//! lost record and item; `DropNewest` is there for backends that need the
//! start of an incident more than its end.

mod error;
mod format;
mod fsio;

#[cfg(all(test, unix))]
mod child_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub(crate) use error::{SegmentHeaderProblem, SpoolError};
pub(crate) use format::Lost;
pub(crate) use fsio::CursorRead;
use fsio::{SegmentWrite, WriterFactory};

/// What [`Spool::append`] does when a record does not fit in `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum FullPolicy {
    /// Refuse the new record ([`SpoolError::Full`]), counted in
    /// [`SpoolStats::refused`].
    DropNewest,
    /// Delete the oldest whole segment until the record fits; its records
    /// not yet handed out are counted in [`SpoolStats::evicted`]. The
    /// default: see the module's docs for why.
    #[default]
    EvictOldest,
}

/// The spool's bounds and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpoolOptions {
    /// The most bytes the spool's segments may hold. At least 4096.
    pub(crate) max_bytes: u64,
    /// Records older than this (by their write time) are dropped at replay
    /// and when read for delivery; `None`: no age bound.
    pub(crate) max_record_age: Option<Duration>,
    /// What a full spool does.
    pub(crate) full_policy: FullPolicy,
    /// A segment is closed and a new one started once it reaches this size
    /// (a single larger record gets a segment of its own). Capped at a
    /// quarter of `max_bytes`, so that eviction frees space in steps.
    /// At least 4096.
    pub(crate) segment_bytes: u64,
    /// The least time between two cursor writes made by `settle`.
    /// `Duration::ZERO`: every settle that moves the cursor writes it.
    pub(crate) cursor_interval: Duration,
}

impl Default for SpoolOptions {
    /// 256 MiB in 8 MiB segments, records dropped after 24 hours, evict
    /// oldest, the cursor written at most once a second.
    fn default() -> Self {
        SpoolOptions {
            max_bytes: 256 << 20,
            max_record_age: Some(Duration::from_secs(24 * 3600)),
            full_policy: FullPolicy::EvictOldest,
            segment_bytes: 8 << 20,
            cursor_interval: Duration::from_secs(1),
        }
    }
}

/// A record read for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Its sequence number: pass it to [`Spool::settle`].
    pub(crate) seq: u64,
    /// How many telemetry items the payload carries.
    pub(crate) items: u32,
    /// When it was appended (unix milliseconds).
    pub(crate) written_ms: u64,
    /// Whether a previous process appended it (a replay).
    pub(crate) replayed: bool,
    /// Whether a previous process had handed it out already: sending it
    /// is a re-send (at least once). Known as far as that process's last
    /// cursor write: a record handed out after it is not marked.
    pub(crate) resent: bool,
    /// The payload as appended.
    pub(crate) payload: Bytes,
}

/// A count of records and of the items they carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Records.
    pub(crate) records: u64,
    /// Items in them.
    pub(crate) items: u64,
}

impl Counts {
    fn add(&mut self, items: u32) {
        self.records += 1;
        self.items += u64::from(items);
    }
    fn sub(&mut self, items: u32) {
        self.records -= 1;
        self.items -= u64::from(items);
    }
}

/// What [`Spool::open`] found on disk.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Records (and items) left to deliver, in order from the cursor.
    pub(crate) pending: Counts,
    /// Of `pending`, those an earlier process had handed out for delivery
    /// (as far as its last cursor write says): their delivery is a re-send.
    pub(crate) sent_before: Counts,
    /// The damaged end of the last segment, cut by a crash mid-write;
    /// truncated.
    pub(crate) torn: Lost,
    /// Records whose checksum failed, or whose sequence numbers are
    /// missing between valid records; skipped.
    pub(crate) corrupt: Lost,
    /// Records dropped for `max_record_age`.
    pub(crate) too_old: Counts,
    /// Records missing between the cursor and the first segment: segments
    /// deleted by something else than this spool.
    pub(crate) missing: u64,
    /// Segments left alone because their header is not one this build
    /// reads, each with its error ([`SpoolError::UnknownSegment`]). Their
    /// records are neither read, counted nor deleted. The cursor still
    /// passes their sequence numbers as later records settle: a build that
    /// reads them must not take the cursor as covering them.
    pub(crate) unknown_segments: Vec<SpoolError>,
    /// What the cursor file held: a missing or damaged one means delivery
    /// starts at the first record on disk.
    pub(crate) cursor: Option<CursorRead>,
}

/// The spool's counters since it was opened (the gauges at the end are
/// the state now). They add up, records and items alike:
///
/// ```text
/// Recovered::pending + appended
///     == settled + evicted + evicted_in_flight + expired + damaged_read + pending
/// ```
///
/// (`refused` and `write_failed` records were never in the spool.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpoolStats {
    /// Records appended.
    pub(crate) appended: Counts,
    /// Bytes appended, frames included.
    pub(crate) appended_bytes: u64,
    /// Completed `sync` calls.
    pub(crate) syncs: u64,
    /// Records settled.
    pub(crate) settled: Counts,
    /// Records deleted unsent by `EvictOldest`.
    pub(crate) evicted: Counts,
    /// Records handed out and not settled when `EvictOldest` deleted their
    /// segment: their `settle` is ignored, their outcome is the caller's
    /// to count (it holds their payload).
    pub(crate) evicted_in_flight: Counts,
    /// Segments deleted by `EvictOldest`.
    pub(crate) evicted_segments: u64,
    /// Records refused: the spool was full under `DropNewest`, or the
    /// record could never fit.
    pub(crate) refused: Counts,
    /// Records the disk refused (ENOSPC, EFBIG) or that failed to write;
    /// none of their bytes stayed.
    pub(crate) write_failed: Counts,
    /// Records dropped when read for delivery, older than `max_record_age`.
    pub(crate) expired: Counts,
    /// Records dropped when read for delivery, their checksum failing
    /// (damaged on disk after they were recovered or written).
    pub(crate) damaged_read: Counts,
    /// Cursor writes.
    pub(crate) cursor_writes: u64,
    /// Now: bytes in the spool's readable segments.
    pub(crate) bytes_on_disk: u64,
    /// Now: records not settled (unsent or in flight).
    pub(crate) pending: Counts,
    /// Now: readable segments.
    pub(crate) segments: u64,
    /// Now: the last settled sequence number (all below are settled).
    pub(crate) cursor: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unsent,
    InFlight,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct RecMeta {
    seq: u64,
    offset: u64,
    len: u32,
    items: u32,
    written_ms: u64,
    state: State,
}

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    path: PathBuf,
    /// Bytes of valid content: header and whole records.
    len: u64,
    /// Bytes fsynced (for the tests' crash imitation).
    synced_len: u64,
    records: Vec<RecMeta>,
    /// Records at the front that the cursor has passed.
    passed: usize,
}

/// A durable queue of records in one directory. See the module docs.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    opts: SpoolOptions,
    /// Held for the spool's lifetime: the directory's lock.
    _lock: File,
    /// Readable segments in order; when `writer` is some, the last one is
    /// the segment it appends to.
    segments: VecDeque<Segment>,
    writer: Option<Box<dyn SegmentWrite>>,
    /// Writers of segments closed since the last sync, to fsync there
    /// (first sequence number, path, writer).
    unsynced: Vec<(u64, PathBuf, Box<dyn SegmentWrite>)>,
    /// Segments whose fsync failed (first sequence number, path).
    fsync_failed: Vec<(u64, PathBuf)>,
    /// Files were created or removed since the last directory fsync.
    dir_dirty: bool,
    factory: WriterFactory,
    /// The sequence number of the next append.
    next_seq: u64,
    /// Every record with a sequence number at or below it is settled.
    cursor: u64,
    /// The cursor as on disk.
    persisted_cursor: u64,
    /// The last sequence number handed out, by this process or (as far as
    /// the cursor file says) an earlier one: written with the cursor.
    sent_through: u64,
    /// `sent_through` as on disk.
    persisted_sent: u64,
    /// Records up to this one were handed out by an earlier process, as
    /// far as its cursor file says: handing them out again is a re-send.
    resend_through: u64,
    last_cursor_write: Instant,
    /// The next record `next_unsent` may hand out is at or above this.
    read_seq: u64,
    /// Records up to this one were found on disk at open.
    replay_through: u64,
    /// Every record up to this one is fsynced.
    durable_through: u64,
    /// The segment last read from, by first sequence number.
    reader: Option<(u64, File)>,
    buf: Vec<u8>,
    stats: SpoolStats,
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    #[cfg(test)]
    let now = now + tests::CLOCK_SKEW_MS.get();
    now
}

fn too_old(written_ms: u64, now: u64, age: Option<Duration>) -> bool {
    age.is_some_and(|a| now.saturating_sub(written_ms) > a.as_millis() as u64)
}

const MIN_BYTES: u64 = 4096;

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, takes its lock and
    /// recovers what a previous process left.
    ///
    /// # Errors
    ///
    /// [`SpoolError::InvalidOption`]; [`SpoolError::UnsafePermissions`]
    /// for a directory of another user or writable by others;
    /// [`SpoolError::Locked`] when another handle holds it;
    /// [`SpoolError::Io`] naming the file.
    pub(crate) fn open(dir: impl AsRef<Path>, opts: SpoolOptions) -> Result<(Spool, Recovered), SpoolError> {
        Self::open_with(dir.as_ref(), opts, fsio::std_writer)
    }

    /// [`Spool::open`] with the segment writers made by `factory`: the
    /// tests' fault injection.
    fn open_with(dir: &Path, mut opts: SpoolOptions, factory: WriterFactory) -> Result<(Spool, Recovered), SpoolError> {
        if opts.max_bytes < MIN_BYTES {
            return Err(SpoolError::InvalidOption {
                name: "max_bytes",
                value: opts.max_bytes,
                expected: "at least 4096",
            });
        }
        if opts.segment_bytes < MIN_BYTES {
            return Err(SpoolError::InvalidOption {
                name: "segment_bytes",
                value: opts.segment_bytes,
                expected: "at least 4096",
            });
        }
        opts.segment_bytes = opts.segment_bytes.min(opts.max_bytes / 4);
        fsio::prepare_dir(dir)?;
        let lock = fsio::lock(dir)?;
        fsio::remove(&dir.join(fsio::CURSOR_TMP))?;
        let (cursor_read, sent_before) = fsio::read_cursor(dir)?;
        let cursor = match cursor_read {
            CursorRead::Found(c) => c,
            CursorRead::Missing | CursorRead::Damaged => 0,
        };
        let mut rec = Recovered { cursor: Some(cursor_read), ..Recovered::default() };
        let now = now_ms();
        let listed = fsio::list_segments(dir)?;
        let mut segments = VecDeque::new();
        let mut dir_dirty = false;
        let mut max_seq = cursor;
        let mut first_known: Option<u64> = None;
        for (i, (name_seq, path)) in listed.iter().enumerate() {
            let last = i + 1 == listed.len();
            let next_name = listed.get(i + 1).map(|(s, _)| *s);
            let buf = std::fs::read(path).map_err(|e| SpoolError::io("read segment", path, e))?;
            let header = match format::read_header(&buf) {
                format::HeaderRead::Ok(h) if h.first_seq == *name_seq => h,
                format::HeaderRead::Torn => {
                    // Its creation was cut by a crash: it holds nothing.
                    fsio::remove(path)?;
                    dir_dirty = true;
                    continue;
                }
                other => {
                    let found = match other {
                        format::HeaderRead::Ok(h) => {
                            SegmentHeaderProblem::FirstSeq { header: h.first_seq, name: *name_seq }
                        }
                        format::HeaderRead::BadMagic(m) => SegmentHeaderProblem::Magic(m),
                        format::HeaderRead::BadVersion(v) => SegmentHeaderProblem::Version(v),
                        format::HeaderRead::Torn => unreachable!("handled above"),
                    };
                    let err = SpoolError::UnknownSegment { path: path.clone(), found };
                    tracing::warn!(error = %err, "spool: segment not read");
                    rec.unknown_segments.push(err);
                    // New segments must sort after it, with other names.
                    max_seq = max_seq.max(*name_seq);
                    continue;
                }
            };
            first_known.get_or_insert(header.first_seq);
            let scan = format::scan(&buf, header.first_seq, cursor, if last { None } else { next_name });
            rec.corrupt.add(scan.corrupt);
            let mut len = buf.len() as u64;
            if scan.tail.is_none() {
                // What a crashed process left may be in the page cache
                // only: make it as durable as what this one appends.
                std::fs::File::open(path).and_then(|f| f.sync_data()).map_err(|e| SpoolError::io("fsync", path, e))?;
            }
            if let Some(tail) = scan.tail {
                if tail.whole || !last {
                    rec.corrupt.add(tail.lost);
                } else {
                    rec.torn.add(tail.lost);
                }
                if last {
                    // Cut the damage off, so that no later open counts it again.
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| SpoolError::io("open segment", path, e))?;
                    f.set_len(tail.offset)
                        .and_then(|()| f.sync_data())
                        .map_err(|e| SpoolError::io("truncate segment", path, e))?;
                    len = tail.offset;
                }
            }
            let records: Vec<RecMeta> = scan
                .records
                .iter()
                .map(|r| {
                    let f = r.frame;
                    let state = if f.seq <= cursor {
                        State::Done
                    } else if too_old(f.written_ms, now, opts.max_record_age) {
                        rec.too_old.add(f.items);
                        State::Done
                    } else {
                        rec.pending.add(f.items);
                        if f.seq <= sent_before {
                            rec.sent_before.add(f.items);
                        }
                        State::Unsent
                    };
                    RecMeta {
                        seq: f.seq,
                        offset: r.offset,
                        len: f.len,
                        items: f.items,
                        written_ms: f.written_ms,
                        state,
                    }
                })
                .collect();
            let Some(r) = records.last() else {
                // Nothing readable (its losses are counted above): it goes,
                // also so that no new segment wants its name.
                fsio::remove(path)?;
                dir_dirty = true;
                continue;
            };
            max_seq = max_seq.max(r.seq);
            segments.push_back(Segment {
                first_seq: header.first_seq,
                path: path.clone(),
                len,
                synced_len: len,
                records,
                passed: 0,
            });
        }
        if let (CursorRead::Found(c), Some(first), true) = (cursor_read, first_known, rec.unknown_segments.is_empty()) {
            rec.missing = first.saturating_sub(c.saturating_add(1));
        }
        for l in [&rec.torn, &rec.corrupt] {
            if l.records > 0 {
                tracing::warn!(records = l.records, items = l.items, bytes = l.bytes, dir = %dir.display(), "spool: damaged records skipped");
            }
        }
        let bytes = segments.iter().map(|s| s.len).sum();
        let mut spool = Spool {
            dir: dir.to_owned(),
            opts,
            _lock: lock,
            segments,
            writer: None,
            unsynced: Vec::new(),
            fsync_failed: Vec::new(),
            dir_dirty,
            factory,
            next_seq: max_seq + 1,
            cursor,
            persisted_cursor: cursor,
            sent_through: sent_before.max(cursor),
            persisted_sent: sent_before,
            resend_through: sent_before,
            last_cursor_write: Instant::now(),
            read_seq: cursor + 1,
            replay_through: max_seq,
            durable_through: max_seq,
            reader: None,
            buf: Vec::new(),
            stats: SpoolStats { pending: rec.pending, bytes_on_disk: bytes, ..SpoolStats::default() },
        };
        // Settled and too old records at the front: move the cursor over
        // them and delete the segments they fill.
        spool.advance(true)?;
        if spool.dir_dirty {
            fsio::sync_dir(&spool.dir)?;
            spool.dir_dirty = false;
        }
        Ok((spool, rec))
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last sequence number up to which every record is fsynced: by
    /// the last successful [`Spool::sync`], or found (and fsynced) at
    /// open. With the sequence number `append` returned, it tells whether
    /// a record is `Persisted`.
    pub(crate) fn durable_through(&self) -> u64 {
        self.durable_through
    }

    /// The sequence number of the last record appended (or found at
    /// open); 0 when there was none.
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether record `seq` is still to be settled: not settled, dropped or
    /// evicted. A caller holding a record in flight asks before sending it
    /// again.
    pub(crate) fn is_pending(&self, seq: u64) -> bool {
        if seq <= self.cursor {
            return false;
        }
        let si = self.segments.partition_point(|s| s.first_seq <= seq);
        let Some(seg) = si.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return false;
        };
        seg.records.binary_search_by_key(&seq, |r| r.seq).is_ok_and(|ri| seg.records[ri].state != State::Done)
    }

    /// The records (and items) at or below `seq` still to be settled.
    pub(crate) fn pending_through(&self, seq: u64) -> Counts {
        let mut out = Counts::default();
        for seg in self.segments.iter().take_while(|s| s.first_seq <= seq) {
            for r in seg.records[seg.passed..].iter().take_while(|r| r.seq <= seq) {
                if r.state != State::Done {
                    out.add(r.items);
                }
            }
        }
        out
    }

    /// The counters and the state now.
    pub(crate) fn stats(&self) -> SpoolStats {
        SpoolStats { segments: self.segments.len() as u64, cursor: self.cursor, ..self.stats }
    }

    /// Appends one record carrying `items` telemetry items, returning its
    /// sequence number. It is one `write` of the whole frame; on failure
    /// the file is cut back to where the record started.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Full`] (policy `DropNewest`), [`SpoolError::RecordTooLarge`]:
    /// counted in `refused`. [`SpoolError::DiskFull`] (under
    /// `EvictOldest` only once no segment is left to evict) or
    /// [`SpoolError::Io`]: counted in `write_failed`.
    pub(crate) fn append(&mut self, payload: &[u8], items: u32) -> Result<u64, SpoolError> {
        let max = (self.opts.max_bytes - (format::HEADER_LEN + format::FRAME_LEN) as u64).min(u64::from(u32::MAX));
        if payload.len() as u64 > max {
            self.stats.refused.add(items);
            return Err(SpoolError::RecordTooLarge { len: payload.len(), max });
        }
        let frame = (format::FRAME_LEN + payload.len()) as u64;
        loop {
            let need = frame + if self.needs_roll(frame) { format::HEADER_LEN as u64 } else { 0 };
            if self.stats.bytes_on_disk + need <= self.opts.max_bytes {
                break;
            }
            let freed = match self.opts.full_policy {
                FullPolicy::DropNewest => false,
                FullPolicy::EvictOldest => self.make_room()?,
            };
            if !freed {
                self.stats.refused.add(items);
                return Err(SpoolError::Full {
                    needed: need,
                    used: self.stats.bytes_on_disk,
                    max_bytes: self.opts.max_bytes,
                });
            }
        }
        let seq = self.next_seq;
        let written_ms = now_ms();
        self.buf.clear();
        format::encode_record(&mut self.buf, seq, written_ms, items, payload);
        let mut retried = false;
        loop {
            match self.write_record() {
                Ok(offset) => break self.appended(seq, offset, payload.len(), items, written_ms),
                Err(e) => {
                    // A full disk under `EvictOldest`: one closed segment
                    // goes and the write is tried once more. Never the
                    // active segment, and never more than one per record:
                    // a disk filled by others must not wipe the spool.
                    let retry = !retried
                        && matches!(e, SpoolError::DiskFull { .. })
                        && self.opts.full_policy == FullPolicy::EvictOldest
                        && self.segments.len() > usize::from(self.writer.is_some());
                    if !retry {
                        self.stats.write_failed.add(items);
                        return Err(e);
                    }
                    retried = true;
                    self.evict_front()?;
                }
            }
        }
        Ok(seq)
    }

    /// Whether a frame of `frame` bytes goes to a new segment.
    fn needs_roll(&self, frame: u64) -> bool {
        match (&self.writer, self.segments.back()) {
            (Some(_), Some(seg)) => !seg.records.is_empty() && seg.len + frame > self.opts.segment_bytes,
            _ => true,
        }
    }

    /// Writes `self.buf` at the end of the segment it belongs in, rolling
    /// first if needed; returns its offset.
    fn write_record(&mut self) -> Result<u64, SpoolError> {
        if self.needs_roll(self.buf.len() as u64) {
            self.roll()?;
        }
        let seg = self.segments.back_mut().expect("an active segment after roll");
        let w = self.writer.as_mut().expect("an active writer after roll");
        let start = seg.len;
        if let Err(e) = fsio::write_all(w.as_mut(), &self.buf) {
            if let Err(t) = w.set_len(start) {
                // The file keeps a partial record: append no more to it.
                // Its valid records stay readable; recovery will skip the
                // partial one (counting it as lost: it never got a sequence
                // number, so it is counted as damage, not double counted).
                tracing::error!(path = %seg.path.display(), error = %t, "spool: cannot cut a failed write back");
                let (first, path) = (seg.first_seq, seg.path.clone());
                let w = self.writer.take().expect("checked");
                self.unsynced.push((first, path, w));
            }
            return Err(SpoolError::io("append to", seg.path.clone(), e));
        }
        Ok(start)
    }

    fn appended(&mut self, seq: u64, offset: u64, len: usize, items: u32, written_ms: u64) {
        let frame = (format::FRAME_LEN + len) as u64;
        let seg = self.segments.back_mut().expect("written to it");
        seg.records.push(RecMeta { seq, offset, len: len as u32, items, written_ms, state: State::Unsent });
        seg.len += frame;
        self.next_seq += 1;
        self.stats.bytes_on_disk += frame;
        self.stats.appended.add(items);
        self.stats.appended_bytes += frame;
        self.stats.pending.add(items);
    }

    /// Closes the active segment (its fsync waits for the next `sync`) and
    /// creates the next one.
    fn roll(&mut self) -> Result<(), SpoolError> {
        if let Some(w) = self.writer.take() {
            let seg = self.segments.back().expect("the writer's segment");
            if seg.len > seg.synced_len {
                self.unsynced.push((seg.first_seq, seg.path.clone(), w));
            }
        }
        let path = self.dir.join(fsio::segment_name(self.next_seq));
        let header =
            format::Header { version: format::VERSION, created_ms: now_ms(), first_seq: self.next_seq }.encode();
        let w = fsio::create_segment(&path, &header, self.factory)?;
        self.dir_dirty = true;
        self.segments.push_back(Segment {
            first_seq: self.next_seq,
            path,
            len: header.len() as u64,
            synced_len: 0,
            records: Vec::new(),
            passed: 0,
        });
        self.stats.bytes_on_disk += header.len() as u64;
        self.writer = Some(w);
        Ok(())
    }

    /// Evicts the oldest segment if one can go: `false` when only the
    /// active segment, empty, is left.
    fn make_room(&mut self) -> Result<bool, SpoolError> {
        let active = usize::from(self.writer.is_some());
        if self.segments.len() > active {
            self.evict_front()?;
            return Ok(true);
        }
        if self.segments.back().is_some_and(|s| !s.records.is_empty()) {
            // Only the active segment holds records: close it so that it
            // can go (the next append creates a new one).
            self.writer = None;
            self.evict_front()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Deletes the oldest segment. Its records not yet handed out are
    /// counted as evicted; those in flight are left to their `settle`
    /// (their payload is with the caller, who counts their outcome). The
    /// cursor moves past the whole segment and is persisted before the
    /// file goes, so that a restart does not count its records as missing.
    fn evict_front(&mut self) -> Result<(), SpoolError> {
        let seg = self.segments.front().expect("a segment to evict");
        let through = match self.segments.get(1) {
            Some(next) => next.first_seq - 1,
            None => self.next_seq - 1,
        };
        let mut evicted = Counts::default();
        for r in &seg.records {
            match r.state {
                State::Unsent => evicted.add(r.items),
                State::InFlight => {
                    self.stats.pending.sub(r.items);
                    self.stats.evicted_in_flight.add(r.items);
                }
                State::Done => {}
            }
        }
        self.stats.pending.records -= evicted.records;
        self.stats.pending.items -= evicted.items;
        self.stats.evicted.records += evicted.records;
        self.stats.evicted.items += evicted.items;
        self.stats.evicted_segments += 1;
        tracing::warn!(path = %seg.path.display(), records = evicted.records, items = evicted.items, "spool full: oldest segment evicted");
        self.cursor = self.cursor.max(through);
        self.read_seq = self.read_seq.max(through + 1);
        self.persist_cursor()?;
        let seg = self.segments.pop_front().expect("checked");
        self.drop_segment(seg)
    }

    fn drop_segment(&mut self, seg: Segment) -> Result<(), SpoolError> {
        if self.reader.as_ref().is_some_and(|(s, _)| *s == seg.first_seq) {
            self.reader = None;
        }
        self.stats.bytes_on_disk -= seg.len;
        self.dir_dirty = true;
        fsio::remove(&seg.path)
    }

    fn persist_cursor(&mut self) -> Result<(), SpoolError> {
        if self.cursor != self.persisted_cursor || self.sent_through != self.persisted_sent {
            fsio::write_cursor(&self.dir, self.cursor, self.sent_through)?;
            self.persisted_cursor = self.cursor;
            self.persisted_sent = self.sent_through;
            self.last_cursor_write = Instant::now();
            self.stats.cursor_writes += 1;
        }
        Ok(())
    }

    /// Moves the cursor over the settled prefix, deletes the segments it
    /// passed (not the active one), and persists the cursor when a segment
    /// goes, when `force`, or when `cursor_interval` has passed.
    fn advance(&mut self, force: bool) -> Result<(), SpoolError> {
        let closed = self.segments.len() - usize::from(self.writer.is_some());
        let mut whole = 0;
        for (i, seg) in self.segments.iter_mut().enumerate() {
            while let Some(r) = seg.records.get(seg.passed).filter(|r| r.state == State::Done) {
                self.cursor = self.cursor.max(r.seq);
                seg.passed += 1;
            }
            if seg.passed < seg.records.len() {
                break;
            }
            if i < closed {
                whole += 1;
            }
        }
        if let Some(next) = self.segments.get(whole).filter(|_| whole > 0) {
            // Sequence numbers between the deleted segments and the next
            // (records lost to damage, counted at open) are passed too, so
            // that the next open does not count them again.
            self.cursor = self.cursor.max(next.first_seq - 1);
        }
        if whole > 0 || force || self.last_cursor_write.elapsed() >= self.opts.cursor_interval {
            self.persist_cursor()?;
        }
        for _ in 0..whole {
            let seg = self.segments.pop_front().expect("counted");
            self.drop_segment(seg)?;
        }
        Ok(())
    }

    /// Hands out up to `max` records not handed out before, in sequence
    /// order from the cursor, and marks them in flight. Independent of
    /// settling: records in flight are not handed out again by this handle
    /// (after a restart they are, if not settled). Records older than
    /// `max_record_age`, or whose checksum fails when read back, are
    /// dropped and counted on the way.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Io`] when a segment cannot be read: nothing is lost,
    /// the records stay unsent.
    pub(crate) fn next_unsent(&mut self, max: usize) -> Result<Vec<Record>, SpoolError> {
        let mut out = Vec::new();
        let now = now_ms();
        let mut dropped = false;
        let mut si = self.segments.partition_point(|s| s.first_seq <= self.read_seq).saturating_sub(1);
        while out.len() < max && si < self.segments.len() {
            let seg = &self.segments[si];
            let ri = seg.records.partition_point(|r| r.seq < self.read_seq);
            let Some(r) = seg.records.get(ri).copied() else {
                si += 1;
                continue;
            };
            if r.state != State::Unsent {
                self.read_seq = r.seq + 1;
                continue;
            }
            let state = if too_old(r.written_ms, now, self.opts.max_record_age) {
                self.stats.expired.add(r.items);
                State::Done
            } else {
                if self.reader.as_ref().is_none_or(|(s, _)| *s != seg.first_seq) {
                    self.reader = Some((seg.first_seq, fsio::open_read(&seg.path)?));
                }
                let file = &self.reader.as_ref().expect("opened").1;
                let buf = fsio::read_at(file, &seg.path, r.offset, format::FRAME_LEN + r.len as usize)?;
                if format::check_record(&buf, r.seq) {
                    let payload = Bytes::from(buf).slice(format::FRAME_LEN..);
                    out.push(Record {
                        seq: r.seq,
                        items: r.items,
                        written_ms: r.written_ms,
                        replayed: r.seq <= self.replay_through,
                        resent: r.seq <= self.resend_through,
                        payload,
                    });
                    self.sent_through = self.sent_through.max(r.seq);
                    State::InFlight
                } else {
                    tracing::warn!(path = %seg.path.display(), seq = r.seq, "spool: record damaged on disk, dropped");
                    self.stats.damaged_read.add(r.items);
                    State::Done
                }
            };
            if state == State::Done {
                self.stats.pending.sub(r.items);
                dropped = true;
            }
            self.segments[si].records[ri].state = state;
            self.read_seq = r.seq + 1;
        }
        if dropped {
            self.advance(false)?;
        }
        Ok(out)
    }

    /// Marks a record done: acknowledged, rejected or failed for good. Any
    /// order; a record settled before (or below the cursor, or evicted) is
    /// ignored. Returns whether it was pending.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Io`] when the cursor cannot be written or a segment
    /// removed; the record stays settled.
    pub(crate) fn settle(&mut self, seq: u64) -> Result<bool, SpoolError> {
        if seq <= self.cursor {
            return Ok(false);
        }
        let si = self.segments.partition_point(|s| s.first_seq <= seq);
        let Some(seg) = si.checked_sub(1).and_then(|i| self.segments.get_mut(i)) else {
            return Ok(false);
        };
        let Ok(ri) = seg.records.binary_search_by_key(&seq, |r| r.seq) else {
            return Ok(false);
        };
        let r = &mut seg.records[ri];
        if r.state == State::Done {
            return Ok(false);
        }
        r.state = State::Done;
        let items = r.items;
        self.stats.pending.sub(items);
        self.stats.settled.add(items);
        self.advance(false)?;
        Ok(true)
    }

    /// Makes everything appended so far durable (`Persisted`): fsyncs the
    /// segments written since the last sync and the directory if files
    /// came or went; writes the cursor if it moved and `cursor_interval`
    /// has passed since its last write.
    ///
    /// # Errors
    ///
    /// [`SpoolError::Io`] naming the file. After a failed fsync the active
    /// segment is closed (the kernel may have dropped its dirty pages, so a
    /// later fsync of it proves nothing) and the next append starts a new
    /// one; every later `sync` fails, naming that segment, until it is
    /// gone (settled or evicted): its records are not durable.
    pub(crate) fn sync(&mut self) -> Result<(), SpoolError> {
        // A segment whose fsync failed once stays not durable until it is
        // gone: retrying the fsync would succeed without the lost pages.
        self.fsync_failed.retain(|(first, _)| self.segments.iter().any(|s| s.first_seq == *first));
        if let Some((_, path)) = self.fsync_failed.first() {
            return Err(SpoolError::Io {
                op: "fsync",
                path: path.clone(),
                source: std::io::Error::other("an earlier fsync of it failed: its records are not durable"),
            });
        }
        while let Some((first, path, mut w)) = self.unsynced.pop() {
            if let Err(e) = w.sync_data() {
                self.fsync_failed.push((first, path.clone()));
                return Err(SpoolError::io("fsync", path, e));
            }
        }
        if let (Some(w), Some(seg)) = (self.writer.as_mut(), self.segments.back_mut()) {
            if seg.len > seg.synced_len {
                if let Err(e) = w.sync_data() {
                    self.writer = None;
                    self.fsync_failed.push((seg.first_seq, seg.path.clone()));
                    return Err(SpoolError::io("fsync", seg.path.clone(), e));
                }
                seg.synced_len = seg.len;
            }
        }
        if self.dir_dirty {
            fsio::sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.durable_through = self.next_seq - 1;
        if self.last_cursor_write.elapsed() >= self.opts.cursor_interval {
            self.persist_cursor()?;
        }
        self.stats.syncs += 1;
        Ok(())
    }

    /// Syncs, writes the cursor, and releases the directory. Dropping the spool instead is a
    /// crash as far as the disk is concerned: what was appended is with the
    /// OS (it survives the process, not a power loss), and cursor moves
    /// since its last write are lost (those records are delivered again).
    ///
    /// # Errors
    ///
    /// As [`Spool::sync`].
    pub(crate) fn close(mut self) -> Result<(), SpoolError> {
        self.sync()?;
        self.persist_cursor()
    }

    /// The cursor as on disk.
    #[cfg(test)]
    fn persisted_cursor(&self) -> u64 {
        self.persisted_cursor
    }

    /// The active segment's path, fsynced length and length: for the
    /// tests' imitation of a power loss.
    #[cfg(test)]
    fn unsynced_tail(&self) -> Option<(PathBuf, u64, u64)> {
        self.writer.as_ref()?;
        let seg = self.segments.back()?;
        Some((seg.path.clone(), seg.synced_len, seg.len))
    }
}
