//! `check`, `test`, `schema` and `functions`: the rule set as files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use tiercare_engine::load_sms_templates_for;
use tiercare_engine::{
    Diagnostic, References, RuleSet, Severity, catalog, check_references, load_templates,
    render_all, rules_json_schema, run_rule_tests,
};
use tiercare_scheduler::assess::{AssessError, RuleSource};
use tiercare_scheduler::owners::check_manager_references;
use tiercare_scheduler::templates::{
    read_sms_templates, read_templates, sms_template_names, template_names,
};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{FunctionsArgs, RulesArgs};
use crate::output::Output;

/// Reads the rule folder: `--rules DIR` (files named as given), else the workspace's
/// (files named `rules/…`, as every workspace command names them).
fn read_rules(args: &RulesArgs, workspace_dir: &Path) -> anyhow::Result<(PathBuf, RuleSource)> {
    let (dir, label) = match &args.rules {
        Some(dir) => (dir.clone(), dir.clone()),
        None => (
            Workspace::open(workspace_dir)?.rules_dir(),
            PathBuf::from("rules"),
        ),
    };
    let source = RuleSource::read(&dir, &label)?;
    Ok((dir, source))
}

pub fn check(args: RulesArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let (dir, source) = read_rules(&args, workspace_dir)?;
    let (mut diagnostics, version, rules) = match source.load() {
        Ok(loaded) => {
            let mut diagnostics = loaded.warnings;
            diagnostics.extend(manager_references(&args, workspace_dir, &loaded.rules)?);
            (
                diagnostics,
                Some(loaded.rules.version().to_owned()),
                Some(loaded.rules),
            )
        }
        Err(AssessError::Rules { diagnostics }) => (diagnostics, None, None),
        Err(err) => return Err(err.into()),
    };
    let templates = check_templates(&args, workspace_dir, rules.as_ref())?;
    diagnostics.extend(templates.diagnostics);
    let proof = match &rules {
        Some(rules) => prove(workspace_dir, rules)?,
        None => None,
    };
    if let Some(proof) = &proof {
        diagnostics.extend(proof.errors.iter().cloned());
        diagnostics.extend(proof.warnings.iter().cloned());
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    // The workspace's mail settings: SMTP without DKIM is a warning, an unusable key an error.
    let mail_ok = args.rules.is_some() || super::mail::check_signing(workspace_dir, out);
    let ok = version.is_some() && errors == 0 && mail_ok;
    if args.json {
        out.json(&json!({
            "rules": dir,
            "files": source.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "templates": templates.names,
            "sms_templates": templates.sms,
            "version": version,
            "errors": errors,
            "warnings": warnings,
            "sampled_customers": proof.as_ref().map(|p| p.customers),
            "diagnostics": diagnostics,
        }))?;
    } else {
        out.diagnostics(&render_all(&diagnostics, out.color_err()));
        // Each SMS template's encoding and length for the sample customer (what it costs).
        for sample in &templates.sms {
            out.line(&format!("{}: SMS {}", sample.path, sample.length));
        }
        let templates_note = match &templates.dir {
            Some(dir) => format!(
                "; {} template(s) in {}",
                templates.names.len(),
                dir.display()
            ),
            None => String::new(),
        };
        let proof_note = match &proof {
            Some(proof) => format!("; proven on {} customer(s)", proof.customers),
            None => String::new(),
        };
        match &version {
            Some(version) if ok => out.heading(&format!(
                "{}: {} files OK, version {version}{templates_note}{proof_note}{}",
                dir.display(),
                source.files.len(),
                if warnings > 0 {
                    format!(" ({warnings} warning(s))")
                } else {
                    String::new()
                }
            )),
            _ => out.error(&format!(
                "{}: {errors} error(s), {warnings} warning(s){templates_note}",
                dir.display()
            )),
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The rules run on a sample of the workspace's real customers (when in a workspace whose
/// database exists), at the current time.
fn prove(
    workspace_dir: &Path,
    rules: &RuleSet,
) -> anyhow::Result<Option<tiercare_scheduler::proof::Proof>> {
    let Ok(workspace) = Workspace::open(workspace_dir) else {
        return Ok(None);
    };
    if !workspace.database_path().exists() {
        return Ok(None);
    }
    let store = workspace.open_store()?;
    let now = chrono::Utc::now().timestamp();
    Ok(Some(tiercare_scheduler::proof::prove_on_sample(
        &store,
        rules,
        &workspace.config().rules,
        now,
    )?))
}

/// The managers and roles the rules name, checked against the workspace's managers: only for
/// the workspace's own rules (not `--rules DIR`) when its database exists.
fn manager_references(
    args: &RulesArgs,
    workspace_dir: &Path,
    rules: &tiercare_engine::RuleSet,
) -> anyhow::Result<Vec<tiercare_engine::Diagnostic>> {
    if args.rules.is_some() {
        return Ok(Vec::new());
    }
    let workspace = Workspace::open(workspace_dir)?;
    if !workspace.database_path().exists() {
        return Ok(Vec::new());
    }
    let store = workspace.open_store()?;
    let mut diagnostics = check_manager_references(&store, rules)?;
    // Managers the digest cannot reach: a warning at the `reminders.digest` section.
    if let Some(digest) = &rules.reminders().digest {
        let at = &digest.location;
        for warning in tiercare_scheduler::reminders::digest_warnings(&store, rules)? {
            diagnostics.push(tiercare_engine::Diagnostic::warning(
                &at.path, at.line, at.column, warning,
            ));
        }
    }
    // Imported coupon pools running low (their e-mails would be skipped).
    diagnostics.extend(tiercare_scheduler::incentives::pool_diagnostics(
        &store,
        rules,
        tiercare_scheduler::time::now(),
    )?);
    Ok(diagnostics)
}

/// What `check` found in the templates.
struct TemplateCheck {
    /// The folder checked, if any.
    dir: Option<PathBuf>,
    /// The usable templates' names.
    names: Vec<String>,
    /// The usable SMS templates, each with the length of its sample.
    sms: Vec<tiercare_engine::SmsSample>,
    /// Problems in the templates, and follow-up rules naming templates that do not exist.
    diagnostics: Vec<Diagnostic>,
}

/// Checks the care-email templates: `--templates DIR`, else the workspace's `templates/`, else
/// (with `--rules DIR`) `DIR/templates` when it exists; and, when the rules compiled, that
/// every template a follow-up rule names exists (the template half of `check_references`).
fn check_templates(
    args: &RulesArgs,
    workspace_dir: &Path,
    rules: Option<&RuleSet>,
) -> anyhow::Result<TemplateCheck> {
    let (dir, label) = match (&args.templates, &args.rules) {
        (Some(dir), _) => (Some(dir.clone()), dir.clone()),
        (None, None) => (
            Some(Workspace::open(workspace_dir)?.templates_dir()),
            PathBuf::from("templates"),
        ),
        (None, Some(rules)) => {
            let dir = rules.join("templates");
            (dir.is_dir().then(|| dir.clone()), dir)
        }
    };
    let Some(dir) = dir else {
        return Ok(TemplateCheck {
            dir: None,
            names: Vec::new(),
            sms: Vec::new(),
            diagnostics: Vec::new(),
        });
    };
    let files = read_templates(&dir, &label)?;
    let loaded = load_templates(&files);
    let mut diagnostics = loaded.diagnostics;
    // The managers' digest templates (`*.digest.j2`), against their own context.
    let digest_files = tiercare_scheduler::reminders::read_digest_template_files(&dir, &label)?;
    let digests = tiercare_engine::digest::load_digest_templates(&digest_files);
    match rules {
        Some(rules) => diagnostics.extend(tiercare_scheduler::reminders::check_digest_templates(
            rules, &digests,
        )),
        None => diagnostics.extend(digests.diagnostics.iter().cloned()),
    }
    let names: Vec<String> = loaded.templates.names().map(str::to_owned).collect();
    // SMS templates beside them, measured against the workspace's `[sms] max_segments`.
    let sms_files = read_sms_templates(&dir, &label)?;
    let workspace = Workspace::open(workspace_dir).ok();
    let max_segments = workspace
        .as_ref()
        .map_or(tiercare_engine::sms::DEFAULT_MAX_SEGMENTS, |ws| {
            ws.config().sms.max_segments
        });
    // An SMS survey's link is counted as sent: `[http] public_url` and a token.
    let survey_url = workspace.as_ref().and_then(|ws| {
        ws.config()
            .http
            .as_ref()
            .and_then(tiercare_scheduler::http_config::HttpConfig::survey_url)
    });
    let sms = load_sms_templates_for(&sms_files, max_segments, survey_url.as_deref());
    diagnostics.extend(sms.diagnostics);
    if let Some(rules) = rules {
        // Templates with errors exist (their errors are reported above): refer by file names.
        // Managers and roles are left empty, which skips that half of the check.
        let existing = template_names(&files);
        let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
        let existing_sms = sms_template_names(&sms_files);
        let existing_sms: Vec<&str> = existing_sms.iter().map(String::as_str).collect();
        diagnostics.extend(check_references(
            rules,
            &References {
                templates: &existing,
                sms_templates: Some(&existing_sms),
                ..References::default()
            },
        ));
        diagnostics.extend(tiercare_engine::check_survey_templates(
            rules,
            &loaded.templates,
        ));
        // A provider that sends only registered templates (Aliyun) needs each one mapped.
        if let Ok(ws) = Workspace::open(workspace_dir) {
            let text = std::fs::read_to_string(ws.root().join("tiercare.toml")).unwrap_or_default();
            diagnostics.extend(tiercare_scheduler::sms::aliyun::check_aliyun(
                rules,
                &ws.config().sms,
                &sms.templates,
                &text,
            ));
        }
    }
    Ok(TemplateCheck {
        dir: Some(dir),
        names,
        sms: sms.samples,
        diagnostics,
    })
}

pub fn test(args: RulesArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let (_, source) = read_rules(&args, workspace_dir)?;
    let loaded = match source.load() {
        Ok(loaded) => loaded,
        Err(AssessError::Rules { diagnostics }) => {
            out.diagnostics(&render_all(&diagnostics, out.color_err()));
            anyhow::bail!("the rules have errors: fix them first (`tiercare check`)");
        }
        Err(err) => return Err(err.into()),
    };
    let report = run_rule_tests(&loaded.rules, &source.tests);
    if args.json {
        out.json(&report)?;
    } else {
        out.line(report.render(out.color_err()).trim_end());
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn schema(out: &Output) -> anyhow::Result<ExitCode> {
    out.json(&rules_json_schema())?;
    Ok(ExitCode::SUCCESS)
}

pub fn functions(args: FunctionsArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let catalog = catalog();
    if args.json {
        out.json(&json!({
            "features": catalog.features.iter().map(|f| json!({
                "name": f.name,
                "type": f.type_text(),
                "unit": f.unit,
                "meaning": f.meaning,
            })).collect::<Vec<_>>(),
            "functions": catalog.functions.iter().map(|f| json!({
                "name": f.name,
                "signature": f.signature,
                "returns": f.returns,
                "meaning": f.meaning,
                "example": f.example,
            })).collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    out.heading("Features (variables in every rule expression)");
    for f in catalog.features {
        let unit = if f.unit.is_empty() {
            String::new()
        } else {
            format!(", {}", f.unit)
        };
        out.line(&format!("  {:<24} {}{unit}", f.name, f.type_text()));
        out.line(&format!("      {}", f.meaning));
    }
    out.line("");
    out.heading("Functions");
    for f in catalog.functions {
        out.line(&format!("  {:<40} -> {}", f.signature, f.returns));
        out.line(&format!("      {}", f.meaning));
        if !f.example.is_empty() {
            out.line(&format!("      e.g. {}", f.example));
        }
    }
    Ok(ExitCode::SUCCESS)
}
