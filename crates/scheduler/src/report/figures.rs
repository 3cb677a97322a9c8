//! The figures behind every chart of the report, gathered from the store.

use serde::Serialize;
use tiercare_store::{CareProgramme, OwnerWork, RuleEmails, Store, StoreError, TierWork, Window};

/// How many points the Pareto curve keeps at most (the first and last included).
pub const PARETO_POINTS: usize = 300;

/// How many assessments the trend shows at most (the latest ones).
pub const TREND_ASSESSMENTS: usize = 60;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No assessment was recorded for a time up to the report's.
    #[error(
        "no assessment as of {at}: run `tiercare assess` first (or give a later --at)",
        at = crate::time::format_time(*at)
    )]
    NoAssessment {
        /// The report's time.
        at: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A tier as the rules name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierInfo {
    /// The tier's id (`A`).
    pub id: String,
    /// Its label for people (`Key accounts`), if any.
    pub label: Option<String>,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The time the report is for, unix seconds UTC: the latest assessment up to it, and the
    /// work and e-mails as they stood then.
    pub at: i64,
    /// When the report is made, unix seconds UTC.
    pub now: i64,
    /// The tiers in the rules' order, best first; tiers found in the data but not listed are
    /// added after them.
    pub tiers: Vec<TierInfo>,
    /// The window revenue is counted over (the rules' `tiering.window`).
    pub window: Window,
    /// The window as the rules write it (`365d`), for captions.
    pub window_label: String,
    /// The zone and settings of the growth models' holdout check; `None`: no check.
    pub growth: Option<crate::growth::GrowthSettings>,
}

impl ReportOptions {
    /// Options for a report at `at`, made at `now`, with the tiers and window of `rules`.
    pub fn new(rules: &tiercare_engine::RuleSet, at: i64, now: i64) -> ReportOptions {
        let window = rules.window();
        ReportOptions {
            at,
            now,
            tiers: rules
                .tiers()
                .map(|tier| TierInfo {
                    id: tier.id.clone(),
                    label: tier.label.clone(),
                })
                .collect(),
            window,
            window_label: match window {
                Window::All => "all time".to_owned(),
                other => other.to_string(),
            },
            growth: None,
        }
    }
}

/// An assessment the report refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Its id.
    pub id: i64,
    /// The time it assessed for, unix seconds UTC.
    pub at: i64,
    /// The rule-set version that decided.
    pub ruleset_version: String,
}

/// Customers and revenue of one tier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierFigure {
    /// The tier's id.
    pub id: String,
    /// Its label, if the rules give one.
    pub label: Option<String>,
    /// Customers in the tier.
    pub customers: u64,
    /// Their revenue over the window.
    pub revenue: f64,
    /// Share of all tiered customers, 0..1.
    pub customer_share: f64,
    /// Share of all revenue, 0..1.
    pub revenue_share: f64,
}

/// Where one tier ends on the Pareto curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Boundary {
    /// The tier that ends here (the better tiers are to the left).
    pub tier: String,
    /// The share of customers in this tier and the better ones, 0..1.
    pub customer_share: f64,
    /// The share of revenue those customers bring, 0..1.
    pub revenue_share: f64,
}

/// Cumulative revenue share against cumulative customer share, customers ranked by revenue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pareto {
    /// `(customer share, revenue share)` points from `(0, 0)` to `(1, 1)`, at most
    /// [`PARETO_POINTS`].
    pub points: Vec<(f64, f64)>,
    /// The tier boundaries, one per tier but the last.
    pub boundaries: Vec<Boundary>,
}

/// One cell of the RFM grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmCell {
    /// Recency score, 1 (longest ago) to 5 (most recent).
    pub r: u8,
    /// Frequency score, 1 (fewest orders) to 5 (most).
    pub f: u8,
    /// Customers in the cell.
    pub customers: u64,
    /// Their revenue over the window.
    pub revenue: f64,
}

/// Customers by recency score against frequency score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmGrid {
    /// The 25 cells, `r` major (r = 1, f = 1..5; r = 2, ...).
    pub cells: Vec<RfmCell>,
    /// Customers who never ordered (no scores).
    pub never_ordered: u64,
}

