//! Owners: customers without an account manager get one by the rules' `assignment` section,
//! and the managers and roles the rules name are checked against the workspace's.
//!
//! [`assign_owners`] reads the managers with their load and the customers without an owner
//! from the store, lets the engine decide ([`tiercare_engine::assign`]: per tier, the candidate
//! with the most spare capacity) and writes the owners in one transaction
//! ([`Store::assign_owners`], which never overrides an owner set in the meantime, and writes an
//! audit row per owner given).
//!
//! **Value first**: the customers are offered in the rules' tier order (A before B), and within
//! a tier the most valuable first (the score `clv_12m` when the rules compute one by that name,
//! else the customer's monetary: the sum of their orders), so when managers run out of room it
//! is the least valuable who wait. With a `pool` section, a manager is given at most
//! `claims_per_day` customers per local day of the workspace (counted from the owner audit), and
//! a customer is never given back to an owner they were reclaimed from within `no_return`.
//!
//! **Idle**: the customers without an owner are read through an index of them alone; when no
//! customer of a staffed tier is without one, nothing else is read (no scan of the customers).
//! [`check_manager_references`] is the managers-and-roles half of `tiercare check`.

use std::time::Instant;

use chrono::TimeZone;
use chrono_tz::Tz;
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

/// The start of the local day (in `timezone`) that holds `now`: what the claim caps count from.
#[must_use]
pub fn local_day_start(now: i64, timezone: Tz) -> i64 {
    let Some(local) = timezone.timestamp_opt(now, 0).single() else {
        return now - now.rem_euclid(86_400);
    };
    let midnight = local.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    timezone
        .from_local_datetime(&midnight)
        .earliest()
        .map_or(now - now.rem_euclid(86_400), |start| start.timestamp())
}

/// Gives every customer without an owner one by the rules' `assignment` section, at `now`
/// (claim caps count the local days of `timezone`); with `dry_run`, decides and reports without
/// writing.
pub fn assign_owners(
    store: &mut Store,
    rules: &RuleSet,
    now: i64,
    timezone: Tz,
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
    let waiting = counts
        .iter()
        .any(|(tier, _)| tier.as_deref().is_some_and(|tier| staffed.contains(&tier)));
    let mut unowned = if waiting {
        store.unowned_customers(Some(&staffed))?
    } else {
        Vec::new()
    };
    // The managers' load is one scan of the customers: only read when someone waits.
    let pool = rules.pool();
    let claims = match pool.claims_per_day {
        Some(_) if !unowned.is_empty() => store.claims_since(local_day_start(now, timezone))?,
        _ => std::collections::HashMap::new(),
    };
    let managers: Vec<ManagerLoad> = if unowned.is_empty() {
        Vec::new()
    } else {
        // A manager on leave at `now` takes no new customers, as an inactive one.
        let away = store.away_managers(now)?;
        store
            .managers()?
            .into_iter()
            .map(|manager| {
                // A claim cap is room for that many more today, whatever the capacity says.
                let capacity = match pool.claims_per_day {
                    Some(cap) => {
                        let claimed = claims.get(&manager.external_id).copied().unwrap_or(0);
                        let today = manager.customers + cap.saturating_sub(claimed);
                        Some(
                            manager
                                .capacity
                                .map_or(today, |capacity| capacity.min(today)),
                        )
                    }
                    None => manager.capacity,
                };
                ManagerLoad {
                    active: manager.active && !away.contains(&manager.external_id),
                    id: manager.external_id,
                    role: manager.role,
                    capacity,
                    customers: manager.customers,
                }
            })
            .collect()
    };
    // Most valuable first: by the rules' tier order, then value, then import order.
    let rank = |tier: Option<&str>| {
        rules
            .assignment()
            .tiers
            .iter()
            .position(|t| Some(t.tier.as_str()) == tier)
            .unwrap_or(usize::MAX)
    };
    unowned.sort_by(|a, b| {
        rank(a.tier.as_deref())
            .cmp(&rank(b.tier.as_deref()))
            .then(b.value.total_cmp(&a.value))
            .then(a.rowid.cmp(&b.rowid))
    });
    let reclaimed = if pool.no_return > 0 && !unowned.is_empty() {
        store.reclaimed_from_since(now - pool.no_return + 1)?
    } else {
        std::collections::HashMap::new()
    };
    report.plan = assign(
        rules.assignment(),
        &managers,
        unowned.iter().filter_map(|customer| {
            let not_to = reclaimed
                .get(&customer.rowid)
                .map(|owners| owners.iter().map(String::as_str).collect())
                .unwrap_or_default();
            Some(Unowned {
                key: customer.rowid,
                tier: customer.tier.as_deref()?,
                not_to,
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
