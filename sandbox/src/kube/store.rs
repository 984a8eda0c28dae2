//! The object store: every object by type, namespace and name, one
//! cluster-wide `resourceVersion` counter that every write advances, and the
//! event history that watches replay from a resourceVersion before going
//! live. Two indexes keep the controller's work proportional to what
//! changed: objects by the uid of their controller, and the Deployments and
//! ReplicaSets written (or whose ReplicaSets or Pods were) since the
//! controller last looked. Events are kept to the newest [`EVENT_LIMIT`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::resources::ResourceType;

/// How many past events a watch can start from; older ones answer 410.
const HISTORY: usize = 4096;
/// How many live events a slow watcher may lag before it is cut off (its
/// client re-lists, as after a real watch ends).
const LIVE_BUFFER: usize = 1024;

/// How many Events are kept: the oldest goes when one more is recorded, as
/// a cluster lets old Events expire, so that memory stays flat however
/// many commands run.
pub(crate) const EVENT_LIMIT: usize = 1000;

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) revision: u64,
    pub(crate) rt: &'static ResourceType,
    pub(crate) kind: EventType,
    /// The object as stored: watches and the store share it. A deleted
    /// object keeps its last resourceVersion here; see
    /// [`Self::object_as_sent`].
    pub(crate) object: Arc<Value>,
}

impl Event {
    /// The object as a watch sends it: a deleted one with the
    /// resourceVersion of its deletion, as the API server sends it.
    pub(crate) fn object_as_sent(&self) -> std::borrow::Cow<'_, Value> {
        if self.kind != EventType::Deleted {
            return std::borrow::Cow::Borrowed(&self.object);
        }
        let mut object = Value::clone(&self.object);
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        std::borrow::Cow::Owned(object)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: &'static str,
    plural: &'static str,
    namespace: String,
    name: String,
}

impl Key {
    /// The key before every object of a type in a namespace: where a
    /// range over them starts.
    fn first(group: &'static str, plural: &'static str, namespace: &str) -> Self {
        Self {
            group,
            plural,
            namespace: namespace.to_owned(),
            name: String::new(),
        }
    }

    fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.group,
            plural: rt.plural,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// A Deployment, by namespace and name.
pub(crate) type DeploymentKey = (String, String);
/// A ReplicaSet, by namespace and name.
pub(crate) type ReplicaSetKey = (String, String);

/// All objects, behind the sandbox's one lock.
///
/// Stored objects are immutable and shared: a write stores a new object, and
/// a read, a watch event or the controller takes another reference rather
/// than a deep copy of the JSON tree (those copies, and freeing them, were
/// most of this sandbox's CPU at 1,000 commands a second).
#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Arc<Value>>,
    /// Keys of the objects whose controller (an owner reference with
    /// `controller: true`) has this uid.
    controlled: HashMap<String, BTreeSet<Key>>,
    /// Keys of the ReplicaSets and Pods without a controller: what the
    /// controllers may adopt.
    orphans: BTreeSet<Key>,
    /// Keys of the objects deleted but kept for their finalizers (a
    /// `Terminating` namespace among them).
    deleting: BTreeSet<Key>,
    /// Deployments written, or whose ReplicaSets were, since the controller
    /// last took this set.
    dirty: BTreeSet<DeploymentKey>,
    /// ReplicaSets written, or whose Pods were, since the controller last
    /// took this set.
    dirty_sets: BTreeSet<ReplicaSetKey>,
    /// Events by age, oldest first (some may be deleted already).
    events: VecDeque<Key>,
    /// What the controllers' event recorder remembers.
    pub(crate) recorder: super::events::Recorder,
    revision: u64,
    history: VecDeque<Arc<Event>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            controlled: HashMap::new(),
            orphans: BTreeSet::new(),
            deleting: BTreeSet::new(),
            dirty: BTreeSet::new(),
            dirty_sets: BTreeSet::new(),
            events: VecDeque::new(),
            recorder: super::events::Recorder::default(),
            revision: 0,
            history: VecDeque::new(),
            live: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

/// Where a watch starts.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// Events after the requested resourceVersion, oldest first.
    pub(crate) backlog: Vec<Arc<Event>>,
    pub(crate) live: broadcast::Receiver<Arc<Event>>,
}

