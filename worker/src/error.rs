//! Errors of the apply engine, by what the worker should do about them:
//! tell the person their command does not fit the cluster (refused), retry
//! later (transient), give up at once (permanent), or re-read and decide
//! again (conflict). Refused and permanent messages are written for the
//! person who typed the command.

use std::time::Duration;

/// What was being done, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Doing<'a> {
    /// The Kubernetes verb: get, list, patch.
    pub verb: &'static str,
    /// The resource: deployments, replicasets.
    pub resource: &'static str,
    pub name: Option<&'a str>,
    pub namespace: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The command asks for what the cluster does not have: a deployment,
    /// namespace, container or revision. Nothing was changed; it is the
    /// person's to correct, not a fault.
    #[error("{0}")]
    Refused(String),
    /// Will not succeed by retrying: forbidden, invalid.
    #[error("{0}")]
    Permanent(String),
    /// May succeed later: rate limits, server errors, the network.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The object changed between read and write.
    #[error("the deployment changed while the command was being applied")]
    Conflict,
}

impl ApplyError {
    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::Permanent(_) => "permanent",
            Self::Transient { .. } => "transient",
            Self::Conflict => "conflict",
        }
    }

    pub fn from_kube(error: kube::Error, doing: Doing<'_>) -> Self {
        let Doing {
            verb,
            resource,
            name,
            namespace,
        } = doing;
        let singular = resource.trim_end_matches('s');
        match error {
            kube::Error::Api(status) => match status.code {
                404 => Self::Refused(match name {
                    Some(name) => format!("{singular} {name} not found in namespace {namespace}"),
                    None => format!("namespace {namespace} not found"),
                }),
                403 => Self::Permanent(format!(
                    "the bot may not {verb} {resource} in namespace {namespace}"
                )),
                409 => Self::Conflict,
                422 | 400 => {
                    Self::Permanent(format!("Kubernetes refused the change: {}", status.message))
                }
                429 => Self::Transient {
                    message: "the Kubernetes API is rate limiting the bot".to_owned(),
                    retry_after: status
                        .details
                        .as_ref()
                        .map(|d| Duration::from_secs(u64::from(d.retry_after_seconds)))
                        .filter(|d| !d.is_zero()),
                },
                code => Self::Transient {
                    message: format!("the Kubernetes API answered {code}: {}", status.message),
                    retry_after: None,
                },
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Self::Transient {
                message: "cannot reach the Kubernetes API".to_owned(),
                retry_after: None,
            },
            other => Self::Transient {
                message: format!("unexpected answer from the Kubernetes API: {other}"),
                retry_after: None,
            },
        }
    }
}
