//! `chatops-bench`: how fast chatops is on this machine, against the
//! machine's own ceiling (raw JetStream persisted publishes), with every
//! part a real process on loopback. One run prints one table, writes it as
//! JSON (and Markdown), and draws the latency and scaling figures as SVG.

pub mod figures;
pub mod load;
pub mod plan;
pub mod procs;
pub mod report;
pub mod rig;
pub mod scenario;
pub mod stats;
pub mod svg;
pub mod webhook;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::plan::{Args, Plan, Scenario};
use crate::procs::Binaries;
use crate::rig::Rig;
use crate::scenario::Findings;
use crate::scenario::ceiling::Ceiling;

/// What a run writes to `bench.json`.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    pub started: String,
    pub seconds: f64,
    pub machine: Machine,
    pub plan: &'a Plan,
    pub findings: &'a Findings,
}

/// Where the numbers were taken.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub load_before: f64,
    pub load_after: f64,
    pub kernel: String,
}

/// Runs the plan; the findings, also written under the output directory.
pub async fn run(args: &Args) -> anyhow::Result<Findings> {
    let plan = Plan::from_args(args);
    let out = args.out.clone().unwrap_or_else(|| {
        procs::workspace_root().join(if plan.smoke {
            "target/bench-smoke"
        } else {
            "bench/results"
        })
    });
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let bins = Binaries::locate(!args.no_build)?;
    let logs = tempfile::Builder::new()
        .prefix("chatops-bench-")
        .tempdir()
        .context("a directory for the logs")?;
    let child_env = args
        .child_env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--child-env {kv:?}: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<_>>()?;
    let rig = Rig {
        bins,
        dir: logs.path().to_owned(),
        child_env,
        nats_gomaxprocs: args.nats_gomaxprocs,
    };
    let started = jiff::Timestamp::now();
    let clock = std::time::Instant::now();
    let load_before = procs::load_average();
    eprintln!(
        "chatops-bench: {} run, load average {load_before:.2} on {} CPUs; nats-server beside the system at GOMAXPROCS={}; logs in {}",
        if plan.smoke { "smoke" } else { "full" },
        procs::cpus(),
        rig.system_nats_gomaxprocs()
            .unwrap_or_else(|| "default".to_owned()),
        rig.dir.display()
    );
    let mut found = Findings::default();
    let outcome = scenarios(&rig, &plan, &mut found).await;
    memory_rows(&mut found);
    let load_after = procs::load_average();
    let keep = outcome.is_err() || !found.failures.is_empty() || args.keep_logs;
    if keep {
        let kept = logs.keep();
        eprintln!("chatops-bench: logs kept in {}", kept.display());
    }
    if let Err(e) = &outcome {
        // What was measured before the failure is still worth having.
        eprintln!("chatops-bench: stopped early: {e:#}");
        found.failures.push(format!("stopped early: {e:#}"));
    }

    if plan.smoke {
        // Tiny loads, and usually a debug build: the targets say nothing.
        for row in &mut found.rows {
            row.met = None;
        }
    }
    let table = report::table(&found.rows);
    println!("{table}");
    for note in &found.cpu {
        let cores: Vec<String> = note
            .cores
            .iter()
            .map(|(n, c)| format!("{n} {c:.2}"))
            .collect();
        eprintln!(
            "cpu  {:<8} {:<32} machine {:>3.0}% busy; cores: {}",
            note.scenario,
            note.case,
            note.machine_busy * 100.0,
            cores.join(", ")
        );
    }
    if load_before > procs::cpus() as f64 * 0.5 {
        eprintln!(
            "chatops-bench: the machine was busy before the run (load {load_before:.2}); numbers are noisy"
        );
    }
    let run = Run {
        started: started.to_string(),
        seconds: clock.elapsed().as_secs_f64(),
        machine: Machine {
            cpus: procs::cpus(),
            load_before,
            load_after,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        },
        plan: &plan,
        findings: &found,
    };
    write(&out, "bench.json", &serde_json::to_string_pretty(&run)?)?;
    write(&out, "table.txt", &table)?;
    write(&out, "table.md", &report::markdown(&found.rows))?;
    if let Some(svg) = figures::latency(&found) {
        write(&out, "latency.svg", &svg)?;
    }
    if let Some(svg) = figures::scaling(&found) {
        write(&out, "scaling.svg", &svg)?;
    }
    if let Some(svg) = figures::throughput(&found) {
        write(&out, "throughput.svg", &svg)?;
    }
    eprintln!(
        "chatops-bench: {:.0} s; results in {}",
        run.seconds,
        out.display()
    );
    outcome.map(|()| found)
}

async fn scenarios(rig: &Rig, plan: &Plan, found: &mut Findings) -> anyhow::Result<()> {
    let step = |s: &str| eprintln!("chatops-bench: {s} (load {:.2})", procs::load_average());
    let ceiling = if plan.runs(Scenario::Ceiling) {
        step("ceiling: raw JetStream publishes");
        let ceiling = Ceiling::start().await.context("ceiling")?;
        for &n in &plan.ceiling_in_flight {
            if !plan.ceiling_beside_intake(n) {
                ceiling.point(plan, n, found).await.context("ceiling")?;
            }
        }
        Some(ceiling)
    } else {
        None
    };
    if plan.runs(Scenario::Intake) {
        step("intake: webhooks into a gateway, each point after the ceiling at its concurrency");
        scenario::intake::run(rig, plan, ceiling.as_ref(), found)
            .await
            .context("intake")?;
    }
    drop(ceiling);
    let ceiling_rows = scenario::ceiling::rows(found);
    found.rows.splice(0..0, ceiling_rows);
    if plan.runs(Scenario::E2e) {
        step("end to end: webhook to final reply");
        scenario::e2e::run(rig, plan, found)
            .await
            .context("end to end")?;
    }
    if plan.runs(Scenario::Scaling) {
        step("worker scaling at 50 ms per Kubernetes call");
        scenario::scaling::run(rig, plan, found)
            .await
            .context("worker scaling")?;
    }
    if plan.runs(Scenario::Replay) {
        step("replay through chatops replay");
        scenario::replay::run(rig, plan, found)
            .await
            .context("replay")?;
    }
    Ok(())
}

/// The memory rows, from what every scenario saw.
fn memory_rows(found: &mut Findings) {
    use report::{Row, Target};
    // MB of 10^6 bytes: the stricter reading of the targets.
    let mb = |b: u64| b as f64 / 1e6;
    let m = found.memory;
    for (who, idle, peak) in [
        ("gateway", m.gateway_idle, m.gateway_peak),
        ("worker", m.worker_idle, m.worker_peak),
    ] {
        if let Some(idle) = idle {
            found.rows.push(
                Row::new("memory", who, "RSS idle (after start)", mb(idle), "MB")
                    .target(Target::Below(15.0)),
            );
        }
        if let Some(peak) = peak {
            found.rows.push(
                Row::new("memory", who, "RSS peak under load (VmHWM)", mb(peak), "MB")
                    .target(Target::Below(40.0)),
            );
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}
