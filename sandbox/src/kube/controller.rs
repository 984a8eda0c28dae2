//! The simulated deployment controller. For each Deployment it keeps one
//! ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`,
//! owned by the Deployment, carrying the revision annotation). A scale with
//! no rollout half done (a new Deployment's first one included) sets the
//! ReplicaSet's replicas at once, in one step and one Event, as the
//! controller's `scale` does; the Pods it adds then become ready one after
//! another over the rollout time. A rollout (a new template) moves replicas
//! from the old ReplicaSets to the new one one step at a time, so that it
//! takes the configured rollout time (Recreate: every old replica in one
//! step, then every new one; a paused Deployment only scales, and reports
//! Progressing `Unknown`). `status` is counted from the ReplicaSets'
//! (observedGeneration, replicas, updatedReplicas, readyReplicas,
//! availableReplicas, unavailableReplicas, the Available and Progressing
//! conditions) as the controller's `calculateStatus` and
//! `syncRolloutStatus` count it, which is what `kubectl rollout status` and
//! the worker's verification read.
//!
//! The sizes of a Deployment's ReplicaSets are the controller's: one
//! scaled by anyone else, or deleted (and so made anew at 0), is put back
//! at once to the size the rollout had left it with, as a cluster's
//! controller sets it back. No new generation tells of such a change, so
//! the controller remembers those sizes rather than trusting what it finds.
//!
//! A rollout's new replica is ready as soon as its step is taken, unless its
//! template names an image configured as unpullable; then the rollout
//! stalls as on a cluster (new pods never ready, old ones kept within
//! `maxUnavailable`) until `progressDeadlineSeconds` turns Progressing to
//! False with `ProgressDeadlineExceeded`. Each change of a ReplicaSet's
//! size is recorded as a `ScalingReplicaSet` Event on the Deployment. Each
//! Deployment's pass brings the Pods of its ReplicaSets in line with them
//! (see [`super::pods`]) before counting its status; the same pass then
//! does so for every other ReplicaSet that changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::Shared;
use super::api;
use super::deployment::{
    self, DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, NOT_COPIED, REVISION, REVISION_HISTORY,
};
use super::events::{self, DEPLOYMENT_CONTROLLER};
use super::lifecycle;
use super::meta::{self, int_at, str_at};
use super::pods;
use super::resources::{DEPLOYMENT, REPLICA_SET};
use super::store::{DeploymentKey, ReplicaSetKey, Store};

/// A rollout in progress: steps taken at even intervals from `start`.
#[derive(Debug, Clone)]
struct Episode {
    generation: i64,
    start: Instant,
    total: u32,
    done: u32,
    /// The replicas the controller left each of the Deployment's
    /// ReplicaSets with, by name. One found with others was changed by
    /// someone else (scaled, or deleted and so made anew), which no new
    /// generation tells.
    left: HashMap<String, i64>,
}

/// What the controller remembers between passes.
#[derive(Debug, Default)]
struct State {
    episodes: HashMap<DeploymentKey, Episode>,
    /// When each Deployment's next rollout step (or deadline) is due.
    due: HashMap<DeploymentKey, Instant>,
    /// The settings of the last pass; a change reconciles everything.
    settings: Option<Settings>,
    /// The Pods a scale brought, until they are ready.
    startup: pods::Startup,
}

