//! A collector that is down: a port nothing listens on, which no other
//! socket can take while the test runs.
//!
//! Picking a free port and closing it is not enough for a test that runs a
//! while: the kernel hands the port out again to the next socket that binds
//! port 0, such as another test's receiver, and the "dead" collector starts
//! answering. [`DeadPort`] keeps the port bound, never listening: a
//! connection to it is refused, as to a collector that is not running.

use tokio::net::TcpSocket;

/// A bound, never listening loopback port; released when dropped.
#[derive(Debug)]
pub struct DeadPort {
    _held: TcpSocket,
    port: u16,
}

impl DeadPort {
    /// Takes a free loopback port and holds it.
    pub fn new() -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("a free loopback port");
        let port = socket.local_addr().expect("its address").port();
        Self { _held: socket, port }
    }

    /// The port held.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
