//! The public pool (公海): reclaims by the rules' `pool` section, the pool's listing with the
//! countdowns, and what the coming days would bring.
//!
//! [`reclaim`] is one pass at a time `at` (the daemon runs it when something may be due, and
//! `tiercare pool reclaim --at` runs it once): it reads the owned customers without the write
//! lock, then in ONE short `IMMEDIATE` transaction ([`Store::pool_pass`]), on their facts read
//! again there, records the warnings whose time has come (once per customer and reclaim cycle,
//! so the managers' digest can list them) and reclaims the customers whose warned period is
//! over: unowned, with an audit row `reclaimed: no follow-up for 31 days` by `pool`.
//! Pinned and protected customers are never touched (see [`tiercare_engine::pool`] for the
//! rules, and [`tiercare_store::PoolFacts`] for what counts as the owner's follow-up).
//! Reclaimed customers go through assignment again on the same tick.
//!
//! The pass also says when the next warning or reclaim falls due if nothing changes
//! ([`PoolReport::next_due`]): the daemon does not read the customers again before then (or
//! before new rules or a reassessment, or a day), so an idle tick does no scan for the pool.

use std::time::Instant;

use serde::Serialize;
use tiercare_engine::{OwnedFacts, RuleSet};
use tiercare_store::{PoolAction, PoolFacts, Store, UnownedCustomer};

use crate::assess::AssessError;

/// The longest the daemon waits before a pool pass even when nothing is due: pins that end and
/// tier changes made by hand are seen within this.
pub const POOL_RECHECK: i64 = 86_400;

/// What [`reclaim`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolReport {
    /// When the pass ran (the time it judged by).
    pub at: i64,
    /// Whether the rules have a `pool` section naming a tier; without one nothing is reclaimed.
    pub configured: bool,
    /// Owned customers of the pool's tiers read.
    pub read: u64,
    /// New warnings recorded.
    pub warned: u64,
    /// Tasks given to warned owners (`warn_task`).
    pub tasks: u64,
    /// Customers reclaimed into the pool.
    pub reclaimed: u64,
    /// The next time a warning or a reclaim falls due if nothing changes.
    pub next_due: Option<i64>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

fn owned_facts(facts: &PoolFacts) -> OwnedFacts<'_> {
    OwnedFacts {
        tier: &facts.tier,
        owner_since: facts.owner_since,
        last_followup: facts.last_followup,
        last_order: facts.last_order,
        pinned: facts.pinned,
        protected: facts.protected,
    }
}

fn pool_tiers(rules: &RuleSet) -> Vec<&str> {
    rules
        .pool()
        .tiers
        .iter()
        .map(|tier| tier.tier.as_str())
        .collect()
}

/// One pass of the pool at `at`: warnings first, then reclaims, written in one transaction
/// after a read that holds no write lock (see [`Store::pool_pass`]).
pub fn reclaim(store: &mut Store, rules: &RuleSet, at: i64) -> Result<PoolReport, AssessError> {
    let started = Instant::now();
    let pool = rules.pool();
    let mut report = PoolReport {
        at,
        configured: !pool.is_empty(),
        ..PoolReport::default()
    };
    if report.configured {
        let tiers = pool_tiers(rules);
        let mut next_due: Option<i64> = None;
        let outcome = store.pool_pass(at, &tiers, pool.protect_attribute.as_deref(), |facts| {
            let step = pool.step(&owned_facts(facts), facts.warning, at);
            if let Some(next) = step.next {
                next_due = Some(next_due.map_or(next, |due| due.min(next)));
            }
            let task = match &step.warn {
                Some((reclaim_at, reason)) if pool.warn_task => Some(format!(
                    "Follow up with {} before {}, or they go back to the public pool ({reason})",
                    facts.external_id,
                    crate::time::format_time(*reclaim_at)
                )),
                _ => None,
            };
            PoolAction {
                warn: step.warn,
                reclaim: step.reclaim,
                task,
            }
        })?;
        report.read = outcome.read;
        report.warned = outcome.warned;
        report.tasks = outcome.tasks;
        report.reclaimed = outcome.reclaimed;
        report.next_due = next_due;
    }
    if report.warned + report.reclaimed > 0 {
        tracing::info!(
            warned = report.warned,
            reclaimed = report.reclaimed,
            "pool: owners warned and customers reclaimed"
        );
    } else {
        tracing::debug!(read = report.read, "pool: nothing due");
    }
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// One owned customer's countdown to the pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Countdown {
    /// The customer's external id.
    pub customer: String,
    /// Their owner.
    pub owner: String,
    /// Their tier.
    pub tier: String,
    /// When they go back to the pool unless the owner follows up (or they order).
    pub reclaim_at: i64,
    /// When the owner is (or was) warned.
    pub warn_at: i64,
    /// Whole days from now until the reclaim (negative: overdue, waiting for its warning's
    /// period or the next pass).
    pub days_left: i64,
    /// `no follow-up` or `no order`.
    pub cause: String,
    /// Whether the owner has been warned for this cycle.
    pub warned: bool,
}

