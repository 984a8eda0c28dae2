//! `chatops replay`: re-applies commands from the audit log through the
//! worker's apply engine, or reports what each would do (`--dry-run`). The
//! fences make a replay safe: what was applied is reported as such, and
//! onto a cluster without fences the commands apply again in order. A
//! command whose recorded result says it was rejected when it was issued
//! (no such deployment, container or revision), or refused by the cluster
//! before anything changed (forbidden, invalid), is not replayed: it never
//! took effect, and replaying it would make a change that never happened
//! (onto a deployment created since, a namespace the bot may now touch).
//! Another failed one is replayed: it may have taken effect (a rollout that
//! failed after its change was made, a change whose answer was lost). Results are kept less long than commands
//! (`CHATOPS_RESULTS_MAX_AGE`): a command past that is replayed.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use chatops_shared::config::{self, ClusterConfig, Env, NatsConfig};
use chatops_shared::history::{self, Filter, Stored};
use chatops_shared::streams::COMMANDS_STREAM;
use chatops_shared::{CommandId, CommandResult, DeploymentName, Namespace, Outcome};
use chatops_worker::apply::Engine;
use chatops_worker::error::ApplyError;
use chatops_worker::fence::Position;
use chatops_worker::limiter::Limiter;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use k8s_openapi::api::apps::v1::Deployment;

use crate::CliError;

