//! A TLS OTLP/gRPC server that is not this crate's: `scripts/otlp_tls_server.py`,
//! grpcio with `grpc.ssl_server_credentials`, run with the test venv's Python
//! (`scripts/install-test-deps.sh`; found like the rest of the venv, see
//! `rotel::venv_python`).
//!
//! The server prints its port once it serves, then one line per request with
//! its item count and the client certificate's name, before it answers; a
//! reader thread turns those lines into a channel that [`GrpcioTls::start`]
//! and [`GrpcioTls::wait_for_client`] wait on, each with a deadline. The server stops when its standard input closes, which dropping
//! the [`GrpcioTls`] does (it also kills it and reaps it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long [`GrpcioTls::start`] waits for the server to print its port
/// (Python and grpcio start in well under a second; this is for a loaded machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// `scripts/otlp_tls_server.py`.
pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("otlp_tls_server.py")
}

/// The server's certificate and key, and the CA whose client certificates it
/// requires (none: it asks for no client certificate).
pub struct ServerFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: Option<&'a Path>,
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Metric data points, spans or log records in it.
    pub items: u64,
    /// The common name of the client's certificate, empty without one.
    pub client: String,
}

/// A running `otlp_tls_server.py`.
pub struct GrpcioTls {
    child: Child,
    port: u16,
    /// The server's request lines, parsed, in arrival order. Disconnected
    /// when the server's standard output closes.
    lines: mpsc::Receiver<Request>,
    /// The requests received so far, in arrival order.
    received: Vec<Request>,
}

impl GrpcioTls {
    /// Starts the server with `python` and waits until it serves.
    ///
    /// # Panics
    ///
    /// If it does not start, or prints no port within [`READY_TIMEOUT`].
    pub fn start(python: &Path, files: ServerFiles<'_>) -> Self {
        let mut command = Command::new(python);
        command.arg(server_script()).arg("--cert").arg(files.cert).arg("--key").arg(files.key);
        if let Some(ca) = files.client_ca {
            command.arg("--client-ca").arg(ca);
        }
        // stderr is inherited: grpcio's and Python's complaints show in the test's output.
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("start {}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");

        let (port_tx, port_rx) = mpsc::channel();
        let (requests_tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let record: Value = match serde_json::from_str(&line) {
                    Ok(record) => record,
                    Err(e) => {
                        eprintln!("otlp_tls_server.py printed {line:?}, not JSON: {e}");
                        continue;
                    }
                };
                if let Some(port) = record.get("port").and_then(Value::as_u64) {
                    let _ = port_tx.send(port);
                } else if let Some(items) = record.get("items").and_then(Value::as_u64) {
                    let client = record.get("client").and_then(Value::as_str).unwrap_or_default().to_owned();
                    let _ = requests_tx.send(Request { items, client });
                }
            }
        });

        let mut server = Self { child, port: 0, lines, received: Vec::new() };
        let port = match port_rx.recv_timeout(READY_TIMEOUT) {
            Ok(port) => port,
            Err(e) => {
                let status = server.child.try_wait();
                panic!("otlp_tls_server.py printed no port within {READY_TIMEOUT:?} ({e}); exit status {status:?}")
            }
        };
        server.port = u16::try_from(port).expect("a port number");
        server
    }

    /// The endpoint to export to: `https://localhost:PORT`, the name the
    /// server's certificate is for.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Waits until the server has printed a request from the client whose
    /// certificate is named `client`, or `timeout` has passed, and returns
    /// every request received so far. Lines come in the order the server
    /// printed them, so once `client`'s is in, every request received before
    /// it is too.
    pub fn wait_for_client(&mut self, client: &str, timeout: Duration) -> &[Request] {
        let deadline = Instant::now() + timeout;
        while !self.received.iter().any(|r| r.client == client) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(request) => self.received.push(request),
                Err(_) => break,
            }
        }
        &self.received
    }
}

impl Drop for GrpcioTls {
    fn drop(&mut self) {
        // Closing stdin asks the server to stop; the kill makes sure.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
