//! A real OTLP/gRPC collector for the integration tests: `rotel-agent` from the
//! PyPI package `rotel`, run with the blackhole exporter and its basic debug log,
//! which prints one line per received request with the number of metric data
//! points, spans or log records in it. A reader thread parses those lines into
//! counters that a test compares with what it sent.
//!
//! ```ignore
//! mod support;
//! use support::rotel::{Rotel, Signal};
//!
//! let rotel = Rotel::start(); // panics, saying what to run, if rotel is not installed
//! // ... export 15 points to rotel.endpoint() ...
//! assert_eq!(rotel.wait_for(Signal::Metrics, 15, Duration::from_secs(10)).unwrap(), 15);
//! ```
//!
//! Install rotel with `scripts/install-test-deps.sh`; see `tests/support/ROTEL.md`
//! for the command line, the line formats and rotel's quirks.
//!
//! Counters are cumulative over the life of a [`Rotel`], across [`Rotel::kill`]
//! and [`Rotel::restart`]: they count what every incarnation logged.
//!
//! It needs nothing but std and this crate's `Signal`, so the `vs-official` benchmark (`bench/vs_official/`)
//! includes this file alone. Its parser's own tests are in `tests/support_selftest.rs`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long [`Rotel::start`] and [`Rotel::restart`] wait for the gRPC port to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Raw output lines kept for diagnostics (the most recent ones).
const KEPT_LINES: usize = 2_000;

/// How long [`Rotel::kill`] waits for the reader threads to reach end of output.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts at [`Rotel::start`] when the free port it picked was taken before rotel bound it.
const START_ATTEMPTS: usize = 5;

/// The crate's own signal enum: the one meaning of `Signal` everywhere.
pub use otlp_sink::Signal;

/// Every signal, in the order of [`Counts`]' arrays.
pub const SIGNALS: [Signal; 3] = [Signal::Metrics, Signal::Traces, Signal::Logs];

/// How rotel's debug log names each signal of [`SIGNALS`], in its order:
/// the word in `Received <word>.` and `data_type="<word>"`, the field with
/// the item count (`metrics=N` counts points), and the field with the
/// number of resource entries.
const LOG_WORDS: [(&str, &str, &str); 3] = [
    ("metrics", "metrics", "resource_metrics"),
    ("traces", "spans", "resource_spans"),
    ("logs", "logs", "resource_logs"),
];

/// A signal's words in rotel's debug log.
trait LogWords: Sized {
    /// The signal's place in [`SIGNALS`] and in [`Counts`]' arrays.
    fn index(self) -> usize;
    /// The word in `Received <word>.` and in `data_type="<word>"`.
    fn word(self) -> &'static str {
        LOG_WORDS[self.index()].0
    }
    /// The field that carries the item count.
    fn count_key(self) -> &'static str {
        LOG_WORDS[self.index()].1
    }
    /// The field that carries the number of resource entries.
    fn resource_key(self) -> &'static str {
        LOG_WORDS[self.index()].2
    }
}

impl LogWords for Signal {
    fn index(self) -> usize {
        SIGNALS.iter().position(|s| *s == self).expect("one of the three OTLP signals")
    }
}

/// What one per-request line of rotel's basic debug log says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Which export service received the request.
    pub signal: Signal,
    /// Metric data points, spans or log records in the request.
    pub items: u64,
    /// `resource_metrics` / `resource_spans` / `resource_logs` entries in the request.
    pub resources: u64,
}

/// How one output line of rotel reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A per-request debug-log line.
    Received(Received),
    /// rotel's start-up line, printed once both listeners are bound.
    Started,
    /// A line that names a received request but whose counts do not parse: a
    /// format change. Counted, so a wait fails with the line in its diagnostics
    /// instead of silently missing items.
    Malformed(String),
    /// Anything else.
    Other,
}

