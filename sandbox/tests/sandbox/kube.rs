//! The Kubernetes API sandbox against real clients: the machine's kubectl
//! running the command list, kube-rs round-tripping what the worker
//! does (conflicts, RBAC, faults), the deployment controller keeping its
//! ReplicaSets whoever changes them and counting as a cluster's does, the
//! API server's rules for a request's options and URL, deletions that wait
//! for namespace controllers, dependents and finalizers, and the
//! `kube-sandbox` binary.

mod binary;
mod client;
mod deletion;
mod faults;
mod helpers;
mod identity;
mod kubectl;
mod replica_sets;
mod requests;
mod scaling;
