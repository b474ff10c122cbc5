//! A real HTTP proxy for the proxy tests: proxy.py (PyPI `proxy.py`,
//! installed into the test venv by `scripts/install-test-deps.sh`), which
//! forwards plain-HTTP requests and tunnels `CONNECT`, and can ask for
//! basic credentials. Its access log says which requests went through it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::rotel::venv_python;

/// A running proxy.py on a loopback port, killed on drop.
pub struct HttpProxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpProxy {
    /// Starts proxy.py; with `credentials` (`user:password`), it answers
    /// 407 to requests without them.
    ///
    /// # Panics
    ///
    /// If proxy.py does not start within 30 s.
    pub fn start(credentials: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port_file = dir.path().join("port");
        let log = dir.path().join("access.log");
        let mut command = Command::new(venv_python());
        command
            .args(["-m", "proxy", "--hostname", "127.0.0.1", "--port", "0", "--num-acceptors", "1"])
            .args(["--num-workers", "1", "--threaded", "--log-level", "INFO"])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log-file")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(credentials) = credentials {
            command.args(["--basic-auth", credentials]);
        }
        let mut child = command.spawn().expect("proxy.py starts (run scripts/install-test-deps.sh)");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            let written = std::fs::read_to_string(&port_file).ok();
            if let Some(port) = written.and_then(|p| p.trim().parse().ok()) {
                break port;
            }
            if let Some(status) = child.try_wait().expect("proxy.py's status") {
                panic!("proxy.py exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "proxy.py did not write its port within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, port, log, _dir: dir }
    }

    /// The proxy's URL, with `credentials` (`user:password`) in it if given.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(credentials) => format!("http://{credentials}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// The access log's lines so far: one per request proxied, such as
    /// `127.0.0.1:50000 - CONNECT localhost:4318 - 3456 bytes - 12.3ms` or
    /// `127.0.0.1:50000 - POST 127.0.0.1:4318/v1/metrics - 200 OK - 2 bytes - 4.5ms`.
    pub fn access_log(&self) -> Vec<String> {
        // proxy.py writes the line when the connection closes: wait a
        // little for it, since the client closes after its last answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<String> = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(" - CONNECT ") || l.contains(" - POST ") || l.contains(" - GET "))
                .map(str::to_owned)
                .collect();
            if !lines.is_empty() || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
