//! The simulated ReplicaSet controller, with the scheduler and kubelet
//! folded in: each ReplicaSet gets as many Pods as its `spec.replicas`
//! (named `<replicaset>-<5 random characters>`, its template's labels, an
//! owner reference to it, the template's spec bound to [`NODE`]), made and
//! deleted with the `SuccessfulCreate` / `SuccessfulDelete` Events a real
//! controller records. A Pod deleted by hand is replaced, as on a cluster.
//!
//! Pods are Running and Ready at once, except those a scale-up brings: they
//! run not ready at first and become ready one after another over the time
//! the deployment controller gives (the sandbox's rollout time), as
//! containers start on a cluster. A Pod of an image configured as unpullable
//! waits in `ImagePullBackOff`, as the kubelet leaves it. A ReplicaSet's
//! status is counted from its Pods (`replicas`, `readyReplicas`,
//! `availableReplicas`), whoever owns it, and a Deployment's status from its
//! ReplicaSets'.
//!
//! Only the ReplicaSets written since the last pass (or whose Pods were)
//! are looked at, and only their own Pods, through the store's index by
//! controller uid: the cost of a pass follows what changed, not how many
//! Pods there are.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

use super::api::{self, random_suffix};
use super::events::{self, REPLICA_SET_CONTROLLER};
use super::meta::{self, int_at, str_at};
use super::resources::{POD, REPLICA_SET};
use super::store::{ReplicaSetKey, Store};
use tokio::time::Instant;

/// The node every Pod runs on.
pub(crate) const NODE: &str = "sandbox-node";
/// The node's address, which Pods report as `hostIP`.
const HOST_IP: &str = "10.0.0.10";

/// What a Pod's status says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Ready,
    /// Running, not (yet) ready.
    NotReady,
    /// Waiting for an image the kubelet cannot pull.
    ImagePullBackOff,
}

