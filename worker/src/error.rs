//! Errors of the apply engine, by what the worker should do about them:
//! tell the person their command does not fit the cluster (rejected), retry
//! later (transient), give up at once (permanent), or re-read and decide
//! again (conflict). Rejected and permanent messages are written for the
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
    /// The command does not fit the cluster as it is: it names a
    /// deployment, container or revision that is not there, or leaves a
    /// choice open (which container). Nothing was changed; it is the
    /// person's to correct, not a fault.
    #[error("{0}")]
    Rejected(String),
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

/// The refusal for an object the cluster does not have, e.g. "deployment
/// web not found in namespace prod".
pub(crate) fn missing(singular: &str, name: &str, namespace: &str) -> String {
    format!("{singular} {name} not found in namespace {namespace}")
}

impl ApplyError {
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
                // Kubernetes says which object it did not find; a 404
                // without that (a wrong URL, a proxy) is no slip of the
                // person's.
                404 if status.reason == "NotFound" => Self::Rejected(match name {
                    Some(name) => missing(singular, name, namespace),
                    None => format!("namespace {namespace} not found"),
                }),
                404 => Self::Permanent(format!(
                    "the Kubernetes API has no {resource} at the address the bot uses (404: {}); is the cluster address right?",
                    status.message
                )),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(code: u16, reason: &str, message: &str) -> ApplyError {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        ApplyError::from_kube(
            kube::Error::Api(status.boxed()),
            Doing {
                verb: "get",
                resource: "deployments",
                name: Some("web"),
                namespace: "prod",
            },
        )
    }

    #[test]
    fn only_a_404_that_names_what_was_not_found_is_the_persons_slip() {
        let e = answered(404, "NotFound", r#"deployments.apps "web" not found"#);
        assert!(
            matches!(&e, ApplyError::Rejected(m) if m == "deployment web not found in namespace prod"),
            "{e:?}"
        );
        // What kube makes of a proxy's or a wrong path's plain-text 404.
        let e = answered(404, "Failed to parse error data", "404 page not found");
        assert!(
            matches!(&e, ApplyError::Permanent(m) if m.contains("404 page not found") && m.contains("cluster address")),
            "{e:?}"
        );
        let e = answered(403, "Forbidden", "no");
        assert!(matches!(e, ApplyError::Permanent(_)), "{e:?}");
    }
}
