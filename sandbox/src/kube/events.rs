//! The Events the simulated controllers record, shaped as client-go's
//! event recorder makes them (core/v1, named `<object>.<hex time>`, the
//! component as both `source` and `reportingComponent`), because `kubectl
//! describe` finds them by `involvedObject` fields and prints their
//! `source.component` as "From".

use serde_json::{Value, json};

use super::meta::{self, str_at};
use super::resources::EVENT;
use super::store::Store;

/// Who records an Event.
pub(crate) const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
pub(crate) const REPLICA_SET_CONTROLLER: &str = "replicaset-controller";

/// Records a `Normal` Event about `involved` (a stored object with kind
/// and apiVersion).
pub(crate) fn normal(
    store: &mut Store,
    involved: &Value,
    reason: &str,
    message: String,
    component: &str,
) {
    let namespace = str_at(involved, "/metadata/namespace");
    let name = str_at(involved, "/metadata/name");
    let now = meta::now();
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
            "name": event_name,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::EVENT_LIMIT;

    #[test]
    fn events_name_their_object_and_only_the_newest_are_kept() {
        let mut store = Store::default();
        let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "default", "uid": "u1"}});
        for i in 0..EVENT_LIMIT + 5 {
            normal(
                &mut store,
                &web,
                "ScalingReplicaSet",
                format!("event {i}"),
                DEPLOYMENT_CONTROLLER,
            );
        }
        let kept = store.list(&EVENT, Some("default"));
        assert_eq!(kept.len(), EVENT_LIMIT);
        let messages: Vec<&str> = kept.iter().map(|e| str_at(e, "/message")).collect();
        assert!(!messages.contains(&"event 4"));
        assert!(messages.contains(&"event 5"));
        assert!(messages.contains(&format!("event {}", EVENT_LIMIT + 4).as_str()));
        let e = kept[0];
        assert_eq!(e["involvedObject"]["uid"], "u1");
        assert_eq!(e["involvedObject"]["kind"], "Deployment");
        assert!(str_at(e, "/metadata/name").starts_with("web."));
    }
}
