//! The apply engine: one command kind per module, all going through the
//! same fenced, resourceVersion-guarded patch.
//!
//! For a write: GET the deployment; if its fence for the command's field
//! group is not older than the command, report already applied or
//! superseded and change nothing; else PATCH the field and the fence
//! together with the read resourceVersion as a precondition. A 409 Conflict
//! re-reads and decides again.

mod image;
mod read;
mod restart;
mod rollback;
mod rollout;
mod scale;

use std::sync::Arc;
use std::time::Duration;

use chatops_shared::names::glob;
use chatops_shared::text::count;
use chatops_shared::{Command, CommandKind, DeploymentName, FieldGroup, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::error::{ApplyError, Doing, missing};
use crate::fence::{self, Check, Position};
use crate::limiter::Limiter;

pub use rollout::Rollout;

/// Conflicts re-read and retried before giving the command back to the queue.
/// Status updates by the deployment controller also change the
/// resourceVersion, so a busy rollout can conflict several times in a row.
const CONFLICT_RETRIES: u32 = 20;

/// How long a rollback waits for the deployment controller to catch up
/// with the deployment's last change, and how often it looks.
const OBSERVE_LIMIT: Duration = Duration::from_secs(10);
const OBSERVE_POLL: Duration = Duration::from_millis(50);

/// What applying a command came to (errors aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub outcome: Outcome,
    pub message: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// A change that found the deployment already as asked.
    pub unchanged: bool,
    /// A change whose rollout a later command took over before it ended.
    pub overtaken: bool,
}

impl Applied {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
            before: None,
            after: None,
            unchanged: false,
            overtaken: false,
        }
    }

    fn unchanged(mut self, unchanged: bool) -> Self {
        self.unchanged = unchanged;
        self
    }

    fn change(mut self, before: Option<String>, after: Option<String>) -> Self {
        self.before = before;
        self.after = after;
        self
    }
}

/// Applies commands to one cluster.
#[derive(Clone)]
pub struct Engine {
    client: kube::Client,
    limiter: Arc<Limiter>,
    /// The streams, for `history`'s audit trail.
    audit: Option<async_nats::jetstream::Context>,
    dry_run: bool,
    /// In a dry run, each deployment's revisions as the dry runs so far
    /// would have left them (nothing is stored, so the cluster's own
    /// ReplicaSets stay as they were).
    simulated: Arc<rollback::Simulated>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// How many deployment names a missing one is compared with, at most.
const NAMES_READ: u32 = 500;

/// The one of `names` a slip of the keyboard away from `typed`: at most one
/// edit (an adjacent pair swapped counts one) for a name of up to 5
/// characters, two for a longer one, none for one of 3 or fewer; none when
/// two are equally near. Failing that, the one name that `typed` begins
/// ("nginx" for "nginx-deployment"), if it has 3 characters or more.
fn nearest(typed: &str, names: impl Iterator<Item = String>) -> Option<String> {
    let typed = typed.to_ascii_lowercase();
    let typed = typed.as_str();
    let length = typed.chars().count();
    let slips = match length {
        0..=2 => return None,
        3 => 0,
        4..=5 => 1,
        _ => 2,
    };
    let mut best: Option<(usize, String)> = None;
    let mut tied = false;
    let mut begun: Vec<String> = Vec::new();
    for name in names {
        if name.len() > typed.len() && name.starts_with(typed) && begun.len() < 2 {
            begun.push(name.clone());
        }
        let distance = strsim::osa_distance(typed, &name);
        if distance == 0 || distance > slips {
            continue;
        }
        match &best {
            Some((least, _)) if distance > *least => {}
            Some((least, _)) if distance == *least => tied = true,
            _ => {
                best = Some((distance, name));
                tied = false;
            }
        }
    }
    match (best, begun.as_slice()) {
        (Some((_, name)), _) if !tied => Some(name),
        (None, [only]) => Some(only.clone()),
        _ => None,
    }
}

impl Engine {
    pub fn new(client: kube::Client, limiter: Arc<Limiter>) -> Self {
        Self {
            client,
            limiter,
            audit: None,
            dry_run: false,
            simulated: Arc::default(),
        }
    }

