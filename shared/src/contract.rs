//! The messages that cross process boundaries: `Command` (gateway → workers)
//! and `CommandResult` (workers → notifier). Both are JSON with a `version`
//! field; a message of a version this build does not know is refused by name.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::image::ImageRef;
use crate::names::{ContainerName, DeploymentName, Namespace, Replicas};

/// The contract version this build writes and reads.
pub const CONTRACT_VERSION: u32 = 1;

/// The `version` field. Deserialising anything but [`CONTRACT_VERSION`] fails
/// with a message naming both versions, so a mixed-version deployment says
/// what is wrong instead of misreading a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContractVersion;

impl Serialize for ContractVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(CONTRACT_VERSION)
    }
}

impl<'de> Deserialize<'de> for ContractVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ContractVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "message version {CONTRACT_VERSION} (a number)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if v == u64::from(CONTRACT_VERSION) {
                    Ok(ContractVersion)
                } else {
                    Err(E::custom(format!(
                        "unsupported message version {v}: this build reads version {CONTRACT_VERSION}"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map_err(|_| {
                    E::custom(format!("unsupported message version {v}: this build reads version {CONTRACT_VERSION}"))
                }).and_then(|v| self.visit_u64(v))
            }
        }
        d.deserialize_u64(Visitor)
    }
}

/// A command's id: a UUID v7, so ids sort by creation time. It is also the
/// correlation id (`chatops-command-id`) on every hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(Uuid);

impl CommandId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for CommandId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Who asked, as Webex identifies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub email: String,
    pub person_id: String,
}

/// Where the command came from in Webex, so the answer lands in its thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub room_id: String,
    /// The Webex message that carried the command.
    pub message_id: String,
    /// The thread the command was typed in, if it was a reply in a thread:
    /// Webex threads are one level deep, so replies go under its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

impl Origin {
    /// The message every reply to this command is threaded under.
    pub fn reply_parent(&self) -> &str {
        self.thread_id.as_deref().unwrap_or(&self.message_id)
    }
}

/// What to do, with its arguments. `SetImage` covers the seed's
/// `deploy <image> to <deployment>` (no container named) as well as
/// `set image <deployment> [<container>=]<image:tag>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandKind {
    Scale {
        replicas: Replicas,
    },
    SetImage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<ContainerName>,
        image: ImageRef,
    },
    Restart,
    Rollback {
        /// `None`: the revision before the current one, as `kubectl rollout undo`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<u64>,
    },
    Status,
    List {
        /// Name patterns (`*`, `?`) of the deployments the asker may see
        /// (a policy that limits them to some); empty: all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        only: Vec<String>,
    },
    History,
}

impl CommandKind {
    /// The verb as people type it and policies name it.
    pub fn verb(&self) -> Verb {
        match self {
            Self::Scale { .. } => Verb::Scale,
            Self::SetImage { .. } => Verb::Deploy,
            Self::Restart => Verb::Restart,
            Self::Rollback { .. } => Verb::Rollback,
            Self::Status => Verb::Status,
            Self::List { .. } => Verb::List,
            Self::History => Verb::History,
        }
    }

    /// The command as a person would type it, e.g. `scale web to 3 in prod`.
    pub fn describe(&self, deployment: Option<&DeploymentName>, namespace: &Namespace) -> String {
        let d = deployment.map_or("", DeploymentName::as_str);
        let what = match self {
            Self::Scale { replicas } => format!("scale {d} to {replicas}"),
            Self::SetImage {
                container: Some(c),
                image,
            } => format!("set image {d} {c}={image}"),
            Self::SetImage {
                container: None,
                image,
            } => format!("deploy {image} to {d}"),
            Self::Restart => format!("restart {d}"),
            Self::Rollback { revision: None } => format!("rollback {d}"),
            Self::Rollback { revision: Some(r) } => format!("rollback {d} to {r}"),
            Self::Status => format!("status {d}"),
            Self::List { .. } => "list".to_owned(),
            Self::History => format!("history {d}"),
        };
        format!("{what} in {namespace}")
    }

