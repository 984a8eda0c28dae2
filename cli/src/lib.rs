//! The `chatops` command line: subcommands over the shared contract and the
//! gateway's parser.

/// Prints one line to stdout, as `println!` would, except that a reader
/// gone away (`chatops history | head -1`) silences the rest of the output
/// rather than panicking; the command itself goes on, so a replay is never
/// cut short by its reader.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say_line(format_args!($($arg)*))
    };
}

pub mod demo;
pub mod history;
pub mod parse;
pub mod replay;
pub mod webhook;

use chatops_shared::config::{ConfigError, Env, NatsConfig};
use chatops_shared::streams::{self, Action, SetupError, StreamSettings};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chatops",
    version,
    about = "Operate the chatops bot: streams, parsing, demo, replay, history, webhooks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

// Examples shown after each command's `--help`.
const PARSE_EXAMPLES: &str = "\
Examples:
  chatops parse \"scale web to 3 in prod\"
  chatops parse --as bob@example.com \"deploy nginx:1.27 to web\"";
const DEMO_EXAMPLES: &str = "\
Examples:
  chatops demo
  chatops demo --as mallory@example.com
  chatops demo --exec \"scale nginx-deployment to 3\" --exec \"deploy nginx:1.21 to nginx-deployment\"";
const HISTORY_EXAMPLES: &str = "\
Examples:
  chatops history
  chatops history --deployment web --limit 20";
const REPLAY_EXAMPLES: &str = "\
Examples:
  chatops replay --dry-run
  chatops replay --since 2026-11-01T00:00:00Z --kubeconfig staging.yaml";

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the JetStream streams and consumers if missing, and report any
    /// whose settings differ from the configuration (NATS_URL, CHATOPS_*).
    ///
    /// Example: NATS_URL=nats://127.0.0.1:4222 chatops setup
    Setup,
    /// Show what the gateway would do with a message: the command it would
    /// publish (JSON on stdout), or the reply the person would get (exit 2).
    ///
    /// Uses the gateway's parser and, with --as, its policy
    /// (AUTHORIZED_USERS or CHATOPS_POLICY, CHATOPS_MAX_REPLICAS,
    /// KUBERNETES_NAMESPACE).
    #[command(after_help = PARSE_EXAMPLES)]
    Parse(parse::ParseArgs),
    /// The whole system on this machine, with no credentials: nats-server,
    /// the Kubernetes and Webex sandboxes, a gateway and two workers; the
    /// terminal is the Webex room.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(demo::DemoArgs),
    /// The audit trail: who ran what, when, and how it ended (NATS_URL).
    #[command(after_help = HISTORY_EXAMPLES)]
    History(history::HistoryArgs),
    /// Re-apply commands from the audit log through the worker's engine
    /// (the fences make it safe), or report what each would do.
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(replay::ReplayArgs),
    /// Manage the bot's Webex webhook (WEBEX_BOT_TOKEN, WEBEX_WEBHOOK_SECRET,
    /// WEBEX_API_URL).
    #[command(subcommand)]
    Webhook(webhook::WebhookCmd),
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Nats(#[from] chatops_shared::nats::ConnectError),
    #[error(transparent)]
    Streams(#[from] SetupError),
    #[error("{0}")]
    Policy(#[from] chatops_gateway::policy::PolicyError),
    /// The bot would not run the message (not a command, or not this
    /// person's to give); its reply was printed.
    #[error("the bot would not run it (its reply is above)")]
    Refused,
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    #[error(transparent)]
    Webex(#[from] chatops_gateway::webex::WebexError),
    #[error(transparent)]
    Read(#[from] chatops_shared::history::ReadError),
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Policy(_) | Self::Streams(SetupError::Drift { .. }) => {
                chatops_shared::config::EXIT_CONFIG
            }
            Self::Refused => 2,
            Self::Usage(_) => 1,
            _ => 69,
        }
    }
}

/// Runs one subcommand, printing what a person needs on stdout.
pub async fn run(cli: Cli, env: &Env) -> Result<(), CliError> {
    match cli.command {
        Cmd::Setup => setup(env).await,
        Cmd::Parse(args) => parse::run(&args, env),
        Cmd::Demo(args) => Ok(demo::run(&args).await?),
        Cmd::History(args) => history::run(&args, env).await,
        Cmd::Replay(args) => replay::run(&args, env).await,
        Cmd::Webhook(cmd) => webhook::run(&cmd, env).await,
    }
}

async fn setup(env: &Env) -> Result<(), CliError> {
    let nats = NatsConfig::from_env(env)?;
    let settings = StreamSettings::from_env(env)?;
    let (_client, js) = chatops_shared::nats::connect(&nats, "chatops-cli").await?;
    for (what, action) in streams::ensure(&js, &settings).await? {
        let done = match action {
            Action::Created => "created",
            Action::Unchanged => "already set up",
            Action::Upgraded => "brought up to date",
        };
        say!("{what}: {done}");
    }
    Ok(())
}

/// Set once stdout's reader has gone away.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What [`say!`] does.
#[doc(hidden)]
pub fn say_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        Err(e) => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            eprintln!("chatops: cannot write the output: {e}");
        }
    }
}

/// An address as Webex keeps it: trimmed and in lower case (`--as` of
/// `demo` and `parse`).
pub(crate) fn email(s: &str) -> Result<String, String> {
    let s = s.trim().to_lowercase();
    if chatops_shared::config::is_email(&s) && !s.contains(char::is_control) {
        Ok(s)
    } else {
        Err("expected an email address, e.g. bob@example.com".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_as_webex_keeps_them_or_refused() {
        assert_eq!(
            email(" ALICE@Example.com ").as_deref(),
            Ok("alice@example.com")
        );
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "a@b@example.com",
            "a@.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }
}
