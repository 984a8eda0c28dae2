//! Ingestion: turns queued webhook events into commands or replies.
//!
//! A durable pull consumer on CHATOPS_EVENTS, shared by every gateway
//! replica. For each event: skip the bot's own messages and message ids
//! already processed, fetch the text, strip the mention, parse, apply the
//! policy; answer in the thread (the acknowledgement of a change, or the
//! refusal; a question is answered by its result alone); then publish the
//! command (`Nats-Msg-Id` = the message id), remember the message id, and
//! only then ack the event.
//!
//! Reading and answering run concurrently; then commands on the same
//! deployment are published one after the other in stream order, so two
//! commands typed one after the other for a deployment reach the command
//! stream in the order Webex delivered them, while commands on different
//! deployments (which no order relates) are published side by side. A
//! change's acknowledgement is always in the thread before its result can
//! be.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use chatops_shared::{Actor, Command, CommandId, ContractVersion, Origin, consume, subjects};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::intake::Envelope;
use crate::language::{self, Defaults, Request};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::reading::{self, Reading, Sender};
use crate::replies;
use crate::unclaimed::Unclaimed;
use crate::webex::{Message, NewMessage, Person, WebexClient, WebexError};

/// How long one event keeps trying to publish its command, and to record
/// its message id, before it is handed back (NATS restarts and leader
/// elections take seconds).
const PUBLISH_BUDGET: Duration = Duration::from_secs(60);

/// The longest pause between two tries of an event through an outage.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(10);

/// Events fetched from Webex at once.
const CONCURRENCY: usize = 32;

/// Events being published, recorded and acked at once.
const PUBLISHING: usize = 64;

/// One lock per command subject (a deployment, or a namespace for `list`),
/// taken in stream order, so commands on one deployment are published one
/// after the other in the order they came, while commands on different
/// deployments are published side by side.
#[derive(Debug, Default)]
struct Lanes(std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>);

impl Lanes {
    fn of(&mut self, subject: String) -> Arc<tokio::sync::Mutex<()>> {
        self.0.entry(subject).or_default().clone()
    }

    /// Drops the locks nobody holds or waits for, once there are many.
    fn forget_idle(&mut self) {
        if self.0.len() > 1024 {
            self.0.retain(|_, lane| Arc::strong_count(lane) > 1);
        }
    }
}

/// Who the bot is, as people mention it.
#[derive(Debug, Clone)]
pub struct Bot {
    pub id: String,
    pub emails: Vec<String>,
    pub mention_name: String,
}

impl Bot {
    pub fn from_person(person: &Person, name_override: Option<&str>) -> Self {
        Self {
            id: person.id.clone(),
            emails: person.emails.iter().map(|e| e.to_lowercase()).collect(),
            mention_name: name_override.map_or_else(|| person.mention_name(), str::to_owned),
        }
    }

    /// Whether the bot wrote a message (by its sender's id or email).
    pub fn wrote(&self, person_id: Option<&str>, email: Option<&str>) -> bool {
        person_id == Some(self.id.as_str())
            || email.is_some_and(|e| self.emails.contains(&e.to_lowercase()))
    }
}

/// Everything ingestion needs, shared by its tasks.
#[derive(Debug)]
pub struct Ingestion {
    pub jetstream: jetstream::Context,
    pub webex: WebexClient,
    pub policy: Arc<Policy>,
    pub defaults: Defaults,
    pub bot: Bot,
    pub processed: chatops_shared::streams::Record,
    pub max_message_age: Duration,
    /// Tries of one event; see [`Ingestion::given_up`].
    pub max_deliver: i64,
    pub progress_every: Duration,
    pub metrics: Arc<Metrics>,
    /// Tells a sender whose command no worker takes (unless off).
    pub unclaimed: Option<Arc<Unclaimed>>,
}

