//! The spool against an in-memory model: random appends, syncs, reads,
//! settles (out of order), crashes (with the unsynced tail cut at a random
//! point, as a power loss may) and clean restarts.
//!
//! The model holds what must be true: after a restart, the records to
//! deliver are exactly those above the persisted cursor that survived; all
//! records appended before the last sync survive; the survivors of the cut
//! tail are a prefix of it; nothing at or below the cursor comes back, and
//! what comes back after being settled (past the cursor) is counted as a
//! re-send.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::time::Duration;

use proptest::prelude::*;

use super::tests::{opts, payload};
use super::*;

#[derive(Debug, Clone)]
enum Op {
    Append { len: usize, items: u32 },
    Sync,
    Next { max: usize },
    Settle { pick: usize },
    Crash { cut: Option<f64> },
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..1500, 1u32..5).prop_map(|(len, items)| Op::Append { len, items }),
        1 => Just(Op::Sync),
        3 => (1usize..6).prop_map(|max| Op::Next { max }),
        4 => any::<usize>().prop_map(|pick| Op::Settle { pick }),
        1 => proptest::option::of(0.0f64..1.0).prop_map(|cut| Op::Crash { cut }),
        1 => Just(Op::Close),
    ]
}

#[derive(Debug, Clone)]
struct Rec {
    seq: u64,
    len: usize,
    items: u32,
}

struct Model {
    /// The records on disk above the cursor or not settled, in order.
    records: Vec<Rec>,
    /// Not yet handed out in this incarnation.
    unsent: VecDeque<u64>,
    in_flight: Vec<u64>,
    settled: BTreeSet<u64>,
    /// Every record up to this one survives a crash.
    synced_through: u64,
    next_seq: u64,
    resends: u64,
    settled_total: u64,
}

impl Model {
    fn rec(&self, seq: u64) -> &Rec {
        self.records.iter().find(|r| r.seq == seq).expect("a modelled record")
    }

    /// The cursor the settles allow: the end of the settled prefix.
    fn prefix(&self, floor: u64) -> u64 {
        let mut c = floor;
        for r in self.records.iter().filter(|r| r.seq > floor) {
            if !self.settled.contains(&r.seq) {
                break;
            }
            c = r.seq;
        }
        c
    }
}