impl Store {
    /// The current resourceVersion of the whole store.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.shared(rt, namespace, name).map(Arc::as_ref)
    }

    /// A stored object, shared rather than copied.
    pub(crate) fn shared(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<&Arc<Value>> {
        self.objects.get(&Key::new(rt, namespace, name))
    }

    /// Objects of a type, in one namespace or (None) in all, by namespace
    /// then name. Keys sort by type, then namespace, then name, so this is
    /// one range of the map, not a walk over every object.
    pub(crate) fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<&Value> {
        let from = Key::new(rt, namespace.unwrap_or(""), "");
        self.objects
            .range(from..)
            .take_while(|(k, _)| {
                k.group == rt.group
                    && k.plural == rt.plural
                    && namespace.is_none_or(|ns| k.namespace == ns)
            })
            .map(|(_, v)| v.as_ref())
            .collect()
    }

    /// Objects of a type in a namespace whose controller has `owner_uid`
    /// (what [`super::api::owned_by`] finds), by name.
    pub(crate) fn controlled_by(
        &self,
        rt: &ResourceType,
        namespace: &str,
        owner_uid: &str,
    ) -> Vec<&Arc<Value>> {
        self.controlled
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter(|k| k.group == rt.group && k.plural == rt.plural && k.namespace == namespace)
            .filter_map(|k| self.objects.get(k))
            .collect()
    }

    /// ReplicaSets or Pods in a namespace without a controller, which a
    /// controller whose selector matches them adopts, by name.
    pub(crate) fn uncontrolled(&self, rt: &ResourceType, namespace: &str) -> Vec<&Arc<Value>> {
        self.orphans
            .range(Key::first(rt.group, rt.plural, namespace)..)
            .take_while(|k| {
                k.group == rt.group && k.plural == rt.plural && k.namespace == namespace
            })
            .filter_map(|k| self.objects.get(k))
            .collect()
    }

    /// The objects deleted but kept for their finalizers, by type,
    /// namespace and name: what the namespace controller and the garbage
    /// collector finish.
    pub(crate) fn deleting(&self) -> Vec<Arc<Value>> {
        self.deleting
            .iter()
            .filter_map(|k| self.objects.get(k))
            .cloned()
            .collect()
    }

    /// The Deployments changed since the last call (by anyone, the
    /// controller included), and forgets them.
    pub(crate) fn take_dirty(&mut self) -> BTreeSet<DeploymentKey> {
        std::mem::take(&mut self.dirty)
    }

    /// The ReplicaSets changed since the last call, or whose Pods did, and
    /// forgets them.
    pub(crate) fn take_dirty_sets(&mut self) -> BTreeSet<ReplicaSetKey> {
        std::mem::take(&mut self.dirty_sets)
    }

    /// Stores a new object, stamping its resourceVersion.
    pub(crate) fn insert(&mut self, rt: &'static ResourceType, mut object: Value) -> Arc<Value> {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let key = key_of(rt, &object);
        let object = Arc::new(object);
        let old = self.objects.insert(key.clone(), object.clone());
        let kind = match &old {
            Some(old) => {
                self.unindex(&key, old);
                EventType::Modified
            }
            None => EventType::Added,
        };
        self.index(rt, &key, &object);
        self.publish(rt, kind, object.clone());
        if kind == EventType::Added && is_event(rt) {
            self.events.push_back(key);
            while self.events.len() > EVENT_LIMIT {
                if let Some(oldest) = self.events.pop_front() {
                    self.remove(rt, &oldest.namespace, &oldest.name);
                }
            }
        }
        object
    }

    /// Removes an object and returns it as it was stored. The DELETED event
    /// shares it and carries the fresh resourceVersion beside it (see
    /// [`Event::object_as_sent`]): copying the object to stamp it, as most
    /// deletions are of objects the history still holds, was most of the
    /// cost of deleting a Pod.
    pub(crate) fn remove(
        &mut self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        let key = Key::new(rt, namespace, name);
        let object = self.objects.remove(&key)?;
        self.unindex(&key, &object);
        self.mark_dirty(rt, &key, &object);
        self.revision += 1;
        self.publish(rt, EventType::Deleted, object.clone());
        Some(object)
    }

    /// Records a stored object in the indexes.
    fn index(&mut self, rt: &ResourceType, key: &Key, object: &Value) {
        for uid in controller_uids(object) {
            self.controlled
                .entry(uid.to_owned())
                .or_default()
                .insert(key.clone());
        }
        if adoptable(rt) && controller_uids(object).next().is_none() {
            self.orphans.insert(key.clone());
        }
        if !object["metadata"]["deletionTimestamp"].is_null() {
            self.deleting.insert(key.clone());
        }
        self.mark_dirty(rt, key, object);
    }

    fn unindex(&mut self, key: &Key, object: &Value) {
        self.orphans.remove(key);
        self.deleting.remove(key);
        for uid in controller_uids(object) {
            if let Some(keys) = self.controlled.get_mut(uid) {
                keys.remove(key);
                if keys.is_empty() {
                    self.controlled.remove(uid);
                }
            }
        }
    }

    /// A Deployment, a ReplicaSet and its owning Deployments, or a Pod's
    /// owning ReplicaSets, need the controller's attention.
    fn mark_dirty(&mut self, rt: &ResourceType, key: &Key, object: &Value) {
        let owners = |kind: &'static str| {
            object["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(move |r| r["kind"] == kind)
                .filter_map(|r| r["name"].as_str())
        };
        match (rt.group, rt.plural) {
            ("apps", "deployments") => {
                self.dirty.insert((key.namespace.clone(), key.name.clone()));
            }
            ("apps", "replicasets") => {
                for owner in owners("Deployment") {
                    self.dirty.insert((key.namespace.clone(), owner.to_owned()));
                }
                if controller_uids(object).next().is_none() {
                    // An orphan: any Deployment here may adopt it.
                    let names = self.names_in("apps", "deployments", &key.namespace);
                    self.dirty
                        .extend(names.into_iter().map(|n| (key.namespace.clone(), n)));
                }
                self.dirty_sets
                    .insert((key.namespace.clone(), key.name.clone()));
            }
            ("", "pods") => {
                for owner in owners("ReplicaSet") {
                    self.dirty_sets
                        .insert((key.namespace.clone(), owner.to_owned()));
                }
                if controller_uids(object).next().is_none() {
                    // An orphan: any ReplicaSet here may adopt it.
                    let names = self.names_in("apps", "replicasets", &key.namespace);
                    self.dirty_sets
                        .extend(names.into_iter().map(|n| (key.namespace.clone(), n)));
                }
            }
            _ => {}
        }
    }

    /// The names of the objects of one type in a namespace.
    fn names_in(&self, group: &'static str, plural: &'static str, namespace: &str) -> Vec<String> {
        self.objects
            .range(Key::first(group, plural, namespace)..)
            .take_while(|(k, _)| k.group == group && k.plural == plural && k.namespace == namespace)
            .map(|(k, _)| k.name.clone())
            .collect()
    }

    fn publish(&mut self, rt: &'static ResourceType, kind: EventType, object: Arc<Value>) {
        let event = Arc::new(Event {
            revision: self.revision,
            rt,
            kind,
            object,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.live.send(event);
    }

    /// Events after `since` plus the live feed, taken under the same lock so
    /// none falls between the two.
    pub(crate) fn subscribe(&self, since: u64) -> Result<Subscription, ApiError> {
        let oldest_kept = self
            .history
            .front()
            .map_or(self.revision, |e| e.revision - 1);
        if since < oldest_kept {
            return Err(ApiError::expired(since, oldest_kept + 1));
        }
        Ok(Subscription {
            backlog: self
                .history
                .iter()
                .filter(|e| e.revision > since)
                .cloned()
                .collect(),
            live: self.live.subscribe(),
        })
    }
}

/// The kinds a controller adopts when they have none: ReplicaSets (a
/// Deployment's) and Pods (a ReplicaSet's).
fn adoptable(rt: &ResourceType) -> bool {
    matches!(
        (rt.group, rt.plural),
        ("apps", "replicasets") | ("", "pods")
    )
}

fn is_event(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "events"
}

/// The uids of an object's controllers (owner references with
/// `controller: true`; the API allows one, the index does not rely on it).
fn controller_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["controller"] == json!(true))
        .map(|r| r["uid"].as_str().unwrap_or(""))
}

