//! The `chatops` command line: subcommands over the shared contract and the
//! gateway's parser.

pub mod parse;

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
    ///
    /// Examples:
    ///   chatops parse "scale web to 3 in prod"
    ///   chatops parse --as bob@example.com "deploy nginx:1.27 to web"
    Parse(parse::ParseArgs),
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
    /// The message is not a command; the reply was printed.
    #[error("not a command")]
    Refused,
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_) | Self::Policy(_) | Self::Streams(SetupError::Drift { .. }) => {
                chatops_shared::config::EXIT_CONFIG
            }
            Self::Refused => 2,
            _ => 69,
        }
    }
}

/// Runs one subcommand, printing what a person needs on stdout.
pub async fn run(cli: Cli, env: &Env) -> Result<(), CliError> {
    match cli.command {
        Cmd::Setup => setup(env).await,
        Cmd::Parse(args) => parse::run(&args, env),
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
        };
        println!("{what}: {done}");
    }
    Ok(())
}
