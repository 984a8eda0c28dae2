//! The Kubernetes API sandbox against real clients: the machine's kubectl
//! running the command list, kube-rs round-tripping what the worker
//! does (conflicts, RBAC, faults), the deployment controller keeping its
//! ReplicaSets whoever changes them, and the `kube-sandbox` binary.

mod binary;
mod client;
mod faults;
mod helpers;
mod identity;
mod kubectl;
mod replica_sets;
