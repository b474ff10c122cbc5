//! The spool's behaviour on real files in scratch directories.

use std::cell::Cell;
use std::fs;
use std::io;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::error::UnsafeReason;
use super::fsio::{self, SegmentWrite};
use super::*;

thread_local! {
    /// Added to the spool's clock on this thread: the age bound's tests.
    pub(super) static CLOCK_SKEW_MS: Cell<u64> = const { Cell::new(0) };
    /// The writes the fault-injecting writer fails next, with ENOSPC.
    static FAIL_WRITES: Cell<u32> = const { Cell::new(0) };
    /// When set, the fault-injecting writer writes this many bytes of the
    /// next write, then fails it with ENOSPC (a short write, then a full disk).
    static PARTIAL_WRITE: Cell<Option<usize>> = const { Cell::new(None) };
    /// The fsyncs the fault-injecting writer fails next, with EIO.
    static FAIL_SYNCS: Cell<u32> = const { Cell::new(0) };
}

#[derive(Debug)]
struct FaultyWriter(Box<dyn SegmentWrite>);

fn faulty(file: fs::File) -> Box<dyn SegmentWrite> {
    Box::new(FaultyWriter(fsio::std_writer(file)))
}

impl SegmentWrite for FaultyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(n) = PARTIAL_WRITE.take() {
            if n > 0 {
                // The next call fails: the record is half written.
                FAIL_WRITES.set(FAIL_WRITES.get() + 1);
                return self.0.write(&buf[..n.min(buf.len())]);
            }
        }
        if FAIL_WRITES.get() > 0 {
            FAIL_WRITES.set(FAIL_WRITES.get() - 1);
            return Err(io::Error::new(io::ErrorKind::StorageFull, "No space left on device (injected)"));
        }
        self.0.write(buf)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        if FAIL_SYNCS.get() > 0 {
            FAIL_SYNCS.set(FAIL_SYNCS.get() - 1);
            return Err(io::Error::other("I/O error (injected)"));
        }
        self.0.sync_data()
    }
}

pub(super) fn opts() -> SpoolOptions {
    SpoolOptions {
        max_bytes: 1 << 30,
        max_record_age: None,
        full_policy: FullPolicy::EvictOldest,
        segment_bytes: 64 << 10,
        cursor_interval: Duration::ZERO,
    }
}

pub(super) fn payload(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i * 7) as u8).collect()
}

fn open(dir: &Path, o: SpoolOptions) -> (Spool, Recovered) {
    Spool::open(dir, o).expect("open")
}

