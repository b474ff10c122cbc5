//! The on-disk format: segment header, record frame, cursor file, and the
//! scan that recovers a segment's valid records. Pure: byte slices in,
//! results out; no I/O.
//!
//! ```text
//! segment = header record*
//! header  = magic "otlpspol" (8) | version u32 LE (4) | reserved u32 (4, zero)
//!         | created unix ms u64 LE (8) | first seq u64 LE (8)                    = 32 bytes
//! record  = len u32 LE (4) | crc32c u32 LE (4) | seq u64 LE (8)
//!         | written unix ms u64 LE (8) | items u32 LE (4) | payload (len bytes) = 28 + len bytes
//!           crc32c covers seq | written | items | payload
//! cursor  = magic "otlpcurs" (8) | version u32 LE (4) | settled through u64 LE (8)
//!         | handed out through u64 LE (8) | crc32c of the previous 28 bytes u32 LE (4) = 32 bytes
//! ```

/// The first eight bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"otlpspol";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// The segment header's length.
pub(crate) const HEADER_LEN: usize = 32;
/// A record frame's length before its payload.
pub(crate) const FRAME_LEN: usize = 28;
/// The first eight bytes of the cursor file.
pub(crate) const CURSOR_MAGIC: [u8; 8] = *b"otlpcurs";
/// The cursor file's length.
pub(crate) const CURSOR_LEN: usize = 32;

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) created_ms: u64,
    pub(crate) first_seq: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[16..24].copy_from_slice(&self.created_ms.to_le_bytes());
        b[24..32].copy_from_slice(&self.first_seq.to_le_bytes());
        b
    }
}

/// What the first bytes of a segment file say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderRead {
    /// A header this build reads.
    Ok(Header),
    /// Shorter than a header and a prefix of one (or empty): a segment
    /// whose creation was cut by a crash.
    Torn,
    /// Another magic.
    BadMagic([u8; 8]),
    /// The spool's magic with a version this build does not read.
    BadVersion(u32),
}

pub(crate) fn read_header(buf: &[u8]) -> HeaderRead {
    if buf.len() < HEADER_LEN {
        let n = buf.len().min(8);
        if buf[..n] == MAGIC[..n] {
            return HeaderRead::Torn;
        }
        let mut m = [0u8; 8];
        m[..n].copy_from_slice(&buf[..n]);
        return HeaderRead::BadMagic(m);
    }
    let magic: [u8; 8] = buf[..8].try_into().expect("8 bytes");
    if magic != MAGIC {
        return HeaderRead::BadMagic(magic);
    }
    let version = u32_at(buf, 8);
    if version != VERSION {
        return HeaderRead::BadVersion(version);
    }
    HeaderRead::Ok(Header { version, created_ms: u64_at(buf, 16), first_seq: u64_at(buf, 24) })
}

/// The parts of a record frame besides its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) seq: u64,
    pub(crate) written_ms: u64,
    pub(crate) items: u32,
}

/// Appends one whole record (frame and payload) to `buf`.
///
/// # Panics
///
/// If the payload is 4 GiB or longer: the caller checks first.
pub(crate) fn encode_record(buf: &mut Vec<u8>, seq: u64, written_ms: u64, items: u32, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked by the caller");
    let start = buf.len();
    buf.reserve(FRAME_LEN + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&written_ms.to_le_bytes());
    buf.extend_from_slice(&items.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = record_crc(&buf[start + 8..start + FRAME_LEN], payload);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(fields: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(fields), payload)
}

/// The frame at `pos`, if its 28 bytes are there (the payload may not be).
pub(crate) fn frame_at(buf: &[u8], pos: usize) -> Option<Frame> {
    if buf.len().checked_sub(pos)? < FRAME_LEN {
        return None;
    }
    Some(Frame {
        len: u32_at(buf, pos),
        crc: u32_at(buf, pos + 4),
        seq: u64_at(buf, pos + 8),
        written_ms: u64_at(buf, pos + 16),
        items: u32_at(buf, pos + 24),
    })
}

/// The record at `pos` if it is whole, its checksum holds and its
/// sequence number is in `seqs` (inclusive).
fn valid_at(buf: &[u8], pos: usize, seqs: (u64, u64)) -> Option<Frame> {
    let f = frame_at(buf, pos)?;
    // The cheap tests first: during a resync most offsets fail here.
    if f.seq < seqs.0 || f.seq > seqs.1 {
        return None;
    }
    let end = (pos + FRAME_LEN).checked_add(f.len as usize)?;
    if end > buf.len() {
        return None;
    }
    (record_crc(&buf[pos + 8..pos + FRAME_LEN], &buf[pos + FRAME_LEN..end]) == f.crc).then_some(f)
}

/// Checks a whole record read back from disk (`buf` = frame + payload).
pub(crate) fn check_record(buf: &[u8], seq: u64) -> bool {
    valid_at(buf, 0, (seq, seq)).is_some_and(|f| f.len as usize + FRAME_LEN == buf.len())
}

/// A valid record found by the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) offset: u64,
    pub(crate) frame: Frame,
}

