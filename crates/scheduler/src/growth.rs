//! The growth features of an assessment: every customer's orders in the rules' window, as days
//! in the workspace's zone, summarised for BG/NBD and Gamma-Gamma (`tiercare-growth`), both
//! fitted once per assessment, and each customer's prediction put in their snapshot.
//!
//! Only assessments (and `explain`) compute them; elsewhere (follow-up conditions, `customers
//! --where`, templates) the growth features are none: follow-ups use the segments an
//! assessment derived from them (`segments: { growth: rising }`, `segment_entered`).
//!
//! When the models cannot be fitted (too few customers or repeat buyers, no convergence), the
//! growth features are none for everyone and the reason is in `assess`'s report: rules read them
//! with a default (`p_alive ?? 1.0`), as any optional feature.

use std::collections::HashMap;

use chrono::{Offset, TimeZone};
use serde::{Deserialize, Serialize};
use tiercare_engine::{Feature, FeatureValue, Snapshot};
use tiercare_growth::{
    BgNbd, Expectations, FitQuality, GammaGamma, GrowthError, Prediction, Summary, Wanted, bgnbd,
    gamma_gamma, predict, predict_from, summarize,
};
use tiercare_store::{Store, StoreError, Window};

/// The features this module fills: an assessment whose rules read none of them fits nothing.
pub const FEATURES: [Feature; 8] = [
    Feature::RepeatPurchaseDays,
    Feature::RepeatRecencyDays,
    Feature::PurchaseAgeDays,
    Feature::PAlive,
    Feature::ExpectedOrders90d,
    Feature::ExpectedOrderValue,
    Feature::Clv12m,
    Feature::GrowthPotential,
];

/// The predictions' costly values that rules reading features with `uses` need.
/// `expected_orders(days)` computes its own from the summary, so it needs none of them.
pub fn wanted(uses: impl Fn(Feature) -> bool) -> Wanted {
    Wanted {
        expected_orders_90d: uses(Feature::ExpectedOrders90d),
        clv_12m: uses(Feature::Clv12m),
        growth_potential: uses(Feature::GrowthPotential),
    }
}

/// `[growth]` in `tiercare.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrowthConfig {
    /// The monthly discount rate of `clv_12m` (`monthly_discount`, default 0.01: 1% a month,
    /// about 12.7% a year, `lifetimes`' default).
    pub monthly_discount: f64,
}

impl Default for GrowthConfig {
    fn default() -> Self {
        GrowthConfig {
            monthly_discount: tiercare_growth::DEFAULT_MONTHLY_DISCOUNT,
        }
    }
}

/// Checks `[growth]`: the message says what is wrong and what to do.
pub(crate) fn validate(growth: GrowthConfig) -> Result<GrowthConfig, String> {
    if !(0.0..1.0).contains(&growth.monthly_discount) {
        return Err(
            "[growth] monthly_discount must be at least 0 and below 1 (0.01 is 1% a month)"
                .to_owned(),
        );
    }
    Ok(growth)
}

/// What an assessment needs to compute growth features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowthSettings {
    /// Days are counted in this zone.
    pub timezone: chrono_tz::Tz,
    /// `[growth]`.
    pub config: GrowthConfig,
}

impl Default for GrowthSettings {
    fn default() -> Self {
        GrowthSettings {
            timezone: chrono_tz::UTC,
            config: GrowthConfig::default(),
        }
    }
}

/// The fitted models of one assessment, as stored with it and shown by `assess` and `explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowthFit {
    /// BG/NBD's parameters (`alpha` in days).
    pub bgnbd: BgNbd,
    /// Its fit.
    pub bgnbd_quality: FitQuality,
    /// Gamma-Gamma's parameters (`None` when it could not be fitted: BG/NBD's features stay).
    pub gamma_gamma: Option<GammaGamma>,
    /// Its fit.
    pub gamma_gamma_quality: Option<FitQuality>,
    /// Why Gamma-Gamma could not be fitted.
    pub gamma_gamma_unavailable: Option<String>,
    /// The monthly discount rate of `clv_12m`.
    pub monthly_discount: f64,
    /// The assessment whose stored BG/NBD parameters its optimiser started from (none: a
    /// cold start from generic values; Gamma-Gamma always starts cold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<i64>,
}

/// The outcome of fitting: the fit, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrowthOutcome {
    /// Both models fitted.
    Fitted(GrowthFit),
    /// Not fitted: the reason (the growth features are none).
    Unavailable(String),
}

