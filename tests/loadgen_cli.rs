//! The load generator (`examples/loadgen.rs`) as a user runs it: the compiled
//! example binary, its JSON line on standard output, its progress on standard
//! error and its exit status, against the in-process receiver and against rotel.
//!
//! Cargo builds examples before it runs the tests (`cargo test`, `cargo
//! nextest run`, and `scripts/test.sh` builds them explicitly), but not when
//! a single test target is selected: [`loadgen`] refuses a binary older than
//! the sources it is built from, rather than test a stale one.

#![cfg(feature = "receiver")]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;
use wait_timeout::ChildExt;

use serde_json::Value;
use support::rotel::{Rotel, Signal};

/// The longest a loadgen run may take here; it is killed after that.
const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// `target/<profile>/examples/loadgen`, next to this test's own binary in
/// `target/<profile>/deps/`.
fn loadgen() -> PathBuf {
    let me = std::env::current_exe().expect("the test binary's path");
    let profile_dir = me.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("examples").join(format!("loadgen{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}; build it with `cargo build --examples`", binary.display()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest_source = [root.join("examples/loadgen.rs"), root.join("Cargo.toml")]
        .into_iter()
        .chain(files_under(&root.join("src")))
        .map(|path| std::fs::metadata(&path).and_then(|m| m.modified()).expect("source file"))
        .max()
        .expect("sources");
    assert!(
        built >= newest_source,
        "{} is older than its sources: run `cargo build --examples` (or the whole suite) first",
        binary.display()
    );
    binary
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The one JSON line on standard output.
    fn json(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
    }
}

/// Runs loadgen with `args`, without the caller's OTEL_* variables (which it
/// honours), and waits at most [`RUN_DEADLINE`].
fn run(args: &[&str]) -> Run {
    run_with_env(args, &[])
}

/// [`run`], with these variables set (after the caller's OTEL_* are removed).
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(loadgen());
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OTEL_") {
            command.env_remove(&key);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("run loadgen");
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read loadgen's output");
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped")));
    // Woken by the child's exit (SIGCHLD), bounded by the deadline.
    let Some(status) = child.wait_timeout(RUN_DEADLINE).expect("wait for loadgen") else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("loadgen {args:?} still ran after {RUN_DEADLINE:?}; stderr:\n{}", stderr.join().unwrap());
    };
    Run { status, stdout: stdout.join().expect("stdout reader"), stderr: stderr.join().expect("stderr reader") }
}

fn number(json: &Value, field: &str) -> u64 {
    json[field].as_u64().unwrap_or_else(|| panic!("{field} is not a whole number in {json}"))
}

/// The fields every successful run must have, all points delivered.
fn assert_delivered(json: &Value, signal: &str, points: u64) {
    assert_eq!(json["signal"], signal, "{json}");
    for (field, expected) in [("pushed", points), ("acked", points), ("dropped", 0), ("rejected", 0), ("failed", 0)] {
        assert_eq!(number(json, field), expected, "{field} in {json}");
    }
    let seconds = json["seconds"].as_f64().expect("seconds");
    let rate = json["points_per_sec"].as_f64().expect("points_per_sec");
    assert!(seconds > 0.0, "{json}");
    // The line rounds seconds to the millisecond and the rate to a whole
    // number, both computed from the unrounded time.
    let (fastest, slowest) = (points as f64 / (seconds - 0.0005), points as f64 / (seconds + 0.0005));
    assert!(slowest - 1.0 <= rate && rate <= fastest + 1.0, "points_per_sec {rate} is not acked / seconds: {json}");
    assert!(number(json, "requests") >= 1, "{json}");
}

#[test]
fn every_signal_arrives_at_the_in_process_receiver() {
    for signal in ["metrics", "traces", "logs"] {
        let run = run(&["--signal", signal, "--points", "20000", "--series", "300", "--batch", "1000", "--block"]);
        assert!(run.status.success(), "{signal}: {:?}\n{}", run.status, run.stderr);
        let json = run.json();
        assert_delivered(&json, signal, 20_000);
        assert_eq!(json["protocol"], "grpc", "the default: {json}");
        assert_eq!(number(&json, "receiver_received"), 20_000, "{json}");
        assert!(run.stderr.contains("(in-process receiver)"), "{}", run.stderr);
        assert!(run.stderr.contains("pushed 20000 acked 20000 dropped 0"), "no final progress line:\n{}", run.stderr);
    }
}

/// `--protocol http/protobuf`: the in-process receiver's HTTP listener gets
/// every signal, and the JSON line says which protocol was used.
#[test]
fn every_signal_arrives_over_http_at_the_in_process_receiver() {
    for signal in ["metrics", "traces", "logs"] {
        let args =
            ["--protocol", "http/protobuf", "--signal", signal, "--points", "20000", "--batch", "1000", "--block"];
        let run = run(&args);
        assert!(run.status.success(), "{signal}: {:?}\n{}", run.status, run.stderr);
        let json = run.json();
        assert_delivered(&json, signal, 20_000);
        assert_eq!(json["protocol"], "http/protobuf", "{json}");
        assert_eq!(number(&json, "receiver_received"), 20_000, "{json}");
        assert!(run.stderr.contains("over http/protobuf to http://127.0.0.1:"), "{}", run.stderr);
    }
}