/// Runs until the sandbox stops: reconcile what changed, then sleep until
/// the next step is due or a write wakes it.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut state = State::default();
    loop {
        if shared.held() {
            shared.wake.notified().await;
            continue;
        }
        let settings = Settings {
            rollout: shared.rollout(),
            unpullable: shared.unpullable(),
        };
        let next = {
            let mut store = shared.lock_store();
            reconcile_changed(&mut store, &mut state, Instant::now(), settings)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// What the controller reads from the sandbox's run-time settings.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    rollout: Duration,
    unpullable: Vec<String>,
}

/// One pass: first the ReplicaSets with a Pod whose time to become ready
/// has come; then the Deployments that need it: those written (or whose
/// ReplicaSets were) since the last pass, and those with a step due; every
/// one after a change of settings. Each Deployment's pass brings the Pods
/// of its ReplicaSets in line and counts its status from theirs. Then the
/// Pods of the other ReplicaSets written (or whose Pods were), and once more
/// the Deployments whose ReplicaSets that changed. Returns when the next
/// step, or the next Pod's readiness, is due.
///
/// Reconciling only these is what a pass over all of them would do: a
/// Deployment nobody wrote and with nothing due reconciles to itself. The
/// controller's own writes are the outcome of the pass, so they do not
/// call for another.
fn reconcile_changed(
    store: &mut Store,
    state: &mut State,
    now: Instant,
    settings: Settings,
) -> Option<Instant> {
    // The namespace controller and the garbage collector first: what they
    // delete the other controllers need not look at.
    lifecycle::reconcile(store);
    let changed_settings = state.settings.as_ref() != Some(&settings);
    if changed_settings {
        // A shorter rollout time brings the Pods still starting forward
        // with it, as it does the steps of rollouts.
        state.startup.hasten(now + settings.rollout);
    }
    for (namespace, name) in state.startup.take_due(now) {
        pods::reconcile(
            store,
            &namespace,
            &name,
            &settings.unpullable,
            &mut state.startup,
            now,
            None,
        );
    }
    let mut keys = store.take_dirty();
    if changed_settings {
        keys.extend(store.list(&DEPLOYMENT, None).into_iter().map(key));
    }
    keys.extend(
        state
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone()),
    );
    let mut reconciled = BTreeSet::new();
    reconcile_deployments(store, state, keys, now, &settings, &mut reconciled);
    store.take_dirty();
    let mut sets = store.take_dirty_sets();
    if changed_settings {
        // Which images can be pulled decides how every Pod looks.
        sets.extend(store.list(&REPLICA_SET, None).into_iter().map(key));
    }
    for (namespace, name) in sets.difference(&reconciled) {
        pods::reconcile(
            store,
            namespace,
            name,
            &settings.unpullable,
            &mut state.startup,
            now,
            None,
        );
    }
    // A ReplicaSet there that a Deployment adopts, or one whose Pod was
    // replaced, shows in that Deployment's status.
    let again = store.take_dirty();
    reconcile_deployments(store, state, again, now, &settings, &mut reconciled);
    store.take_dirty();
    store.take_dirty_sets();
    state.settings = Some(settings);
    let next_step = state.due.values().min().copied();
    match (next_step, state.startup.next_due()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reconciles each of `keys` still there, remembering when each is due
/// again and adding the ReplicaSets whose Pods it saw to `reconciled`.
fn reconcile_deployments(
    store: &mut Store,
    state: &mut State,
    keys: BTreeSet<DeploymentKey>,
    now: Instant,
    settings: &Settings,
    reconciled: &mut BTreeSet<ReplicaSetKey>,
) {
    for k in keys {
        // One being deleted is the garbage collector's: its controller
        // makes and scales nothing more.
        let Some(d) = store
            .shared(&DEPLOYMENT, &k.0, &k.1)
            .filter(|d| !api::is_deleting(d))
            .cloned()
        else {
            state.episodes.remove(&k);
            state.due.remove(&k);
            continue;
        };
        let pass = Pass {
            store: &mut *store,
            startup: &mut state.startup,
            reconciled: &mut *reconciled,
            now,
            settings,
        };
        match reconcile(pass, &mut state.episodes, &d) {
            Some(at) => state.due.insert(k, at),
            None => state.due.remove(&k),
        };
    }
}

/// What a pass over one Deployment works with.
struct Pass<'a> {
    store: &'a mut Store,
    startup: &'a mut pods::Startup,
    /// The ReplicaSets whose Pods were brought in line this pass.
    reconciled: &'a mut BTreeSet<ReplicaSetKey>,
    now: Instant,
    settings: &'a Settings,
}

fn key(d: &Value) -> DeploymentKey {
    (
        str_at(d, "/metadata/namespace").to_owned(),
        str_at(d, "/metadata/name").to_owned(),
    )
}

/// `25%` of `of`, or an absolute number; rounded up for surge, down for
/// unavailability, as the controller does.
fn int_or_percent(v: &Value, of: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = pct * of;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
        _ => 0,
    }
}

/// Replica counts of the new and the old ReplicaSets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    new: i64,
    /// (name, replicas), oldest revision first.
    old: Vec<(String, i64)>,
    /// The Recreate strategy: every old replica goes before a new one comes.
    recreate: bool,
}

impl Counts {
    /// The counts of `d`'s ReplicaSets: `new` replicas in the new one, and
    /// the `old` ones as they are.
    fn of(d: &Value, new: i64, old: &[Arc<Value>]) -> Self {
        Counts {
            new,
            old: old
                .iter()
                .map(|rs| {
                    (
                        str_at(rs, "/metadata/name").to_owned(),
                        int_at(rs, "/spec/replicas"),
                    )
                })
                .collect(),
            recreate: str_at(d, "/spec/strategy/type") == "Recreate",
        }
    }

    fn old_total(&self) -> i64 {
        self.old.iter().map(|(_, n)| n).sum()
    }

