//! `tiercare users`: the staff workspace's accounts.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tiercare_scheduler::staff;
use tiercare_scheduler::time::format_time;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::StaffRole;

use crate::cli::UsersCommand;
use crate::output::Output;

pub fn users(
    command: UsersCommand,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let now = chrono::Utc::now().timestamp();
    match command {
        UsersCommand::Add {
            login,
            role,
            manager,
            password_stdin,
        } => {
            let role = StaffRole::parse(&role).context("--role is admin, manager or viewer")?;
            staff::check_login(&login)?;
            let mut store = workspace.open_store_for_writing()?;
            let password = read_password(password_stdin)?;
            let user =
                staff::add_user(&mut store, &login, role, manager.as_deref(), &password, now)?;
            out.line(&format!(
                "added {} ({}{})",
                user.login,
                user.role.as_str(),
                user.manager_id
                    .map(|id| format!(", manager {id}"))
                    .unwrap_or_default()
            ));
        }
        UsersCommand::List { json } => {
            let store = workspace.open_store()?;
            let users = store.staff_users()?;
            if json {
                out.json(&users)?;
                return Ok(ExitCode::SUCCESS);
            }
            if users.is_empty() {
                out.line("no staff accounts: add one with `tiercare users add LOGIN --role admin`");
            }
            for user in &users {
                out.line(&format!(
                    "{:<24} {:<8} {:<12} {:<9} created {}",
                    user.login,
                    user.role.as_str(),
                    user.manager_id.as_deref().unwrap_or("-"),
                    if user.active { "active" } else { "disabled" },
                    format_time(user.created_at)
                ));
            }
        }
        UsersCommand::Disable { login } => {
            let mut store = workspace.open_store_for_writing()?;
            store.set_staff_user_active(&login, false, now)?;
            out.line(&format!("{login} is disabled; its sessions are ended"));
        }
        UsersCommand::Enable { login } => {
            let mut store = workspace.open_store_for_writing()?;
            store.set_staff_user_active(&login, true, now)?;
            out.line(&format!("{login} may sign in again"));
        }
        UsersCommand::Passwd {
            login,
            password_stdin,
        } => {
            let mut store = workspace.open_store_for_writing()?;
            if !store.staff_users()?.iter().any(|user| user.login == login) {
                bail!("no staff account '{login}': `tiercare users list` lists them");
            }
            let password = read_password(password_stdin)?;
            staff::set_password(&mut store, &login, &password, now)?;
            out.line(&format!(
                "{login} has a new password; its sessions are ended"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The password: the first line of stdin with `--password-stdin`, else asked twice at the
/// terminal without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            bail!("no password on standard input: write it on the first line");
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to ask the password at: give --password-stdin and write it to standard input"
        );
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != second {
        bail!("the two passwords differ: nothing was changed; try again");
    }
    Ok(first)
}
