//! One stream's loop, its memory and its ends.
#![allow(clippy::unwrap_used)]

use super::*;

/// Every idle stream holds the future of `next` for as long as it waits: the rare
/// store calls inside it are boxed, or each stream would carry kilobytes for them.
#[tokio::test]
async fn an_idle_stream_waits_in_a_small_future() {
    let store = Store::memory("feed-size");
    let hub = crate::hub::Hub::new(store.clone(), 8);
    let follow = hub.follow("g").await.unwrap();
    let mut feed = Feed::new(FeedParts {
        generation_id: "g".into(),
        holder: Holder {
            user_id: "u".into(),
            session_id: "s".into(),
            issued_at_secs: 0,
            session_ends_at_ms: i64::MAX,
        },
        store,
        follow,
        max_queued: 8,
        shutdown: watch::channel(false).1,
        reset: false,
        history: Vec::new(),
        resume_from: None,
        transport: "sse",
    });
    let waiting = std::mem::size_of_val(&feed.next());
    assert!(
        waiting <= 1024,
        "the future of Feed::next is {waiting} bytes"
    );
}
