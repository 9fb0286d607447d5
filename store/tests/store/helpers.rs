//! What several test modules need: key names and pub/sub waits. The JWT fixture is
//! the test kit's (`authstream_testkit::jwt`).

use std::time::Duration;

use authstream_store::{PubSubMessage, Store};
use tokio::sync::broadcast;

pub use authstream_testkit::jwt::*;

/// A key under the store's prefix, so tests never see each other's keys.
pub fn key(store: &Store, name: &str) -> String {
    format!("{}:{name}", store.keys().prefix())
}

/// The payload of the next message on `channel`, skipping others; panics after 3 s.
pub async fn next_message(rx: &mut broadcast::Receiver<PubSubMessage>, channel: &str) -> String {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(PubSubMessage::Message {
                    channel: c,
                    payload,
                }) if &*c == channel => return payload.to_string(),
                Ok(_) => {}
                Err(e) => panic!("subscription ended: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), wait)
        .await
        .unwrap_or_else(|_| panic!("nothing on {channel} within 3 s"))
}