/// Parses one line of rotel's text log output (ANSI colour codes allowed).
///
/// The lines it counts look like this (rotel 0.0.1-alpha10, `--debug-log-verbosity basic`):
///
/// ```text
/// 2026-11-30T01:12:38.219996Z  INFO Received metrics. data_type="metrics" resource_metrics=1 metrics=15
/// 2026-11-30T01:12:38.262034Z  INFO Received traces. data_type="traces" resource_spans=1 spans=7
/// 2026-11-30T01:12:38.262865Z  INFO Received logs. data_type="logs" resource_logs=1 logs=4
/// ```
pub fn parse_line(raw: &str) -> Line {
    let line = strip_ansi(raw);
    if line.contains("Starting Rotel.") {
        return Line::Started;
    }
    for signal in SIGNALS {
        let message = format!("Received {}.", signal.word());
        let Some(at) = line.find(&message) else { continue };
        let fields = &line[at + message.len()..];
        return match parse_fields(signal, fields) {
            Some(received) => Line::Received(received),
            None => Line::Malformed(line),
        };
    }
    Line::Other
}

/// Reads `key=value` fields; requires the count and, if present, a matching `data_type`.
fn parse_fields(signal: Signal, fields: &str) -> Option<Received> {
    let (mut items, mut resources) = (None, None);
    for (key, value) in fields.split_whitespace().filter_map(|token| token.split_once('=')) {
        match key {
            "data_type" if value.trim_matches('"') != signal.word() => return None,
            k if k == signal.count_key() => items = Some(value.parse().ok()?),
            k if k == signal.resource_key() => resources = Some(value.parse().ok()?),
            _ => {}
        }
    }
    Some(Received { signal, items: items?, resources: resources.unwrap_or(0) })
}

/// Removes ANSI escape sequences (`ESC [ ... final-byte`). rotel colours its
/// output unless `NO_COLOR` is set, even when it writes to a pipe.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                // Parameters and intermediates, up to the final byte '@'..='~'.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Items per signal, indexed like [`SIGNALS`]: points, spans, log records.
    /// Crate-visible so that `tests/support_selftest.rs` can build a snapshot.
    pub(crate) items: [u64; 3],
    /// Request lines per signal.
    pub(crate) requests: [u64; 3],
    /// Lines that named a received request but did not parse.
    pub malformed: u64,
}

impl Counts {
    /// Items of one signal: metric data points, spans or log records.
    pub fn items(&self, signal: Signal) -> u64 {
        self.items[signal.index()]
    }

    /// Requests of one signal.
    pub fn requests_of(&self, signal: Signal) -> u64 {
        self.requests[signal.index()]
    }

    /// Requests of all signals.
    pub fn requests(&self) -> u64 {
        self.requests.iter().sum()
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metric points {} in {} requests, spans {} in {}, log records {} in {}, malformed lines {}",
            self.items[0],
            self.requests[0],
            self.items[1],
            self.requests[1],
            self.items[2],
            self.requests[2],
            self.malformed
        )
    }
}

/// State the reader threads write and the test reads. Guarded by `Shared::state`;
/// every change is announced on `Shared::changed`.
#[derive(Default)]
struct State {
    counts: Counts,
    /// The most recent output lines, each prefixed with `[g<generation> <stream>]`.
    lines: VecDeque<String>,
    /// Incarnation of rotel: 1 for the first start, +1 per restart.
    generation: u32,
    /// The current generation printed its start-up line.
    started: bool,
    /// The harness is killing the current generation: its end of output is expected.
    killing: bool,
    /// The current generation's output ended without the harness killing it.
    died: bool,
    /// What the process is doing, for diagnostics.
    process: String,
}

