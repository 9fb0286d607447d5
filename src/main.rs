use authstream_runtime::config::ProcessEnv;

/// mimalloc rather than glibc malloc: less CPU per request (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `authstream healthcheck` probes a running server (container health checks).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(code) = authstream_runtime::probe::run_if_asked(&args, || {
        authstream_runtime::config::string_or(&ProcessEnv, "AUTHSTREAM_BIND", "0.0.0.0:8000")
    }) {
        std::process::exit(code);
    }
    authstream_runtime::telemetry::init(&authstream_runtime::config::logging(&ProcessEnv)?);
    let app = authstream::Application::build(&ProcessEnv)?;
    println!("{}", app.banner());
    app.run_until_stopped().await?;
    Ok(())
}