    /// Which fence this command advances, if it changes anything.
    pub fn field_group(&self) -> Option<FieldGroup> {
        match self {
            Self::Scale { .. } => Some(FieldGroup::Replicas),
            Self::SetImage { .. } | Self::Rollback { .. } => Some(FieldGroup::Template),
            Self::Restart => Some(FieldGroup::Restart),
            Self::Status | Self::List { .. } | Self::History => None,
        }
    }
}

/// The verbs of the command language, as a policy grants them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Scale,
    Deploy,
    Restart,
    Rollback,
    Status,
    List,
    History,
}

impl Verb {
    pub const ALL: [Verb; 7] = [
        Verb::Scale,
        Verb::Deploy,
        Verb::Restart,
        Verb::Rollback,
        Verb::Status,
        Verb::List,
        Verb::History,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Scale => "scale",
            Verb::Deploy => "deploy",
            Verb::Restart => "restart",
            Verb::Rollback => "rollback",
            Verb::Status => "status",
            Verb::List => "list",
            Verb::History => "history",
        }
    }

    /// Whether the verb changes the cluster.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Scale | Verb::Deploy | Verb::Restart | Verb::Rollback
        )
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of a Deployment that commands change independently; each has
/// its own fence annotation (DESIGN.md, "Fencing").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldGroup {
    /// `spec.replicas` (scale).
    Replicas,
    /// `spec.template` (image, rollback).
    Template,
    /// The template's restart stamp (restart). A restart changes no field
    /// an image change or another command does, so it neither supersedes
    /// nor is superseded by them: a deploy queued before a restart is still
    /// made when the restart was applied first.
    Restart,
}

/// One command, as the gateway accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub version: ContractVersion,
    pub id: CommandId,
    #[serde(flatten)]
    pub kind: CommandKind,
    pub namespace: Namespace,
    /// Absent only for `list`, which addresses the whole namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentName>,
    /// The deployment-name patterns the sender's policy confines them to
    /// for this command, so that an answer names no other deployment ("did
    /// you mean …?"); absent or empty: any. `list` has its own, `only`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visible: Vec<String>,
    pub actor: Actor,
    pub origin: Origin,
    pub issued_at: Timestamp,
}

impl Command {
    /// The command as a person would type it.
    pub fn describe(&self) -> String {
        self.kind
            .describe(self.deployment.as_ref(), &self.namespace)
    }
}

/// How a command ended (or that it is still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The change was made (or the read-only answer produced).
    Applied,
    /// This very command was applied before (a duplicate or a replay).
    AlreadyApplied,
    /// A later command for the same field has already been applied.
    Superseded,
    /// Refused before any change: the command does not fit the cluster
    /// as it is (a deployment, container or revision that is not there).
    Rejected,
    /// Tried and could not be done; nothing was changed.
    Failed,
    /// Applied, and the rollout is still being followed.
    InProgress,
}

impl Outcome {
    /// Whether this is the last result the command will have.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::InProgress)
    }

    /// The outcome as results and metric labels spell it (`already_applied`).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadyApplied => "already_applied",
            Outcome::Superseded => "superseded",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::InProgress => "in_progress",
        }
    }

    /// The outcome in words, as tables and the audit trail show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadyApplied => "already applied",
            Outcome::Superseded => "superseded",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::InProgress => "in progress",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker reports about one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub version: ContractVersion,
    pub command_id: CommandId,
    /// The command's verb, so a reply can answer a question as an answer
    /// rather than as a change made. Results from before it was added
    /// have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<Verb>,
    pub outcome: Outcome,
    /// A sentence a person understands, e.g. "scaled web from 3 to 5 replicas".
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The change found the deployment already as asked: nothing was
    /// changed (`applied` all the same). Absent, and false, otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
    /// A change whose rollout a later command on the same deployment took
    /// over before it finished: made, but not what the deployment ends
    /// as. Absent, and false, otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overtaken: bool,
    /// A failure the cluster answered before anything changed (forbidden,
    /// invalid): the command never took effect, so a replay leaves it out.
    /// Absent, and false, otherwise (a failure may have taken effect).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Delivery attempts it took, counting the one that produced this result.
    pub attempts: u32,
    #[serde(with = "duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    pub namespace: Namespace,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentName>,
    pub actor: Actor,
    pub origin: Origin,
    pub finished_at: Timestamp,
}