impl State {
    fn push_line(&mut self, line: String) {
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// The command line, for diagnostics.
    command: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A reader thread never panics while holding the lock; if a test thread
        // did, the counters are still consistent (each update is one statement).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `done(counts)` holds, rotel dies on its own, or `timeout` passes.
    fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&Counts) -> bool) -> Result<Counts, WaitError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut state = self.lock();
        loop {
            if done(&state.counts) {
                return Ok(state.counts);
            }
            let now = Instant::now();
            if state.died || now >= deadline {
                let reason = if state.died { "rotel exited on its own" } else { "timed out" };
                return Err(self.diagnose(&state, format!("{reason} after {:?} waiting for {what}", start.elapsed())));
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn diagnose(&self, state: &State, reason: String) -> WaitError {
        WaitError(Box::new(Diagnostics {
            reason,
            counts: state.counts,
            process: format!("generation {}: {}", state.generation, state.process),
            command: self.command.clone(),
            recent_lines: state.lines.iter().rev().take(40).rev().cloned().collect(),
        }))
    }
}

/// A failed wait, with what a reader of the test failure needs. Boxed: it is
/// large and travels in every `Result` of a wait.
pub struct WaitError(Box<Diagnostics>);

struct Diagnostics {
    /// What was awaited and why the wait ended.
    reason: String,
    /// The counters when the wait ended.
    counts: Counts,
    /// The state of the rotel process.
    process: String,
    /// The command line rotel runs with.
    command: String,
    /// The last output lines of rotel, oldest first.
    recent_lines: Vec<String>,
}

impl WaitError {
    /// The counters when the wait ended.
    pub fn counts(&self) -> Counts {
        self.0.counts
    }

    /// rotel's last output lines when the wait ended, oldest first.
    pub fn recent_lines(&self) -> &[String] {
        &self.0.recent_lines
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        writeln!(f, "{}", d.reason)?;
        writeln!(f, "  counted: {}", d.counts)?;
        writeln!(f, "  process: {}", d.process)?;
        writeln!(f, "  command: {}", d.command)?;
        writeln!(f, "  last {} output lines:", d.recent_lines.len())?;
        for line in &d.recent_lines {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

// `Result::unwrap` and `expect` print the Debug form: make it the readable one.
impl fmt::Debug for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WaitError {}

/// A running `rotel-agent` on loopback ports of its own, killed on drop.
///
/// Its gRPC port stays the same across [`Rotel::restart`]; its HTTP port (rotel
/// always opens one) too.
pub struct Rotel {
    program: PathBuf,
    args: Vec<OsString>,
    grpc: SocketAddr,
    http: SocketAddr,
    /// `Some` while a process of the current generation may be running.
    child: Option<Child>,
    /// One message per reader thread of the current generation when its stream ends.
    readers_done: Option<mpsc::Receiver<()>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Rotel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotel").field("grpc", &self.grpc).field("pid", &self.pid()).finish_non_exhaustive()
    }
}

impl Rotel {
    /// Starts rotel on free loopback ports and waits until its gRPC and HTTP
    /// ports accept connections.
    ///
    /// # Panics
    ///
    /// If rotel is not installed (the message says to run `scripts/install-test-deps.sh`),
    /// does not start, or does not listen within [`READY_TIMEOUT`].
    pub fn start() -> Rotel {
        Self::start_with_args(std::iter::empty::<&str>())
    }

    /// Like [`Rotel::start`], with extra `rotel-agent start` arguments appended,
    /// e.g. `["--otlp-grpc-max-recv-msg-size-mib", "8"]`.
    ///
    /// # Panics
    ///
    /// As [`Rotel::start`].
    pub fn start_with_args<I, S>(extra: I) -> Rotel
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = rotel_agent_path();
        let extra: Vec<OsString> = extra.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let (grpc, http) = free_ports();
            let mut rotel = Rotel::new(program.clone(), grpc, http, &extra);
            match rotel.spawn_and_wait_ready() {
                Ok(()) => return rotel,
                // Another process took a port between our probe and rotel's bind: pick others.
                Err(failure) if failure.address_in_use => last_failure = failure.message,
                Err(failure) => panic!("{}", failure.message),
            }
        }
        panic!("rotel could not bind free ports in {START_ATTEMPTS} attempts; last failure:\n{last_failure}");
    }

    fn new(program: PathBuf, grpc: SocketAddr, http: SocketAddr, extra: &[OsString]) -> Rotel {
        let mut args: Vec<OsString> = [
            "start",
            "--otlp-grpc-endpoint",
            &grpc.to_string(),
            // rotel always opens an HTTP receiver too (default localhost:4318, shared
            // by every test): give it a free port of its own.
            "--otlp-http-endpoint",
            &http.to_string(),
            "--exporter",
            "blackhole",
            // One flag per signal: rotel refuses "metrics,traces,logs".
            "--debug-log",
            "metrics",
            "--debug-log",
            "traces",
            "--debug-log",
            "logs",
            // "detailed" dumps whole requests and prints no count line.
            "--debug-log-verbosity",
            "basic",
            "--log-format",
            "text",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.extend(extra.iter().cloned());
        let command = std::iter::once(program.as_os_str())
            .chain(args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let shared = Arc::new(Shared {
            state: Mutex::new(State { process: "not started".into(), ..State::default() }),
            changed: Condvar::new(),
            command: format!("RUST_LOG=info NO_COLOR=1 {command}"),
        });
        Rotel { program, args, grpc, http, child: None, readers_done: None, shared }
    }

    /// `http://127.0.0.1:PORT`, the OTLP/gRPC endpoint (plaintext).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The gRPC listen address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// `http://127.0.0.1:PORT`, the OTLP/HTTP base endpoint (plaintext): an
    /// exporter appends `/v1/<signal>`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The OTLP/HTTP listen address (`--otlp-http-endpoint`).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The process id of the current generation, if it was started and not killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Incarnations so far: 1 after [`Rotel::start`], +1 per [`Rotel::restart`].
    pub fn generation(&self) -> u32 {
        self.shared.lock().generation
    }

    /// The counters now.
    pub fn counts(&self) -> Counts {
        self.shared.lock().counts
    }

    /// Metric data points received (all metric types), over all generations.
    pub fn metric_points(&self) -> u64 {
        self.counts().items(Signal::Metrics)
    }

    /// Spans received, over all generations.
    pub fn spans(&self) -> u64 {
        self.counts().items(Signal::Traces)
    }

    /// Log records received, over all generations.
    pub fn log_records(&self) -> u64 {
        self.counts().items(Signal::Logs)
    }

    /// Export requests received (all signals, empty ones included), over all generations.
    /// Rejected requests (e.g. too large) print no line and are not counted.
    pub fn requests(&self) -> u64 {
        self.counts().requests()
    }

    /// The most recent output lines (stdout and stderr), oldest first, each
    /// prefixed with `[g<generation> stdout|stderr]`.
    pub fn lines(&self) -> Vec<String> {
        self.shared.lock().lines.iter().cloned().collect()
    }

    /// The command line rotel runs with (environment included).
    pub fn command_line(&self) -> String {
        self.shared.command.clone()
    }

    /// Blocks until at least `expected` items of `signal` were counted and
    /// returns the count, which can be above `expected` (assert equality
    /// yourself). rotel may print a request's line just after it answered it,
    /// so wait for counts rather than reading them right after a send.
    ///
    /// # Errors
    ///
    /// When `timeout` passes first, or rotel exits on its own (not by
    /// [`Rotel::kill`]); the error shows the counters, the process state and
    /// rotel's last output lines.
    ///
    /// Blocks the calling thread: from async code use [`Rotel::wait_for_async`].
    pub fn wait_for(&self, signal: Signal, expected: u64, timeout: Duration) -> Result<u64, WaitError> {
        let what = format!("{expected} {signal:?} items");
        self.shared.wait_until(timeout, &what, |c| c.items(signal) >= expected).map(|c| c.items(signal))
    }

    /// [`Rotel::wait_for`] without blocking the async runtime (it waits on a
    /// blocking-pool thread). Needs a tokio runtime; its timeout is real time,
    /// so it works (and means the same) under paused tokio time too.
    ///
    /// # Errors
    ///
    /// As [`Rotel::wait_for`].
    pub async fn wait_for_async(&self, signal: Signal, expected: u64, timeout: Duration) -> Result<u64, WaitError> {
        let shared = Arc::clone(&self.shared);
        let what = format!("{expected} {signal:?} items");
        tokio::task::spawn_blocking(move || shared.wait_until(timeout, &what, |c| c.items(signal) >= expected))
            .await
            .expect("the waiting thread panicked")
            .map(|c| c.items(signal))
    }

    /// Blocks until `done(counts)` holds; the general form of [`Rotel::wait_for`].
    ///
    /// # Errors
    ///
    /// As [`Rotel::wait_for`].
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&Counts) -> bool) -> Result<Counts, WaitError> {
        self.shared.wait_until(timeout, "a condition on the counts", done)
    }

    /// Whether the current generation's process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                self.shared.lock().process = format!("exited on its own: {status}");
                false
            }
            Some(Err(_)) | None => false,
        }
    }

    /// Kills rotel with SIGKILL (no graceful shutdown: what it had accepted but
    /// not yet logged is lost, as in a crash), reaps it and waits until its
    /// output has been read to the end, so the counters are final for this
    /// generation when this returns. Does nothing if it is not running.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        self.shared.lock().killing = true;
        // Fails only if the process was already reaped; then there is nothing to kill.
        let _ = child.kill();
        let status = child.wait();
        self.drain_readers();
        let note = match status {
            Ok(status) => format!("killed by the harness ({status})"),
            Err(e) => format!("killed by the harness (wait failed: {e})"),
        };
        self.shared.lock().process = note;
    }

    /// Kills rotel if it runs, then starts it again on the same ports with the
    /// same arguments and waits until it listens. Counters keep counting.
    ///
    /// # Panics
    ///
    /// If rotel does not start or does not listen within [`READY_TIMEOUT`].
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.spawn_and_wait_ready() {
                Ok(()) => return,
                // Ports are free right after SIGKILL (rotel's listeners use
                // SO_REUSEADDR); if another process grabbed one, it may let go.
                Err(failure) if failure.address_in_use && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100))
                }
                Err(failure) => panic!("restart on {}: {}", self.grpc, failure.message),
            }
        }
    }

    /// Spawns the next generation and waits until it printed its start-up line
    /// and its gRPC port accepts a connection.
    fn spawn_and_wait_ready(&mut self) -> Result<(), StartFailure> {
        let mut command = Command::new(&self.program);
        command.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // ROTEL_* variables configure rotel (e.g. ROTEL_LOG_FORMAT=json,
        // ROTEL_DAEMON): keep the caller's out. RUST_LOG=warn would hide the
        // count lines, which are INFO events; NO_COLOR keeps the lines plain.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ROTEL_") {
                command.env_remove(&key);
            }
        }
        command.env("RUST_LOG", "info").env("NO_COLOR", "1");

        let generation = {
            let mut state = self.shared.lock();
            state.generation += 1;
            state.started = false;
            state.killing = false;
            state.died = false;
            state.process = "starting".into();
            state.generation
        };
        let mut child = command.spawn().map_err(|e| StartFailure {
            address_in_use: false,
            message: format!("cannot run {}: {e}", self.program.display()),
        })?;
        let (done_tx, done_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(stdout, "stdout", generation, Arc::clone(&self.shared), done_tx.clone());
        spawn_reader(stderr, "stderr", generation, Arc::clone(&self.shared), done_tx);
        self.readers_done = Some(done_rx);
        self.shared.lock().process = format!("running, pid {}", child.id());
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                self.drain_readers();
                let mut state = self.shared.lock();
                state.process = format!("exited during start-up: {status}");
                let address_in_use = state
                    .lines
                    .iter()
                    .any(|l| l.starts_with(&format!("[g{generation} ")) && l.contains("Address already in use"));
                let reason = format!("rotel exited during start-up ({status})");
                return Err(StartFailure { address_in_use, message: self.shared.diagnose(&state, reason).to_string() });
            }
            let started = self.shared.lock().started;
            // Both receivers: the HTTP tests send to the second.
            if started
                && TcpStream::connect_timeout(&self.grpc, Duration::from_millis(200)).is_ok()
                && TcpStream::connect_timeout(&self.http, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let reason =
                    format!("rotel did not listen on {} and {} within {READY_TIMEOUT:?}", self.grpc, self.http);
                let message = self.shared.diagnose(&self.shared.lock(), reason).to_string();
                self.kill();
                return Err(StartFailure { address_in_use: false, message });
            }
            // Wake on the next output line, or re-check the port and the process
            // every 20 ms.
            let state = self.shared.lock();
            if !state.started {
                drop(self.shared.changed.wait_timeout(state, Duration::from_millis(20)));
            } else {
                drop(state);
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Waits (bounded) until both reader threads of the current generation hit end of output.
    fn drain_readers(&mut self) {
        let Some(done) = self.readers_done.take() else { return };
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if done.recv_timeout(left).is_err() {
                // Only a process that inherited rotel's pipes keeps them open; rotel
                // starts none. Leave the thread; it ends when the pipe closes.
                self.shared.lock().push_line("[harness] rotel output still open after the process ended".into());
                return;
            }
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        self.kill();
    }
}

