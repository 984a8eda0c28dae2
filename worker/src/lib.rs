//! The worker: turns commands on the stream into Kubernetes changes.

pub mod apply;
pub mod config;
pub mod consumer;
pub mod error;
pub mod fence;
pub mod kube_client;
pub mod limiter;
pub mod metrics;
pub mod order;
pub mod startup;
