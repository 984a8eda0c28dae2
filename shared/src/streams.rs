//! The JetStream topology: three streams and their durable consumers,
//! created idempotently by whichever process starts first.
//!
//! An existing stream or consumer is compared with what this configuration
//! asks for; any difference is reported as [`SetupError::Drift`] rather than
//! silently reused or destroyed, because both would hide a mistake: a
//! command stream that keeps 7 days instead of 90 loses audit history.

use std::fmt;
use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::{
    ConsumerInfoErrorKind, CreateStreamErrorKind, GetStreamErrorKind,
};
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};

use crate::subjects;

pub const EVENTS_STREAM: &str = "CHATOPS_EVENTS";
pub const COMMANDS_STREAM: &str = "CHATOPS_COMMANDS";
pub const RESULTS_STREAM: &str = "CHATOPS_RESULTS";

/// The gateway replicas' shared consumer of raw webhook events.
pub const INGESTION_CONSUMER: &str = "ingestion";
/// The workers' shared consumer of commands.
pub const WORKERS_CONSUMER: &str = "workers";
/// The gateway replicas' shared consumer of results.
pub const NOTIFIER_CONSUMER: &str = "notifier";

/// Retention and delivery settings, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub events_max_age: Duration,
    /// The audit and replay log: keep it long.
    pub commands_max_age: Duration,
    pub results_max_age: Duration,
    /// Per stream; `-1` for no limit.
    pub max_bytes: i64,
    /// Stream replicas in a NATS cluster (1, 3 or 5).
    pub replicas: usize,
    /// JetStream's `Nats-Msg-Id` de-duplication window.
    pub duplicate_window: Duration,
    /// How long a consumer waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Tries of one command or event before it is given up (counted by
    /// the processes: the consumers deliver without limit).
    pub max_deliver: i64,
    /// Unacknowledged messages a consumer allows across all its clients.
    pub max_ack_pending: i64,
    /// How long processed message ids and posted replies are remembered, so
    /// a webhook re-sent after JetStream's duplicate window changes nothing.
    pub processed_max_age: Duration,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            events_max_age: 7 * DAY,
            commands_max_age: 90 * DAY,
            results_max_age: 30 * DAY,
            max_bytes: 1 << 30,
            replicas: 1,
            duplicate_window: Duration::from_secs(2 * 60),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_ack_pending: 1000,
            processed_max_age: 7 * DAY,
        }
    }
}

/// Message ids the gateway has turned into a command or a reply.
pub const PROCESSED_BUCKET: &str = "CHATOPS_PROCESSED";
/// Replies the notifier has posted, by command id.
pub const REPLIES_BUCKET: &str = "CHATOPS_REPLIES";

/// What [`ensure`] did to one stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    /// It existed with the same settings.
    Unchanged,
    /// It existed as an earlier build set it up, and was brought up to
    /// date in a setting no configuration chooses (see [`upgrade`]).
    Upgraded,
}

/// One setting that differs between the server and the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub field: &'static str,
    pub existing: String,
    pub configured: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}", describe(.drifted))]
    Drift { drifted: Vec<Drifted> },
    #[error("could not set up {what}: {source}{}", no_jetstream_hint(.source))]
    Nats {
        what: String,
        #[source]
        source: async_nats::Error,
    },
}

/// What to do about a server that answers no JetStream request (async-nats
/// says "no responders" as "requested JetStream resource does not exist").
fn no_jetstream_hint(source: &async_nats::Error) -> &'static str {
    if source
        .to_string()
        .contains("requested JetStream resource does not exist")
    {
        " (is JetStream on? start nats-server with -js, or jetstream {} in its configuration)"
    } else {
        ""
    }
}

/// A stream or consumer whose settings differ from the configuration's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drifted {
    /// `stream CHATOPS_COMMANDS`, `consumer workers on CHATOPS_COMMANDS`.
    pub what: String,
    pub differences: Vec<Difference>,
}

/// Every drifted stream and consumer, in one line.
fn describe(drifted: &[Drifted]) -> String {
    let each: Vec<String> = drifted
        .iter()
        .map(|d| {
            format!(
                "{} already exists with different settings: {}",
                d.what,
                list(&d.differences)
            )
        })
        .collect();
    let them = match drifted {
        [one] if one.what.starts_with("stream") => "the stream",
        [_] => "the consumer",
        _ => "them",
    };
    format!(
        "{}; change the configuration to match, or update {them} deliberately (nothing that existed was changed)",
        each.join("; ")
    )
}