/// Tier moves from the previous assessment to the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveMatrix {
    /// The previous assessment, if there is one.
    pub previous: Option<Assessment>,
    /// Row labels: `new` (no tier before) and then the tiers.
    pub from: Vec<String>,
    /// Column labels: the tiers.
    pub to: Vec<String>,
    /// `counts[row][column]`: customers who went from `from[row]` to `to[column]`; the
    /// diagonal is the customers who stayed.
    pub counts: Vec<Vec<u64>>,
}

/// One assessment in the trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrendPoint {
    /// The assessment.
    pub assessment: Assessment,
    /// Customers per tier after it, in the order of [`Figures::tiers`].
    pub sizes: Vec<u64>,
    /// Customers who moved to a better tier.
    pub up: u64,
    /// Customers who moved to a worse tier.
    pub down: u64,
    /// Customers who got their first tier.
    pub new: u64,
}

/// One manager's load against their capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManagerLoad {
    /// The manager's external id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Customers they can look after; `None` when not given.
    pub capacity: Option<u64>,
    /// Customers they own now.
    pub customers: u64,
    /// Their tasks not done now.
    pub open_tasks: u64,
    /// Whether they take work.
    pub active: bool,
}

/// Every figure of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The time the report is for, unix seconds UTC.
    pub at: i64,
    /// When it was made, unix seconds UTC.
    pub generated_at: i64,
    /// The assessment it shows (the latest up to `at`).
    pub assessment: Assessment,
    /// The revenue window (`365d`).
    pub window: String,
    /// Customers with a tier.
    pub customers: u64,
    /// Their revenue over the window.
    pub revenue: f64,
    /// Customers and revenue per tier, best tier first.
    pub tiers: Vec<TierFigure>,
    /// The Pareto curve with the tier boundaries.
    pub pareto: Pareto,
    /// The RFM grid.
    pub rfm: RfmGrid,
    /// Tier moves since the previous assessment.
    pub moves: MoveMatrix,
    /// Tier sizes and moves per assessment, oldest first (the latest [`TREND_ASSESSMENTS`]).
    pub trend: Vec<TrendPoint>,
    /// Follow-up work per tier.
    pub work_by_tier: Vec<TierWork>,
    /// Managers' tasks per assignee.
    pub work_by_owner: Vec<OwnerWork>,
    /// Managers' load against capacity.
    pub managers: Vec<ManagerLoad>,
    /// E-mail outcomes per follow-up rule (SMS are not in it).
    pub emails: Vec<RuleEmails>,
    /// SMS outcomes per follow-up rule.
    pub sms: Vec<RuleEmails>,
    /// Addresses unsubscribed.
    pub unsubscribes: u64,
    /// Sends, hard bounces and complaints per day and follow-up rule over the 30 days up to
    /// `at` (the reputation guard's source, `Store::mail_reputation`).
    pub reputation: Vec<tiercare_store::ReputationRow>,
    /// The lowest tier's care programme; `None` with fewer than two tiers.
    pub care: Option<CareProgramme>,
    /// The growth models' predicted-against-actual check on the last 90 days.
    pub growth_holdout: Option<crate::growth::HoldoutOutcome>,
    /// Survey response rates and scores per survey and tier (tiers as of the assessment, best
    /// first, customers without a tier last).
    pub surveys: Vec<tiercare_store::SurveyResults>,
    /// Coupons issued and redeemed per follow-up rule and tier, with the redeemers' revenue in
    /// the [`COUPON_REVENUE_DAYS`] days before and after issue.
    pub coupons: Vec<tiercare_store::CouponFigures>,
}

/// The days before and after a coupon's issue over which the report sums its redeemer's
/// revenue.
pub const COUPON_REVENUE_DAYS: i64 = 90;