/// What one event comes to.
#[derive(Debug)]
pub enum Decision {
    /// Acknowledge this command in the thread, then publish it: a change
    /// is acknowledged, a question is not (its answer follows at once).
    Publish {
        command: Box<Command>,
        ack: Option<NewMessage>,
    },
    /// No command: answer in the thread (help, usage, refusal).
    Reply {
        reply: NewMessage,
        outcome: &'static str,
    },
    /// Nothing to do (the bot's own message, already processed, unreadable).
    Skip(&'static str),
}

/// An event that could not be handled now, but may be later.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Transient {
    what: &'static str,
    #[source]
    source: async_nats::Error,
    retry_after: Option<Duration>,
}

impl Transient {
    fn new(what: &'static str, source: impl Into<async_nats::Error>) -> Self {
        Self {
            what,
            source: source.into(),
            retry_after: None,
        }
    }

    fn webex(what: &'static str, e: WebexError) -> Self {
        let retry_after = e.retry_after();
        Self {
            what,
            source: e.into(),
            retry_after,
        }
    }
}

/// The KV key for a Webex message id (ids may hold characters keys may not).
pub fn processed_key(message_id: &str) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(message_id.as_bytes()))
}

impl Ingestion {
    /// Consumes events until `shutdown`, then finishes what is in flight.
    pub async fn run(
        self: Arc<Self>,
        consumer: PullConsumer,
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::Error> {
        let this = self.clone();
        // A message holds its slot until its decision leaves the ordered
        // buffer below; on shutdown, what was fetched and not started is
        // handed back at once.
        let fetching = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        // By stream sequence: a NATS restart while an event waits out an
        // outage here loses its progress acks, and the copy JetStream
        // delivers again, to this gateway too, could post its receipt a
        // second time.
        let handling = consume::InHand::<u64>::default();
        let decided = consume::messages(
            self.jetstream.clone(),
            consumer,
            fetching,
            shutdown.clone(),
        )
        .map(move |(message, fetched)| {
            let (this, stopping) = (this.clone(), shutdown.clone());
            let handling = handling.clone();
            async move {
                let seq = message.info().map_or(0, |i| i.stream_sequence);
                let Some(held) = handling.hold(seq) else {
                    tracing::info!(
                        "an event in hand was delivered again; leaving it to the first delivery"
                    );
                    this.metrics.event("in_hand");
                    return (message, None, fetched);
                };
                // From here until it is acked or handed back, the event may
                // wait on the ones before it, for as long as a publish
                // waits out a NATS outage: redelivered meanwhile, another
                // gateway would answer it a second time.
                let kept = consume::keep_alive(&message, this.progress_every);
                let decision = this.decide(&message, &stopping).await;
                (message, Some((decision, kept, held)), fetched)
            }
        })
        .buffered(CONCURRENCY);
        tokio::pin!(decided);
        let mut lanes = Lanes::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(PUBLISHING));
        let mut publishing = tokio::task::JoinSet::new();
        while let Some((message, handled, fetched)) = decided.next().await {
            drop(fetched);
            let Some((decision, kept, held)) = handled else {
                continue;
            };
            // Taken here, in stream order: a command waits for the one
            // before it on the same deployment to be stored.
            let turn = match &decision {
                Ok(Decision::Publish { command, .. }) => Some(
                    lanes
                        .of(subjects::command(
                            &command.namespace,
                            command.deployment.as_ref(),
                        ))
                        .lock_owned()
                        .await,
                ),
                _ => None,
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let this = self.clone();
            publishing.spawn(async move {
                let published = this.publish(&message, decision).await;
                drop(turn);
                match published {
                    Ok(message_id) => this.finish(&message, message_id).await,
                    Err(e) => nak(&message, &e).await,
                }
                drop((kept, held, slot));
            });
            while publishing.try_join_next().is_some() {}
            lanes.forget_idle();
        }
        while publishing.join_next().await.is_some() {}
        Ok(())
    }

    /// Remembers the event's message id as processed (when it has one),
    /// then acknowledges the event. An id that cannot be recorded hands the
    /// event back rather than acking it: unrecorded, a later catch-up would
    /// take the message for a missed one. Handled again, its command is a
    /// duplicate in the commands stream's window, and its id recorded.
    async fn finish(&self, message: &jetstream::Message, message_id: Option<String>) {
        if let Some(id) = message_id {
            let key = processed_key(&id);
            // Through a NATS restart: handed back, the event would be
            // answered a second time.
            let recorded = chatops_shared::nats::retrying(PUBLISH_BUDGET, "processed ids", || {
                self.processed.put(&key, "1")
            })
            .await;
            if let Err(e) = recorded {
                let e = Transient::new("recording the processed message id", e);
                return nak(message, &e).await;
            }
        }
        ack(message).await;
    }

    /// Whether to give an event up before its `tries`-th try: it has had
    /// its `max_deliver` tries and came longer ago than the message age
    /// limit. Events are tried without limit otherwise, so that an outage
    /// of Webex (the fetch, the receipt) only delays the commands that
    /// came meanwhile; an event tried so long is what the catch-up
    /// answers (a change is not made so late), and one that stops every
    /// gateway taking it cannot go on doing so.
    fn given_up(&self, message: &jetstream::Message, tries: i64) -> bool {
        let Ok(info) = message.info() else {
            return false;
        };
        let age = jiff::Timestamp::now().as_second() - info.published.unix_timestamp();
        let given_up = tries > self.max_deliver
            && age > i64::try_from(self.max_message_age.as_secs()).unwrap_or(i64::MAX);
        if given_up {
            tracing::warn!(
                tries,
                age_seconds = age,
                "event given up after its tries; the catch-up will answer its message"
            );
        }
        given_up
    }

    /// Whether ingestion has handled this Webex message.
    pub async fn is_processed(&self, message_id: &str) -> Result<bool, async_nats::Error> {
        Ok(self
            .processed
            .get(&processed_key(message_id))
            .await?
            .is_some())
    }

    /// Stage one (concurrent): read, parse, authorise. The caller keeps
    /// `message` from its ack wait (see `run`) through this stage and the
    /// next.
    ///
    /// Through an outage of Webex or NATS the event is tried again here,
    /// with growing pauses, not handed back: the events after it on its
    /// deployment wait for it in the ordered stage after this one, as they
    /// must, since a change handed back would be published after them and
    /// an older change would win. It is given up past its tries and the
    /// message age (see [`Ingestion::given_up`]), and handed back when the
    /// gateway stops.
    pub async fn decide(
        &self,
        message: &jetstream::Message,
        stopping: &CancellationToken,
    ) -> Result<Decision, Transient> {
        let mut tries = consume::delivered(message);
        let mut pause = Duration::from_secs(1);
        loop {
            if self.given_up(message, tries) {
                return Ok(Decision::Skip("given_up"));
            }
            let e = match self.decide_once(message).await {
                Err(e) => e,
                decided => return decided,
            };
            let wait = e.retry_after.unwrap_or(pause).min(RETRY_PAUSE_MAX);
            tracing::warn!(error = %e, ?wait, "event will be tried again");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopping.cancelled() => return Err(e),
            }
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
            tries += 1;
        }
    }