    /// `history` answers from the streams' audit trail too.
    pub fn with_audit(mut self, jetstream: async_nats::jetstream::Context) -> Self {
        self.audit = Some(jetstream);
        self
    }

    /// Writes are sent with `dryRun=All`: the API server checks them, and
    /// nothing is stored. Each write is applied to the deployment as the
    /// writes before it would have left it (the `known` of
    /// [`Engine::apply_write`]), and a rollback chooses from the revisions
    /// they would have made.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    /// Applies `command`, found at `position` in the command stream.
    pub async fn apply(
        &self,
        command: &Command,
        position: &Position,
    ) -> Result<Applied, ApplyError> {
        self.apply_from(command, position, None).await
    }

    /// Applies `command` as [`Engine::apply`] does, starting from `known`
    /// (its deployment as read just before) instead of reading it, for a
    /// write or a `status`. A stale `known` costs a write a 409 and a
    /// re-read; `status` answers from it.
    pub async fn apply_from(
        &self,
        command: &Command,
        position: &Position,
        known: Option<Deployment>,
    ) -> Result<Applied, ApplyError> {
        let ns = command.namespace.as_str();
        let Some(name) = command.deployment.as_ref() else {
            return match &command.kind {
                CommandKind::List { only } => read::list(self, ns, only).await,
                _ => Err(ApplyError::Permanent(
                    "this command needs a deployment".to_owned(),
                )),
            };
        };
        let done = match &command.kind {
            CommandKind::Status => read::status(self, ns, name, known).await,
            CommandKind::History => read::history(self, ns, name).await,
            CommandKind::List { only } => read::list(self, ns, only).await,
            _ => self
                .apply_write(command, position, known)
                .await
                .map(|(applied, _)| applied),
        };
        match done {
            Err(e) => Err(self.with_nearest(command, e).await),
            done => done,
        }
    }

    /// Applies a write to `command`'s deployment as [`Engine::apply`] does,
    /// deciding first on `known` (the deployment as the previous command
    /// left it) instead of reading it; gives back the deployment as this
    /// command leaves it, for the next. A stale `known` costs a 409 and a
    /// re-read, nothing else.
    ///
    /// This is what lets a dry run follow a sequence of commands: each sees
    /// the previous one's would-be result, although nothing is stored.
    pub async fn apply_write(
        &self,
        command: &Command,
        position: &Position,
        known: Option<Deployment>,
    ) -> Result<(Applied, Deployment), ApplyError> {
        let (Some(name), Some(group)) = (command.deployment.as_ref(), command.kind.field_group())
        else {
            return Err(ApplyError::Permanent(
                "only a write to a deployment can be applied this way".to_owned(),
            ));
        };
        self.fenced(
            command.namespace.as_str(),
            name,
            group,
            position,
            &command.kind,
            known,
        )
        .await
    }

    /// What became of a write whose deliveries all ended without a result
    /// (their workers stopped), as its deployment's fences tell: applied
    /// by one of them, or superseded by a later command. `None` when
    /// neither, or when `command` is not a write: it was not made, and is
    /// not made now.
    pub async fn settle(
        &self,
        command: &Command,
        position: &Position,
    ) -> Result<Option<Applied>, ApplyError> {
        let (Some(name), Some(group)) = (command.deployment.as_ref(), command.kind.field_group())
        else {
            return Ok(None);
        };
        let deployment = self.get(command.namespace.as_str(), name).await?;
        Ok(self
            .fenced_off(&command.kind, name, group, position, &deployment)
            .await)
    }

