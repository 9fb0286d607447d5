//! The scenarios. Each returns one report; set-up (users, generations, streams) is
//! never measured.

mod fanout;
mod idle;

use std::sync::Arc;

use anyhow::anyhow;
use authstream_proto::stream::{GenerationStatus, NewEventBody};
use tokio::sync::OnceCell;

use crate::api::{Api, Pair};
use crate::load::{Watched, Worker, bounded, drive};
use crate::options::{Options, Scenario};
use crate::report::ScenarioReport;
use crate::server::Server;

/// Set-up requests in flight at once (registrations wait for Argon2id anyway).
const SETUP_CONCURRENCY: usize = 8;

/// A server and what was set up on it, shared by the scenarios run against it.
pub struct Target {
    pub server: Server,
    pub api: Api,
    users: OnceCell<Vec<User>>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub tokens: Pair,
}

impl Target {
    pub fn new(server: Server) -> anyhow::Result<Self> {
        Ok(Self {
            api: Api::new(&server.base_url)?,
            server,
            users: OnceCell::new(),
        })
    }

    /// `options.users` users, registered and signed in once per target.
    async fn users(&self, options: &Options) -> anyhow::Result<&[User]> {
        let users = self
            .users
            .get_or_try_init(|| async {
                let run = uuid::Uuid::new_v4().simple().to_string();
                let jobs = (0..options.users)
                    .map(|i| {
                        let api = self.api.clone();
                        let email = format!("bench-{}-{i}@example.com", &run[..12]);
                        async move {
                            api.register(&email).await?;
                            let tokens = api.login(&email).await?;
                            Ok::<_, String>(User { email, tokens })
                        }
                    })
                    .collect();
                bounded(SETUP_CONCURRENCY, jobs)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| anyhow!("setting up users: {e}"))
            })
            .await?;
        Ok(users)
    }
}

/// `count` generations, each owned by one of the users in turn: (id, owner's access token).
async fn create_generations(
    target: &Target,
    options: &Options,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let users = target.users(options).await?;
    let jobs = (0..count)
        .map(|g| {
            let api = target.api.clone();
            let access = users[g % users.len()].tokens.access_token.clone();
            async move {
                let id = api.create_generation(&access).await?;
                Ok::<_, String>((id, access))
            }
        })
        .collect();
    bounded(SETUP_CONCURRENCY * 4, jobs)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| anyhow!("setting up generations: {e}"))
}

