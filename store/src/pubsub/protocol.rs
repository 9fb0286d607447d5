//! What the parts of the sharded subscriber tell each other: the handle's requests
//! to the manager task, the node connections' events back to it, and where a node is
//! and how to log in. Its own file so that the handle, the manager and the node
//! connections import it rather than each other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::canary::CanaryName;
use super::resp::SlotMap;
use crate::StoreResult;

/// How often an idle node connection is pinged.
pub(super) const PING_EVERY: Duration = Duration::from_secs(5);

/// Where a node is and how to log in.
#[derive(Clone, Debug)]
pub(super) struct Login {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `rediss://`: TLS to every node.
    pub tls: bool,
}

/// Finds which node serves each slot: `None` means the topology is unknown now.
pub(super) type Locate =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, StoreResult<SlotMap>> + Send + Sync>;

pub(super) enum Request {
    Subscribe {
        channel: Arc<str>,
        slot: u16,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        channel: Arc<str>,
    },
    /// Keep a canary subscribed on every master (`name(k)`: the channel of hash tag k).
    Canary {
        name: CanaryName,
    },
}

/// What a node connection reports to the manager.
pub(super) enum NodeEvent {
    Subscribed(String, Arc<str>),
    Unsubscribed(String, Arc<str>),
    Moved(String, u16, String),
    Refused(String, String),
    /// The connection is gone (or never came): everything on it must be placed again.
    Down(String),
}