fn run(ops: Vec<Op>, slow_cursor: bool) -> Result<(), TestCaseError> {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("logs");
    let o = SpoolOptions {
        segment_bytes: 4096,
        cursor_interval: if slow_cursor { Duration::from_secs(3600) } else { Duration::ZERO },
        ..opts()
    };
    let (mut s, _) = Spool::open(&dir, o.clone()).expect("open");
    let mut m = Model {
        records: Vec::new(),
        unsent: VecDeque::new(),
        in_flight: Vec::new(),
        settled: BTreeSet::new(),
        synced_through: 0,
        next_seq: 1,
        resends: 0,
        settled_total: 0,
    };
    let mut cursor_floor = 0;
    // Records the current incarnation found pending at open.
    let mut incarnation_pending = 0;
    for op in ops {
        match op {
            Op::Append { len, items } => {
                let seq = s.append(&payload(m.next_seq, len), items).expect("append");
                prop_assert_eq!(seq, m.next_seq);
                m.records.push(Rec { seq, len, items });
                m.unsent.push_back(seq);
                m.next_seq += 1;
            }
            Op::Sync => {
                s.sync().expect("sync");
                m.synced_through = m.next_seq - 1;
            }
            Op::Next { max } => {
                let got = s.next_unsent(max).expect("next_unsent");
                let want: Vec<u64> = m.unsent.iter().take(max).copied().collect();
                prop_assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), want.clone());
                for r in &got {
                    let mr = m.rec(r.seq);
                    prop_assert_eq!(&r.payload[..], &payload(r.seq, mr.len)[..]);
                    prop_assert_eq!(r.items, mr.items);
                }
                m.unsent.drain(..want.len());
                m.in_flight.extend(want);
            }
            Op::Settle { pick } => {
                if m.in_flight.is_empty() {
                    continue;
                }
                let seq = m.in_flight.swap_remove(pick % m.in_flight.len());
                prop_assert!(s.settle(seq).expect("settle"));
                m.settled.insert(seq);
                m.settled_total += 1;
                if !slow_cursor {
                    prop_assert_eq!(s.persisted_cursor(), m.prefix(cursor_floor));
                }
            }
            Op::Crash { .. } | Op::Close => {
                let c = s.persisted_cursor();
                let prefix = m.prefix(cursor_floor);
                prop_assert!(c <= prefix, "the cursor {} passed an unsettled record ({})", c, prefix);
                let cut = match op {
                    Op::Close => {
                        s.close().expect("close");
                        None
                    }
                    Op::Crash { cut } => {
                        let tail = s.unsynced_tail();
                        drop(s);
                        cut.zip(tail)
                    }
                    _ => unreachable!(),
                };
                let c = if matches!(op, Op::Close) { prefix } else { c };
                let was_cut = cut.is_some();
                if let Some((frac, (path, synced, len))) = cut {
                    let at = synced + ((len - synced) as f64 * frac) as u64;
                    fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(at).expect("cut");
                }
                let (s2, rec) = Spool::open(&dir, o.clone()).expect("reopen");
                s = s2;
                incarnation_pending = rec.pending.records;
                prop_assert_eq!(rec.corrupt, Lost::default());
                prop_assert_eq!(rec.missing, 0);
                prop_assert!(rec.unknown_segments.is_empty());
                prop_assert!(rec.torn.records <= 1);
                let above: Vec<Rec> = m.records.iter().filter(|r| r.seq > c).cloned().collect();
                let k = rec.pending.records as usize;
                let must = above.iter().filter(|r| r.seq <= m.synced_through).count();
                prop_assert!(k >= must, "lost a synced record: {} of {} survive", k, must);
                prop_assert!(k <= above.len());
                if !was_cut {
                    prop_assert_eq!(k, above.len(), "a crash without power loss keeps everything");
                    prop_assert_eq!(rec.torn.records, 0);
                }
                let survivors = &above[..k];
                prop_assert_eq!(rec.pending.items, survivors.iter().map(|r| u64::from(r.items)).sum::<u64>());
                m.resends += survivors.iter().filter(|r| m.settled.contains(&r.seq)).count() as u64;
                m.records = survivors.to_vec();
                m.unsent = survivors.iter().map(|r| r.seq).collect();
                m.in_flight.clear();
                m.settled.clear();
                cursor_floor = c;
                let last = m.records.last().map_or(0, |r| r.seq);
                m.next_seq = last.max(c) + 1;
                m.synced_through = last;
            }
        }
        let st = s.stats();
        prop_assert_eq!(st.appended.records + incarnation_pending, st.settled.records + st.pending.records);
        let pending = m.unsent.len() + m.in_flight.len();
        prop_assert_eq!(st.pending.records, pending as u64);
        let on_disk: u64 = fsio_bytes(&dir);
        prop_assert_eq!(st.bytes_on_disk, on_disk);
    }
    // Drain what is left: exactly the model's records, in order.
    let mut rest = Vec::new();
    loop {
        let b = s.next_unsent(16).expect("next_unsent");
        if b.is_empty() {
            break;
        }
        rest.extend(b.into_iter().map(|r| r.seq));
    }
    prop_assert_eq!(rest, m.unsent.iter().copied().collect::<Vec<_>>());
    // Every re-send was a record settled past the persisted cursor (out of
    // order, or since the cursor's last write): never more than were settled.
    prop_assert!(m.resends <= m.settled_total);
    Ok(())
}

fn fsio_bytes(dir: &std::path::Path) -> u64 {
    super::fsio::list_segments(dir).expect("list").iter().map(|(_, p)| fs::metadata(p).expect("md").len()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_spool_delivers_what_the_model_says(ops in proptest::collection::vec(op(), 1..120), slow_cursor in any::<bool>()) {
        run(ops, slow_cursor)?;
    }
}
