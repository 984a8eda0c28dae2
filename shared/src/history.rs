//! The audit trail: commands read back from CHATOPS_COMMANDS (with their
//! stream sequences), joined with their final results from CHATOPS_RESULTS.
//! `chatops history`, `chatops replay` and the in-chat `history` all read
//! the streams through here.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use jiff::Timestamp;

use crate::contract::{Command, CommandId, CommandResult};
use crate::names::{DeploymentName, Namespace};
use crate::streams::{COMMANDS_STREAM, RESULTS_STREAM};
use crate::subjects;

/// Which commands to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub namespace: Option<Namespace>,
    pub deployment: Option<DeploymentName>,
    /// Only this person's commands (email, case-insensitive).
    pub actor: Option<String>,
    /// Only from this stream sequence on.
    pub from_seq: Option<u64>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only changes: no `status`, `list` or `history`.
    pub changes_only: bool,
}

impl Filter {
    fn keeps(&self, command: &Command) -> bool {
        self.actor
            .as_ref()
            .is_none_or(|a| a.eq_ignore_ascii_case(&command.actor.email))
            && self.since.is_none_or(|t| command.issued_at >= t)
            && self.until.is_none_or(|t| command.issued_at <= t)
            && (!self.changes_only || command.kind.verb().is_write())
    }
}

/// A command as stored, at its stream sequence.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: u64,
    pub command: Command,
}

/// A line of the audit trail.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub command: Command,
    /// The final result, if there is one yet.
    pub result: Option<CommandResult>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read {stream}: {source}{}", missing_hint(.source))]
pub struct ReadError {
    stream: &'static str,
    #[source]
    source: async_nats::Error,
}

impl ReadError {
    pub fn new(stream: &'static str, source: async_nats::Error) -> Self {
        Self { stream, source }
    }
}

/// What to do about a stream that is not there.
fn missing_hint(source: &async_nats::Error) -> &'static str {
    if source.to_string().contains("stream not found") {
        " (the streams are made by `chatops setup`, or by a gateway or worker as it starts)"
    } else {
        ""
    }
}

/// How long to wait for the next message of a stream being read to its end.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads every message of `stream` under `filter_subject` from where
/// `deliver_policy` says, up to the last one stored when the read began,
/// as (sequence, payload).
async fn read(
    js: &Context,
    stream: &'static str,
    filter_subject: String,
    deliver_policy: DeliverPolicy,
) -> Result<Vec<(u64, bytes::Bytes)>, ReadError> {
    let err = |source: async_nats::Error| ReadError::new(stream, source);
    let handle = js.get_stream(stream).await.map_err(|e| err(e.into()))?;
    let consumer = handle
        .create_consumer(pull::OrderedConfig {
            filter_subject,
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| err(e.into()))?;
    let mut consumer = consumer;
    let pending = consumer
        .info()
        .await
        .map_err(|e| err(e.into()))?
        .num_pending;
    let mut out = Vec::with_capacity(usize::try_from(pending).unwrap_or(0));
    if pending == 0 {
        return Ok(out);
    }
    let mut messages = consumer.messages().await.map_err(|e| err(e.into()))?;
    loop {
        let next = tokio::time::timeout(READ_TIMEOUT, messages.next())
            .await
            .map_err(|_| err("timed out reading the stream".into()))?;
        let Some(message) = next else { break };
        let message = message.map_err(|e| err(e.into()))?;
        let info = message.info().map_err(|e| err(e.to_string().into()))?;
        let (seq, left) = (info.stream_sequence, info.pending);
        out.push((seq, message.payload.clone()));
        if left == 0 {
            break;
        }
    }
    Ok(out)
}

/// The commands matching `filter`, in stream order. Messages this build
/// cannot read are skipped with a warning.
pub async fn commands(js: &Context, filter: &Filter) -> Result<Vec<Stored>, ReadError> {
    let subject = subjects::commands_filter(filter.namespace.as_ref(), filter.deployment.as_ref());
    let deliver_policy = match filter.from_seq {
        Some(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq.max(1),
        },
        None => DeliverPolicy::All,
    };
    let raw = read(js, COMMANDS_STREAM, subject, deliver_policy).await?;
    Ok(raw
        .into_iter()
        .filter_map(
            |(seq, payload)| match serde_json::from_slice::<Command>(&payload) {
                Ok(command) => Some(Stored { seq, command }),
                Err(e) => {
                    tracing::warn!(seq, error = %e, "skipping a command this build cannot read");
                    None
                }
            },
        )
        .filter(|s| filter.keeps(&s.command))
        .collect())
}

/// The final result of each command that has one.
pub async fn final_results(
    js: &Context,
    filter: &Filter,
) -> Result<HashMap<CommandId, CommandResult>, ReadError> {
    results_since(js, filter, DeliverPolicy::All).await
}

/// The final results stored from `deliver_policy` on.
async fn results_since(
    js: &Context,
    filter: &Filter,
    deliver_policy: DeliverPolicy,
) -> Result<HashMap<CommandId, CommandResult>, ReadError> {
    let subject = subjects::commands_filter(filter.namespace.as_ref(), filter.deployment.as_ref())
        .replacen("chatops.commands", "chatops.results", 1);
    let raw = read(js, RESULTS_STREAM, subject, deliver_policy).await?;
    let mut out = HashMap::new();
    for (_, payload) in raw {
        if let Ok(result) = serde_json::from_slice::<CommandResult>(&payload)
            && result.outcome.is_final()
        {
            out.insert(result.command_id, result);
        }
    }
    Ok(out)
}

/// How far back the trail first looks for its commands, in stream
/// sequences; it looks four times further each time it finds too few.
const TRAIL_WINDOW: u64 = 1024;

/// How much earlier than a command its result may be stamped: the gateway
/// stamps commands, nats-server results, and their clocks may differ.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The last `limit` commands matching `filter`, with their final results.
/// Only the end of the streams is read: the commands from a window of the
/// last sequences (widened until it holds `limit` of them, or the whole
/// stream), and the results stored since the oldest of them was issued.
pub async fn trail(js: &Context, filter: &Filter, limit: usize) -> Result<Vec<Entry>, ReadError> {
    let state = js
        .get_stream(COMMANDS_STREAM)
        .await
        .map_err(|e| ReadError {
            stream: COMMANDS_STREAM,
            source: e.into(),
        })?
        .cached_info()
        .state
        .clone();
    // Nothing before the first message kept, or before the filter's start.
    let first = state.first_sequence.max(filter.from_seq.unwrap_or(1));
    let mut window = TRAIL_WINDOW;
    let commands = loop {
        let start = state.last_sequence.saturating_sub(window).max(first);
        let found = commands(
            js,
            &Filter {
                from_seq: Some(start),
                ..filter.clone()
            },
        )
        .await?;
        if found.len() >= limit || start <= first {
            break found;
        }
        window = window.saturating_mul(4);
    };
    let skip = commands.len().saturating_sub(limit);
    let oldest = commands.get(skip).map(|s| s.command.issued_at);
    let mut results = match oldest {
        Some(issued) => {
            let since = issued.as_nanosecond() - i128::from(CLOCK_SKEW.as_secs()) * 1_000_000_000;
            let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(since)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            results_since(js, filter, DeliverPolicy::ByStartTime { start_time }).await?
        }
        None => HashMap::new(),
    };
    Ok(commands
        .into_iter()
        .skip(skip)
        .map(|s| Entry {
            seq: s.seq,
            result: results.remove(&s.command.id),
            command: s.command,
        })
        .collect())
}
