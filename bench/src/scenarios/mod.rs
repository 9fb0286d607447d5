//! The scenarios. Each returns one report; set-up (users, generations, streams) is
//! never measured.

mod calls;
mod fanout;
mod idle;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use authstream_client::Clients;
use authstream_proto::GenerationId;
use authstream_proto::auth::{NewGeneration, TokenPair};
use tokio::sync::OnceCell;

pub use self::calls::{PASSWORD, mint_and_open};
use self::calls::{credentials, failed};
use self::workers::{Healthz, Login, MintOpen, Publish, Refresh, Revoke, Validate, Verify};
use crate::load::{Watched, bounded, drive};
use crate::options::{Options, Scenario};
use crate::report::ScenarioReport;
use crate::server::Server;

/// Set-up requests in flight at once (registrations wait for Argon2id anyway).
const SETUP_CONCURRENCY: usize = 8;

/// A server and what was set up on it, shared by the scenarios run against it.
pub struct Target {
    pub server: Server,
    /// Both services, at the server's one base URL.
    pub clients: Clients,
    users: OnceCell<Vec<User>>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub email: String,
    pub tokens: TokenPair,
}

impl Target {
    pub fn new(server: Server) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            clients: Clients::single(http, &server.base_url),
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
                        let auth = self.clients.auth.clone();
                        let email = format!("bench-{}-{i}@example.com", &run[..12]);
                        async move {
                            let credentials = credentials(&email);
                            auth.register(&credentials)
                                .checked()
                                .await
                                .map_err(failed("POST /auth/register"))?;
                            let tokens = auth
                                .login(&credentials)
                                .await
                                .map_err(failed("POST /auth/login"))?;
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
) -> anyhow::Result<Vec<(GenerationId, String)>> {
    let users = target.users(options).await?;
    let jobs = (0..count)
        .map(|g| {
            let auth = target.clients.auth.clone();
            let access = users[g % users.len()].tokens.access_token.clone();
            async move {
                // A generated id: the server's.
                let created = auth
                    .create_generation(&NewGeneration::default())
                    .bearer(&access)
                    .await
                    .map_err(failed("POST /generations"))?;
                Ok::<_, String>((created.generation_id, access))
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
    let clients = &target.clients;
    let auth = &clients.auth;
    let n = options.connections;
    let (warmup, duration) = (options.warmup, options.duration);
    let watched = Watched {
        server: target.server.pid,
        redis: target.server.redis_pids.clone(),
    };
    let report = |unit: &str, sample| ScenarioReport::new(scenario.name(), unit, n, sample);
    Ok(match scenario {
        Scenario::Healthz => {
            let workers = (0..n).map(|_| Healthz(auth.clone())).collect();
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
                    auth: auth.clone(),
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
                    auth: auth.clone(),
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
                    let auth = auth.clone();
                    let email = users[i % users.len()].email.clone();
                    async move {
                        auth.login(&credentials(&email))
                            .await
                            .map_err(failed("POST /auth/login"))
                    }
                })
                .collect();
            let workers = bounded(SETUP_CONCURRENCY, jobs)
                .await
                .into_iter()
                .map(|pair| {
                    Ok(Refresh {
                        auth: auth.clone(),
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
                    clients: clients.clone(),
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
            let service = auth
                .service_token(&id, &secret)
                .await
                .map_err(failed("POST /auth/service-token"))
                .map_err(|e| anyhow!("service token: {e}"))?
                .access_token;
            let workers = create_generations(target, options, n)
                .await?
                .into_iter()
                .map(|(generation, _)| Publish {
                    clients: clients.clone(),
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
                    let auth = auth.clone();
                    let email = users[i % users.len()].email.clone();
                    async move {
                        auth.login(&credentials(&email))
                            .await
                            .map_err(failed("POST /auth/login"))
                    }
                })
                .collect();
            let workers = bounded(SETUP_CONCURRENCY, jobs)
                .await
                .into_iter()
                .map(|pair| {
                    Ok(Revoke {
                        auth: auth.clone(),
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
