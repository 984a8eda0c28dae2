//! The consumer loop: one durable pull consumer shared by every worker
//! process, a bounded number of commands in flight, explicit acks.
//!
//! Each command is one [`Worker::handle`] step whose outcome picks the ack:
//! done or permanently failed → publish the result, ACK; transient failure →
//! NAK with a delay (retried by whichever worker gets it next); transient
//! failure on the last allowed delivery → publish a failed result, TERM.
//! JetStream delivers without limit, so a delivery past the last allowed
//! try follows one that died with its worker: it is not tried again, but
//! settled from the fences (applied by the one that died, or given up).
//! A template change counts only the deliveries that got past their wait
//! for the changes before it (see [`crate::order`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use chatops_shared::{
    Command, CommandKind, CommandResult, ContractVersion, FieldGroup, Outcome, subjects,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::apply::{Applied, Engine, Rollout};
use crate::error::ApplyError;
use crate::fence::{Check, Position};
use crate::metrics::{ErrorLabels, Metrics, ResultLabels, TRANSIENT};
use crate::order::{self, Earlier};

/// How long a result keeps trying to reach the stream.
const PUBLISH_BUDGET: Duration = Duration::from_secs(60);

/// How often a followed rollout is looked at.
const ROLLOUT_POLL: Duration = Duration::from_millis(500);

/// How long a question (`status`, `history`) waits at most for the changes
/// sent before it on its deployment.
const QUESTION_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Worker {
    pub engine: Engine,
    pub jetstream: jetstream::Context,
    /// The command stream's epoch (see [`crate::fence`]).
    pub epoch: String,
    /// What a template change waits for (see [`crate::order`]).
    pub earlier: Earlier,
    /// One per command in flight at most; a waiting command lends its
    /// own back (see [`crate::order`]).
    pub slots: Arc<Semaphore>,
    pub max_deliver: i64,
    /// How long one delivery keeps retrying transient errors before it is
    /// handed back with a NAK.
    pub retry_budget: Duration,
    pub progress_every: Duration,
    /// Follow rollouts for this long after a change, reporting progress.
    pub follow_rollout: Option<Duration>,
    pub metrics: Arc<Metrics>,
}

/// How one delivery ended, which decides its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A result was published; ACK.
    Done(Outcome),
    /// Try again later; NAK with this delay.
    Retry(Duration),
    /// Out of deliveries: a failed result was published; TERM.
    GaveUp,
    /// Not a command this build can read; TERM.
    Unreadable,
}

/// What a command's wait for the changes before it came to.
#[derive(Debug, Default)]
struct Waited {
    /// The earliest change before a question not made yet when it was
    /// answered.
    behind: Option<u64>,
    /// The deployment as the wait last read it: the apply starts from it.
    read: Option<Deployment>,
}

/// What following one change's rollout needs.
struct Watch<'a> {
    group: FieldGroup,
    position: &'a Position,
    /// How long to follow it at most.
    limit: Duration,
    started: Instant,
    attempts: u32,
}

impl Worker {
    /// Consumes until `shutdown`; in-flight commands finish first, unless
    /// `abort` fires, which hands each back to the queue at once (NAK) for
    /// another worker.
    pub async fn run(
        self: Arc<Self>,
        consumer: PullConsumer,
        shutdown: CancellationToken,
        abort: CancellationToken,
    ) -> Result<(), async_nats::Error> {
        // On shutdown, what was fetched and not started is handed back at
        // once.
        let slots = self.slots.clone();
        chatops_shared::consume::messages(
            self.jetstream.clone(),
            consumer,
            slots,
            shutdown.clone(),
        )
        .for_each_concurrent(None, |(message, slot)| {
            let (this, shutdown, abort) = (self.clone(), shutdown.clone(), abort.clone());
            async move {
                this.handle(message, &shutdown, &abort).await;
                drop(slot);
            }
        })
        .await;
        Ok(())
    }