struct StartFailure {
    /// rotel said a port was taken.
    address_in_use: bool,
    /// Diagnostics for the panic message.
    message: String,
}

/// Reads one output stream of one generation to its end, line by line.
fn spawn_reader(
    stream: impl Read + Send + 'static,
    name: &'static str,
    generation: u32,
    shared: Arc<Shared>,
    done: mpsc::Sender<()>,
) {
    thread::Builder::new()
        .name(format!("rotel-g{generation}-{name}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\n', '\r']);
                let parsed = parse_line(text);
                let mut state = shared.lock();
                match parsed {
                    Line::Received(r) => {
                        state.counts.items[r.signal.index()] += r.items;
                        state.counts.requests[r.signal.index()] += 1;
                    }
                    Line::Started if state.generation == generation => state.started = true,
                    Line::Malformed(_) => state.counts.malformed += 1,
                    Line::Started | Line::Other => {}
                }
                state.push_line(format!("[g{generation} {name}] {text}"));
                drop(state);
                shared.changed.notify_all();
            }
            {
                let mut state = shared.lock();
                if state.generation == generation && !state.killing {
                    state.died = true;
                    state.process = format!("exited on its own (its {name} closed; was {})", state.process);
                }
            }
            shared.changed.notify_all();
            // The receiver is gone if the Rotel stopped waiting for this generation.
            let _ = done.send(());
        })
        .expect("spawn a rotel output reader thread");
}