    /// The replicas of each ReplicaSet by name, the new one's `new_name`.
    fn sizes(&self, new_name: Option<&str>) -> HashMap<String, i64> {
        self.old
            .iter()
            .cloned()
            .chain(new_name.map(|name| (name.to_owned(), self.new)))
            .collect()
    }

    /// Whether any ReplicaSet's replicas differ from `other`'s.
    fn moved_from(&self, other: &Counts) -> bool {
        self.new != other.new || self.old != other.old
    }

    /// Puts back the replicas the controller `left` each ReplicaSet with,
    /// whoever changed them since: it owns their sizes. An old one it never
    /// sized (owned by hand) has none.
    fn restore(&mut self, new_name: Option<&str>, left: &HashMap<String, i64>) {
        if let Some(n) = new_name.and_then(|name| left.get(name)) {
            self.new = *n;
        }
        for (name, n) in &mut self.old {
            *n = left.get(name).copied().unwrap_or(0);
        }
    }

    /// One step toward `desired`; false when already there. A rolling
    /// update moves one replica a step; Recreate scales every old
    /// ReplicaSet to zero in one step, then the new one to `desired` in
    /// the next, as its controller does.
    fn step(&mut self, desired: i64) -> bool {
        if self.recreate {
            if self.old_total() > 0 {
                self.old.iter_mut().for_each(|(_, n)| *n = 0);
                return true;
            }
            let moved = self.new != desired;
            self.new = desired;
            return moved;
        }
        if self.new < desired {
            self.new += 1;
            if self.new + self.old_total() > desired {
                self.scale_down_old();
            }
            true
        } else if self.old_total() > 0 {
            self.scale_down_old();
            true
        } else if self.new > desired {
            self.new -= 1;
            true
        } else {
            false
        }
    }

    fn scale_down_old(&mut self) {
        if let Some((_, n)) = self.old.iter_mut().find(|(_, n)| *n > 0) {
            *n -= 1;
        }
    }

    fn steps_to(&self, desired: i64) -> u32 {
        let mut c = self.clone();
        let mut steps = 0;
        while c.step(desired) {
            steps += 1;
        }
        steps
    }
}

/// How the Deployment came by the ReplicaSet of its template on this pass,
/// which the Progressing condition tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It was there, the newest.
    Kept,
    /// It was made on this pass.
    Created,
    /// An older revision's, made the newest again (a rollback).
    RolledBack,
}

