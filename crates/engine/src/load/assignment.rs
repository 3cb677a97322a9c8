//! Loading the `assignment:` section into [`crate::care::assignment`]'s model, every problem at
//! `path:line:col`.

use crate::care::assignment::{Assignment, Candidate, PlacedCandidate, TierAssignment};
use crate::load::rule_file::{RawAssignees, RawRuleFile};
use crate::load::rules::{Loader, key};
use crate::load::values::parse_assignee;
use crate::text::yaml::PathSeg;

/// Parses one entry: `role:NAME` or `manager:ID`.
fn parse_candidate(text: &str) -> Result<Candidate, String> {
    match parse_assignee(text) {
        Ok(crate::care::followup::Assignee::Role(role)) => Ok(Candidate::Role(role)),
        Ok(crate::care::followup::Assignee::Manager(id)) => Ok(Candidate::Manager(id)),
        Ok(crate::care::followup::Assignee::Owner) => Err(
            "`owner` cannot take customers who have no owner: name a role or a manager".to_owned(),
        ),
        Err(message) => Err(message),
    }
}

impl Loader<'_> {
    /// The `assignment` section (at most one in the rule set).
    pub(crate) fn assignment(
        &mut self,
        parsed: &[(usize, RawRuleFile)],
        tier_ids: &[String],
    ) -> Assignment {
        let mut found: Option<usize> = None;
        let mut tiers: Vec<(usize, TierAssignment)> = Vec::new();
        let mut placed = Vec::new();
        let hint = "write `TIER: [role:NAME, manager:ID]` or `TIER: nobody`";
        for (file, raw) in parsed {
            let Some(section) = &raw.assignment else {
                continue;
            };
            let base = key(&["assignment"]);
            if let Some(first) = found {
                let first_at = self.location(first, &base, true);
                let diagnostic = self
                    .at(
                        crate::text::diagnostic::Severity::Error,
                        *file,
                        &base,
                        true,
                        "a second `assignment` section".to_owned(),
                    )
                    .with_hint(format!(
                        "`assignment` is already defined at {first_at}; a rule set has one"
                    ));
                self.push(diagnostic);
                continue;
            }
            found = Some(*file);
            for (tier, entries) in &section.0 {
                let tier_path = key(&["assignment", tier]);
                let Some(rank) = tier_ids.iter().position(|id| id == tier) else {
                    self.not_a_tier(*file, &tier_path, true, tier, tier_ids);
                    continue;
                };
                let texts: Vec<(Vec<PathSeg>, &str)> = match entries {
                    RawAssignees::One(text) => vec![(tier_path.clone(), text.0.as_str())],
                    RawAssignees::Many(list) => list
                        .iter()
                        .enumerate()
                        .map(|(index, text)| {
                            let mut path = tier_path.clone();
                            path.push(PathSeg::Index(index));
                            (path, text.0.as_str())
                        })
                        .collect(),
                };
                let mut to = Vec::new();
                let mut ok = true;
                let nobody = texts.iter().any(|(_, text)| text.trim() == "nobody");
                if nobody && texts.len() > 1 {
                    let diagnostic = self
                        .at(
                            crate::text::diagnostic::Severity::Error,
                            *file,
                            &tier_path,
                            true,
                            format!("tier `{tier}` is assigned to `nobody` and to managers"),
                        )
                        .with_hint("`nobody` stands alone: write `TIER: nobody` for automation");
                    self.push(diagnostic);
                    continue;
                }
                if texts.is_empty() {
                    let diagnostic = self
                        .at(
                            crate::text::diagnostic::Severity::Error,
                            *file,
                            &tier_path,
                            true,
                            format!("tier `{tier}` is assigned to no one"),
                        )
                        .with_hint(hint);
                    self.push(diagnostic);
                    continue;
                }
                if !nobody {
                    for (path, text) in &texts {
                        match parse_candidate(text) {
                            Ok(candidate) => {
                                if !to.contains(&candidate) {
                                    placed.push(PlacedCandidate {
                                        candidate: candidate.clone(),
                                        location: self.location(*file, path, false),
                                    });
                                    to.push(candidate);
                                }
                            }
                            Err(message) => {
                                ok = false;
                                let diagnostic = self
                                    .at(
                                        crate::text::diagnostic::Severity::Error,
                                        *file,
                                        path,
                                        false,
                                        message,
                                    )
                                    .with_hint(hint);
                                self.push(diagnostic);
                            }
                        }
                    }
                }
                if ok {
                    tiers.push((
                        rank,
                        TierAssignment {
                            tier: tier.clone(),
                            to,
                            location: self.location(*file, &tier_path, true),
                        },
                    ));
                }
            }
        }
        tiers.sort_by_key(|(rank, _)| *rank);
        Assignment {
            tiers: tiers.into_iter().map(|(_, tier)| tier).collect(),
            placed,
        }
    }
}
