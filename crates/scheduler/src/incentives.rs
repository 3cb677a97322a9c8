//! Incentives: coupon pools (imported codes, generated ones) and what the rules say about
//! them. The rules declare pools (`coupons:`); e-mails carry a code (`email: { coupon: POOL }`),
//! issued by the store in the follow-up's transaction; `tiercare coupons` imports codes and shows
//! each pool's state, warning when an imported pool runs low.

use std::io;
use std::path::{Path, PathBuf};

use chrono::TimeZone;
use chrono_tz::Tz;
use tiercare_engine::{CouponContext, CouponPool, Diagnostic, RuleSet};
use tiercare_store::{CouponImport, CouponRequest, IssuedCoupon, PoolStatus, Store, StoreError};

/// Why coupons could not be imported or listed.
#[derive(Debug, thiserror::Error)]
pub enum IncentivesError {
    /// The codes file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The pool name is not one a pool can have.
    #[error("`{0}` cannot be a pool name: use letters, digits, `_`, `-` and `.`")]
    PoolName(String),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store needs to issue a code of pool `pool`, as the rules declare it (a pool the
/// rules do not declare, which `check` refuses, issues imported codes without value or expiry).
#[must_use]
pub fn coupon_request(rules: &RuleSet, pool: &str) -> CouponRequest {
    let declared = rules.coupon_pool(pool);
    CouponRequest {
        pool: pool.to_owned(),
        pattern: declared.and_then(|p| p.pattern.clone()),
        value: declared.and_then(|p| p.value.clone()),
        description: declared.and_then(|p| p.description.clone()),
        expires_after_days: declared.and_then(|p| p.expires_after_days),
    }
}

/// An issued code as templates see it, its expiry as the last day it can be used in `zone`.
#[must_use]
pub fn coupon_context(coupon: &IssuedCoupon, zone: Tz) -> CouponContext {
    CouponContext {
        code: coupon.code.clone(),
        pool: coupon.pool.clone(),
        value: coupon.value.clone().unwrap_or_default(),
        description: coupon.description.clone().unwrap_or_default(),
        expires: coupon
            .expires_at
            .and_then(|at| zone.timestamp_opt(at - 1, 0).single())
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    }
}

/// The codes of a text or CSV file: one per line, or the first column of a CSV (a header row
/// whose first cell is `code` is skipped; quotes around a code are removed); blank lines and
/// lines starting with `#` are left out. Each code comes with its line number.
pub fn read_codes(path: &Path) -> Result<Vec<(u64, String)>, IncentivesError> {
    let text = std::fs::read_to_string(path).map_err(|source| IncentivesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_codes(&text))
}

fn parse_codes(text: &str) -> Vec<(u64, String)> {
    let mut codes = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split(',').next().unwrap_or_default().trim();
        let code = first.trim_matches('"').trim();
        if index == 0 && code.eq_ignore_ascii_case("code") {
            continue;
        }
        if !code.is_empty() {
            codes.push((index as u64 + 1, code.to_owned()));
        }
    }
    codes
}

/// Imports the codes of `path` into `pool` at `now` (see [`Store::import_coupons`]).
pub fn import_codes(
    store: &mut Store,
    pool: &str,
    path: &Path,
    now: i64,
) -> Result<CouponImport, IncentivesError> {
    let pool = pool.trim();
    if pool.is_empty()
        || !pool
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(IncentivesError::PoolName(pool.to_owned()));
    }
    let codes = read_codes(path)?;
    Ok(store.import_coupons(pool, &codes, now)?)
}

/// One pool's state with what the rules say about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PoolReport {
    /// The codes by state.
    #[serde(flatten)]
    pub status: PoolStatus,
    /// Whether the rules declare it.
    pub declared: bool,
    /// Its codes are generated (`pattern`): it never runs out.
    pub generated: bool,
    /// Why it needs attention, if it does: an imported pool below its `warn_below`.
    pub warning: Option<String>,
}

/// Every pool at `now`, declared or holding codes, with a warning for each imported pool the
/// rules use that runs low (fewer codes available than its `warn_below`).
pub fn pool_reports(
    store: &Store,
    rules: Option<&RuleSet>,
    now: i64,
) -> Result<Vec<PoolReport>, StoreError> {
    let declared: Vec<&CouponPool> =
        rules.map_or_else(Vec::new, |r| r.coupon_pools().iter().collect());
    let names: Vec<&str> = declared.iter().map(|pool| pool.name.as_str()).collect();
    let pools = store.coupon_pools(now, &names)?;
    Ok(pools
        .into_iter()
        .map(|status| {
            let pool = declared.iter().find(|pool| pool.name == status.pool);
            let generated = pool.is_some_and(|pool| pool.pattern.is_some());
            let warning = match pool {
                Some(pool) if !generated && status.available < pool.warn_below => Some(format!(
                    "coupon pool '{}' has {} codes left (warn_below: {}): import more with \
                     `tiercare coupons import {} FILE`, or e-mails that carry its codes are skipped",
                    status.pool, status.available, pool.warn_below, status.pool
                )),
                _ => None,
            };
            PoolReport {
                status,
                declared: pool.is_some(),
                generated,
                warning,
            }
        })
        .collect())
}

/// `check`'s warnings about coupon pools at `now`: each imported pool an e-mail rule uses that
/// has fewer codes left than its `warn_below`, at the pool's place in the rules.
pub fn pool_diagnostics(
    store: &Store,
    rules: &RuleSet,
    now: i64,
) -> Result<Vec<Diagnostic>, StoreError> {
    Ok(pool_reports(store, Some(rules), now)?
        .into_iter()
        .filter_map(|report| {
            let warning = report.warning?;
            let pool = rules.coupon_pool(&report.status.pool)?;
            let at = &pool.location;
            Some(
                Diagnostic::warning(&at.path, at.line, at.column, warning)
                    .with_hint("`tiercare coupons` shows every pool's codes by state"),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_text_and_csv_with_their_lines() {
        let codes = parse_codes("code,value\n\"AB-1\",10\n\n# comment\nAB-2\n");
        assert_eq!(codes, [(2, "AB-1".to_owned()), (5, "AB-2".to_owned())]);
    }
}