fn list(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(|d| {
            format!(
                "{} is {} (configured {})",
                d.field, d.existing, d.configured
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The three streams this configuration asks for.
pub fn stream_configs(settings: &StreamSettings) -> [stream::Config; 3] {
    let base = |name: &str, subject: &str, max_age: Duration| stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_age,
        max_bytes: settings.max_bytes,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window.min(max_age),
        ..Default::default()
    };
    [
        base(EVENTS_STREAM, subjects::EVENTS, settings.events_max_age),
        base(
            COMMANDS_STREAM,
            subjects::COMMANDS_ALL,
            settings.commands_max_age,
        ),
        base(
            RESULTS_STREAM,
            subjects::RESULTS_ALL,
            settings.results_max_age,
        ),
    ]
}

/// JetStream's `max_deliver` for no limit.
pub const UNLIMITED: i64 = -1;

/// The durable consumers, each with the stream it reads.
///
/// Each delivers without limit, and its processes count the tries
/// themselves (`max_deliver`): a JetStream limit drops a message whose
/// last delivery dies with its process (SIGKILL, a lost node), or outlasts
/// an outage of Webex, with no word to anyone. A command past its tries is
/// not tried again but told what became of it (see the worker's
/// consumer); a result is delivered until its reply is posted; an event
/// until it is handled or, past its tries, older than the message age
/// limit, when the catch-up answers it (see the gateway's ingestion).
pub fn consumer_configs(settings: &StreamSettings) -> [(&'static str, pull::Config); 3] {
    let durable = |name: &str, filter: &str| pull::Config {
        durable_name: Some(name.to_owned()),
        filter_subject: filter.to_owned(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_deliver: UNLIMITED,
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    [
        (EVENTS_STREAM, durable(INGESTION_CONSUMER, subjects::EVENTS)),
        (
            COMMANDS_STREAM,
            durable(WORKERS_CONSUMER, subjects::COMMANDS_ALL),
        ),
        (
            RESULTS_STREAM,
            durable(NOTIFIER_CONSUMER, subjects::RESULTS_ALL),
        ),
    ]
}

/// How often a running gateway or worker looks for streams, records and
/// consumers gone missing (a server's store lost).
pub const KEEP_EVERY: Duration = Duration::from_secs(15);

/// Makes what is missing again, every `every` until `stop`: a server that
/// lost its store gets its streams back without a `chatops setup`. What
/// is made again is logged; drift is logged too, and changes nothing.
pub async fn keep(
    js: Context,
    settings: StreamSettings,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match ensure(&js, &settings).await {
            Ok(report) => {
                for (what, _) in report.iter().filter(|(_, a)| *a == Action::Created) {
                    tracing::warn!(%what, "was missing (the server lost it?); made again");
                }
            }
            Err(e @ SetupError::Drift { .. }) => {
                tracing::warn!(error = %e, "the streams' settings differ from the configuration")
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the streams"),
        }
    }
}

/// Creates every stream and consumer that is missing; checks the others.
/// Returns what was done to each, by name.
pub async fn ensure(
    js: &Context,
    settings: &StreamSettings,
) -> Result<Vec<(String, Action)>, SetupError> {
    let mut report = Vec::new();
    // Every drift is reported at once, not the first alone.
    let mut drifted = Vec::new();
    let mut note = |name: String, done: Result<Action, SetupError>| match done {
        Ok(action) => {
            report.push((name, action));
            Ok(())
        }
        Err(SetupError::Drift { drifted: more }) => {
            drifted.extend(more);
            Ok(())
        }
        Err(e) => Err(e),
    };
    let records = [PROCESSED_BUCKET, REPLIES_BUCKET].map(|name| record_config(name, settings));
    for config in stream_configs(settings).into_iter().chain(records) {
        let name = format!("stream {}", config.name);
        note(name, ensure_stream(js, config).await)?;
    }
    for (stream, config) in consumer_configs(settings) {
        let consumer = config.durable_name.clone().unwrap_or_default();
        let name = format!("consumer {consumer} on {stream}");
        note(name, ensure_consumer(js, stream, config).await)?;
    }
    if drifted.is_empty() {
        Ok(report)
    } else {
        Err(SetupError::Drift { drifted })
    }
}

async fn ensure_stream(js: &Context, want: stream::Config) -> Result<Action, SetupError> {
    let what = format!("stream {}", want.name);
    let nats = |source: async_nats::Error| SetupError::Nats {
        what: what.clone(),
        source,
    };
    let existing = match js.get_stream(&want.name).await {
        Ok(stream) => stream.cached_info().config.clone(),
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            match js.create_stream(want.clone()).await {
                Ok(_) => return Ok(Action::Created),
                // Another process created it first: compare with theirs.
                Err(e) if matches!(e.kind(), CreateStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NAME_EXIST) =>
                {
                    let mut stream = js
                        .get_stream(&want.name)
                        .await
                        .map_err(|e| nats(e.into()))?;
                    stream
                        .info()
                        .await
                        .map_err(|e| nats(e.into()))?
                        .config
                        .clone()
                }
                Err(e) => return Err(nats(e.into())),
            }
        }
        Err(e) => return Err(nats(e.into())),
    };
    let differences = stream_differences(&existing, &want);
    if differences.is_empty() {
        Ok(Action::Unchanged)
    } else {
        Err(SetupError::Drift {
            drifted: vec![Drifted { what, differences }],
        })
    }
}

async fn ensure_consumer(
    js: &Context,
    stream: &str,
    want: pull::Config,
) -> Result<Action, SetupError> {
    let name = want.durable_name.clone().unwrap_or_default();
    let what = format!("consumer {name} on {stream}");
    let nats = |source: async_nats::Error| SetupError::Nats {
        what: what.clone(),
        source,
    };
    let handle = js.get_stream(stream).await.map_err(|e| nats(e.into()))?;
    let existing = match handle.consumer_info(&name).await {
        Ok(info) => info.config,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {
            match handle.create_consumer(want.clone()).await {
                Ok(_) => return Ok(Action::Created),
                Err(e) => {
                    // Lost a creation race: compare with the winner's.
                    match handle.consumer_info(&name).await {
                        Ok(info) => info.config,
                        Err(_) => return Err(nats(e.into())),
                    }
                }
            }
        }
        Err(e) => return Err(nats(e.into())),
    };
    let differences = consumer_differences(&existing, &want);
    if differences.is_empty() {
        Ok(Action::Unchanged)
    } else if upgrade(&differences) {
        handle
            .create_consumer(want)
            .await
            .map_err(|e| nats(e.into()))?;
        tracing::info!(%what, "delivered without limit from now on, as this build expects");
        Ok(Action::Upgraded)
    } else {
        Err(SetupError::Drift {
            drifted: vec![Drifted { what, differences }],
        })
    }
}

/// Whether `differences` are only what an earlier build set and no
/// configuration chooses now: a limit on a consumer's deliveries, which
/// they now make without one (see [`consumer_configs`]). JetStream lets
/// that be changed in place, the consumer's place in its stream kept.
fn upgrade(differences: &[Difference]) -> bool {
    differences.iter().all(|d| d.field == "max_deliver")
}

/// `90d`, `1d12h`, `2m`, `30s`: days at most, as the configuration is written.
fn human(d: Duration) -> String {
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out += &format!("{}{unit}", secs / size);
            secs %= size;
        }
    }
    match (out.is_empty(), d.subsec_millis()) {
        (true, 0) => "0s".to_owned(),
        (_, 0) => out,
        (_, ms) => format!("{out}{ms}ms"),
    }
}

/// Collects the fields that differ, formatting each with `show`.
struct Diff(Vec<Difference>);

impl Diff {
    fn field<T: PartialEq>(
        &mut self,
        field: &'static str,
        existing: &T,
        configured: &T,
        show: impl Fn(&T) -> String,
    ) {
        if existing != configured {
            self.0.push(Difference {
                field,
                existing: show(existing),
                configured: show(configured),
            });
        }
    }
}

fn debug<T: fmt::Debug>(v: &T) -> String {
    format!("{v:?}")
}

fn stream_differences(existing: &stream::Config, want: &stream::Config) -> Vec<Difference> {
    let mut d = Diff(Vec::new());
    let sorted = |v: &Vec<String>| {
        let mut v = v.clone();
        v.sort();
        v
    };
    d.field(
        "subjects",
        &sorted(&existing.subjects),
        &sorted(&want.subjects),
        |v| v.join(","),
    );
    d.field("retention", &existing.retention, &want.retention, debug);
    d.field("storage", &existing.storage, &want.storage, debug);
    d.field("discard", &existing.discard, &want.discard, debug);
    d.field("max_age", &existing.max_age, &want.max_age, |v| human(*v));
    d.field(
        "max_bytes",
        &existing.max_bytes,
        &want.max_bytes,
        i64::to_string,
    );
    d.field(
        "replicas",
        &existing.num_replicas,
        &want.num_replicas,
        usize::to_string,
    );
    d.field(
        "duplicate_window",
        &existing.duplicate_window,
        &want.duplicate_window,
        |v| human(*v),
    );
    d.0
}

fn consumer_differences(existing: &consumer::Config, want: &pull::Config) -> Vec<Difference> {
    let mut d = Diff(Vec::new());
    d.field(
        "filter_subject",
        &existing.filter_subject,
        &want.filter_subject,
        String::clone,
    );
    d.field(
        "deliver_policy",
        &existing.deliver_policy,
        &want.deliver_policy,
        debug,
    );
    d.field("ack_policy", &existing.ack_policy, &want.ack_policy, debug);
    d.field("ack_wait", &existing.ack_wait, &want.ack_wait, |v| {
        human(*v)
    });
    d.field(
        "max_deliver",
        &existing.max_deliver,
        &want.max_deliver,
        |&n| {
            if n <= 0 {
                "unlimited".to_owned()
            } else {
                n.to_string()
            }
        },
    );
    d.field(
        "max_ack_pending",
        &existing.max_ack_pending,
        &want.max_ack_pending,
        i64::to_string,
    );
    d.0
}

/// A small record of keys and values on a stream of its own: one subject
/// per key, one message per subject, kept for `processed_max_age`.
///
/// This is what a JetStream key-value bucket is; it is spelt out with plain
/// stream calls because the key-value API of the client and Debian's
/// nats-server (2.9) do not understand each other.
#[derive(Debug, Clone)]
pub struct Record {
    stream: async_nats::jetstream::stream::Stream,
    js: Context,
    prefix: String,
}

impl Record {
    /// When the record began: its stream's creation, as the server says
    /// now (a stream lost and made again began anew).
    pub async fn began(&self) -> Result<jiff::Timestamp, async_nats::Error> {
        let name = self.stream.cached_info().config.name.clone();
        let stream = self.js.get_stream(name).await?;
        let created = stream.cached_info().created;
        Ok(jiff::Timestamp::new(
            created.unix_timestamp(),
            i32::try_from(created.nanosecond()).unwrap_or(0),
        )?)
    }

    /// Reads a key's value, if it was recorded and has not expired.
    pub async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, async_nats::Error> {
        use async_nats::jetstream::stream::{DirectGetErrorKind, LastRawMessageErrorKind};
        let subject = format!("{}.{key}", self.prefix);
        if self.stream.cached_info().config.allow_direct {
            return match self.stream.direct_get_last_for_subject(subject).await {
                Ok(message) => Ok(Some(message.payload)),
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(Some(message.payload)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a key's value (replacing an earlier one). Keys are subject
    /// tokens: letters, digits, `-`, `_`, and `.` between tokens.
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<bytes::Bytes>,
    ) -> Result<(), async_nats::Error> {
        self.js
            .publish(format!("{}.{key}", self.prefix), value.into())
            .await?
            .await?;
        Ok(())
    }
}

/// Opens a record stream (see [`Record`]), creating it if missing and
/// reporting drift like the other streams.
pub async fn ensure_record(
    js: &Context,
    name: &str,
    settings: &StreamSettings,
) -> Result<Record, SetupError> {
    ensure_stream(js, record_config(name, settings)).await?;
    open_record(js, name).await
}

/// Opens a record stream [`ensure`] has set up.
pub async fn open_record(js: &Context, name: &str) -> Result<Record, SetupError> {
    let stream = js.get_stream(name).await.map_err(|e| SetupError::Nats {
        what: format!("stream {name}"),
        source: e.into(),
    })?;
    Ok(Record {
        stream,
        js: js.clone(),
        prefix: record_prefix(name),
    })
}

/// `chatops.processed` for CHATOPS_PROCESSED.
fn record_prefix(name: &str) -> String {
    format!(
        "chatops.{}",
        name.trim_start_matches("CHATOPS_").to_ascii_lowercase()
    )
}

/// A record stream's configuration.
fn record_config(name: &str, settings: &StreamSettings) -> stream::Config {
    let prefix = record_prefix(name);
    stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{prefix}.>")],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_age: settings.processed_max_age,
        max_messages_per_subject: 1,
        max_bytes: settings.max_bytes,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window.min(settings.processed_max_age),
        // Direct gets skip the JetStream API request and its JSON answer
        // (at 1,000 commands/s nats-server used 0.38 cores instead of 0.44,
        // one run each). Every replica answers them and a follower may not
        // yet hold a key just written, so only a single replica uses them.
        allow_direct: settings.replicas == 1,
        ..Default::default()
    }
}