/// Without the flag, `OTEL_EXPORTER_OTLP_PROTOCOL` decides, and the flag
/// wins over it.
#[test]
fn the_protocol_comes_from_the_environment_unless_the_flag_says_otherwise() {
    let env = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
    let run = run_with_env(&["--points", "5000", "--block"], &env);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let json = run.json();
    assert_delivered(&json, "metrics", 5_000);
    assert_eq!(json["protocol"], "http/protobuf", "{json}");

    let run = run_with_env(&["--protocol", "grpc", "--points", "5000", "--block"], &env);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    assert_eq!(run.json()["protocol"], "grpc");
}

/// OTLP/HTTP with gzip to rotel's HTTP receiver: rotel counts every point
/// in exactly loadgen's requests.
#[test]
fn gzip_requests_over_http_to_rotel_all_arrive() {
    let rotel = Rotel::start();
    let run = run(&[
        "--protocol",
        "http/protobuf",
        "--endpoint",
        &rotel.http_endpoint(),
        "--points",
        "30000",
        "--max-request-bytes",
        "65536",
        "--compression",
        "gzip",
        "--block",
    ]);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let json = run.json();
    assert_delivered(&json, "metrics", 30_000);
    assert_eq!(json["protocol"], "http/protobuf", "{json}");
    let requests = number(&json, "requests");
    assert!(requests >= 10, "30 000 points in 64 KiB requests: {json}");
    let counts = rotel
        .wait_until(Duration::from_secs(30), |c| c.requests_of(Signal::Metrics) >= requests)
        .unwrap_or_else(|e| panic!("rotel did not log {requests} requests:\n{e}"));
    assert_eq!((counts.items(Signal::Metrics), counts.requests_of(Signal::Metrics)), (30_000, requests));
}

/// With try_push a full queue drops: whatever the timing, every point offered
/// is either acknowledged or counted as dropped, and the receiver got exactly
/// the acknowledged ones.
#[test]
fn try_push_counts_every_point_as_acked_or_dropped() {
    let run = run(&["--points", "50000", "--queue", "64", "--batch", "32", "--in-flight", "1"]);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let json = run.json();
    let (acked, dropped) = (number(&json, "acked"), number(&json, "dropped"));
    assert_eq!(number(&json, "pushed"), 50_000, "{json}");
    assert_eq!(acked + dropped, 50_000, "{json}");
    assert_eq!(number(&json, "receiver_received"), acked, "{json}");
    assert_eq!((number(&json, "rejected"), number(&json, "failed")), (0, 0), "{json}");
}

#[test]
fn gzip_requests_to_rotel_all_arrive() {
    let rotel = Rotel::start();
    let run = run(&[
        "--endpoint",
        &rotel.endpoint(),
        "--points",
        "30000",
        "--max-request-bytes",
        "65536",
        "--compression",
        "gzip",
        "--block",
    ]);
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    let json = run.json();
    assert_delivered(&json, "metrics", 30_000);
    assert!(json["receiver_received"].is_null(), "no in-process receiver with --endpoint: {json}");
    let requests = number(&json, "requests");
    assert!(requests >= 10, "30 000 points in 64 KiB requests: {json}");
    let counts = rotel
        .wait_until(Duration::from_secs(30), |c| c.requests_of(Signal::Metrics) >= requests)
        .unwrap_or_else(|e| panic!("rotel did not log {requests} requests:\n{e}"));
    assert_eq!((counts.items(Signal::Metrics), counts.requests_of(Signal::Metrics)), (30_000, requests));
}

#[test]
fn a_failed_final_flush_exits_non_zero_and_still_reports() {
    // rotel refuses zstd with UNIMPLEMENTED.
    let rotel = Rotel::start();
    let run = run(&["--endpoint", &rotel.endpoint(), "--points", "5000", "--compression", "zstd", "--block"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let json = run.json();
    assert_eq!((number(&json, "acked"), number(&json, "failed")), (0, 5_000), "{json}");
    assert!(run.stderr.contains("loadgen: flush failed"), "{}", run.stderr);
    assert!(run.stderr.contains("Unimplemented"), "{}", run.stderr);
}

#[test]
fn a_bad_command_line_exits_2_naming_the_flag() {
    for (args, expected) in [
        (&["--points", "abc"][..], &["--points", "\"abc\"", "positive integer"][..]),
        (&["--points", "0"], &["--points", "\"0\""]),
        (&["--in-flight=-1"], &["--in-flight", "\"-1\""]),
        (&["--bogus"], &["unknown flag --bogus"]),
        (&["--endpoint", "collector:4317"], &["--endpoint", "\"collector:4317\"", "http://"]),
        (&["--compression", "lz4"], &["--compression", "\"lz4\"", "none, gzip or zstd"]),
        (&["--protocol", "http/json"], &["--protocol", "\"http/json\"", "grpc or http/protobuf"]),
        (&["--signal", "profiles"], &["--signal", "\"profiles\""]),
        (&["--series"], &["--series needs a value"]),
        (&["--block=yes"], &["--block"]),
    ] {
        let run = run(args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?} printed to stdout: {}", run.stdout);
        for text in expected {
            assert!(run.stderr.contains(text), "{args:?}: stderr does not name {text}: {}", run.stderr);
        }
    }
}

#[test]
fn help_lists_every_flag() {
    let run = run(&["--help"]);
    assert!(run.status.success());
    for flag in [
        "--endpoint",
        "--protocol",
        "--signal",
        "--points",
        "--series",
        "--batch",
        "--queue",
        "--in-flight",
        "--max-request-bytes",
        "--compression",
        "--producers",
        "--block",
        "--help",
    ] {
        assert!(run.stdout.contains(flag), "--help does not mention {flag}");
    }
}