pub async fn run(
    scenario: Scenario,
    target: &Target,
    options: &Options,
) -> anyhow::Result<ScenarioReport> {
    let api = &target.api;
    let n = options.connections;
    let (warmup, duration) = (options.warmup, options.duration);
    let watched = Watched {
        server: target.server.pid,
        redis: target.server.redis_pids.clone(),
    };
    let report = |unit: &str, sample| ScenarioReport::new(scenario.name(), unit, n, sample);
    Ok(match scenario {
        Scenario::Healthz => {
            let workers = (0..n).map(|_| Healthz(api.clone())).collect();
            report("request", drive(workers, warmup, duration, watched).await)
        }
        Scenario::Validate | Scenario::ValidateHs256 => {
            let tokens: Arc<Vec<String>> = Arc::new(
                target
                    .users(options)
                    .await?
                    .iter()
                    .map(|u| u.tokens.access_token.clone())
                    .collect(),
            );
            let workers = (0..n)
                .map(|i| Validate {
                    api: api.clone(),
                    tokens: tokens.clone(),
                    next: i,
                })
                .collect();
            let mut r = report("request", drive(workers, warmup, duration, watched).await);
            r.detail("users", tokens.len());
            r
        }
        Scenario::Verify => {
            let (id, secret) =
                target.server.service_client.clone().ok_or_else(|| {
                    anyhow!("verify needs --service-client with revocations:read")
                })?;
            let verifier = authstream_verify::Verifier::builder(&target.server.base_url)
                .service_credentials(id, secret)
                .build()
                .await
                .map_err(|e| anyhow!("verify: {e}"))?;
            let tokens: Arc<Vec<String>> = Arc::new(
                target
                    .users(options)
                    .await?
                    .iter()
                    .map(|u| u.tokens.access_token.clone())
                    .collect(),
            );
            let workers = (0..n)
                .map(|i| Verify {
                    verifier: verifier.clone(),
                    tokens: tokens.clone(),
                    next: i,
                })
                .collect();
            let mut r = report(
                "verification",
                drive(workers, warmup, duration, watched).await,
            );
            r.detail("users", tokens.len());
            r.detail("in_process", true);
            r
        }
        Scenario::Login => {
            let emails: Arc<Vec<String>> = Arc::new(
                target
                    .users(options)
                    .await?
                    .iter()
                    .map(|u| u.email.clone())
                    .collect(),
            );
            let workers = (0..n)
                .map(|i| Login {
                    api: api.clone(),
                    emails: emails.clone(),
                    next: i,
                })
                .collect();
            report("request", drive(workers, warmup, duration, watched).await)
        }
        Scenario::Refresh => {
            // A session per connection: rotation is sequential within a session.
            let users = target.users(options).await?;
            let jobs = (0..n)
                .map(|i| {
                    let api = api.clone();
                    let email = users[i % users.len()].email.clone();
                    async move { api.login(&email).await }
                })
                .collect();
            let workers = bounded(SETUP_CONCURRENCY, jobs)
                .await
                .into_iter()
                .map(|pair| {
                    Ok(Refresh {
                        api: api.clone(),
                        refresh_token: pair?.refresh_token,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| anyhow!("setting up sessions: {e}"))?;
            report("request", drive(workers, warmup, duration, watched).await)
        }
        Scenario::MintOpen => {
            let workers = create_generations(target, options, n)
                .await?
                .into_iter()
                .map(|(generation, access)| MintOpen {
                    api: api.clone(),
                    access,
                    generation,
                })
                .collect();
            report(
                "mint + open",
                drive(workers, warmup, duration, watched).await,
            )
        }
        Scenario::Publish => {
            let (id, secret) = target
                .server
                .service_client
                .clone()
                .ok_or_else(|| anyhow!("publish needs --service-client with events:publish"))?;
            let service = api
                .service_token(&id, &secret)
                .await
                .map_err(|e| anyhow!("service token: {e}"))?;
            let workers = create_generations(target, options, n)
                .await?
                .into_iter()
                .map(|(generation, _)| Publish {
                    api: api.clone(),
                    service: service.clone(),
                    generation,
                })
                .collect();
            report("request", drive(workers, warmup, duration, watched).await)
        }
        Scenario::Revoke => {
            // A session per connection, of the users in turn; each step revokes its
            // access token again (the session itself lives on: the other scenarios'
            // tokens are untouched).
            let users = target.users(options).await?;
            let jobs = (0..n)
                .map(|i| {
                    let api = api.clone();
                    let email = users[i % users.len()].email.clone();
                    async move { api.login(&email).await }
                })
                .collect();
            let workers = bounded(SETUP_CONCURRENCY, jobs)
                .await
                .into_iter()
                .map(|pair| {
                    Ok(Revoke {
                        api: api.clone(),
                        access_token: pair?.access_token,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| anyhow!("setting up sessions: {e}"))?;
            report("request", drive(workers, warmup, duration, watched).await)
        }
        Scenario::Fanout => fanout::run(target, options).await?,
        Scenario::Idle => idle::run(target, options).await?,
    })
}

struct Healthz(Api);

impl Worker for Healthz {
    async fn step(&mut self) -> Result<(), String> {
        self.0.healthz().await
    }
}

struct Validate {
    api: Api,
    tokens: Arc<Vec<String>>,
    next: usize,
}

impl Worker for Validate {
    async fn step(&mut self) -> Result<(), String> {
        self.next = (self.next + 1) % self.tokens.len();
        self.api.validate(&self.tokens[self.next]).await
    }
}

/// A verification in this process: no request.
struct Verify {
    verifier: authstream_verify::Verifier,
    tokens: Arc<Vec<String>>,
    next: usize,
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

struct Login {
    api: Api,
    emails: Arc<Vec<String>>,
    next: usize,
}

impl Worker for Login {
    async fn step(&mut self) -> Result<(), String> {
        self.next = (self.next + 1) % self.emails.len();
        self.api.login(&self.emails[self.next]).await.map(drop)
    }
}

struct Refresh {
    api: Api,
    refresh_token: String,
}

impl Worker for Refresh {
    async fn step(&mut self) -> Result<(), String> {
        let pair = self.api.refresh(&self.refresh_token).await?;
        self.refresh_token = pair.refresh_token;
        Ok(())
    }
}

struct MintOpen {
    api: Api,
    access: String,
    generation: String,
}

impl Worker for MintOpen {
    async fn step(&mut self) -> Result<(), String> {
        // Dropping the reader closes the connection.
        self.api
            .mint_and_open(&self.access, &self.generation)
            .await
            .map(drop)
    }
}

/// An event published to the connection's own generation (never a terminal one).
struct Publish {
    api: Api,
    service: String,
    generation: String,
}

impl Worker for Publish {
    async fn step(&mut self) -> Result<(), String> {
        let event = NewEventBody {
            stage: Some("bench".to_owned()),
            progress: Some(0.5),
            message: Some("bench".to_owned()),
            ..NewEventBody::new(GenerationStatus::Processing)
        };
        self.api
            .publish(&self.service, &self.generation, &event)
            .await
    }
}

/// A revocation: the same access token each time, each time written (and, on a
/// Cluster with replicas, confirmed) again.
struct Revoke {
    api: Api,
    access_token: String,
}

impl Worker for Revoke {
    async fn step(&mut self) -> Result<(), String> {
        self.api.revoke(&self.access_token).await
    }
}
