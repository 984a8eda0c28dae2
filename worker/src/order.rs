//! Order for the changes to a deployment's pod template, and for the
//! questions about it.
//!
//! The fences keep stale commands from overwriting newer ones, but they do
//! not make a worker wait, and "later wins" is not "applied in order" for
//! changes that build on what came before: `rollback web` means the
//! revision before the current one; `set image web side=envoy:2` after
//! `set image web app=web:2` means both; a restart after a rollback means
//! the rolled-back template, restarted. Two workers taking such commands at
//! once (two people typing, a backlog after the workers were down) could
//! apply the later first, and the earlier was then superseded or rolled
//! back to the wrong revision. So every command that changes the template
//! or restarts it (`deploy`, `set image`, `restart`, `rollback`) first
//! waits until every earlier one on its deployment is decided: applied or
//! superseded (its fence says so), ended (a mark the worker that ended it
//! records), behind the consumer's ack floor, or stored so long ago that
//! no delivery of it can still be under way. Scales wait for nothing: a
//! count is absolute, the later one is meant, and the replicas have a
//! fence of their own.
//!
//! `status` and `history` wait the same way for every change before them
//! on their deployment, scales too, so that `scale web to 5` then `status
//! web` shows 5 asked for; but only briefly, since a question should not
//! hang behind a change that takes long (see the worker's consumer).
//!
//! While it waits, a command's slot is lent back to the worker: the
//! commands it waits for may be in this very worker's window of fetched
//! messages. Its delivery is kept alive meanwhile, so waiting spends none
//! of its deliveries: behind a command that takes all its deliveries, the
//! changes after it wait, and are then made. Nor does a worker that dies
//! while the change waits spend one of its tries: a template change counts
//! the deliveries that got past their wait in a record of its own, and is
//! given up when those are spent, not when its deliveries are.

use std::time::Duration;

use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use chatops_shared::streams::{Record, WORKERS_CONSUMER};
use chatops_shared::{Command, CommandKind, FieldGroup, Outcome};
use k8s_openapi::api::apps::v1::Deployment;
use tokio::sync::Semaphore;

use crate::fence::{self, Check, Position};

/// What a template change reads to find the commands it must wait for.
#[derive(Debug, Clone)]
pub struct Earlier {
    /// The command stream.
    pub commands: Stream,
    /// Where ended commands are marked, and the tries of template changes
    /// counted (CHATOPS_PROCESSED).
    pub decided: Record,
    /// How long after it was stored a command may still be handled: all
    /// its deliveries, their NAK delays and followed rollouts. Older ones
    /// are decided, marked or not (a build before the marks). A change
    /// waiting longer than that for one before it may find itself
    /// superseded by a later one that did not wait for it: the fences
    /// still keep the later change, and the result says so.
    pub horizon: Duration,
}

/// Whether `kind` changes the pod template or restarts it: such a command
/// waits for the earlier ones, and is waited for.
pub fn waits(kind: &CommandKind) -> bool {
    matches!(
        kind.field_group(),
        Some(FieldGroup::Template | FieldGroup::Restart)
    )
}

/// Which earlier commands on its deployment a command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A template change: the template changes before it.
    Template,
    /// `status` and `history`: every change before them, so that they
    /// show what was asked just before (for a while at most: see the
    /// worker's consumer).
    Changes,
}

impl Scope {
    pub fn of(kind: &CommandKind) -> Option<Self> {
        match kind {
            CommandKind::Status | CommandKind::History => Some(Self::Changes),
            _ if waits(kind) => Some(Self::Template),
            _ => None,
        }
    }

    /// Whether an earlier command of `kind` is one to wait for.
    fn covers(self, kind: &CommandKind) -> bool {
        match self {
            Self::Template => waits(kind),
            Self::Changes => kind.field_group().is_some(),
        }
    }

    /// The fences of the field groups it waits for.
    fn groups(self) -> &'static [FieldGroup] {
        match self {
            Self::Template => &[FieldGroup::Template, FieldGroup::Restart],
            Self::Changes => &[
                FieldGroup::Replicas,
                FieldGroup::Template,
                FieldGroup::Restart,
            ],
        }
    }
}

/// Whether the command's end is to be marked: a template change always;
/// a scale only when it ended without its fence saying so (failed,
/// rejected), since only `status` waits for scales, and marking every one
/// would cost a write each.
fn marked(kind: &CommandKind, outcome: Outcome) -> bool {
    waits(kind)
        || (kind.field_group().is_some()
            && !matches!(
                outcome,
                Outcome::Applied | Outcome::AlreadyApplied | Outcome::Superseded
            ))
}

