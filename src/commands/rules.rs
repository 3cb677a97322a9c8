//! `check`, `test`, `schema` and `functions`: the rule set as files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use tiercare_engine::{Severity, catalog, render_all, rules_json_schema, run_rule_tests};
use tiercare_scheduler::assess::{AssessError, RuleSource};
use tiercare_scheduler::owners::check_manager_references;
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
    let (diagnostics, mut version) = match source.load() {
        Ok(loaded) => {
            let mut diagnostics = loaded.warnings;
            diagnostics.extend(manager_references(&args, workspace_dir, &loaded.rules)?);
            (diagnostics, Some(loaded.rules.version().to_owned()))
        }
        Err(AssessError::Rules { diagnostics }) => (diagnostics, None),
        Err(err) => return Err(err.into()),
    };
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        version = None;
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if args.json {
        out.json(&json!({
            "rules": dir,
            "files": source.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "version": version,
            "errors": errors,
            "warnings": warnings,
            "diagnostics": diagnostics,
        }))?;
    } else {
        out.diagnostics(&render_all(&diagnostics, out.color_err()));
        match &version {
            Some(version) => out.heading(&format!(
                "{}: {} files OK, version {version}{}",
                dir.display(),
                source.files.len(),
                if warnings > 0 {
                    format!(" ({warnings} warning(s))")
                } else {
                    String::new()
                }
            )),
            None => out.error(&format!(
                "{}: {errors} error(s), {warnings} warning(s)",
                dir.display()
            )),
        }
    }
    Ok(if version.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
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
    Ok(check_manager_references(&store, rules)?)
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
