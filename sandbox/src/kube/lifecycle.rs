//! The controllers that finish what a DELETE starts: the garbage
//! collector's foreground deletion (an object with the `foregroundDeletion`
//! finalizer stays until its dependents are gone, each deleted in the
//! foreground in turn when it has dependents of its own) and the namespace
//! controller (a `Terminating` namespace is emptied, then removed). An
//! object held by other finalizers waits for whoever owns them; an update
//! that removes the last one deletes it (see [`super::api`]).
//!
//! Both run at the start of each controller pass, over the store's index of
//! objects being deleted, until nothing more moves: a namespace without
//! finalized content goes within the pass that follows its DELETE.

use std::sync::Arc;

use serde_json::{Value, json};

use super::api::{self, DeleteOptions, FOREGROUND_DELETION};
use super::meta::str_at;
use super::resources::{self, Behaviour, NAMESPACE, POD, REPLICA_SET, ResourceType};
use super::store::Store;

/// Bounds the rounds of one pass (each round deletes a level of
/// dependents; the sandbox's deepest chain is Deployment, ReplicaSet, Pod).
const MAX_ROUNDS: usize = 8;

/// Finishes every deletion that can be finished now.
pub(crate) fn reconcile(store: &mut Store) {
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        for object in store.deleting() {
            let Some(rt) =
                resources::by_kind(str_at(&object, "/apiVersion"), str_at(&object, "/kind"))
            else {
                continue;
            };
            moved |= if rt.behaviour == Behaviour::Namespace {
                empty_namespace(store, &object)
            } else if api::finalizers(&object).contains(&FOREGROUND_DELETION) {
                delete_dependents(store, rt, &object)
            } else {
                false
            };
        }
        if !moved {
            break;
        }
    }
}

/// The kind of the dependents the sandbox's controllers make.
fn dependent_kind(rt: &ResourceType) -> Option<&'static ResourceType> {
    match rt.behaviour {
        Behaviour::Deployment => Some(&REPLICA_SET),
        Behaviour::ReplicaSet => Some(&POD),
        _ => None,
    }
}

/// The garbage collector's foreground deletion of `object`: its dependents
/// deleted (in the foreground when they have dependents themselves), then,
/// with none left, its `foregroundDeletion` finalizer removed, which
/// deletes it when no other finalizer holds it. Returns whether anything
/// changed.
fn delete_dependents(store: &mut Store, rt: &'static ResourceType, object: &Value) -> bool {
    let namespace = str_at(object, "/metadata/namespace");
    let uid = str_at(object, "/metadata/uid");
    let dependents: Vec<(&'static ResourceType, Arc<Value>)> = dependent_kind(rt)
        .map(|kind| {
            store
                .controlled_by(kind, namespace, uid)
                .into_iter()
                .map(|d| (kind, d.clone()))
                .collect()
        })
        .unwrap_or_default();
    if dependents.is_empty() {
        let mut released = object.clone();
        let left: Vec<&str> = api::finalizers(object)
            .into_iter()
            .filter(|f| *f != FOREGROUND_DELETION)
            .collect();
        if left.is_empty() {
            api::remove_now(store, rt, object, false);
        } else {
            released["metadata"]["finalizers"] = json!(left);
            store.insert(rt, released);
        }
        return true;
    }
    let mut moved = false;
    for (kind, dependent) in dependents {
        if api::is_deleting(&dependent) {
            continue;
        }
        let options = DeleteOptions {
            propagation: dependent_kind(kind).map(|_| "Foreground".to_owned()),
            ..DeleteOptions::default()
        };
        let name = str_at(&dependent, "/metadata/name");
        moved |= api::delete(store, kind, namespace, name, &options).is_ok();
    }
    moved
}

/// The namespace controller: everything in a `Terminating` namespace
/// deleted (in the background, as it deletes); once nothing is left (no
/// object held by a finalizer), the namespace itself. Returns whether
/// anything changed.
fn empty_namespace(store: &mut Store, namespace: &Value) -> bool {
    let name = str_at(namespace, "/metadata/name");
    let mut moved = false;
    let mut left = false;
    for rt in resources::TYPES.iter().copied().filter(|t| t.namespaced) {
        let objects: Vec<(String, bool)> = store
            .list(rt, Some(name))
            .into_iter()
            .map(|o| (str_at(o, "/metadata/name").to_owned(), api::is_deleting(o)))
            .collect();
        for (object, deleting) in objects {
            if deleting {
                left = true;
                continue;
            }
            // A Deployment's deletion may have taken this one already.
            if store.get(rt, name, &object).is_none() {
                continue;
            }
            let deleted = api::delete(store, rt, name, &object, &DeleteOptions::default());
            moved |= deleted.is_ok();
            left |= store.get(rt, name, &object).is_some();
        }
    }
    if !left {
        store.remove(&NAMESPACE, "", name);
        moved = true;
    }
    moved
}