fn reconcile(
    pass: Pass<'_>,
    episodes: &mut HashMap<DeploymentKey, Episode>,
    d: &Arc<Value>,
) -> Option<Instant> {
    let Pass {
        store,
        startup,
        reconciled,
        now,
        settings,
    } = pass;
    let rollout = settings.rollout;
    let (namespace, name) = key(d);
    let uid = str_at(d, "/metadata/uid").to_owned();
    let generation = int_at(d, "/metadata/generation");
    let desired = int_at(d, "/spec/replicas");
    let template = &d["spec"]["template"];
    let mut owned = api::claim(store, &REPLICA_SET, d, &namespace);
    owned.sort_by_key(|rs| deployment::revision_of(rs));
    let max_revision = owned
        .iter()
        .map(|rs| deployment::revision_of(rs))
        .max()
        .unwrap_or(0);
    let paused = d["spec"]["paused"] == json!(true);
    // A new replica counts as available only `minReadySeconds` after it is
    // ready: a rollout waits that long between steps, and the Pods a scale
    // brings take at least that long.
    let min_ready =
        Duration::from_secs(u64::try_from(int_at(d, "/spec/minReadySeconds")).unwrap_or(0));
    let ramp = rollout.max(min_ready);

    let mut found = Found::Kept;
    let new_rs = match owned
        .iter()
        .position(|rs| deployment::same_template(&rs["spec"]["template"], template))
    {
        Some(i) => {
            let mut rs = owned.remove(i);
            if deployment::revision_of(&rs) < max_revision && !paused {
                // A rollback to an older template: it becomes the newest revision.
                let old_rev = deployment::revision_of(&rs);
                let mut newest = Value::clone(&rs);
                let annotations = &mut newest["metadata"]["annotations"];
                let history = match str_at(
                    annotations,
                    &format!("/{}", REVISION_HISTORY.replace('/', "~1")),
                ) {
                    "" => old_rev.to_string(),
                    h => format!("{h},{old_rev}"),
                };
                annotations[REVISION_HISTORY] = json!(history);
                annotations[REVISION] = json!((max_revision + 1).to_string());
                found = Found::RolledBack;
                rs = store.insert(&REPLICA_SET, newest);
            }
            Some(rs)
        }
        None if paused => None,
        None => {
            found = Found::Created;
            let rs = new_replica_set(store, d, max_revision + 1);
            Some(store.insert(&REPLICA_SET, rs))
        }
    };
    let unpullable = settings.unpullable.as_slice();
    let episode = episodes
        .entry((namespace.clone(), name.clone()))
        .or_insert_with(|| Episode {
            generation: -1,
            start: now,
            total: 0,
            done: 0,
            left: HashMap::new(),
        });
    let Some(new_rs) = new_rs else {
        // Paused before its template rolled out: nothing moves, but what
        // others changed is put back.
        let observed = Counts::of(d, 0, &owned);
        let mut counts = observed.clone();
        if episode.generation == generation {
            counts.restore(None, &episode.left);
        } else {
            *episode = Episode {
                generation,
                start: now,
                total: 0,
                done: 0,
                left: HashMap::new(),
            };
        }
        // It still scales, at once: its one active ReplicaSet (none active,
        // the newest) takes the new size, as the controller's `scale` does.
        let active: Vec<usize> = (0..counts.old.len())
            .filter(|&i| counts.old[i].1 > 0)
            .collect();
        let target = match active.as_slice() {
            [i] => Some(*i),
            [] => counts.old.len().checked_sub(1),
            _ => None,
        };
        // Put back, a size is as the controller left it; a new one is a
        // scale, whose added Pods come up over the rollout time.
        let mut grown = Vec::new();
        if let Some(i) = target
            && counts.old[i].1 != desired
        {
            if desired > counts.old[i].1 {
                grown.push(counts.old[i].0.clone());
            }
            counts.old[i].1 = desired;
        }
        resize_old(store, d, &owned, &observed, &counts);
        episode.left = counts.sizes(None);
        let end = End {
            new_rs: None,
            old: &owned,
            grown: &grown,
            ramp,
            found,
            timed_out: false,
        };
        finish(store, startup, reconciled, d, &end, now, unpullable);
        return None;
    };
    let new_name = str_at(&new_rs, "/metadata/name").to_owned();
    let new_rs = copy_annotations(store, d, new_rs);

    // The Deployment carries the revision of its newest ReplicaSet.
    let revision = deployment::revision_of(&new_rs).to_string();
    let d = if str_at(
        d,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    ) != revision
    {
        let mut updated = Value::clone(d);
        updated["metadata"]["annotations"][REVISION] = json!(revision);
        store.insert(&DEPLOYMENT, updated)
    } else {
        d.clone()
    };

    let observed = Counts::of(&d, int_at(&new_rs, "/spec/replicas"), &owned);
    let mut counts = observed.clone();
    let mut grown = Vec::new();
    if episode.generation == generation {
        // The rollout goes on from where the controller left it, not from
        // where someone else put a ReplicaSet.
        counts.restore(Some(&new_name), &episode.left);
        if found == Found::Created {
            // Made again for the template it rolled out (the one before
            // was deleted, or let go of when relabelled): at once to what
            // its own old ReplicaSets leave, as a surge allows with none
            // of its Pods left.
            counts.new = (desired - counts.old_total()).max(0);
        }
    } else if counts.old_total() == 0 && counts.new != desired {
        // A scale with no rollout half done (a new Deployment's first
        // included): the ReplicaSet takes the new size at once, in one
        // step, as the controller's `scale` sets it; the Pods it adds come
        // up over the rollout time.
        if desired > counts.new {
            grown.push(new_name.clone());
        }
        counts.new = desired;
    }
    // A paused Deployment rolls nothing out (it scaled above).
    let total = if paused { 0 } else { counts.steps_to(desired) };
    if episode.generation != generation || (paused && episode.total - episode.done > total) {
        *episode = Episode {
            generation,
            start: now,
            total,
            done: 0,
            left: HashMap::new(),
        };
    }
    if images(&d).any(|i| unpullable.iter().any(|u| u == i)) {
        let (next, counts, timed_out) =
            stall(store, &d, &owned, new_rs, &observed, counts, episode, now);
        episode.left = counts.sizes(Some(&new_name));
        let end = End {
            new_rs: Some(&new_name),
            old: &owned,
            grown: &[],
            ramp,
            found,
            timed_out,
        };
        finish(store, startup, reconciled, &d, &end, now, unpullable);
        return next;
    }
    // A step every rollout time's share, and never sooner than new
    // replicas become available.
    let interval = (rollout / episode.total.max(1)).max(min_ready);
    let due = if interval.is_zero() {
        episode.total
    } else {
        let elapsed = now.saturating_duration_since(episode.start);
        u32::try_from(elapsed.as_nanos() / interval.as_nanos())
            .unwrap_or(u32::MAX)
            .min(episode.total)
    };
    while episode.done < due {
        counts.step(desired);
        episode.done += 1;
    }
    if counts.moved_from(&observed) || found == Found::Created {
        // Recreate takes the old replicas down before the new ones come;
        // a rolling update surges first.
        if !counts.recreate {
            scale_replica_set(store, new_rs.clone(), counts.new, &d);
        }
        resize_old(store, &d, &owned, &observed, &counts);
        if counts.recreate {
            scale_replica_set(store, new_rs, counts.new, &d);
        }
    }
    episode.left = counts.sizes(Some(&new_name));
    let end = End {
        new_rs: Some(&new_name),
        old: &owned,
        grown: &grown,
        ramp,
        found,
        timed_out: false,
    };
    finish(store, startup, reconciled, &d, &end, now, unpullable);
    clean_up_history(store, &d, &namespace, &uid);

    (episode.done < episode.total).then(|| episode.start + interval * (episode.done + 1))
}