/// Gathers every figure of the report from `store`.
pub fn figures(store: &Store, options: &ReportOptions) -> Result<Figures, ReportError> {
    let started = std::time::Instant::now();
    let assessments = store.assessments_until(options.at)?;
    let Some(latest) = assessments.last() else {
        return Err(ReportError::NoAssessment { at: options.at });
    };
    let assessment = Assessment {
        id: latest.id,
        at: latest.at,
        ruleset_version: latest.ruleset_version.clone(),
    };

    // Each customer's tier as of the assessment, as indexes into `tiers`.
    let mut tiers = options.tiers.clone();
    let mut tier_of: Vec<(i64, u16)> = Vec::new();
    store.for_each_tier_as_of(latest.id, &mut |rowid, tier| {
        let index = tier_index(&mut tiers, tier);
        tier_of.push((rowid, index));
    })?;
    let moves = store.tier_moves_until(latest.id)?;
    for change in &moves {
        tier_index(&mut tiers, &change.to_tier);
        if let Some(from) = &change.from_tier {
            tier_index(&mut tiers, from);
        }
    }

    tracing::debug!(
        customers = tier_of.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "report: tiers read"
    );
    // Revenue, recency and frequency from the features at the assessment's time.
    let mut revenue_of_tier = vec![0.0_f64; tiers.len()];
    let mut customers_of_tier = vec![0_u64; tiers.len()];
    let mut revenues: Vec<f64> = Vec::with_capacity(tier_of.len());
    let mut rfm = RfmGrid {
        cells: (1..=5)
            .flat_map(|r| {
                (1..=5).map(move |f| RfmCell {
                    r,
                    f,
                    customers: 0,
                    revenue: 0.0,
                })
            })
            .collect(),
        never_ordered: 0,
    };
    store.for_each_features(latest.at, options.window, &mut |features| {
        let Ok(found) = tier_of.binary_search_by_key(&features.customer_rowid, |&(id, _)| id)
        else {
            return;
        };
        let tier = usize::from(tier_of[found].1);
        let revenue = features.revenue_window.max(0.0);
        customers_of_tier[tier] += 1;
        revenue_of_tier[tier] += revenue;
        revenues.push(revenue);
        match (
            u8::try_from(features.r_score),
            u8::try_from(features.f_score),
        ) {
            (Ok(r @ 1..=5), Ok(f @ 1..=5)) => {
                let cell = &mut rfm.cells[usize::from(r - 1) * 5 + usize::from(f - 1)];
                cell.customers += 1;
                cell.revenue += revenue;
            }
            _ => rfm.never_ordered += 1,
        }
    })?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "report: features computed"
    );
    let customers: u64 = customers_of_tier.iter().sum();
    let revenue: f64 = revenue_of_tier.iter().sum();
    let share = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let tier_figures: Vec<TierFigure> = tiers
        .iter()
        .enumerate()
        .map(|(index, info)| TierFigure {
            id: info.id.clone(),
            label: info.label.clone(),
            customers: customers_of_tier[index],
            revenue: revenue_of_tier[index],
            customer_share: share(customers_of_tier[index] as f64, customers as f64),
            revenue_share: share(revenue_of_tier[index], revenue),
        })
        .collect();
    let pareto = pareto(revenues, &tier_figures);

    let ranks: Vec<String> = tiers.iter().map(|t| t.id.clone()).collect();
    let rank = |tier: &str| ranks.iter().position(|t| t == tier).unwrap_or(ranks.len());
    let previous = assessments.len().checked_sub(2).map(|i| {
        let row = &assessments[i];
        Assessment {
            id: row.id,
            at: row.at,
            ruleset_version: row.ruleset_version.clone(),
        }
    });
    let move_matrix = move_matrix(&ranks, &customers_of_tier, &moves, latest.id, previous);
    let trend = trend(&assessments, &moves, &ranks, &rank);

    let managers = store
        .managers()?
        .into_iter()
        .map(|m| ManagerLoad {
            id: m.external_id,
            name: m.name,
            capacity: m.capacity,
            customers: m.customers,
            open_tasks: m.open_tasks,
            active: m.active,
        })
        .collect();
    let care = match ranks.split_last() {
        Some((lowest, higher)) if !higher.is_empty() => {
            Some(store.care_programme(lowest, higher, latest.id, options.at)?)
        }
        _ => None,
    };
    let mut work_by_tier = store.followup_work_by_tier(latest.id, options.at)?;
    work_by_tier.sort_by_key(|w| w.tier.as_deref().map_or(usize::MAX, rank));
    let work_by_owner = store.task_work_by_assignee(options.at)?;
    let emails = store.email_outcomes(options.at)?;
    let sms = store.sms_outcomes(options.at)?;
    let unsubscribes = store.unsubscribes(options.at)?;
    let growth_holdout = options
        .growth
        .map(|settings| crate::growth::holdout(store, latest.at, options.window, settings))
        .transpose()?;
    let reputation = store.mail_reputation(options.at - 30 * 86_400, options.at + 1)?;
    let mut surveys = store.survey_results(Some(latest.id), options.at)?;
    surveys.sort_by(|a, b| {
        a.survey.cmp(&b.survey).then_with(|| {
            let rank_of =
                |s: &tiercare_store::SurveyResults| s.tier.as_deref().map_or(usize::MAX, rank);
            rank_of(a).cmp(&rank_of(b))
        })
    });
    let coupons = store.coupon_figures(options.at, COUPON_REVENUE_DAYS)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "report: moves, work, e-mails and the care programme read"
    );

    Ok(Figures {
        at: options.at,
        generated_at: options.now,
        assessment,
        window: options.window_label.clone(),
        customers,
        revenue,
        tiers: tier_figures,
        pareto,
        rfm,
        moves: move_matrix,
        trend,
        work_by_tier,
        work_by_owner,
        managers,
        emails,
        sms,
        unsubscribes,
        reputation,
        care,
        growth_holdout,
        surveys,
        coupons,
    })
}

