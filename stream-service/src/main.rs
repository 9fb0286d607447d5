//! `stream-service`: read the configuration, set up logs, serve until SIGTERM.

use shared::config::ProcessEnv;
use stream_service::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env(&ProcessEnv)?;
    shared::telemetry::init(&settings.common.logging);
    Application::build(settings)
        .await?
        .run_until_stopped()
        .await?;
    Ok(())
}