/// Records a scan counted as damaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lost {
    /// Records in the damaged bytes (or missing from the sequence).
    pub(crate) records: u64,
    /// Their items, from the frames whose header could still be trusted.
    pub(crate) items: u64,
    /// How many of `records` had no trustworthy item count.
    pub(crate) items_unknown: u64,
    /// The damaged bytes.
    pub(crate) bytes: u64,
}

impl Lost {
    pub(crate) fn add(&mut self, o: Lost) {
        self.records += o.records;
        self.items += o.items;
        self.items_unknown += o.items_unknown;
        self.bytes += o.bytes;
    }
}

/// The bytes after a segment's last valid record, when they hold no valid
/// record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Where they start: the end of the last valid record (or the header).
    pub(crate) offset: u64,
    /// Whether they start with a whole frame that failed its checksum
    /// (`true`: corruption), or with a cut one (`false`: a torn write).
    pub(crate) whole: bool,
    /// What they held.
    pub(crate) lost: Lost,
}

/// A segment's content as recovered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The valid records, in order of offset (and of sequence number).
    pub(crate) records: Vec<Found>,
    /// Records lost between valid ones: checksum failures, and sequence
    /// numbers missing between two valid records.
    pub(crate) corrupt: Lost,
    /// Damaged bytes at the end, if any.
    pub(crate) tail: Option<Tail>,
}

/// Recovers the records of one segment (`buf` is the whole file, its
/// header already read) whose first sequence number is `first_seq`.
///
/// A record is valid when its frame is whole, its CRC32C holds, and its
/// sequence number is above the previous valid one (and not absurdly far).
/// At a record that is not valid the scan resynchronises: it tries every
/// following byte offset, in order, as the start of a frame, and resumes at
/// the first valid one. Trying every offset is what makes sure no valid
/// record is skipped: the first valid record after the damage is found at
/// its own offset, unless damage produced a false frame before it, which
/// needs a 32-bit checksum to match by chance on a sequence number in
/// range. The cost is linear in practice: almost every offset fails on
/// the sequence range before any checksum is computed (a checksum is
/// computed only where 8 bytes read as a sequence number within the
/// file's reach of the expected one).
///
/// Records lost with a sequence number at or below `settled_through` (the
/// cursor) were delivered already and are not counted. `end_seq`, the
/// first sequence number of the next segment when there is one, bounds
/// the records a damaged end of this one held.
pub(crate) fn scan(buf: &[u8], first_seq: u64, settled_through: u64, end_seq: Option<u64>) -> Scan {
    let mut out = Scan::default();
    let mut pos = HEADER_LEN;
    let mut expected = first_seq;
    // No more records can follow than frames fit in the file.
    let span = (buf.len() / FRAME_LEN) as u64 + 1;
    while pos < buf.len() {
        let seqs = (expected, expected.saturating_add(span));
        if let Some(frame) = valid_at(buf, pos, seqs) {
            if frame.seq > expected {
                // Sequence numbers missing with no bytes for them.
                let n = frame.seq - expected.max(settled_through.saturating_add(1)).min(frame.seq);
                out.corrupt.add(Lost { records: n, items_unknown: n, ..Lost::default() });
            }
            out.records.push(Found { offset: pos as u64, frame });
            pos += FRAME_LEN + frame.len as usize;
            expected = frame.seq + 1;
            continue;
        }
        let next = (pos + 1..buf.len()).find_map(|p| valid_at(buf, p, seqs).map(|f| (p, f)));
        match next {
            Some((p, frame)) => {
                out.corrupt.add(count_lost(&buf[pos..p], expected, Some(frame.seq), settled_through, false));
                out.records.push(Found { offset: p as u64, frame });
                pos = p + FRAME_LEN + frame.len as usize;
                expected = frame.seq + 1;
            }
            None => {
                let whole =
                    frame_at(buf, pos).is_some_and(|f| (pos + FRAME_LEN).saturating_add(f.len as usize) <= buf.len());
                out.tail = Some(Tail {
                    offset: pos as u64,
                    whole,
                    lost: count_lost(&buf[pos..], expected, end_seq, settled_through, true),
                });
                return out;
            }
        }
    }
    if let Some(end) = end_seq {
        // Sequence numbers missing between this segment's last record and
        // the next segment.
        let n = end.saturating_sub(expected.max(settled_through.saturating_add(1)));
        out.corrupt.add(Lost { records: n, items_unknown: n, ..Lost::default() });
    }
    out
}

