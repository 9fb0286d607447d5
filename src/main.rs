use shared::config::ProcessEnv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init(&shared::config::logging(&ProcessEnv)?);
    let app = authstream::Application::build(&ProcessEnv)?;
    println!("{}", app.banner());
    app.run_until_stopped().await?;
    Ok(())
}
