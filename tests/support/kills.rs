//! Killing rotel with SIGKILL while an exporter streams to it, and reading
//! its count honestly afterwards.
//!
//! rotel prints a request's count line after it answered the request (see
//! `ROTEL.md`). A SIGKILL can therefore fall between the answer and the line:
//! the exporter saw the request acknowledged, and rotel's count never shows
//! it. And a SIGKILL can fall between the line and the answer: rotel counted
//! a request the exporter saw fail and sends again (a duplicate).
//!
//! [`Kills`] bounds both. Before each kill it waits until rotel has logged
//! every point acknowledged so far, and notes the drain's counters; at the
//! restart it notes them again. Only points acknowledged between those two
//! moments can have lost their line, and only points sent by the restart and
//! not acknowledged before the kill can be duplicates. So after the last
//! generation:
//!
//! ```text
//! acked - unlogged_bound <= rotel's count <= acked + duplicate_bound
//! ```
//!
//! and `unlogged_bound` is usually 0 (nothing was acknowledged in the instant
//! between catching up and the kill).

use std::time::{Duration, Instant};

use otlp_sink::deliver::DeliveryStatsHandle;
use tokio::task::block_in_place;

use super::rotel::{Rotel, Signal};

/// How long rotel may take to log what it has answered.
const CATCH_UP: Duration = Duration::from_secs(10);

/// The ledger of the kills of one rotel, see the module docs.
#[derive(Debug, Default)]
pub struct Kills {
    /// rotel's count when its current generation started.
    base: u64,
    /// The drain's `acked` when rotel's current generation started: every
    /// point acknowledged after it was acknowledged by that generation.
    acked_at_start: u64,
    /// The drain's counters when the last kill fell, until the restart.
    killed_at: Option<(u64, u64)>,
    /// Points acknowledged between catching up and a restart: their lines
    /// may have died with rotel.
    pub unlogged_bound: u64,
    /// Points sent by a restart and not acknowledged before its kill: rotel
    /// may have counted them and they may be sent again.
    pub duplicate_bound: u64,
    pub kills: u32,
}

impl Kills {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the current generation must have logged once `acked` points
    /// were acknowledged.
    fn expected(&self, acked: u64) -> u64 {
        self.base + (acked - self.acked_at_start)
    }

    /// Waits (bounded) until rotel has logged every point acknowledged so far
    /// and, if `in_flight` asks for it, a request is in flight; then kills it
    /// with SIGKILL.
    ///
    /// # Panics
    ///
    /// If rotel, alive, does not log what it acknowledged within 10 s.
    pub async fn kill(&mut self, rotel: &mut Rotel, export: &DeliveryStatsHandle, in_flight: bool) {
        let started = Instant::now();
        let caught_up = loop {
            let now = export.snapshot();
            let expected = self.expected(now.acked);
            block_in_place(|| rotel.wait_until(CATCH_UP, |c| c.items(Signal::Metrics) >= expected))
                .unwrap_or_else(|e| panic!("rotel, alive, did not log the {expected} points it acknowledged:\n{e}"));
            // Nothing acknowledged while we waited: the kill may fall now.
            let again = export.snapshot();
            let ready = !in_flight || again.in_flight > 0 || started.elapsed() > Duration::from_secs(5);
            if again.acked == now.acked && ready {
                break again;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        block_in_place(|| rotel.kill());
        self.kills += 1;
        self.killed_at = Some((caught_up.acked, caught_up.items_sent));
    }

    /// Restarts rotel after [`kill`](Self::kill) and notes where its new
    /// generation starts.
    pub fn restart(&mut self, rotel: &mut Rotel, export: &DeliveryStatsHandle) {
        let (acked_at_kill, _) = self.killed_at.take().expect("restart after a kill");
        // The killed generation's count is final: `kill` read its output to the end.
        self.base = rotel.counts().items(Signal::Metrics);
        block_in_place(|| rotel.restart());
        let at_restart = export.snapshot();
        self.unlogged_bound += at_restart.acked - acked_at_kill;
        self.duplicate_bound += at_restart.items_sent - acked_at_kill;
        self.acked_at_start = at_restart.acked;
    }

    /// After the last request: waits until rotel has logged all `acked`
    /// points it can have, kills it so that its count is final, checks the
    /// bounds and returns the count. Prints the figures under `test`.
    pub fn finish(&mut self, rotel: &mut Rotel, acked: u64, test: &str) -> u64 {
        let expected = self.expected(acked);
        block_in_place(|| {
            rotel
                .wait_until(CATCH_UP, |c| c.items(Signal::Metrics) >= expected)
                .unwrap_or_else(|e| panic!("rotel did not log the {expected} points it acknowledged:\n{e}"));
            rotel.kill();
        });
        let counted = rotel.counts().items(Signal::Metrics);
        println!(
            "[{test}] {} kill(s): rotel counted {counted}, the drain saw {acked} acknowledged: {} duplicate(s) \
             (at most {} possible), {} unlogged (at most {} possible)",
            self.kills,
            counted.saturating_sub(acked),
            self.duplicate_bound,
            acked.saturating_sub(counted),
            self.unlogged_bound,
        );
        assert!(
            counted + self.unlogged_bound >= acked,
            "rotel counted {counted}, fewer than the {acked} acknowledged beyond what a kill can explain ({})",
            self.unlogged_bound
        );
        assert!(
            counted <= acked + self.duplicate_bound,
            "rotel counted {counted}: more duplicates than the {} points in flight at the kills allow",
            self.duplicate_bound
        );
        counted
    }
}
