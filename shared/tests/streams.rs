//! Stream and consumer set-up against a real nats-server.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use chatops_shared::streams::{self, Action, Drifted, SetupError, StreamSettings};
use chatops_testkit::NatsServer;
use futures::StreamExt;

async fn jetstream(server: &NatsServer) -> async_nats::jetstream::Context {
    let client = async_nats::connect(server.url())
        .await
        .expect("connect to nats-server");
    async_nats::jetstream::new(client)
}

/// A stream's info as the server has it now.
async fn stream_info(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> async_nats::jetstream::stream::Info {
    js.get_stream(name)
        .await
        .unwrap_or_else(|e| panic!("stream {name}: {e}"))
        .cached_info()
        .clone()
}

#[tokio::test]
async fn creating_the_topology_twice_is_a_no_op() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let settings = StreamSettings::default();

    let first = streams::ensure(&js, &settings).await.expect("first set-up");
    // Three streams, two records, three consumers.
    assert_eq!(first.len(), 8, "{first:?}");
    assert!(
        first.iter().all(|(_, a)| *a == Action::Created),
        "{first:?}"
    );

    let created = stream_info(&js, streams::COMMANDS_STREAM).await.created;
    let second = streams::ensure(&js, &settings)
        .await
        .expect("second set-up");
    assert!(
        second.iter().all(|(_, a)| *a == Action::Unchanged),
        "{second:?}"
    );
    let again = stream_info(&js, streams::COMMANDS_STREAM).await.created;
    assert_eq!(created, again, "the stream was not recreated");

    let info = stream_info(&js, streams::COMMANDS_STREAM).await.config;
    assert_eq!(info.max_age, settings.commands_max_age);
    assert_eq!(info.subjects, ["chatops.commands.>"]);
}

#[tokio::test]
async fn processes_starting_together_agree_on_one_topology() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let settings = StreamSettings::default();
    let runs = (0..4).map(|_| streams::ensure(&js, &settings));
    let results = futures::future::join_all(runs).await;
    let mut created = 0;
    for result in results {
        let report = result.expect("every racer succeeds");
        created += report.iter().filter(|(_, a)| *a == Action::Created).count();
    }
    assert!(
        created >= 8,
        "each stream, record and consumer was created by someone"
    );
}

#[tokio::test]
async fn a_stream_with_different_settings_is_reported_and_left_alone() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let short = StreamSettings {
        commands_max_age: Duration::from_secs(7 * 24 * 3600),
        ..StreamSettings::default()
    };
    streams::ensure(&js, &short).await.expect("first set-up");

    let err = streams::ensure(&js, &StreamSettings::default())
        .await
        .expect_err("drift");
    let SetupError::Drift { drifted } = &err else {
        panic!("drift expected, got {err}");
    };
    let [Drifted { what, differences }] = drifted.as_slice() else {
        panic!("one drift expected: {err}");
    };
    assert_eq!(what, "stream CHATOPS_COMMANDS");
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert_eq!(differences[0].field, "max_age");
    assert_eq!(differences[0].existing, "7d");
    assert_eq!(differences[0].configured, "90d");
    let line = err.to_string();
    assert!(line.contains("max_age is 7d (configured 90d)"), "{line}");
    assert!(line.contains("nothing that existed was changed"), "{line}");

    let kept = stream_info(&js, streams::COMMANDS_STREAM).await.config;
    assert_eq!(kept.max_age, short.commands_max_age, "not overwritten");
}