/// A time as `--since` and `--until` take it.
fn point_in_time(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(at) = s.parse::<jiff::Timestamp>() {
        return Ok(at);
    }
    if let Some(ago) = chatops_shared::config::parse_duration(s) {
        let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
        return jiff::Timestamp::now()
            .checked_sub(ago)
            .map_err(|e| e.to_string());
    }
    let civil = s.parse::<jiff::civil::DateTime>().or_else(|_| {
        s.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    match civil {
        Ok(at) => at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "'{s}' is no time; expected RFC 3339 (2026-11-01T08:30:00Z), a UTC date and time (2026-11-01 08:30), a date (2026-11-01), or how long ago (2h, 7d)"
        )),
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Report what each command would do against the cluster; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start at this stream sequence.
    #[arg(long)]
    pub from_seq: Option<u64>,
    /// Only commands issued at or after this time: RFC 3339
    /// (2026-11-01T08:30:00Z), a UTC date and time (2026-11-01 08:30), a
    /// date (2026-11-01, its midnight UTC), or how long ago (2h, 7d).
    #[arg(long, value_parser = point_in_time)]
    pub since: Option<jiff::Timestamp>,
    /// Only commands issued at or before this time, written as for --since.
    #[arg(long, value_parser = point_in_time)]
    pub until: Option<jiff::Timestamp>,
    /// Only commands for this namespace.
    #[arg(long)]
    pub namespace: Option<Namespace>,
    /// Only commands for this deployment.
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
    /// Print one line per command, not only the summary (a dry run always
    /// does; failures, rejections and commands not replayed are always
    /// printed).
    #[arg(long, short)]
    pub verbose: bool,
    /// Deployments replayed at once; each deployment's commands always go
    /// in the order they were issued.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallel: u16,
    /// Kubernetes API calls per second, on average [default:
    /// CHATOPS_KUBE_QPS, else 1000].
    #[arg(long)]
    pub qps: Option<f64>,
    /// Kubernetes API calls at once, before --qps spaces them [default:
    /// CHATOPS_KUBE_BURST, else 1000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,
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
    if let (Some(since), Some(until)) = (args.since, args.until)
        && since > until
    {
        return Err(CliError::Usage(format!(
            "--since {since} is later than --until {until}: no command can be in between"
        )));
    }
    let qps = match args.qps {
        Some(qps) if qps.is_finite() && qps > 0.0 => qps,
        Some(_) => {
            return Err(CliError::Usage(
                "--qps must be a positive number".to_owned(),
            ));
        }
        None => config::kube_qps(env, 1000.0)?,
    };
    let burst = match args.burst {
        Some(burst) => burst,
        None => config::kube_burst(env, 1000)?,
    };
    let nats = NatsConfig::from_env(env)?;
    let (_client, js) = chatops_shared::nats::connect(&nats, "chatops-cli").await?;
    let client = cluster(args, env).await?;
    let mut engine = Engine::new(client, Arc::new(Limiter::new(qps, burst)));
    if args.dry_run {
        engine = engine.dry_run();
    }
    let stream = js
        .get_stream(COMMANDS_STREAM)
        .await
        .map_err(|e| chatops_shared::history::ReadError::new(COMMANDS_STREAM, e.into()))?;
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
        changes_only: false,
    };
    let commands = history::commands(&js, &filter).await?;
    if let Some(from) = args.from_seq
        && commands.is_empty()
    {
        let last = stream.cached_info().state.last_sequence;
        if from > last {
            say!("no commands from #{from}: the audit log ends at #{last}");
        }
    }
    let issued = history::final_results(&js, &filter).await?;
    let progress = ProgressBar::new(commands.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} commands ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary: BTreeMap<&'static str, usize> = BTreeMap::new();
    let started = std::time::Instant::now();
    let replayer = Replayer {
        engine: &engine,
        epoch: &epoch,
        dry_run: args.dry_run,
        issued: &issued,
    };
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    let lanes = by_deployment(&commands);
    let replayer = &replayer;
    let work = async move {
        futures::stream::iter(lanes)
            .for_each_concurrent(usize::from(args.parallel), |lane| {
                let done = done.clone();
                async move {
                    let mut state = None;
                    for (i, stored) in lane {
                        let (line, after) = replayer.one(stored, state.take()).await;
                        state = after;
                        let _ = done.send((i, (stored, line)));
                    }
                }
            })
            .await;
    };
    // Lines are printed in the stream's order, each as soon as every
    // earlier one is known.
    let report = async {
        let mut pending = BTreeMap::new();
        let mut next = 0;
        while let Some((i, line)) = results.recv().await {
            pending.insert(i, line);
            progress.inc(1);
            while let Some((stored, line)) = pending.remove(&next) {
                next += 1;
                let kind = line.kind;
                if args.verbose
                    || args.dry_run
                    || [FAILED, REJECTED, NEVER_TOOK_EFFECT].contains(&kind)
                {
                    progress.suspend(|| {
                        say!(
                            "#{:<6} {:<44} {line}",
                            stored.seq,
                            stored.command.describe()
                        );
                    });
                }
                *summary.entry(kind).or_default() += 1;
            }
        }
    };
    tokio::join!(work, report);
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    say!("\n{:<20} COMMANDS", "OUTCOME");
    for (kind, count) in &summary {
        say!("{kind:<20} {count}");
    }
    say!(
        "{:<20} {} in {:.2} s ({:.0}/s)",
        "total",
        commands.len(),
        elapsed.as_secs_f64(),
        commands.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let failed = summary.get(FAILED).copied().unwrap_or(0);
    if failed > 0 {
        return Err(CliError::Usage(format!("{failed} commands failed")));
    }
    Ok(())
}

const FAILED: &str = "failed";
/// Not a fault of the replay: a typo in the log (rejected when it was
/// typed too), or a deployment this cluster lacks. Shown, and counted apart
/// from failures.
const REJECTED: &str = "rejected";

/// Rejected or refused when it was issued: not replayed.
const NEVER_TOOK_EFFECT: &str = "not replayed";

/// What became of one command: its kind, as the summary counts it, and
/// the details.
struct Line {
    kind: &'static str,
    details: Option<String>,
}

impl Line {
    fn new(kind: &'static str, details: impl ToString) -> Self {
        Self {
            kind,
            details: Some(details.to_string()),
        }
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.details {
            Some(details) => write!(f, "{}: {details}", self.kind),
            None => f.write_str(self.kind),
        }
    }
}

/// Replays commands onto the cluster, one deployment's at a time.
struct Replayer<'a> {
    engine: &'a Engine,
    epoch: &'a str,
    dry_run: bool,
    /// The final result each command got when it was issued.
    issued: &'a HashMap<CommandId, CommandResult>,
}

