//! Helpers for JetStream consumers shared by the gateway and the workers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::BatchConfig;
use async_nats::jetstream::{AckKind, Context, Message};
use async_nats::{StatusCode, Subject, Subscriber};
use futures::{Stream, StreamExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Runs `work` while telling JetStream every `every` that the message is
/// still being worked on, so a slow step (a rate-limited reply, a long
/// rollout) is not redelivered to another process meanwhile.
pub async fn with_progress<F: Future>(message: &Message, every: Duration, work: F) -> F::Output {
    tokio::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!(error = %e, "cannot extend the ack deadline");
                }
            }
        }
    }
}

/// Keeps `message` from its ack wait, as [`with_progress`] does, until the
/// returned guard is dropped: for a message that waits between steps
/// rather than in one (decided, then queued behind the ones before it).
pub fn keep_alive(message: &Message, every: Duration) -> DropGuard {
    let kept = CancellationToken::new();
    let message = message.clone();
    let done = kept.clone();
    tokio::spawn(async move { with_progress(&message, every, done.cancelled()).await });
    kept.drop_guard()
}

/// How long to hand a message back for (a NAK's delay) after its
/// `delivered`-th delivery, where the one that failed did not say: 1, 2,
/// 4 ... 60 s.
pub fn backoff(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs(1 << exponent).min(Duration::from_secs(60))
}

/// How many times `message` has been delivered (1 where it cannot tell).
pub fn delivered(message: &Message) -> i64 {
    message.info().map_or(1, |i| i.delivered)
}

/// Keys of the messages a process has in hand: a copy of one delivered
/// again meanwhile (its progress acks lost in a NATS restart) is left to
/// the first, which acks it.
#[derive(Debug)]
pub struct InHand<K>(Arc<Mutex<std::collections::HashSet<K>>>);

impl<K> Default for InHand<K> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<K> Clone for InHand<K> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// A message in hand until this is dropped.
#[derive(Debug)]
pub struct Held<K: std::hash::Hash + Eq> {
    hand: InHand<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq + Clone> InHand<K> {
    /// Takes `key` in hand; `None` if it is already.
    pub fn hold(&self, key: K) -> Option<Held<K>> {
        let fresh = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone());
        fresh.then(|| Held {
            hand: self.clone(),
            key,
        })
    }
}