/// Counts the records in damaged bytes that should have held sequence
/// numbers `expected..next` (`next` unknown at the end of the last
/// segment); `tail`: the bytes run to the end of the file.
///
/// Frames are walked from the start while their header is consistent (the
/// expected sequence number, a length that fits): their item counts are
/// trusted, as a checksum failure in the payload leaves the header intact.
/// The records past that have unknown item counts.
fn count_lost(bytes: &[u8], expected: u64, next: Option<u64>, settled_through: u64, tail: bool) -> Lost {
    let counted = |seq: u64| u64::from(seq > settled_through);
    let mut lost = Lost { bytes: bytes.len() as u64, ..Lost::default() };
    let mut p = 0;
    let mut e = expected;
    while let Some(f) = frame_at(bytes, p) {
        if f.seq != e || next.is_some_and(|n| e >= n) {
            break;
        }
        let end = (p + FRAME_LEN).saturating_add(f.len as usize);
        if end > bytes.len() && !tail {
            // A length that runs into the next valid record: not trusted.
            break;
        }
        lost.records += counted(e);
        lost.items += counted(e) * u64::from(f.items);
        e += 1;
        if end >= bytes.len() {
            // A record cut at the end (a torn write): its header is whole.
            p = bytes.len();
            break;
        }
        p = end;
    }
    let rest = match next {
        Some(n) => n.saturating_sub(e.max(settled_through.saturating_add(1))),
        // Bytes no frame accounts for: a record of their own only when
        // nothing was walked (after a walked frame they may be its own
        // payload, behind a length that a flip made shorter).
        None => u64::from(p < bytes.len() && p == 0) * counted(e),
    };
    lost.records += rest;
    lost.items_unknown += rest;
    lost
}