/// The growth models of one assessment and every customer's prediction.
#[derive(Debug, Default)]
pub struct Growth {
    /// The fit or the reason, `None` when not computed.
    pub outcome: Option<GrowthOutcome>,
    /// Every customer with an order in the window, by rowid: summary and prediction (none
    /// without a fit).
    customers: Vec<(i64, Summary, Option<Prediction>)>,
}

/// One customer's purchases `(day, amount)` and amount in the past 365 days.
type Purchases = (Vec<(i64, f64)>, f64);

/// Seconds in the 365 days of `growth_potential`'s past value.
const YEAR_SECONDS: i64 = 365 * 86_400;

/// Where an explanation's growth fit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FitSource {
    /// Stored with this assessment (id, and the time it was made for).
    Stored {
        /// The assessment's id.
        assessment_id: i64,
        /// Its time (unix seconds).
        at: i64,
    },
    /// No assessment stored a fit: fitted now over every customer's orders.
    FittedNow,
}

/// The bounds of a growth history at `at`: the rules' window and the past year.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    window_start: Option<i64>,
    year_start: i64,
    /// Orders after this are read (the earlier of the two starts).
    since: Option<i64>,
}

impl Bounds {
    fn new(at: i64, window: Window) -> Bounds {
        let window_start = window.seconds().map(|seconds| at.saturating_sub(seconds));
        let year_start = at.saturating_sub(YEAR_SECONDS);
        Bounds {
            window_start,
            year_start,
            since: window_start.map(|w| w.min(year_start)),
        }
    }

    /// Adds one order to a customer's purchases `(day, amount)` and past year's amount.
    fn add(&self, history: &mut Purchases, day: i64, ordered_at: i64, amount: f64) {
        if ordered_at > self.year_start {
            history.1 += amount;
        }
        // Refunds are not purchases (as for orders_total); the window bounds the history.
        if amount >= 0.0 && self.window_start.is_none_or(|w| ordered_at > w) {
            history.0.push((day, amount));
        }
    }
}

/// The stored fit of the latest assessment at or before `at`, parsed (a row that does not
/// parse, from an older or newer version, counts as none).
///
/// # Errors
/// Only a store error.
pub fn stored_fit(
    store: &Store,
    at: i64,
) -> Result<Option<(FitSource, GrowthOutcome)>, StoreError> {
    Ok(store.latest_growth_fit(at)?.and_then(|row| {
        let outcome: GrowthOutcome = serde_json::from_str(&row.fit).ok()?;
        Some((
            FitSource::Stored {
                assessment_id: row.assessment_id,
                at: row.at,
            },
            outcome,
        ))
    }))
}

