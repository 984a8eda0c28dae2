//! The read-only commands: `status`, `list`, `history`. They change nothing
//! and need no fence.

use std::cmp::Ordering;

use chatops_shared::names::glob;
use chatops_shared::text::count;
use chatops_shared::{CommandResult, DeploymentName, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;

use super::rollback::{REVISION, revisions};
use super::{Applied, Engine, images, replicas};
use crate::error::{ApplyError, Doing};

/// The most deployments `list` names.
const LIST_LIMIT: usize = 50;
/// The most commands `history` names, newest first.
const COMMANDS_SHOWN: usize = 5;

fn counts(d: &Deployment) -> String {
    let s = d.status.as_ref();
    let get = |f: fn(&k8s_openapi::api::apps::v1::DeploymentStatus) -> Option<i32>| {
        s.and_then(f).unwrap_or(0)
    };
    format!(
        "{} desired, {} updated, {} ready, {} available",
        replicas(d),
        get(|s| s.updated_replicas),
        get(|s| s.ready_replicas),
        get(|s| s.available_replicas)
    )
}

fn conditions(d: &Deployment) -> String {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| match c.reason.as_deref() {
                    Some(reason) => format!("{}={} ({reason})", c.type_, c.status),
                    None => format!("{}={}", c.type_, c.status),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none reported".to_owned())
}

pub(super) async fn status(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
    known: Option<Deployment>,
) -> Result<Applied, ApplyError> {
    let d = match known {
        Some(d) => d,
        None => engine.get(ns, name).await?,
    };
    let revision = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .map_or("?", String::as_str);
    let message = format!(
        "{name} in {ns}: {}; images {}; revision {revision}; conditions {}",
        counts(&d),
        images(&d),
        conditions(&d)
    );
    Ok(Applied::new(Outcome::Applied, message).change(None, Some(replicas(&d).to_string())))
}

/// Whether a deployment has fewer ready replicas than it asks for.
fn short(d: &Deployment) -> bool {
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    ready < replicas(d)
}

/// Names in the order people count: runs of digits by their value.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    // A run of digits without its leading zeros: longer is larger.
    fn value(run: &[u8]) -> &[u8] {
        let zeros = run.iter().take_while(|c| **c == b'0').count();
        &run[zeros..]
    }
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                let (m, n) = (digits(x), digits(y));
                let (u, v) = (value(&x[..m]), value(&y[..n]));
                let by_value = u.len().cmp(&v.len()).then_with(|| u.cmp(v));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (x, y) = (&x[m..], &y[n..]);
            }
            (Some(p), Some(q)) if p != q => return p.cmp(q),
            _ => (x, y) = (&x[1..], &y[1..]),
        }
    }
}

/// The deployments of `ns`; with `only`, those whose names match one of
/// its patterns (all a person limited to some may see).
pub(super) async fn list(
    engine: &Engine,
    ns: &str,
    only: &[String],
) -> Result<Applied, ApplyError> {
    engine.limiter.acquire().await;
    let list = engine
        .deployments(ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            ApplyError::from_kube(
                e,
                Doing {
                    verb: "list",
                    resource: "deployments",
                    name: None,
                    namespace: ns,
                },
            )
        })?;
    if list.items.is_empty() {
        // Kubernetes lists a namespace that does not exist as an empty
        // one; where the bot may read namespaces, it tells the two apart.
        if engine.namespace_is_missing(ns).await {
            return Err(ApplyError::Rejected(format!("namespace {ns} not found")));
        }
        return Ok(Applied::new(
            Outcome::Applied,
            format!("no deployments in namespace {ns}"),
        ));
    }
    let mut shown: Vec<&Deployment> = list
        .items
        .iter()
        .filter(|d| {
            let name = d.metadata.name.as_deref().unwrap_or_default();
            only.is_empty() || only.iter().any(|p| glob(p, name))
        })
        .collect();
    // Those short of ready replicas first, what someone asking in trouble
    // looks for, and then by name with its numbers in order (web-2 before
    // web-10), so the cut below leaves out healthy ones first.
    fn name(d: &Deployment) -> &str {
        d.metadata.name.as_deref().unwrap_or_default()
    }
    shown.sort_by(|a, b| {
        short(b)
            .cmp(&short(a))
            .then_with(|| natural(name(a), name(b)))
    });
    let of_yours = if only.is_empty() {
        String::new()
    } else {
        format!(" of those you may see ({})", only.join(", "))
    };
    if shown.is_empty() {
        return Ok(Applied::new(
            Outcome::Applied,
            format!("no deployments in namespace {ns}{of_yours}"),
        ));
    }
    let total = shown.len();
    let mut lines: Vec<String> = shown
        .iter()
        .take(LIST_LIMIT)
        .map(|d| {
            let ready = d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            format!(
                "{} {ready}/{} ({})",
                d.metadata.name.as_deref().unwrap_or("?"),
                replicas(d),
                images(d)
            )
        })
        .collect();
    if total > LIST_LIMIT {
        let all_ready = !shown[LIST_LIMIT..].iter().any(|d| short(d));
        lines.push(format!(
            "and {} more{}",
            total - LIST_LIMIT,
            if all_ready { ", all ready" } else { "" }
        ));
    }
    Ok(Applied::new(
        Outcome::Applied,
        format!(
            "{} in {ns}{of_yours}: {}",
            count(total, "deployment", "deployments"),
            lines.join("; ")
        ),
    ))
}

