//! The worker: turns commands on the stream into Kubernetes changes.

pub mod config;
pub mod kube_client;
pub mod startup;
