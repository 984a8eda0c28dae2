//! The object store: every object by type, namespace and name, one
//! cluster-wide `resourceVersion` counter that every write advances, and the
//! event history that watches replay from a resourceVersion before going
//! live.

use std::collections::{BTreeMap, VecDeque};
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
    pub(crate) object: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: &'static str,
    plural: &'static str,
    namespace: String,
    name: String,
}

impl Key {
    fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.group,
            plural: rt.plural,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// All objects, behind the sandbox's one lock.
#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Arc<Event>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
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
        self.objects.get(&Key::new(rt, namespace, name))
    }

    /// Objects of a type, in one namespace or (None) in all, by namespace
    /// then name.
    pub(crate) fn list(&self, rt: &ResourceType, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, v)| v)
            .collect()
    }

    /// Stores a new object, stamping its resourceVersion.
    pub(crate) fn insert(&mut self, rt: &'static ResourceType, mut object: Value) -> Value {
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        let key = key_of(rt, &object);
        let kind = if self.objects.contains_key(&key) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.objects.insert(key, object.clone());
        self.publish(rt, kind, object.clone());
        object
    }

    /// Removes an object; the DELETED event carries a fresh resourceVersion.
    pub(crate) fn remove(
        &mut self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let mut object = self.objects.remove(&Key::new(rt, namespace, name))?;
        self.revision += 1;
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        self.publish(rt, EventType::Deleted, object.clone());
        Some(object)
    }

    fn publish(&mut self, rt: &'static ResourceType, kind: EventType, object: Value) {
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
}
