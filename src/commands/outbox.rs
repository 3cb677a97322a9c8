//! `send`, `outbox` and `unsubscribe`: delivering the outbox, looking into it, and the
//! suppression list.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::assess::{AssessError, RuleSource};
use tiercare_scheduler::delivery_gate::DeliveryGate;
use tiercare_scheduler::lock::DaemonLock;
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::outbox::{
    SendSettings, deliver_due_gated, transports, unsubscribe_address, unsubscribe_csv,
};
use tiercare_scheduler::preferences::{TokenOutcome, unsubscribe_with_token};
use tiercare_scheduler::templates::{EmailRenderer, load_workspace_templates};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{BulkFilter, OutboxEmail, OutboxState};

use crate::cli::{BulkArgs, OutboxArgs, OutboxCommand, OutboxStateArg, SendArgs, UnsubscribeArgs};
use crate::commands::tiers::{now, time_or};
use crate::output::Output;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The exit code of a `send` stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

pub fn send(args: SendArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let config = workspace.config();
    let at = time_or(args.at.as_deref(), config.timezone, now())?;
    let settings = SendSettings::for_config(workspace.root(), config, &env)?;
    let mut transports = transports(workspace.root(), &config.mail, &env)?;
    let mut sms = tiercare_scheduler::sms::sms_transport(workspace.root(), &config.sms, &env)?;
    // The delivery gate checks every email against the rules and renders it again from the
    // templates as it goes out: both must be valid, or nothing is sent.
    let rules = match RuleSource::read(&workspace.rules_dir(), Path::new("rules"))?.load() {
        Ok(loaded) => loaded.rules,
        Err(AssessError::Rules { diagnostics }) => {
            out.diagnostics(&tiercare_engine::render_all(&diagnostics, out.color_err()));
            anyhow::bail!(
                "the rules have errors; nothing was sent: each email is checked against them as \
                 it goes out (run `tiercare check`)"
            )
        }
        Err(err) => return Err(err.into()),
    };
    let loaded = load_workspace_templates(&workspace)?;
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == tiercare_engine::Severity::Error)
        .cloned()
        .collect();
    if !errors.is_empty() {
        out.diagnostics(&tiercare_engine::render_all(&errors, out.color_err()));
        anyhow::bail!(
            "some templates have errors; nothing was sent: each email is rendered again from its \
             template as it goes out (run `tiercare check`)"
        );
    }
    let renderer = EmailRenderer::new(&workspace, loaded.templates, &rules)?;
    let mut gate = DeliveryGate::new(&rules, &renderer, config.timezone);
    // The daemon's lock: one sender per database, so that a daemon starting up may recover
    // every claim it finds (see tiercare_scheduler::daemon) without taking this one's.
    let _lock = DaemonLock::acquire(&workspace.database_path())?;
    let mut store = workspace.open_store_for_writing()?;
    // Ctrl-C and SIGTERM raise the stop flag instead of killing the process, for the
    // delivery only: `deliver_due` then finishes the message in hand and queues the unsent
    // claims again, so a later `send` delivers them exactly once.
    let stop = Arc::new(AtomicBool::new(false));
    let handlers = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
        .into_iter()
        .map(|signal| signal_hook::flag::register(signal, Arc::clone(&stop)))
        .collect::<Result<Vec<_>, _>>()
        .context("could not install the Ctrl-C/SIGTERM handlers")?;
    let delivered = deliver_due_gated(
        &mut store,
        &mut transports,
        at,
        &settings,
        &stop,
        Some(&mut gate),
    );
    // SMS after the emails, through the same outbox and gate (their own claims and limits).
    let texted = match &delivered {
        Ok(report) if !report.stopped => Some(tiercare_scheduler::sms::deliver_sms_due(
            &mut store,
            sms.as_mut(),
            at,
            &config.sms,
            &settings,
            &stop,
            Some(&mut gate),
        )),
        _ => None,
    };
    for handler in handlers {
        signal_hook::low_level::unregister(handler);
    }
    let mut report = delivered?;
    let texted = texted.transpose()?;
    if let Some(texted) = &texted {
        report.stopped |= texted.stopped;
    }
    if args.json {
        // The emails' figures at the top level, as before; the SMS run's under `sms` (null
        // when it did not run: the emails were interrupted, or failed).
        let mut value = serde_json::to_value(&report)?;
        value["sms"] = serde_json::to_value(&texted)?;
        out.json(&value)?;
    } else {
        out.heading(&format!(
            "sent {} of {} claimed emails via {} at {}",
            report.sent,
            report.claimed,
            report.transport,
            format_time(at)
        ));
        print_counts(
            out,
            &[
                (report.deferred, "deferred (retried later)"),
                (report.failed, "failed"),
                (
                    report.hard_bounces,
                    "of them refused addresses, now suppressed",
                ),
                (
                    report.invalid_address,
                    "of them invalid addresses, not sent",
                ),
                (
                    report.unknown,
                    "unknown (handed over, no answer: see `tiercare outbox list --state unknown`)",
                ),
                (
                    report.suppressed,
                    "suppressed (address on the suppression list)",
                ),
                (report.no_consent, "not sent: no email consent"),
                (report.rate_limited, "left queued by the rate limit"),
                (
                    report.paced,
                    "left queued for their receiving domain (paused, or at its limit)",
                ),
                (
                    report.held,
                    "held by the contact policy (deferred to the next allowed time)",
                ),
                (report.no_longer_true, "cancelled: no longer true"),
                (report.stale, "cancelled: stale (past max_delay)"),
                (report.already_delivered, "already delivered before"),
            ],
        );
        for pause in &report.domains_paused {
            out.warn(&format!(
                "receiving domain {pause}: its emails wait, the others went on"
            ));
        }
        if let Some(reason) = &report.paused {
            out.warn(reason);
        }
        if let Some(texted) = texted
            .as_ref()
            .filter(|t| t.claimed + t.suppressed + t.no_consent + t.recovered + t.rate_limited > 0)
        {
            sms_summary(out, texted);
        }
        if report.recovered > 0 {
            out.warn(&format!(
                "{} email(s) were handed over by a sender that stopped before recording the answer \
                 (each may have arrived); {} queued again to be resent with the same Message-ID",
                report.recovered, report.resent_after_crash
            ));
        }
    }
    if report.stopped {
        out.warn(&format!(
            "interrupted: {} sent, {} claimed email(s) queued again and the rest left queued; \
             run `tiercare send` again to deliver them (each exactly once)",
            report.sent, report.released
        ));
        return Ok(ExitCode::from(INTERRUPTED));
    }
    let sms_trouble = texted.is_some_and(|t| t.failed > 0 || t.unknown > 0);
    Ok(if report.failed > 0 || report.unknown > 0 || sms_trouble {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One line of the counts that are not zero, `3 failed · 1 deferred (retried later)`.
fn print_counts(out: &Output, counts: &[(u64, &str)]) {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
    if !parts.is_empty() {
        out.line(&format!("  {}", parts.join(" · ")));
    }
}

/// The SMS part of `send`'s summary.
fn sms_summary(out: &Output, report: &tiercare_scheduler::sms::SmsSendReport) {
    out.heading(&format!(
        "sent {} of {} claimed SMS via {}",
        report.sent, report.claimed, report.provider
    ));
    print_counts(
        out,
        &[
            (report.deferred, "deferred (retried later)"),
            (report.failed, "failed"),
            (
                report.unknown,
                "unknown (handed over, no answer: see `tiercare outbox list --state unknown`)",
            ),
            (
                report.suppressed,
                "suppressed (number on the suppression list)",
            ),
            (report.no_consent, "not sent: no SMS consent"),
            (report.rate_limited, "left queued by the SMS rate limit"),
            (
                report.held,
                "held by the contact policy (deferred to the next allowed time)",
            ),
            (report.no_longer_true, "cancelled: no longer true"),
            (report.stale, "cancelled: stale (past max_delay)"),
            (report.already_delivered, "already delivered before"),
        ],
    );
    if report.recovered > 0 {
        out.warn(&format!(
            "{} SMS were handed over by a sender that stopped before recording the answer \
             (each may have arrived); {} queued again to be resent with the same id",
            report.recovered, report.resent_after_crash
        ));
    }
}

fn state(arg: OutboxStateArg) -> OutboxState {
    match arg {
        OutboxStateArg::Queued => OutboxState::Queued,
        OutboxStateArg::Claimed => OutboxState::Claimed,
        OutboxStateArg::Sent => OutboxState::Sent,
        OutboxStateArg::Deferred => OutboxState::Deferred,
        OutboxStateArg::Failed => OutboxState::Failed,
        OutboxStateArg::Unknown => OutboxState::Unknown,
        OutboxStateArg::Cancelled => OutboxState::Cancelled,
        OutboxStateArg::Suppressed => OutboxState::Suppressed,
    }
}

fn summary_line(email: &OutboxEmail) -> String {
    format!(
        "  #{:<6} {:<10} {:<9} {} · {} · {} · attempts {}{}",
        email.id,
        email.state.as_str(),
        email.customer_id.as_deref().unwrap_or("(forgotten)"),
        format_time(email.sent_at.unwrap_or(email.due_at)),
        email.rule_id,
        match email.channel {
            tiercare_engine::Channel::Sms => format!("SMS {}", email.template),
            tiercare_engine::Channel::Email => email.template.clone(),
        },
        email.attempts,
        email
            .last_error
            .as_deref()
            .filter(|_| email.state != OutboxState::Sent)
            .map(|error| format!(" · {error}"))
            .unwrap_or_default()
    )
}

pub fn outbox(args: OutboxArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let command = args.command.unwrap_or(OutboxCommand::List);
    let mut store = match command {
        OutboxCommand::List | OutboxCommand::Show { .. } => workspace.open_store()?,
        OutboxCommand::Retry { .. } | OutboxCommand::Cancel { .. } | OutboxCommand::Resume => {
            workspace.open_store_for_writing()?
        }
    };
    match command {
        OutboxCommand::List => {
            let emails = store.outbox(args.state.map(state), args.limit)?;
            let (counts, recovered) = store.outbox_counts()?;
            let ids: Vec<i64> = emails.iter().map(|email| email.id).collect();
            let bounced = store.bounce_marks(&ids)?;
            if args.json {
                let counts: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|(state, n)| (state.as_str().to_owned(), (*n).into()))
                    .collect();
                out.json(&serde_json::json!({
                    "counts": counts,
                    "resent_after_crash": recovered,
                    "emails": emails,
                    "bounced": bounced.iter().map(|(id, kind, status)| serde_json::json!({
                        "id": id, "kind": kind, "status": status,
                    })).collect::<Vec<_>>(),
                }))?;
            } else {
                let counts: Vec<String> = counts
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(state, n)| format!("{n} {state}"))
                    .collect();
                out.heading(&format!(
                    "outbox: {}{}",
                    if counts.is_empty() {
                        "empty".to_owned()
                    } else {
                        counts.join(" · ")
                    },
                    if recovered > 0 {
                        format!(" · {recovered} resent after a crash")
                    } else {
                        String::new()
                    }
                ));
                for email in &emails {
                    let mut line = summary_line(email);
                    if let Some((_, kind, status)) = bounced.iter().find(|(id, ..)| *id == email.id)
                    {
                        line.push_str(&format!(
                            " · bounced {kind}{}",
                            status
                                .as_deref()
                                .map(|s| format!(" {s}"))
                                .unwrap_or_default()
                        ));
                    }
                    out.line(&line);
                }
            }
        }
        OutboxCommand::Show { id } => {
            let email = store.outbox_email(id)?.with_context(|| {
                format!("unknown outbox email #{id}: `tiercare outbox list` lists them")
            })?;
            let events = store.outbox_events(id)?;
            let bounces = store.bounces_of(id)?;
            if args.json {
                out.json(
                    &serde_json::json!({ "email": email, "events": events, "bounces": bounces }),
                )?;
            } else {
                out.heading(&format!("outbox email #{} · {}", email.id, email.state));
                for (name, value) in [
                    ("to", email.to_address.clone()),
                    ("subject", email.subject.clone()),
                    ("message-id", email.message_id.clone()),
                    (
                        "rule",
                        format!("{} · template {}", email.rule_id, email.template),
                    ),
                    (
                        "customer",
                        email
                            .customer_id
                            .clone()
                            .unwrap_or_else(|| "(forgotten)".into()),
                    ),
                    ("due", format_time(email.due_at)),
                    ("attempts", email.attempts.to_string()),
                    (
                        "sent",
                        email.sent_at.map(format_time).unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "last error",
                        email.last_error.clone().unwrap_or_else(|| "-".into()),
                    ),
                    ("resent after crash", email.recoveries.to_string()),
                ] {
                    out.line(&format!("  {name:<19} {value}"));
                }
                for bounce in &bounces {
                    out.line(&format!(
                        "  {:<19} {} {} · {} · {}{}",
                        "bounced",
                        format_time(bounce.at),
                        bounce.kind,
                        bounce.status.as_deref().unwrap_or("-"),
                        bounce.source,
                        bounce
                            .diagnostic
                            .as_deref()
                            .map(|d| format!(" · {d}"))
                            .unwrap_or_default()
                    ));
                }
                out.line("  history:");
                for event in &events {
                    out.line(&format!(
                        "    {} {} → {}{}",
                        format_time(event.at),
                        event.from_state.as_deref().unwrap_or("-"),
                        event.to_state,
                        event
                            .detail
                            .as_deref()
                            .map(|d| format!(" · {d}"))
                            .unwrap_or_default()
                    ));
                }
                out.line("");
                out.line(&email.body_text);
            }
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            let email = store.retry_email(id, now())?;
            changed(
                out,
                args.json,
                &email,
                "queued again, due now (same Message-ID)",
            )?;
        }
        OutboxCommand::Cancel { id: Some(id), .. } => {
            let email = store.cancel_email(id, now())?;
            changed(out, args.json, &email, "cancelled: it will not be sent")?;
        }
        OutboxCommand::Retry { id: None, bulk } => {
            let filter = bulk_filter(args.state, &bulk, &workspace)?;
            let count = store.retry_emails(&filter, now())?;
            bulk_changed(
                out,
                args.json,
                "retried",
                count,
                &filter,
                "queued again, due now (same Message-ID)",
            )?;
        }
        OutboxCommand::Cancel { id: None, bulk } => {
            let filter = bulk_filter(args.state, &bulk, &workspace)?;
            let count = store.cancel_emails(&filter, now())?;
            bulk_changed(
                out,
                args.json,
                "cancelled",
                count,
                &filter,
                "cancelled: they will not be sent",
            )?;
        }
        OutboxCommand::Resume => {
            let at = now();
            let before = tiercare_scheduler::status::sending(&store, &workspace.config().mail, at)?;
            store.resume_sending(at)?;
            if args.json {
                out.json(&serde_json::json!({
                    "resumed_at": at,
                    "was_paused": before.paused,
                }))?;
            } else {
                match before.paused {
                    Some(reason) => {
                        out.line(&format!("was: {reason}"));
                        out.heading(&format!(
                            "sending resumed at {}: the reputation guard counts only later sends",
                            format_time(at)
                        ));
                    }
                    None => out.heading(&format!(
                        "sending was not paused; the reputation guard now counts from {}",
                        format_time(at)
                    )),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The bulk filter of `outbox retry|cancel --state STATE [--rule R] [--since T]`.
fn bulk_filter(
    state_arg: Option<OutboxStateArg>,
    bulk: &BulkArgs,
    workspace: &Workspace,
) -> anyhow::Result<BulkFilter> {
    let state = match state_arg.map(state) {
        Some(state @ (OutboxState::Unknown | OutboxState::Failed)) => state,
        Some(other) => anyhow::bail!(
            "--state {other}: only unknown or failed emails are retried or cancelled in bulk; \
             give an email's id for the others"
        ),
        None => anyhow::bail!("give an email's id, or --state unknown|failed for all of them"),
    };
    let since = match &bulk.since {
        Some(text) => Some(time_or(Some(text), workspace.config().timezone, now())?),
        None => None,
    };
    Ok(BulkFilter {
        state,
        rule: bulk.rule.clone(),
        since,
    })
}

fn bulk_changed(
    out: &Output,
    json: bool,
    action: &str,
    count: u64,
    filter: &BulkFilter,
    what: &str,
) -> anyhow::Result<()> {
    if json {
        out.json(&serde_json::json!({
            action: count,
            "state": filter.state,
            "rule": filter.rule,
            "since": filter.since,
        }))
    } else {
        out.line(&format!("{count} {} email(s) {what}", filter.state));
        Ok(())
    }
}

fn changed(out: &Output, json: bool, email: &OutboxEmail, what: &str) -> anyhow::Result<()> {
    if json {
        out.json(email)
    } else {
        out.line(&format!("outbox email #{}: {what}", email.id));
        Ok(())
    }
}

pub fn unsubscribe(
    args: UnsubscribeArgs,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let mut store = workspace.open_store_for_writing()?;
    let at = now();
    let (added, already, skipped): (u64, u64, Vec<(u64, String)>) = if let Some(path) = &args.csv {
        let report = unsubscribe_csv(&mut store, path, at)?;
        (report.added, report.already, report.skipped)
    } else if let Some(token) = &args.token {
        let mail = &workspace.config().mail;
        let signer = TokenSigner::from_env(
            &mail.unsubscribe_secret_env,
            &mail.unsubscribe_secret_previous_env,
            &env,
        )?;
        match unsubscribe_with_token(&mut store, &signer, token, "token", at)? {
            TokenOutcome::Unsubscribed { new } => (u64::from(new), u64::from(!new), Vec::new()),
            TokenOutcome::Invalid => anyhow::bail!(
                "the token is not valid: it was damaged, signed with another secret, or signed \
                 with the previous secret more than 60 days ago (check the environment \
                 variables [mail] unsubscribe_secret_env and unsubscribe_secret_previous_env \
                 name)"
            ),
        }
    } else {
        let address = args.address.as_deref().unwrap_or_default();
        match unsubscribe_address(&mut store, address, "cli", at)? {
            Ok(new) => (u64::from(new), u64::from(!new), Vec::new()),
            Err(why) => (0, 0, vec![(0, why)]),
        }
    };
    if args.json {
        out.json(&serde_json::json!({
            "added": added,
            "already_suppressed": already,
            "skipped": skipped.iter().map(|(row, why)| serde_json::json!({"row": row, "reason": why})).collect::<Vec<_>>(),
        }))?;
    } else {
        out.heading(&format!(
            "suppressed {added} new address(es); {already} already suppressed"
        ));
        for (row, why) in &skipped {
            if *row > 0 {
                out.warn(&format!("row {row} skipped: {why}"));
            } else {
                out.warn(&format!("skipped: {why}"));
            }
        }
    }
    Ok(if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