/// Topology an earlier build set up, its consumers limited to
/// `CHATOPS_MAX_DELIVER` deliveries, with a command delivered and not
/// acknowledged: setting up again lifts the limits in place, keeping the
/// consumers' place (the command is still pending).
#[tokio::test]
async fn consumers_limited_by_an_earlier_build_are_brought_up_to_date_in_place() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let settings = StreamSettings::default();
    let [events, commands, results] = streams::consumer_configs(&settings);
    for (stream, mut config) in [events, commands, results] {
        config.max_deliver = settings.max_deliver;
        js.get_or_create_stream(
            streams::stream_configs(&settings)
                .into_iter()
                .find(|c| c.name == stream)
                .expect("a stream"),
        )
        .await
        .expect("stream")
        .create_consumer(config)
        .await
        .expect("an earlier build's consumer");
    }
    js.publish("chatops.commands.default.web", "{}".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let commands = js
        .get_stream(streams::COMMANDS_STREAM)
        .await
        .expect("stream");
    let workers: PullConsumer = commands
        .get_consumer(streams::WORKERS_CONSUMER)
        .await
        .expect("consumer");
    let mut fetched = workers
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .expect("fetch");
    fetched.next().await.expect("a message").expect("delivered");

    let report = streams::ensure(&js, &settings).await.expect("set-up");
    let upgraded: Vec<_> = report
        .iter()
        .filter(|(_, a)| *a == Action::Upgraded)
        .map(|(what, _)| what.as_str())
        .collect();
    assert_eq!(
        upgraded,
        [
            "consumer ingestion on CHATOPS_EVENTS",
            "consumer workers on CHATOPS_COMMANDS",
            "consumer notifier on CHATOPS_RESULTS"
        ]
    );
    let info = commands
        .consumer_info(streams::WORKERS_CONSUMER)
        .await
        .expect("info");
    assert_eq!(info.config.max_deliver, -1);
    assert_eq!(info.num_ack_pending, 1, "its place kept");
    let again = streams::ensure(&js, &settings).await.expect("set-up");
    assert!(
        again.iter().all(|(_, a)| *a == Action::Unchanged),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_consumer_with_different_settings_is_reported() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    streams::ensure(&js, &StreamSettings::default())
        .await
        .expect("first set-up");
    let changed = StreamSettings {
        max_deliver: 9,
        ack_wait: Duration::from_secs(60),
        ..StreamSettings::default()
    };
    let err = streams::ensure(&js, &changed).await.expect_err("drift");
    let SetupError::Drift { drifted } = &err else {
        panic!("drift expected, got {err}");
    };
    // Every consumer drifted, and each is named.
    let whats: Vec<_> = drifted.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(
        whats,
        [
            "consumer ingestion on CHATOPS_EVENTS",
            "consumer workers on CHATOPS_COMMANDS",
            "consumer notifier on CHATOPS_RESULTS"
        ]
    );
    // The tries are counted by the processes: no consumer's limit moved.
    let fields: Vec<_> = drifted[0].differences.iter().map(|d| d.field).collect();
    assert_eq!(fields, ["ack_wait"]);
}

#[tokio::test]
async fn every_stream_and_consumer_that_drifted_is_listed_in_one_line() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    streams::ensure(&js, &StreamSettings::default())
        .await
        .expect("first set-up");
    let changed = StreamSettings {
        commands_max_age: Duration::from_secs(7 * 24 * 3600),
        results_max_age: Duration::from_secs(24 * 3600),
        ack_wait: Duration::from_secs(10),
        ..StreamSettings::default()
    };
    let line = streams::ensure(&js, &changed)
        .await
        .expect_err("drift")
        .to_string();
    for part in [
        "stream CHATOPS_COMMANDS already exists with different settings: max_age is 90d (configured 7d)",
        "stream CHATOPS_RESULTS already exists with different settings",
        "consumer workers on CHATOPS_COMMANDS already exists with different settings: ack_wait",
        "update them deliberately (nothing that existed was changed)",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    assert_eq!(line.lines().count(), 1, "{line}");
}

#[tokio::test]
async fn messages_with_the_same_id_are_stored_once() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    streams::ensure(&js, &StreamSettings::default())
        .await
        .expect("set-up");
    for _ in 0..3 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(chatops_shared::subjects::MSG_ID_HEADER, "message-1");
        js.publish_with_headers(chatops_shared::subjects::EVENTS, headers, "{}".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let mut stream = js.get_stream(streams::EVENTS_STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_through_the_batcher_are_each_stored_once_and_acknowledged() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    streams::ensure(&js, &StreamSettings::default())
        .await
        .expect("set-up");
    let batcher = chatops_shared::nats::Batcher::spawn(js.clone());
    // 600 publishes at once, every third one repeating an earlier id.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..600u32 {
        let batcher = batcher.clone();
        tasks.spawn(async move {
            let id = if i % 3 == 2 { i - 1 } else { i };
            let headers = || {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    chatops_shared::subjects::MSG_ID_HEADER,
                    format!("message-{id}").as_str(),
                );
                headers
            };
            let ack = chatops_shared::nats::publish_batched_durably(
                &batcher,
                async_nats::Subject::from_static(chatops_shared::subjects::EVENTS),
                headers,
                format!("{{\"n\":{i}}}").into(),
                Duration::from_secs(5),
            )
            .await
            .expect("published");
            (id, ack.sequence, ack.duplicate)
        });
    }
    let mut sequences = std::collections::BTreeMap::new();
    let mut duplicates = 0;
    while let Some(done) = tasks.join_next().await {
        let (id, sequence, duplicate) = done.expect("task");
        duplicates += usize::from(duplicate);
        // A repeated id is acknowledged with the first one's sequence.
        let first = *sequences.entry(id).or_insert(sequence);
        assert_eq!(first, sequence, "message-{id}");
    }
    assert_eq!(sequences.len(), 400);
    assert_eq!(duplicates, 200);
    let mut stream = js.get_stream(streams::EVENTS_STREAM).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 400);
}

