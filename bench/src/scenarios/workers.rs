//! The workers of the request scenarios: one operation per step.

use std::sync::Arc;

use authstream_client::{AuthClient, Clients};
use authstream_proto::GenerationId;
use authstream_proto::auth::{RefreshBody, TokenBody};
use authstream_proto::stream::{GenerationStatus, NewEventBody};

use super::calls::{credentials, failed, mint_and_open};
use crate::load::Worker;

pub struct Healthz(pub AuthClient);

impl Worker for Healthz {
    async fn step(&mut self) -> Result<(), String> {
        self.0
            .healthz()
            .checked()
            .await
            .map(drop)
            .map_err(failed("GET /healthz"))
    }
}

pub struct Validate {
    pub auth: AuthClient,
    pub tokens: Arc<Vec<String>>,
    pub next: usize,
}

impl Worker for Validate {
    async fn step(&mut self) -> Result<(), String> {
        self.next = (self.next + 1) % self.tokens.len();
        self.auth
            .validate(None)
            .bearer(&self.tokens[self.next])
            .checked()
            .await
            .map(drop)
            .map_err(failed("GET /auth/validate"))
    }
}

/// A verification in this process: no request.
pub struct Verify {
    pub verifier: authstream_verify::Verifier,
    pub tokens: Arc<Vec<String>>,
    pub next: usize,
}

impl Worker for Verify {
    async fn step(&mut self) -> Result<(), String> {
        self.next = (self.next + 1) % self.tokens.len();
        let verified = self.verifier.verify(&self.tokens[self.next]).await;
        // A verification never waits: let the tool's other tasks (its CPU sampling) run.
        tokio::task::yield_now().await;
        verified
            .map(drop)
            .map_err(|e| format!("verify {}", e.code()))
    }
}

pub struct Login {
    pub auth: AuthClient,
    pub emails: Arc<Vec<String>>,
    pub next: usize,
}

impl Worker for Login {
    async fn step(&mut self) -> Result<(), String> {
        self.next = (self.next + 1) % self.emails.len();
        self.auth
            .login(&credentials(&self.emails[self.next]))
            .await
            .map(drop)
            .map_err(failed("POST /auth/login"))
    }
}

pub struct Refresh {
    pub auth: AuthClient,
    pub refresh_token: String,
}

impl Worker for Refresh {
    async fn step(&mut self) -> Result<(), String> {
        let body = RefreshBody {
            refresh_token: self.refresh_token.clone(),
        };
        let pair = self
            .auth
            .refresh(&body)
            .await
            .map_err(failed("POST /auth/refresh"))?;
        self.refresh_token = pair.refresh_token;
        Ok(())
    }
}

pub struct MintOpen {
    pub clients: Clients,
    pub access: String,
    pub generation: GenerationId,
}

impl Worker for MintOpen {
    async fn step(&mut self) -> Result<(), String> {
        // Dropping the reader closes the connection.
        mint_and_open(&self.clients, &self.access, &self.generation)
            .await
            .map(drop)
    }
}

/// An event published to the connection's own generation (never a terminal one).
pub struct Publish {
    pub clients: Clients,
    pub service: String,
    pub generation: GenerationId,
}

impl Worker for Publish {
    async fn step(&mut self) -> Result<(), String> {
        let event = NewEventBody {
            stage: Some("bench".to_owned()),
            progress: Some(0.5),
            message: Some("bench".to_owned()),
            ..NewEventBody::new(GenerationStatus::Processing)
        };
        self.clients
            .stream
            .publish(&self.generation, &event)
            .bearer(&self.service)
            .checked()
            .await
            .map(drop)
            .map_err(failed("POST events"))
    }
}

/// A revocation: the same access token each time, each time written (and, on a
/// Cluster with replicas, confirmed) again.
pub struct Revoke {
    pub auth: AuthClient,
    pub access_token: String,
}

impl Worker for Revoke {
    async fn step(&mut self) -> Result<(), String> {
        let body = TokenBody {
            token: Some(self.access_token.clone()),
        };
        self.auth
            .revoke(&body)
            .checked()
            .await
            .map(drop)
            .map_err(failed("POST /auth/revoke"))
    }
}
