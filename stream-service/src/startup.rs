//! The application: state, routes, and a server that binds its own listener (so
//! tests can bind port 0) and shuts down on SIGTERM after telling streams to go.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use authstream_security::jwt::KeySource;
use authstream_store::Store;
use authstream_web::openapi::ApiDocument;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::config::Settings;
use crate::routes;

pub use crate::routes::events::MAX_EVENT_BYTES;
pub use crate::state::StreamState;

/// How long a graceful stop waits for in-flight requests once streams were told to go.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stream handlers read from the app data: the state and its parts. The
/// single-process binary adds it next to the auth service's.
pub fn app_data(cfg: &mut ServiceConfig, state: &web::Data<StreamState>) {
    cfg.app_data(state.clone())
        .app_data(web::Data::new(state.validator.clone()))
        .app_data(web::Data::new(state.limiter.clone()));
}

/// The state, the document and every route of the stream service's server
/// (`routes::endpoints`).
pub fn routes(cfg: &mut ServiceConfig, state: &web::Data<StreamState>, document: &ApiDocument) {
    authstream_web::http::extractor_config(cfg, MAX_EVENT_BYTES);
    cfg.app_data(web::Data::new(state.store.clone()))
        .app_data(web::Data::new(document.clone()));
    app_data(cfg, state);
    routes::endpoints(cfg);
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<StreamState>,
}

impl Application {
    /// The store and keys as configured.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = settings.common.store()?;
        if store.kind() == "memory" {
            tracing::warn!(
                "no REDIS_URL: events live in this process's memory only; \
                 do not run more than one replica like this"
            );
        }
        let keys = settings.key_source()?;
        Self::build_with(settings, store, keys)
    }

    /// With a given store and keys (tests use a fresh key prefix and local keys).
    pub fn build_with(settings: Settings, store: Store, keys: KeySource) -> anyhow::Result<Self> {
        // Installed before anything is counted, or early counts are lost.
        authstream_runtime::telemetry::metrics_handle();
        let listener = TcpListener::bind(&settings.bind)?;
        let port = listener.local_addr()?.port();
        let cors_origins = settings.common.cors_origins.clone();
        // The store's background work (the revocation tail, the statistics flush); the
        // hub's subscription starts with the first stream, once the store answers.
        store.start_background();
        let state = web::Data::new(StreamState::new(settings, store, keys)?);
        let document = ApiDocument::new(&routes::openapi::openapi())?;
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(authstream_web::http::cors(&cors_origins))
                .wrap(from_fn(authstream_web::http::observe))
                .into_utoipa_app()
                .configure(|cfg| self::routes(cfg, &app_state, &document))
                .default_service(web::to(authstream_web::http::not_found))
                .into_app()
        })
        .on_connect(send_timeout(state.settings().send_timeout))
        // A stream client never half-closes on purpose: its EOF means it is gone, so the
        // stream ends at once instead of at its next write (the next keep-alive).
        .h1_allow_half_closed(false)
        .listen(listener)?
        // Signals are ours: streams must be told to go before the graceful stop waits on them.
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
        .run();
        tracing::info!(port, "stream-service listening");
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<StreamState> {
        self.state.clone()
    }

    /// Stops the server the way SIGTERM does.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            state: self.state.clone(),
        }
    }

    /// Runs until SIGTERM or Ctrl-C (or a `Stopper`), then stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        let signals = tokio::spawn(async move {
            authstream_runtime::shutdown::signal().await;
            tracing::info!("shutdown signal received: ending open streams and stopping");
            stopper.stop().await;
        });
        let result = self.server.await;
        signals.abort();
        result
    }
}

/// Stops an `Application`: stop accepting, tell open streams to go, finish in-flight requests.
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    state: web::Data<StreamState>,
}

impl Stopper {
    pub async fn stop(&self) {
        // `stop` sends its command at once; the streams are told while it waits.
        let stopping = self.handle.stop(true);
        self.state.shutdown();
        stopping.await;
    }
}

/// Sets `TCP_USER_TIMEOUT` on every accepted connection. A client that stops reading
/// shrinks its window to zero; actix then stops polling the stream's body, so the lag
/// check never runs and nothing else would ever end the connection. With this option
/// the kernel aborts it once nothing could be sent for `timeout` (Linux only). For
/// `HttpServer::on_connect` of any server that mounts the stream routes.
pub fn send_timeout(
    timeout: std::time::Duration,
) -> impl Fn(&dyn std::any::Any, &mut actix_web::dev::Extensions) + Send + Sync + 'static {
    move |connection, _| {
        #[cfg(target_os = "linux")]
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(timeout))
        {
            tracing::warn!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (connection, timeout);
    }
}