pub(super) async fn history(
    engine: &Engine,
    ns: &str,
    name: &DeploymentName,
) -> Result<Applied, ApplyError> {
    let d = engine.get(ns, name).await?;
    let mut parts = Vec::new();
    if let Some(js) = &engine.audit {
        // Who changed what: questions, this one among them, are left out.
        let filter = chatops_shared::history::Filter {
            namespace: chatops_shared::Namespace::parse(ns).ok(),
            deployment: Some(name.clone()),
            changes_only: true,
            ..Default::default()
        };
        // One more than is shown, to tell whether there are older ones.
        match chatops_shared::history::trail(js, &filter, COMMANDS_SHOWN + 1).await {
            Ok(entries) => {
                let lines: Vec<String> = entries
                    .iter()
                    .rev()
                    .take(COMMANDS_SHOWN)
                    .map(|e| {
                        let outcome = e
                            .result
                            .as_ref()
                            .map_or("pending", CommandResult::shown_outcome);
                        format!(
                            "{} {} '{}': {outcome}",
                            e.command.issued_at.strftime("%Y-%m-%d %H:%M UTC"),
                            e.command.actor.email,
                            e.command.describe()
                        )
                    })
                    .collect();
                let older = if entries.len() > COMMANDS_SHOWN {
                    format!(
                        "; older ones in 'chatops history --namespace {ns} --deployment {name}'"
                    )
                } else {
                    String::new()
                };
                if !lines.is_empty() {
                    parts.push(format!("last commands: {}{older}", lines.join("; ")));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the audit trail"),
        }
    }
    let revisions = revisions(engine, ns, name, &d).await?;
    let lines: Vec<String> = revisions
        .iter()
        .rev()
        .take(5)
        .map(|(r, rs)| {
            let images = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|p| {
                    p.containers
                        .iter()
                        .map(|c| c.image.clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            format!("revision {r}: {images}")
        })
        .collect();
    // The rest by number only, newest first, as many as read at a glance.
    const OLDER_SHOWN: usize = 10;
    let older: Vec<String> = revisions
        .iter()
        .rev()
        .skip(lines.len())
        .map(|(r, _)| r.to_string())
        .collect();
    let older = match older.len() {
        0 => String::new(),
        n if n <= OLDER_SHOWN => format!("; older revisions: {}", older.join(", ")),
        n => format!(
            "; {n} older revisions: {}, …",
            older[..OLDER_SHOWN].join(", ")
        ),
    };
    if lines.is_empty() {
        parts.push("no recorded revisions yet".to_owned());
    } else {
        parts.push(format!(
            "revisions, newest first: {}{older}",
            lines.join("; ")
        ));
    }
    Ok(Applied::new(
        Outcome::Applied,
        format!("{name} in {ns}: {}", parts.join(". ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::natural;

    #[test]
    fn names_are_in_the_order_people_count() {
        let mut names = vec![
            "web-10", "web-2", "api", "web-1", "web-02b", "web-002a", "web", "web-100", "a1b10",
            "a1b9", "web-01",
        ];
        names.sort_by(|a, b| natural(a, b));
        assert_eq!(
            names,
            [
                "a1b9", "a1b10", "api", "web", "web-01", "web-1", "web-2", "web-002a", "web-02b",
                "web-10", "web-100"
            ]
        );
    }
}
