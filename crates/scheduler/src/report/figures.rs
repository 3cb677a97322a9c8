//! The figures behind every chart of the report, gathered from the store.

use serde::Serialize;
use tiercare_store::{
    CareProgramme, OwnerWork, RuleEmails, Store, StoreError, TierWork, Window,
};

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
        at = crate::assess::format_time(*at)
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
            window: match window.seconds() {
                Some(seconds) => Window::Seconds(seconds),
                None => Window::All,
            },
            window_label: match window {
                tiercare_engine::Window::All => "all time".to_owned(),
                tiercare_engine::Window::Days(days) => format!("{days}d"),
            },
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
    /// E-mail outcomes per follow-up rule; `None` when the database has no outbox.
    pub emails: Option<Vec<RuleEmails>>,
    /// Addresses unsubscribed; `None` when the database has no suppression list.
    pub unsubscribes: Option<u64>,
    /// The lowest tier's care programme; `None` with fewer than two tiers.
    pub care: Option<CareProgramme>,
}

/// Gathers every figure of the report from `store`.
pub fn figures(store: &Store, options: &ReportOptions) -> Result<Figures, ReportError> {
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
        work_by_owner: store.task_work_by_assignee(options.at)?,
        managers,
        emails: store.email_outcomes(options.at)?,
        unsubscribes: store.unsubscribes(options.at)?,
        care,
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
