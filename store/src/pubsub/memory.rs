//! Pub/sub in memory: one broadcast, in this process only.

use tokio::sync::broadcast;

use crate::memory::MemoryStore;
use crate::{PubSubMessage, StoreResult};

impl MemoryStore {
    pub(crate) async fn publish(&self, channel: &str, payload: &str) -> StoreResult<()> {
        // No receivers is fine: nobody is listening right now.
        let _ = self.sender.send(PubSubMessage::Message {
            channel: channel.into(),
            payload: payload.into(),
        });
        Ok(())
    }

    pub(crate) async fn subscribe(&self) -> StoreResult<broadcast::Receiver<PubSubMessage>> {
        Ok(self.sender.subscribe())
    }
}