/// Where a pass over a Deployment ends: its ReplicaSets (by name, the one
/// of its template first when it has one), those a scale grew, and what the
/// Progressing condition needs.
#[derive(Debug)]
struct End<'a> {
    new_rs: Option<&'a str>,
    old: &'a [Arc<Value>],
    /// Grown by a scale: their new Pods come up over `ramp`.
    grown: &'a [String],
    ramp: Duration,
    found: Found,
    /// The rollout stalled past its progress deadline.
    timed_out: bool,
}

/// The end of every pass over a Deployment: the Pods of each of its
/// ReplicaSets brought in line (the ReplicaSet controller's part), then the
/// Deployment's status counted from theirs, as the deployment controller's
/// `calculateStatus` counts it.
fn finish(
    store: &mut Store,
    startup: &mut pods::Startup,
    reconciled: &mut BTreeSet<ReplicaSetKey>,
    d: &Value,
    end: &End<'_>,
    now: Instant,
    unpullable: &[String],
) {
    let namespace = str_at(d, "/metadata/namespace");
    let names: Vec<String> = end
        .new_rs
        .map(str::to_owned)
        .into_iter()
        .chain(
            end.old
                .iter()
                .map(|rs| str_at(rs, "/metadata/name").to_owned()),
        )
        .collect();
    for rs in &names {
        let ramp = end.grown.contains(rs).then_some(end.ramp);
        pods::reconcile(store, namespace, rs, unpullable, startup, now, ramp);
        reconciled.insert((namespace.to_owned(), rs.clone()));
    }
    let sets: Vec<Arc<Value>> = names
        .iter()
        .filter_map(|n| store.shared(&REPLICA_SET, namespace, n).cloned())
        .collect();
    let new_rs = end
        .new_rs
        .and_then(|n| sets.iter().find(|rs| str_at(rs, "/metadata/name") == n));
    write_status(
        store,
        d,
        &sets,
        new_rs.map(Arc::as_ref),
        end.found,
        end.timed_out,
    );
}

/// Sizes each old ReplicaSet whose replicas in `counts` differ from those
/// `observed`.
fn resize_old(
    store: &mut Store,
    d: &Value,
    owned: &[Arc<Value>],
    observed: &Counts,
    counts: &Counts,
) {
    for ((rs_name, n), (_, was)) in counts.old.iter().zip(&observed.old) {
        if n != was
            && let Some(rs) = owned
                .iter()
                .find(|rs| str_at(rs, "/metadata/name") == rs_name)
        {
            scale_replica_set(store, rs.clone(), *n, d);
        }
    }
}

/// The images of a Deployment's pod template.
fn images(d: &Value) -> impl Iterator<Item = &str> {
    d.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
}