impl<K: std::hash::Hash + Eq> Drop for Held<K> {
    fn drop(&mut self) {
        self.hand
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// How often to send progress acks for a consumer with this ack wait.
pub fn progress_period(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(100))
}

/// How long one pull request waits for messages before it ends empty.
const PULL_WAIT: Duration = Duration::from_secs(1);

/// How long after its expiry a pull request is surely over, whether or not
/// its end was heard (a reconnection loses the server's word of it).
const PULL_OVER: Duration = Duration::from_secs(2);

/// The longest wait before asking again after pull requests failed (the
/// wait doubles from 50 ms up to it, and starts again after a message).
const PULL_RETRY_MAX: Duration = Duration::from_secs(5);

/// A message and the slot it holds: the caller drops the slot when it is
/// done with the message (acked, NAKed or handed on), and only then can
/// another message start in its place.
pub type Taken = (Message, OwnedSemaphorePermit);

/// The consumer's messages, each with one of `slots`' permits, until
/// `shutdown` (or until the stream is dropped); then what was fetched and
/// not started, and whatever the open pull requests still bring, is handed
/// back (NAKed) and the stream ends. `slots` has all its permits free when
/// it is given.
///
/// As many messages as there are slots are fetched ahead of them, and
/// asked for again once half have come, so a slot freed under load starts
/// its next message at once, and a pull request brings many messages:
///
/// - Asking only for free slots, one request per freed slot with several
///   open at once, raised nats-server's CPU by half at 200 commands/s, and
///   nats-server 2.9 went on to hold a core for about 40 s after a load;
///   one request at a time for the free slots left slots idle (756 of
///   1,000 commands/s with 50 ms Kubernetes calls).
/// - async-nats' own prefetching stream fetches ahead as well, but a
///   stopping process cannot reach what it buffered, which waited for its
///   ack wait (30 s by default) before anyone else got it. Here a stop
///   reads the open requests to their end (a second at most), then hands
///   back at once what was fetched and not taken.
/// - A message fetched ahead that waits for a slot (every slot taken by
///   long rollouts) is kept from its ack wait as a started one is. Handed
///   back instead, each hand-back counted as a delivery, and commands ran
///   out of deliveries when every Kubernetes call took 2 s.
///
/// The pulling runs in a task of its own, so fetched messages are kept
/// from their ack wait even while the caller does not poll the stream (its
/// own work blocked, say). It offers one message at a time, with its slot,
/// and keeps it from its ack wait too until the caller's poll takes it; a
/// stop takes back an offer not taken. Dropping the stream stops it as
/// `shutdown` does. Must be called within a Tokio runtime; a panic of the
/// pull is raised again in the caller's poll.
///
/// All requests share one reply subject: a subscription each had the
/// server change its subscriptions twice a request.
pub fn messages(
    jetstream: Context,
    consumer: PullConsumer,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Taken> + Send {
    let inbox = Subject::from(jetstream.client().new_inbox());
    let stop = shutdown.child_token();
    let offer = Arc::new(Offer::default());
    let pull = Pull {
        window: slots.available_permits().max(1),
        keep_every: progress_period(consumer.cached_info().config.ack_wait),
        jetstream,
        consumer,
        slots,
        shutdown: stop.clone(),
        offer: offer.clone(),
        offered: None,
        inbox,
        replies: None,
        ahead: VecDeque::new(),
        asked: 0,
        open: VecDeque::new(),
        failures: 0,
        retry_at: None,
    };
    let taking = Taking {
        offer,
        pull: tokio::spawn(pull.run()),
        _stop: stop.drop_guard(),
    };
    futures::stream::unfold(taking, |mut taking| async move {
        let next = taking.next().await?;
        Some((next, taking))
    })
}

/// The one message (with its slot) the pull offers the caller at a time.
#[derive(Default)]
struct Offer {
    message: Mutex<Option<Taken>>,
    /// The pull put a message in.
    made: Notify,
    /// The caller took the message out.
    taken: Notify,
}

impl Offer {
    fn lock(&self) -> MutexGuard<'_, Option<Taken>> {
        self.message.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The caller's end: takes what the pull offers, until the pull ends.
struct Taking {
    offer: Arc<Offer>,
    pull: JoinHandle<()>,
    /// Stops the pull when the stream is dropped.
    _stop: DropGuard,
}

impl Taking {
    async fn next(&mut self) -> Option<Taken> {
        loop {
            if let Some(taken) = self.offer.lock().take() {
                self.offer.taken.notify_one();
                return Some(taken);
            }
            tokio::select! {
                () = self.offer.made.notified() => {}
                ended = &mut self.pull => {
                    if let Err(e) = ended
                        && e.is_panic()
                    {
                        std::panic::resume_unwind(e.into_panic());
                    }
                    return None;
                }
            }
        }
    }
}

struct Pull {
    jetstream: Context,
    consumer: PullConsumer,
    slots: Arc<Semaphore>,
    shutdown: CancellationToken,
    /// Shared with the caller, and a copy of the message in it with when
    /// it was offered or last kept from its ack wait (until it is taken).
    offer: Arc<Offer>,
    offered: Option<(Instant, Message)>,
    /// How many messages may be fetched ahead (asked for or waiting).
    window: usize,
    /// How often the fetched messages waiting for a slot are kept from
    /// their ack wait.
    keep_every: Duration,
    /// The reply subject of every pull request, and its subscription.
    inbox: Subject,
    replies: Option<Subscriber>,
    /// Fetched, waiting for a slot, in stream order, with when each came
    /// or was last kept from its ack wait.
    ahead: VecDeque<(Instant, Message)>,
    /// Asked for and not come yet.
    asked: usize,
    /// The open requests, oldest first: when each is surely over, and how
    /// many messages it asked for.
    open: VecDeque<(Instant, usize)>,
    /// Failed requests in a row, for the wait before the next.
    failures: u32,
    /// No request before this, after a failure.
    retry_at: Option<Instant>,
}

/// What came on the reply subject, other than a message.
enum Status {
    /// A request ended with this many of its messages not brought.
    Ended(usize),
    /// A request ended or was refused, for this reason.
    Failed(String),
    /// Nothing for us (a heartbeat).
    Nothing,
}

fn read(jetstream: &Context, message: async_nats::Message) -> Result<Message, Status> {
    let Some(status) = message.status.filter(|s| *s != StatusCode::OK) else {
        return Ok(Message {
            message,
            context: jetstream.clone(),
        });
    };
    let not_brought = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Pending-Messages"))
        .and_then(|n| n.as_str().parse().ok());
    Err(match (status, not_brought) {
        (StatusCode::IDLE_HEARTBEAT, _) => Status::Nothing,
        (StatusCode::TIMEOUT, Some(n)) => Status::Ended(n),
        // Ended early (a leader election, a deleted consumer).
        (_, Some(n)) => {
            tracing::warn!(%status, description = ?message.description, "a pull request ended early");
            Status::Ended(n)
        }
        // Refused, or ended without a count: what it asked for is
        // forgotten once it is surely over.
        _ => Status::Failed(format!(
            "{status} {}",
            message.description.unwrap_or_default()
        )),
    })
}

impl Pull {
    /// Pulls until `shutdown` or until the caller drops the stream, then
    /// hands back what it holds.
    async fn run(mut self) {
        loop {
            self.forget_over();
            if self.shutdown.is_cancelled() {
                return self.stop().await;
            }
            let offering = self.still_offered();
            if !offering
                && !self.ahead.is_empty()
                && let Ok(slot) = self.slots.clone().try_acquire_owned()
            {
                self.make_offer(slot);
                continue;
            }
            if self.replies.is_none() {
                match self.jetstream.client().subscribe(self.inbox.clone()).await {
                    Ok(replies) => self.replies = Some(replies),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to pull replies");
                        self.failed();
                        self.pause().await;
                        continue;
                    }
                }
            }
            let low = self.asked + self.ahead.len() <= self.window / 2;
            let now = Instant::now();
            if low && self.retry_at.is_none_or(|at| at <= now) {
                self.ask().await;
                continue;
            }
            let waiting = !self.ahead.is_empty();
            let wake = [
                self.retry_at.filter(|_| low),
                self.open.front().map(|o| o.0),
                self.kept_since().map(|kept| kept + self.keep_every),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let free = self.slots.clone().acquire_owned();
            let Some(replies) = self.replies.as_mut() else {
                continue;
            };
            tokio::select! {
                reply = replies.next() => match reply {
                    Some(reply) => self.take(reply).await,
                    None => {
                        self.replies = None;
                        self.failed();
                        self.pause().await;
                    }
                },
                // Looked at again above.
                () = self.offer.taken.notified(), if offering => {}
                slot = free, if waiting && !offering => match slot {
                    Ok(slot) => self.make_offer(slot),
                    Err(_) => return self.stop().await,
                },
                () = wake => self.keep_waiting().await,
                // Stop taking; what was fetched is handed back above.
                () = self.shutdown.cancelled() => {}
            }
        }
    }

    /// Whether the caller has yet to take the offered message.
    fn still_offered(&mut self) -> bool {
        if self.offered.is_some() && self.offer.lock().is_none() {
            self.offered = None;
        }
        self.offered.is_some()
    }

    /// Offers the oldest fetched message, with `slot`, to the caller.
    fn make_offer(&mut self, slot: OwnedSemaphorePermit) {
        let Some((kept, message)) = self.ahead.pop_front() else {
            return;
        };
        self.offered = Some((kept, message.clone()));
        *self.offer.lock() = Some((message, slot));
        self.offer.made.notify_one();
    }

    /// When the longest-waiting message held for the caller was last kept
    /// from its ack wait.
    fn kept_since(&self) -> Option<Instant> {
        let offered = self.offered.as_ref().map(|o| o.0);
        let ahead = self.ahead.front().map(|a| a.0);
        offered.into_iter().chain(ahead).min()
    }

    /// A message fetched, or the accounting of a request's end.
    async fn take(&mut self, reply: async_nats::Message) {
        match read(&self.jetstream, reply) {
            Ok(message) => {
                self.asked = self.asked.saturating_sub(1);
                self.failures = 0;
                self.ahead.push_back((Instant::now(), message));
            }
            Err(Status::Ended(not_brought)) => self.asked = self.asked.saturating_sub(not_brought),
            Err(Status::Failed(why)) => {
                tracing::warn!(%why, "pull request failed");
                self.failed();
            }
            Err(Status::Nothing) => {}
        }
    }

    /// A new pull request, for as many messages as fit the window.
    async fn ask(&mut self) {
        // Disconnected, a request would wait in the client and reach the
        // server with every other one made meanwhile.
        if self.jetstream.client().connection_state() != State::Connected {
            self.failed();
            return;
        }
        self.retry_at = None;
        let n = self.window - self.asked - self.ahead.len();
        let request = BatchConfig {
            batch: n,
            expires: Some(PULL_WAIT),
            ..BatchConfig::default()
        };
        match self
            .consumer
            .request_batch(request, self.inbox.clone())
            .await
        {
            Ok(()) => {
                self.open
                    .push_back((Instant::now() + PULL_WAIT + PULL_OVER, n));
                self.asked += n;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot ask for messages; asking again");
                self.failed();
            }
        }
    }

    /// Forgets what no open request can still bring: what the requests
    /// surely over asked for, whose end was not heard.
    fn forget_over(&mut self) {
        let now = Instant::now();
        while self.open.front().is_some_and(|(over, _)| *over <= now) {
            self.open.pop_front();
        }
        let live: usize = self.open.iter().map(|(_, n)| n).sum();
        self.asked = self.asked.min(live);
    }

    /// Tells JetStream that the fetched messages held for the caller (the
    /// one offered, and those waiting for a slot) are still wanted, so they
    /// are not redelivered meanwhile; all at once, so they keep their order.
    async fn keep_waiting(&mut self) {
        let now = Instant::now();
        if self
            .kept_since()
            .is_none_or(|kept| kept + self.keep_every > now)
        {
            return;
        }
        self.still_offered();
        let offered = self.offered.iter_mut();
        for (kept, message) in offered.chain(&mut self.ahead) {
            if let Err(e) = message.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "cannot extend the ack deadline of a fetched message");
            }
            *kept = now;
        }
    }

    /// No request for a while after failures: 50 ms doubling up to
    /// [`PULL_RETRY_MAX`].
    fn failed(&mut self) {
        let wait = Duration::from_millis(50)
            .saturating_mul(1 << self.failures.min(7))
            .min(PULL_RETRY_MAX);
        self.failures += 1;
        self.retry_at = Some(Instant::now() + wait);
    }

    async fn pause(&self) {
        let at = self.retry_at.unwrap_or_else(Instant::now);
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = self.shutdown.cancelled() => {}
        }
    }

