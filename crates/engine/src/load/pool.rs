//! Loading the `pool:` section into [`crate::care::pool`]'s model, every problem at
//! `path:line:col`.

use crate::care::pool::{Pool, TierReclaim};
use crate::load::rule_file::{RawRuleFile, Scalar};
use crate::load::rules::{Loader, key};
use crate::load::values::parse_duration;
use crate::text::yaml::PathSeg;

fn join(base: &[PathSeg], rest: &[&str]) -> Vec<PathSeg> {
    let mut path = base.to_vec();
    path.extend(rest.iter().map(|key| PathSeg::from(*key)));
    path
}

impl Loader<'_> {
    /// A duration of the pool section at `path`, or `None` (reported) when it is not one.
    fn pool_duration(
        &mut self,
        file: usize,
        path: &[PathSeg],
        text: &Scalar,
        what: &str,
    ) -> Option<i64> {
        match parse_duration(&text.0) {
            Ok(seconds) => Some(seconds),
            Err(message) => {
                self.error_at(
                    file,
                    path,
                    false,
                    format!("invalid `{what}`: {message}"),
                    "write a number of days or weeks: `30d`, `6w`",
                );
                None
            }
        }
    }

    /// The `pool` section (at most one in the rule set).
    pub(crate) fn pool(&mut self, parsed: &[(usize, RawRuleFile)], tier_ids: &[String]) -> Pool {
        let mut found: Option<usize> = None;
        let mut pool = Pool {
            protect_pinned: true,
            ..Pool::default()
        };
        let mut tiers: Vec<(usize, TierReclaim)> = Vec::new();
        for (file, raw) in parsed {
            let Some(section) = &raw.pool else {
                continue;
            };
            let file = *file;
            let base = key(&["pool"]);
            if let Some(first) = found {
                let first_at = self.location(first, &base, true);
                self.error_at(
                    file,
                    &base,
                    true,
                    "a second `pool` section".to_owned(),
                    &format!("`pool` is already defined at {first_at}; a rule set has one"),
                );
                continue;
            }
            found = Some(file);
            let default_warning = section.warn_before.as_ref().and_then(|text| {
                self.pool_duration(file, &join(&base, &["warn_before"]), text, "warn_before")
            });
            if let Some(text) = &section.warn_task {
                match text.0.trim() {
                    "true" => pool.warn_task = true,
                    "false" => pool.warn_task = false,
                    other => self.error_at(
                        file,
                        &join(&base, &["warn_task"]),
                        false,
                        format!("`warn_task` must be true or false, not `{other}`"),
                        "`warn_task: true` gives the warned owner a task, due when the customer would be reclaimed",
                    ),
                }
            }
            if let Some(text) = &section.no_return {
                pool.no_return = self
                    .pool_duration(file, &join(&base, &["no_return"]), text, "no_return")
                    .unwrap_or(0);
            }
            if let Some(text) = &section.claims_per_day {
                match text.0.trim().parse::<u64>() {
                    Ok(n) if n > 0 => pool.claims_per_day = Some(n),
                    _ => self.error_at(
                        file,
                        &join(&base, &["claims_per_day"]),
                        false,
                        format!(
                            "`claims_per_day` must be a whole number above 0, not `{}`",
                            text.0
                        ),
                        "the customers one manager may be given per day; leave it out for no cap",
                    ),
                }
            }
            if let Some(protect) = &section.protect {
                if let Some(text) = &protect.pinned {
                    match text.0.trim() {
                        "true" => pool.protect_pinned = true,
                        "false" => pool.protect_pinned = false,
                        other => self.error_at(
                            file,
                            &join(&base, &["protect", "pinned"]),
                            false,
                            format!("`pinned` must be true or false, not `{other}`"),
                            "`pinned: true` keeps customers with an active tier pin out of the pool",
                        ),
                    }
                }
                if let Some(text) = &protect.attribute {
                    let name = text.0.trim();
                    if name.is_empty() || name.contains('"') {
                        self.error_at(
                            file,
                            &join(&base, &["protect", "attribute"]),
                            false,
                            if name.is_empty() {
                                "the protecting attribute's name is empty".to_owned()
                            } else {
                                format!("`{name}` is not an attribute name")
                            },
                            "name a customer attribute: customers for whom it is true are never reclaimed",
                        );
                    } else {
                        pool.protect_attribute = Some(name.to_owned());
                    }
                }
            }
            for (tier, raw_tier) in &section.tiers.0 {
                let path = join(&base, &["tiers", tier]);
                let Some(rank) = tier_ids.iter().position(|id| id == tier) else {
                    self.not_a_tier(file, &path, true, tier, tier_ids);
                    continue;
                };
                let no_followup = raw_tier.no_followup.as_ref().and_then(|text| {
                    self.pool_duration(file, &join(&path, &["no_followup"]), text, "no_followup")
                });
                let no_order = raw_tier.no_order.as_ref().and_then(|text| {
                    self.pool_duration(file, &join(&path, &["no_order"]), text, "no_order")
                });
                let warn_before = match &raw_tier.warn_before {
                    Some(text) => self.pool_duration(
                        file,
                        &join(&path, &["warn_before"]),
                        text,
                        "warn_before",
                    ),
                    None => default_warning,
                };
                if raw_tier.no_followup.is_none() && raw_tier.no_order.is_none() {
                    self.error_at(
                        file,
                        &path,
                        true,
                        format!("tier `{tier}` has no reclaim period"),
                        "give `no_followup: 30d` (days without a follow-up by the owner), \
                         `no_order: 90d` (days without an order), or both",
                    );
                    continue;
                }
                if no_followup.is_none() && no_order.is_none() {
                    continue;
                }
                let shortest = no_followup.into_iter().chain(no_order).min().unwrap_or(0);
                let warn_before = warn_before.unwrap_or(0);
                if warn_before >= shortest {
                    let at = if raw_tier.warn_before.is_some() {
                        join(&path, &["warn_before"])
                    } else {
                        join(&base, &["warn_before"])
                    };
                    self.error_at(
                        file,
                        &at,
                        false,
                        format!("tier `{tier}` would be warned before its owner gets a customer: `warn_before` is not shorter than the reclaim period"),
                        "`warn_before` must be shorter than the tier's `no_followup` and `no_order`",
                    );
                    continue;
                }
                tiers.push((
                    rank,
                    TierReclaim {
                        tier: tier.clone(),
                        no_followup,
                        no_order,
                        warn_before,
                        location: self.location(file, &path, true),
                    },
                ));
            }
        }
        tiers.sort_by_key(|(rank, _)| *rank);
        pool.tiers = tiers.into_iter().map(|(_, tier)| tier).collect();
        pool
    }
}