    /// What `deployment`'s fences say of the command at `position`: applied
    /// before, or superseded by a later one (`None`: neither, so it is
    /// still to be made).
    async fn fenced_off(
        &self,
        kind: &CommandKind,
        name: &DeploymentName,
        group: FieldGroup,
        position: &Position,
        deployment: &Deployment,
    ) -> Option<Applied> {
        let checks = fence::groups(kind, group)
            .iter()
            .map(|g| fence::check(fence::recorded(annotations(deployment), *g), position));
        match fence::combine(checks) {
            Check::AlreadyApplied => Some(already_applied(kind, name, deployment)),
            Check::Superseded { by } => {
                let later = self.describe_command(by).await;
                Some(superseded(kind, name, by, later.as_deref(), deployment))
            }
            Check::Apply => None,
        }
    }

    /// The read-check-patch loop shared by every write.
    async fn fenced(
        &self,
        ns: &str,
        name: &DeploymentName,
        group: FieldGroup,
        position: &Position,
        kind: &CommandKind,
        mut known: Option<Deployment>,
    ) -> Result<(Applied, Deployment), ApplyError> {
        for attempt in 0..CONFLICT_RETRIES {
            let deployment = match known.take() {
                Some(deployment) => deployment,
                None => {
                    if attempt > 0 {
                        // Let the other writer finish: 2, 4, 8 ... up to
                        // 100 ms, jittered.
                        let pause = Duration::from_millis((2u64 << attempt.min(6)).min(100));
                        tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
                    }
                    self.get(ns, name).await?
                }
            };
            let deployment = match kind {
                // Revisions are read from the ReplicaSets, which lag the
                // Deployment until its controller has seen its last change.
                CommandKind::Rollback { .. } if !self.dry_run => {
                    self.observed(ns, name, deployment).await?
                }
                _ => deployment,
            };
            if let Some(decided) = self
                .fenced_off(kind, name, group, position, &deployment)
                .await
            {
                return Ok((decided, deployment));
            }
            let fences = fence::groups(kind, group);
            let plan = match kind {
                CommandKind::Scale { replicas } => scale::plan(name, &deployment, *replicas),
                CommandKind::SetImage { container, image } => {
                    image::plan(ns, name, &deployment, container.as_ref(), image)?
                }
                CommandKind::Restart => restart::plan(name, &deployment),
                CommandKind::Rollback { revision } => {
                    rollback::plan(self, ns, name, &deployment, *revision).await?
                }
                CommandKind::Status | CommandKind::History | CommandKind::List { .. } => {
                    return Err(ApplyError::Permanent(
                        "a read-only command has no fence".to_owned(),
                    ));
                }
            };
            match self
                .patch(ns, name, &deployment, plan.ops, fences, position)
                .await
            {
                Ok(mut updated) => {
                    if self.dry_run && group != FieldGroup::Replicas {
                        rollback::record(self, ns, name, &deployment, &mut updated).await?;
                    }
                    return Ok(((plan.report)(&updated), updated));
                }
                Err(ApplyError::Conflict) => {
                    tracing::debug!(deployment = %name, "conflict; re-reading");
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ApplyError::Transient {
            message: format!("deployment {name} kept changing while the command was being applied"),
            retry_after: None,
        })
    }

    fn deployments(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// `d` once its controller has observed its latest generation (read
    /// again until then, for [`OBSERVE_LIMIT`] at most; then as it is).
    async fn observed(
        &self,
        ns: &str,
        name: &DeploymentName,
        mut d: Deployment,
    ) -> Result<Deployment, ApplyError> {
        let deadline = tokio::time::Instant::now() + OBSERVE_LIMIT;
        loop {
            let generation = d.metadata.generation.unwrap_or(0);
            let observed = d
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if observed >= generation {
                return Ok(d);
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(deployment = %name, generation, observed, "the deployment controller has not caught up; going on with what it shows");
                return Ok(d);
            }
            tokio::time::sleep(OBSERVE_POLL).await;
            d = self.get(ns, name).await?;
        }
    }

    /// "bob@example.com's 'scale web to 5 in default'": the command at
    /// `seq` of the command stream, where the engine reads the streams.
    pub(crate) async fn describe_command(&self, seq: u64) -> Option<String> {
        let stream = self
            .audit
            .as_ref()?
            .get_stream_no_info(chatops_shared::streams::COMMANDS_STREAM)
            .await
            .ok()?;
        let message = stream.get_raw_message(seq).await.ok()?;
        let command: Command = serde_json::from_slice(&message.payload).ok()?;
        Some(format!(
            "{}'s '{}'",
            command.actor.email,
            command.describe()
        ))
    }

    /// Whether the API says `ns` does not exist. Not knowing (the bot may
    /// not read namespaces, which a Role cannot grant) is not missing.
    async fn namespace_is_missing(&self, ns: &str) -> bool {
        self.limiter.acquire().await;
        Api::<Namespace>::all(self.client.clone())
            .get_opt(ns)
            .await
            .is_ok_and(|found| found.is_none())
    }

    /// Reads a deployment (through the rate limiter). One that is missing
    /// because its namespace is says so, where the bot may read namespaces.
    pub(crate) async fn get(
        &self,
        ns: &str,
        name: &DeploymentName,
    ) -> Result<Deployment, ApplyError> {
        self.limiter.acquire().await;
        let error = match self.deployments(ns).get(name.as_str()).await {
            Ok(deployment) => return Ok(deployment),
            Err(e) => ApplyError::from_kube(
                e,
                Doing {
                    verb: "get",
                    resource: "deployments",
                    name: Some(name.as_str()),
                    namespace: ns,
                },
            ),
        };
        if matches!(error, ApplyError::Rejected(_)) && self.namespace_is_missing(ns).await {
            return Err(ApplyError::Rejected(format!("namespace {ns} not found")));
        }
        Err(error)
    }

    /// `command`'s refusal for a deployment that is not there, with the one
    /// a slip away ("nginx-deploymnet") where there is one the sender may
    /// see and the bot may list; any other error as it is. Only where the
    /// refusal is answered: a list of names is read for it.
    async fn with_nearest(&self, command: &Command, error: ApplyError) -> ApplyError {
        let (ApplyError::Rejected(why), Some(name)) = (&error, &command.deployment) else {
            return error;
        };
        let ns = command.namespace.as_str();
        if *why != missing("deployment", name.as_str(), ns) {
            return error;
        }
        self.limiter.acquire().await;
        let Ok(listed) = self
            .deployments(ns)
            .list_metadata(&ListParams::default().limit(NAMES_READ))
            .await
        else {
            return error;
        };
        let visible =
            |n: &String| command.visible.is_empty() || command.visible.iter().any(|p| glob(p, n));
        let names = listed
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .filter(visible);
        match nearest(name.as_str(), names) {
            Some(near) => ApplyError::Rejected(format!("{why}; did you mean '{near}'?")),
            None => error,
        }
    }

    /// JSON-patches `ops` together with the fence annotations, under the read
    /// resourceVersion: a concurrent change makes the API answer 409.
    async fn patch(
        &self,
        ns: &str,
        name: &DeploymentName,
        read: &Deployment,
        mut ops: Vec<Value>,
        fences: &[FieldGroup],
        position: &Position,
    ) -> Result<Deployment, ApplyError> {
        // A dry run stores nothing, so it sends no precondition: the
        // cluster's controllers move the resourceVersion (status updates)
        // while a replay runs, and a conflict would send the dry run back
        // to the cluster's deployment, away from the would-be one.
        if !self.dry_run {
            let rv = read.metadata.resource_version.clone().unwrap_or_default();
            ops.insert(
                0,
                json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}),
            );
        }
        for (i, group) in fences.iter().enumerate() {
            // The first fence written makes the map if there was none.
            ops.push(annotation_op(
                "/metadata/annotations",
                i > 0 || annotations(read).is_some(),
                fence::annotation(*group),
                &position.encode(),
            ));
        }
        let internal = |e: &dyn std::fmt::Display| {
            ApplyError::Permanent(format!("internal error building the patch: {e}"))
        };
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).map_err(|e| internal(&e))?;
        let refused = |e| {
            ApplyError::from_kube(
                e,
                Doing {
                    verb: "patch",
                    resource: "deployments",
                    name: Some(name.as_str()),
                    namespace: ns,
                },
            )
        };
        if !self.dry_run {
            self.limiter.acquire().await;
            return self
                .deployments(ns)
                .patch(
                    name.as_str(),
                    &PatchParams::default(),
                    &Patch::Json::<()>(patch),
                )
                .await
                .map_err(refused);
        }
        // A dry run's server applies the patch to what it stores, which the
        // dry runs before left as it was: the patch goes onto the deployment
        // as they would have left it instead, and the server's answer is
        // only checked for a refusal, not read.
        let would_be = would_be(read, &patch).map_err(|e| internal(&e))?;
        let request = kube::core::Request::new(Deployment::url_path(&(), Some(ns)))
            .patch(
                name.as_str(),
                &PatchParams::default().dry_run(),
                &Patch::Json::<()>(patch),
            )
            .map_err(|e| internal(&e))?;
        self.limiter.acquire().await;
        self.client.request_text(request).await.map_err(refused)?;
        Ok(would_be)
    }
}

/// `read` with `patch` applied, as a dry run follows it. The metadata and
/// the spec go through JSON, since patches reach nothing else; within them,
/// the pod template when no operation reaches it (a scale) and the managed
/// fields (kilobytes on a real cluster) are not, and are cloned instead.
fn would_be(read: &Deployment, patch: &json_patch::Patch) -> Result<Deployment, String> {
    use std::borrow::Cow;
    // A part left out is cloned once, for the answer; what goes through
    // JSON is serialized from `read` itself where nothing is left out.
    let (metadata, managed_fields) = match &read.metadata.managed_fields {
        Some(_) if !reaches(patch, "/metadata/managedFields") => {
            let mut metadata = read.metadata.clone();
            let fields = metadata.managed_fields.take();
            (Cow::Owned(metadata), fields)
        }
        _ => (Cow::Borrowed(&read.metadata), None),
    };
    let (spec, template) = match &read.spec {
        Some(spec) if !reaches(patch, "/spec/template") => {
            let mut spec = spec.clone();
            let template = std::mem::take(&mut spec.template);
            (Cow::Owned(Some(spec)), Some(template))
        }
        _ => (Cow::Borrowed(&read.spec), None),
    };
    let json = |e: serde_json::Error| e.to_string();
    let mut doc = serde_json::Map::new();
    doc.insert(
        "metadata".to_owned(),
        serde_json::to_value(&*metadata).map_err(json)?,
    );
    // As the API would have it: no spec, not a null one.
    if let Some(spec) = &*spec {
        doc.insert("spec".to_owned(), serde_json::to_value(spec).map_err(json)?);
    }
    let mut doc = Value::Object(doc);
    json_patch::patch(&mut doc, patch).map_err(|e| e.to_string())?;
    let mut after = Deployment {
        metadata: serde_json::from_value(doc["metadata"].take()).map_err(json)?,
        spec: serde_json::from_value(doc["spec"].take()).map_err(json)?,
        status: read.status.clone(),
    };
    if let Some(fields) = managed_fields {
        after.metadata.managed_fields = Some(fields);
    }
    if let (Some(spec), Some(template)) = (after.spec.as_mut(), template) {
        spec.template = template;
    }
    Ok(after)
}

/// Whether an operation of `patch` reads or writes at `part` (a JSON
/// pointer), inside it, or at a parent of it. A pointer that does not parse
/// counts as reached.
fn reaches(patch: &json_patch::Patch, part: &str) -> bool {
    use json_patch::PatchOperation::{Copy, Move};
    let Ok(part) = json_patch::jsonptr::Pointer::parse(part) else {
        return true;
    };
    let overlaps = |p: &json_patch::jsonptr::Pointer| p.starts_with(part) || part.starts_with(p);
    patch.0.iter().any(|op| {
        overlaps(op.path())
            || match op {
                Move(m) => overlaps(&m.from),
                Copy(c) => overlaps(&c.from),
                _ => false,
            }
    })
}

/// A planned change: the patch operations, and how to report the result
/// from the API's answer.
struct Plan {
    ops: Vec<Value>,
    report: Box<dyn FnOnce(&Deployment) -> Applied + Send>,
}

/// "its containers are a, b", or "its only container is a".
fn its(noun: &str, items: &[String]) -> String {
    match items {
        [] => format!("it has no {noun}s"),
        [only] => format!("its only {noun} is {only}"),
        many => format!("its {noun}s are {}", many.join(", ")),
    }
}

/// An `add` of one annotation; creates the map when it is missing (an
/// `add` of the whole map would replace the others).
fn annotation_op(map_path: &str, map_exists: bool, key: &str, value: &str) -> Value {
    if map_exists {
        json!({"op": "add", "path": format!("{map_path}/{}", fence::pointer_escape(key)), "value": value})
    } else {
        json!({"op": "add", "path": map_path, "value": {key: value}})
    }
}

fn annotations(d: &Deployment) -> Option<&std::collections::BTreeMap<String, String>> {
    d.metadata.annotations.as_ref()
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `name=image` for every container of the pod template.
fn images(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn already_applied(kind: &CommandKind, name: &DeploymentName, d: &Deployment) -> Applied {
    let now = match kind {
        CommandKind::Scale { .. } => {
            format!("{name} has {}", count(replicas(d), "replica", "replicas"))
        }
        _ => format!("{name} runs {}", images(d)),
    };
    Applied::new(
        Outcome::AlreadyApplied,
        format!("this command was applied before; {now}"),
    )
    .change(None, Some(now))
}

/// `later`: who sent the command at `by`, and what it said, where known.
fn superseded(
    kind: &CommandKind,
    name: &DeploymentName,
    by: u64,
    later: Option<&str>,
    d: &Deployment,
) -> Applied {
    let (what, now) = match kind {
        CommandKind::Scale { .. } => ("replicas", count(replicas(d), "replica", "replicas")),
        _ => ("pod template", images(d)),
    };
    let later = later.map_or_else(|| format!("#{by}"), |l| format!("#{by}, {l}"));
    Applied::new(
        Outcome::Superseded,
        // Whether this command took effect before the later one is not
        // known here (a worker may have applied it and stopped before its
        // result was published): only that it must not undo the later one.
        format!("a later command ({later}) has since set the {what} of {name}, and this one is not applied over it; it is now {now}"),
    )
    .change(None, Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read() -> Deployment {
        serde_json::from_value(json!({
            "metadata": {
                "name": "web",
                "annotations": {"a": "1"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "web:1"}]},
                },
            },
            "status": {"replicas": 2},
        }))
        .expect("a deployment")
    }

    #[test]
    fn a_missing_name_is_matched_to_the_one_a_slip_away_or_the_one_it_begins() {
        let names = |list: &[&str]| {
            list.iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>()
                .into_iter()
        };
        let cluster = names(&["nginx-deployment", "web", "api", "payments"]);
        assert_eq!(
            nearest("nginx-deploymnet", cluster.clone()).as_deref(),
            Some("nginx-deployment")
        );
        assert_eq!(
            nearest("paymnets", cluster.clone()).as_deref(),
            Some("payments")
        );
        assert_eq!(nearest("paymentz-api", cluster.clone()), None);
        // Short names are too easily near one another.
        assert_eq!(nearest("wep", cluster.clone()), None);
        // Two as near: neither is offered.
        assert_eq!(nearest("web-2", names(&["web-1", "web-3"])), None);
        assert_eq!(
            nearest("web-1x", names(&["web-1", "web-12"])).as_deref(),
            None
        );
        assert_eq!(
            nearest("web-1", names(&["web-1x", "web-2xy"])).as_deref(),
            Some("web-1x")
        );
        // The start of one name alone, as people shorten it.
        for typed in ["nginx", "nginx-deploy", "NGINX-dep"] {
            assert_eq!(
                nearest(typed, cluster.clone()).as_deref(),
                Some("nginx-deployment"),
                "{typed}"
            );
        }
        assert_eq!(nearest("pay", cluster.clone()).as_deref(), Some("payments"));
        assert_eq!(nearest("pa", cluster.clone()), None, "too short");
        assert_eq!(nearest("web", names(&["web-api", "web-ui"])), None);
        assert_eq!(
            nearest("web", names(&["web-api", "api-web"])).as_deref(),
            Some("web-api")
        );
    }

    /// Leaving the parts no operation reaches out of JSON changes nothing,
    /// against the whole deployment through JSON, patched, and back: a
    /// parent of the template or of the managed fields replaced, a move or
    /// copy out of them, a test and a removal reach them as much as a
    /// change inside; with and without managed fields or a spec.
    #[test]
    fn the_would_be_deployment_is_the_patched_one() {
        let patches = [
            json!([{"op": "add", "path": "/spec/replicas", "value": 5}]),
            json!([{"op": "add", "path": "/spec/template/spec/containers/0/image", "value": "web:2"}]),
            json!([{"op": "add", "path": "/metadata/annotations/b", "value": "2"}]),
            json!([{"op": "replace", "path": "/spec", "value": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "app", "image": "web:3"}]}},
            }}]),
            json!([{"op": "replace", "path": "/metadata", "value": {"name": "web"}}]),
            json!([{"op": "move", "from": "/spec/template/metadata/labels", "path": "/metadata/labels"}]),
            json!([{"op": "copy", "from": "/spec/template/metadata/labels", "path": "/metadata/labels"}]),
            json!([{"op": "remove", "path": "/metadata/managedFields"}]),
            json!([{"op": "replace", "path": "/metadata/managedFields/0/manager", "value": "chatops"}]),
            json!([{"op": "remove", "path": "/spec/template/metadata"}]),
            json!([{"op": "test", "path": "/spec/template/metadata/labels/app", "value": "web"},
                   {"op": "add", "path": "/spec/replicas", "value": 3}]),
            json!([{"op": "replace", "path": "", "value": {
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"spec": {"containers": []}},
                },
                "status": {"replicas": 2},
            }}]),
        ];
        let plain = {
            let mut d = read();
            d.metadata.managed_fields = None;
            d
        };
        let bare = Deployment {
            spec: None,
            ..plain.clone()
        };
        for read in [read(), plain, bare] {
            for ops in &patches {
                let patch: json_patch::Patch =
                    serde_json::from_value(ops.clone()).expect("a patch");
                let expected = {
                    let mut doc = serde_json::to_value(&read).expect("serializes");
                    json_patch::patch(&mut doc, &patch)
                        .is_ok()
                        .then(|| serde_json::from_value::<Deployment>(doc).expect("a deployment"))
                };
                assert_eq!(would_be(&read, &patch).ok(), expected, "{ops}");
            }
        }
    }

    /// What is left out of JSON: a scale (with its fence) reaches neither
    /// the template nor the managed fields; an image change the template.
    #[test]
    fn a_scale_reaches_neither_the_template_nor_the_managed_fields() {
        let patch = |ops| serde_json::from_value::<json_patch::Patch>(ops).expect("a patch");
        let scale = patch(json!([
            {"op": "add", "path": "/spec/replicas", "value": 5},
            {"op": "add", "path": "/metadata/annotations/chatops.dev~1replicas-fence", "value": "e/1"},
        ]));
        assert!(!reaches(&scale, "/spec/template"));
        assert!(!reaches(&scale, "/metadata/managedFields"));
        let image = patch(json!([
            {"op": "add", "path": "/spec/template/spec/containers/0/image", "value": "web:2"},
        ]));
        assert!(reaches(&image, "/spec/template"));
        assert!(
            !reaches(&image, "/spec/templates"),
            "tokens, not characters"
        );
    }
}
