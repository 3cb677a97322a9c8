//! `preview`: one care email rendered for one customer, printed as it would be sent.

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
    let survey = rules.followups().find_map(|rule| match &rule.action {
        tiercare_engine::Action::Survey {
            template,
            survey,
            channel: tiercare_engine::Channel::Email,
        } if *template == args.template => Some(survey.clone()),
        _ => None,
    });
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
