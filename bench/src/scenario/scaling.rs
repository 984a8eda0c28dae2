//! Worker scaling: commands applied per second by 1, 2 and 4 worker
//! processes at 1, 8 and 32 commands in flight each, when every Kubernetes
//! API call takes 50 ms. A backlog of `scale` commands waits on the command
//! stream before the workers start; the rate is measured on the results
//! stream, after a warm-up.

use anyhow::Context;
use async_nats::HeaderMap;
use chatops_shared::streams::RESULTS_STREAM;
use chatops_shared::{
    Actor, Command, CommandId, CommandKind, ContractVersion, DeploymentName, Namespace, Origin,
    Replicas, subjects,
};
use futures::StreamExt;
use tokio::time::Instant;

use super::{CpuWatch, Findings, ScalingPoint, secs};
use crate::plan::Plan;
use crate::report::{Row, Target};
use crate::rig::{Kube, Nats, Rig, Worker};

pub async fn run(rig: &Rig, plan: &Plan, found: &mut Findings) -> anyhow::Result<()> {
    for &c in &plan.scaling_in_flight {
        for &w in &plan.scaling_workers {
            one(rig, plan, found, w, c).await?;
        }
    }
    // 4 workers against 1, at each concurrency.
    let most = plan.scaling_workers.iter().copied().max().unwrap_or(1);
    for &c in &plan.scaling_in_flight {
        let rate = |w: usize| {
            found
                .scaling
                .iter()
                .find(|p| p.workers == w && p.in_flight == c)
                .map(|p| p.rate)
        };
        if let (Some(one), Some(many)) = (rate(1), rate(most))
            && most > 1
        {
            let row = Row::new(
                "scaling",
                format!("{c} in flight each"),
                format!("{most} workers ÷ 1 worker"),
                many / one.max(1e-9),
                "x",
            );
            found.rows.push(if most == 4 {
                row.target(Target::AtLeast(3.5))
            } else {
                row
            });
        }
    }
    Ok(())
}

/// A `scale` command as the gateway publishes it.
pub fn command(i: usize, deployments: usize) -> anyhow::Result<Command> {
    Ok(Command {
        version: ContractVersion,
        id: CommandId::new(),
        kind: CommandKind::Scale {
            replicas: Replicas::new((1 + i % 5) as i128, 50).context("replicas")?,
        },
        namespace: Namespace::default_namespace(),
        deployment: Some(DeploymentName::parse(&format!("app-{}", i % deployments))?),
        visible: Vec::new(),
        actor: Actor {
            email: "alice@example.com".into(),
            person_id: "alice".into(),
        },
        origin: Origin {
            room_id: "room".into(),
            message_id: format!("bench-{}", uuid::Uuid::now_v7()),
            thread_id: None,
        },
        issued_at: jiff::Timestamp::now(),
    })
}

/// Publishes commands as the gateway does, many at once.
pub async fn publish(nats: &Nats, commands: Vec<Command>) -> anyhow::Result<()> {
    let js = nats.js.clone();
    let acks = futures::stream::iter(commands)
        .map(|command| {
            let js = js.clone();
            async move {
                let mut headers = HeaderMap::new();
                headers.insert(subjects::MSG_ID_HEADER, command.origin.message_id.as_str());
                headers.insert(subjects::COMMAND_ID_HEADER, command.id.to_string().as_str());
                let subject = subjects::command(&command.namespace, command.deployment.as_ref());
                let payload = serde_json::to_vec(&command)?;
                js.publish_with_headers(subject, headers, payload.into())
                    .await?
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await;
    acks.into_iter().collect()
}

async fn one(
    rig: &Rig,
    plan: &Plan,
    found: &mut Findings,
    workers: usize,
    in_flight: usize,
) -> anyhow::Result<()> {
    let case = format!("{workers} workers × {in_flight} in flight");
    let dir = rig.world_dir(&format!("scaling-{workers}x{in_flight}"))?;
    let nats = Nats::start_beside_system(rig).await?;
    nats.ensure_streams().await?;
    let kube = Kube::start(rig, &dir, plan.deployments).await?;
    kube.latency(plan.scaling_latency).await?;
    // Two calls a command (GET, then the fenced PATCH); enough commands
    // for the whole measurement at the bound, and some.
    let per_command = 2.0 * plan.scaling_latency.as_secs_f64();
    let bound_guess = (workers * in_flight) as f64 / per_command;
    let total = plan.warmup + plan.window;
    let count = (bound_guess * total.as_secs_f64() * 1.5).ceil() as usize + workers * in_flight;
    let commands = (0..count)
        .map(|i| command(i, plan.deployments))
        .collect::<anyhow::Result<Vec<_>>>()?;
    publish(&nats, commands).await?;

    let url = nats.url();
    let names: Vec<String> = (0..workers).map(|i| format!("worker-{i}")).collect();
    let procs: Vec<Worker> = futures::future::try_join_all(
        names
            .iter()
            .map(|name| Worker::start(rig, &dir, name, &url, &kube.url, in_flight)),
    )
    .await?;
    let mut pids = vec![
        ("nats-server", nats.pid()),
        ("kube-sandbox", kube.proc.pid()),
    ];
    for w in &procs {
        pids.push(("worker", w.proc.pid()));
    }
    tokio::time::sleep(plan.warmup).await;
    let watch = CpuWatch::start(&pids);
    let (r0, t0) = (nats.stored(RESULTS_STREAM).await?, Instant::now());
    tokio::time::sleep(plan.window).await;
    let (r1, t1) = (nats.stored(RESULTS_STREAM).await?, Instant::now());
    found.cpu.push(watch.stop("scaling", &case));
    for w in &procs {
        found.memory.worker_loaded(w.usage());
    }
    drop(procs);
    tokio::time::sleep(secs(0.2)).await;
    let rate = (r1 - r0) as f64 / (t1 - t0).as_secs_f64();
    if r1 >= count as u64 {
        found.failures.push(format!(
            "scaling at {case}: the backlog ran out before the window ended"
        ));
    }
    // Kubernetes calls per command, from the sandbox's log (complete while
    // it holds fewer than its 100,000-entry limit).
    let calls = kube.requests().await.unwrap_or(0);
    let done = nats.stored(RESULTS_STREAM).await?.max(1);
    let calls_per_command = if calls < 50_000 && done > 0 {
        calls as f64 / done as f64
    } else {
        2.0
    };
    let bound = (workers * in_flight) as f64
        / (calls_per_command.max(1.0) * plan.scaling_latency.as_secs_f64());
    let mut row = Row::new("scaling", &case, "commands/s", rate, "/s").ratio(found.ceiling_best());
    if workers == 1 {
        found.rows.push(row);
        row = Row::new(
            "scaling",
            &case,
            "share of the bound (in flight ÷ kube time)",
            rate / bound,
            "",
        )
        .target(Target::AtLeast(0.8));
    }
    found.rows.push(row);
    found.scaling.push(ScalingPoint {
        workers,
        in_flight,
        rate,
        bound,
        calls_per_command,
    });
    Ok(())
}