fn drain(s: &mut Spool) -> Vec<Record> {
    let mut all = Vec::new();
    loop {
        let batch = s.next_unsent(7).expect("next_unsent");
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// The accounting rule of [`SpoolStats`].
fn assert_adds_up(s: &Spool, rec: &Recovered) {
    let st = s.stats();
    let parts = [st.settled, st.evicted, st.evicted_in_flight, st.expired, st.damaged_read, st.pending];
    let out = parts
        .iter()
        .fold(Counts::default(), |a, c| Counts { records: a.records + c.records, items: a.items + c.items });
    let inn =
        Counts { records: rec.pending.records + st.appended.records, items: rec.pending.items + st.appended.items };
    assert_eq!(inn, out, "{st:?}");
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    fsio::list_segments(dir).expect("list").into_iter().map(|(_, p)| p).collect()
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path().join("metrics");
    (t, d)
}

#[test]
fn round_trip_in_order_with_items() {
    let (_t, dir) = scratch();
    let (mut s, rec) = open(&dir, opts());
    assert_eq!(rec.pending, Counts::default());
    assert_eq!(rec.cursor, Some(CursorRead::Missing));
    for i in 1..=10u64 {
        assert_eq!(s.append(&payload(i, 100 + i as usize), i as u32).expect("append"), i);
    }
    let got = drain(&mut s);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    for r in &got {
        assert_eq!(r.payload, payload(r.seq, 100 + r.seq as usize));
        assert_eq!(u64::from(r.items), r.seq);
        assert!(!r.replayed);
    }
    assert!(s.next_unsent(10).expect("next").is_empty(), "nothing is handed out twice");
    let st = s.stats();
    assert_eq!(st.appended, Counts { records: 10, items: 55 });
    assert_eq!(st.pending, Counts { records: 10, items: 55 });
}

#[test]
fn segments_roll_and_settled_ones_are_deleted() {
    let (_t, dir) = scratch();
    let (mut s, _) = open(&dir, SpoolOptions { segment_bytes: 4096, ..opts() });
    for i in 1..=20 {
        s.append(&payload(i, 1000), 1).expect("append");
    }
    // Four 1028-byte frames do not fit with the header: three per segment.
    let files = seg_files(&dir);
    assert_eq!(files.len(), 7, "{files:?}");
    assert_eq!(s.stats().segments, 7);
    let got = drain(&mut s);
    assert_eq!(got.len(), 20);
    for r in got.iter().take(6) {
        assert!(s.settle(r.seq).expect("settle"));
    }
    assert_eq!(seg_files(&dir).len(), 5, "the two settled segments are gone");
    assert_eq!(s.stats().cursor, 6);
    for r in &got[6..] {
        s.settle(r.seq).expect("settle");
    }
    // The active segment stays (it is being appended to), all else goes.
    assert_eq!(seg_files(&dir).len(), 1);
    assert_eq!(s.stats().pending, Counts::default());
    assert_eq!(s.stats().bytes_on_disk, fs::metadata(&seg_files(&dir)[0]).expect("md").len());
    s.close().expect("close");
    // Everything settled: the reopened spool deletes the last one too.
    let (s, rec) = open(&dir, opts());
    assert_eq!(rec.pending, Counts::default());
    assert!(seg_files(&dir).is_empty());
    drop(s);
}

#[test]
fn out_of_order_settles_move_the_cursor_over_the_settled_prefix() {
    let (_t, dir) = scratch();
    let (mut s, _) = open(&dir, opts());
    for i in 1..=5 {
        s.append(&payload(i, 10), 2).expect("append");
    }
    let _ = drain(&mut s);
    assert!(s.settle(3).expect("settle"));
    assert!(s.settle(2).expect("settle"));
    assert_eq!(s.stats().cursor, 0);
    assert!(!s.settle(3).expect("settle"), "settled once only");
    assert!(s.settle(1).expect("settle"));
    assert_eq!(s.stats().cursor, 3);
    assert!(s.settle(5).expect("settle"));
    assert_eq!(s.stats().cursor, 3);
    assert_eq!(s.stats().settled, Counts { records: 4, items: 8 });
    s.close().expect("close");
    let (mut s, rec) = open(&dir, opts());
    // 5 was settled out of order past the cursor: delivered again.
    assert_eq!(rec.pending.records, 2);
    let got = drain(&mut s);
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
    assert!(got.iter().all(|r| r.replayed));
    // New appends continue the sequence.
    assert_eq!(s.append(b"x", 1).expect("append"), 6);
    assert!(!drain(&mut s)[0].replayed);
}

#[test]
fn cursor_writes_are_coalesced_and_a_crash_redelivers_the_unwritten_settles() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { cursor_interval: Duration::from_secs(3600), ..opts() };
    let (mut s, _) = open(&dir, o.clone());
    for i in 1..=4 {
        s.append(&payload(i, 10), 1).expect("append");
    }
    let _ = drain(&mut s);
    s.settle(1).expect("settle");
    s.settle(2).expect("settle");
    s.sync().expect("sync");
    assert_eq!(s.stats().cursor_writes, 0, "coalesced, by settle and sync alike");
    s.close().expect("close"); // writes it
    let (mut s, rec) = open(&dir, o.clone());
    assert_eq!(rec.cursor, Some(CursorRead::Found(2)));
    let _ = drain(&mut s);
    s.settle(3).expect("settle");
    drop(s); // a crash: the cursor at 2 on disk
    let (mut s, rec) = open(&dir, o);
    assert_eq!(rec.cursor, Some(CursorRead::Found(2)));
    assert_eq!(drain(&mut s).iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4], "3 is a re-send");
}

