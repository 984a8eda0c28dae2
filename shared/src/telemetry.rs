//! Structured logs for every binary: `RUST_LOG` filters (default `info`),
//! `LOG_FORMAT=json` switches to one JSON object per line. Logs go to
//! stderr, so stdout stays free for what a binary prints for its caller.
//!
//! Lines are formatted where they are logged and appended to a shared
//! buffer; a thread of their own writes the buffer out, at most once per
//! [`LINGER`], in one `write(2)`. A busy gateway logs several lines per
//! command: a write, or even a thread wake-up, per line would cost the
//! request path far more than the line. Past [`QUEUED_BYTES`] waiting, new
//! lines are dropped (and counted in a line of their own) rather than slow
//! the service down.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{ConfigError, Env, LOG_FORMAT};

/// The log filter's variable, as tracing names it.
const RUST_LOG: &str = "RUST_LOG";

/// Bytes of lines waiting for the writer before new ones are dropped.
pub const QUEUED_BYTES: usize = 2 * 1024 * 1024;

/// How long the writer lets lines gather after the first one arrives.
pub const LINGER: Duration = Duration::from_millis(1);

/// Keeps the log writer running; dropping it writes out what is queued.
/// Hold it until the end of `main`.
#[must_use = "logs queued when the guard is dropped are written then; hold it until the end of main"]
#[derive(Debug)]
pub struct Logs {
    queue: Arc<Queue>,
    writer: Option<JoinHandle<()>>,
    json: bool,
}

impl Logs {
    /// Says why the program stops: a JSON line among the others where logs
    /// are JSON (a collector reading them would miss a plain one), else
    /// one plain line, `gateway: …`. Written out when the guard drops.
    pub fn fatal(&self, program: &str, error: &dyn std::fmt::Display) {
        if self.json {
            tracing::error!(program, error = %error, "stopped");
        } else {
            eprintln!("{program}: {error}");
        }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`. A
/// `RUST_LOG` that is no filter or a `LOG_FORMAT` other than `text` or
/// `json` is a configuration error, not a silent default.
pub fn init(env: &Env) -> Result<Logs, ConfigError> {
    init_with_default(env, "info")
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset.
pub fn init_with_default(env: &Env, default: &str) -> Result<Logs, ConfigError> {
    let filter = match env.get(RUST_LOG) {
        Some(directives) => EnvFilter::try_new(directives).map_err(|e| {
            ConfigError::new(
                RUST_LOG,
                format!("is not a log filter ({e}); e.g. info or chatops_worker=debug,info"),
            )
        })?,
        None => EnvFilter::new(default),
    };
    let json = match env.get(LOG_FORMAT) {
        None => false,
        Some(format) if format.eq_ignore_ascii_case("text") => false,
        Some(format) if format.eq_ignore_ascii_case("json") => true,
        Some(other) => {
            return Err(ConfigError::new(
                LOG_FORMAT,
                format!("must be text or json, not {other:?}"),
            ));
        }
    };
    let ansi = std::io::stderr().is_terminal();
    let (mut logs, lines) = spawn(std::io::stderr());
    logs.json = json;
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(lines)
        .with_ansi(ansi);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    Ok(logs)
}

/// Starts a writer thread that writes queued lines to `out`; the guard
/// and the [`MakeWriter`] that queues lines.
fn spawn(out: impl Write + Send + 'static) -> (Logs, Lines) {
    let queue = Arc::new(Queue::default());
    let writer = {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name("chatops-logs".to_owned())
            .spawn(move || queue.write_out(out))
            .ok()
    };
    let logs = Logs {
        queue: queue.clone(),
        writer,
        json: false,
    };
    (logs, Lines { queue })
}

#[derive(Debug, Default)]
struct Queue {
    pending: Mutex<Pending>,
    /// Signalled when the first line of a batch arrives, and at close.
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: &[u8]) {
        let mut pending = self.lock();
        if pending.bytes.len() + line.len() > QUEUED_BYTES {
            pending.dropped += 1;
            return;
        }
        let first = pending.bytes.is_empty();
        pending.bytes.extend_from_slice(line);
        drop(pending);
        if first {
            self.ready.notify_one();
        }
    }

    /// The writer thread: waits for a line, lets more gather, writes them
    /// all; until closed and empty.
    fn write_out(&self, mut out: impl Write) {
        let mut spare = Vec::new();
        loop {
            let mut pending = self.lock();
            while pending.bytes.is_empty() && pending.dropped == 0 && !pending.closed {
                pending = self
                    .ready
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if !pending.closed {
                drop(pending);
                std::thread::sleep(LINGER);
                pending = self.lock();
            }
            std::mem::swap(&mut pending.bytes, &mut spare);
            let dropped = std::mem::take(&mut pending.dropped);
            let closed = pending.closed;
            drop(pending);
            // Nowhere to report a failed write to: the line is lost.
            let _ = out.write_all(&spare);
            if dropped > 0 {
                let _ = writeln!(
                    out,
                    "chatops: {dropped} log lines dropped: the writer fell behind"
                );
            }
            let _ = out.flush();
            spare.clear();
            if closed {
                // Anything queued after the close flag was read.
                let rest = std::mem::take(&mut self.lock().bytes);
                let _ = out.write_all(&rest);
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Queues each formatted line (the fmt layer writes a line in one call).
#[derive(Debug, Clone)]
struct Lines {
    queue: Arc<Queue>,
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { queue: &self.queue }
    }
}

struct LineWriter<'a> {
    queue: &'a Queue,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.queue.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes and write calls the test can read.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut r = self.0.lock().expect("recorder");
            r.0.extend_from_slice(buf);
            r.1 += 1;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_order_in_few_writes_and_all_by_the_close() {
        let out = Recorder::default();
        let (logs, lines) = spawn(out.clone());
        let expected: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        for i in 0..10_000 {
            lines
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .expect("queued");
        }
        drop(logs);
        let (bytes, writes) = out.0.lock().expect("recorder").clone();
        assert_eq!(String::from_utf8(bytes).expect("UTF-8"), expected);
        assert!(writes < 1_000, "{writes} writes for 10,000 lines");
    }

    #[test]
    fn a_line_logged_alone_is_written_without_waiting_for_more() {
        let out = Recorder::default();
        let (_logs, lines) = spawn(out.clone());
        lines.make_writer().write_all(b"alone\n").expect("queued");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while out.0.lock().expect("recorder").0.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::yield_now();
        }
        assert_eq!(out.0.lock().expect("recorder").0, b"alone\n");
    }

    #[test]
    fn past_the_queue_limit_lines_are_dropped_and_counted() {
        let queue = Queue::default();
        let line = vec![b'x'; 1024];
        for _ in 0..(QUEUED_BYTES / 1024 + 10) {
            queue.push(&line);
        }
        let pending = queue.lock();
        assert_eq!(pending.bytes.len(), QUEUED_BYTES);
        assert_eq!(pending.dropped, 10);
    }
}