    async fn decide_once(&self, message: &jetstream::Message) -> Result<Decision, Transient> {
        let envelope: Envelope<'_> = match serde_json::from_slice(&message.payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "an event that is not an envelope reached the stream");
                return Ok(Decision::Skip("malformed"));
            }
        };
        let command_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(subjects::COMMAND_ID_HEADER))
            .and_then(|v| v.as_str().parse::<CommandId>().ok())
            .unwrap_or_default();
        let span =
            tracing::info_span!("ingest", command_id = %command_id, message_id = %envelope.data.id);
        self.decide_event(&envelope, command_id, message)
            .instrument(span)
            .await
    }

    async fn decide_event(
        &self,
        envelope: &Envelope<'_>,
        command_id: CommandId,
        message: &jetstream::Message,
    ) -> Result<Decision, Transient> {
        if self.bot.wrote(
            envelope.data.person_id.as_deref(),
            envelope.data.person_email.as_deref(),
        ) {
            return Ok(Decision::Skip("own_message"));
        }
        if self
            .is_processed(&envelope.data.id)
            .await
            .map_err(|e| Transient::new("reading processed ids", e))?
        {
            tracing::info!("message already processed; nothing to do");
            return Ok(Decision::Skip("duplicate"));
        }
        let text = match self.webex.message(&envelope.data.id).await {
            Ok(text) => text,
            Err(e) if e.is_transient() => return Err(Transient::webex("fetching the message", e)),
            Err(e) => {
                tracing::warn!(error = %e, "the message cannot be read; skipping it");
                return Ok(Decision::Skip("unreadable"));
            }
        };
        if self
            .bot
            .wrote(text.person_id.as_deref(), text.person_email.as_deref())
        {
            return Ok(Decision::Skip("own_message"));
        }
        let received = message.info().ok().map(|i| i.published.unix_timestamp());
        let caught_up = message
            .headers
            .as_ref()
            .is_some_and(|h| h.get(subjects::CAUGHT_UP_HEADER).is_some());
        let decision = match self.decide_message(&text, command_id, received) {
            Decision::Publish {
                ack: Some(_),
                command,
            } if caught_up => self.missed_change(&text, &command),
            decision => decision,
        };
        self.answer(&decision).await?;
        Ok(decision)
    }

    /// A change whose webhook never arrived, found by catch-up: not made,
    /// since the sender may have changed the deployment another way since
    /// and a late change would undo that.
    fn missed_change(&self, message: &Message, command: &Command) -> Decision {
        let late = message
            .created
            .map(|at| jiff::Timestamp::now().as_second() - at.as_second())
            .map(|late| replies::humanize(Duration::from_secs(late.unsigned_abs())))
            .unwrap_or_else(|| "a while".to_owned());
        tracing::warn!(command_id = %command.id, "a change whose webhook never arrived; not making it");
        let why = format!(
            "this message reached me {late} after it was written (Webex never delivered it), so I did not make the change: the deployment may have changed since; please send it again"
        );
        Decision::Reply {
            reply: message.reply(replies::not_processed(&command.actor.email, &why)),
            outcome: "missed",
        }
    }

    /// `received`: when intake stored the event (Unix seconds).
    pub fn decide_message(
        &self,
        message: &Message,
        id: CommandId,
        received: Option<i64>,
    ) -> Decision {
        let email = message.person_email.clone().unwrap_or_default();
        let text = message.text.as_deref().unwrap_or_default();
        let sender = Sender {
            email: &email,
            room_id: &message.room_id,
        };
        // The mention as the sender's client wrote it ("Kube Bot"), else
        // the bot's configured or first name.
        let label = message.mention_label(&self.bot.id);
        let (stripped, leading) = label
            .as_deref()
            .map(|label| language::strip_mentions(text, label))
            .filter(|(_, leading)| *leading > 0)
            .unwrap_or_else(|| language::strip_mentions(text, &self.bot.mention_name));
        // Mentioned other than at the start: at the end ("scale web to 3
        // @kube", "@kube scale web to 3 @kube"). Only a mention stands
        // there: "@kube status kube" asks about the deployment kube.
        let text = match &label {
            Some(label) if message.mentions(&self.bot.id) > leading => {
                language::strip_trailing_mention(stripped, label)
            }
            _ => stripped.into(),
        };
        let (markdown, outcome) =
            match reading::read(&text, sender, Some(&self.policy), &self.defaults) {
                Reading::Command(request) => return self.command(message, request, id, received),
                Reading::Help(markdown) => (markdown, "help"),
                Reading::Refused { markdown, outcome } => (markdown, outcome),
            };
        Decision::Reply {
            reply: message.reply(markdown),
            outcome,
        }
    }

    /// What a command read from `message` comes to: published, or refused
    /// for its age.
    fn command(
        &self,
        message: &Message,
        request: Request,
        id: CommandId,
        received: Option<i64>,
    ) -> Decision {
        let email = message.person_email.clone().unwrap_or_default();
        // A command is not run from a message that reached the bot long
        // after it was written (a captured webhook re-sent, a long outage):
        // it could undo newer changes. What is not a command is answered
        // as ever: a refusal, or what is wrong with it.
        if let (Some(created), Some(received)) = (message.created, received) {
            let age = received - created.as_second();
            if age > self.max_message_age.as_secs() as i64 {
                tracing::warn!(
                    age_seconds = age,
                    "message delivered long after it was written; not acting on it"
                );
                let why = format!(
                    "this message reached me {} after it was written, so I did not act on it; please send it again",
                    replies::humanize(Duration::from_secs(age.unsigned_abs()))
                );
                return Decision::Reply {
                    reply: message.reply(replies::not_processed(&email, &why)),
                    outcome: "too_old",
                };
            }
        }
        let ack = request
            .kind
            .verb()
            .is_write()
            .then(|| message.reply(replies::queued(&email, &request, &id)));
        let command = Command {
            version: ContractVersion,
            id,
            kind: request.kind,
            namespace: request.namespace,
            deployment: request.deployment,
            visible: request.visible,
            actor: Actor {
                email,
                person_id: message.person_id.clone().unwrap_or_default(),
            },
            origin: Origin {
                room_id: message.room_id.clone(),
                message_id: message.id.clone(),
                thread_id: message.parent_id.clone(),
            },
            issued_at: message.created.unwrap_or_else(jiff::Timestamp::now),
        };
        Decision::Publish {
            command: Box::new(command),
            ack,
        }
    }

    /// Posts the decision's answer in the thread (still in the concurrent
    /// stage): the acknowledgement of a change, or the refusal.
    async fn answer(&self, decision: &Decision) -> Result<(), Transient> {
        let (reply, outcome) = match decision {
            Decision::Publish { ack: Some(ack), .. } => (ack, "acknowledged"),
            Decision::Reply { reply, outcome } => (reply, *outcome),
            Decision::Publish { ack: None, .. } | Decision::Skip(_) => return Ok(()),
        };
        match self.webex.post_message(reply).await {
            Ok(_) => {
                self.metrics.reply("posted");
                Ok(())
            }
            Err(e) if e.is_transient() => {
                self.metrics.reply("retried");
                Err(Transient::webex("posting the reply", e))
            }
            Err(e) => {
                // The room refuses the bot (removed from it, say): retrying
                // cannot help, and a command stands without its receipt.
                self.metrics.reply("failed");
                tracing::warn!(error = %e, %outcome, "cannot reply in the room");
                Ok(())
            }
        }
    }

    /// Stage two (in order per deployment): publish the command, if any;
    /// the message id to record as processed.
    async fn publish(
        &self,
        message: &jetstream::Message,
        decision: Result<Decision, Transient>,
    ) -> Result<Option<String>, Transient> {
        let message_id = match decision? {
            Decision::Skip(why) => {
                self.metrics.event(why);
                return Ok(None);
            }
            Decision::Reply { outcome, .. } => {
                self.metrics.event(outcome);
                envelope_message_id(message)
            }
            Decision::Publish { command, .. } => {
                let subject = subjects::command(&command.namespace, command.deployment.as_ref());
                let mut headers = HeaderMap::new();
                headers.insert(subjects::MSG_ID_HEADER, command.origin.message_id.as_str());
                headers.insert(subjects::COMMAND_ID_HEADER, command.id.to_string().as_str());
                let payload = serde_json::to_vec(&command)
                    .map_err(|e| Transient::new("encoding the command", e))?;
                // Held (the event kept from its ack wait by `run`) through
                // a NATS restart or an election, so the event does not
                // spend its deliveries.
                let stored = chatops_shared::nats::publish_durably(
                    &self.jetstream,
                    subject,
                    headers,
                    payload.into(),
                    PUBLISH_BUDGET,
                )
                .await
                .map_err(|e| Transient::new("publishing the command", e))?;
                tracing::info!(
                    command_id = %command.id,
                    seq = stored.sequence,
                    duplicate = stored.duplicate,
                    actor = %command.actor.email,
                    "command published"
                );
                if !stored.duplicate {
                    self.metrics.command_published();
                    if let Some(unclaimed) = &self.unclaimed {
                        unclaimed.watch(&command, stored.sequence);
                    }
                }
                self.metrics.event("command");
                command.origin.message_id.clone()
            }
        };
        Ok(Some(message_id))
    }
}