#[test]
fn a_settled_cursor_survives_segments_deleted_before_a_crash() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { segment_bytes: 4096, cursor_interval: Duration::from_secs(3600), ..opts() };
    let (mut s, _) = open(&dir, o.clone());
    for i in 1..=7 {
        s.append(&payload(i, 1000), 1).expect("append");
    }
    let got = drain(&mut s);
    for r in &got[..4] {
        s.settle(r.seq).expect("settle");
    }
    drop(s); // crash; segment 1 (1..=3) was deleted, so the cursor was written first
    let (mut s, rec) = open(&dir, o);
    assert_eq!(rec.missing, 0);
    assert_eq!(rec.cursor, Some(CursorRead::Found(3)));
    assert_eq!(drain(&mut s).iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
}

/// Appends `n` records in segments of 4 KiB; returns their payloads.
fn fill(dir: &Path, n: u64, o: SpoolOptions) -> Vec<Vec<u8>> {
    let (mut s, _) = open(dir, o);
    let p: Vec<Vec<u8>> = (1..=n).map(|i| payload(i, 50 + (i as usize * 37) % 400)).collect();
    for (i, b) in p.iter().enumerate() {
        s.append(b, i as u32 + 1).expect("append");
    }
    s.close().expect("close");
    p
}

/// The records of a segment file as written: (seq, offset, frame length).
fn layout(file: &Path) -> Vec<(u64, u64, u64)> {
    let b = fs::read(file).expect("read");
    let format::HeaderRead::Ok(h) = format::read_header(&b) else { panic!("a segment") };
    let scan = format::scan(&b, h.first_seq, 0, None);
    assert!(scan.tail.is_none() && scan.corrupt.records == 0);
    scan.records.iter().map(|r| (r.frame.seq, r.offset, (format::FRAME_LEN + r.frame.len as usize) as u64)).collect()
}

/// Reopens and checks: each delivered record is intact and in order, and
/// delivered + damaged = `visible` (the records that left any byte on
/// disk), records and items alike (items unless `items_in_doubt`).
fn check_after_damage(dir: &Path, payloads: &[Vec<u8>], visible: u64, items_in_doubt: bool) -> (Recovered, Vec<u64>) {
    let (mut s, rec) = open(dir, SpoolOptions { segment_bytes: 4096, ..opts() });
    let got = drain(&mut s);
    let seqs: Vec<u64> = got.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    for r in &got {
        assert_eq!(r.payload, payloads[r.seq as usize - 1], "record {} intact", r.seq);
        assert_eq!(u64::from(r.items), r.seq);
    }
    let lost = rec.torn.records + rec.corrupt.records;
    assert_eq!(got.len() as u64 + lost, visible, "{rec:?}");
    assert_eq!(rec.pending.records, got.len() as u64);
    // Items: exact for every record whose count could be read.
    let all_items: u64 = (1..=visible).sum();
    let got_items: u64 = got.iter().map(|r| u64::from(r.items)).sum();
    let lost_items = rec.torn.items + rec.corrupt.items;
    if rec.torn.items_unknown + rec.corrupt.items_unknown == 0 && !items_in_doubt {
        assert_eq!(got_items + lost_items, all_items, "{rec:?}");
    } else if !items_in_doubt {
        assert!(got_items + lost_items < all_items, "{rec:?}");
    }
    (rec, seqs)
}

#[test]
fn truncating_the_last_segment_anywhere_loses_only_the_cut_records() {
    let mut rng = StdRng::seed_from_u64(13);
    for round in 0..40 {
        let (_t, dir) = scratch();
        let p = fill(&dir, 30, SpoolOptions { segment_bytes: 4096, ..opts() });
        let files = seg_files(&dir);
        let last = files.last().expect("a segment");
        let recs = layout(last);
        let len = fs::metadata(last).expect("md").len();
        let cut = rng.random_range(format::HEADER_LEN as u64..len);
        fs::OpenOptions::new().write(true).open(last).expect("open").set_len(cut).expect("cut");
        // Records wholly past the cut left no trace: nothing can count them.
        let before = recs.iter().filter(|r| r.1 < cut).count() as u64;
        let mid_record = recs.iter().any(|r| r.1 < cut && cut < r.1 + r.2);
        let visible = recs[0].0 - 1 + before;
        let (rec, seqs) = check_after_damage(&dir, &p, visible, false);
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "round {round}: a prefix");
        assert_eq!(rec.torn.records, u64::from(mid_record), "round {round}: {rec:?}");
        assert_eq!(rec.corrupt.records, 0, "round {round}: {rec:?}");
        // Reopening again finds nothing more to cut, nor to count.
        let (_s, again) = open(&dir, opts());
        assert_eq!((again.torn.records, again.corrupt.records), (0, 0), "round {round}");
    }
}

