//! Structured logs for every binary: `RUST_LOG` filters (default `info`),
//! `LOG_FORMAT=json` switches to one JSON object per line. Logs go to
//! stderr, so stdout stays free for what a binary prints for its caller.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

use tracing_subscriber::fmt;

use crate::config::{Env, LOG_FORMAT};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(env: &Env) {
    init_with_default(env, "info");
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset.
pub fn init_with_default(env: &Env, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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
