//! `authstream`: the auth service and the stream service in ONE process on ONE port,
//! on the in-memory store unless `REDIS_URL` is set. The embedded default for trying
//! it out and for development.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use authstream_runtime::config::{self, ConfigError, Env};
use authstream_security::jwt::KeySource;
use authstream_web::http;
use authstream_web::openapi::ApiDocument;
use stream_service::StreamState;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

/// The environment with the defaults of the single process: demo mode on, one bind
/// address for both services (the stream routes verify with the same process's keys:
/// no `AUTH_URL`).
pub struct EmbeddedEnv<'a> {
    env: &'a dyn Env,
    defaults: HashMap<&'static str, String>,
}

impl<'a> EmbeddedEnv<'a> {
    pub fn new(env: &'a dyn Env) -> Result<Self, ConfigError> {
        let bind = config::bind_addr(env, "AUTHSTREAM_BIND", "0.0.0.0:8000")?;
        let defaults = HashMap::from([
            ("AUTHSTREAM_BIND", bind.clone()),
            ("AUTH_BIND", bind.clone()),
            ("STREAM_BIND", bind.clone()),
            ("DEMO", "true".to_owned()),
        ]);
        Ok(Self { env, defaults })
    }
}

impl Env for EmbeddedEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        let own = self
            .defaults
            .get(name)
            .filter(|_| matches!(name, "AUTH_BIND" | "STREAM_BIND" | "AUTHSTREAM_BIND"));
        own.cloned()
            .or_else(|| self.env.var(name))
            .or_else(|| self.defaults.get(name).cloned())
    }
}

/// The one document of both services' routes (the demo routes when they are on),
/// built from the same registration as the server (`endpoints`).
pub fn document(demo: bool) -> utoipa::openapi::OpenApi {
    let mut base = auth_service::openapi::base(demo);
    base.merge(stream_service::routes::openapi::base());
    base.info.title = "authstream".to_owned();
    base.info.description = Some(
        "The auth service and the stream service in one process: users, sessions, JWTs, \
         stream tokens, and live progress streams of generations. Every error is \
         `application/problem+json` with a stable `code`."
            .to_owned(),
    );
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(base)
        .configure(|cfg| endpoints(cfg, demo))
        .split_for_parts();
    doc
}

/// Registers every route of the one process: the auth routes (and the demo routes when
/// `demo` is on), the stream routes, then health, metrics, the API document and Swagger
/// UI. Registering a handler here is what documents it: the server and `document` both
/// call this.
pub fn endpoints(cfg: &mut ServiceConfig, demo: bool) {
    auth_service::routes::register(cfg, demo);
    stream_service::routes::configure(cfg);
    http::operations(cfg);
}

/// The state of both services, the document and every route of the one process
/// (`endpoints`).
pub fn routes(
    cfg: &mut ServiceConfig,
    auth: &web::Data<auth_service::AuthState>,
    stream: &web::Data<StreamState>,
    document: &ApiDocument,
) {
    let json_limit =
        auth_service::startup::JSON_LIMIT.max(stream_service::startup::MAX_EVENT_BYTES);
    http::extractor_config(cfg, json_limit);
    cfg.app_data(web::Data::new(document.clone()));
    auth_service::startup::app_data(cfg, auth);
    stream_service::startup::app_data(cfg, stream);
    endpoints(cfg, auth.settings.common.demo);
}

pub struct Application {
    port: u16,
    server: Server,
    auth: web::Data<auth_service::AuthState>,
    stream: web::Data<StreamState>,
    store_kind: &'static str,
    ephemeral_key: bool,
    demo: bool,
}

impl Application {
    pub fn build(env: &dyn Env) -> anyhow::Result<Self> {
        let env = EmbeddedEnv::new(env)?;
        let auth = auth_service::config::Settings::from_env(&env)?;
        let stream = stream_service::config::Settings::from_env(&env)?;
        let listener = TcpListener::bind(&auth.bind)?;
        Self::with_listener(auth, stream, listener)
    }

