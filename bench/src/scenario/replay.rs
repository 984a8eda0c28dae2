//! Replay: `chatops replay` over an audit log of 10,000 commands (half
//! `scale`, half `deploy`, over 100 deployments) onto a fresh cluster: a dry
//! run first (every command would apply: a read and a dry-run patch each),
//! then the replay itself, then a dry run again (everything is now applied
//! or superseded: one read each).

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
    let nats = Nats::start().await?;
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
        let watch = CpuWatch::start(&[
            ("kube-sandbox", kube.proc.pid()),
            ("nats-server", nats.pid()),
        ]);
        let started = std::time::Instant::now();
        let proc = Proc::spawn(
            &format!("chatops-replay-{i}"),
            &rig.bins.chatops,
            &args,
            &[
                ("NATS_URL", nats.url().as_str()),
                ("CLUSTER_URL", kube.url.as_str()),
                ("RUST_LOG", "warn"),
            ],
            &dir,
        )?;
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

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn the_replay_summary_is_read() {
        let out = "OUTCOME              COMMANDS\napplied              10\ntotal                10000 in 2.00 s (5000/s)\n";
        assert_eq!(summary(out), Some((10000, 5000.0)));
    }
}
