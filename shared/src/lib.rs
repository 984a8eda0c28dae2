//! The contract every chatops process agrees on: the messages on the
//! streams, their subjects, the stream and consumer set-up, the validated
//! names commands are made of, and the configuration read at start-up.

pub mod config;
pub mod consume;
pub mod contract;
pub mod history;
pub mod image;
pub mod names;
pub mod nats;
pub mod secret;
pub mod shutdown;
pub mod streams;
pub mod subjects;
pub mod telemetry;
pub mod text;

pub use contract::{
    Actor, CONTRACT_VERSION, Command, CommandId, CommandKind, CommandResult, ContractVersion,
    FieldGroup, Origin, Outcome, Verb,
};
pub use image::{ImageError, ImageRef};
pub use names::{ContainerName, DeploymentName, NameError, Namespace, Replicas, ReplicasError};
pub use text::quote;
