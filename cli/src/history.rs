//! `chatops history`: the audit trail from the streams.

use chatops_shared::config::{Env, NatsConfig};
use chatops_shared::history::{self, Filter};
use chatops_shared::{CommandResult, DeploymentName, Namespace};

use crate::CliError;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only commands for this namespace.
    #[arg(long)]
    pub namespace: Option<Namespace>,
    /// Only commands for this deployment.
    #[arg(long)]
    pub deployment: Option<DeploymentName>,
    /// Only this person's commands.
    #[arg(long, value_name = "EMAIL")]
    pub actor: Option<String>,
    /// How many of the newest commands to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub async fn run(args: &HistoryArgs, env: &Env) -> Result<(), CliError> {
    let nats = NatsConfig::from_env(env)?;
    let (_client, js) = chatops_shared::nats::connect(&nats, "chatops-cli").await?;
    let filter = Filter {
        namespace: args.namespace.clone(),
        deployment: args.deployment.clone(),
        actor: args.actor.clone(),
        ..Filter::default()
    };
    let entries = history::trail(&js, &filter, args.limit).await?;
    if entries.is_empty() {
        say!("no commands");
        return Ok(());
    }
    say!(
        "{:<6} {:<20} {:<28} {:<44} {:<16} ROOM",
        "SEQ",
        "WHEN (UTC)",
        "WHO",
        "COMMAND",
        "OUTCOME"
    );
    for e in entries {
        let outcome = e
            .result
            .as_ref()
            .map_or("pending", CommandResult::shown_outcome);
        say!(
            "{:<6} {:<20} {:<28} {:<44} {:<16} {}",
            e.seq,
            e.command
                .issued_at
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            e.command.actor.email,
            e.command.describe(),
            outcome,
            e.command.origin.room_id
        );
    }
    Ok(())
}
