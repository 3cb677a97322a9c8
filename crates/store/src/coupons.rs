//! Coupon pools: single-use codes imported into a pool or generated from a pattern, issued to
//! a customer at most once per (pool, customer) with the follow-up whose e-mail carries them,
//! and redeemed by the imported order that carries them.
//!
//! A code is written in the follow-up ledger's transaction
//! ([`crate::FollowUpSession::record_with_email`]): the e-mail, its outbox row and the issued
//! code commit together or not at all, so a crash never leaves a code issued without its
//! e-mail, nor an e-mail whose code is not recorded. `UNIQUE (pool, customer_id)` makes a second
//! code for the same customer impossible; a second e-mail of the same pool to the customer
//! carries the code they already have.

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use tiercare_types::{CodePart, CodePattern};

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// What an e-mail follow-up asks for: one code of a pool for its customer. Stored in the
/// follow-up's action (`"coupon": {...}`), so the ledger says which pool an e-mail drew from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CouponRequest {
    /// The pool's name.
    pub pool: String,
    /// The pattern of a generated pool (`WB-{AAAA}-{9999}`); `None`: imported codes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// What the coupon is worth, as shown to the customer (`10%`, `¥20`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What it is for, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The code expires this many days after it is issued; `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_days: Option<u32>,
}

/// A code issued to a customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedCoupon {
    /// The pool.
    pub pool: String,
    /// The code.
    pub code: String,
    /// What it is worth, as shown.
    pub value: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// When it was issued, unix seconds UTC.
    pub issued_at: i64,
    /// When it expires, unix seconds UTC; `None`: never.
    pub expires_at: Option<i64>,
    /// When an order redeemed it.
    pub redeemed_at: Option<i64>,
}

/// One pool's codes by state, as `tiercare coupons status` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    /// The pool.
    pub pool: String,
    /// Codes not issued yet (imported pools; a generated pool makes its codes when it issues).
    pub available: u64,
    /// Codes issued and neither redeemed nor expired.
    pub issued: u64,
    /// Codes redeemed by an order.
    pub redeemed: u64,
    /// Codes issued, not redeemed, past their expiry.
    pub expired: u64,
}

/// What [`Store::import_coupons`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CouponImport {
    /// Codes added to the pool.
    pub added: u64,
    /// Codes already in this pool (a file imported again): nothing written.
    pub unchanged: u64,
    /// Rows refused: `(row, why)`, the row counted from 1 as in the file.
    pub rejected: Vec<(u64, String)>,
}

/// Redemptions found by an order import: counted, and an unknown code is reported, not an
/// error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedemptionTally {
    /// Codes newly redeemed.
    pub redeemed: u64,
    /// Orders carrying a code no customer was issued (unknown, or another customer's).
    pub unknown: u64,
}

