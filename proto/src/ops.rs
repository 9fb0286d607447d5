//! The bodies of the routes every server has: liveness and readiness.

use serde::{Deserialize, Serialize};

/// `GET /healthz`: the process is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`
    pub status: String,
}

impl Health {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}

/// Whether every store node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    /// Every node answers.
    Ready,
    /// A Cluster node does not answer; the others serve.
    Degraded,
}

/// One Cluster master (or the one Redis) in `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeReadiness {
    /// `host:port`, as the cluster names it
    pub node: String,
    pub up: bool,
    /// On a stream replica: its subscription to this node delivered the canary
    /// within the last 3 s
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivering: Option<bool>,
}

/// `GET /readyz`: the store answers (and, on a stream replica, delivers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// `ready`, or `degraded` when a Cluster node does not answer
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: ReadyStatus,
    /// `memory`, `redis` or `redis-cluster`
    pub store: String,
    /// Each node (on a Cluster, or a stream replica)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeReadiness>>,
}