    async fn handle(
        &self,
        message: jetstream::Message,
        stopping: &CancellationToken,
        abort: &CancellationToken,
    ) {
        self.metrics.in_flight.inc();
        let work = chatops_shared::consume::with_progress(
            &message,
            self.progress_every,
            self.step(&message, stopping),
        );
        let step = tokio::select! {
            step = work => step,
            () = abort.cancelled() => Step::Retry(Duration::ZERO),
        };
        self.metrics.in_flight.dec();
        let ack = match step {
            Step::Done(_) => message.ack().await,
            Step::Retry(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
            Step::GaveUp | Step::Unreadable => message.ack_with(AckKind::Term).await,
        };
        if let Err(e) = ack {
            tracing::warn!(error = %e, ?step, "cannot ack a command; it will be redelivered and found applied");
        }
    }

    /// Applies one delivery and publishes its result; says how to ack.
    pub async fn step(&self, message: &jetstream::Message, stopping: &CancellationToken) -> Step {
        let command: Command = match serde_json::from_slice(&message.payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, subject = %message.subject, "a command this build cannot read");
                return Step::Unreadable;
            }
        };
        let Ok(info) = message.info() else {
            tracing::error!("a command without JetStream metadata");
            return Step::Unreadable;
        };
        let (seq, delivered) = (info.stream_sequence, info.delivered);
        let span = tracing::info_span!("apply", command_id = %command.id, seq, delivered, kind = command.kind.verb().as_str());
        self.apply_and_report(command, seq, delivered, stopping)
            .instrument(span)
            .await
    }

    async fn apply_and_report(
        &self,
        command: Command,
        seq: u64,
        delivered: i64,
        stopping: &CancellationToken,
    ) -> Step {
        let position = Position {
            epoch: self.epoch.clone(),
            seq,
        };
        let started = Instant::now();
        let tried = self.tried(&command, &position, delivered).await;
        // Tries past the last come only after ones that ended without a
        // word: their workers stopped (SIGKILL, a lost node) or lost NATS.
        // Nothing is tried again, so a command that stops every worker
        // taking it cannot go on doing so; what one of them may have made
        // is read from the fences, and said.
        let settling = tried >= self.max_deliver;
        let (applied, tries) = if settling {
            (self.settle(&command, &position, tried).await, tried)
        } else {
            let waited = self.wait_for_earlier(&command, &position, stopping).await;
            // A change a stopping worker hands back was not tried.
            let tries = if waited.is_err() && stopping.is_cancelled() {
                tried
            } else {
                self.count_try(&command, &position, tried + 1).await
            };
            let applied = async {
                let Waited { behind, read } = waited?;
                let applied = self.apply_with_retries(&command, &position, read).await?;
                Ok(match behind {
                    Some(earlier) => self.behind(applied, earlier).await,
                    None => applied,
                })
            };
            (applied.await, tries)
        };
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        let attempts = u32::try_from(delivered).unwrap_or(u32::MAX);
        // Forbidden, invalid: the cluster took nothing of it, unless an
        // earlier try (whose worker stopped) had made the change.
        let refused = tries == 1 && matches!(applied, Err(ApplyError::Permanent(_)));
        let (result, step) = match applied {
            Ok(applied) => {
                // A change found already applied is a redelivery: the worker
                // that made it stopped, maybe while following its rollout,
                // whose outcome is still to tell.
                let applied = match (self.follow_rollout, command.kind.field_group()) {
                    (Some(limit), Some(group))
                        if matches!(
                            applied.outcome,
                            Outcome::Applied | Outcome::AlreadyApplied
                        ) =>
                    {
                        let watch = Watch {
                            group,
                            position: &position,
                            limit,
                            started,
                            attempts,
                        };
                        self.follow(&command, applied, watch).await
                    }
                    _ => applied,
                };
                let outcome = applied.outcome;
                // Judged against fences of the stream made at this worker's
                // epoch: if the stream was made again since (its server
                // lost it), the judgement is void, and the worker stops
                // (its restart takes the new stream's epoch).
                if matches!(outcome, Outcome::AlreadyApplied | Outcome::Superseded)
                    && self.stream_replaced().await
                {
                    tracing::error!(
                        "the commands stream was made again (its server lost it?); the worker stops, to start again on the new one"
                    );
                    stopping.cancel();
                    return Step::Retry(Duration::ZERO);
                }
                (applied, Step::Done(outcome))
            }
            Err(ApplyError::Transient {
                message,
                retry_after,
            }) => {
                if tries >= self.max_deliver && !settling {
                    let failed = ended(
                        Outcome::Failed,
                        format!("gave up after {tries} attempts: {message}"),
                    );
                    (failed, Step::GaveUp)
                } else {
                    let delay = retry_after.unwrap_or_else(|| backoff(delivered));
                    tracing::warn!(error = %message, ?delay, "transient failure; the command goes back to the queue");
                    // Said in the thread (one message, edited at each
                    // try), so an outage is not met with minutes of
                    // silence before the final word: only after a try (not
                    // a stopping worker handing the command back, nor a
                    // reading of what earlier tries did).
                    if tries > tried && !settling && !stopping.is_cancelled() {
                        let trying = ended(
                            Outcome::InProgress,
                            format!(
                                "try {tries} of {} failed: {message}; trying again",
                                self.max_deliver
                            ),
                        );
                        let progress = self.result(&command, trying, attempts, started);
                        if let Err(e) = self.publish(&progress).await {
                            tracing::warn!(error = %e, "cannot say the command is being tried again");
                        }
                    }
                    return Step::Retry(delay);
                }
            }
            Err(ApplyError::Rejected(why)) => {
                (ended(Outcome::Rejected, why), Step::Done(Outcome::Rejected))
            }
            Err(e) => (
                ended(Outcome::Failed, e.to_string()),
                Step::Done(Outcome::Failed),
            ),
        };
        let mut result = self.result(&command, result, attempts, started);
        result.refused = refused;
        // Before the result: a change waiting for this command may go on
        // once it is marked. Unmarked, it is decided once acked (the ack
        // floor passes it) or old enough; its result matters more.
        if let Err(e) = self
            .earlier
            .mark(&command.kind, &position, result.outcome)
            .await
        {
            tracing::warn!(error = %e, "cannot mark the command decided; a change after it may wait longer");
        }
        if let Err(e) = self.publish(&result).await {
            tracing::warn!(error = %e, "cannot publish the result; the command will be redelivered");
            return Step::Retry(backoff(delivered));
        }
        self.metrics
            .results
            .get_or_create(&ResultLabels {
                kind: command.kind.verb().as_str(),
                outcome: result.outcome.label(),
            })
            .inc();
        tracing::info!(outcome = ?result.outcome, reply = %result.message, "command finished");
        step
    }

    /// Whether the commands stream is no longer the one made at this
    /// worker's epoch. Unknown (the server unreachable) is not replaced.
    pub async fn stream_replaced(&self) -> bool {
        match self
            .jetstream
            .get_stream(chatops_shared::streams::COMMANDS_STREAM)
            .await
        {
            Ok(stream) => {
                stream
                    .cached_info()
                    .created
                    .unix_timestamp_nanos()
                    .to_string()
                    != self.epoch
            }
            Err(e) => {
                matches!(
                    e.kind(),
                    async_nats::jetstream::context::GetStreamErrorKind::JetStream(_)
                ) && e.to_string().contains("stream not found")
            }
        }
    }

    fn result(
        &self,
        command: &Command,
        applied: Applied,
        attempts: u32,
        started: Instant,
    ) -> CommandResult {
        CommandResult {
            version: ContractVersion,
            command_id: command.id,
            verb: Some(command.kind.verb()),
            outcome: applied.outcome,
            message: applied.message,
            before: applied.before,
            after: applied.after,
            unchanged: applied.unchanged,
            overtaken: applied.overtaken,
            refused: false,
            attempts,
            duration: started.elapsed(),
            namespace: command.namespace.clone(),
            deployment: command.deployment.clone(),
            actor: command.actor.clone(),
            origin: command.origin.clone(),
            finished_at: jiff::Timestamp::now(),
        }
    }

    /// Follows the rollout a change started, publishing in-progress results
    /// as it moves (the notifier edits one message with them), and returns
    /// the final word: complete, the controller's deadline, or `limit`.
    async fn follow(&self, command: &Command, applied: Applied, watch: Watch<'_>) -> Applied {
        let Watch {
            group,
            position,
            limit,
            started,
            attempts,
        } = watch;
        let Some(name) = command.deployment.as_ref() else {
            return applied;
        };
        let deadline = Instant::now() + limit;
        let mut last = String::new();
        loop {
            let read = self
                .engine
                .rollout(command.namespace.as_str(), name, group, position)
                .await;
            if let Ok((_, Check::Superseded { by })) = &read {
                // Its rollout is now the later command's to tell.
                let later = match self.engine.describe_command(*by).await {
                    Some(later) => format!("#{by}, {later}"),
                    None => format!("#{by}"),
                };
                return Applied {
                    outcome: Outcome::Applied,
                    message: format!(
                        "{}; then a later command ({later}) changed {name} again, before this rollout finished",
                        applied.message
                    ),
                    overtaken: true,
                    ..applied
                };
            }
            // A new image whose rollout ends badly says how to go back (a
            // scale, a restart or a rollback has no revision before it to
            // go back to that would run better).
            let undo = match command.kind {
                CommandKind::SetImage { .. } => format!(
                    "; 'rollback {name} in {}' goes back to the revision before",
                    command.namespace
                ),
                _ => String::new(),
            };
            let (outcome, text) = match read.map(|(rollout, _)| rollout) {
                Ok(Rollout::Complete(text)) => (Outcome::Applied, text),
                Ok(Rollout::Failed(text)) => (Outcome::Failed, text + &undo),
                Ok(Rollout::Progressing(text)) if Instant::now() < deadline => {
                    (Outcome::InProgress, text)
                }
                Ok(Rollout::Progressing(text)) => (
                    Outcome::Failed,
                    format!(
                        "the rollout did not finish within {}s: {text}{undo}",
                        limit.as_secs()
                    ),
                ),
                // The change is made; a read error only ends the watching.
                Err(e) => (Outcome::Applied, format!("cannot follow the rollout: {e}")),
            };
            let message = format!("{}; {text}", applied.message);
            // A redelivered change reports its rollout's end as its own.
            let outcome = match (outcome, applied.outcome) {
                (Outcome::Applied, Outcome::AlreadyApplied) => Outcome::AlreadyApplied,
                (outcome, _) => outcome,
            };
            if outcome != Outcome::InProgress {
                return Applied {
                    outcome,
                    message,
                    ..applied
                };
            }
            if text != last {
                let progress = Applied {
                    outcome,
                    message,
                    ..applied.clone()
                };
                if let Err(e) = self
                    .publish(&self.result(command, progress, attempts, started))
                    .await
                {
                    tracing::warn!(error = %e, "cannot publish rollout progress");
                }
                last = text;
            }
            tokio::time::sleep(ROLLOUT_POLL).await;
        }
    }

    /// Waits until the commands before this one on its deployment that it
    /// must follow are decided (see [`crate::order`]), its slot lent back
    /// meanwhile.
    ///
    /// A template change waits as long as it takes: the delivery is kept
    /// alive (progress acks), so waiting spends none of its deliveries,
    /// and an earlier command is decided within the handling horizon at
    /// the latest. Errors reading what came before end its wait as a
    /// transient failure once they have lasted the retry budget.
    ///
    /// A question (`status`, `history`) waits [`QUESTION_WAIT`] at most,
    /// and is answered then, or on an error, as things are; it gives back
    /// the earliest change not made yet, which its answer mentions. The
    /// deployment as last read comes back too: the apply starts from it
    /// rather than reading it again.
    ///
    /// A stopping worker hands the command back.
    async fn wait_for_earlier(
        &self,
        command: &Command,
        position: &Position,
        stopping: &CancellationToken,
    ) -> Result<Waited, ApplyError> {
        let (Some(name), Some(scope)) =
            (command.deployment.as_ref(), order::Scope::of(&command.kind))
        else {
            return Ok(Waited::default());
        };
        let question = (scope == order::Scope::Changes).then(|| Instant::now() + QUESTION_WAIT);
        let subject = subjects::command(&command.namespace, Some(name));
        let mut failing_since = None;
        let mut pause = Duration::from_millis(50);
        let mut lent = None;
        let waited = loop {
            // Only this round's read is handed on: after a failed one the
            // apply reads (and reports) for itself.
            let (pending, read) = match self.engine.get(command.namespace.as_str(), name).await {
                Ok(deployment) => (
                    self.earlier
                        .undecided(&subject, position, &deployment, scope)
                        .await
                        .map_err(|e| ApplyError::Transient {
                            message: format!("cannot read the commands sent before this one: {e}"),
                            retry_after: None,
                        }),
                    Some(deployment),
                ),
                Err(e @ ApplyError::Transient { .. }) => (Err(e), None),
                // A deployment that is not there, or may not be read, is
                // the apply's to report.
                Err(_) => break Ok(Waited::default()),
            };
            match (pending, question) {
                (Ok(pending), _) if pending.is_empty() => break Ok(Waited { behind: None, read }),
                (Ok(pending), Some(until)) if Instant::now() + pause >= until => {
                    let behind = pending.first().copied();
                    break Ok(Waited { behind, read });
                }
                (Ok(pending), _) => {
                    failing_since = None;
                    tracing::debug!(
                        earlier = ?pending.first(),
                        "waiting for a change sent before this one on {name}"
                    );
                }
                (Err(e), Some(_)) => {
                    tracing::debug!(error = %e, "cannot tell whether the changes before this question are made; answering");
                    break Ok(Waited { behind: None, read });
                }
                (Err(e), None) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() + pause >= self.retry_budget {
                        break Err(e);
                    }
                    tracing::debug!(error = %e, "cannot tell yet whether the changes before this one are done");
                }
            }
            lent.get_or_insert_with(|| order::Lent::new(&self.slots));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopping.cancelled() => {
                    break Err(ApplyError::Transient {
                        message: "the worker is stopping".to_owned(),
                        retry_after: Some(Duration::ZERO),
                    });
                }
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        };
        if let Some(lent) = lent {
            lent.take_back().await;
        }
        waited
    }

    /// `applied` (an answer), with the change before it that was not made
    /// yet when it was answered.
    async fn behind(&self, mut applied: Applied, earlier: u64) -> Applied {
        let which = match self.engine.describe_command(earlier).await {
            Some(said) => format!("#{earlier}, {said}"),
            None => format!("#{earlier}"),
        };
        applied.message = format!("{}; not made yet when asked: {which}", applied.message);
        applied
    }

    /// How many times the command was tried before this delivery: every
    /// earlier delivery, but for a template change only those that got
    /// past their wait for the changes before it (see [`crate::order`]).
    /// If the record cannot be read, every delivery counts, as for the
    /// other commands.
    async fn tried(&self, command: &Command, position: &Position, delivered: i64) -> i64 {
        if delivered == 1 || !order::waits(&command.kind) {
            return delivered - 1;
        }
        self.earlier.tries(position).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read how often this change was tried; counting its deliveries");
            delivered - 1
        })
    }

    /// Records that the command's try number `tries` begins, if it is a
    /// template change (other commands count their deliveries); returns
    /// `tries`. A try not recorded goes uncounted, which only lends a
    /// later delivery one more.
    async fn count_try(&self, command: &Command, position: &Position, tries: i64) -> i64 {
        if order::waits(&command.kind)
            && let Err(e) = self.earlier.count_tries(position, tries).await
        {
            tracing::warn!(error = %e, "cannot record this try of the change");
        }
        tries
    }

    /// What a command given up after `tried` tries without a result comes
    /// to; a transient error leaves it for a later delivery, which tries to
    /// tell again.
    async fn settle(
        &self,
        command: &Command,
        position: &Position,
        tried: i64,
    ) -> Result<Applied, ApplyError> {
        let given_up = format!(
            "given up after {tried} tries: the worker making the last one stopped before finishing it"
        );
        let settled = self
            .with_retries(|| self.engine.settle(command, position))
            .await;
        Ok(match settled {
            Ok(Some(applied)) => applied,
            Ok(None) if command.kind.field_group().is_some() => ended(
                Outcome::Failed,
                format!("{given_up}; it was not applied; send it again if it is still wanted"),
            ),
            Ok(None) => ended(Outcome::Failed, format!("{given_up}; ask again")),
            Err(e @ ApplyError::Transient { .. }) => return Err(e),
            Err(e) => ended(
                Outcome::Failed,
                format!("{given_up}; cannot tell whether it was applied: {e}"),
            ),
        })
    }

    /// Applies the command, from `read` (its deployment as read just
    /// before) on the first try.
    async fn apply_with_retries(
        &self,
        command: &Command,
        position: &Position,
        mut read: Option<Deployment>,
    ) -> Result<Applied, ApplyError> {
        self.with_retries(|| self.engine.apply_from(command, position, read.take()))
            .await
    }

    /// Runs `attempt` until it ends other than with a transient error, or
    /// the retry budget is spent.
    async fn with_retries<T, F>(&self, mut attempt: impl FnMut() -> F) -> Result<T, ApplyError>
    where
        F: Future<Output = Result<T, ApplyError>>,
    {
        let deadline = Instant::now() + self.retry_budget;
        let mut wait = Duration::from_millis(100);
        loop {
            match attempt().await {
                Err(ApplyError::Transient {
                    message,
                    retry_after,
                }) => {
                    let pause = retry_after.unwrap_or_else(|| jitter(wait));
                    if Instant::now() + pause >= deadline {
                        return Err(ApplyError::Transient {
                            message,
                            retry_after,
                        });
                    }
                    self.metrics
                        .retries
                        .get_or_create(&ErrorLabels { error: TRANSIENT })
                        .inc();
                    tracing::debug!(error = %message, ?pause, "retrying");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }

    /// Publishes a result; a final result has one message id per command,
    /// so a redelivered command cannot produce a second final reply.
    async fn publish(&self, result: &CommandResult) -> Result<(), async_nats::Error> {
        let subject = subjects::result(&result.namespace, result.deployment.as_ref());
        let mut headers = HeaderMap::new();
        if result.outcome.is_final() {
            headers.insert(
                subjects::MSG_ID_HEADER,
                format!("{}:final", result.command_id).as_str(),
            );
        }
        headers.insert(
            subjects::COMMAND_ID_HEADER,
            result.command_id.to_string().as_str(),
        );
        let payload = serde_json::to_vec(result)?;
        // A NATS restart or election must not spend the command's deliveries.
        chatops_shared::nats::publish_durably(
            &self.jetstream,
            subject,
            headers,
            payload.into(),
            PUBLISH_BUDGET,
        )
        .await?;
        Ok(())
    }
}

/// A command that ended without a change.
fn ended(outcome: Outcome, message: String) -> Applied {
    Applied {
        outcome,
        message,
        before: None,
        after: None,
        unchanged: false,
        overtaken: false,
    }
}

/// The NAK delay after `delivered` attempts: 1 s, 2 s, 4 s ... up to 60 s.
fn backoff(delivered: i64) -> Duration {
    jitter(chatops_shared::consume::backoff(delivered))
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + fastrand::f64() / 2.0)
}
