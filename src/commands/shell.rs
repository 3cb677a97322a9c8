//! `completions` and `man`: generated from the clap definitions in `cli.rs`, so they never
//! disagree with `--help`.

use std::fs;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::output::Output;

/// Prints the completion script for one shell.
pub fn completions(args: &CompletionsArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tiercare", &mut script);
    out.line(String::from_utf8_lossy(&script).trim_end());
    Ok(ExitCode::SUCCESS)
}

/// Prints the main manual page, or writes every command's page into `--out`.
pub fn man(args: &ManArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            out.line(String::from_utf8_lossy(&page).trim_end());
        }
        Some(dir) => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            let count = fs::read_dir(dir)?
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "1"))
                .count();
            out.line(&format!(
                "{count} manual pages written to {}",
                dir.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