impl Earlier {
    fn key(position: &Position) -> String {
        format!("decided.{}.{}", position.epoch, position.seq)
    }

    fn tries_key(position: &Position) -> String {
        format!("tried.{}.{}", position.epoch, position.seq)
    }

    /// How many deliveries of the template change at `position` got past
    /// their wait and tried it, as [`Earlier::count_tries`] recorded.
    pub async fn tries(&self, position: &Position) -> Result<i64, async_nats::Error> {
        let recorded = self.decided.get(&Self::tries_key(position)).await?;
        Ok(recorded
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
            .unwrap_or(0))
    }

    /// Records that `tries` deliveries of the template change at
    /// `position` got past their wait: a worker killed while the change
    /// waited did not try it, and the next delivery must not count it.
    pub async fn count_tries(
        &self,
        position: &Position,
        tries: i64,
    ) -> Result<(), async_nats::Error> {
        self.decided
            .put(&Self::tries_key(position), tries.to_string())
            .await
    }

    /// Records that the command at `position` has its final result, if it
    /// is one a later command may wait for and its fence cannot tell.
    pub async fn mark(
        &self,
        kind: &CommandKind,
        position: &Position,
        outcome: Outcome,
    ) -> Result<(), async_nats::Error> {
        if !marked(kind, outcome) {
            return Ok(());
        }
        self.decided.put(&Self::key(position), "").await
    }

    /// The earlier commands on `subject` (before `position`) in `scope`
    /// that are not decided yet, as `deployment` (read just now) and the
    /// marks tell.
    pub async fn undecided(
        &self,
        subject: &str,
        position: &Position,
        deployment: &Deployment,
        scope: Scope,
    ) -> Result<Vec<u64>, async_nats::Error> {
        let now = jiff::Timestamp::now().as_second();
        let horizon = i64::try_from(self.horizon.as_secs()).unwrap_or(i64::MAX);
        let annotations = deployment.metadata.annotations.as_ref();
        let fenced = |group| {
            fence::recorded(annotations, group)
                .and_then(Position::decode)
                .filter(|p| p.epoch == position.epoch)
                .map_or(0, |p| p.seq)
        };
        // Whatever is at or below the ack floor was acked: decided.
        let floor = self
            .commands
            .consumer_info(WORKERS_CONSUMER)
            .await?
            .ack_floor
            .stream_sequence;
        let oldest_fence = scope.groups().iter().map(|g| fenced(*g)).min();
        let mut next = oldest_fence.unwrap_or(0).max(floor) + 1;
        let mut pending = Vec::new();
        while next < position.seq {
            let message = match self
                .commands
                .get_first_raw_message_by_subject(subject, next)
                .await
            {
                Ok(message) => message,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(e.into()),
            };
            if message.sequence >= position.seq {
                break;
            }
            next = message.sequence + 1;
            if now.saturating_sub(message.time.unix_timestamp()) > horizon {
                continue;
            }
            // One this build cannot read is never applied by it either.
            let Ok(command) = serde_json::from_slice::<Command>(&message.payload) else {
                continue;
            };
            let Some(group) = command
                .kind
                .field_group()
                .filter(|_| scope.covers(&command.kind))
            else {
                continue;
            };
            let at = Position {
                epoch: position.epoch.clone(),
                seq: message.sequence,
            };
            let fences = fence::groups(&command.kind, group)
                .iter()
                .map(|g| fence::check(fence::recorded(annotations, *g), &at));
            if fence::combine(fences) != Check::Apply {
                continue;
            }
            if self.decided.get(&Self::key(&at)).await?.is_none() {
                pending.push(message.sequence);
            }
        }
        Ok(pending)
    }
}

/// A waiting command's slot, lent back to the worker until [`Lent::take_back`].
#[derive(Debug)]
pub struct Lent<'a> {
    slots: &'a Semaphore,
    back: bool,
}

impl<'a> Lent<'a> {
    pub fn new(slots: &'a Semaphore) -> Self {
        slots.add_permits(1);
        Self { slots, back: false }
    }

    /// Waits for a free slot and takes it in place of the one lent.
    pub async fn take_back(mut self) {
        if let Ok(permit) = self.slots.acquire().await {
            permit.forget();
        }
        self.back = true;
    }
}

impl Drop for Lent<'_> {
    /// Given up while waiting (the worker stops): a free slot is taken
    /// back if there is one; else the worker runs one more at once until
    /// it stops.
    fn drop(&mut self) {
        if !self.back {
            self.slots.forget_permits(1);
        }
    }
}
