//! `[points]` in `tiercare.toml`: the points an order earns when it is imported. Plain data,
//! used by `config.rs` and the import ([`crate::ingest`]); the ledger and its arithmetic are
//! the store's ([`tiercare_store::OrderPoints`]).
//!
//! Why in `tiercare.toml` and not in the rules: an import does not load (and must not depend
//! on) the rules, which the daemon reloads on its own; the earning is bookkeeping between the
//! shop and tiercare, like the workspace's time zone.

use serde::Deserialize;
use tiercare_store::{OrderPoints, PointsRounding};

/// The points earned per imported order (`[points]`); absent, orders earn none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsConfig {
    /// Points for every order with a positive amount (default 0).
    #[serde(default)]
    pub per_order: f64,
    /// Points per unit of the order's amount (`1` = a point per yuan or dollar; default 0).
    #[serde(default)]
    pub per_currency_unit: f64,
    /// `down` (the default), `nearest` or `up`: how a fraction of a point is rounded.
    #[serde(default)]
    pub rounding: Rounding,
    /// How long earned points last (`365d`); leave out for never.
    #[serde(default)]
    pub expires: Option<String>,
}

/// How a fraction of a point is rounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 12.9 earns 12.
    #[default]
    Down,
    /// 12.5 earns 13, 12.4 earns 12.
    Nearest,
    /// 12.1 earns 13.
    Up,
}

impl PointsConfig {
    /// Checks the numbers and the expiry.
    ///
    /// # Errors
    /// A negative or non-finite number, or an expiry that is not a duration of whole days.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("per_order", self.per_order),
            ("per_currency_unit", self.per_currency_unit),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!(
                    "[points] {name} must be a number of points, 0 or more (found {value})"
                ));
            }
        }
        self.expires_after().map(|_| ())
    }

    /// The expiry in seconds, if set.
    fn expires_after(&self) -> Result<Option<i64>, String> {
        let Some(text) = &self.expires else {
            return Ok(None);
        };
        match crate::time::parse_duration(text) {
            Some(seconds) if seconds >= 86_400 && seconds % 86_400 == 0 => Ok(Some(seconds)),
            _ => Err(format!(
                "[points] expires = {text:?} is not a number of whole days: write it like \"365d\""
            )),
        }
    }

    /// What an imported order earns, or `None` when orders earn nothing (both numbers 0).
    #[must_use]
    pub fn earning(&self) -> Option<OrderPoints> {
        if self.per_order <= 0.0 && self.per_currency_unit <= 0.0 {
            return None;
        }
        Some(OrderPoints {
            per_order: self.per_order,
            per_currency_unit: self.per_currency_unit,
            rounding: match self.rounding {
                Rounding::Down => PointsRounding::Down,
                Rounding::Nearest => PointsRounding::Nearest,
                Rounding::Up => PointsRounding::Up,
            },
            expires_after: self.expires_after().ok().flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_settings_are_checked_and_off_by_default() {
        assert_eq!(PointsConfig::default().earning(), None);
        let config: PointsConfig = toml::from_str(
            "per_order = 5\nper_currency_unit = 0.1\nrounding = \"nearest\"\nexpires = \"365d\"\n",
        )
        .unwrap();
        config.validate().unwrap();
        let earning = config.earning().unwrap();
        assert_eq!(earning.rounding, PointsRounding::Nearest);
        assert_eq!(earning.expires_after, Some(365 * 86_400));
        let bad = PointsConfig {
            per_order: -1.0,
            ..PointsConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("per_order"));
        let bad = PointsConfig {
            expires: Some("6h".to_owned()),
            ..PointsConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("whole days"));
    }
}
