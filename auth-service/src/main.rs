use auth_service::Application;
use auth_service::config::Settings;
use authstream_runtime::config::ProcessEnv;

/// mimalloc rather than glibc malloc: less CPU per request (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `auth-service keys …` manages the signing keys, `clients …` the service clients, `healthcheck` probes a running
    // server; no arguments serves.
    let args = authstream_runtime::probe::args_unless_healthcheck("AUTH_BIND", "0.0.0.0:8081");
    if !args.is_empty() {
        let said = match args[0].as_str() {
            "clients" => auth_service::clients_command::run(&args)?,
            _ => auth_service::keys_command::run(&args, authstream_runtime::UnixTime::now())?,
        };
        println!("{said}");
        return Ok(());
    }
    let settings = Settings::from_env(&ProcessEnv)?;
    authstream_runtime::telemetry::init(&settings.common.logging);
    if settings.common.redis_url.is_none() && settings.common.redis_cluster_nodes.is_empty() {
        tracing::warn!(
            "REDIS_URL is not set: state is in memory, lost on exit, and invisible to a separate stream-service"
        );
    }
    let app = Application::build(settings.clone())?;
    tracing::info!(bind = %settings.bind, port = app.port(), "auth-service listening");
    app.run_until_stopped().await?;
    Ok(())
}
