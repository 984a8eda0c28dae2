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
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
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
    let entries = history::trail(&js, &filter, args.limit as usize).await?;
    if entries.is_empty() {
        say!("no commands");
        return Ok(());
    }
    let header = ["SEQ", "WHEN (UTC)", "WHO", "COMMAND", "OUTCOME", "ROOM"].map(str::to_owned);
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let outcome = e
                .result
                .as_ref()
                .map_or("pending", CommandResult::shown_outcome);
            [
                e.seq.to_string(),
                e.command
                    .issued_at
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                e.command.actor.email.clone(),
                e.command.describe(),
                outcome.to_owned(),
                e.command.origin.room_id.clone(),
            ]
        })
        .collect();
    // Each column as wide as its widest cell, so long commands and
    // addresses keep the columns after them in line.
    let mut widths = [0; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}