impl Growth {
    /// Reads every order up to `at` (in `window`, and the past year for the past value),
    /// summarises each customer in days of `settings.timezone` and fits both models, BG/NBD's
    /// optimiser warm-started from the latest stored fit's parameters when there is one. Of the
    /// predictions' costly values only the `wanted` ones are computed (once per distinct
    /// `(x, t_x, T)`); the others are none.
    ///
    /// # Errors
    /// Only a store error; a fit the data cannot support is [`GrowthOutcome::Unavailable`].
    pub fn compute(
        store: &Store,
        at: i64,
        window: Window,
        settings: GrowthSettings,
        wanted: Wanted,
    ) -> Result<Growth, StoreError> {
        let started = std::time::Instant::now();
        let bounds = Bounds::new(at, window);
        let day = |t: i64| day_in(settings.timezone, t);
        let end_day = day(at);
        // Each customer is summarised as soon as the read moves past them (orders come by
        // customer), from one reused buffer: no population's histories are kept.
        let mut summaries: Vec<(i64, Summary, f64)> = Vec::new();
        let mut current: Option<i64> = None;
        let mut history: Purchases = (Vec::new(), 0.0);
        let mut summarise = |customer: i64, history: &Purchases| {
            if let Some(summary) = summarize(&history.0, end_day) {
                summaries.push((customer, summary, history.1));
            }
        };
        store.for_each_order_until(at, bounds.since, &mut |customer, ordered_at, amount| {
            if current != Some(customer) {
                if let Some(previous) = current {
                    summarise(previous, &history);
                }
                current = Some(customer);
                history.0.clear();
                history.1 = 0.0;
            }
            bounds.add(&mut history, day(ordered_at), ordered_at, amount);
        })?;
        if let Some(last) = current {
            summarise(last, &history);
        }
        let read = started.elapsed();
        // By rowid (the read's order already): `fill` finds a customer by binary search.
        summaries.sort_unstable_by_key(|&(customer, _, _)| customer);
        let summarised = started.elapsed();
        let previous = match stored_fit(store, i64::MAX)? {
            Some((FitSource::Stored { assessment_id, .. }, GrowthOutcome::Fitted(fit))) => {
                Some((assessment_id, fit))
            }
            _ => None,
        };
        let all: Vec<Summary> = summaries.iter().map(|&(_, s, _)| s).collect();
        let warm_b = previous.as_ref().map(|(_, fit)| &fit.bgnbd);
        let mut fitted = read;
        let (outcome, customers): (GrowthOutcome, Vec<(i64, Summary, Option<Prediction>)>) =
            match bgnbd::fit_from(&all, warm_b) {
                Ok(b) => {
                    let discount = settings.config.monthly_discount;
                    // Gamma-Gamma always starts cold: on real data (the Online Retail sample) its
                    // likelihood can rise towards a boundary (degenerate, no fit) and still have an
                    // interior local maximum, which a warm start would report instead. It costs a
                    // fifth of BG/NBD's fit at 1M customers.
                    let spend = gamma_gamma::fit(&all);
                    let g = spend.as_ref().ok().map(|g| g.params);
                    fitted = started.elapsed();
                    // BG/NBD's values depend on (x, t_x, T) alone: at 1,000,000 customers about a
                    // third of them are distinct, and each costs ₂F₁ series.
                    let mut expectations: HashMap<(u32, u32, u32), Expectations> = HashMap::new();
                    let customers = summaries
                        .iter()
                        .map(|&(customer, s, past_value)| {
                            let e = expectations
                                .entry((s.frequency, s.recency, s.age))
                                .or_insert_with(|| {
                                    Expectations::new(&b.params, &s, discount, wanted)
                                });
                            (
                                customer,
                                s,
                                Some(predict_from(e, g.as_ref(), s, past_value)),
                            )
                        })
                        .collect();
                    let fit = GrowthFit {
                    bgnbd: b.params,
                    bgnbd_quality: b.quality,
                    gamma_gamma: spend.as_ref().ok().map(|g| g.params),
                    gamma_gamma_quality: spend.as_ref().ok().map(|g| g.quality),
                    gamma_gamma_unavailable: spend.as_ref().err().map(|err| {
                        format!(
                            "{err}; expected_order_value, clv_12m and growth_potential are none for this assessment"
                        )
                    }),
                    monthly_discount: discount,
                    warm_start: previous.as_ref().map(|(id, _)| *id),
                };
                    (GrowthOutcome::Fitted(fit), customers)
                }
                Err(err) => (
                    GrowthOutcome::Unavailable(reason(&err)),
                    summaries.iter().map(|&(c, s, _)| (c, s, None)).collect(),
                ),
            };
        let ms = |d: std::time::Duration| d.as_millis();
        tracing::debug!(
            customers = customers.len(),
            read_ms = ms(read),
            summarise_ms = ms(summarised - read),
            fit_ms = ms(fitted.saturating_sub(summarised)),
            predict_ms = ms(started.elapsed().saturating_sub(fitted.max(summarised))),
            "growth models computed"
        );
        Ok(Growth {
            outcome: Some(outcome),
            customers,
        })
    }

    /// One customer's growth at `at` under a stored `outcome`: only their orders are read
    /// (an index lookup) and summarised as [`Growth::compute`] does, and the prediction uses
    /// the stored parameters (and the monthly discount they were stored with). For the same
    /// `at`, window and zone as the assessment that stored them, the values equal
    /// [`Growth::compute`]'s.
    ///
    /// # Errors
    /// Only a store error.
    pub fn for_customer(
        store: &Store,
        rowid: i64,
        at: i64,
        window: Window,
        settings: GrowthSettings,
        outcome: GrowthOutcome,
    ) -> Result<Growth, StoreError> {
        let bounds = Bounds::new(at, window);
        let day = |t: i64| day_in(settings.timezone, t);
        let mut history = (Vec::new(), 0.0);
        store.for_each_order_of(rowid, at, bounds.since, &mut |ordered_at, amount| {
            bounds.add(&mut history, day(ordered_at), ordered_at, amount);
        })?;
        let summary = summarize(&history.0, day(at));
        let prediction = match (&outcome, summary) {
            (GrowthOutcome::Fitted(fit), Some(s)) => Some(predict(
                &fit.bgnbd,
                fit.gamma_gamma.as_ref(),
                s,
                history.1,
                fit.monthly_discount,
            )),
            _ => None,
        };
        Ok(Growth {
            outcome: Some(outcome),
            customers: summary
                .map(|s| (rowid, s, prediction))
                .into_iter()
                .collect(),
        })
    }

