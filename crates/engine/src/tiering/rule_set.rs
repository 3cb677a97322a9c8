//! The compiled rule set: tiers, scores and segments (this room's own), with the follow-ups,
//! contact policy and assignment of the care sections, as the loader ([`crate::load::rules`])
//! builds it from validated files. A model only: nothing here reads YAML or reports a mistake.

use rhai::Engine;
use serde::Serialize;

use crate::care::assignment::Assignment;
use crate::care::followup::{CompiledFollowUp, ContactPolicy, FollowUpRule};
use crate::care::schedule::Schedule;
use crate::customer::feature::Feature;
use crate::script::expression::Expression;
use crate::text::location::Location;
use crate::text::yaml::{PathSeg, Spans};
use crate::tiering::hysteresis::DowngradeAfter;

pub use tiercare_types::Window;

/// A tier or a segment, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// The id (`A`, `champions`).
    pub id: String,
    /// The label for people, if any.
    pub label: Option<String>,
    /// The description, if any.
    pub description: Option<String>,
    /// The condition's source text.
    pub when: String,
    /// Where the condition is.
    pub location: Location,
}

/// A named segment set and its segments, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentSetInfo {
    /// The set's name (`rfm`).
    pub name: String,
    /// Its segments, first match wins.
    pub segments: Vec<RuleInfo>,
}

/// A score, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreInfo {
    /// The score's name.
    pub name: String,
    /// Its expression.
    pub expression: String,
    /// Where the expression is.
    pub location: Location,
}

/// A function defined in a `.rhai` library of the rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LibraryFunction {
    /// Its name.
    pub name: String,
    /// Its parameters' names.
    pub params: Vec<String>,
    /// Where it is defined.
    pub location: Location,
}

/// A tier or a segment, compiled.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub(crate) info: RuleInfo,
    pub(crate) expr: Expression,
}

/// A score, compiled.
#[derive(Debug)]
pub(crate) struct CompiledScore {
    pub(crate) info: ScoreInfo,
    pub(crate) expr: Expression,
}

/// A segment set, compiled.
#[derive(Debug)]
pub(crate) struct CompiledSegmentSet {
    pub(crate) name: String,
    pub(crate) rules: Vec<CompiledRule>,
}

#[derive(Debug)]
pub(crate) struct SourceFile {
    pub(crate) path: String,
    pub(crate) text: String,
    pub(crate) spans: Spans,
}

/// A validated, compiled rule set: load it with [`load_rules`](crate::load_rules), evaluate customers with
/// [`RuleSet::evaluator`].
///
/// `Send + Sync`: share one (by reference or in an `Arc`) between threads, with one
/// [`Evaluator`](crate::Evaluator) per thread.
#[derive(Debug)]
pub struct RuleSet {
    pub(crate) engine: Engine,
    pub(crate) version: String,
    pub(crate) window: Window,
    pub(crate) reassess: Option<Schedule>,
    pub(crate) downgrade_after: DowngradeAfter,
    pub(crate) scores: Vec<CompiledScore>,
    pub(crate) tiers: Vec<CompiledRule>,
    pub(crate) segment_sets: Vec<CompiledSegmentSet>,
    pub(crate) followups: Vec<CompiledFollowUp>,
    pub(crate) contact_policy: ContactPolicy,
    pub(crate) assignment: Assignment,
    pub(crate) reminders: crate::care::reminders::Reminders,
    pub(crate) pool: crate::care::pool::Pool,
    pub(crate) coupons: Vec<crate::care::incentive::CouponPool>,
    pub(crate) features_used: Vec<Feature>,
    /// The features the tiers' expressions and the scores read.
    pub(crate) tier_features: Vec<Feature>,
    pub(crate) library: Vec<LibraryFunction>,
    pub(crate) sources: Vec<SourceFile>,
}

impl RuleSet {
    /// The coupon pools the rules declare (`coupons:`), in order.
    #[must_use]
    pub fn coupon_pools(&self) -> &[crate::care::incentive::CouponPool] {
        &self.coupons
    }

    /// The coupon pool called `name`, if declared.
    #[must_use]
    pub fn coupon_pool(&self, name: &str) -> Option<&crate::care::incentive::CouponPool> {
        self.coupons.iter().find(|pool| pool.name == name)
    }

    /// The content hash of the rule files (16 hex digits), stored with every tier assignment.
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The feature window.
    #[must_use]
    pub fn window(&self) -> Window {
        self.window
    }

    /// When the daemon reassesses, if the rules say.
    #[must_use]
    pub fn reassess(&self) -> Option<&Schedule> {
        self.reassess.as_ref()
    }

