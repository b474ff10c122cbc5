//! A TLS OTLP/gRPC server that is not this crate's: `scripts/otlp_tls_server.py`,
//! grpcio with `grpc.ssl_server_credentials`, run with the test venv's Python
//! (`scripts/install-test-deps.sh`; found like the rest of the venv, see
//! `rotel::venv_python`).
//!
//! The server prints its port once it serves, then one line per request with
//! its item count; a reader thread turns those lines into a channel that
//! [`GrpcioTls::start`] and [`GrpcioTls::wait_for_items`] wait on, each with a
//! deadline. The server stops when its standard input closes, which dropping
//! the [`GrpcioTls`] does (it also kills it and reaps it).
//!
//! Include with `#[path = "support/grpcio_tls.rs"] mod grpcio_tls;`.

// Each test crate that includes this file uses a different subset of it.
#![allow(dead_code)]

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

/// A running `otlp_tls_server.py`.
pub struct GrpcioTls {
    child: Child,
    port: u16,
    /// The server's request lines, parsed: item counts in arrival order.
    /// Disconnected when the server's standard output closes.
    requests: mpsc::Receiver<u64>,
    /// Items in the requests received so far.
    items: u64,
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
        let (requests_tx, requests) = mpsc::channel();
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
                    let _ = requests_tx.send(items);
                }
            }
        });

        let mut server = Self { child, port: 0, requests, items: 0 };
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

    /// Items (points, spans or log records) in the requests received so far,
    /// without waiting.
    pub fn items_so_far(&mut self) -> u64 {
        while let Ok(items) = self.requests.try_recv() {
            self.items += items;
        }
        self.items
    }

    /// Waits until the server has received at least `items` items, or
    /// `timeout` has passed; returns what it received.
    pub fn wait_for_items(&mut self, items: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while self.items < items {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.requests.recv_timeout(left) {
                Ok(received) => self.items += received,
                Err(_) => break,
            }
        }
        self.items
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
