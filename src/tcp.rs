//! The TCP connection under every gRPC channel, plain or TLS: Nagle off on
//! this side, and this side's acknowledgements sent at once.
//!
//! A collector whose sockets keep Nagle's algorithm on (rotel 0.0.1 does:
//! it never sets `TCP_NODELAY` on the connections it accepts) holds back a
//! small write, such as the end of an HTTP/2 response, until the previous
//! one is acknowledged. A Linux client delays that acknowledgement for up to
//! 40 ms when it has nothing of its own to send, which is exactly its state
//! while it waits for the last answers of a flush. The two waits meet, and
//! the flush's last request takes 40 ms more than it needs: measured on
//! workload 1 of `vs_official` (50 000 points, seven requests), the last
//! answer came 44 ms after the one before it, in every flush, and the flush
//! took 97 ms where it takes 50 ms without the wait.
//!
//! So, on Linux, [`TcpIo`] re-arms `TCP_QUICKACK` after every read that
//! brought data: the kernel then acknowledges at once (and sends an
//! acknowledgement it had been delaying). It is one `setsockopt` per read,
//! and reads are few (answers, window updates, pings); the requests, which
//! are most of the bytes, are writes. Elsewhere it is a plain stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The error a connector hands to tonic.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connected TCP stream that acknowledges what it receives at once.
#[derive(Debug)]
pub(crate) struct TcpIo {
    stream: TcpStream,
}

impl TcpIo {
    /// Connects to `uri`'s host and port (`default_port` when it names
    /// none), with Nagle's algorithm off.
    pub(crate) async fn connect(uri: &Uri, default_port: u16) -> io::Result<Self> {
        let host = uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the endpoint has no host"))?;
        // An IPv6 literal is bracketed in a URI, not in a socket address.
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let stream = TcpStream::connect((host, uri.port_u16().unwrap_or(default_port))).await?;
        stream.set_nodelay(true)?;
        let io = Self { stream };
        io.ack_at_once();
        Ok(io)
    }

    /// Puts the socket in quick-ack mode, which the kernel leaves on its own
    /// after a while: called after every read. A failure changes nothing
    /// but the timing, so it is ignored.
    #[cfg(target_os = "linux")]
    fn ack_at_once(&self) {
        use std::os::fd::AsRawFd as _;
        let on: libc::c_int = 1;
        // SAFETY: the descriptor is this stream's open socket for the whole
        // call, and the option's value is a live `c_int` of the length given.
        unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                std::ptr::from_ref(&on).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn ack_at_once(&self) {}
}

impl AsyncRead for TcpIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.ack_at_once();
        }
        polled
    }
}

impl AsyncWrite for TcpIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The connector of a plaintext gRPC channel: a [`TcpIo`] to the URI tonic
/// asks for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PlainConnector;

impl tonic::codegen::Service<Uri> for PlainConnector {
    type Response = TokioIo<TcpIo>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move { Ok(TokioIo::new(TcpIo::connect(&uri, 80).await?)) })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn bytes_go_both_ways_unchanged() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let echo = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut got = vec![0; 5];
            peer.read_exact(&mut got).await.unwrap();
            peer.write_all(&got).await.unwrap();
        });
        let mut io = TcpIo::connect(&uri, 80).await.unwrap();
        assert!(io.stream.nodelay().unwrap(), "Nagle's algorithm is off");
        io.write_all(b"hello").await.unwrap();
        let mut back = vec![0; 5];
        io.read_exact(&mut back).await.unwrap();
        assert_eq!(back, b"hello");
        echo.await.unwrap();
    }

    #[tokio::test]
    async fn a_uri_without_a_host_is_refused_by_name() {
        let err = TcpIo::connect(&Uri::from_static("/no/host"), 80).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("no host"), "{err}");
    }
}