    /// Puts customer `rowid`'s growth features in `snapshot` (none where unknown).
    pub fn fill(&self, snapshot: &mut Snapshot, rowid: i64) {
        let found = self.find(rowid);
        let summary = found.map(|c| &c.1);
        let prediction = found.and_then(|c| c.2.as_ref());
        let int = |v: Option<u32>| v.map_or(FeatureValue::None, |v| FeatureValue::Int(v.into()));
        let float = |v: Option<f64>| v.map_or(FeatureValue::None, FeatureValue::Float);
        let values = [
            (
                Feature::RepeatPurchaseDays,
                int(summary.map(|s| s.frequency)),
            ),
            (Feature::RepeatRecencyDays, int(summary.map(|s| s.recency))),
            (Feature::PurchaseAgeDays, int(summary.map(|s| s.age))),
            (Feature::PAlive, float(prediction.map(|p| p.p_alive))),
            (
                Feature::ExpectedOrders90d,
                float(prediction.and_then(|p| p.expected_orders_90d)),
            ),
            (
                Feature::ExpectedOrderValue,
                float(prediction.and_then(|p| p.expected_order_value)),
            ),
            (Feature::Clv12m, float(prediction.and_then(|p| p.clv_12m))),
            (
                Feature::GrowthPotential,
                float(prediction.and_then(|p| p.growth_potential)),
            ),
        ];
        for (feature, value) in values {
            // Every value matches its feature's type (int or float, optional) by construction.
            let _ = snapshot.set(feature, value);
        }
        // `expected_orders(days)` in scripts: the fitted parameters with the summary above.
        snapshot.set_growth_model(match &self.outcome {
            Some(GrowthOutcome::Fitted(fit)) if summary.is_some() => Some(fit.bgnbd),
            _ => None,
        });
    }

    /// Customer `rowid`'s summary (none without an order in the window).
    #[must_use]
    pub fn summary(&self, rowid: i64) -> Option<Summary> {
        self.find(rowid).map(|c| c.1)
    }

    /// Customer `rowid`'s prediction (none without a fit or an order in the window).
    #[must_use]
    pub fn prediction(&self, rowid: i64) -> Option<Prediction> {
        self.find(rowid).and_then(|c| c.2)
    }

    fn find(&self, rowid: i64) -> Option<&(i64, Summary, Option<Prediction>)> {
        self.customers
            .binary_search_by_key(&rowid, |c| c.0)
            .ok()
            .map(|index| &self.customers[index])
    }

    /// The JSON stored with the assessment.
    #[must_use]
    pub fn record_json(&self) -> Option<String> {
        self.outcome
            .as_ref()
            .and_then(|o| serde_json::to_string(o).ok())
    }
}

/// An assessment's [`Growth::compute`], run on a thread of the caller's scope with its own
/// connection to the store's file while the caller computes the features (each reads the orders
/// in its own pass: on two cores their times overlap), and waited for when the first customer's
/// growth is needed. A store without a file (in memory) computes it at once, on the caller's
/// thread.
pub(crate) struct GrowthTask<'scope> {
    state: TaskState<'scope>,
}

enum TaskState<'scope> {
    Running(std::thread::ScopedJoinHandle<'scope, Result<Growth, StoreError>>),
    Ready(Growth),
    Failed(StoreError),
}