impl CommandResult {
    /// The outcome as the audit trail shows it: `unchanged` for a change
    /// that found the deployment already as asked, else the outcome.
    pub fn shown_outcome(&self) -> &'static str {
        if self.outcome == Outcome::Applied && self.unchanged {
            "unchanged"
        } else {
            self.outcome.as_str()
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(kind: CommandKind, deployment: Option<&str>) -> Command {
        Command {
            version: ContractVersion,
            id: CommandId::new(),
            kind,
            namespace: Namespace::parse("prod").expect("valid"),
            deployment: deployment.map(|d| DeploymentName::parse(d).expect("valid")),
            visible: Vec::new(),
            actor: Actor {
                email: "alice@example.com".into(),
                person_id: "person-1".into(),
            },
            origin: Origin {
                room_id: "room-1".into(),
                message_id: "message-1".into(),
                thread_id: None,
            },
            issued_at: Timestamp::from_second(1_790_000_000).expect("valid"),
        }
    }

    fn every_kind() -> Vec<CommandKind> {
        vec![
            CommandKind::Scale {
                replicas: Replicas::new(5, 10).expect("valid"),
            },
            CommandKind::SetImage {
                container: None,
                image: ImageRef::parse("registry/web:2.1").expect("valid"),
            },
            CommandKind::SetImage {
                container: Some(ContainerName::parse("sidecar").expect("valid")),
                image: ImageRef::parse("[::1]:5000/proxy:1").expect("valid"),
            },
            CommandKind::Restart,
            CommandKind::Rollback { revision: None },
            CommandKind::Rollback { revision: Some(3) },
            CommandKind::Status,
            CommandKind::List { only: Vec::new() },
            CommandKind::History,
        ]
    }

    #[test]
    fn every_command_kind_round_trips_through_json() {
        for kind in every_kind() {
            let deployment = (!matches!(kind, CommandKind::List { .. })).then_some("web");
            let cmd = command(kind, deployment);
            let json = serde_json::to_string(&cmd).expect("serialises");
            let back: Command = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, cmd, "{json}");
            assert!(json.contains("\"version\":1"), "{json}");
        }
    }

