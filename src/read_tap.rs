//! A connection's stream whose reads are shown to a watcher on their way to hyper; the
//! bytes are never changed, and writes pass straight through. The connection's time
//! limits (`server::watch`) and the framing observer (`framing`) both watch this way,
//! through one tap of the two.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What sees each read.
pub(crate) trait Tap {
    /// The bytes one read brought (none at the end of the stream).
    fn saw(&mut self, bytes: &[u8]);
}

/// Both, in order.
impl<A: Tap, B: Tap> Tap for (A, B) {
    fn saw(&mut self, bytes: &[u8]) {
        self.0.saw(bytes);
        self.1.saw(bytes);
    }
}

pub(crate) struct ReadTap<S, T> {
    inner: S,
    tap: T,
}

impl<S, T> ReadTap<S, T> {
    pub(crate) fn new(inner: S, tap: T) -> Self {
        ReadTap { inner, tap }
    }
}

impl<S: AsyncRead + Unpin, T: Tap + Unpin> AsyncRead for ReadTap<S, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.tap.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, T: Unpin> AsyncWrite for ReadTap<S, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
