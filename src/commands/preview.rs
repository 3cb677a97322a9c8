//! `preview`: one care email (or, with `--sms`, one text message) rendered for one customer,
//! printed as it would be sent.

use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use tiercare_engine::render_all;
use tiercare_scheduler::outbox::SendSettings;
use tiercare_scheduler::templates::{EmailRenderer, load_workspace_templates};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::PreviewArgs;
use crate::commands::tiers::{load_rules, now, time_or};
use crate::output::Output;

pub fn preview(args: PreviewArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now())?;
    let loaded = load_workspace_templates(&workspace)?;
    if args.sms || (!loaded.templates.contains(&args.template) && sms_exists(&workspace, &args)) {
        return preview_sms(&args, &workspace, loaded.templates, &rules, at, out);
    }
    if !loaded.templates.contains(&args.template) {
        // Its own problems, if it has any; other templates' problems are `check`'s business.
        let prefix = format!("templates/{}.", args.template);
        let own: Vec<_> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.path.starts_with(&prefix))
            .cloned()
            .collect();
        if !own.is_empty() {
            out.diagnostics(&render_all(&own, out.color_err()));
            bail!(
                "template `{}` has errors: fix them first (`tiercare check`)",
                args.template
            );
        }
    }
    let renderer = EmailRenderer::new(&workspace, loaded.templates, &rules)?;
    let settings = SendSettings::for_config(workspace.root(), workspace.config(), &|name| {
        std::env::var(name).ok()
    })?;
    // A survey template is previewed with the survey of the first rule that asks it.
    let survey = survey_of(&rules, &args.template, tiercare_engine::Channel::Email);
    let preview = match &survey {
        Some(survey) => {
            renderer.preview_survey(&settings, &args.template, &args.customer, at, survey)?
        }
        None => renderer.preview(&settings, &args.template, &args.customer, at)?,
    };
    if args.json {
        out.json(&preview)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(reason) = &preview.not_sendable {
        out.warn(reason);
    }
    match &preview.message {
        Some(message) => out.line(&message.replace("\r\n", "\n")),
        None => {
            out.line(&format!("Subject: {}", preview.rendered.subject));
            out.line("--- text");
            out.line(preview.rendered.text.trim_end());
            if let Some(html) = &preview.rendered.html {
                out.line("--- html");
                out.line(html.trim_end());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `templates/NAME.sms.j2` exists.
fn sms_exists(workspace: &Workspace, args: &PreviewArgs) -> bool {
    workspace
        .root()
        .join("templates")
        .join(format!(
            "{}{}",
            args.template,
            tiercare_engine::sms::SMS_TEMPLATE_SUFFIX
        ))
        .is_file()
}

/// What `preview --sms --json` prints.
#[derive(Debug, serde::Serialize)]
struct SmsPreview<'a> {
    template: &'a str,
    channel: &'static str,
    customer_id: &'a str,
    /// The text as it would be sent (an SMS survey's link with a sample token as long as the
    /// longest signed one the send loop puts there, so the length is an upper bound).
    text: String,
    length: tiercare_engine::sms::SmsLength,
    /// Why it would not be sent, if it would not (no SMS consent, no phone number in E.164).
    not_sendable: Option<String>,
}

/// `preview --sms`: the SMS template rendered for the customer, as `tiercare run` would send it
/// (an SMS survey rule's template with its `survey.link`), with its encoding and segments.
fn preview_sms(
    args: &PreviewArgs,
    workspace: &Workspace,
    templates: tiercare_engine::Templates,
    rules: &tiercare_engine::RuleSet,
    at: i64,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let renderer = EmailRenderer::new(workspace, templates, rules)?;
    if !renderer.sms_templates().contains(&args.template) {
        bail!(
            "there is no SMS template `{}`: expected templates/{}{} without errors (`tiercare check` lists the templates and their problems)",
            args.template,
            args.template,
            tiercare_engine::sms::SMS_TEMPLATE_SUFFIX
        );
    }
    let survey = survey_of(rules, &args.template, tiercare_engine::Channel::Sms);
    let text = match &survey {
        Some(survey) => renderer
            .render_sms_survey(&args.template, &args.customer, at, survey)?
            .replace(
                tiercare_scheduler::mail::survey::SINGLE_LINK_MARKER,
                tiercare_engine::template::SAMPLE_SURVEY_TOKEN,
            ),
        None => renderer.render_sms(&args.template, &args.customer, at)?,
    };
    let length = tiercare_engine::sms_length(&text);
    let customer = workspace
        .open_store()?
        .customer(&args.customer)?
        .ok_or_else(|| anyhow::anyhow!("no customer `{}`", args.customer))?;
    let not_sendable = if !customer.consent_sms {
        Some("the customer has not agreed to text messages (consent_sms): the SMS would be skipped")
    } else if !customer
        .phone
        .as_deref()
        .is_some_and(|phone| tiercare_scheduler::phone::is_e164(phone.trim()))
    {
        Some(
            "the customer has no phone number in E.164 form (+ country code and number): the SMS would be skipped",
        )
    } else {
        None
    };
    if args.json {
        out.json(&SmsPreview {
            template: &args.template,
            channel: "sms",
            customer_id: &args.customer,
            text,
            length,
            not_sendable: not_sendable.map(str::to_owned),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(reason) = not_sendable {
        out.warn(reason);
    }
    out.line(text.trim_end());
    out.line(&format!("--- {length}"));
    if survey.is_some() {
        out.line("--- the survey link's token is signed when the SMS is sent; this sample is as long as the longest one");
    }
    Ok(ExitCode::SUCCESS)
}

/// The survey of the first rule that sends `template` as a survey by `channel`: a survey
/// template is previewed with it.
fn survey_of(
    rules: &tiercare_engine::RuleSet,
    template: &str,
    channel: tiercare_engine::Channel,
) -> Option<tiercare_store::Survey> {
    rules.followups().find_map(|rule| match &rule.action {
        tiercare_engine::Action::Survey {
            template: name,
            survey,
            channel: sent_by,
        } if name == template && *sent_by == channel => Some(survey.clone()),
        _ => None,
    })
}
