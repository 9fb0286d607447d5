//! `stream-service`: read the configuration, set up logs, serve until SIGTERM.

use authstream_runtime::config::ProcessEnv;
use stream_service::{Application, Settings};

/// mimalloc rather than glibc malloc: less CPU per request (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `stream-service healthcheck` probes a running server (container health checks).
    authstream_runtime::probe::args_unless_healthcheck("STREAM_BIND", "0.0.0.0:8082");
    let settings = Settings::from_env(&ProcessEnv)?;
    authstream_runtime::telemetry::init(&settings.common.logging);
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
