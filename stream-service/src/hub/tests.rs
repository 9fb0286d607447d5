//! Tests of the hub: fan-out, lag, linger, legacy delivery, revocation forwarding.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use authstream_store::events::GenerationStatus;

use super::*;

fn event(n: u64) -> HubEvent {
    HubEvent::Event(Arc::new(StreamEvent {
        id: format!("{n}-0"),
        status: Some(GenerationStatus::Processing),
        data: "{}".into(),
    }))
}

fn id(event: HubEvent) -> String {
    match event {
        HubEvent::Event(e) => e.id.clone(),
        HubEvent::Resync => "resync".to_owned(),
    }
}

fn kept(channel: &Channel) -> usize {
    channel.ring.lock().slots.len()
}

#[test]
fn every_follower_gets_each_event_once_and_it_goes_when_all_took_it() {
    let channel = Arc::new(Channel::new(10));
    channel.send(event(0)); // nobody follows: not kept
    assert_eq!(kept(&channel), 0);
    let (mut a, mut b) = (
        Events::subscribe(channel.clone()),
        Events::subscribe(channel.clone()),
    );
    channel.send(event(1));
    channel.send(event(2));
    assert_eq!((a.queued(), b.queued()), (2, 2));
    let mut got_a = Vec::new();
    while let Some(e) = Events::try_recv(&a.channel, &mut a.next).unwrap() {
        got_a.push(id(e));
    }
    assert_eq!(got_a, ["1-0", "2-0"]);
    assert_eq!(kept(&channel), 2, "b has not taken them");
    let first = Events::try_recv(&b.channel, &mut b.next).unwrap().unwrap();
    assert_eq!(id(first), "1-0");
    assert_eq!(kept(&channel), 1);
    // A follower joining now starts with what comes next.
    let mut c = Events::subscribe(channel.clone());
    assert_eq!(c.queued(), 0);
    channel.send(event(3));
    assert_eq!(
        id(Events::try_recv(&c.channel, &mut c.next).unwrap().unwrap()),
        "3-0"
    );
    drop(b);
    drop(a);
    assert_eq!(kept(&channel), 0, "nobody else waits for them");
}

#[test]
fn a_follower_behind_by_more_than_is_kept_lags_alone() {
    let channel = Arc::new(Channel::new(3));
    let (mut slow, mut fast) = (
        Events::subscribe(channel.clone()),
        Events::subscribe(channel.clone()),
    );
    for n in 0..5 {
        channel.send(event(n));
        assert_eq!(
            id(Events::try_recv(&fast.channel, &mut fast.next)
                .unwrap()
                .unwrap()),
            format!("{n}-0")
        );
    }
    assert_eq!(kept(&channel), 3, "at most max_kept");
    assert_eq!(slow.queued(), 3);
    assert!(matches!(
        Events::try_recv(&slow.channel, &mut slow.next),
        Err(Lagged)
    ));
    assert_eq!(kept(&channel), 0, "the lagged one gave up its share");
    drop(slow);
    channel.send(event(5));
    assert_eq!(kept(&channel), 1);
    assert_eq!(channel.ring.lock().receivers, 1);
}

#[test]
fn an_event_not_newer_than_the_last_one_is_dropped() {
    // While upgrading, each event comes twice (its generation's channel and the
    // old one), in either order.
    let channel = Arc::new(Channel::new(10));
    let mut follower = Events::subscribe(channel.clone());
    for n in [1, 1, 2, 1, 3, 2, 3] {
        channel.send(event(n));
    }
    channel.send(HubEvent::Resync);
    let mut got = Vec::new();
    while let Some(e) = Events::try_recv(&follower.channel, &mut follower.next).unwrap() {
        got.push(id(e));
    }
    assert_eq!(got, ["1-0", "2-0", "3-0", "resync"]);
}

/// A publisher of the release before sends on the one old channel only: heard
/// while `STREAM_LEGACY_FANOUT` is on, ignored once it is off; the generation's
/// own channel is heard either way, and a copy on both is one event.
#[tokio::test]
async fn the_old_channel_is_heard_only_while_upgrading() {
    for legacy in [true, false] {
        let store = Store::memory("t").with_legacy_fanout(legacy);
        let hub = Hub::new(store.clone(), 8);
        let mut follow = hub.follow("g").await.unwrap();
        let message = |n: u64| format!(r#"{{"g":"g","id":"{n}-0","s":"processing","d":{{}}}}"#);
        let old = store.keys().events_channel();
        let own = store.keys().generation_channel("g");
        store.publish(&old, &message(1)).await.unwrap();
        store.publish(&own, &message(2)).await.unwrap();
        store.publish(&old, &message(2)).await.unwrap();
        store.publish(&own, &message(3)).await.unwrap();
        let mut got = Vec::new();
        while got.len() < if legacy { 3 } else { 2 } {
            let event = tokio::time::timeout(Duration::from_secs(2), follow.events.recv())
                .await
                .unwrap()
                .unwrap();
            got.push(id(event));
        }
        let want: &[&str] = if legacy {
            &["1-0", "2-0", "3-0"]
        } else {
            &["2-0", "3-0"]
        };
        assert_eq!(got, want, "legacy {legacy}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(follow.events.queued(), 0, "nothing doubled");
    }
}

#[tokio::test]
async fn recv_waits_for_the_next_event() {
    let channel = Arc::new(Channel::new(4));
    let mut follower = Events::subscribe(channel.clone());
    let waiting = tokio::spawn(async move { follower.recv().await.map(id) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    channel.send(event(7));
    assert_eq!(waiting.await.unwrap(), Ok("7-0".to_owned()));
    assert_eq!(kept(&channel), 0);
}