/// The index of `tier` in `tiers`, appended when the rules do not list it.
fn tier_index(tiers: &mut Vec<TierInfo>, tier: &str) -> u16 {
    let index = tiers.iter().position(|t| t.id == tier).unwrap_or_else(|| {
        tiers.push(TierInfo {
            id: tier.to_owned(),
            label: None,
        });
        tiers.len() - 1
    });
    u16::try_from(index).unwrap_or(u16::MAX)
}

/// The Pareto curve of `revenues` (one per customer), downsampled, with the boundaries after
/// each tier but the last.
fn pareto(mut revenues: Vec<f64>, tiers: &[TierFigure]) -> Pareto {
    revenues.sort_unstable_by(|a, b| b.total_cmp(a));
    let n = revenues.len();
    let total: f64 = revenues.iter().sum();
    let mut points = vec![(0.0, 0.0)];
    if n > 0 {
        // Sample the customer ranks evenly; the last sample is the last customer.
        let samples = n.min(PARETO_POINTS - 1);
        let mut cumulative = 0.0;
        let mut taken = 0;
        for k in 1..=samples {
            let upto = (k * n).div_ceil(samples);
            while taken < upto {
                cumulative += revenues[taken];
                taken += 1;
            }
            let y = if total > 0.0 { cumulative / total } else { 0.0 };
            points.push((taken as f64 / n as f64, y.min(1.0)));
        }
    }
    let mut boundaries = Vec::new();
    let (mut customers, mut revenue) = (0.0, 0.0);
    for tier in tiers.iter().take(tiers.len().saturating_sub(1)) {
        customers += tier.customer_share;
        revenue += tier.revenue_share;
        boundaries.push(Boundary {
            tier: tier.id.clone(),
            customer_share: customers.min(1.0),
            revenue_share: revenue.min(1.0),
        });
    }
    Pareto { points, boundaries }
}

fn move_matrix(
    tiers: &[String],
    sizes: &[u64],
    moves: &[tiercare_store::TierMoveCount],
    latest: i64,
    previous: Option<Assessment>,
) -> MoveMatrix {
    let mut counts = vec![vec![0_u64; tiers.len()]; tiers.len() + 1];
    let mut moved_in = vec![0_u64; tiers.len()];
    for change in moves.iter().filter(|m| m.assessment_id == latest) {
        let Some(to) = tiers.iter().position(|t| *t == change.to_tier) else {
            continue;
        };
        let row = change
            .from_tier
            .as_ref()
            .and_then(|from| tiers.iter().position(|t| t == from))
            .map_or(0, |from| from + 1);
        counts[row][to] += change.customers;
        moved_in[to] += change.customers;
    }
    // Who is in a tier and did not move into it stayed.
    for (index, size) in sizes.iter().enumerate() {
        counts[index + 1][index] += size.saturating_sub(moved_in[index]);
    }
    let mut from = vec!["new".to_owned()];
    from.extend(tiers.iter().cloned());
    MoveMatrix {
        previous,
        from,
        to: tiers.to_vec(),
        counts,
    }
}

