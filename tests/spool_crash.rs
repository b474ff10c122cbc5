//! The spool across process crashes, with the load generator
//! (`examples/loadgen.rs`) as the application: a child pushes with
//! `--flush-every` while the collector is down and is SIGKILLed at a random
//! moment; then `loadgen --replay-only` on the same directory delivers to
//! the in-process receiver. Every point accepted before the last completed
//! `Persisted` flush must arrive. Each point carries its index as its value,
//! so that loss and duplicates are told apart; duplicates are counted and
//! bounded (at least once: what the killed child had sent unacknowledged is
//! sent again).
//!
//! Also: the flush lines and `--replay-only` of loadgen, without a kill.

#![cfg(all(feature = "receiver", unix))]

mod support;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
use otlp_sink::receiver::Receiver;
use otlp_sink::Signal;
use prost::Message as _;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value as Json;
use support::dead::DeadPort;

/// `target/<profile>/examples/loadgen`, built by cargo before the tests.
fn loadgen() -> PathBuf {
    support::child::example("loadgen")
}

fn command(args: &[&str]) -> Command {
    command_with_timeout(args, "200")
}

fn command_with_timeout(args: &[&str], attempt_ms: &str) -> Command {
    let mut cmd = Command::new(loadgen());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name.starts_with("OTLP_SINK_") {
            cmd.env_remove(name);
        }
    }
    // Short attempts for the children against a dead collector, so that
    // their requests retry while they run.
    cmd.env("OTEL_EXPORTER_OTLP_TIMEOUT", attempt_ms);
    cmd
}

/// `flushed_through` of each flush line, in order.
fn flush_lines(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|j| j.get("flush").is_some())
        .map(|j| {
            assert_eq!(j["mode"], "persisted", "{j}");
            j["flushed_through"].as_u64().expect("a count")
        })
        .collect()
}

fn summary(stdout: &str) -> Json {
    let line = stdout.lines().rfind(|l| l.contains("\"signal\"")).unwrap_or_else(|| panic!("no summary: {stdout}"));
    serde_json::from_str(line).unwrap()
}

/// How many times each point index arrived.
fn arrivals(receiver: &Receiver) -> HashMap<i64, u32> {
    let mut seen = HashMap::new();
    for body in receiver.recorded(Signal::Metrics) {
        let request = ExportMetricsServiceRequest::decode(body.as_slice()).expect("a metrics request");
        for rm in request.resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let Some(Data::Sum(sum)) = m.data else { panic!("loadgen sends sums") };
                    for p in sum.data_points {
                        let Some(Value::AsInt(k)) = p.value else { panic!("loadgen's values are ints") };
                        *seen.entry(k).or_insert(0) += 1;
                    }
                }
            }
        }
    }
    seen
}

/// Runs `loadgen --replay-only` on `dir` against `receiver`; its summary.
fn replay(dir: &Path, receiver: &Receiver) -> Json {
    // The default per-attempt timeout: an answer slower than a short one
    // would be a retry, and the request would arrive twice.
    let args = ["--endpoint", &receiver.endpoint(), "--spool", dir.to_str().unwrap(), "--replay-only"];
    let out = command_with_timeout(&args, "10000").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "replay failed: {stdout}");
    summary(&stdout)
}

#[test]
fn loadgen_prints_a_line_per_persisted_flush_and_replay_only_delivers_what_it_left() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::builder().with_recording().start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let dead = DeadPort::new();
    let down = dead.endpoint();
    let args = ["--endpoint", &down, "--spool", spool, "--points", "3000", "--series", "3000"];
    let out = command(&[&args[..], &["--flush-every", "1000", "--deadline", "1"]].concat()).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(flush_lines(&stdout), [1000, 2000, 3000], "{stdout}");
    let first = summary(&stdout);
    assert_eq!((first["acked"].as_u64(), first["spooled"].as_u64()), (Some(0), Some(3000)), "{first}");
    assert!(!out.status.success(), "the final Delivered wait timed out: exit 1");

    let second = replay(dir.path(), &receiver);
    assert_eq!(second["pushed"], 0, "{second}");
    assert_eq!((second["replayed"].as_u64(), second["acked"].as_u64()), (Some(3000), Some(3000)), "{second}");
    assert_eq!(second["spooled"], 0, "{second}");
    let seen = arrivals(&receiver);
    assert_eq!(seen.len(), 3000);
    assert!(seen.values().all(|n| *n == 1), "each point once");
}