/// The Webex message id of an event.
fn envelope_message_id(message: &jetstream::Message) -> String {
    serde_json::from_slice::<Envelope>(&message.payload)
        .map(|e| e.data.id.into_owned())
        .unwrap_or_default()
}

async fn ack(message: &jetstream::Message) {
    if let Err(e) = message.ack().await {
        tracing::warn!(error = %e, "cannot ack an event; it will be redelivered and found processed");
    }
}

async fn nak(message: &jetstream::Message, e: &Transient) {
    // What Webex asked for, else longer with each delivery.
    let delay = e
        .retry_after
        .unwrap_or_else(|| consume::backoff(consume::delivered(message)))
        .min(Duration::from_secs(60));
    tracing::warn!(error = %e, ?delay, "event will be retried");
    if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(error = %e, "cannot nak an event; it will be redelivered after the ack wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of an event delivered while one is in hand is refused, and
    /// taken once the first is let go; other events are not held up.
    #[test]
    fn an_event_is_in_hand_once() {
        // By stream sequence: a NATS restart while an event waits out an
        // outage here loses its progress acks, and the copy JetStream
        // delivers again, to this gateway too, could post its receipt a
        // second time.
        let handling = consume::InHand::<u64>::default();
        let first = handling.hold(7).expect("taken");
        assert!(handling.hold(7).is_none(), "the copy is left to the first");
        let other = handling.hold(8).expect("another event");
        drop(first);
        assert!(handling.hold(7).is_some(), "taken again once let go");
        drop(other);
    }

    #[test]
    fn delays_read_as_words() {
        let said = |s: u64| replies::humanize(Duration::from_secs(s));
        assert_eq!(said(0), "less than a second");
        assert_eq!(said(1), "1 second");
        assert_eq!(said(59), "59 seconds");
        assert_eq!(said(180), "3 minutes");
        assert_eq!(said(7200), "2 hours");
    }

    /// The publishing loop's mechanism: turns taken in stream order keep
    /// each subject in order, while other subjects go ahead.
    #[tokio::test]
    async fn lanes_keep_each_subject_in_order_and_let_the_others_through() {
        let mut lanes = Lanes::default();
        let done = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let count: u64 = 30;
        for i in 0..count {
            let subject = format!("commands.default.web-{}", i % 3);
            let turn = lanes.of(subject.clone()).lock_owned().await;
            let done = done.clone();
            // Later events take less time: without the turns, they would
            // be done first.
            let work = Duration::from_millis(3 * (count - i));
            tasks.spawn(async move {
                tokio::time::sleep(work).await;
                done.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((subject, i));
                drop(turn);
            });
        }
        while tasks.join_next().await.is_some() {}
        let done = done.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(done.len(), 30);
        for subject in [
            "commands.default.web-0",
            "commands.default.web-1",
            "commands.default.web-2",
        ] {
            let order: Vec<u64> = done
                .iter()
                .filter(|(s, _)| s == subject)
                .map(|(_, i)| *i)
                .collect();
            assert!(order.is_sorted(), "{subject} out of order: {order:?}");
        }
        // The subjects overlapped: events of different subjects finished
        // between each other, not one subject after the other.
        let first_of_each: Vec<&str> = done.iter().take(3).map(|(s, _)| s.as_str()).collect();
        assert!(
            first_of_each
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1,
            "subjects were serialised: {done:?}"
        );
    }

    #[test]
    fn idle_lanes_are_forgotten_once_there_are_many() {
        let mut lanes = Lanes::default();
        let held = lanes.of("commands.default.kept".to_owned());
        for i in 0..2000 {
            drop(lanes.of(format!("commands.default.d{i}")));
        }
        lanes.forget_idle();
        assert_eq!(lanes.0.len(), 1, "only the lane still referenced stays");
        assert!(Arc::ptr_eq(
            &held,
            &lanes.of("commands.default.kept".to_owned())
        ));
    }
}