/// Two distinct free loopback ports (gRPC, HTTP). Free now; rotel binds them a
/// moment later, and [`Rotel::start`] retries if another process won the race.
fn free_ports() -> (SocketAddr, SocketAddr) {
    let bind = || TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr().map(|a| (l, a)));
    // Both listeners are held at once, so the two ports differ.
    let (_grpc_listener, grpc) = bind().expect("bind a free loopback port");
    let (_http_listener, http) = bind().expect("bind a free loopback port");
    (grpc, http)
}

/// The repository's root: the manifest directory of the crate this file is
/// compiled into, or its nearest ancestor with `scripts/install-test-deps.sh`.
/// The two differ for the `vs-official` workspace member (`bench/vs_official/`),
/// which includes this file too.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.ancestors().find(|dir| dir.join("scripts").join("install-test-deps.sh").is_file());
    root.unwrap_or(manifest).to_path_buf()
}

/// The venv that `scripts/install-test-deps.sh` fills: `$TEST_VENV`, else `<repo>/target/test-venv`.
pub fn test_venv() -> PathBuf {
    match std::env::var_os("TEST_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target").join("test-venv"),
    }
}

/// The venv's Python, which has `grpcio` and `opentelemetry-proto` for `scripts/otlp_send.py`.
///
/// # Panics
///
/// If the venv has not been created.
pub fn venv_python() -> PathBuf {
    let python = test_venv().join("bin").join("python");
    assert!(python.exists(), "{} not found: run scripts/install-test-deps.sh first", python.display());
    python
}

/// `scripts/otlp_send.py`, the independent OTLP sender.
pub fn otlp_send_script() -> PathBuf {
    repo_root().join("scripts").join("otlp_send.py")
}

/// The `rotel-agent` binary: `$ROTEL_AGENT`, else the path that
/// `scripts/install-test-deps.sh` wrote to `<venv>/rotel-agent.path`.
///
/// # Panics
///
/// If neither names an existing file.
pub fn rotel_agent_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ROTEL_AGENT") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "ROTEL_AGENT={} is not a file", path.display());
        return path;
    }
    let path_file = test_venv().join("rotel-agent.path");
    let Ok(text) = std::fs::read_to_string(&path_file) else {
        panic!(
            "rotel is not installed: {} is missing. Run scripts/install-test-deps.sh \
             (or set ROTEL_AGENT to a rotel-agent binary).",
            path_file.display()
        );
    };
    let path = PathBuf::from(text.trim());
    assert!(
        path.is_file(),
        "{} names {}, which does not exist: run scripts/install-test-deps.sh again",
        path_file.display(),
        path.display()
    );
    path
}
