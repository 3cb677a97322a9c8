//! Validation of the `coupons:` section (see [`crate::care::incentive`]) and of the pools the
//! follow-ups' e-mails name (`email: { template: win-back, coupon: winback }`).

use tiercare_types::CodePattern;

use crate::care::followup::{Action, CompiledFollowUp};
use crate::care::incentive::{CouponPool, DEFAULT_WARN_BELOW};
use crate::load::rule_file::RawRuleFile;
use crate::load::rules::{Loader, key, valid_id};
use crate::load::values::parse_duration;
use crate::text::diagnostic::{Severity, hint_among};
use crate::text::yaml::PathSeg;

impl Loader<'_> {
    /// The `coupons:` sections of every file: each pool declared once.
    pub(crate) fn coupon_pools(&mut self, parsed: &[(usize, RawRuleFile)]) -> Vec<CouponPool> {
        let mut pools: Vec<CouponPool> = Vec::new();
        for (file, raw) in parsed {
            for (name, pool) in &raw.coupons.0 {
                let path = key(&["coupons", name]);
                let error = |this: &mut Self,
                             path: &[PathSeg],
                             at_key: bool,
                             message: String,
                             hint: &str| {
                    let diagnostic = this
                        .at(Severity::Error, *file, path, at_key, message)
                        .with_hint(hint);
                    this.push(diagnostic);
                };
                if !valid_id(name) {
                    error(
                        self,
                        &path,
                        true,
                        format!("`{name}` cannot be a pool name"),
                        "pool names are letters, digits, `_`, `-` and `.`",
                    );
                    continue;
                }
                if let Some(first) = pools.iter().find(|p| p.name == *name) {
                    let at = first.location.clone();
                    error(
                        self,
                        &path,
                        true,
                        format!("coupon pool `{name}` is declared twice"),
                        &format!("it is already declared at {at}"),
                    );
                    continue;
                }
                let mut ok = true;
                let pattern = pool.pattern.as_ref().map(|p| p.0.trim().to_owned());
                if let Some(pattern) = &pattern
                    && let Err(why) = CodePattern::parse(pattern)
                {
                    ok = false;
                    error(
                        self,
                        &[path.clone(), key(&["pattern"])].concat(),
                        false,
                        format!("the code pattern: {why}"),
                        "write literal text with random runs in braces: `WB-{AAAA}-{9999}`",
                    );
                }
                let expires_after_days = match &pool.expires {
                    None => None,
                    Some(text) => match parse_duration(&text.0) {
                        Ok(seconds) if seconds >= 86_400 && seconds % 86_400 == 0 => {
                            u32::try_from(seconds / 86_400).ok()
                        }
                        Ok(_) => {
                            ok = false;
                            error(
                                self,
                                &[path.clone(), key(&["expires"])].concat(),
                                false,
                                "a coupon expires after whole days".to_owned(),
                                "such as `30d` or `8w`",
                            );
                            None
                        }
                        Err(message) => {
                            ok = false;
                            error(
                                self,
                                &[path.clone(), key(&["expires"])].concat(),
                                false,
                                message,
                                "such as `30d` or `8w`",
                            );
                            None
                        }
                    },
                };
                let warn_below = match &pool.warn_below {
                    None => DEFAULT_WARN_BELOW,
                    Some(text) => {
                        if let Ok(n) = text.0.trim().parse::<u64>() {
                            n
                        } else {
                            ok = false;
                            error(
                                self,
                                &[path.clone(), key(&["warn_below"])].concat(),
                                false,
                                format!("`{}` is not a number of codes", text.0),
                                "such as `100`",
                            );
                            DEFAULT_WARN_BELOW
                        }
                    }
                };
                let location = self.location(*file, &path, true);
                if ok {
                    pools.push(CouponPool {
                        name: name.clone(),
                        pattern,
                        value: pool.value.clone(),
                        description: pool.description.clone(),
                        expires_after_days,
                        warn_below,
                        location,
                    });
                }
            }
        }
        pools
    }

    /// Every e-mail's `coupon:` names a declared pool.
    pub(crate) fn check_coupon_references(
        &mut self,
        followups: &[CompiledFollowUp],
        pools: &[CouponPool],
        parsed_pools: bool,
    ) {
        for followup in followups {
            let Action::Email {
                coupon: Some(pool), ..
            } = &followup.rule.action
            else {
                continue;
            };
            if pools.iter().any(|p| p.name == *pool) || !parsed_pools {
                continue;
            }
            let path = [followup.path.clone(), key(&["email", "coupon"])].concat();
            let hint = hint_among(pool, "coupon pools", pools.iter().map(|p| p.name.as_str()));
            let diagnostic = self
                .at(
                    Severity::Error,
                    followup.file,
                    &path,
                    false,
                    format!("follow-up `{}` uses coupon pool `{pool}`, which is not declared", followup.rule.id),
                )
                .with_hint(if pools.is_empty() {
                    "declare it in a `coupons:` section: `coupons: { NAME: { pattern: \"WB-{AAAA}-{9999}\" } }`".to_owned()
                } else {
                    hint
                });
            self.push(diagnostic);
        }
    }
}