fn trend(
    assessments: &[tiercare_store::AssessmentRow],
    moves: &[tiercare_store::TierMoveCount],
    tiers: &[String],
    rank: &dyn Fn(&str) -> usize,
) -> Vec<TrendPoint> {
    let mut sizes = vec![0_i64; tiers.len()];
    let mut points = Vec::with_capacity(assessments.len());
    let mut moves = moves.iter().peekable();
    let mut sorted: Vec<&tiercare_store::AssessmentRow> = assessments.iter().collect();
    sorted.sort_by_key(|a| a.id);
    for row in sorted {
        let (mut up, mut down, mut new) = (0, 0, 0);
        while let Some(change) = moves.next_if(|m| m.assessment_id <= row.id) {
            let to = rank(&change.to_tier);
            if let Some(size) = sizes.get_mut(to) {
                *size += change.customers as i64;
            }
            match &change.from_tier {
                None => new += change.customers,
                Some(from) => {
                    let from = rank(from);
                    if let Some(size) = sizes.get_mut(from) {
                        *size -= change.customers as i64;
                    }
                    if to < from {
                        up += change.customers;
                    } else {
                        down += change.customers;
                    }
                }
            }
        }
        points.push(TrendPoint {
            assessment: Assessment {
                id: row.id,
                at: row.at,
                ruleset_version: row.ruleset_version.clone(),
            },
            sizes: sizes.iter().map(|s| s.max(&0).unsigned_abs()).collect(),
            up,
            down,
            new,
        });
    }
    let skip = points.len().saturating_sub(TREND_ASSESSMENTS);
    points.split_off(skip)
}

#[cfg(test)]
mod tests {
    //! A workspace of five customers whose right figures are worked out by hand.
    use std::path::Path;

    use tiercare_engine::RecordKind;
    use tiercare_store::{
        AssessmentHeader, Assignee, EmailRecipient, FollowUpAction, NewEmail, NewTask,
        OccurrenceKey, PlannedFollowUp, SuppressionReason, TierDecision,
    };

    use super::*;
    use crate::assess::RuleSource;
    use crate::test_support::import;
    use crate::workspace::Workspace;

    const DAY: i64 = 86_400;
    /// 2025-06-02T00:00:00Z: the second assessment, and the report's time.
    const T2: i64 = 1_748_822_400;
    /// The first assessment, 30 days before.
    const T1: i64 = T2 - 30 * DAY;

    fn assessment(store: &mut Store, at: i64, tiers: &[(i64, &str)]) {
        let decisions: Vec<TierDecision> = tiers
            .iter()
            .map(|&(rowid, tier)| TierDecision {
                customer_rowid: rowid,
                tier: tier.to_owned(),
                reason: "by hand".to_owned(),
                reasons: serde_json::json!([]),
                ..TierDecision::default()
            })
            .collect();
        let header = AssessmentHeader {
            at,
            ruleset_version: "test".to_owned(),
            started_at: at,
            finished_at: at,
            rule_errors: 0,
        };
        store.record_assessment(&header, &decisions).unwrap();
    }