#[test]
fn flipped_bytes_lose_only_the_records_they_hit() {
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..40 {
        let (_t, dir) = scratch();
        let p = fill(&dir, 30, SpoolOptions { segment_bytes: 4096, ..opts() });
        let files = seg_files(&dir);
        let flips = rng.random_range(1..=4);
        let mut hit = std::collections::BTreeSet::new();
        let mut items_in_doubt = false;
        let layouts: Vec<_> = files.iter().map(|f| layout(f)).collect();
        for _ in 0..flips {
            let fi = rng.random_range(0..files.len());
            let (f, recs) = (&files[fi], &layouts[fi]);
            let mut b = fs::read(f).expect("read");
            // Past the header: a flipped header is the unknown-segment test.
            let at = rng.random_range(format::HEADER_LEN..b.len());
            b[at] ^= 1 << rng.random_range(0..8);
            fs::write(f, &b).expect("write");
            let r = recs.iter().find(|r| r.1 <= at as u64 && (at as u64) < r.1 + r.2).expect("in a record");
            hit.insert(r.0);
            // A flipped item count fails the checksum but reads as a count.
            items_in_doubt |= (r.1 + 24..r.1 + 28).contains(&(at as u64));
        }
        let (rec, seqs) = check_after_damage(&dir, &p, 30, items_in_doubt);
        let want: Vec<u64> = (1..=30).filter(|s| !hit.contains(s)).collect();
        assert_eq!(seqs, want, "round {round}: {rec:?}");
        assert!(rec.unknown_segments.is_empty());
    }
}

#[test]
fn a_deleted_or_damaged_cursor_means_from_the_first_record_on_disk() {
    let (_t, dir) = scratch();
    let (mut s, _) = open(&dir, opts());
    for i in 1..=10 {
        s.append(&payload(i, 20), 1).expect("append");
    }
    let _ = drain(&mut s);
    for seq in 1..=5 {
        s.settle(seq).expect("settle");
    }
    s.close().expect("close");
    fs::remove_file(dir.join(fsio::CURSOR_FILE)).expect("rm cursor");
    let (mut s, rec) = open(&dir, opts());
    assert_eq!(rec.cursor, Some(CursorRead::Missing));
    assert_eq!(rec.pending.records, 10, "at least once: the settled ones again");
    assert_eq!(drain(&mut s).len(), 10);
    drop(s);
    fs::write(dir.join(fsio::CURSOR_FILE), b"garbage").expect("write");
    let (_s, rec) = open(&dir, opts());
    assert_eq!(rec.cursor, Some(CursorRead::Damaged));
    assert_eq!(rec.pending.records, 10);
}

#[test]
fn an_unknown_version_segment_is_left_alone_and_reported() {
    let (_t, dir) = scratch();
    let p = fill(&dir, 30, SpoolOptions { segment_bytes: 4096, ..opts() });
    let files = seg_files(&dir);
    let first = files[0].clone();
    let mut b = fs::read(&first).expect("read");
    b[8..12].copy_from_slice(&99u32.to_le_bytes());
    fs::write(&first, &b).expect("write");
    let (mut s, rec) = open(&dir, opts());
    assert_eq!(rec.unknown_segments.len(), 1);
    let msg = rec.unknown_segments[0].to_string();
    assert!(msg.contains(&first.display().to_string()) && msg.contains("version 99"), "{msg}");
    let second =
        fsio::parse_segment_name(&files[1].file_name().expect("name").to_string_lossy()).expect("a segment name");
    let got = drain(&mut s);
    assert_eq!(got[0].seq, second, "the unknown segment is not read");
    assert_eq!(got.len() as u64, 31 - second);
    for r in &got {
        assert_eq!(r.payload, p[r.seq as usize - 1]);
        s.settle(r.seq).expect("settle");
    }
    let seq = s.append(b"new", 1).expect("append");
    assert_eq!(seq, 31);
    s.close().expect("close");
    assert_eq!(fs::read(&first).expect("still there"), b, "untouched");
    let (_s, rec) = open(&dir, opts());
    assert_eq!(rec.unknown_segments.len(), 1);
    // A foreign file with a segment's name: another magic.
    let foreign = dir.join(fsio::segment_name(1000));
    fs::write(&foreign, b"not a spool segment at all, but long enough").expect("write");
    drop(_s);
    let (_s, rec) = open(&dir, opts());
    assert!(rec
        .unknown_segments
        .iter()
        .any(|e| matches!(e, SpoolError::UnknownSegment { found: SegmentHeaderProblem::Magic(_), .. })));
}