    /// Hands back what was fetched and not started, and what the open
    /// requests still bring, once they are read to their end (a second at
    /// most): a message handed back while one of them is open would come
    /// back to it, a delivery more, and be handed back again.
    async fn stop(&mut self) {
        let not_taken = self.offer.lock().take();
        if let Some((message, _slot)) = not_taken {
            self.ahead.push_front((Instant::now(), message));
        }
        loop {
            self.forget_over();
            let over = self.open.front().map_or_else(Instant::now, |o| o.0);
            let keep = self.kept_since().map(|kept| kept + self.keep_every);
            let Some(replies) = self.replies.as_mut().filter(|_| self.asked > 0) else {
                break;
            };
            tokio::select! {
                reply = replies.next() => match reply {
                    Some(reply) => self.take(reply).await,
                    None => break,
                },
                () = tokio::time::sleep_until(keep.map_or(over, |keep| keep.min(over))) => {
                    self.keep_waiting().await;
                }
            }
        }
        let handed_back = self.ahead.len();
        for (_, message) in self.ahead.drain(..) {
            hand_back(&message).await;
        }
        if handed_back > 0 {
            tracing::info!(handed_back, "handed back fetched messages not started");
        }
    }
}

async fn hand_back(message: &Message) {
    if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
        tracing::warn!(error = %e, "cannot hand back a fetched message; it is redelivered after the ack wait");
    }
}