/// A record's reads, new keys, replaced values and missing keys alike.
async fn reads_its_writes(record: &streams::Record) {
    assert_eq!(record.get("missing").await.expect("get"), None);
    record.put("key-1", "first").await.expect("put");
    record.put("key-2", "other").await.expect("put");
    record.put("key-1", "second").await.expect("put");
    assert_eq!(
        record.get("key-1").await.expect("get").as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(
        record.get("key-2").await.expect("get").as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(record.get("key-3").await.expect("get"), None);
}

#[tokio::test]
async fn records_read_their_writes_with_direct_gets_and_through_the_api() {
    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let settings = StreamSettings::default();

    // A new single-replica record allows direct gets.
    let record = streams::ensure_record(&js, streams::REPLIES_BUCKET, &settings)
        .await
        .expect("record");
    let mut config = stream_info(&js, streams::REPLIES_BUCKET).await.config;
    assert!(config.allow_direct);
    reads_its_writes(&record).await;

    // One created before direct gets is left as it is and read through
    // the JetStream API.
    js.delete_stream(streams::REPLIES_BUCKET)
        .await
        .expect("delete");
    config.allow_direct = false;
    js.create_stream(config)
        .await
        .expect("an older record stream");
    let record = streams::ensure_record(&js, streams::REPLIES_BUCKET, &settings)
        .await
        .expect("record");
    let config = stream_info(&js, streams::REPLIES_BUCKET).await.config;
    assert!(!config.allow_direct, "the existing stream was changed");
    reads_its_writes(&record).await;
}

/// A stream of `count` messages on `pull.<n>` and a consumer of it that
/// waits `ack_wait` for each acknowledgement.
async fn pull_setup(
    js: &async_nats::jetstream::Context,
    count: usize,
    ack_wait: Duration,
) -> async_nats::jetstream::consumer::PullConsumer {
    use async_nats::jetstream::{consumer, stream};
    let stream = js
        .create_stream(stream::Config {
            name: "PULL".to_owned(),
            subjects: vec!["pull.>".to_owned()],
            ..stream::Config::default()
        })
        .await
        .expect("create the stream");
    for n in 0..count {
        js.publish(format!("pull.{n}"), n.to_string().into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("puller".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            ..consumer::pull::Config::default()
        })
        .await
        .expect("create the consumer")
}

/// The consumer's info as the server has it now.
async fn consumer_info(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
) -> async_nats::jetstream::consumer::Info {
    consumer
        .clone()
        .info()
        .await
        .expect("consumer info")
        .clone()
}

/// Waits until the consumer has `n` messages delivered and not acked.
async fn until_ack_pending(consumer: &async_nats::jetstream::consumer::PullConsumer, n: usize) {
    chatops_testkit::eventually(
        &format!("{n} messages delivered and not acked"),
        Duration::from_secs(10),
        || {
            let mut consumer = consumer.clone();
            async move {
                let info = consumer.info().await.ok()?;
                (info.num_ack_pending == n).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_messages_keep_their_order_and_first_delivery_while_the_caller_is_busy() {
    // The caller holds one slot of two (the next message is offered to it
    // and not taken), or both (the next ones wait for a slot).
    for held in [1, 2] {
        caller_busy_for_three_ack_waits(held).await;
    }
}

/// Three messages, two slots, a 1 s ack wait: the caller takes `held` and
/// works on them for three ack waits without polling the stream. Every
/// message is then delivered once, in stream order. (With fewer fetched
/// than slots, the pull keeps a request open, and the server would
/// deliver it any message past its ack wait.)
async fn caller_busy_for_three_ack_waits(held: usize) {
    use chatops_shared::consume::{self, messages, with_progress};
    use futures::StreamExt;

    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let ack_wait = Duration::from_secs(1);
    let consumer = pull_setup(&js, 3, ack_wait).await;
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut taken = Box::pin(messages(
        js.clone(),
        consumer.clone(),
        slots,
        shutdown.clone(),
    ));
    let mut working = Vec::new();
    for _ in 0..held {
        working.push(taken.next().await.expect("a message"));
    }

    // The caller's own messages get progress acks, as a worker's do; the
    // rest are fetched meanwhile, and all three wait out three ack waits.
    let every = consume::progress_period(ack_wait);
    let done = tokio_util::sync::CancellationToken::new();
    let keep = working
        .iter()
        .map(|(message, _)| with_progress(message, every, done.cancelled()));
    tokio::join!(futures::future::join_all(keep), async {
        until_ack_pending(&consumer, 3).await;
        tokio::time::sleep(ack_wait * 3).await;
        done.cancel();
    });

    for (message, slot) in working {
        message.ack().await.expect("ack");
        drop(slot);
    }
    let mut rest = Vec::new();
    for _ in held..3 {
        let (message, slot) = taken.next().await.expect("a fetched message");
        let meta = message.info().expect("JetStream metadata");
        rest.push((meta.stream_sequence, meta.delivered));
        message.ack().await.expect("ack");
        drop(slot);
    }
    let expected: Vec<(u64, i64)> = (held as u64 + 1..=3).map(|seq| (seq, 1)).collect();
    assert_eq!(rest, expected, "held {held}: (stream sequence, deliveries)");

    shutdown.cancel();
    let again: Vec<u64> = taken
        .map(|(message, _)| message.info().map_or(0, |meta| meta.stream_sequence))
        .collect()
        .await;
    assert!(again.is_empty(), "held {held}: delivered again: {again:?}");
    // Past their ack wait, the server would have delivered them again to
    // the next pull request.
    let info = consumer_info(&consumer).await;
    assert_eq!(
        (info.delivered.consumer_sequence, info.num_redelivered),
        (3, 0),
        "held {held}: (deliveries, redelivered): {info:?}"
    );
}

#[tokio::test]
async fn a_dropped_stream_hands_back_what_it_fetched_at_once() {
    use chatops_shared::consume::messages;
    use futures::StreamExt;

    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    // Only a hand-back frees a fetched message within the test's time.
    let consumer = pull_setup(&js, 3, Duration::from_secs(300)).await;
    let slots = Arc::new(tokio::sync::Semaphore::new(2));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut taken = Box::pin(messages(js.clone(), consumer.clone(), slots, shutdown));
    let (first, slot) = taken.next().await.expect("a first message");
    // The second is offered and not taken, the third fetched ahead.
    until_ack_pending(&consumer, 3).await;
    drop(taken);

    // Another puller gets both now, not after the ack wait.
    let again: Vec<(u64, i64)> = consumer
        .batch()
        .max_messages(2)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("a fetch")
        .map(|message| {
            let message = message.expect("a message");
            let meta = message.info().expect("metadata");
            (meta.stream_sequence, meta.delivered)
        })
        .collect()
        .await;
    assert_eq!(again, [(2, 2), (3, 2)], "(stream sequence, deliveries)");
    first.ack().await.expect("ack");
    drop(slot);
}

#[tokio::test]
async fn a_message_kept_alive_is_not_redelivered_until_let_go() {
    use chatops_shared::consume::{keep_alive, progress_period};
    use futures::StreamExt;

    let server = NatsServer::start().await;
    let js = jetstream(&server).await;
    let ack_wait = Duration::from_secs(1);
    let consumer = pull_setup(&js, 1, ack_wait).await;
    let pull = |wait: Duration| {
        let consumer = consumer.clone();
        async move {
            consumer
                .batch()
                .max_messages(1)
                .expires(wait)
                .messages()
                .await
                .expect("a pull request")
                .map(|message| message.expect("a message"))
                .collect::<Vec<_>>()
                .await
        }
    };
    let first = pull(Duration::from_secs(5)).await;
    let [message] = first.as_slice() else {
        panic!("one message, got {}", first.len());
    };
    let kept = keep_alive(message, progress_period(ack_wait));

    // A request open for three ack waits gets nothing.
    let during = pull(ack_wait * 3).await;
    assert!(
        during.is_empty(),
        "redelivered while kept: {}",
        during.len()
    );

    // Let go, it comes again after its ack wait.
    drop(kept);
    let after = pull(Duration::from_secs(5)).await;
    let delivered: Vec<i64> = after
        .iter()
        .map(|m| m.info().expect("metadata").delivered)
        .collect();
    assert_eq!(delivered, [2]);
}