impl Store {
    /// Adds the codes of `rows` (`(row number, code)`, blank codes already left out) to
    /// `pool`, in one `IMMEDIATE` transaction at `now`. A code twice in the file, or already in
    /// another pool, is rejected with its row; one already in this pool is unchanged (importing
    /// a file again adds nothing).
    pub fn import_coupons(
        &mut self,
        pool: &str,
        rows: &[(u64, String)],
        now: i64,
    ) -> Result<CouponImport, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let mut report = CouponImport::default();
        let mut first_row: HashMap<&str, u64> = HashMap::new();
        {
            let mut find = tx
                .prepare("SELECT pool FROM coupons WHERE code = ?1")
                .at(path)?;
            let mut insert = tx
                .prepare(
                    "INSERT INTO coupons (pool, code, source, created_at) \
                     VALUES (?1, ?2, 'imported', ?3)",
                )
                .at(path)?;
            for (row, code) in rows {
                let code = code.trim();
                if let Some(first) = first_row.get(code) {
                    report.rejected.push((
                        *row,
                        format!("the code is also on row {first}: each code is used once"),
                    ));
                    continue;
                }
                first_row.insert(code, *row);
                if code.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    report
                        .rejected
                        .push((*row, "a code cannot contain spaces".to_owned()));
                    continue;
                }
                let stored: Option<String> =
                    find.query_row([code], |r| r.get(0)).optional().at(path)?;
                match stored {
                    Some(other) if other == pool => report.unchanged += 1,
                    Some(other) => report.rejected.push((
                        *row,
                        format!("the code is already in pool '{other}': each code is used once"),
                    )),
                    None => {
                        insert.execute(params![pool, code, now]).at(path)?;
                        report.added += 1;
                    }
                }
            }
        }
        tx.commit().at(path)?;
        Ok(report)
    }

    /// Every pool's codes by state at `now`, by pool name; `declared` pools without any code
    /// are listed too (all zero).
    pub fn coupon_pools(&self, now: i64, declared: &[&str]) -> Result<Vec<PoolStatus>, StoreError> {
        let path = self.label.as_path();
        let mut pools: BTreeMap<String, PoolStatus> = declared
            .iter()
            .map(|name| {
                (
                    (*name).to_owned(),
                    PoolStatus {
                        pool: (*name).to_owned(),
                        ..PoolStatus::default()
                    },
                )
            })
            .collect();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT pool, \
                 sum(customer_id IS NULL), \
                 sum(customer_id IS NOT NULL AND redeemed_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > ?1)), \
                 sum(redeemed_at IS NOT NULL), \
                 sum(customer_id IS NOT NULL AND redeemed_at IS NULL AND expires_at <= ?1) \
                 FROM coupons GROUP BY pool",
            )
            .at(path)?;
        let rows = stmt
            .query_map([now], |row| {
                let count = |i: usize| -> rusqlite::Result<u64> {
                    Ok(u64::try_from(row.get::<_, Option<i64>>(i)?.unwrap_or(0)).unwrap_or(0))
                };
                Ok(PoolStatus {
                    pool: row.get(0)?,
                    available: count(1)?,
                    issued: count(2)?,
                    redeemed: count(3)?,
                    expired: count(4)?,
                })
            })
            .at(path)?;
        for status in rows {
            let status = status.at(path)?;
            pools.insert(status.pool.clone(), status);
        }
        Ok(pools.into_values().collect())
    }

    /// The codes issued to the customer with `external_id`, latest first.
    pub fn coupons_of(&self, external_id: &str) -> Result<Vec<IssuedCoupon>, StoreError> {
        self.rows_of_customer(
            external_id,
            &format!("SELECT {ISSUED_COLUMNS} FROM coupons WHERE customer_id = ?1 ORDER BY issued_at DESC, id DESC"),
            issued_from_row,
        )
    }

    /// The code the e-mail of follow-up `followup_id` carries: the code of its pool issued to
    /// its customer, if its action asks for one. The delivery gate renders the e-mail again
    /// with it, so the customer gets the code that was recorded.
    pub fn coupon_of_followup(&self, followup_id: i64) -> Result<Option<IssuedCoupon>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {ISSUED_COLUMNS} FROM followups f JOIN coupons c \
                 ON c.customer_id = f.customer_id \
                 AND c.pool = json_extract(f.action, '$.coupon.pool') WHERE f.id = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row([followup_id], issued_from_row).optional())
            .at(&self.label)
    }
}

/// Coupons of one follow-up rule and tier (the customer's tier when the code was issued), as
/// the report shows them ([`Store::coupon_figures`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CouponFigures {
    /// The follow-up rule that issued the codes (`""`: none recorded).
    pub rule_id: String,
    /// The customers' tier at issue (`""`: none).
    pub tier: String,
    /// Codes issued by `at`.
    pub issued: u64,
    /// Of those, codes redeemed by `at`.
    pub redeemed: u64,
    /// The redeemers' order amounts (refunds included) in the `days` days before their code
    /// was issued: `issued_at - days × 86400 <= ordered_at < issued_at`.
    pub redeemers_revenue_before: f64,
    /// Their order amounts in the `days` days from issue on: `issued_at <= ordered_at <
    /// issued_at + days × 86400`, and `<= at`.
    pub redeemers_revenue_after: f64,
}

