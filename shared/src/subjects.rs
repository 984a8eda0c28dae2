//! Subject names and message headers.
//!
//! Deployment names may contain dots, which NATS reads as token separators,
//! so a deployment's subject token replaces each `.` with `_`: Kubernetes
//! names never contain `_`, so the mapping is one-to-one.

use crate::names::{DeploymentName, Namespace};

/// Raw, verified Webex webhook envelopes.
pub const EVENTS: &str = "chatops.events.webex";
/// Every command subject: `chatops.commands.<namespace>.<deployment>`.
pub const COMMANDS_ALL: &str = "chatops.commands.>";
/// Every result subject: `chatops.results.<namespace>.<deployment>`.
pub const RESULTS_ALL: &str = "chatops.results.>";

/// The token standing for "the whole namespace" (`list`), never a valid name.
pub const WHOLE_NAMESPACE: &str = "_namespace";

/// JetStream's de-duplication header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// The correlation id every hop logs: the command's UUID v7.
pub const COMMAND_ID_HEADER: &str = "chatops-command-id";
/// On an event queued by catch-up: its webhook never arrived.
pub const CAUGHT_UP_HEADER: &str = "chatops-caught-up";

/// The subject token for a deployment (dots become underscores).
pub fn deployment_token(deployment: &DeploymentName) -> String {
    deployment.as_str().replace('.', "_")
}

fn subject(prefix: &str, namespace: &Namespace, deployment: Option<&DeploymentName>) -> String {
    let token = deployment.map_or_else(|| WHOLE_NAMESPACE.to_owned(), deployment_token);
    format!("{prefix}.{namespace}.{token}")
}

/// Where a command for this target is published.
pub fn command(namespace: &Namespace, deployment: Option<&DeploymentName>) -> String {
    subject("chatops.commands", namespace, deployment)
}

/// Where a result for this target is published.
pub fn result(namespace: &Namespace, deployment: Option<&DeploymentName>) -> String {
    subject("chatops.results", namespace, deployment)
}

/// A filter over command subjects, for replay and history.
pub fn commands_filter(
    namespace: Option<&Namespace>,
    deployment: Option<&DeploymentName>,
) -> String {
    let ns = namespace.map_or("*", Namespace::as_str);
    match deployment {
        Some(d) => format!("chatops.commands.{ns}.{}", deployment_token(d)),
        None if namespace.is_some() => format!("chatops.commands.{ns}.*"),
        None => COMMANDS_ALL.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).expect("valid")
    }
    fn dep(s: &str) -> DeploymentName {
        DeploymentName::parse(s).expect("valid")
    }

    #[test]
    fn subjects_have_four_tokens_whatever_the_name() {
        assert_eq!(
            command(&ns("default"), Some(&dep("web"))),
            "chatops.commands.default.web"
        );
        assert_eq!(
            result(&ns("prod"), Some(&dep("api.v2"))),
            "chatops.results.prod.api_v2"
        );
        assert_eq!(
            command(&ns("prod"), None),
            "chatops.commands.prod._namespace"
        );
        for s in [
            command(&ns("a"), Some(&dep("x.y.z"))),
            result(&ns("a"), None),
        ] {
            assert_eq!(s.split('.').count(), 4, "{s}");
        }
    }

    #[test]
    fn filters_narrow_by_namespace_and_deployment() {
        assert_eq!(commands_filter(None, None), "chatops.commands.>");
        assert_eq!(
            commands_filter(Some(&ns("prod")), None),
            "chatops.commands.prod.*"
        );
        assert_eq!(
            commands_filter(None, Some(&dep("a.b"))),
            "chatops.commands.*.a_b"
        );
    }
}
