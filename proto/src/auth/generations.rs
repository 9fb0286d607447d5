//! Generations as the auth service keeps them, and the single-use stream tokens
//! minted for them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::GenerationId;
use crate::stream::GenerationStatus;

/// A generation to create (`POST /generations`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewGeneration {
    /// Generated (UUID v4) when left out
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

/// `201` of `POST /generations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedGeneration {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    pub owner_id: String,
    pub status: GenerationStatus,
    /// Unix milliseconds
    pub created_at: i64,
}

/// A generation record (`GET /generations/{generation_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerationView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
    pub owner_id: String,
    /// `pending`, `processing`, `completed` or `failed`
    pub status: GenerationStatus,
    /// 0.0 to 1.0
    pub progress: f64,
    pub stage: Option<String>,
    /// Unix milliseconds
    pub created_at: i64,
    /// Unix milliseconds
    pub updated_at: i64,
}

impl GenerationView {
    /// The `201` answer of its creation.
    pub fn created(&self) -> CreatedGeneration {
        CreatedGeneration {
            generation_id: self.generation_id.clone(),
            owner_id: self.owner_id.clone(),
            status: self.status,
            created_at: self.created_at,
        }
    }
}

/// A single-use stream token (`Cache-Control: no-store`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTokenAnswer {
    /// 43 characters of URL-safe base64: pass it as `token` when opening the stream
    pub sse_token: String,
    /// Seconds
    pub expires_in: u64,
    /// Where to open the stream (`STREAM_PUBLIC_URL` prefix, or a path)
    pub stream_url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub generation_id: GenerationId,
}

impl fmt::Debug for StreamTokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTokenAnswer")
            .field("generation_id", &self.generation_id)
            .field("stream_url", &self.stream_url)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Stream-token statistics: counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTokenStats {
    pub active: u64,
    pub issued_total: u64,
    pub consumed_total: u64,
    pub rejected_total: u64,
}