fn key_of(rt: &ResourceType, object: &Value) -> Key {
    Key::new(
        rt,
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::CONFIG_MAP;

    #[test]
    fn every_write_advances_the_revision_and_watches_replay_from_any_kept_point() {
        let mut store = Store::default();
        let a = store.insert(
            &CONFIG_MAP,
            json!({"metadata": {"name": "a", "namespace": "default"}}),
        );
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        store.insert(
            &CONFIG_MAP,
            json!({"metadata": {"name": "a", "namespace": "default"}}),
        );
        store.remove(&CONFIG_MAP, "default", "a");
        assert_eq!(store.revision(), 3);
        let sub = store.subscribe(1).expect("kept");
        let kinds: Vec<_> = sub.backlog.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::Modified, EventType::Deleted]);
    }

    fn replica_set(name: &str, namespace: &str, owners: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": namespace, "ownerReferences": owners}})
    }

    fn owner(uid: &str, name: &str, controller: bool) -> Value {
        json!({"kind": "Deployment", "name": name, "uid": uid, "controller": controller})
    }

    #[test]
    fn the_controller_index_finds_what_a_scan_for_owned_objects_finds() {
        use crate::kube::api::owned_by;
        use crate::kube::resources::REPLICA_SET;
        let mut store = Store::default();
        store.insert(
            &REPLICA_SET,
            replica_set("web-1", "default", json!([owner("u1", "web", true)])),
        );
        store.insert(
            &REPLICA_SET,
            replica_set("web-2", "default", json!([owner("u1", "web", true)])),
        );
        store.insert(
            &REPLICA_SET,
            replica_set("web-3", "other", json!([owner("u1", "web", true)])),
        );
        store.insert(
            &REPLICA_SET,
            replica_set("api-1", "default", json!([owner("u2", "api", false)])),
        );
        // Re-owned, then deleted: the index follows.
        store.insert(
            &REPLICA_SET,
            replica_set("web-2", "default", json!([owner("u2", "api", true)])),
        );
        store.insert(
            &REPLICA_SET,
            replica_set("gone", "default", json!([owner("u1", "web", true)])),
        );
        store.remove(&REPLICA_SET, "default", "gone");
        for (ns, uid) in [
            ("default", "u1"),
            ("default", "u2"),
            ("other", "u1"),
            ("default", "u3"),
        ] {
            let scanned: Vec<&Value> = store
                .list(&REPLICA_SET, Some(ns))
                .into_iter()
                .filter(|rs| owned_by(rs, uid))
                .collect();
            let indexed: Vec<&Value> = store
                .controlled_by(&REPLICA_SET, ns, uid)
                .into_iter()
                .map(Arc::as_ref)
                .collect();
            assert_eq!(indexed, scanned, "{ns} {uid}");
        }
        let names = |v: Vec<&Value>| {
            v.iter()
                .map(|o| o["metadata"]["name"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(
                store
                    .controlled_by(&REPLICA_SET, "default", "u1")
                    .into_iter()
                    .map(Arc::as_ref)
                    .collect()
            ),
            ["web-1"]
        );
        assert_eq!(
            names(store.list(&REPLICA_SET, None)),
            ["api-1", "web-1", "web-2", "web-3"]
        );
        assert_eq!(names(store.list(&CONFIG_MAP, None)), Vec::<Value>::new());
    }

    #[test]
    fn writes_to_deployments_and_their_replica_sets_mark_the_deployment_for_the_controller() {
        use crate::kube::resources::{DEPLOYMENT, REPLICA_SET};
        let mut store = Store::default();
        store.insert(
            &DEPLOYMENT,
            json!({"metadata": {"name": "web", "namespace": "default"}}),
        );
        store.insert(
            &CONFIG_MAP,
            json!({"metadata": {"name": "c", "namespace": "default"}}),
        );
        let key = |n: &str| ("default".to_owned(), n.to_owned());
        assert_eq!(
            store.take_dirty().into_iter().collect::<Vec<_>>(),
            [key("web")]
        );
        assert!(store.take_dirty().is_empty());
        store.insert(
            &REPLICA_SET,
            replica_set("api-1", "default", json!([owner("u2", "api", true)])),
        );
        store.remove(&DEPLOYMENT, "default", "web");
        assert_eq!(
            store.take_dirty().into_iter().collect::<Vec<_>>(),
            [key("api"), key("web")]
        );
    }
}
