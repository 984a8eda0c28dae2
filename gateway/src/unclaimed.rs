//! Commands no worker has taken: when one has waited [`NOTE_AFTER`]
//! without being delivered to a worker (none runs, or all are far behind),
//! its sender gets one note in the thread instead of silence. The command
//! stays queued and runs when a worker takes it.
//!
//! Taken means delivered: the workers' consumer has handed out the
//! command's stream sequence. A command a worker holds while it waits for
//! an earlier one on its deployment, or while it tries again, is taken.
//! The watch is the publishing gateway's own, in memory: a gateway that
//! stops before a note is due posts none. While it watches any command, it
//! asks the consumer once a second what was handed out, and lets go of
//! those: under load it holds about a second of commands, not the while.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use chatops_shared::Command;
use chatops_shared::streams::{COMMANDS_STREAM, WORKERS_CONSUMER};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::replies;
use crate::webex::{NewMessage, WebexClient};

/// How long a command may wait for a worker before its sender is told.
pub const NOTE_AFTER: Duration = Duration::from_secs(15);

/// How often the watch looks at what is due.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The commands published by this gateway whose notes are not due yet,
/// oldest first.
#[derive(Debug)]
pub struct Unclaimed {
    after: Duration,
    waiting: Mutex<VecDeque<Waiting>>,
}

#[derive(Debug)]
struct Waiting {
    seq: u64,
    due: Instant,
    note: NewMessage,
}

impl Unclaimed {
    pub fn new(after: Duration) -> Self {
        Self {
            after,
            waiting: Mutex::new(VecDeque::new()),
        }
    }

    /// Watches `command`, stored at stream sequence `seq`.
    pub fn watch(&self, command: &Command, seq: u64) {
        let note = NewMessage {
            room_id: command.origin.room_id.clone(),
            parent_id: Some(command.origin.reply_parent().to_owned()),
            markdown: replies::unclaimed(command, self.after),
        };
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken under the lock, so that the queue stays in order of `due`.
        let due = Instant::now() + self.after;
        waiting.push_back(Waiting { seq, due, note });
    }

    /// Whether any command is watched.
    fn any(&self) -> bool {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        !waiting.is_empty()
    }

    /// Forgets the commands due at `now`, without notes: how many.
    fn forget_due(&self, now: Instant) -> usize {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let before = waiting.len();
        while waiting.front().is_some_and(|w| w.due <= now) {
            waiting.pop_front();
        }
        before - waiting.len()
    }

    /// Forgets the commands the workers were handed (up to `delivered`,
    /// the last sequence handed out), so that only those still waiting are
    /// held; the notes due at `now` for those.
    fn due(&self, now: Instant, delivered: u64) -> Vec<NewMessage> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|w| w.seq > delivered);
        let mut notes = Vec::new();
        while let Some(front) = waiting.front()
            && front.due <= now
        {
            let Some(front) = waiting.pop_front() else {
                break;
            };
            notes.push(front.note);
        }
        notes
    }

    /// Posts the notes as they fall due, until `stop`.
    pub async fn run(
        self: Arc<Self>,
        jetstream: jetstream::Context,
        webex: WebexClient,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(LOOK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if !self.any() {
                continue;
            }
            // One look at the consumer a second while commands are watched,
            // however many: those taken are let go at once.
            let delivered = match delivered(&jetstream).await {
                Ok(delivered) => delivered,
                Err(e) => {
                    // Held no longer than their while: what cannot be
                    // told taken or not is let go without a note.
                    let dropped = self.forget_due(Instant::now());
                    if dropped > 0 {
                        tracing::warn!(error = %e, dropped, "cannot ask which commands the workers took; no note for these");
                    }
                    continue;
                }
            };
            for note in self.due(Instant::now(), delivered) {
                metrics.command_unclaimed();
                tracing::warn!(
                    after = ?self.after,
                    room_id = %note.room_id,
                    "no worker has taken a command; telling its sender"
                );
                // A note, not an answer: one that cannot be posted is not
                // tried again, and the command's reply comes as ever.
                if let Err(e) = webex.post_message(&note).await {
                    tracing::warn!(error = %e, "cannot post the note that no worker took a command");
                }
            }
        }
    }
}

/// The last stream sequence the workers' consumer has handed out.
/// (One request: the consumer's info, without the stream's.)
async fn delivered(jetstream: &jetstream::Context) -> Result<u64, async_nats::Error> {
    let consumer: jetstream::consumer::PullConsumer = jetstream
        .get_consumer_from_stream(WORKERS_CONSUMER, COMMANDS_STREAM)
        .await?;
    Ok(consumer.cached_info().delivered.stream_sequence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatops_shared::contract::{Actor, CommandId, CommandKind, ContractVersion, Origin};
    use chatops_shared::{DeploymentName, Namespace};

    fn command(id: &str) -> Command {
        Command {
            version: ContractVersion,
            id: CommandId::new(),
            kind: CommandKind::Status,
            namespace: Namespace::default_namespace(),
            deployment: Some(DeploymentName::parse("web").expect("a name")),
            visible: Vec::new(),
            actor: Actor {
                email: "alice@example.com".into(),
                person_id: "alice".into(),
            },
            origin: Origin {
                room_id: "room".into(),
                message_id: id.into(),
                thread_id: None,
            },
            issued_at: jiff::Timestamp::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_commands_beyond_the_delivered_sequence_get_a_note_once() {
        let unclaimed = Unclaimed::new(NOTE_AFTER);
        unclaimed.watch(&command("m1"), 1);
        unclaimed.watch(&command("m2"), 2);
        tokio::time::advance(NOTE_AFTER / 2).await;
        unclaimed.watch(&command("m3"), 3);
        unclaimed.watch(&command("m4"), 4);
        // Not due yet; the first was taken, and is let go at once.
        assert!(unclaimed.due(Instant::now(), 1).is_empty());
        assert_eq!(unclaimed.waiting.lock().expect("lock").len(), 3);

        tokio::time::advance(NOTE_AFTER / 2).await;
        // The workers were handed sequence 1: the second waits untaken.
        let notes = unclaimed.due(Instant::now(), 1);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].parent_id.as_deref(), Some("m2"));
        assert!(
            notes[0].markdown.contains("status web"),
            "{}",
            notes[0].markdown
        );
        // Its note is given once.
        assert!(unclaimed.due(Instant::now(), 1).is_empty());

        // The third is taken before it is due; the fourth is not.
        tokio::time::advance(NOTE_AFTER).await;
        let notes = unclaimed.due(Instant::now(), 3);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].parent_id.as_deref(), Some("m4"));
        assert!(!unclaimed.any());

        // Where the consumer cannot be asked, what is due is let go.
        unclaimed.watch(&command("m5"), 5);
        tokio::time::advance(NOTE_AFTER).await;
        assert_eq!(unclaimed.forget_due(Instant::now()), 1);
        assert!(!unclaimed.any());
    }
}
