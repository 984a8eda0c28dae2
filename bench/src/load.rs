//! The load generator: signed webhooks over keep-alive HTTP/1.1 connections,
//! either closed loop (N connections, each sending its next request when the
//! previous one is answered) or open loop (requests sent on a fixed
//! schedule, whatever the answers do, on as many connections as that takes).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::stats::{Samples, Windows};
use crate::webhook::Delivery;

/// Most connections an open-loop run opens; past this, requests wait for a
/// free one (and the wait shows as lag).
const MAX_CONNECTIONS: usize = 1024;

/// Most headers an answer may carry.
const MAX_HEADERS: usize = 32;

/// One keep-alive HTTP/1.1 connection to the gateway.
///
/// The generator shares two cores with the processes it measures, so it
/// spends as little as a request allows: each request is one buffer and one
/// write, and each answer is parsed in place (`httparse`) from a buffer the
/// connection keeps. A general client (hyper's) cost about three times the
/// CPU per request, and that CPU was taken from the gateway.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// The request head up to its signature header, the same every time.
    head: Vec<u8>,
    request: Vec<u8>,
    /// Bytes read and not yet consumed.
    answer: Vec<u8>,
    /// The gateway said `Connection: close`.
    closing: bool,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let head = format!(
            "POST /webhooks/webex HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-spark-signature: "
        )
        .into_bytes();
        Ok(Self {
            stream,
            head,
            request: Vec::with_capacity(2048),
            answer: Vec::with_capacity(1024),
            closing: false,
        })
    }

    /// POSTs a delivery to `/webhooks/webex`; the answer's status.
    pub async fn deliver(&mut self, d: &Delivery) -> anyhow::Result<u16> {
        if self.closing {
            bail!("the gateway closed the connection");
        }
        self.request.clear();
        self.request.extend_from_slice(&self.head);
        self.request.extend_from_slice(d.signature.as_bytes());
        self.request.extend_from_slice(b"\r\ncontent-length: ");
        write!(self.request, "{}\r\n\r\n", d.body.len()).context("format a request")?;
        self.request.extend_from_slice(&d.body);
        self.stream
            .write_all(&self.request)
            .await
            .context("send a request")?;
        self.read_answer().await
    }

    /// Reads one whole answer (head and `Content-Length` body); its status.
    async fn read_answer(&mut self) -> anyhow::Result<u16> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response
                .parse(&self.answer)
                .context("the answer is not HTTP/1.1")?
            {
                let status = response.code.unwrap_or(0);
                let mut length = 0usize;
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .context("a bad Content-Length")?;
                    } else if h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                    {
                        self.closing = true;
                    }
                }
                let whole = head + length;
                while self.answer.len() < whole {
                    self.fill().await?;
                }
                self.answer.drain(..whole);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    /// Reads what the socket has into the answer buffer.
    async fn fill(&mut self) -> anyhow::Result<()> {
        let read = self
            .stream
            .read_buf(&mut self.answer)
            .await
            .context("read an answer")?;
        if read == 0 {
            self.closing = true;
            bail!("the gateway closed the connection");
        }
        Ok(())
    }
}

/// Makes the `n`th delivery of a run.
pub type MakeDelivery = Arc<dyn Fn(u64) -> Delivery + Send + Sync>;

/// What a closed-loop run measured.
#[derive(Debug)]
pub struct ClosedLoop {
    /// Webhooks answered 200, by the window they were answered in.
    pub accepted: Windows,
    /// Answers other than 200, and connections that failed, from the first
    /// request on (warm-up included).
    pub refused: u64,
    pub errors: u64,
    /// Of the requests sent and answered inside the windows.
    pub latencies: Samples,
}

impl ClosedLoop {
    /// Nothing counted yet, over `windows`.
    fn new(windows: Windows) -> Self {
        Self {
            accepted: windows,
            refused: 0,
            errors: 0,
            latencies: Samples::default(),
        }
    }

    /// Webhooks accepted per second: the median window's.
    pub fn rate(&self) -> f64 {
        self.accepted.median()
    }
}