    /// Five customers: C1..C4 spend 600, 250, 100 and 50 in the window, C5 never ordered.
    /// Tiers by hand: first C1 A, C2 B, C3 B, C4 C, C5 C; then C2 moves up to A, C3 down to C
    /// and C4 up to B.
    fn workspace(dir: &Path) -> (Workspace, Store, ReportOptions) {
        let (workspace, _) = Workspace::init(&dir.join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Managers,
            "manager_id,name,capacity\nalice,Alice <b>Ace</b>,2\nbob,Bob,\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,owner,consent_email\n\
             C1,One,one@example.com,alice,true\nC2,Two,two@example.com,alice,true\n\
             C3,Three,three@example.com,alice,true\nC4,Four,four@example.com,bob,true\n\
             C5,Five,five@example.com,bob,true\n",
        );
        // Last orders 10, 20, 30 and 40 days before T2; 3, 2, 1 and 1 orders.
        import(
            &workspace,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\n\
             O1,C1,2025-03-01,200\nO2,C1,2025-04-01,200\nO3,C1,2025-05-23,200\n\
             O4,C2,2025-04-02,125\nO5,C2,2025-05-13,125\n\
             O6,C3,2025-05-03,100\nO7,C4,2025-04-23,50\n",
        );
        assessment(
            &mut store,
            T1,
            &[(1, "A"), (2, "B"), (3, "B"), (4, "C"), (5, "C")],
        );
        assessment(
            &mut store,
            T2,
            &[(1, "A"), (2, "A"), (3, "C"), (4, "B"), (5, "C")],
        );

        // Follow-ups decided four days before T2.
        let decided = T2 - 4 * DAY;
        let mut session = store.begin_followups(decided, "test").unwrap();
        let planned =
            |rule: &str, customer: &str, at: i64, action: FollowUpAction| PlannedFollowUp {
                key: OccurrenceKey::new(rule, customer, at),
                scheduled_at: at,
                action,
                reason: "by hand".to_owned(),
                skip: None,
            };
        let email = || FollowUpAction::Email {
            template: "care".to_owned(),
            survey: None,
            coupon: None,
        };
        // C1 (A): a task for its owner, due a day before T2: done as a follow-up, overdue.
        session
            .record(&planned(
                "review",
                "C1",
                decided,
                FollowUpAction::Task {
                    assignee: Assignee::Owner,
                    title: "Review".to_owned(),
                    due_at: T2 - DAY,
                    note: None,
                },
            ))
            .unwrap();
        let mut compose = |to: &EmailRecipient| -> Result<NewEmail, String> {
            Ok(NewEmail {
                message_id: format!("<{}-{}@test>", to.template, to.customer_id),
                to_address: to.address.clone().ok_or("no address")?,
                subject: "Hello".to_owned(),
                text: "Hello".to_owned(),
                html: None,
            })
        };
        let mut queue = |rule: &str, customer: &str, at: i64| {
            let action = FollowUpAction::Email {
                template: rule.to_owned(),
                survey: None,
                coupon: None,
            };
            session
                .record_with_email(&planned(rule, customer, at, action), Some(&mut compose))
                .unwrap();
        };
        // C2 (A): a care e-mail due before T2, deferred: due.
        queue("care", "C2", T2 - 2 * DAY);
        // C3 (C): a care e-mail five days after T2: upcoming, queued.
        queue("care", "C3", T2 + 5 * DAY);
        // C4 (C, then B): a win-back e-mail sent before T2: done.
        queue("win-back", "C4", T2 - 3 * DAY);
        // C5 (C): a win-back e-mail that bounced: cancelled (counted as skipped).
        queue("win-back", "C5", T2 - 3 * DAY);
        // C4: a care e-mail skipped by a cap.
        let mut skipped = planned("care", "C4", T2 - DAY, email());
        skipped.skip = Some("cap".to_owned());
        session.record(&skipped).unwrap();
        session.finish().unwrap();
        let claimed = store.claim_due(T2 - 3 * DAY, 10).unwrap().emails;
        assert_eq!(claimed.len(), 2);
        for email in claimed {
            if email.message_id.contains("C4") {
                store.mark_sent(email.id, T2 - 2 * DAY, "250 ok").unwrap();
            } else {
                store
                    .mark_failed(email.id, T2 - 2 * DAY, "550 no such user", true)
                    .unwrap();
            }
        }
        let claimed = store.claim_due(T2 - 2 * DAY, 10).unwrap().emails;
        assert_eq!(claimed.len(), 1);
        store
            .mark_deferred(claimed[0].id, T2 - DAY, T2 + DAY, "451 try later")
            .unwrap();
        store
            .suppress(
                "gone@example.com",
                SuppressionReason::Unsubscribe,
                "cli",
                T2 - DAY,
            )
            .unwrap();
        // By hand: C5 (C) a task for bob due after T2 (open); C2 (A) a task alice did.
        let task = |customer: &str, assignee: &str, due_at: i64| NewTask {
            customer_id: customer.to_owned(),
            assignee: assignee.to_owned(),
            title: "Call".to_owned(),
            due_at,
            note: None,
        };
        store
            .add_task(&task("C5", "bob", T2 + 3 * DAY), decided)
            .unwrap();
        let done = store.add_task(&task("C2", "alice", T2), decided).unwrap();
        store
            .complete_task(done.id, "alice", None, T2 - DAY)
            .unwrap();

        let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
            .unwrap()
            .load()
            .unwrap()
            .rules;
        let options = ReportOptions::new(&rules, T2, T2 + 60);
        (workspace, store, options)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn every_chart_has_the_figures_worked_out_by_hand() {
        let tmp = tempfile::tempdir().unwrap();
        let (_workspace, store, options) = workspace(tmp.path());
        let figures = figures(&store, &options).unwrap();
        assert_eq!(figures.assessment.at, T2);
        assert_eq!(figures.window, "365d");

        // Customers and revenue per tier.
        let tiers: Vec<(&str, u64, f64)> = figures
            .tiers
            .iter()
            .map(|t| (t.id.as_str(), t.customers, t.revenue))
            .collect();
        assert_eq!(tiers, [("A", 2, 850.0), ("B", 1, 50.0), ("C", 2, 100.0)]);
        assert_eq!(figures.customers, 5);
        assert!(close(figures.revenue, 1000.0));
        assert!(close(figures.tiers[0].customer_share, 0.4));
        assert!(close(figures.tiers[0].revenue_share, 0.85));
        assert_eq!(figures.tiers[0].label.as_deref(), Some("Key accounts"));

        // Pareto: 600, 250, 100, 50, 0 of 1000.
        let expected = [
            (0.0, 0.0),
            (0.2, 0.6),
            (0.4, 0.85),
            (0.6, 0.95),
            (0.8, 1.0),
            (1.0, 1.0),
        ];
        assert_eq!(figures.pareto.points.len(), expected.len());
        for (got, want) in figures.pareto.points.iter().zip(expected) {
            assert!(
                close(got.0, want.0) && close(got.1, want.1),
                "{got:?} != {want:?}"
            );
        }
        let boundaries: Vec<(&str, f64, f64)> = figures
            .pareto
            .boundaries
            .iter()
            .map(|b| (b.tier.as_str(), b.customer_share, b.revenue_share))
            .collect();
        assert_eq!(boundaries.len(), 2);
        assert_eq!(boundaries[0].0, "A");
        assert!(close(boundaries[0].1, 0.4) && close(boundaries[0].2, 0.85));
        assert_eq!(boundaries[1].0, "B");
        assert!(close(boundaries[1].1, 0.6) && close(boundaries[1].2, 0.9));

        // RFM: R 4/3/2/1 and F 4/3/1/1 for C1..C4; C5 never ordered.
        let filled: Vec<(u8, u8, u64, f64)> = figures
            .rfm
            .cells
            .iter()
            .filter(|c| c.customers > 0)
            .map(|c| (c.r, c.f, c.customers, c.revenue))
            .collect();
        assert_eq!(
            filled,
            [
                (1, 1, 1, 50.0),
                (2, 1, 1, 100.0),
                (3, 3, 1, 250.0),
                (4, 4, 1, 600.0)
            ]
        );
        assert_eq!(figures.rfm.never_ordered, 1);

        // Moves since the first assessment: rows new, A, B, C; columns A, B, C.
        assert_eq!(figures.moves.previous.as_ref().map(|a| a.at), Some(T1));
        assert_eq!(figures.moves.from, ["new", "A", "B", "C"]);
        assert_eq!(
            figures.moves.counts,
            [vec![0, 0, 0], vec![1, 0, 0], vec![1, 0, 1], vec![0, 1, 1]]
        );
        // The trend: five new customers, then two up and one down.
        let trend: Vec<(Vec<u64>, u64, u64, u64)> = figures
            .trend
            .iter()
            .map(|p| (p.sizes.clone(), p.up, p.down, p.new))
            .collect();
        assert_eq!(trend, [(vec![1, 2, 2], 0, 0, 5), (vec![2, 1, 2], 2, 1, 0)]);

        // Follow-up work per tier.
        let work: Vec<(Option<&str>, [u64; 7])> = figures
            .work_by_tier
            .iter()
            .map(|w| {
                (
                    w.tier.as_deref(),
                    [
                        w.upcoming,
                        w.due,
                        w.done,
                        w.skipped,
                        w.tasks_open,
                        w.tasks_overdue,
                        w.tasks_done,
                    ],
                )
            })
            .collect();
        assert_eq!(
            work,
            [
                (Some("A"), [0, 1, 1, 0, 0, 1, 1]),
                (Some("B"), [0, 0, 1, 1, 0, 0, 0]),
                (Some("C"), [1, 0, 0, 1, 1, 0, 0]),
            ]
        );
        let owners: Vec<(&str, u64, u64, u64)> = figures
            .work_by_owner
            .iter()
            .map(|w| (w.assignee.as_str(), w.open, w.overdue, w.done))
            .collect();
        assert_eq!(owners, [("alice", 0, 1, 1), ("bob", 1, 0, 0)]);
        let managers: Vec<(&str, Option<u64>, u64, u64)> = figures
            .managers
            .iter()
            .map(|m| (m.id.as_str(), m.capacity, m.customers, m.open_tasks))
            .collect();
        assert_eq!(managers, [("alice", Some(2), 3, 1), ("bob", None, 2, 1)]);

        // E-mails per rule, and the one unsubscribe (the bounce is no unsubscribe).
        let emails: Vec<(&str, [u64; 7])> = figures
            .emails
            .iter()
            .map(|r| (r.rule_id.as_str(), r.by_outcome()))
            .collect();
        assert_eq!(
            emails,
            [
                ("care", [0, 1, 0, 0, 0, 1, 0]),
                ("win-back", [1, 0, 1, 0, 0, 0, 0])
            ]
        );
        assert_eq!(figures.unsubscribes, 1);

        // The C programme: C4 and C5 from the first assessment, C3 from the second. C4 got an
        // e-mail and moved up; C5's bounced and C3's is not sent yet.
        let care = figures.care.as_ref().unwrap();
        assert_eq!(care.tier, "C");
        assert_eq!(
            (
                care.emailed,
                care.emailed_moved_up,
                care.not_emailed,
                care.not_emailed_moved_up
            ),
            (1, 1, 2, 0)
        );
    }

    #[test]
    fn earlier_times_see_the_outbox_and_the_ledger_as_they_were() {
        let tmp = tempfile::tempdir().unwrap();
        let (_workspace, store, mut options) = workspace(tmp.path());
        // Before any e-mail was claimed: everything queued, nothing done but the task.
        options.at = T2 - 3 * DAY - 60 * 60;
        let figures = figures(&store, &options).unwrap();
        let pending: Vec<(&str, u64, u64)> = figures
            .emails
            .iter()
            .map(|r| (r.rule_id.as_str(), r.pending, r.sent))
            .collect();
        assert_eq!(pending, [("care", 2, 0), ("win-back", 2, 0)]);
        assert_eq!(figures.unsubscribes, 0);
        let care = figures.care.unwrap();
        assert_eq!((care.emailed, care.not_emailed), (0, 2));
    }

    #[test]
    fn a_report_for_the_first_assessment_shows_its_tiers_and_only_new_customers() {
        let tmp = tempfile::tempdir().unwrap();
        let (_workspace, store, mut options) = workspace(tmp.path());
        options.at = T1 + DAY;
        let figures = figures(&store, &options).unwrap();
        assert_eq!(figures.assessment.at, T1);
        let sizes: Vec<u64> = figures.tiers.iter().map(|t| t.customers).collect();
        assert_eq!(sizes, [1, 2, 2]);
        assert_eq!(figures.moves.previous, None);
        assert_eq!(figures.moves.counts[0], [1, 2, 2]);
        assert_eq!(figures.trend.len(), 1);
        // Nothing had been decided or created yet.
        assert!(
            figures.work_by_tier.is_empty(),
            "{:?}",
            figures.work_by_tier
        );
        assert!(figures.work_by_owner.is_empty());
    }

    #[test]
    fn no_assessment_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let (_workspace, store, mut options) = workspace(tmp.path());
        options.at = T1 - DAY;
        let err = figures(&store, &options).unwrap_err();
        assert!(matches!(err, ReportError::NoAssessment { .. }), "{err:?}");
        assert!(
            err.to_string().contains("run `tiercare assess` first"),
            "{err}"
        );
    }

    #[test]
    fn the_page_escapes_customer_data_and_has_a_table_behind_every_chart() {
        let tmp = tempfile::tempdir().unwrap();
        let (_workspace, store, options) = workspace(tmp.path());
        let figures = figures(&store, &options).unwrap();
        let page = super::super::html::render(&figures);
        assert!(page.contains("Alice &lt;b&gt;Ace&lt;/b&gt;"));
        assert!(!page.contains("<b>Ace</b>"));
        assert!(page.contains("not a causal claim"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        let charts = page.matches("<svg class=\"chart\"").count();
        assert!(charts >= 8, "{charts} charts");
        assert!(page.matches("<table>").count() >= charts - 1);
        assert_eq!(page.matches("<title id=").count(), charts);
    }
}