fn containers(spec: &Value) -> &[Value] {
    spec.get("containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Whether the kubelet can pull every image of a pod spec.
pub(crate) fn pullable(spec: &Value, unpullable: &[String]) -> bool {
    containers(spec)
        .iter()
        .all(|c| !unpullable.iter().any(|u| c["image"] == u.as_str()))
}

fn state_of(pod: &Value) -> PodState {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if statuses
        .iter()
        .any(|c| c["state"]["waiting"]["reason"] == "ImagePullBackOff")
    {
        return PodState::ImagePullBackOff;
    }
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if ready {
        PodState::Ready
    } else {
        PodState::NotReady
    }
}

/// The Pods that are starting: running, not yet ready, each with when it
/// will be.
#[derive(Debug, Default)]
pub(crate) struct Startup {
    /// By the Pod's namespace and name: its ReplicaSet and when it is ready.
    ready_at: HashMap<(String, String), (String, Instant)>,
}

impl Startup {
    /// When the next Pod becomes ready.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.ready_at.values().map(|(_, at)| *at).min()
    }

    /// The ReplicaSets with a Pod due to become ready by `now`; the Pods
    /// are forgotten here (those still there turn ready when their
    /// ReplicaSet is reconciled, as any Pod without a time does).
    pub(crate) fn take_due(&mut self, now: Instant) -> BTreeSet<ReplicaSetKey> {
        let mut due = BTreeSet::new();
        self.ready_at.retain(|(namespace, _), (rs, at)| {
            if *at > now {
                return true;
            }
            due.insert((namespace.clone(), rs.clone()));
            false
        });
        due
    }

    /// Brings every Pod's readiness forward to `latest` at the latest (the
    /// rollout time was cut short).
    pub(crate) fn hasten(&mut self, latest: Instant) {
        for (_, at) in self.ready_at.values_mut() {
            *at = (*at).min(latest);
        }
    }

    fn starting(&self, namespace: &str, pod: &str, now: Instant) -> bool {
        self.ready_at
            .get(&(namespace.to_owned(), pod.to_owned()))
            .is_some_and(|(_, at)| *at > now)
    }

    fn forget(&mut self, namespace: &str, pod: &str) {
        self.ready_at
            .remove(&(namespace.to_owned(), pod.to_owned()));
    }
}

/// Brings one ReplicaSet's Pods in line with it; nothing when it is gone
/// (deleting it took its Pods). The Pods it makes are ready at once, or,
/// with a `ramp`, become ready one by one over it (the last at its end).
pub(crate) fn reconcile(
    store: &mut Store,
    namespace: &str,
    name: &str,
    unpullable: &[String],
    startup: &mut Startup,
    now: Instant,
    ramp: Option<Duration>,
) {
    let Some(rs) = store.shared(&REPLICA_SET, namespace, name).cloned() else {
        return;
    };
    let mut pods = api::claim(store, &POD, &rs, namespace);
    // One being deleted makes and deletes no Pods (the garbage collector
    // does); it still counts them.
    let desired = if api::is_deleting(&rs) {
        pods.len()
    } else {
        usize::try_from(int_at(&rs, "/spec/replicas")).unwrap_or(0)
    };

    // Too many: the controller deletes the least useful first, not-ready
    // before ready, newest before oldest.
    if pods.len() > desired {
        pods.sort_by_cached_key(|p| {
            (
                state_of(p) == PodState::Ready,
                Reverse((
                    str_at(p, "/metadata/creationTimestamp").to_owned(),
                    int_rv(p),
                )),
            )
        });
        let excess = pods.len() - desired;
        for pod in pods.drain(..excess) {
            let pod_name = str_at(&pod, "/metadata/name");
            startup.forget(namespace, pod_name);
            store.remove(&POD, namespace, pod_name);
            events::normal(
                store,
                &rs,
                "SuccessfulDelete",
                || format!("Deleted pod: {pod_name}"),
                REPLICA_SET_CONTROLLER,
            );
        }
    }

    let template_spec = &rs["spec"]["template"]["spec"];

    let mut states = Vec::with_capacity(desired);
    for pod in &pods {
        let pod_name = str_at(pod, "/metadata/name");
        let want = if !pullable(&pod["spec"], unpullable) {
            PodState::ImagePullBackOff
        } else if startup.starting(namespace, pod_name, now) {
            PodState::NotReady
        } else {
            startup.forget(namespace, pod_name);
            PodState::Ready
        };
        if state_of(pod) != want {
            let mut updated = Value::clone(pod);
            updated["status"] = status(&updated, want);
            store.insert(&POD, updated);
        }
        states.push(want);
    }
    let making = desired.saturating_sub(states.len());
    let ramp = ramp.filter(|r| !r.is_zero());
    for made in 1..=making {
        let ready_at = ramp.map(|r| {
            let share = u32::try_from(made).unwrap_or(u32::MAX);
            let of = u32::try_from(making).unwrap_or(u32::MAX);
            now + r.mul_f64(f64::from(share) / f64::from(of))
        });
        let want = match ready_at {
            _ if !pullable(template_spec, unpullable) => PodState::ImagePullBackOff,
            Some(_) => PodState::NotReady,
            None => PodState::Ready,
        };
        let pod = new_pod(&rs, want);
        let pod_name = str_at(&pod, "/metadata/name").to_owned();
        if let (PodState::NotReady, Some(at)) = (want, ready_at) {
            startup.ready_at.insert(
                (namespace.to_owned(), pod_name.clone()),
                (name.to_owned(), at),
            );
        }
        store.insert(&POD, pod);
        events::normal(
            store,
            &rs,
            "SuccessfulCreate",
            || format!("Created pod: {pod_name}"),
            REPLICA_SET_CONTROLLER,
        );
        states.push(want);
    }

    let ready = states.iter().filter(|s| **s == PodState::Ready).count();
    write_status(store, &rs, states.len(), ready);
}

fn int_rv(pod: &Value) -> u64 {
    str_at(pod, "/metadata/resourceVersion")
        .parse()
        .unwrap_or(0)
}

/// A ReplicaSet's status, from its Pods.
fn write_status(store: &mut Store, rs: &Arc<Value>, replicas: usize, ready: usize) {
    let mut status = json!({
        "replicas": replicas,
        "observedGeneration": rs["metadata"]["generation"],
    });
    for (key, n) in [
        ("fullyLabeledReplicas", replicas),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
    ] {
        if n > 0 {
            status[key] = json!(n);
        }
    }
    if rs["status"] != status {
        let mut updated = Value::clone(rs);
        updated["status"] = status;
        store.insert(&REPLICA_SET, updated);
    }
}

/// A Pod of `rs`, scheduled and started.
fn new_pod(rs: &Value, state: PodState) -> Value {
    let rs_name = str_at(rs, "/metadata/name");
    let template = &rs["spec"]["template"];
    let mut metadata = json!({
        "name": format!("{rs_name}-{}", random_suffix()),
        "generateName": format!("{rs_name}-"),
        "namespace": rs["metadata"]["namespace"],
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": meta::now(),
        "labels": template["metadata"]["labels"],
        "ownerReferences": [{
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs_name,
            "uid": rs["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    if template["metadata"]["annotations"].is_object() {
        metadata["annotations"] = template["metadata"]["annotations"].clone();
    }
    let mut spec = match &template["spec"] {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    admit(&mut spec);
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    });
    pod["status"] = status(&pod, state);
    pod
}

/// A Pod made outside a ReplicaSet (`kubectl run`, a manifest): scheduled
/// and started at once, as a node would, ready whatever its image.
pub(crate) fn start_unowned(pod: &mut Value) {
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        admit(spec);
    }
    pod["status"] = status(pod, PodState::Ready);
}

/// What scheduling and admission add to every Pod's spec.
fn admit(spec: &mut Map<String, Value>) {
    spec.insert("nodeName".to_owned(), json!(NODE));
    for (key, value) in [
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        (
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
            ]),
        ),
    ] {
        spec.entry(key).or_insert(value);
    }
}

/// The status the kubelet would report for a Pod in `state`.
fn status(pod: &Value, state: PodState) -> Value {
    let now = meta::now();
    let started = str_at(pod, "/status/startTime");
    let start_time = if started.is_empty() {
        now.clone()
    } else {
        started.to_owned()
    };
    let spec = &pod["spec"];
    let names: Vec<&str> = containers(spec)
        .iter()
        .map(|c| str_at(c, "/name"))
        .collect();
    let ready = state == PodState::Ready;
    let condition = |kind: &str, ok: bool| {
        let mut c = json!({
            "type": kind,
            "status": if ok { "True" } else { "False" },
            "lastProbeTime": null,
            "lastTransitionTime": now,
        });
        if !ok {
            c["reason"] = json!("ContainersNotReady");
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                names.join(" ")
            ));
        }
        c
    };
    let statuses: Vec<Value> = containers(spec)
        .iter()
        .map(|c| container_status(c, state, &start_time))
        .collect();
    let pod_ip = match str_at(pod, "/status/podIP") {
        "" => pod_ip(str_at(pod, "/metadata/uid")),
        ip => ip.to_owned(),
    };
    json!({
        "phase": if state == PodState::ImagePullBackOff { "Pending" } else { "Running" },
        "conditions": [
            condition("PodReadyToStartContainers", true),
            condition("Initialized", true),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", true),
        ],
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": statuses,
        "qosClass": qos_class(spec),
    })
}

