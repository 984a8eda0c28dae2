//! Structured logs for every binary: `RUST_LOG` filters (default `info`),
//! `LOG_FORMAT=json` switches to one JSON object per line. Logs go to
//! stderr, so stdout stays free for what a binary prints for its caller.
//!
//! Lines are formatted where they are logged but written by a thread of
//! their own, which writes whatever has queued up in one go: a busy gateway
//! logs several lines per command, and a write each would cost the request
//! path a system call per line. Past [`LINES_QUEUED`] queued lines, new ones
//! are dropped rather than slow the service down.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

use crate::config::{Env, LOG_FORMAT};

/// Lines waiting for the writer before new ones are dropped (the queue is
/// allocated up front: 32 bytes a line).
pub const LINES_QUEUED: usize = 8192;

/// Keeps the log writer running; dropping it writes out what is queued.
/// Hold it until the end of `main`.
#[must_use = "logs queued when the guard is dropped are written then; hold it until the end of main"]
#[derive(Debug)]
pub struct Logs {
    _writer: WorkerGuard,
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(env: &Env) -> Logs {
    init_with_default(env, "info")
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset.
pub fn init_with_default(env: &Env, default: &str) -> Logs {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal();
    // The writer thread flushes each time it has emptied the queue.
    let (writer, guard) = NonBlockingBuilder::default()
        .thread_name("chatops-logs")
        .buffered_lines_limit(LINES_QUEUED)
        .finish(BufWriter::new(std::io::stderr()));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    if env
        .get(LOG_FORMAT)
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    Logs { _writer: guard }
}