impl Store {
    /// Coupons issued and redeemed by `at`, per follow-up rule and tier, with the revenue of
    /// the redeemers in the `days` days before and after their code was issued; sorted by rule
    /// and tier.
    pub fn coupon_figures(&self, at: i64, days: i64) -> Result<Vec<CouponFigures>, StoreError> {
        let path = self.label.as_path();
        let window = days.saturating_mul(86_400);
        let mut figures: BTreeMap<(String, String), CouponFigures> = BTreeMap::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT coalesce(rule_id, ''), coalesce(tier, ''), count(*),                  sum(redeemed_at IS NOT NULL AND redeemed_at <= ?1)                  FROM coupons WHERE issued_at <= ?1 GROUP BY 1, 2",
            )
            .at(path)?;
        let rows = stmt
            .query_map([at], |row| {
                Ok(CouponFigures {
                    rule_id: row.get(0)?,
                    tier: row.get(1)?,
                    issued: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                    redeemed: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    ..CouponFigures::default()
                })
            })
            .at(path)?;
        for row in rows {
            let row = row.at(path)?;
            figures.insert((row.rule_id.clone(), row.tier.clone()), row);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT coalesce(k.rule_id, ''), coalesce(k.tier, ''),                  total(CASE WHEN o.ordered_at < k.issued_at THEN o.amount END),                  total(CASE WHEN o.ordered_at >= k.issued_at AND o.ordered_at <= ?1                        THEN o.amount END)                  FROM coupons k JOIN orders o ON o.customer_id = k.customer_id                  WHERE k.issued_at <= ?1 AND k.redeemed_at <= ?1                  AND o.ordered_at >= k.issued_at - ?2 AND o.ordered_at < k.issued_at + ?2                  GROUP BY 1, 2",
            )
            .at(path)?;
        let rows = stmt
            .query_map([at, window], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, f64>(2)?,
                    row.get::<_, f64>(3)?,
                ))
            })
            .at(path)?;
        for row in rows {
            let (rule_id, tier, before, after) = row.at(path)?;
            if let Some(figure) = figures.get_mut(&(rule_id, tier)) {
                figure.redeemers_revenue_before = before;
                figure.redeemers_revenue_after = after;
            }
        }
        Ok(figures.into_values().collect())
    }
}

const ISSUED_COLUMNS: &str = "pool, code, value, description, issued_at, expires_at, redeemed_at";

fn issued_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<IssuedCoupon> {
    Ok(IssuedCoupon {
        pool: row.get(0)?,
        code: row.get(1)?,
        value: row.get(2)?,
        description: row.get(3)?,
        issued_at: row.get(4)?,
        expires_at: row.get(5)?,
        redeemed_at: row.get(6)?,
    })
}

/// The code a new e-mail follow-up will carry, chosen before anything is written.
#[derive(Debug)]
pub(crate) enum Choice {
    /// The customer already has this code of the pool: nothing to write.
    Held(IssuedCoupon),
    /// The available imported code with this row id.
    Imported(i64, IssuedCoupon),
    /// A newly generated code.
    Generated(IssuedCoupon),
}

impl Choice {
    /// The code as the e-mail shows it.
    pub(crate) fn coupon(&self) -> &IssuedCoupon {
        match self {
            Choice::Held(coupon) | Choice::Imported(_, coupon) | Choice::Generated(coupon) => {
                coupon
            }
        }
    }
}

/// How many times a generated code that collides with a stored one is drawn again.
const GENERATE_ATTEMPTS: usize = 16;

/// Chooses the code of `request`'s pool for the customer `customer`, issued at `now` (the
/// e-mail's scheduled time: a code is valid from when its e-mail is due), writing nothing:
/// the one they hold (unless redeemed or expired: then `Err(why)`), else the pool's oldest
/// available imported code, else one generated from the pool's pattern. `Err(why)` when there
/// is none (an empty imported pool): the follow-up is skipped with that reason, and no e-mail
/// goes out without its code.
pub(crate) fn choose(
    tx: &Transaction<'_>,
    request: &CouponRequest,
    customer: i64,
    now: i64,
) -> rusqlite::Result<Result<Choice, String>> {
    let pool = request.pool.trim();
    let held = tx
        .prepare_cached(&format!(
            "SELECT {ISSUED_COLUMNS} FROM coupons WHERE pool = ?1 AND customer_id = ?2"
        ))?
        .query_row(params![pool, customer], issued_from_row)
        .optional()?;
    if let Some(held) = held {
        if held.redeemed_at.is_some() {
            return Ok(Err(format!(
                "the customer already redeemed their coupon of pool '{pool}' (one per customer)"
            )));
        }
        if held.expires_at.is_some_and(|at| at <= now) {
            return Ok(Err(format!(
                "the customer's coupon of pool '{pool}' expired (one per customer)"
            )));
        }
        return Ok(Ok(Choice::Held(held)));
    }
    let expires_at = request
        .expires_after_days
        .map(|days| now.saturating_add(i64::from(days) * 86_400));
    let issued = |code: String| IssuedCoupon {
        pool: pool.to_owned(),
        code,
        value: request.value.clone(),
        description: request.description.clone(),
        issued_at: now,
        expires_at,
        redeemed_at: None,
    };
    let available: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, code FROM coupons WHERE pool = ?1 AND customer_id IS NULL \
             ORDER BY id LIMIT 1",
        )?
        .query_row([pool], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((id, code)) = available {
        return Ok(Ok(Choice::Imported(id, issued(code))));
    }
    let Some(pattern) = request.pattern.as_deref() else {
        return Ok(Err(format!(
            "coupon pool '{pool}' has no codes left: import more with \
             `tiercare coupons import {pool} FILE` (no e-mail goes out without its code)"
        )));
    };
    let pattern = match CodePattern::parse(pattern) {
        Ok(pattern) => pattern,
        Err(why) => return Ok(Err(format!("coupon pool '{pool}': its pattern: {why}"))),
    };
    let mut exists = tx.prepare_cached("SELECT 1 FROM coupons WHERE code = ?1")?;
    for _ in 0..GENERATE_ATTEMPTS {
        let code = generate(&pattern);
        if !exists.exists([&code])? {
            return Ok(Ok(Choice::Generated(issued(code))));
        }
    }
    Ok(Err(format!(
        "coupon pool '{pool}': {GENERATE_ATTEMPTS} generated codes in a row were taken: \
         the pattern has too few codes left, make it longer"
    )))
}