fn container_status(container: &Value, state: PodState, started_at: &str) -> Value {
    let name = str_at(container, "/name");
    let image = str_at(container, "/image");
    if state == PodState::ImagePullBackOff {
        return json!({
            "name": name,
            "state": {"waiting": {
                "reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image {image:?}"),
            }},
            "lastState": {},
            "ready": false,
            "restartCount": 0,
            "image": image,
            "imageID": "",
            "started": false,
        });
    }
    json!({
        "name": name,
        "state": {"running": {"startedAt": started_at}},
        "lastState": {},
        "ready": state == PodState::Ready,
        "restartCount": 0,
        "image": image,
        "imageID": image_id(image),
        "containerID": format!("containerd://{}", uuid::Uuid::new_v4().simple()),
        "started": true,
    })
}

/// A digest reference for an image, the same for every Pod of it.
fn image_id(image: &str) -> String {
    let repository = image.split(['@', ':']).next().unwrap_or(image);
    let digest = hex::encode(Sha1::digest(image.as_bytes()));
    format!("{repository}@sha256:{digest}{}", &digest[..24])
}

/// An address in the cluster's pod network, from the Pod's uid.
fn pod_ip(uid: &str) -> String {
    let bytes = uuid::Uuid::parse_str(uid)
        .map(|u| *u.as_bytes())
        .unwrap_or_default();
    format!("10.244.{}.{}", bytes[0], bytes[1].max(2))
}

