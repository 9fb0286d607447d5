//! The demo routes: a simulated generation, and dropping a session's streams.

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::stream::GenerationStatus;

/// How the demo's simulated generation runs (`POST .../simulate`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `completed` or `failed`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// `202` of the demo's simulate route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimulationStarted {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    /// How many events will be published
    pub events: u64,
    pub duration_ms: u64,
    /// `completed` or `failed`
    pub outcome: GenerationStatus,
}

/// `202` of the demo's disconnect route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisconnectAnnounced {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
}
