//! The report's headline figures, cheap enough for every page view: customers per tier, the
//! tier moves of the latest assessment, managers' tasks (open, overdue, done) and e-mails and SMS
//! per state. The same store reads as the report's (`tier_moves_until`, `task_work_by_assignee`)
//! and `tiercare status`'s outbox counts, without the report's per-customer features.

use serde::Serialize;
use tiercare_store::{Channel, OutboxState, OwnerWork, Store, StoreError, TierMoveCount};

/// The headline figures at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Headline {
    /// The latest assessment (id, time, rule-set version), if any.
    pub assessment: Option<super::Assessment>,
    /// Customers per current tier, by tier name.
    pub tiers: Vec<(String, u64)>,
    /// The tier moves of the latest assessment (first assignments have no `from_tier`).
    pub moves: Vec<TierMoveCount>,
    /// Managers' tasks per assignee (only `assignee`'s when one is given).
    pub work: Vec<OwnerWork>,
    /// E-mails per outbox state, every state listed (SMS apart).
    pub emails: Vec<(OutboxState, u64)>,
    /// SMS per outbox state, every state listed.
    pub sms: Vec<(OutboxState, u64)>,
}

impl Headline {
    /// Tasks open, overdue and done, summed over [`Headline::work`].
    pub fn task_totals(&self) -> (u64, u64, u64) {
        self.work
            .iter()
            .fold((0, 0, 0), |(open, overdue, done), work| {
                (open + work.open, overdue + work.overdue, done + work.done)
            })
    }
}

/// The headline figures at `now`; the tasks only of `assignee` when given.
pub fn headline(store: &Store, now: i64, assignee: Option<&str>) -> Result<Headline, StoreError> {
    let latest = store.last_assessment()?;
    let moves = match &latest {
        Some(latest) => store
            .tier_moves_until(latest.id)?
            .into_iter()
            .filter(|change| change.assessment_id == latest.id)
            .collect(),
        None => Vec::new(),
    };
    let work = store
        .task_work_by_assignee(now)?
        .into_iter()
        .filter(|work| assignee.is_none_or(|assignee| work.assignee == assignee))
        .collect();
    Ok(Headline {
        assessment: latest.map(|latest| super::Assessment {
            id: latest.id,
            at: latest.at,
            ruleset_version: latest.ruleset_version,
        }),
        tiers: store.tier_counts()?,
        moves,
        work,
        emails: store.channel_counts(Channel::Email)?,
        sms: store.channel_counts(Channel::Sms)?,
    })
}
