//! Owners: customers without an account manager get one by the rules' `assignment` section,
//! and the managers and roles the rules name are checked against the workspace's.
//!
//! [`assign_owners`] reads the managers with their load and the customers without an owner
//! from the store, lets the engine decide ([`tiercare_engine::assign`]: per tier, the candidate
//! with the most spare capacity) and writes the owners in one transaction
//! ([`Store::assign_owners`], which never overrides an owner set in the meantime).
//! [`check_manager_references`] is the managers-and-roles half of `tiercare check`.

use std::time::Instant;

use serde::Serialize;
use tiercare_engine::{
    AssignmentPlan, Diagnostic, ManagerLoad, References, RuleSet, Unowned, assign, check_references,
};
use tiercare_store::{Store, StoreError};

use crate::assess::AssessError;

/// What [`assign_owners`] did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AssignReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Whether the rules have an `assignment` section; without one nothing is assigned.
    pub configured: bool,
    /// Customers without an owner (assessed or not).
    pub unowned: u64,
    /// Of those, customers without a tier (not assessed yet): left alone.
    pub without_tier: u64,
    /// Owners written (0 in a dry run). Can be fewer than decided when another process gave
    /// some customers an owner in the meantime.
    pub written: u64,
    /// The decisions: per tier and per manager.
    pub plan: AssignmentPlan,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// Gives every customer without an owner one by the rules' `assignment` section, at `now`; with
/// `dry_run`, decides and reports without writing.
pub fn assign_owners(
    store: &mut Store,
    rules: &RuleSet,
    now: i64,
    dry_run: bool,
) -> Result<AssignReport, AssessError> {
    let started = Instant::now();
    let mut report = AssignReport {
        dry_run,
        configured: !rules.assignment().is_empty(),
        ..AssignReport::default()
    };
    if !report.configured {
        report.elapsed_ms = started.elapsed().as_millis();
        return Ok(report);
    }
    let managers: Vec<ManagerLoad> = store
        .managers()?
        .into_iter()
        .map(|manager| ManagerLoad {
            id: manager.external_id,
            role: manager.role,
            capacity: manager.capacity,
            customers: manager.customers,
            active: manager.active,
        })
        .collect();
    // Only the tiers that have candidates: customers of `nobody` tiers are counted, not read.
    let staffed: Vec<&str> = rules
        .assignment()
        .tiers
        .iter()
        .filter(|tier| !tier.to.is_empty())
        .map(|tier| tier.tier.as_str())
        .collect();
    let counts = store.unowned_counts()?;
    report.unowned = counts.iter().map(|(_, n)| n).sum();
    report.without_tier = counts
        .iter()
        .filter(|(tier, _)| tier.is_none())
        .map(|(_, n)| n)
        .sum();
    let unowned = store.unowned_customers(Some(&staffed))?;
    report.plan = assign(
        rules.assignment(),
        &managers,
        unowned.iter().filter_map(|customer| {
            Some(Unowned {
                key: customer.rowid,
                tier: customer.tier.as_deref()?,
            })
        }),
    );
    for outcome in &mut report.plan.tiers {
        outcome.unowned = counts
            .iter()
            .filter(|(tier, _)| tier.as_deref() == Some(outcome.tier.as_str()))
            .map(|(_, n)| n)
            .sum();
    }
    if !dry_run && !report.plan.assignments.is_empty() {
        report.written = store.assign_owners(&report.plan.assignments, now)?;
    }
    // At info only when someone got an owner: the daemon runs this every tick.
    if report.plan.assignments.is_empty() {
        tracing::debug!(dry_run, "owners assigned: nobody needed one");
    } else {
        tracing::info!(
            assigned = report.plan.assignments.len(),
            written = report.written,
            dry_run,
            "owners assigned"
        );
    }
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// Checks the managers (`manager:ID`) and roles (`role:NAME`) the follow-up rules and the
/// `assignment` section name against the workspace's managers. A workspace without managers yet
/// skips the manager check, and one where no manager has a role the role check (nothing to
/// check against); templates are not checked here.
pub fn check_manager_references(
    store: &Store,
    rules: &RuleSet,
) -> Result<Vec<Diagnostic>, StoreError> {
    let managers = store.managers()?;
    let ids: Vec<&str> = managers.iter().map(|m| m.external_id.as_str()).collect();
    let mut roles: Vec<&str> = managers.iter().filter_map(|m| m.role.as_deref()).collect();
    roles.sort_unstable();
    roles.dedup();
    let references = References {
        templates: &[],
        managers: &ids,
        roles: &roles,
        sms_templates: None,
    };
    Ok(check_references(rules, &references))
}