/// `connections` connections send back to back from now until the last of
/// `windows` ends; the first window starts after the warm-up.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    windows: impl FnOnce() -> Windows,
    make: MakeDelivery,
) -> anyhow::Result<ClosedLoop> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(Conn::open(addr).await?);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let windows = windows();
    let until = windows.until();
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (counter, make) = (counter.clone(), make.clone());
        let mut out = ClosedLoop::new(windows.clone());
        tasks.spawn(async move {
            while Instant::now() < until {
                let d = make(counter.fetch_add(1, Ordering::Relaxed));
                let started = Instant::now();
                let status = conn.deliver(&d).await;
                let done = Instant::now();
                match status {
                    Ok(200) => {
                        if out.accepted.count(done) && out.accepted.contains(started) {
                            out.latencies.push(done - started);
                        }
                    }
                    Ok(_) => out.refused += 1,
                    Err(_) => {
                        out.errors += 1;
                        break;
                    }
                }
            }
            out
        });
    }
    let mut total = ClosedLoop::new(windows);
    while let Some(part) = tasks.join_next().await {
        let part = part.context("a load task panicked")?;
        total.accepted.merge(&part.accepted);
        total.refused += part.refused;
        total.errors += part.errors;
        total.latencies.extend(part.latencies);
    }
    Ok(total)
}

/// One open-loop request.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub index: u64,
    /// When it was sent, Unix microseconds (to compare with other clocks).
    pub sent_unix_us: i64,
    /// From sending to the answer.
    pub latency: Duration,
    /// How late the generator sent it against its schedule.
    pub lag: Duration,
    /// The answer's status; 0 when the connection failed.
    pub status: u16,
}

/// What an open-loop run did.
#[derive(Debug, Default)]
pub struct OpenLoop {
    pub sent: Vec<Sent>,
    pub connections: usize,
}

impl OpenLoop {
    pub fn accepted(&self) -> usize {
        self.sent.iter().filter(|s| s.status == 200).count()
    }

    pub fn latencies(&self) -> Samples {
        let mut s = Samples::default();
        for sent in self.sent.iter().filter(|s| s.status == 200) {
            s.push(sent.latency);
        }
        s
    }

    pub fn lags(&self) -> Samples {
        let mut s = Samples::default();
        for sent in &self.sent {
            s.push(sent.lag);
        }
        s
    }
}

/// A pool of idle connections shared by the requests of an open-loop run.
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Conn>>,
    opened: AtomicU64,
    slots: tokio::sync::Semaphore,
}

impl Pool {
    /// Delivers `d` on an idle connection, or on a new one when none is
    /// idle or the idle one turns out closed (the gateway's idle timeout
    /// closed it as it was reused: HTTP clients send again, and the gateway
    /// deduplicates by message id). The answer's status; 0 when the
    /// connection failed.
    async fn deliver(&self, d: &Delivery) -> u16 {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(mut conn) = idle
            && let Ok(status) = conn.deliver(d).await
        {
            self.give_back(conn);
            return status;
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        let Ok(mut conn) = Conn::open(self.addr).await else {
            return 0;
        };
        match conn.deliver(d).await {
            Ok(status) => {
                self.give_back(conn);
                status
            }
            Err(_) => 0,
        }
    }

    fn give_back(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Sends `count` deliveries at `rate` per second on schedule, starting with
/// `warm` open connections.
pub async fn open_loop(
    addr: SocketAddr,
    rate: f64,
    count: u64,
    warm: usize,
    make: MakeDelivery,
) -> anyhow::Result<OpenLoop> {
    let pool = Arc::new(Pool {
        addr,
        idle: Mutex::new(Vec::new()),
        opened: AtomicU64::new(0),
        slots: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
    });
    for _ in 0..warm {
        pool.opened.fetch_add(1, Ordering::Relaxed);
        pool.give_back(Conn::open(addr).await?);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let mut tasks = tokio::task::JoinSet::new();
    let mut out = OpenLoop::default();
    for index in 0..count {
        let due = start + interval.mul_f64(index as f64);
        tokio::time::sleep_until(due).await;
        let (pool, make) = (pool.clone(), make.clone());
        tasks.spawn(async move {
            let delivery = make(index);
            let permit = pool.slots.acquire().await.ok();
            let started = Instant::now();
            let sent_unix_us = unix_micros(SystemTime::now());
            let lag = started.saturating_duration_since(due);
            let status = pool.deliver(&delivery).await;
            drop(permit);
            Sent {
                index,
                sent_unix_us,
                latency: started.elapsed(),
                lag,
                status,
            }
        });
        // Reap finished requests as we go, so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            out.sent.push(done.context("a load task panicked")?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        out.sent.push(done.context("a load task panicked")?);
    }
    out.connections = pool.opened.load(Ordering::Relaxed) as usize;
    Ok(out)
}

pub fn unix_micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
