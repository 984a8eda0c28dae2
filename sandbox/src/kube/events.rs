//! The Events the simulated controllers record, shaped as client-go's
//! event recorder makes them (core/v1, named `<object>.<hex time>`, the
//! component as both `source` and `reportingComponent`), because `kubectl
//! describe` finds them by `involvedObject` fields and prints their
//! `source.component` as "From".
//!
//! Recorded through the recorder's correlator as a controller's are: the
//! same Event again raises the stored one's `count`, and each component may
//! record at most 25 Events about one object at once, then one per five
//! minutes (client-go's spam filter). Besides being what a cluster shows,
//! this keeps a flood of commands from becoming a flood of Events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::meta::{self, str_at};
use super::resources::EVENT;
use super::store::Store;

/// Who records an Event.
pub(crate) const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
pub(crate) const REPLICA_SET_CONTROLLER: &str = "replicaset-controller";

/// client-go's spam filter: a burst of 25 Events per source and object,
/// then one more each 5 minutes.
const BURST: f64 = 25.0;
const REFILL: Duration = Duration::from_secs(300);
/// How many sources, objects and distinct Events the correlator remembers
/// (client-go keeps as many in its LRU caches).
const REMEMBERED: usize = 4096;

/// The correlator's memory.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Tokens left and when they were counted, by component and object uid.
    buckets: HashMap<(&'static str, String), (f64, Instant)>,
    /// The stored Event of each distinct Event, by what makes it distinct.
    seen: HashMap<String, String>,
}

impl Recorder {
    /// Whether `component` may record one more Event about `uid` now.
    fn allow(&mut self, component: &'static str, uid: &str, now: Instant) -> bool {
        if self.buckets.len() >= REMEMBERED {
            self.buckets.clear();
        }
        let (tokens, at) = self
            .buckets
            .entry((component, uid.to_owned()))
            .or_insert((BURST, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() / REFILL.as_secs_f64();
        *tokens = (*tokens + refilled).min(BURST);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// Records a `Normal` Event about `involved` (a stored object with kind
/// and apiVersion); `message` is only made when the Event is kept.
pub(crate) fn normal(
    store: &mut Store,
    involved: &Value,
    reason: &str,
    message: impl FnOnce() -> String,
    component: &'static str,
) {
    let namespace = str_at(involved, "/metadata/namespace");
    let name = str_at(involved, "/metadata/name");
    let uid = str_at(involved, "/metadata/uid");
    // The API refuses Events in a namespace being deleted, as any create.
    if super::api::is_terminating(store, namespace)
        || !store.recorder.allow(component, uid, Instant::now())
    {
        return;
    }
    let message = message();
    let now = meta::now();
    let key = format!("{component}\0{uid}\0{reason}\0{message}");
    if let Some(existing) = store
        .recorder
        .seen
        .get(&key)
        .and_then(|n| store.shared(&EVENT, namespace, n))
    {
        let mut again = Value::clone(existing);
        again["count"] = json!(again["count"].as_i64().unwrap_or(1) + 1);
        again["lastTimestamp"] = json!(now);
        store.insert(&EVENT, again);
        return;
    }
    // The recorder's name is the object's and the time in nanoseconds; two
    // in the same nanosecond take the next free one.
    let mut nanos = jiff::Timestamp::now().as_nanosecond();
    let mut event_name = format!("{name}.{nanos:x}");
    while store.get(&EVENT, namespace, &event_name).is_some() {
        nanos += 1;
        event_name = format!("{name}.{nanos:x}");
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": &event_name,
            "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
        },
        "involvedObject": {
            "kind": involved["kind"],
            "namespace": namespace,
            "name": name,
            "uid": involved["metadata"]["uid"],
            "apiVersion": involved["apiVersion"],
            "resourceVersion": involved["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": component,
        "reportingInstance": "",
    });
    store.insert(&EVENT, event);
    if store.recorder.seen.len() >= REMEMBERED {
        store.recorder.seen.clear();
    }
    store.recorder.seen.insert(key, event_name);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::EVENT_LIMIT;

    fn deployment(i: usize) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": format!("web-{i}"), "namespace": "default", "uid": format!("u{i}")}})
    }

    #[test]
    fn events_name_their_object_and_only_the_newest_are_kept() {
        let mut store = Store::default();
        for i in 0..EVENT_LIMIT + 5 {
            normal(
                &mut store,
                &deployment(i),
                "ScalingReplicaSet",
                || format!("event {i}"),
                DEPLOYMENT_CONTROLLER,
            );
        }
        let kept = store.list(&EVENT, Some("default"));
        assert_eq!(kept.len(), EVENT_LIMIT);
        let messages: Vec<&str> = kept.iter().map(|e| str_at(e, "/message")).collect();
        assert!(!messages.contains(&"event 4"));
        assert!(messages.contains(&"event 5"));
        assert!(messages.contains(&format!("event {}", EVENT_LIMIT + 4).as_str()));
        let e = store
            .list(&EVENT, Some("default"))
            .into_iter()
            .find(|e| str_at(e, "/message") == "event 7")
            .expect("kept");
        assert_eq!(e["involvedObject"]["uid"], "u7");
        assert_eq!(e["involvedObject"]["kind"], "Deployment");
        assert!(str_at(e, "/metadata/name").starts_with("web-7."));
    }

    #[test]
    fn the_same_event_is_counted_and_a_flood_about_one_object_is_cut_off() {
        let mut store = Store::default();
        let web = deployment(1);
        for _ in 0..3 {
            normal(
                &mut store,
                &web,
                "ScalingReplicaSet",
                || "same".to_owned(),
                DEPLOYMENT_CONTROLLER,
            );
        }
        let kept = store.list(&EVENT, Some("default"));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["count"], 3);
        let mut made = 0;
        for i in 0..100 {
            normal(
                &mut store,
                &web,
                "ScalingReplicaSet",
                || {
                    made += 1;
                    format!("event {i}")
                },
                DEPLOYMENT_CONTROLLER,
            );
        }
        // 25 at once, three of them spent above.
        assert_eq!(made, 22);
        assert_eq!(store.list(&EVENT, Some("default")).len(), 23);
        // Another component, or another object, has its own allowance.
        normal(
            &mut store,
            &web,
            "SuccessfulCreate",
            || "x".to_owned(),
            REPLICA_SET_CONTROLLER,
        );
        normal(
            &mut store,
            &deployment(2),
            "ScalingReplicaSet",
            || "x".to_owned(),
            DEPLOYMENT_CONTROLLER,
        );
        assert_eq!(store.list(&EVENT, Some("default")).len(), 25);
    }
}