#[test]
fn drop_newest_refuses_and_counts_when_full() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { max_bytes: 16 << 10, segment_bytes: 4096, full_policy: FullPolicy::DropNewest, ..opts() };
    let (mut s, _) = open(&dir, o);
    let mut ok = 0u64;
    let mut refused = 0u64;
    for i in 1..=30 {
        match s.append(&payload(i, 1000), 3) {
            Ok(seq) => {
                ok += 1;
                assert_eq!(seq, ok, "refused appends take no sequence number");
            }
            Err(SpoolError::Full { max_bytes, .. }) => {
                assert_eq!(max_bytes, 16 << 10);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let st = s.stats();
    assert_eq!(st.refused, Counts { records: refused, items: 3 * refused });
    assert!(refused > 0 && ok > 0);
    assert!(st.bytes_on_disk <= 16 << 10);
    let on_disk: u64 = seg_files(&dir).iter().map(|f| fs::metadata(f).expect("md").len()).sum();
    assert_eq!(on_disk, st.bytes_on_disk);
    // The oldest are kept.
    assert_eq!(drain(&mut s).iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=ok).collect::<Vec<_>>());
    let e = s.append(&vec![0; 20 << 10], 1).expect_err("can never fit");
    assert!(matches!(e, SpoolError::RecordTooLarge { len: 20480, .. }), "{e}");
}

#[test]
fn evict_oldest_keeps_the_newest_and_counts_the_evicted() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { max_bytes: 16 << 10, segment_bytes: 4096, ..opts() };
    let (mut s, _) = open(&dir, o.clone());
    for i in 1..=30 {
        assert_eq!(s.append(&payload(i, 1000), 2).expect("append"), i);
        assert!(s.stats().bytes_on_disk <= 16 << 10);
    }
    let st = s.stats();
    assert!(st.evicted_segments > 0);
    let got = drain(&mut s);
    assert_eq!(got.len() as u64 + st.evicted.records, 30);
    assert_eq!(st.evicted.items, 2 * st.evicted.records);
    let first = got[0].seq;
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), (first..=30).collect::<Vec<_>>());
    assert_adds_up(&s, &Recovered::default());
    drop(s);
    // The cursor moved past the evicted segments: nothing is "missing".
    let (_s, rec) = open(&dir, o);
    assert_eq!(rec.missing, 0);
    assert_eq!(rec.pending.records, 31 - first);
}

#[test]
fn eviction_leaves_records_in_flight_to_their_settle() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { max_bytes: 16 << 10, segment_bytes: 4096, ..opts() };
    let (mut s, _) = open(&dir, o);
    for i in 1..=3 {
        s.append(&payload(i, 1000), 1).expect("append");
    }
    let inflight = s.next_unsent(2).expect("next");
    for i in 4..=16 {
        s.append(&payload(i, 1000), 1).expect("append");
    }
    let st = s.stats();
    assert!(st.evicted_segments >= 1);
    // Records 1 and 2 were with the caller: not counted as evicted.
    assert_eq!(st.evicted.records + st.pending.records + 2, 16, "{st:?}");
    assert_eq!(st.evicted_in_flight, Counts { records: 2, items: 2 });
    for r in inflight {
        assert!(!s.settle(r.seq).expect("settle"), "evicted: the caller counts its outcome");
    }
    assert_adds_up(&s, &Recovered::default());
}

