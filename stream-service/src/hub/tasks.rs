//! The hub's background work: delivering what the store's one broadcast brings to
//! each generation's channel (`pump`), and revocation notices, rechecks and session
//! ends to every open stream (`forward_revocations`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use authstream_runtime::UnixTime;
use authstream_store::events::StreamEvent;
use authstream_store::revocations::StreamNotice;
use authstream_store::{PubSubMessage, PublishedEvent, Store};
use tokio::sync::broadcast;

use super::{Channel, Control, HubEvent, Inner, STALE_RECHECK_INTERVAL, SessionEnds};

impl Inner {
    pub(super) fn subscribed_generations(&self) -> usize {
        self.generations
            .lock()
            .values()
            .filter(|c| c.subscribed.initialized())
            .count()
    }

    /// `authstream_stream_subscribed_generations`: generations this replica is
    /// subscribed to.
    pub(super) fn count_subscriptions(&self) {
        metrics::gauge!("authstream_stream_subscribed_generations")
            .set(self.subscribed_generations() as f64);
    }

    /// The linger of a generation's last stream is over: unless a stream followed it
    /// since, the channel goes and so does the subscription.
    pub(super) fn let_go(&self, generation_id: &str, channel: &Arc<Channel>, follows: u64) {
        {
            let mut generations = self.generations.lock();
            let idle = generations
                .get(generation_id)
                .is_some_and(|c| Arc::ptr_eq(c, channel))
                && channel.ring.lock().receivers == 0
                && channel.follows.load(Ordering::SeqCst) == follows;
            if !idle {
                return;
            }
            generations.remove(generation_id);
            // Under the lock: a follow that comes next subscribes after this.
            if channel.subscribed.initialized() {
                self.store.unsubscribe_generation(generation_id);
            }
        }
        self.count_subscriptions();
    }

    /// The subscription to one generation's channel was lost and is back: its
    /// streams re-read the history after their last event.
    pub(super) fn resync_channel(&self, channel: &str) {
        let Some(generation_id) = self.store.keys().generation_of_channel(channel) else {
            return;
        };
        let channel = self.generations.lock().get(generation_id).cloned();
        if let Some(channel) = channel {
            channel.send(HubEvent::Resync);
        }
    }

    pub(super) fn dispatch_event(&self, payload: &str) {
        let Ok(published) = serde_json::from_str::<PublishedEvent>(payload) else {
            tracing::warn!("ignoring an unreadable message on the events channel");
            return;
        };
        let channel = self
            .generations
            .lock()
            .get(&published.generation_id)
            .cloned();
        if let Some(channel) = channel {
            let data = published.data.get();
            // Parsed once here for every stream of the process, and only when the
            // publisher predates the status in the message.
            let event = match published.status {
                Some(status) => StreamEvent {
                    id: published.id,
                    status: Some(status),
                    data: data.into(),
                },
                None => StreamEvent::from_history(published.id, data.to_owned()),
            };
            channel.send(HubEvent::Event(Arc::new(event)));
        }
    }

    pub(super) fn dispatch_notice(&self, payload: &str) {
        match serde_json::from_str::<StreamNotice>(payload) {
            Ok(notice) => {
                let _ = self.control.send(Control::Notice(Arc::new(notice)));
            }
            Err(_) => tracing::warn!("ignoring an unreadable stream notice"),
        }
    }

    pub(super) fn resync_all(&self) {
        let channels: Vec<_> = self.generations.lock().values().cloned().collect();
        for channel in channels {
            channel.send(HubEvent::Resync);
        }
        let _ = self.control.send(Control::Recheck);
    }
}

/// Tells the streams of revoked sessions and users, every stream to recheck while
/// the revocation view is not fresh, and every stream when a session of one of them
/// reaches its absolute end, for as long as the hub lives.
pub(super) async fn forward_revocations(
    hub: Weak<Inner>,
    mut notices: broadcast::Receiver<StreamNotice>,
    store: Store,
    session_ends: Arc<SessionEnds>,
) {
    let mut recheck = tokio::time::interval(STALE_RECHECK_INTERVAL);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Wall-clock ends as a timer: recomputed on every turn (at least every
        // `STALE_RECHECK_INTERVAL`), so a clock that steps is followed.
        let next_end = session_ends.next().map(|end| {
            let left = u64::try_from(end.saturating_sub(UnixTime::now().millis())).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(left).min(LONGEST_WAIT)
        });
        let control = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(notice) => Some(Control::Notice(Arc::new(notice))),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Control::Recheck),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = recheck.tick() => (!store.revocations_fresh()).then_some(Control::Recheck),
            () = session_ends.sooner.notified() => None,
            () = sleep_until_some(next_end) => {
                session_ends.pass(UnixTime::now().millis()).then_some(Control::SessionsEnded)
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        if let Some(control) = control {
            // No receivers is fine: no stream is open.
            let _ = hub.control.send(control);
        }
    }
}

/// The longest the session-end timer sleeps before it looks again (a later end, or
/// one decades away, is simply waited for in steps).
pub(super) const LONGEST_WAIT: Duration = Duration::from_secs(3600);

pub(super) async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Moves messages from the store subscription to the streams, for as long as the hub lives.
pub(super) async fn pump(
    hub: Weak<Inner>,
    mut messages: broadcast::Receiver<PubSubMessage>,
    store: Store,
) {
    let events_channel = store.keys().events_channel();
    let notices_channel = store.keys().notices_channel();
    loop {
        let message = messages.recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match message {
            Ok(PubSubMessage::Message { channel, payload }) => {
                if *channel == *notices_channel {
                    hub.dispatch_notice(&payload);
                } else if *channel == *events_channel {
                    if hub.legacy {
                        hub.dispatch_event(&payload);
                    }
                } else if store.keys().generation_of_channel(&channel).is_some() {
                    hub.dispatch_event(&payload);
                }
            }
            Ok(PubSubMessage::Reconnected) => hub.resync_all(),
            Ok(PubSubMessage::Resubscribed { channel }) => hub.resync_channel(&channel),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "the stream hub fell behind the store; resynchronising"
                );
                hub.resync_all();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
