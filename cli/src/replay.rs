//! `chatops replay`: re-applies commands from the audit log through the
//! worker's apply engine, or reports what each would do (`--dry-run`). The
//! fences make a replay safe: what was applied is reported as such, and
//! onto a cluster without fences the commands apply again in order.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chatops_shared::config::{ClusterConfig, Env, NatsConfig};
use chatops_shared::history::{self, Filter};
use chatops_shared::streams::COMMANDS_STREAM;
use chatops_shared::{DeploymentName, Namespace, Outcome};
use chatops_worker::apply::Engine;
use chatops_worker::error::ApplyError;
use chatops_worker::fence::Position;
use chatops_worker::limiter::Limiter;
use indicatif::{ProgressBar, ProgressStyle};

use crate::CliError;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Report what each command would do against the cluster; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start at this stream sequence.
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Only commands issued at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<jiff::Timestamp>,
    /// Only commands issued at or before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<jiff::Timestamp>,
    #[arg(long)]
    pub namespace: Option<Namespace>,
    #[arg(long)]
    pub deployment: Option<DeploymentName>,
    /// Only this person's commands.
    #[arg(long, value_name = "EMAIL")]
    pub actor: Option<String>,
    /// Replay onto the cluster of this kubeconfig (default: CLUSTER_URL and
    /// friends, else KUBECONFIG or in-cluster, as the worker).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Print one line per command, not only the summary.
    #[arg(long, short)]
    pub verbose: bool,
}

async fn cluster(args: &ReplayArgs, env: &Env) -> Result<kube::Client, CliError> {
    if args.kubeconfig.is_none() && args.context.is_none() {
        return Ok(chatops_worker::kube_client::client(&ClusterConfig::from_env(env)?).await?);
    }
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
        }
        None => kube::Config::from_kubeconfig(&options).await,
    }
    .map_err(|e| CliError::Usage(format!("cannot use the kubeconfig: {e}")))?;
    kube::Client::try_from(config)
        .map_err(|e| CliError::Usage(format!("cannot use the kubeconfig: {e}")))
}

pub async fn run(args: &ReplayArgs, env: &Env) -> Result<(), CliError> {
    let nats = NatsConfig::from_env(env)?;
    let (_client, js) = chatops_shared::nats::connect(&nats, "chatops-cli").await?;
    let client = cluster(args, env).await?;
    let mut engine = Engine::new(client, Arc::new(Limiter::new(1000.0, 1000)));
    if args.dry_run {
        engine = engine.dry_run();
    }
    let stream = js
        .get_stream(COMMANDS_STREAM)
        .await
        .map_err(|e| CliError::Usage(format!("cannot open {COMMANDS_STREAM}: {e}")))?;
    let epoch = stream
        .cached_info()
        .created
        .unix_timestamp_nanos()
        .to_string();
    let filter = Filter {
        namespace: args.namespace.clone(),
        deployment: args.deployment.clone(),
        actor: args.actor.clone(),
        from_seq: args.from_seq,
        since: args.since,
        until: args.until,
    };
    let commands = history::commands(&js, &filter).await?;
    let progress = ProgressBar::new(commands.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} commands ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary: BTreeMap<String, usize> = BTreeMap::new();
    let started = std::time::Instant::now();
    for stored in &commands {
        let command = &stored.command;
        let line = if command.kind.field_group().is_none() {
            "read-only, skipped".to_owned()
        } else {
            let position = Position {
                epoch: epoch.clone(),
                seq: stored.seq,
            };
            match engine.apply(command, &position).await {
                Ok(applied) => {
                    let what = match (applied.outcome, args.dry_run) {
                        (Outcome::Applied, true) => "would apply",
                        (outcome, _) => crate::outcome_name(outcome),
                    };
                    format!("{what}: {}", applied.message)
                }
                Err(ApplyError::Permanent(why)) if args.dry_run => format!("would fail: {why}"),
                Err(e) => format!("failed: {e}"),
            }
        };
        let kind = line.split(':').next().unwrap_or_default().to_owned();
        *summary.entry(kind.clone()).or_default() += 1;
        if args.verbose || args.dry_run || kind == "failed" {
            progress.suspend(|| println!("#{:<6} {:<44} {line}", stored.seq, command.describe()));
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    println!("\n{:<20} COMMANDS", "OUTCOME");
    for (kind, count) in &summary {
        println!("{kind:<20} {count}");
    }
    println!(
        "{:<20} {} in {:.2} s ({:.0}/s)",
        "total",
        commands.len(),
        elapsed.as_secs_f64(),
        commands.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let failed = summary
        .iter()
        .filter(|(k, _)| k.starts_with("failed"))
        .map(|(_, n)| n)
        .sum::<usize>();
    if failed > 0 {
        return Err(CliError::Usage(format!("{failed} commands failed")));
    }
    Ok(())
}
