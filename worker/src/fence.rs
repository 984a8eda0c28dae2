//! Fences: the stream sequence of the last command applied to each field
//! group, recorded as annotations on the Deployment itself.
//!
//! A command is applied only if its sequence is newer than the recorded one
//! for its group; so a duplicate is a no-op, a stale command can never
//! overwrite a newer one, and a replay onto a cluster without annotations
//! re-applies in order. The value names the stream's epoch (its creation
//! time), because a sequence means something only within one stream's life.

use chatops_shared::FieldGroup;

/// The project's annotation prefix.
pub const PREFIX: &str = "chatops.dev";

/// The annotation holding a field group's fence.
pub fn annotation(group: FieldGroup) -> &'static str {
    match group {
        FieldGroup::Replicas => "chatops.dev/replicas-fence",
        FieldGroup::Template => "chatops.dev/template-fence",
        FieldGroup::Restart => "chatops.dev/restart-fence",
    }
}

/// The fence recorded for `group` among a Deployment's annotations.
/// Restarts were fenced with the template before they had a fence of
/// their own: until a restart records one, the template's stands for it,
/// so a restart applied then is not applied again.
pub fn recorded(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
    group: FieldGroup,
) -> Option<&str> {
    let annotations = annotations?;
    annotations
        .get(annotation(group))
        .or_else(|| match group {
            FieldGroup::Restart => annotations.get(annotation(FieldGroup::Template)),
            FieldGroup::Replicas | FieldGroup::Template => None,
        })
        .map(String::as_str)
}

/// Where a command sits in the command stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Identifies the stream's life: its creation time.
    pub epoch: String,
    pub seq: u64,
}

impl Position {
    /// `<epoch>/<seq>`, the annotation value.
    pub fn encode(&self) -> String {
        format!("{}/{}", self.epoch, self.seq)
    }

    pub fn decode(value: &str) -> Option<Self> {
        let (epoch, seq) = value.rsplit_once('/')?;
        Some(Self {
            epoch: epoch.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
}

/// What the recorded fence says about a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Newer than anything applied (or nothing from this stream was): apply it.
    Apply,
    /// This very command was applied before.
    AlreadyApplied,
    /// A later command for the same field was applied.
    Superseded { by: u64 },
}

/// Decides from the recorded annotation value (if any).
pub fn check(recorded: Option<&str>, command: &Position) -> Check {
    let Some(recorded) = recorded.and_then(Position::decode) else {
        return Check::Apply;
    };
    // A fence from another stream's life says nothing about this one.
    if recorded.epoch != command.epoch {
        return Check::Apply;
    }
    match recorded.seq.cmp(&command.seq) {
        std::cmp::Ordering::Less => Check::Apply,
        std::cmp::Ordering::Equal => Check::AlreadyApplied,
        std::cmp::Ordering::Greater => Check::Superseded { by: recorded.seq },
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The fences a command of `kind` (in `group`) checks and records: its
/// group's, and for a rollback the restart fence too, since it replaces the
/// whole template, the restart stamp with it.
pub fn groups(kind: &chatops_shared::CommandKind, group: FieldGroup) -> &'static [FieldGroup] {
    match (kind, group) {
        (chatops_shared::CommandKind::Rollback { .. }, _) => {
            &[FieldGroup::Template, FieldGroup::Restart]
        }
        (_, FieldGroup::Replicas) => &[FieldGroup::Replicas],
        (_, FieldGroup::Template) => &[FieldGroup::Template],
        (_, FieldGroup::Restart) => &[FieldGroup::Restart],
    }
}

/// What several fences say together: applied if one says this very
/// command was; else superseded by the latest later one; else apply.
pub fn combine(checks: impl IntoIterator<Item = Check>) -> Check {
    checks
        .into_iter()
        .fold(Check::Apply, |so_far, check| match (so_far, check) {
            (Check::AlreadyApplied, _) | (_, Check::AlreadyApplied) => Check::AlreadyApplied,
            (Check::Superseded { by: a }, Check::Superseded { by: b }) => {
                Check::Superseded { by: a.max(b) }
            }
            (Check::Superseded { by }, Check::Apply) | (Check::Apply, Check::Superseded { by }) => {
                Check::Superseded { by }
            }
            (Check::Apply, Check::Apply) => Check::Apply,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64) -> Position {
        Position {
            epoch: "2026-11-26T01:00:00Z".into(),
            seq,
        }
    }

    #[test]
    fn fences_order_commands_within_one_stream() {
        assert_eq!(check(None, &at(5)), Check::Apply);
        assert_eq!(check(Some(&at(4).encode()), &at(5)), Check::Apply);
        assert_eq!(check(Some(&at(5).encode()), &at(5)), Check::AlreadyApplied);
        assert_eq!(
            check(Some(&at(7).encode()), &at(5)),
            Check::Superseded { by: 7 }
        );
    }

    #[test]
    fn a_fence_from_another_stream_or_unreadable_does_not_block() {
        let old = Position {
            epoch: "2020-01-01T00:00:00Z".into(),
            seq: 900,
        };
        assert_eq!(check(Some(&old.encode()), &at(5)), Check::Apply);
        assert_eq!(check(Some("garbage"), &at(5)), Check::Apply);
        assert_eq!(Position::decode(&at(12).encode()), Some(at(12)));
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        assert_eq!(
            pointer_escape("chatops.dev/replicas-fence"),
            "chatops.dev~1replicas-fence"
        );
        assert_eq!(pointer_escape("a~b"), "a~0b");
    }
}
