//! `inbound`: one message from stdin, for the mail system. Never exits 2: a message the
//! command cannot handle now is left to the mail system with EX_TEMPFAIL (75), so it is
//! kept and delivered again rather than bounced back.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::inbound::{InboundOutcome, InboundSettings, MAX_MESSAGE, handle};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::InboundArgs;
use crate::commands::tiers::{now, time_or};
use crate::output::Output;

/// sysexits.h EX_TEMPFAIL: Postfix, procmail and fetchmail keep the message and try again.
const EX_TEMPFAIL: u8 = 75;

pub fn inbound(args: InboundArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    // Read the whole message first: the mail system must never see a broken pipe.
    let mut raw = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let read = (&mut stdin)
        .take(MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut raw)
        .and_then(|_| std::io::copy(&mut stdin, &mut std::io::sink()));
    drop(stdin);
    if let Err(err) = read {
        out.error(&format!("cannot read the message from stdin: {err}"));
        return Ok(ExitCode::from(EX_TEMPFAIL));
    }
    match run(&args, workspace_dir, &raw) {
        Ok(outcome) => {
            if args.json {
                out.json(&outcome)?;
            } else {
                out.line(&describe(&outcome));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            out.error(&format!(
                "{err:#}; the message was not handled (exit 75: the mail system will try again)"
            ));
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}

fn run(args: &InboundArgs, workspace_dir: &Path, raw: &[u8]) -> anyhow::Result<InboundOutcome> {
    let workspace = Workspace::open(workspace_dir)?;
    let config = workspace.config();
    let at = time_or(args.at.as_deref(), config.timezone, now())?;
    let settings = InboundSettings::from_config(&config.mail, &|name| std::env::var(name).ok())?;
    let mut store = workspace.open_store_for_writing()?;
    Ok(handle(
        &mut store,
        &settings,
        raw,
        args.recipient.as_deref(),
        at,
    )?)
}

fn describe(outcome: &InboundOutcome) -> String {
    match outcome {
        InboundOutcome::Bounce {
            outbox_id,
            bounce,
            status,
            suppressed,
            duplicate,
        } => {
            let email =
                outbox_id.map_or_else(|| "an email".to_owned(), |id| format!("email #{id}"));
            if *duplicate {
                format!("{bounce} bounce of {email}: already recorded")
            } else {
                format!(
                    "{bounce} bounce of {email} ({}){}",
                    status.as_deref().unwrap_or("no status"),
                    match suppressed {
                        Some(reason) => format!("; address suppressed ({reason})"),
                        None => String::new(),
                    }
                )
            }
        }
        InboundOutcome::AutoReply { outbox_id } => format!(
            "auto-reply{}: nothing suppressed",
            outbox_id
                .map(|id| format!(" to email #{id}"))
                .unwrap_or_default()
        ),
        InboundOutcome::Unsubscribe { by_token, added } => format!(
            "unsubscribe request ({}): {}",
            if *by_token {
                "signed token"
            } else {
                "sender address"
            },
            if *added {
                "address suppressed"
            } else {
                "already suppressed"
            }
        ),
        InboundOutcome::Ignored { reason } => format!("ignored: {reason}"),
    }
}