/// 20 children, each killed at a different moment while the collector is
/// down; after each, a replay delivers everything the last completed flush
/// covered.
#[test]
fn after_a_sigkill_every_point_before_the_last_persisted_flush_is_delivered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5b001);
    let started = Instant::now();
    let (mut total_duplicates, mut total_points) = (0u64, 0u64);
    for round in 0..20u32 {
        let receiver = rt.block_on(Receiver::builder().with_recording().start()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dead = DeadPort::new();
        let down = dead.endpoint();
        let mut child = command(&[
            "--endpoint",
            &down,
            "--spool",
            dir.path().to_str().unwrap(),
            "--points",
            "400000",
            "--series",
            "1000",
            "--flush-every",
            "2000",
            "--queue",
            "500000",
        ])
        .spawn()
        .unwrap();
        // Read the flush lines as they come; kill at a random moment after
        // the first (so that every round has something to check).
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        lines.push(rx.recv_timeout(Duration::from_secs(30)).expect("a first flush line"));
        let kill_after = Duration::from_millis(rng.random_range(0..400));
        let deadline = Instant::now() + kill_after;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let flushed: u64 = *flush_lines(&lines.join("\n")).last().expect("a completed flush");

        let summary = replay(dir.path(), &receiver);
        let seen = arrivals(&receiver);
        let missing: Vec<u64> = (0..flushed).filter(|k| !seen.contains_key(&(*k as i64))).take(5).collect();
        assert!(missing.is_empty(), "round {round} (killed {kill_after:?} after the first flush): points before the last flush ({flushed}) missing, e.g. {missing:?}; replay {summary}");
        assert!(seen.keys().all(|k| *k >= 0 && *k < 400_000), "round {round}: only points loadgen made");
        let duplicates: u64 = seen.values().map(|n| u64::from(n - 1)).sum();
        // The child delivered nothing (the collector was down), so a
        // duplicate can only be the replay's own retry of a request whose
        // answer came too late: each point at most twice, and rarely.
        let thrice: Vec<(i64, u32)> = seen.iter().filter(|(_, n)| **n > 2).map(|(k, n)| (*k, *n)).take(5).collect();
        if !thrice.is_empty() {
            // Whether whole requests came again (retries) or the same
            // points in different requests (the spool holding them twice).
            let bodies = receiver.recorded(Signal::Metrics);
            let distinct = bodies.iter().collect::<std::collections::HashSet<_>>().len();
            panic!(
                "round {round} (killed {kill_after:?} after the first flush, last flush {flushed}): points arrived \
                 more than twice, e.g. (point, arrivals) {thrice:?}; {duplicates} duplicates of {}; {} requests, \
                 {distinct} distinct; replay {summary}",
                seen.len(),
                bodies.len()
            );
        }
        assert!(duplicates <= seen.len() as u64 / 10, "round {round}: {duplicates} duplicates of {}", seen.len());
        let delivered = summary["acked"].as_u64().unwrap();
        assert_eq!(
            summary["replayed"].as_u64(),
            Some(delivered),
            "round {round}: everything replayed is acked: {summary}"
        );
        assert_eq!(delivered, seen.len() as u64, "round {round}: the collector has each acked point: {summary}");
        total_duplicates += duplicates;
        total_points += seen.len() as u64;
        rt.block_on(receiver.shutdown());
    }
    eprintln!(
        "20 kills in {:.1?}: {total_points} points delivered by the replays, {total_duplicates} duplicates",
        started.elapsed()
    );
}

/// A file-size limit the spool's segment reaches (`RLIMIT_FSIZE` in the
/// child, with `SIGXFSZ` ignored so that the write fails with `EFBIG`
/// instead of killing it): the flushes after it fail and say why, the
/// points they could not persist are counted as the spool's drops, and the
/// next process, without the limit, delivers every point the completed
/// flushes covered.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_flushes_cleanly_and_the_next_process_delivers_what_was_persisted() {
    use std::os::unix::process::CommandExt as _;

    const LIMIT: u64 = 256 * 1024;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let receiver = rt.block_on(Receiver::builder().with_recording().start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().to_str().unwrap();
    let dead = DeadPort::new();
    let down = dead.endpoint();
    let args = ["--endpoint", &down, "--spool", spool, "--points", "20000", "--series", "20000"];
    let mut cmd = command(&[&args[..], &["--flush-every", "1000", "--deadline", "1"]].concat());
    cmd.stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only calls two
    // async-signal-safe functions on values it owns.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: LIMIT, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned());
    let flushed = flush_lines(&stdout);
    let through = *flushed.last().unwrap_or_else(|| panic!("no flush completed under the limit: {stdout}\n{stderr}"));
    assert!(flushed.len() < 20, "the limit must be reached: {flushed:?}");
    assert!(stderr.contains("flush after"), "a failed flush says so: {stderr}");
    let first = summary(&stdout);
    let dropped = first["spool_dropped"].as_u64().expect("a spool's summary has drops");
    assert!(dropped > 0, "the points the full disk refused are counted: {first}");
    assert_eq!(first["pushed"].as_u64(), Some(20_000), "{first}");
    assert_eq!(first["acked"].as_u64(), Some(0), "the collector was down: {first}");
    let mut files = vec![dir.path().to_path_buf()];
    let mut segments = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "seg") {
            segments += 1;
            let size = path.metadata().unwrap().len();
            assert!(size <= LIMIT, "no half record past the limit: {} is {size} bytes", path.display());
        }
    }
    assert!(segments > 0, "the spool's segments are where the test looks");

    // Space is back: the next process delivers what the completed flushes persisted.
    let second = replay(dir.path(), &receiver);
    assert_eq!(second["spooled"], 0, "{second}");
    let seen = arrivals(&receiver);
    for k in 0..through as i64 {
        assert_eq!(seen.get(&k), Some(&1), "point {k} was before the last completed flush ({through}): {second}");
    }
    assert_eq!(second["acked"].as_u64(), Some(seen.len() as u64), "{second}");
}