impl<'scope> GrowthTask<'scope> {
    /// Starts [`Growth::compute`] over `store`'s data (through a new connection to its file).
    pub(crate) fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        store: &Store,
        at: i64,
        window: Window,
        settings: GrowthSettings,
        wanted: Wanted,
    ) -> GrowthTask<'scope> {
        let state = match store.path() {
            Some(path) => {
                let path = path.to_owned();
                TaskState::Running(scope.spawn(move || {
                    let store = Store::open(&path)?;
                    Growth::compute(&store, at, window, settings, wanted)
                }))
            }
            None => Self::done(Growth::compute(store, at, window, settings, wanted)),
        };
        GrowthTask { state }
    }

    /// No growth features (the rules read none): none for every customer.
    pub(crate) fn none() -> GrowthTask<'scope> {
        GrowthTask {
            state: TaskState::Ready(Growth::default()),
        }
    }

    fn done(result: Result<Growth, StoreError>) -> TaskState<'scope> {
        match result {
            Ok(growth) => TaskState::Ready(growth),
            Err(err) => TaskState::Failed(err),
        }
    }

    /// The growth, waited for on the first call; `None` when computing it failed
    /// ([`GrowthTask::finish`] gives the error).
    pub(crate) fn get(&mut self) -> Option<&Growth> {
        let state = std::mem::replace(&mut self.state, TaskState::Ready(Growth::default()));
        self.state = match state {
            TaskState::Running(handle) => Self::done(
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            ),
            done => done,
        };
        match &self.state {
            TaskState::Ready(growth) => Some(growth),
            _ => None,
        }
    }

    /// The growth, or the store error that stopped it.
    pub(crate) fn finish(mut self) -> Result<Growth, StoreError> {
        self.get();
        match self.state {
            TaskState::Ready(growth) => Ok(growth),
            TaskState::Failed(err) => Err(err),
            TaskState::Running(_) => unreachable!("`get` waited for the thread"),
        }
    }
}

/// The report's holdout: the last this many days before the assessment.
pub const HOLDOUT_DAYS: i64 = 90;

/// Predicted against actual on a holdout, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutCheck {
    /// The calibration period ends here (unix seconds); the holdout runs from it to `at`.
    pub calibration_end: i64,
    /// The holdout's length in days.
    pub days: i64,
    /// BG/NBD fitted on the calibration period only.
    pub bgnbd: BgNbd,
    /// Its fit.
    pub quality: FitQuality,
    /// Customers by calibration frequency: mean purchase days in the holdout, actual and
    /// predicted.
    pub rows: Vec<tiercare_growth::HoldoutRow>,
    /// The calibration's customers week by week from the first one's first purchase day to
    /// `at`: cumulative repeat purchase days, actual and expected (the BG/NBD paper's Figure 4;
    /// empty where the expectation is undefined).
    pub tracking: Vec<tiercare_growth::TrackingWeek>,
    /// The last week that ends in the calibration period (the holdout starts after it).
    pub calibration_weeks: u32,
}

/// The holdout check, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldoutOutcome {
    /// Fitted and compared.
    Checked(HoldoutCheck),
    /// Not fitted: the reason.
    Unavailable(String),
}

/// Fits BG/NBD on the orders up to `at - HOLDOUT_DAYS` (in `window` as of then, days in
/// `settings.timezone`) and compares what it expects of each calibration customer in the
/// holdout with the purchase days they actually made up to `at`.
///
/// # Errors
/// Only a store error.
pub fn holdout(
    store: &Store,
    at: i64,
    window: Window,
    settings: GrowthSettings,
) -> Result<HoldoutOutcome, StoreError> {
    let calibration_end = at.saturating_sub(HOLDOUT_DAYS * 86_400);
    let since = window
        .seconds()
        .map(|seconds| calibration_end.saturating_sub(seconds));
    let day = |t: i64| day_in(settings.timezone, t);
    let (end_day, at_day) = (day(calibration_end), day(at));
    let mut histories: Vec<(i64, Vec<(i64, f64)>)> = Vec::new();
    store.for_each_order_until(at, since, &mut |customer, ordered_at, amount| {
        if histories.last().is_none_or(|h| h.0 != customer) {
            histories.push((customer, Vec::new()));
        }
        if amount >= 0.0
            && let Some(last) = histories.last_mut()
        {
            last.1.push((day(ordered_at), amount));
        }
    })?;
    let customers: Vec<(Summary, u32)> = histories
        .iter()
        .filter_map(|(_, purchases)| {
            let summary = summarize(purchases, end_day)?;
            let mut later: Vec<i64> = purchases
                .iter()
                .map(|&(d, _)| d)
                .filter(|&d| d > end_day && d <= at_day)
                .collect();
            later.sort_unstable();
            later.dedup();
            Some((summary, u32::try_from(later.len()).unwrap_or(u32::MAX)))
        })
        .collect();
    let summaries: Vec<Summary> = customers.iter().map(|(s, _)| *s).collect();
    // The tracking chart's cohort: the calibration's customers, with all their purchase days
    // up to `at` (distinct, refunds left out as above).
    let mut first_days = Vec::with_capacity(customers.len());
    let mut repeat_days = Vec::new();
    for (_, purchases) in &histories {
        let mut days: Vec<i64> = purchases
            .iter()
            .map(|&(d, _)| d)
            .filter(|&d| d <= at_day)
            .collect();
        days.sort_unstable();
        days.dedup();
        if days.first().is_some_and(|&first| first <= end_day) {
            first_days.push(days[0]);
            repeat_days.extend_from_slice(&days[1..]);
        }
    }
    Ok(match bgnbd::fit(&summaries) {
        Ok(fit) => HoldoutOutcome::Checked(HoldoutCheck {
            calibration_end,
            days: HOLDOUT_DAYS,
            tracking: tiercare_growth::cumulative_repeat_purchases(
                &fit.params,
                &first_days,
                &repeat_days,
                at_day,
            )
            .unwrap_or_default(),
            calibration_weeks: first_days.iter().min().map_or(0, |&start| {
                u32::try_from((end_day - start + 1) / 7).unwrap_or(0)
            }),
            rows: tiercare_growth::holdout_by_frequency(
                &fit.params,
                &customers,
                (at_day - end_day) as f64,
                8,
            ),
            bgnbd: fit.params,
            quality: fit.quality,
        }),
        Err(err) => HoldoutOutcome::Unavailable(err.to_string()),
    })
}

