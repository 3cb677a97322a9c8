//! The `tiercare` binary: glue only. It parses arguments, opens the workspace, calls the crates
//! and prints; the work itself lives in `crates/`.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    let out = output::Output::new(cli.color);
    match commands::run(cli, &out) {
        Ok(code) => code,
        Err(err) => {
            out.error(&format!("{err:#}"));
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIERCARE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
