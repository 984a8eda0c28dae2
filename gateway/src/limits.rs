//! Protection against abusive clients, so that slow, idle or flooding
//! connections cannot exhaust the gateway:
//!
//! - [`GuardedListener`] caps open connections (more wait in the kernel's
//!   accept queue) and closes a connection that sends nothing for the idle
//!   timeout (a stalled header or body, an idle keep-alive), or whose
//!   request has not been answered within the request timeout of its first
//!   byte (a header that trickles in a byte at a time, each just within
//!   the idle timeout).
//! - [`Shedder`] caps the webhooks being handled at once; past the cap a
//!   request gets 503 at once instead of waiting in an unbounded queue.
//! - The webhook handler reads its body under a deadline (see `intake`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Limits for the HTTP surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Webhook requests handled at once; more get 503.
    pub max_in_flight: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// The whole body must arrive within this.
    pub body_timeout: Duration,
    /// A request, head and body, must arrive within this of its first
    /// byte; longer than `body_timeout`, which answers a slow body 408.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_in_flight: 1024,
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(20),
        }
    }
}

/// A listener that caps and times out connections.
#[derive(Debug)]
pub struct GuardedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle_timeout: Duration,
    request_timeout: Duration,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, limits: &Limits) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            idle_timeout: limits.idle_timeout,
            request_timeout: limits.request_timeout.max(limits.body_timeout),
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                // The semaphore is never closed; keep the signature total.
                continue;
            };
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let timeouts = (self.idle_timeout, self.request_timeout);
                    return (GuardedStream::new(stream, permit, timeouts), addr);
                }
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that holds one slot and closes when idle too long, or
/// when a request takes too long to arrive.
///
/// A read only notes the time; the timer is moved when it fires early. Moving
/// it on every read took the timer wheel's lock once per request.
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    request_timeout: Duration,
    /// When the client last sent something.
    last_read: Instant,
    /// When the first byte of a request not yet answered came: set by a
    /// read, cleared by the answer's write.
    request_since: Option<Instant>,
    _slot: OwnedSemaphorePermit,
}

impl GuardedStream {
    fn new(
        inner: TcpStream,
        slot: OwnedSemaphorePermit,
        (idle_timeout, request_timeout): (Duration, Duration),
    ) -> Self {
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            request_timeout,
            last_read: Instant::now(),
            request_since: None,
            _slot: slot,
        }
    }

    /// When the connection is to be closed unless something changes.
    fn deadline(&self) -> Instant {
        let idle = self.last_read + self.idle_timeout;
        match self.request_since {
            Some(since) => idle.min(since + self.request_timeout),
            None => idle,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let filled = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.last_read = Instant::now();
                if buf.filled().len() > filled && this.request_since.is_none() {
                    this.request_since = Some(this.last_read);
                }
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                match this.idle.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => {
                        let deadline = this.deadline();
                        if deadline <= Instant::now() {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "idle connection, or a request too slow to arrive",
                            )));
                        }
                        // Something was read since the timer was set.
                        this.idle.as_mut().reset(deadline);
                    }
                }
            },
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // An answer: the request arrived.
        self.request_since = None;
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
        self.request_since = None;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Sheds load past a fixed number of requests in flight.
#[derive(Debug, Clone)]
pub struct Shedder {
    slots: Arc<Semaphore>,
}

impl Shedder {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// A slot for one request, or `None` when the gateway is full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}
