//! Building the auth service: its state, its routes, and a server on its own listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use authstream_security::keys::KeySet;
use authstream_store::Store;
use authstream_web::http;
use authstream_web::openapi::ApiDocument;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::Settings;
pub use crate::state::AuthState;

/// Request bodies of the auth service are small JSON documents.
pub const JSON_LIMIT: usize = 64 * 1024;

/// What the auth handlers read from the app data: the state and its parts.
pub fn app_data(cfg: &mut ServiceConfig, state: &web::Data<AuthState>) {
    cfg.app_data(state.clone())
        .app_data(web::Data::new(state.validator.clone()))
        .app_data(web::Data::new(state.limiter.clone()))
        .app_data(web::Data::new(state.store.clone()))
        .app_data(web::Data::new(state.settings.common.clone()));
}

/// The state, the document and every route of the auth service's server
/// (`routes::endpoints`).
pub fn routes(cfg: &mut ServiceConfig, state: &web::Data<AuthState>, document: &ApiDocument) {
    http::extractor_config(cfg, JSON_LIMIT);
    cfg.app_data(web::Data::new(document.clone()));
    app_data(cfg, state);
    crate::routes::endpoints(cfg, state.settings.common.demo);
}

/// The state and the routes of `register` on a plain actix app, for a server with no
/// operations routes and no document of its own (the verifier's tests).
pub fn mount(cfg: &mut web::ServiceConfig, state: &web::Data<AuthState>) {
    let mut cfg = ServiceConfig::new(cfg);
    app_data(&mut cfg, state);
    crate::routes::register(&mut cfg, state.settings.common.demo);
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AuthState>,
}

impl Application {
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = settings.common.store()?;
        let keys = settings.common.signing_keys()?;
        let listener = TcpListener::bind(&settings.bind)?;
        Self::with_listener(settings, store, keys, listener)
    }

    /// For tests: a given store (fresh key prefix) and listener (port 0).
    pub fn with_listener(
        settings: Settings,
        store: Store,
        keys: Arc<KeySet>,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let cors_origins = settings.common.cors_origins.clone();
        let document = ApiDocument::new(&crate::openapi::document(settings.common.demo))?;
        // The store's background work (the revocation tail, the statistics flush).
        store.start_background();
        let state = web::Data::new(AuthState::new(settings, store, keys)?);
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(http::cors(&cors_origins))
                .wrap(middleware::from_fn(http::observe))
                .into_utoipa_app()
                .configure(|cfg| routes(cfg, &app_state, &document))
                .default_service(web::to(http::not_found))
                .into_app()
        })
        .listen(listener)?
        // Signals are handled in `run_until_stopped`: revocation feeds are told to go first.
        .disable_signals()
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state of the running service (tests stop its feeds with `shutdown`).
    pub fn state(&self) -> web::Data<AuthState> {
        self.state.clone()
    }

    /// Runs until SIGTERM or Ctrl-C: stops accepting, ends open revocation feeds,
    /// finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let state = self.state.clone();
        let signals = tokio::spawn(async move {
            authstream_runtime::shutdown::signal().await;
            tracing::info!("shutdown signal received: ending revocation feeds and stopping");
            let stopping = handle.stop(true);
            state.shutdown();
            stopping.await;
        });
        let result = self.server.await;
        signals.abort();
        result
    }
}
