//! Replay: `chatops replay` over an audit log of 10,000 commands (half
//! `scale`, half `deploy`, over 100 deployments) onto a fresh cluster: a dry
//! run first (every command would apply: a dry-run patch each, after one
//! read per deployment), then the replay itself, then a dry run again
//! (everything is now applied or superseded: one read per deployment).

use std::time::Duration;

use anyhow::{Context, bail};
use chatops_shared::{CommandKind, ImageRef};

use super::{CpuWatch, Findings};
use crate::plan::Plan;
use crate::procs::Proc;
use crate::report::{Row, Target};
use crate::rig::{Kube, Nats, Rig};

const LIMIT: Duration = Duration::from_secs(600);

pub async fn run(rig: &Rig, plan: &Plan, found: &mut Findings) -> anyhow::Result<()> {
    let dir = rig.world_dir("replay")?;
    let nats = Nats::start_beside_system(rig).await?;
    nats.ensure_streams().await?;
    let commands = (0..plan.replay_commands)
        .map(|i| {
            let mut c = super::scaling::command(i, plan.replay_deployments)?;
            if i % 2 == 1 {
                c.kind = CommandKind::SetImage {
                    container: None,
                    image: ImageRef::parse(&format!("registry.example.com/app:1.0.{i}"))?,
                };
            }
            Ok(c)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    super::scaling::publish(&nats, commands).await?;
    let kube = Kube::start(rig, &dir, plan.replay_deployments).await?;
    let n = plan.replay_commands;
    for (i, (case, args)) in [
        ("dry run, fresh cluster", vec!["replay", "--dry-run"]),
        ("apply, fresh cluster", vec!["replay"]),
        ("dry run, all applied", vec!["replay", "--dry-run"]),
    ]
    .into_iter()
    .enumerate()
    {
        let case = format!("{n} commands, {case}");
        let started = std::time::Instant::now();
        let proc = Proc::spawn(
            &format!("chatops-replay-{i}"),
            &rig.bins.chatops,
            &args,
            &[
                ("NATS_URL", nats.url().as_str()),
                ("CLUSTER_URL", kube.url.as_str()),
                ("RUST_LOG", "warn"),
                // As for the workers: the client-side rate limit protects a
                // real API server and is not what is measured here.
                ("CHATOPS_KUBE_QPS", "100000"),
                ("CHATOPS_KUBE_BURST", "100000"),
            ],
            &dir,
        )?;
        let watch = CpuWatch::start(&[
            ("kube-sandbox", kube.proc.pid()),
            ("nats-server", nats.pid()),
        ])
        .with_exiting_child("chatops replay");
        let (code, output) = proc.wait(LIMIT).await?;
        let wall = started.elapsed();
        found.cpu.push(watch.stop("replay", &case));
        if code != Some(0) {
            bail!(
                "chatops {} exited with {code:?}:\n{}",
                args.join(" "),
                output.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
        }
        let (total, rate) = summary(&output).context("no summary line in the replay's output")?;
        if total != n {
            found
                .failures
                .push(format!("replay ({case}): {total} of {n} commands replayed"));
        }
        // Onto a fresh cluster every command applies (some find their
        // deployment already as asked: unchanged); once all are applied,
        // none would apply again.
        let would_apply =
            outcome_count(&output, "would apply") + outcome_count(&output, "unchanged");
        let expected = if i == 0 { n } else { 0 };
        if args.contains(&"--dry-run") && would_apply != expected {
            found.failures.push(format!(
                "replay ({case}): {would_apply} commands would apply, expected {expected}"
            ));
        }
        let mut row =
            Row::new("replay", &case, "commands/s", rate, "/s").ratio(found.ceiling_at(1));
        if args.contains(&"--dry-run") {
            row = row.target(Target::AtLeast(5000.0));
        }
        found.rows.push(row);
        found.rows.push(Row::new(
            "replay",
            &case,
            "wall time incl. reading the log",
            wall.as_secs_f64(),
            "s",
        ));
    }
    Ok(())
}

/// `total  N in X s (R/s)` from the replay's summary.
fn summary(output: &str) -> Option<(usize, f64)> {
    let line = output.lines().find(|l| l.starts_with("total "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let total = words.get(1)?.parse().ok()?;
    let seconds: f64 = words.get(3)?.parse().ok()?;
    Some((total, total as f64 / seconds.max(1e-9)))
}

/// The count on an outcome's line of the replay's summary (0 when absent).
fn outcome_count(output: &str, outcome: &str) -> usize {
    output
        .lines()
        .filter_map(|l| l.strip_prefix(outcome))
        .filter_map(|rest| rest.trim().parse().ok())
        .next()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{outcome_count, summary};

    #[test]
    fn the_replay_summary_is_read() {
        let out = "OUTCOME              COMMANDS\napplied              10\ntotal                10000 in 2.00 s (5000/s)\n";
        assert_eq!(summary(out), Some((10000, 5000.0)));
        assert_eq!(outcome_count(out, "applied"), 10);
        assert_eq!(outcome_count(out, "would apply"), 0);
    }
}