impl Replayer<'_> {
    /// What became of `stored`, and the deployment as it leaves it
    /// (`None` when it could not be read).
    async fn one(&self, stored: &Stored, known: Option<Deployment>) -> (Line, Option<Deployment>) {
        let command = &stored.command;
        if command.kind.field_group().is_none() {
            let skipped = Line {
                kind: "read-only, skipped",
                details: None,
            };
            return (skipped, known);
        }
        if let Some(then) = self.issued.get(&command.id)
            && (then.outcome == Outcome::Rejected || then.refused)
        {
            let skipped = Line::new(
                NEVER_TOOK_EFFECT,
                format!("{} when issued: {}", then.outcome, then.message),
            );
            return (skipped, known);
        }
        let position = Position {
            epoch: self.epoch.to_owned(),
            seq: stored.seq,
        };
        // A command refused as it stands changes nothing: the next one
        // starts from the same deployment (in a dry run, the would-be one).
        let unchanged = known.clone();
        let (line, after) = match self.engine.apply_write(command, &position, known).await {
            Ok((applied, after)) => {
                let what = match (applied.outcome, self.dry_run) {
                    (Outcome::Applied, _) if applied.unchanged => "unchanged",
                    (Outcome::Applied, true) => "would apply",
                    (outcome, _) => outcome.as_str(),
                };
                (Line::new(what, applied.message), Some(after))
            }
            Err(ApplyError::Rejected(why)) => (Line::new(REJECTED, why), unchanged),
            Err(ApplyError::Permanent(why)) if self.dry_run => {
                (Line::new("would fail", why), unchanged)
            }
            Err(e) => (Line::new(FAILED, e), None),
        };
        (line, after)
    }
}

/// The commands to replay, as lanes of one deployment each, in the
/// stream's order, with each command's index; read-only commands have
/// nothing to replay and come as lanes of their own.
fn by_deployment(commands: &[Stored]) -> Vec<Vec<(usize, &Stored)>> {
    let mut lanes: Vec<Vec<(usize, &Stored)>> = Vec::new();
    let mut lane_of: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, stored) in commands.iter().enumerate() {
        let command = &stored.command;
        let key = match (&command.deployment, command.kind.field_group()) {
            (Some(name), Some(_)) => (command.namespace.as_str(), name.as_str()),
            _ => {
                lanes.push(vec![(i, stored)]);
                continue;
            }
        };
        let lane = *lane_of.entry(key).or_insert_with(|| {
            lanes.push(Vec::new());
            lanes.len() - 1
        });
        lanes[lane].push((i, stored));
    }
    lanes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_time_is_written_as_people_do() {
        let utc = |s: &str| s.parse::<jiff::Timestamp>().expect("a timestamp");
        for (text, at) in [
            ("2026-11-01T08:30:00Z", "2026-11-01T08:30:00Z"),
            ("2026-11-01T09:30:00+01:00", "2026-11-01T08:30:00Z"),
            ("2026-11-01 08:30", "2026-11-01T08:30:00Z"),
            ("2026-11-01T08:30:15", "2026-11-01T08:30:15Z"),
            ("2026-11-01", "2026-11-01T00:00:00Z"),
        ] {
            assert_eq!(point_in_time(text), Ok(utc(at)), "{text}");
        }
        let ago = point_in_time("2h").expect("how long ago");
        let expected = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
        assert!(
            (ago.as_second() - expected.as_second()).abs() <= 5,
            "{ago} is two hours ago"
        );
        for text in ["yesterday", "1.5h", "2026-13-01", ""] {
            let error = point_in_time(text).expect_err(text);
            assert!(error.contains("expected RFC 3339"), "{error}");
        }
    }
}