/// Encodes the cursor file: every record up to `settled` is settled, and
/// every record up to `sent` was handed out for delivery.
pub(crate) fn encode_cursor(settled: u64, sent: u64) -> [u8; CURSOR_LEN] {
    let mut b = [0u8; CURSOR_LEN];
    b[..8].copy_from_slice(&CURSOR_MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..20].copy_from_slice(&settled.to_le_bytes());
    b[20..28].copy_from_slice(&sent.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes the cursor file into (settled, sent): `None` when it is damaged.
pub(crate) fn decode_cursor(b: &[u8]) -> Option<(u64, u64)> {
    if b.len() != CURSOR_LEN || b[..8] != CURSOR_MAGIC || u32_at(b, 8) != VERSION {
        return None;
    }
    (crc32c::crc32c(&b[..28]) == u32_at(b, 28)).then(|| (u64_at(b, 12), u64_at(b, 20)))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(first: u64, payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Header { version: VERSION, created_ms: 1, first_seq: first }.encode().to_vec();
        let mut offsets = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            offsets.push(buf.len());
            encode_record(&mut buf, first + i as u64, 1000 + i as u64, 10 + i as u32, p);
        }
        (buf, offsets)
    }

    fn seqs(s: &Scan) -> Vec<u64> {
        s.records.iter().map(|r| r.frame.seq).collect()
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let h = Header { version: VERSION, created_ms: 42, first_seq: 7 };
        let b = h.encode();
        assert_eq!(read_header(&b), HeaderRead::Ok(h));
        assert_eq!(read_header(&b[..5]), HeaderRead::Torn);
        assert_eq!(read_header(&[]), HeaderRead::Torn);
        let mut v = b;
        v[8] = 9;
        assert_eq!(read_header(&v), HeaderRead::BadVersion(9));
        let mut m = b;
        m[0] = b'X';
        assert!(matches!(read_header(&m), HeaderRead::BadMagic(x) if x[0] == b'X'));
    }

    #[test]
    fn clean_segment_scans_whole() {
        let (buf, _) = segment(5, &[b"a", b"", b"ccc"]);
        let s = scan(&buf, 5, 0, None);
        assert_eq!(seqs(&s), [5, 6, 7]);
        assert_eq!(s.corrupt, Lost::default());
        assert_eq!(s.tail, None);
        assert_eq!(s.records[1].frame.items, 11);
    }

    #[test]
    fn a_flipped_payload_byte_loses_that_record_only_with_its_items() {
        let (mut buf, off) = segment(1, &[b"first", b"second", b"third"]);
        buf[off[1] + FRAME_LEN + 2] ^= 0x40;
        let s = scan(&buf, 1, 0, None);
        assert_eq!(seqs(&s), [1, 3]);
        assert_eq!(s.corrupt.records, 1);
        assert_eq!(s.corrupt.items, 11);
        assert_eq!(s.corrupt.items_unknown, 0);
        assert_eq!(s.tail, None);
    }

    #[test]
    fn a_flipped_length_resyncs_at_the_next_record() {
        let (mut buf, off) = segment(1, &[b"first", b"second", b"third", b"fourth"]);
        buf[off[1] + 1] ^= 0x01; // length + 256: runs past the end of the record
        let s = scan(&buf, 1, 0, None);
        assert_eq!(seqs(&s), [1, 3, 4]);
        assert_eq!(s.corrupt.records, 1);
        // The header's length is wrong, so its item count is not trusted.
        assert_eq!(s.corrupt.items_unknown, 1);
    }

    #[test]
    fn a_cut_last_record_is_a_torn_tail_with_its_items() {
        let (buf, off) = segment(1, &[b"first", b"second"]);
        let s = scan(&buf[..off[1] + FRAME_LEN + 3], 1, 0, None);
        assert_eq!(seqs(&s), [1]);
        let tail = s.tail.expect("a tail");
        assert_eq!(tail.offset, off[1] as u64);
        assert!(!tail.whole);
        assert_eq!((tail.lost.records, tail.lost.items, tail.lost.items_unknown), (1, 11, 0));
        // Cut inside the frame header: one record, items unknown.
        let s = scan(&buf[..off[1] + 5], 1, 0, None);
        let tail = s.tail.expect("a tail");
        assert_eq!((tail.lost.records, tail.lost.items_unknown), (1, 1));
    }

    #[test]
    fn a_corrupt_last_record_is_a_whole_tail() {
        let (mut buf, off) = segment(1, &[b"first", b"second"]);
        let last = buf.len() - 1;
        buf[last] ^= 1;
        let s = scan(&buf, 1, 0, None);
        assert_eq!(seqs(&s), [1]);
        let tail = s.tail.expect("a tail");
        assert!(tail.whole);
        assert_eq!(tail.offset, off[1] as u64);
        assert_eq!((tail.lost.records, tail.lost.items), (1, 11));
    }

    #[test]
    fn every_single_byte_flip_loses_at_most_the_records_it_touches() {
        let payloads: Vec<Vec<u8>> = (0..6).map(|i| vec![i as u8; 20 + i * 7]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let (buf, off) = segment(100, &refs);
        for at in HEADER_LEN..buf.len() {
            let mut b = buf.clone();
            b[at] ^= 0xA5;
            let s = scan(&b, 100, 0, None);
            let hit = off.iter().rposition(|&o| o <= at).expect("after the header");
            let want: Vec<u64> = (0..6).filter(|&i| i != hit).map(|i| 100 + i as u64).collect();
            assert_eq!(seqs(&s), want, "flip at {at}");
            let lost = s.corrupt.records + s.tail.map_or(0, |t| t.lost.records);
            assert_eq!(lost, 1, "flip at {at}");
        }
    }

    #[test]
    fn damage_at_or_below_the_cursor_is_not_counted() {
        let (mut buf, off) = segment(1, &[b"first", b"second", b"third"]);
        buf[off[1] + FRAME_LEN] ^= 1;
        assert_eq!(scan(&buf, 1, 2, None).corrupt.records, 0);
        assert_eq!(scan(&buf, 1, 1, None).corrupt.records, 1);
    }

    #[test]
    fn records_missing_before_the_next_segment_are_counted() {
        let (buf, _) = segment(1, &[b"first", b"second"]);
        let s = scan(&buf, 1, 0, Some(6));
        assert_eq!((s.corrupt.records, s.corrupt.items_unknown), (3, 3));
        // A torn end before the next segment: bounded by it.
        let s = scan(&buf[..buf.len() - 2], 1, 0, Some(6));
        let t = s.tail.expect("a tail");
        assert_eq!(t.lost.records, 4);
        assert_eq!(t.lost.items, 11);
    }

    #[test]
    fn cursor_round_trip_and_damage() {
        let b = encode_cursor(123, 456);
        assert_eq!(decode_cursor(&b), Some((123, 456)));
        for i in 0..CURSOR_LEN {
            let mut d = b;
            d[i] ^= 0x10;
            assert_eq!(decode_cursor(&d), None, "flip at {i}");
        }
        assert_eq!(decode_cursor(&b[..10]), None);
    }
}