/// What `tiercare pool` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolListing {
    /// The time judged by.
    pub at: i64,
    /// Whether the rules have a `pool` section naming a tier.
    pub configured: bool,
    /// Customers without an owner, in assignment's order: the rules' tier order, then the most
    /// valuable first.
    pub unowned: Vec<UnownedCustomer>,
    /// Owned customers of the pool's tiers with their countdown, soonest reclaim first
    /// (pinned and protected customers have none and are left out).
    pub countdowns: Vec<Countdown>,
}

/// The pool at `at`: who is in it, and who is going to be.
pub fn listing(store: &Store, rules: &RuleSet, at: i64) -> Result<PoolListing, AssessError> {
    let pool = rules.pool();
    let mut listing = PoolListing {
        at,
        configured: !pool.is_empty(),
        ..PoolListing::default()
    };
    let order: Vec<&str> = rules.tiers().map(|tier| tier.id.as_str()).collect();
    let rank = |tier: Option<&str>| {
        tier.and_then(|tier| order.iter().position(|t| *t == tier))
            .unwrap_or(usize::MAX)
    };
    listing.unowned = store.unowned_customers(None)?;
    listing.unowned.sort_by(|a, b| {
        rank(a.tier.as_deref())
            .cmp(&rank(b.tier.as_deref()))
            .then(b.value.total_cmp(&a.value))
            .then(a.rowid.cmp(&b.rowid))
    });
    if listing.configured {
        for facts in store.pool_facts(at, &pool_tiers(rules), pool.protect_attribute.as_deref())? {
            let Some(due) = pool.due(&owned_facts(&facts)) else {
                continue;
            };
            listing.countdowns.push(Countdown {
                days_left: (due.reclaim_at - at).div_euclid(86_400),
                warned: facts
                    .warning
                    .is_some_and(|(reclaim_at, _)| reclaim_at == due.reclaim_at),
                customer: facts.external_id,
                owner: facts.owner,
                tier: facts.tier,
                reclaim_at: due.reclaim_at,
                warn_at: due.warn_at,
                cause: due.cause.to_owned(),
            });
        }
        listing.countdowns.sort_by(|a, b| {
            a.reclaim_at
                .cmp(&b.reclaim_at)
                .then(a.customer.cmp(&b.customer))
        });
    }
    Ok(listing)
}

/// A warning or reclaim the coming days would bring, for `plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolEvent {
    /// When (at the earliest: the daemon's next tick after it).
    pub at: i64,
    /// `warning` or `reclaim`.
    pub kind: &'static str,
    /// The customer's external id.
    pub customer: String,
    /// Their owner.
    pub owner: String,
    /// Their tier.
    pub tier: String,
    /// Why (`no follow-up for 30 days`).
    pub reason: String,
}

/// The warnings and reclaims due in `[from, to)` if nobody follows up, in time order.
pub fn upcoming(
    store: &Store,
    rules: &RuleSet,
    from: i64,
    to: i64,
) -> Result<Vec<PoolEvent>, AssessError> {
    let pool = rules.pool();
    let mut events = Vec::new();
    if pool.is_empty() {
        return Ok(events);
    }
    for facts in store.pool_facts(from, &pool_tiers(rules), pool.protect_attribute.as_deref())? {
        let Some(due) = pool.due(&owned_facts(&facts)) else {
            continue;
        };
        let warned_at = match facts.warning {
            Some((reclaim_at, warned_at)) if reclaim_at == due.reclaim_at => warned_at,
            _ => due.warn_at.max(from),
        };
        let event = |at: i64, kind: &'static str| PoolEvent {
            at,
            kind,
            customer: facts.external_id.clone(),
            owner: facts.owner.clone(),
            tier: facts.tier.clone(),
            reason: due.warning(),
        };
        if facts
            .warning
            .is_none_or(|(reclaim_at, _)| reclaim_at != due.reclaim_at)
            && (from..to).contains(&warned_at)
        {
            events.push(event(warned_at, "warning"));
        }
        let reclaim_at = due.reclaim_at.max(warned_at + due.warn_before).max(from);
        if (from..to).contains(&reclaim_at) {
            events.push(event(reclaim_at, "reclaim"));
        }
    }
    events.sort_by(|a, b| a.at.cmp(&b.at).then(a.customer.cmp(&b.customer)));
    Ok(events)
}