    /// How long a downgrade is held: assessments in a row (counted at most once a day; 1: at
    /// once) or a duration (see [`crate::tiering::hysteresis`]).
    #[must_use]
    pub fn downgrade_after(&self) -> DowngradeAfter {
        self.downgrade_after
    }

    /// The tiers, highest first.
    pub fn tiers(&self) -> impl ExactSizeIterator<Item = &RuleInfo> {
        self.tiers.iter().map(|rule| &rule.info)
    }

    /// The position of tier `id` (0 is the highest), if it is a tier of these rules.
    #[must_use]
    pub fn tier_rank(&self, id: &str) -> Option<usize> {
        self.tiers.iter().position(|rule| rule.info.id == id)
    }

    /// The segment sets, in file order.
    #[must_use]
    pub fn segment_sets(&self) -> Vec<SegmentSetInfo> {
        self.segment_sets
            .iter()
            .map(|set| SegmentSetInfo {
                name: set.name.clone(),
                segments: set.rules.iter().map(|rule| rule.info.clone()).collect(),
            })
            .collect()
    }

    /// The follow-up rules, in file order (files in path order).
    pub fn followups(&self) -> impl ExactSizeIterator<Item = &FollowUpRule> {
        self.followups.iter().map(|followup| &followup.rule)
    }

    /// The contact policy (the default: no caps, no gap, no window, when no file has one).
    #[must_use]
    pub fn contact_policy(&self) -> &ContactPolicy {
        &self.contact_policy
    }

    /// Owner assignment by tier (empty when no file has an `assignment` section).
    #[must_use]
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// The managers' digest and escalation (empty when no file has a `reminders` section).
    #[must_use]
    pub fn reminders(&self) -> &crate::care::reminders::Reminders {
        &self.reminders
    }

    /// The public pool's reclaim rules (empty when no file has a `pool` section).
    #[must_use]
    pub fn pool(&self) -> &crate::care::pool::Pool {
        &self.pool
    }

    /// Where `key` (`email.template`...) of a follow-up is: `(line, column)`.
    pub(crate) fn followup_position(
        &self,
        followup: &CompiledFollowUp,
        key: &str,
    ) -> (usize, usize) {
        let mut path = followup.path.clone();
        path.extend(key.split('.').map(PathSeg::from));
        self.sources[followup.file].spans.position(&path)
    }

    /// The text of the rule file at `path` ("" if unknown).
    pub(crate) fn source_text(&self, path: &str) -> &str {
        self.sources
            .iter()
            .find(|source| source.path == path)
            .map_or("", |source| source.text.as_str())
    }

    /// The scores, in the order they are computed.
    pub fn scores(&self) -> impl ExactSizeIterator<Item = &ScoreInfo> {
        self.scores.iter().map(|score| &score.info)
    }

    /// The features some expression reads, in catalog order. The store may leave the others
    /// unset (they keep their neutral values), except three that are read whatever the
    /// expressions say: `previous_tier` and `pending_downgrade` (hysteresis) and `customer_id`
    /// (explanations).
    #[must_use]
    pub fn features_used(&self) -> &[Feature] {
        &self.features_used
    }

    /// Whether some expression reads `feature`.
    #[must_use]
    pub fn uses(&self, feature: Feature) -> bool {
        self.features_used.contains(&feature)
    }

    /// Whether a tier's expression or a score reads `feature`: what deciding tiers alone needs
    /// (segments and follow-ups aside).
    #[must_use]
    pub fn tiers_use(&self, feature: Feature) -> bool {
        self.tier_features.contains(&feature)
    }

    /// The functions the rule set's `.rhai` libraries define.
    #[must_use]
    pub fn library_functions(&self) -> &[LibraryFunction] {
        &self.library
    }

    /// The paths of the rule set's files, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.sources.iter().map(|source| source.path.as_str())
    }

    /// Where a runtime error of `expr` at `position` (inside the script) is in its file.
    pub(crate) fn locate(&self, expr: &Expression, position: Option<(usize, usize)>) -> Location {
        let source = &self.sources[expr.file];
        let (line, column) = match position {
            Some((line, column)) => source.spans.locate_in_scalar(&expr.key_path, line, column),
            None => source.spans.position(&expr.key_path),
        };
        Location {
            path: source.path.clone(),
            line,
            column,
        }
    }

    /// The library file defining function `name`, if any.
    pub(crate) fn library_path(&self, name: &str) -> Option<&Location> {
        self.library
            .iter()
            .find(|function| function.name == name)
            .map(|function| &function.location)
    }
}

/// The FNV-1a 64-bit offset basis: where [`fnv1a`] starts.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Feeds `bytes` into an FNV-1a 64-bit hash: defined byte by byte, so it is the same on every
/// platform, build and run (rule-set versions and staggered cadences rely on that).
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}
