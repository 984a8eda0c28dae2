//! Structured logs for every binary: `RUST_LOG` filters (default `info`),
//! `LOG_FORMAT=json` switches to one JSON object per line. Logs go to
//! stderr, so stdout stays free for what a binary prints for its caller.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

use tracing_subscriber::fmt;

use crate::config::{Env, LOG_FORMAT};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(env: &Env) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if env
        .get(LOG_FORMAT)
        .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}