/// A rollout whose new pods never become ready: the new ReplicaSet surges,
/// the old ones shrink only as far as `maxUnavailable` allows, and after
/// `progressDeadlineSeconds` the Deployment reports the deadline exceeded.
///
/// `counts` are where the controller left the ReplicaSets, `observed` where
/// they are; returns when the deadline is due, the counts it set, and
/// whether the deadline has passed.
#[allow(clippy::too_many_arguments)] // the rollout's whole state, spelled out
fn stall(
    store: &mut Store,
    d: &Value,
    owned: &[Arc<Value>],
    new_rs: Arc<Value>,
    observed: &Counts,
    mut counts: Counts,
    episode: &Episode,
    now: Instant,
) -> (Option<Instant>, Counts, bool) {
    let desired = int_at(d, "/spec/replicas");
    let rolling = &d["spec"]["strategy"]["rollingUpdate"];
    let surge = int_or_percent(&rolling["maxSurge"], desired, true);
    let unavailable = int_or_percent(&rolling["maxUnavailable"], desired, false);
    if counts.recreate {
        // Every old replica is gone before the new ones, which never start.
        counts.old.iter_mut().for_each(|(_, n)| *n = 0);
        counts.new = desired;
    } else {
        counts.new = desired.min((surge + unavailable).max(1)).max(counts.new);
        let mut excess = (counts.old_total() - (desired - unavailable).max(0)).max(0);
        for (_, n) in counts.old.iter_mut() {
            let cut = excess.min(*n);
            *n -= cut;
            excess -= cut;
        }
    }
    if counts.moved_from(observed) {
        scale_replica_set(store, new_rs, counts.new, d);
        resize_old(store, d, owned, observed, &counts);
    }
    let deadline_seconds = u64::try_from(int_at(d, "/spec/progressDeadlineSeconds")).unwrap_or(0);
    let deadline = episode.start + Duration::from_secs(deadline_seconds);
    (
        (now < deadline).then_some(deadline),
        counts,
        now >= deadline,
    )
}

/// The controller keeps copying the Deployment's own annotations (such as
/// `kubernetes.io/change-cause`, which `rollout history` shows) onto its
/// newest ReplicaSet.
fn copy_annotations(store: &mut Store, d: &Value, rs: Arc<Value>) -> Arc<Value> {
    let copied = || {
        d["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
    };
    if copied().all(|(k, v)| rs["metadata"]["annotations"].get(k) == Some(v)) {
        return rs;
    }
    let mut updated = Value::clone(&rs);
    for (k, v) in copied() {
        updated["metadata"]["annotations"][k] = v.clone();
    }
    store.insert(&REPLICA_SET, updated)
}

/// A ReplicaSet for the Deployment's current template.
fn new_replica_set(store: &Store, d: &Value, revision: u64) -> Value {
    let template = &d["spec"]["template"];
    let namespace = str_at(d, "/metadata/namespace");
    // A name another ReplicaSet holds (one this Deployment let go of when
    // it was relabelled, say) is not written over: the hash is taken again
    // with a collision count, as the controller's `collisionCount` does.
    let (hash, name) = (0..)
        .map(|collisions| {
            let hash = deployment::template_hash(template, collisions);
            let name = format!("{}-{hash}", str_at(d, "/metadata/name"));
            (hash, name)
        })
        .find(|(_, name)| store.shared(&REPLICA_SET, namespace, name).is_none())
        .expect("a free name among endless counts");
    let mut template = template.clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = serde_json::Map::new();
    if let Some(a) = d["metadata"]["annotations"].as_object() {
        for (k, v) in a.iter().filter(|(k, _)| !NOT_COPIED.contains(&k.as_str())) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    annotations.insert(REVISION.to_owned(), json!(revision.to_string()));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": d["metadata"]["namespace"],
            "uid": uuid::Uuid::new_v4().to_string(),
            "generation": 1,
            "creationTimestamp": meta::now(),
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": d["metadata"]["name"],
                "uid": d["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
        "status": {"replicas": 0, "observedGeneration": 1},
    })
}

fn set_or_remove(map: &mut Value, key: &str, n: i64) {
    if n == 0 {
        if let Some(m) = map.as_object_mut() {
            m.remove(key);
        }
    } else {
        map[key] = json!(n);
    }
}

/// Sets a ReplicaSet's replicas, with the controller's desired/max
/// annotations; its status is its Pods' to give (see [`pods::reconcile`]).
fn scale_replica_set(
    store: &mut Store,
    before: Arc<Value>,
    replicas: i64,
    d: &Value,
) -> Arc<Value> {
    let desired = int_at(d, "/spec/replicas");
    let mut rs = Value::clone(&before);
    let was = int_at(&rs, "/spec/replicas");
    if was != replicas {
        rs["spec"]["replicas"] = json!(replicas);
        rs["metadata"]["generation"] = json!(int_at(&rs, "/metadata/generation") + 1);
        let direction = if replicas > was { "up" } else { "down" };
        events::normal(
            store,
            d,
            "ScalingReplicaSet",
            || {
                format!(
                    "Scaled {direction} replica set {} from {was} to {replicas}",
                    str_at(&rs, "/metadata/name")
                )
            },
            DEPLOYMENT_CONTROLLER,
        );
    }
    let surge = int_or_percent(
        &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        desired,
        true,
    );
    rs["metadata"]["annotations"][DESIRED_REPLICAS] = json!(desired.to_string());
    rs["metadata"]["annotations"][MAX_REPLICAS] = json!((desired + surge).to_string());
    if rs == *before {
        return before;
    }
    store.insert(&REPLICA_SET, rs)
}

/// The Deployment's condition of `kind`, if it has one.
fn current_condition<'a>(d: &'a Value, kind: &str) -> Option<&'a Value> {
    d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
}

