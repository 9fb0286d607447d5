//! `cargo run --release -p bench -- <scenario>... [flags]`: see `bench --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match bench::options::Options::parse(std::env::args().skip(1)) {
        Ok(bench::options::Parsed::Run(options)) => *options,
        Ok(bench::options::Parsed::Help) => {
            println!("{}", bench::options::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench: {e}\n\n{}", bench::options::USAGE);
            return ExitCode::from(2);
        }
    };
    bench::limits::raise_open_files();
    match bench::run(&options).await {
        Ok(reports) => {
            println!("{}", bench::report::table(&reports));
            let json = bench::report::json(&reports);
            println!("{json}");
            if let Some(path) = &options.json
                && let Err(e) = std::fs::write(path, format!("{json}\n"))
            {
                eprintln!("bench: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