/// Guaranteed when every container's cpu and memory limits are set and no
/// request differs from them; BestEffort when nothing is set; else
/// Burstable.
fn qos_class(spec: &Value) -> &'static str {
    let all = containers(spec);
    let amounts = |c: &Value, kind: &str| {
        c["resources"][kind]
            .as_object()
            .map_or(0, serde_json::Map::len)
    };
    if all
        .iter()
        .all(|c| amounts(c, "limits") == 0 && amounts(c, "requests") == 0)
    {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        let limits = &c["resources"]["limits"];
        let requests = &c["resources"]["requests"];
        ["cpu", "memory"]
            .iter()
            .all(|r| limits[r].is_string() && (requests[r].is_null() || requests[r] == limits[r]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::EVENT;

    fn replica_set(replicas: i64, ready: i64, owner: &str) -> Value {
        let owners = if owner.is_empty() {
            json!([])
        } else {
            json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                    "uid": "d1", "controller": true}])
        };
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs1",
                         "generation": 1, "ownerReferences": owners},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}},
            "status": {"readyReplicas": ready},
        })
    }

    fn pods(store: &Store) -> Vec<&Value> {
        store.list(&POD, Some("default"))
    }

    fn reasons(store: &Store) -> Vec<String> {
        store
            .list(&EVENT, Some("default"))
            .iter()
            .map(|e| str_at(e, "/reason").to_owned())
            .collect()
    }

    /// One pass over the ReplicaSet `web-abc`, its new Pods ready at once.
    fn reconcile_at_once(store: &mut Store, unpullable: &[String]) {
        let now = Instant::now();
        reconcile(
            store,
            "default",
            "web-abc",
            unpullable,
            &mut Startup::default(),
            now,
            None,
        );
    }

    #[test]
    fn a_replica_set_gets_its_pods_and_loses_them_when_scaled_down() {
        let mut store = Store::default();
        store.insert(&REPLICA_SET, replica_set(3, 3, "web"));
        reconcile_at_once(&mut store, &[]);
        let made = pods(&store);
        assert_eq!(made.len(), 3);
        let pod = made[0];
        let name = str_at(pod, "/metadata/name");
        assert!(
            name.starts_with("web-abc-") && name.len() == "web-abc-".len() + 5,
            "{name}"
        );
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], "abc");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "rs1");
        assert_eq!(pod["spec"]["nodeName"], NODE);
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);
        assert_eq!(reasons(&store), ["SuccessfulCreate"; 3]);

        store.insert(&REPLICA_SET, replica_set(1, 1, "web"));
        reconcile_at_once(&mut store, &[]);
        assert_eq!(pods(&store).len(), 1);
        assert_eq!(
            reasons(&store)
                .iter()
                .filter(|r| *r == "SuccessfulDelete")
                .count(),
            2
        );
    }

    #[test]
    fn a_deleted_pod_is_replaced_and_a_deployments_replica_set_counts_its_pods() {
        let mut store = Store::default();
        // Scaled by someone else than its Deployment: the status it has
        // counts the Pods it had.
        store.insert(&REPLICA_SET, replica_set(2, 1, "web"));
        reconcile_at_once(&mut store, &[]);
        let states: Vec<PodState> = pods(&store).into_iter().map(state_of).collect();
        assert_eq!(states, [PodState::Ready; 2]);
        let rs = store.get(&REPLICA_SET, "default", "web-abc").expect("kept");
        assert_eq!(
            rs["status"],
            json!({"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2,
                   "availableReplicas": 2, "observedGeneration": 1})
        );
        let gone = str_at(pods(&store)[0], "/metadata/name").to_owned();
        store.remove(&POD, "default", &gone);
        assert_eq!(
            store.take_dirty_sets().into_iter().collect::<Vec<_>>(),
            [("default".to_owned(), "web-abc".to_owned())]
        );
        reconcile_at_once(&mut store, &[]);
        let names: Vec<&str> = pods(&store)
            .into_iter()
            .map(|p| str_at(p, "/metadata/name"))
            .collect();
        assert_eq!(names.len(), 2);
        assert!(!names.contains(&gone.as_str()));
    }

    #[test]
    fn pods_made_over_a_ramp_become_ready_one_by_one_by_its_end() {
        let mut store = Store::default();
        let mut startup = Startup::default();
        let start = Instant::now();
        let ramp = Some(Duration::from_secs(4));
        store.insert(&REPLICA_SET, replica_set(4, 0, "web"));
        reconcile(
            &mut store,
            "default",
            "web-abc",
            &[],
            &mut startup,
            start,
            ramp,
        );
        let ready = |store: &Store| {
            pods(store)
                .into_iter()
                .filter(|p| state_of(p) == PodState::Ready)
                .count()
        };
        assert_eq!((pods(&store).len(), ready(&store)), (4, 0));
        assert_eq!(
            startup.next_due(),
            Some(start + Duration::from_secs(1)),
            "the first a quarter of the way"
        );
        let rs = store.get(&REPLICA_SET, "default", "web-abc").expect("kept");
        assert_eq!(
            (
                rs["status"]["replicas"].clone(),
                rs["status"]["readyReplicas"].clone()
            ),
            (json!(4), Value::Null)
        );
        for (seconds, want) in [(1, 1), (2, 2), (4, 4)] {
            let now = start + Duration::from_secs(seconds);
            for (namespace, name) in startup.take_due(now) {
                reconcile(&mut store, &namespace, &name, &[], &mut startup, now, None);
            }
            assert_eq!(ready(&store), want, "after {seconds}s");
            let rs = store.get(&REPLICA_SET, "default", "web-abc").expect("kept");
            assert_eq!(rs["status"]["readyReplicas"], want);
        }
        assert_eq!(startup.next_due(), None);
    }

    #[test]
    fn pods_of_an_unpullable_image_wait_in_image_pull_back_off() {
        let mut store = Store::default();
        store.insert(&REPLICA_SET, replica_set(1, 0, ""));
        reconcile_at_once(&mut store, &["nginx:1.25".to_owned()]);
        let pod = pods(&store)[0];
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ImagePullBackOff"
        );
        // A ReplicaSet of no Deployment gets its status from its Pods.
        let rs = store.get(&REPLICA_SET, "default", "web-abc").expect("kept");
        assert_eq!(rs["status"]["replicas"], 1);
        assert!(rs["status"]["readyReplicas"].is_null());
        // Once the image can be pulled, the Pod becomes ready.
        reconcile_at_once(&mut store, &[]);
        assert_eq!(state_of(pods(&store)[0]), PodState::Ready);
        let rs = store.get(&REPLICA_SET, "default", "web-abc").expect("kept");
        assert_eq!(rs["status"]["readyReplicas"], 1);
    }
}