/// The day number of `t` in `zone` (days since 1970-01-01 on its calendar): `t` shifted by the
/// zone's UTC offset at `t`, in whole days. The same as the local date's day number
/// (`timestamp_opt(t, 0)`'s date), without building the local date and counting its days back
/// (a tenth of the growth read at 1,000,000 customers, one per order).
fn day_in(zone: chrono_tz::Tz, t: i64) -> i64 {
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(utc) => {
            let offset = zone.offset_from_utc_datetime(&utc.naive_utc()).fix();
            (t + i64::from(offset.local_minus_utc())).div_euclid(86_400)
        }
        None => t.div_euclid(86_400),
    }
}

/// The reason shown when the models cannot be fitted.
fn reason(err: &GrowthError) -> String {
    format!("{err}; the growth features (p_alive, clv_12m, ...) are none for this assessment")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use crate::config::Config;

    #[test]
    fn a_day_in_a_zone_is_the_local_dates_day_number() {
        // The local date's own day number, as the growth read used to compute it per order.
        let by_date = |zone: chrono_tz::Tz, t: i64| -> i64 {
            zone.timestamp_opt(t, 0)
                .single()
                .map_or(t.div_euclid(86_400), |local| {
                    local.date_naive().to_epoch_days().into()
                })
        };
        let zones = [
            chrono_tz::UTC,
            chrono_tz::Europe::London,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::St_Johns,
            chrono_tz::Pacific::Apia,
            chrono_tz::Pacific::Kiritimati,
            chrono_tz::America::Sao_Paulo,
        ];
        // Every 2 h 12 min less a second over 1969-2031 (DST changes, Apia's skipped day, the
        // Kathmandu and St John's odd offsets, times before 1970), each second of two hours
        // around London's changes of 2021, and times out of chrono's range.
        let mut times: Vec<i64> = (-86_400 * 400..1_950_000_000).step_by(7919).collect();
        for change in [1_616_893_200, 1_635_642_000] {
            times.extend(change - 3600..change + 3600);
        }
        times.extend([i64::MIN, i64::MAX, -1, 0]);
        for zone in zones {
            for &t in &times {
                assert_eq!(super::day_in(zone, t), by_date(zone, t), "{zone} at {t}");
            }
        }
    }

    #[test]
    fn the_monthly_discount_is_read_and_checked() {
        let config = Config::parse("[growth]\nmonthly_discount = 0.02\n").unwrap();
        assert_eq!(config.growth_settings().config.monthly_discount, 0.02);
        assert_eq!(
            Config::parse("").unwrap().growth.monthly_discount,
            tiercare_growth::DEFAULT_MONTHLY_DISCOUNT
        );
        let err = Config::parse("[growth]\nmonthly_discount = 1.5\n").unwrap_err();
        assert!(err.message.contains("monthly_discount"), "{err:?}");
        assert!(Config::parse("[growth]\nrate = 0.02\n").is_err());
    }
}
