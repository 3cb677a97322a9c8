//! The `tiercare` binary: glue only. It parses arguments, opens the workspace, calls the crates
//! and prints; the work itself lives in `crates/`.

mod cli;
mod commands;
mod format;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the system allocator: an import allocates strings on its reading thread
/// and an assessment its decisions on the evaluating thread, and both free them on the writing
/// thread; glibc's arenas made every such free contend for a lock (a seventh of an assessment's
/// writing thread at 1M customers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The daemon reports what it does at info level; other commands print their results and
    // log only warnings.
    let default_level = if matches!(cli.command, cli::Command::Run(_)) {
        "info"
    } else {
        "warn"
    };
    let log_format = cli.log_format;
    init_logging(log_format, default_level);
    let out = output::Output::new(cli.color);
    match commands::run(cli, &out) {
        Ok(code) => code,
        Err(err) => {
            let message = error_text(&err);
            match log_format {
                cli::LogFormat::Human => out.error(&message),
                // One JSON object on stderr, like every other diagnostic in this format.
                cli::LogFormat::Json => tracing::error!(exit_code = 2, "{message}"),
            }
            ExitCode::from(2)
        }
    }
}

/// The error and its causes in one line, each cause once: many of our errors already end with
/// their source's text, which `{:#}` would print a second time.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn init_logging(format: cli::LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIERCARE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Human => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