    #[test]
    fn the_wire_form_is_flat_and_readable() {
        let cmd = command(
            CommandKind::Scale {
                replicas: Replicas::new(5, 10).expect("valid"),
            },
            Some("web"),
        );
        let v = serde_json::to_value(&cmd).expect("serialises");
        assert_eq!(v["kind"], "scale");
        assert_eq!(v["replicas"], 5);
        assert_eq!(v["deployment"], "web");
        assert_eq!(v["issued_at"], "2026-09-21T14:13:20Z");
        // The id is a UUID v7.
        assert_eq!(cmd.id.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn every_outcome_round_trips_in_a_result() {
        use Outcome::*;
        for outcome in [
            Applied,
            AlreadyApplied,
            Superseded,
            Rejected,
            Failed,
            InProgress,
        ] {
            let result = CommandResult {
                version: ContractVersion,
                command_id: CommandId::new(),
                verb: Some(Verb::Scale),
                outcome,
                message: "scaled web from 3 to 5 replicas".into(),
                before: Some("3".into()),
                after: Some("5".into()),
                unchanged: false,
                overtaken: false,
                refused: false,
                attempts: 2,
                duration: Duration::from_millis(1234),
                namespace: Namespace::default_namespace(),
                deployment: Some(DeploymentName::parse("web").expect("valid")),
                actor: Actor {
                    email: "alice@example.com".into(),
                    person_id: "p".into(),
                },
                origin: Origin {
                    room_id: "r".into(),
                    message_id: "m".into(),
                    thread_id: Some("t".into()),
                },
                finished_at: Timestamp::UNIX_EPOCH,
            };
            let json = serde_json::to_value(&result).expect("serialises");
            assert_eq!(json["duration_ms"], 1234);
            assert_eq!(json["outcome"], outcome.label());
            let back: CommandResult = serde_json::from_value(json.clone()).expect("deserialises");
            assert_eq!(back, result);
            assert_eq!(outcome.is_final(), outcome != InProgress);

            // `unchanged` and `overtaken` are written only when true.
            assert!(json.get("unchanged").is_none(), "{json}");
            assert!(json.get("overtaken").is_none(), "{json}");
            let same = CommandResult {
                unchanged: true,
                overtaken: false,
                ..result.clone()
            };
            assert_eq!(
                serde_json::to_value(&same).expect("serialises")["unchanged"],
                true
            );
            // The trail tells a change that changed nothing from one made.
            assert_eq!(result.shown_outcome(), outcome.as_str());
            let shown = if outcome == Applied {
                "unchanged"
            } else {
                outcome.as_str()
            };
            assert_eq!(same.shown_outcome(), shown);

            // A result published before results carried their verb.
            let mut older = json;
            older
                .as_object_mut()
                .expect("an object")
                .remove("verb")
                .expect("the verb was written");
            let back: CommandResult = serde_json::from_value(older).expect("deserialises");
            assert_eq!(back.verb, None);
        }
    }

    #[test]
    fn unknown_versions_are_refused_by_name() {
        let cmd = command(CommandKind::Restart, Some("web"));
        let mut v = serde_json::to_value(&cmd).expect("serialises");
        for bad in [
            serde_json::json!(2),
            serde_json::json!(0),
            serde_json::json!("1"),
        ] {
            v["version"] = bad.clone();
            let err = serde_json::from_value::<Command>(v.clone()).expect_err("refused");
            let msg = err.to_string();
            assert!(msg.contains("version"), "{bad}: {msg}");
        }
        v["version"] = serde_json::json!(2);
        let msg = serde_json::from_value::<Command>(v.clone())
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("unsupported message version 2"), "{msg}");
        v.as_object_mut().expect("object").remove("version");
        let msg = serde_json::from_value::<Command>(v)
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("missing field `version`"), "{msg}");
    }

    #[test]
    fn invalid_arguments_cannot_be_smuggled_through_json() {
        let cmd = command(CommandKind::Restart, Some("web"));
        let good = serde_json::to_value(&cmd).expect("serialises");
        let tamper = [
            ("deployment", serde_json::json!("../etc")),
            ("namespace", serde_json::json!("Prod")),
            ("kind", serde_json::json!("delete")),
        ];
        for (field, value) in tamper {
            let mut v = good.clone();
            v[field] = value;
            assert!(serde_json::from_value::<Command>(v).is_err(), "{field}");
        }
        let mut v = good;
        v["kind"] = "scale".into();
        v["replicas"] = (-3).into();
        assert!(serde_json::from_value::<Command>(v).is_err());
    }

    #[test]
    fn verbs_and_field_groups() {
        let groups: Vec<_> = every_kind().iter().map(CommandKind::field_group).collect();
        use FieldGroup::*;
        assert_eq!(
            groups,
            [
                Some(Replicas),
                Some(Template),
                Some(Template),
                Some(Restart),
                Some(Template),
                Some(Template),
                None,
                None,
                None
            ]
        );
        for kind in every_kind() {
            assert_eq!(kind.verb().is_write(), kind.field_group().is_some());
        }
    }
}