#[test]
fn records_older_than_the_age_bound_are_dropped_at_replay_and_at_read() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { max_record_age: Some(Duration::from_secs(3600)), ..opts() };
    let (mut s, _) = open(&dir, o.clone());
    for i in 1..=3 {
        s.append(&payload(i, 10), 4).expect("append");
    }
    // Read time: the clock moves two hours on.
    CLOCK_SKEW_MS.set(2 * 3600 * 1000);
    assert!(s.next_unsent(10).expect("next").is_empty());
    assert_eq!(s.stats().expired, Counts { records: 3, items: 12 });
    assert_adds_up(&s, &Recovered::default());
    assert_eq!(s.stats().cursor, 3);
    CLOCK_SKEW_MS.set(0);
    for i in 4..=5 {
        s.append(&payload(i, 10), 4).expect("append");
    }
    s.close().expect("close");
    // Replay time.
    CLOCK_SKEW_MS.set(2 * 3600 * 1000);
    let (mut s, rec) = open(&dir, o);
    CLOCK_SKEW_MS.set(0);
    assert_eq!(rec.too_old, Counts { records: 2, items: 8 });
    assert_eq!(rec.pending, Counts::default());
    assert!(drain(&mut s).is_empty());
    assert!(seg_files(&dir).is_empty(), "segments of dropped records are deleted");
}

#[test]
fn a_second_open_of_the_same_directory_fails_naming_it() {
    let (_t, dir) = scratch();
    let (s, _) = open(&dir, opts());
    let e = Spool::open(&dir, opts()).expect_err("locked");
    assert!(matches!(e, SpoolError::Locked { holder: Some(pid), .. } if pid == std::process::id()), "{e:?}");
    assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
    drop(s);
    let _again = open(&dir, opts());
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("md").permissions().mode() & 0o7777
}