/// A code from `pattern`, drawn from the thread's cryptographically secure generator (ChaCha
/// seeded by the operating system), so one code tells nothing about another.
pub(crate) fn generate(pattern: &CodePattern) -> String {
    let mut rng = rand::rng();
    pattern
        .parts()
        .iter()
        .map(|part| match part {
            CodePart::Literal(text) => text.clone(),
            CodePart::Random(class) => {
                let alphabet = CodePattern::alphabet(*class);
                char::from(alphabet[rng.random_range(0..alphabet.len())]).to_string()
            }
        })
        .collect()
}

/// Writes `choice` for the follow-up `followup_id` of rule `rule_id` (the customer's tier at
/// issue kept for the report), in the follow-up's transaction.
pub(crate) fn issue(
    tx: &Transaction<'_>,
    choice: &Choice,
    customer: i64,
    followup_id: i64,
    rule_id: &str,
) -> rusqlite::Result<()> {
    let tier: Option<String> = tx
        .prepare_cached("SELECT tier FROM customer_tiers WHERE customer_id = ?1")?
        .query_row([customer], |row| row.get(0))
        .optional()?;
    match choice {
        Choice::Held(_) => {}
        Choice::Imported(id, coupon) => {
            tx.prepare_cached(
                "UPDATE coupons SET customer_id = ?2, followup_id = ?3, rule_id = ?4, tier = ?5, \
                 issued_at = ?6, expires_at = ?7, value = ?8, description = ?9 \
                 WHERE id = ?1 AND customer_id IS NULL",
            )?
            .execute(params![
                id,
                customer,
                followup_id,
                rule_id,
                tier,
                coupon.issued_at,
                coupon.expires_at,
                coupon.value,
                coupon.description,
            ])?;
        }
        Choice::Generated(coupon) => {
            tx.prepare_cached(
                "INSERT INTO coupons (pool, code, source, created_at, customer_id, followup_id, \
                 rule_id, tier, issued_at, expires_at, value, description) \
                 VALUES (?1, ?2, 'generated', ?3, ?4, ?5, ?6, ?7, ?3, ?8, ?9, ?10)",
            )?
            .execute(params![
                coupon.pool,
                coupon.code,
                coupon.issued_at,
                customer,
                followup_id,
                rule_id,
                tier,
                coupon.expires_at,
                coupon.value,
                coupon.description,
            ])?;
        }
    }
    Ok(())
}

/// Records that order `order` of customer `customer`, placed at `ordered_at`, carried `code`:
/// the code is redeemed when it was issued to that customer and not redeemed yet. Importing the
/// order again changes nothing. Returns whether the code is known (issued to the customer).
pub(crate) fn redeem(
    conn: &rusqlite::Connection,
    code: &str,
    customer: i64,
    order: &str,
    ordered_at: i64,
) -> rusqlite::Result<Redeemed> {
    let code = code.trim();
    let stored: Option<(Option<i64>, Option<String>)> = conn
        .prepare_cached(
            "SELECT redeemed_at, redeemed_order FROM coupons WHERE code = ?1 AND customer_id = ?2",
        )?
        .query_row(params![code, customer], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(match stored {
        None => Redeemed::Unknown,
        Some((Some(_), _)) => Redeemed::Already,
        Some((None, _)) => {
            conn.prepare_cached(
                "UPDATE coupons SET redeemed_at = ?3, redeemed_order = ?4 \
                 WHERE code = ?1 AND customer_id = ?2 AND redeemed_at IS NULL",
            )?
            .execute(params![code, customer, ordered_at, order])?;
            Redeemed::Now
        }
    })
}

/// What [`redeem`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redeemed {
    /// Redeemed by this order now.
    Now,
    /// Redeemed before (this order imported again, or another order used it first).
    Already,
    /// No such code issued to this customer.
    Unknown,
}