/// A condition as the controller's `SetDeploymentCondition` sets it: one of
/// the same status and reason is kept as it is (message and times too);
/// else the new one, keeping the transition time while the status holds.
fn set_condition(
    current: Option<&Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &str,
) -> Value {
    match current {
        Some(c) if c["status"] == status && c["reason"] == reason => c.clone(),
        _ => {
            let transition = match current {
                Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            json!({
                "type": kind,
                "status": status,
                "lastUpdateTime": now,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            })
        }
    }
}

/// A Deployment's replica counts, as its status gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Tally {
    replicas: i64,
    updated: i64,
    ready: i64,
    available: i64,
}

impl Tally {
    fn of_status(status: &Value) -> Self {
        Self {
            replicas: int_at(status, "/replicas"),
            updated: int_at(status, "/updatedReplicas"),
            ready: int_at(status, "/readyReplicas"),
            available: int_at(status, "/availableReplicas"),
        }
    }

    /// The controller's `DeploymentProgressing`: more new replicas, fewer
    /// old ones, or more ready or available than `before`.
    fn progressed_from(&self, before: &Tally) -> bool {
        self.updated > before.updated
            || self.replicas - self.updated < before.replicas - before.updated
            || self.ready > before.ready
            || self.available > before.available
    }
}

/// The Progressing condition after this pass, as the controller's
/// `syncRolloutStatus` (with `getNewReplicaSet` and the paused checks)
/// decides it: `FoundNewReplicaSet` only where there was none yet,
/// `NewReplicaSetCreated` for the pass that made one, then
/// `ReplicaSetUpdated` whenever the rollout moved, `NewReplicaSetAvailable`
/// once complete (kept while no new rollout starts), and
/// `ProgressDeadlineExceeded` once stalled past the deadline; otherwise the
/// condition stays as it was.
fn progressing(
    d: &Value,
    tally: &Tally,
    new_rs: Option<&str>,
    found: Found,
    timed_out: bool,
    now: &str,
) -> Option<Value> {
    let mut current = current_condition(d, "Progressing").cloned();
    let reason = |c: &Option<Value>| {
        c.as_ref()
            .and_then(|c| c["reason"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    if d["spec"]["paused"] == json!(true) {
        // A lack of progress once reported is not overwritten.
        if reason(&current) == "ProgressDeadlineExceeded" {
            return current;
        }
        return Some(set_condition(
            current.as_ref(),
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_owned(),
            now,
        ));
    }
    if reason(&current) == "DeploymentPaused" {
        current = Some(set_condition(
            current.as_ref(),
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed".to_owned(),
            now,
        ));
    }
    let rs = new_rs?;
    match found {
        Found::Created => {
            current = Some(set_condition(
                current.as_ref(),
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set {rs:?}"),
                now,
            ));
        }
        Found::RolledBack if current.is_none() => {
            current = Some(set_condition(
                None,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                format!("Found new replica set {rs:?}"),
                now,
            ));
        }
        Found::RolledBack | Found::Kept => {}
    }
    let desired = int_at(d, "/spec/replicas");
    if tally.replicas == tally.updated && reason(&current) == "NewReplicaSetAvailable" {
        return current;
    }
    if tally.updated == desired && tally.replicas == desired && tally.available == desired {
        return Some(set_condition(
            current.as_ref(),
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet {rs:?} has successfully progressed."),
            now,
        ));
    }
    if tally.progressed_from(&Tally::of_status(&d["status"])) {
        // Progress is news even under the same reason: a fresh update
        // time, the transition time kept while the condition stays True.
        let transition = match &current {
            Some(c) if c["status"] == "True" => c["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        return Some(json!({
            "type": "Progressing",
            "status": "True",
            "lastUpdateTime": now,
            "lastTransitionTime": transition,
            "reason": "ReplicaSetUpdated",
            "message": format!("ReplicaSet {rs:?} is progressing."),
        }));
    }
    if timed_out {
        return Some(set_condition(
            current.as_ref(),
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet {rs:?} has timed out progressing."),
            now,
        ));
    }
    current
}

/// The Deployment's status counted from its ReplicaSets (`sets`, `new_rs`
/// among them), as the controller's `calculateStatus` counts it: replicas,
/// ready and available as their statuses say, updated those of the new
/// one, unavailable what their specs want beyond what is available.
fn write_status(
    store: &mut Store,
    d: &Value,
    sets: &[Arc<Value>],
    new_rs: Option<&Value>,
    found: Found,
    timed_out: bool,
) {
    let desired = int_at(d, "/spec/replicas");
    let sum = |pointer: &str| sets.iter().map(|rs| int_at(rs, pointer)).sum::<i64>();
    let tally = Tally {
        replicas: sum("/status/replicas"),
        updated: new_rs.map_or(0, |rs| int_at(rs, "/status/replicas")),
        ready: sum("/status/readyReplicas"),
        available: sum("/status/availableReplicas"),
    };
    let unavailable = (sum("/spec/replicas") - tally.available).max(0);
    let max_unavailable = int_or_percent(
        &d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        desired,
        false,
    );
    let now = meta::now();
    let available = if tally.available >= desired - max_unavailable {
        set_condition(
            current_condition(d, "Available"),
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".to_owned(),
            &now,
        )
    } else {
        set_condition(
            current_condition(d, "Available"),
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".to_owned(),
            &now,
        )
    };
    let new_name = new_rs.map(|rs| str_at(rs, "/metadata/name"));
    let progressing = progressing(d, &tally, new_name, found, timed_out, &now);
    let conditions: Vec<Value> = [available].into_iter().chain(progressing).collect();
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"],
        "conditions": conditions,
    });
    set_or_remove(&mut status, "replicas", tally.replicas);
    set_or_remove(&mut status, "updatedReplicas", tally.updated);
    set_or_remove(&mut status, "readyReplicas", tally.ready);
    set_or_remove(&mut status, "availableReplicas", tally.available);
    set_or_remove(&mut status, "unavailableReplicas", unavailable);
    if d["status"] != status {
        let mut updated = d.clone();
        updated["status"] = status;
        store.insert(&DEPLOYMENT, updated);
    }
}