#[cfg(unix)]
#[test]
fn directories_are_created_0700_and_files_0600() {
    let t = tempfile::tempdir().expect("tempdir");
    let root = t.path().join("spool");
    let dir = root.join("traces");
    let (mut s, _) = open(&dir, opts());
    s.append(b"x", 1).expect("append");
    let _ = drain(&mut s);
    s.settle(1).expect("settle");
    s.sync().expect("sync");
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<PathBuf> = fs::read_dir(&dir).expect("ls").map(|e| e.expect("entry").path()).collect();
    assert_eq!(files.len(), 3, "{files:?}"); // lock, cursor, one segment
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_to_is_refused() {
    let (_t, dir) = scratch();
    fs::create_dir(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = Spool::open(&dir, opts()).expect_err("refused");
    assert!(
        matches!(e, SpoolError::UnsafePermissions { mode: 0o777, reason: UnsafeReason::WritableByOthers, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&dir.display().to_string()) && msg.contains("0777"), "{msg}");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).expect("chmod");
    assert!(Spool::open(&dir, opts()).is_err(), "group-writable too");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let _ok = open(&dir, opts());
}

#[cfg(unix)]
#[test]
fn a_directory_of_another_user_is_refused() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Only root can give a directory away; as another user the check
        // is the same comparison.
        return;
    }
    let (_t, dir) = scratch();
    fs::create_dir(&dir).expect("mkdir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    let e = Spool::open(&dir, opts()).expect_err("refused");
    assert!(
        matches!(e, SpoolError::UnsafePermissions { reason: UnsafeReason::NotOwner { owner: 65534, euid: 0 }, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("uid 65534"), "{e}");
}

#[test]
fn options_out_of_range_are_refused_naming_them() {
    let (_t, dir) = scratch();
    let e = Spool::open(&dir, SpoolOptions { max_bytes: 100, ..opts() }).expect_err("refused");
    assert_eq!(e.to_string(), "spool option max_bytes = 100: must be at least 4096");
}

#[test]
fn a_full_disk_leaves_no_half_record_and_the_spool_recovers() {
    let (_t, dir) = scratch();
    let (mut s, _) =
        Spool::open_with(&dir, SpoolOptions { full_policy: FullPolicy::DropNewest, ..opts() }, faulty).expect("open");
    s.append(&payload(1, 500), 1).expect("append");
    s.sync().expect("sync");
    let seg = seg_files(&dir)[0].clone();
    let before = fs::metadata(&seg).expect("md").len();
    // A short write, then ENOSPC.
    PARTIAL_WRITE.set(Some(200));
    let e = s.append(&payload(2, 500), 5).expect_err("disk full");
    assert!(matches!(e, SpoolError::DiskFull { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&seg.display().to_string()) && msg.contains("No space left"), "{msg}");
    assert_eq!(fs::metadata(&seg).expect("md").len(), before, "cut back to the record's start");
    assert_eq!(s.stats().write_failed, Counts { records: 1, items: 5 });
    // Space returns.
    assert_eq!(s.append(&payload(2, 500), 5).expect("append"), 2);
    drop(s);
    let (mut s, rec) = open(&dir, opts());
    assert_eq!((rec.torn.records, rec.corrupt.records), (0, 0));
    let got = drain(&mut s);
    assert_eq!(
        got.iter().map(|r| (r.seq, r.payload.clone())).collect::<Vec<_>>(),
        [(1, payload(1, 500).into()), (2, payload(2, 500).into())]
    );
}

#[test]
fn a_full_disk_under_evict_oldest_evicts_one_closed_segment_and_retries() {
    let (_t, dir) = scratch();
    let o = SpoolOptions { segment_bytes: 4096, ..opts() };
    let (mut s, _) = Spool::open_with(&dir, o, faulty).expect("open");
    for i in 1..=7 {
        s.append(&payload(i, 1000), 1).expect("append");
    }
    FAIL_WRITES.set(1);
    assert_eq!(s.append(&payload(8, 1000), 1).expect("retried after an eviction"), 8);
    let st = s.stats();
    assert_eq!((st.evicted_segments, st.evicted.records), (1, 3));
    // Twice in a row: one eviction per record, then the error.
    FAIL_WRITES.set(2);
    let e = s.append(&payload(9, 1000), 1).expect_err("still full");
    assert!(matches!(e, SpoolError::DiskFull { .. }));
    assert_eq!(s.stats().evicted_segments, 2);
    assert_eq!(s.stats().write_failed.records, 1);
}

#[test]
fn a_torn_segment_header_is_removed() {
    let (_t, dir) = scratch();
    fill(&dir, 3, opts());
    // A crash right after creating the next segment.
    let torn = dir.join(fsio::segment_name(4));
    fs::write(&torn, &format::MAGIC[..5]).expect("write");
    let (mut s, rec) = open(&dir, opts());
    assert!(!torn.exists());
    assert!(rec.unknown_segments.is_empty());
    assert_eq!(drain(&mut s).len(), 3);
    assert_eq!(s.append(b"x", 1).expect("append"), 4);
}

#[test]
fn a_failed_fsync_keeps_failing_until_its_segment_is_gone() {
    let (_t, dir) = scratch();
    let (mut s, _) = Spool::open_with(&dir, opts(), faulty).expect("open");
    s.append(b"one", 1).expect("append");
    FAIL_SYNCS.set(1);
    let e = s.sync().expect_err("injected");
    let first = seg_files(&dir)[0].clone();
    assert!(e.to_string().contains(&first.display().to_string()), "{e}");
    // The retry would succeed at the OS level; the spool still says no.
    let e = s.sync().expect_err("sticky");
    assert!(e.to_string().contains("not durable"), "{e}");
    // New records go to a new segment.
    assert_eq!(s.append(b"two", 1).expect("append"), 2);
    assert_eq!(seg_files(&dir).len(), 2);
    assert!(s.sync().is_err());
    let got = drain(&mut s);
    s.settle(got[0].seq).expect("settle");
    s.sync().expect("the failed segment is gone: durable again");
}

#[test]
fn the_spool_moves_to_a_blocking_thread() {
    fn send<T: Send>(_: &T) {}
    let (_t, dir) = scratch();
    let (s, _) = open(&dir, opts());
    send(&s);
    std::thread::spawn(move || s.close().expect("close")).join().expect("join");
}

#[test]
fn any_damage_anywhere_never_panics_and_never_delivers_a_wrong_record() {
    let mut rng = StdRng::seed_from_u64(42);
    for round in 0..60 {
        let (_t, dir) = scratch();
        let p = fill(&dir, 40, SpoolOptions { segment_bytes: 4096, ..opts() });
        let mut files = seg_files(&dir);
        files.push(dir.join(fsio::CURSOR_FILE));
        for _ in 0..rng.random_range(1..6) {
            let f = &files[rng.random_range(0..files.len())];
            let Ok(mut b) = fs::read(f) else { continue };
            match rng.random_range(0..4) {
                0 if !b.is_empty() => {
                    let at = rng.random_range(0..b.len());
                    b[at] ^= rng.random_range(1..=255u8);
                }
                1 => b.truncate(rng.random_range(0..=b.len())),
                2 if !b.is_empty() => {
                    // A run of zeros, as a lost page reads back.
                    let at = rng.random_range(0..b.len());
                    let end = (at + rng.random_range(1..600)).min(b.len());
                    b[at..end].fill(0);
                }
                _ => {
                    let at = rng.random_range(0..=b.len());
                    let junk: Vec<u8> = (0..rng.random_range(1..100)).map(|_| rng.random()).collect();
                    b.splice(at..at, junk);
                }
            }
            fs::write(f, &b).expect("write");
        }
        let (mut s, rec) = Spool::open(&dir, opts()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let got = drain(&mut s);
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "round {round}");
        for r in &got {
            assert_eq!(r.payload, p[r.seq as usize - 1], "round {round}: record {}", r.seq);
            s.settle(r.seq).expect("settle");
        }
        assert_eq!(rec.pending.records, got.len() as u64, "round {round}");
        assert_adds_up(&s, &rec);
        // New records go on after whatever was there.
        let seq = s.append(b"after", 1).expect("append");
        assert!(seq > got.last().map_or(0, |r| r.seq), "round {round}");
        s.close().expect("close");
        let (mut s, rec) = Spool::open(&dir, opts()).expect("reopen");
        assert_eq!(drain(&mut s).iter().map(|r| r.seq).collect::<Vec<_>>(), [seq], "round {round}: {rec:?}");
    }
}

#[test]
fn records_handed_out_before_a_restart_are_marked_as_re_sends() {
    let (_t, dir) = scratch();
    let (mut s, _) = open(&dir, opts());
    for i in 1..=5 {
        s.append(&payload(i, 10), 2).expect("append");
    }
    let sent = s.next_unsent(3).expect("next");
    assert!(sent.iter().all(|r| !r.resent && !r.replayed));
    s.settle(1).expect("settle");
    s.close().expect("close");
    let (mut s, rec) = open(&dir, opts());
    assert_eq!(rec.pending, Counts { records: 4, items: 8 });
    assert_eq!(rec.sent_before, Counts { records: 2, items: 4 });
    let got = drain(&mut s);
    assert_eq!(
        got.iter().map(|r| (r.seq, r.resent, r.replayed)).collect::<Vec<_>>(),
        [(2, true, true), (3, true, true), (4, false, true), (5, false, true)]
    );
    // Still known after another restart in which nothing settled.
    s.close().expect("close");
    let (_s, rec) = open(&dir, opts());
    assert_eq!(rec.sent_before.records, 4);
}

#[test]
fn durable_through_follows_the_syncs() {
    let (_t, dir) = scratch();
    let (mut s, _) = Spool::open_with(&dir, opts(), faulty).expect("open");
    for i in 1..=3 {
        s.append(&payload(i, 10), 1).expect("append");
    }
    assert_eq!(s.durable_through(), 0);
    s.sync().expect("sync");
    assert_eq!(s.durable_through(), 3);
    s.append(b"four", 1).expect("append");
    assert_eq!(s.durable_through(), 3);
    FAIL_SYNCS.set(1);
    assert!(s.sync().is_err());
    assert_eq!(s.durable_through(), 3, "a failed sync proves nothing");
    drop(s);
    let (s, _) = open(&dir, opts());
    assert_eq!(s.durable_through(), 4, "found, and fsynced, at open");
}
