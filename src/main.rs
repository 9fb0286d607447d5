use authstream_runtime::config::ProcessEnv;

/// mimalloc rather than glibc malloc: less CPU per request (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `authstream healthcheck` probes a running server (container health checks).
    authstream_runtime::probe::args_unless_healthcheck("AUTHSTREAM_BIND", "0.0.0.0:8000");
    authstream_runtime::telemetry::init(&authstream_runtime::config::logging(&ProcessEnv)?);
    let app = authstream::Application::build(&ProcessEnv)?;
    println!("{}", app.banner());
    app.run_until_stopped().await?;
    Ok(())
}