/// Deletes scaled-down old ReplicaSets beyond `revisionHistoryLimit`.
fn clean_up_history(store: &mut Store, d: &Value, namespace: &str, uid: &str) {
    let limit = usize::try_from(int_at(d, "/spec/revisionHistoryLimit")).unwrap_or(0);
    let newest = deployment::revision_of(d);
    let mut idle: Vec<(u64, String, String)> = store
        .controlled_by(&REPLICA_SET, namespace, uid)
        .into_iter()
        .filter(|rs| deployment::revision_of(rs) != newest && int_at(rs, "/spec/replicas") == 0)
        .map(|rs| {
            (
                deployment::revision_of(rs),
                str_at(rs, "/metadata/name").to_owned(),
                str_at(rs, "/metadata/uid").to_owned(),
            )
        })
        .collect();
    idle.sort();
    let excess = idle.len().saturating_sub(limit);
    for (_, name, rs_uid) in idle.into_iter().take(excess) {
        store.remove(&REPLICA_SET, namespace, &name);
        // The garbage collector: a Pod the ReplicaSet controller had not
        // yet scaled away goes with its owner, never left behind it.
        api::release_children(store, &REPLICA_SET, namespace, &rs_uid, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_moves_one_replica_per_step() {
        let mut c = Counts {
            new: 0,
            old: vec![("old".to_owned(), 2)],
            recreate: false,
        };
        assert_eq!(c.steps_to(2), 2);
        assert!(c.step(2));
        assert_eq!((c.new, c.old_total()), (1, 1));
        assert!(c.step(2));
        assert_eq!((c.new, c.old_total()), (2, 0));
        assert!(!c.step(2));
    }

    #[test]
    fn recreate_empties_every_old_replica_set_before_the_new_one_grows() {
        let mut c = Counts {
            new: 0,
            old: vec![("older".to_owned(), 1), ("old".to_owned(), 2)],
            recreate: true,
        };
        assert_eq!(c.steps_to(3), 2);
        assert!(c.step(3));
        assert_eq!((c.new, c.old_total()), (0, 0), "never two versions at once");
        assert!(c.step(3));
        assert_eq!((c.new, c.old_total()), (3, 0));
        assert!(!c.step(3));
        assert!(c.step(5), "a scale is one step");
        assert_eq!(c.new, 5);
    }

    #[test]
    fn percentages_round_like_the_controller() {
        assert_eq!(int_or_percent(&json!("25%"), 5, true), 2);
        assert_eq!(int_or_percent(&json!("25%"), 5, false), 1);
        assert_eq!(int_or_percent(&json!(3), 5, false), 3);
    }
}