    pub fn with_listener(
        auth: auth_service::config::Settings,
        stream: stream_service::config::Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        // One store and one key set for both halves.
        let store = auth.common.store()?;
        // The store's background work (the revocation tail, the statistics flush).
        store.start_background();
        let keys = auth.common.signing_keys()?;
        let (store_kind, ephemeral_key, demo) =
            (store.kind(), keys.is_ephemeral(), auth.common.demo);
        let cors_origins = auth.common.cors_origins.clone();
        let auth_state = web::Data::new(auth_service::AuthState::new(
            auth,
            store.clone(),
            keys.clone(),
        )?);
        let send_timeout = stream.send_timeout;
        let stream_state = web::Data::new(StreamState::new(stream, store, KeySource::Local(keys))?);
        let stream = stream_state.clone();
        let auth_handle = auth_state.clone();
        let document = ApiDocument::new(&document(demo))?;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(http::cors(&cors_origins))
                .wrap(middleware::from_fn(http::observe))
                .into_utoipa_app()
                .configure(|cfg| routes(cfg, &auth_state, &stream_state, &document))
                .default_service(web::to(http::not_found))
                .into_app()
        })
        // Streams of the one process are cut from clients that stopped reading, too.
        .on_connect(stream_service::send_timeout(send_timeout))
        // A stream client never half-closes on purpose: its EOF means it is gone, so the
        // stream ends at once instead of at its next write (the next keep-alive).
        .h1_allow_half_closed(false)
        .listen(listener)?
        // Signals are handled in `run_until_stopped`: streams are told to go first.
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            auth: auth_handle,
            stream,
            store_kind,
            ephemeral_key,
            demo,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What is running where, said loudly.
    pub fn banner(&self) -> String {
        let base = format!("http://localhost:{}", self.port);
        let mut lines = vec![
            String::new(),
            "  authstream: auth-service and stream-service in one process".to_owned(),
            format!("  listening on {base} (every route of both services)"),
        ];
        if self.demo {
            lines.push(format!("  demo page:   {base}/"));
        }
        if self.store_kind == "memory" {
            lines.push(
                "  store:       IN MEMORY: all users, sessions and events are lost on exit"
                    .to_owned(),
            );
        } else if self.store_kind == "redis-cluster" {
            lines.push("  store:       Redis Cluster (REDIS_CLUSTER_NODES)".to_owned());
        } else {
            lines.push("  store:       Redis (REDIS_URL)".to_owned());
        }
        if self.ephemeral_key {
            lines.push("  signing key: ephemeral: tokens do not survive a restart".to_owned());
        }
        lines.push(
            "  real stack:  `cargo run -p auth-service` and `cargo run -p stream-service` on Redis: \
             README.md#running-the-real-stack"
                .to_owned(),
        );
        lines.push(String::new());
        lines.join("\n")
    }

    /// Runs until SIGTERM or Ctrl-C: stops accepting, ends open streams (clients
    /// resume elsewhere by Last-Event-ID), finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let stream = self.stream.clone();
        let auth = self.auth.clone();
        let signals = tokio::spawn(async move {
            authstream_runtime::shutdown::signal().await;
            tracing::info!("shutdown signal received: ending open streams and stopping");
            let stopping = handle.stop(true);
            stream.shutdown();
            auth.shutdown();
            tokio::time::timeout(Duration::from_secs(15), stopping)
                .await
                .ok();
        });
        let result = self.server.await;
        signals.abort();
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_defaults_are_one_public_port_and_demo_mode() {
        let empty = env(&[]);
        let embedded = EmbeddedEnv::new(&empty).unwrap();
        for name in ["AUTHSTREAM_BIND", "AUTH_BIND", "STREAM_BIND"] {
            assert_eq!(
                embedded.var(name).as_deref(),
                Some("0.0.0.0:8000"),
                "{name}"
            );
        }
        assert_eq!(embedded.var("DEMO").as_deref(), Some("true"));
        let auth = auth_service::config::Settings::from_env(&embedded).unwrap();
        let stream = stream_service::config::Settings::from_env(&embedded).unwrap();
        assert_eq!(
            (auth.bind.as_str(), stream.bind.as_str()),
            ("0.0.0.0:8000", "0.0.0.0:8000")
        );
        assert!(auth.common.demo);
        assert_eq!(auth.common.redis_url, None, "the memory store");
    }

    #[test]
    fn the_one_bind_wins_over_the_services_own_and_demo_can_be_turned_off() {
        let vars = env(&[
            ("AUTHSTREAM_BIND", "127.0.0.1:9000"),
            ("AUTH_BIND", "127.0.0.1:8081"),
            ("STREAM_BIND", "127.0.0.1:8082"),
            ("DEMO", "false"),
        ]);
        let embedded = EmbeddedEnv::new(&vars).unwrap();
        for name in ["AUTHSTREAM_BIND", "AUTH_BIND", "STREAM_BIND"] {
            assert_eq!(
                embedded.var(name).as_deref(),
                Some("127.0.0.1:9000"),
                "{name}"
            );
        }
        assert_eq!(embedded.var("DEMO").as_deref(), Some("false"));
        let auth = auth_service::config::Settings::from_env(&embedded).unwrap();
        assert!(!auth.common.demo);
        assert_eq!(auth.public_url, "http://127.0.0.1:9000", "AUTH_PUBLIC_URL");
    }
}
