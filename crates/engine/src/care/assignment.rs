//! Owner assignment: which account manager gets a customer who has none, by tier.
//!
//! A rule file may hold one `assignment:` section, a mapping from tier to the managers who take
//! that tier's customers without an owner:
//!
//! ```yaml
//! assignment:
//!   A: [role:senior]              # any active manager with the role `senior`
//!   B: [role:junior, manager:m007] # several pools and named managers may be mixed
//!   C: nobody                     # automation: C customers get no owner
//! ```
//!
//! An entry is `role:NAME` (every active manager with that role), `manager:ID` (one manager by
//! their `manager_id`), or `nobody` alone. A tier left out of the section is left alone, like
//! `nobody`. [`assign`] decides, purely, who gets whom: customers in the order given, each to the
//! candidate with the most **spare capacity** (capacity minus the customers they own, counting
//! those just assigned); a manager without a capacity is never full and is preferred over any
//! manager with one, the fewest customers first; ties go to the smallest manager id. A customer
//! whose candidates are all full, or inactive, stays without an owner and is counted.
//!
//! Manager and role names are checked against the workspace's managers by
//! [`crate::check_references`], as for tasks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;

use crate::text::location::Location;

/// Who takes the customers of one tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierAssignment {
    /// The tier.
    pub tier: String,
    /// The candidates, in file order; empty: nobody (automation).
    pub to: Vec<Candidate>,
    /// Where the tier's key is.
    pub location: Location,
}

/// One entry of a tier's candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Candidate {
    /// Every active manager with this role.
    Role(String),
    /// The manager with this id.
    Manager(String),
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Candidate::Role(role) => write!(f, "role:{role}"),
            Candidate::Manager(id) => write!(f, "manager:{id}"),
        }
    }
}

/// A tier's candidate with where it is written, for reference checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlacedCandidate {
    pub(crate) candidate: Candidate,
    pub(crate) location: Location,
}

/// `assignment:`: owners for customers who have none, per tier (the tiers' order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The tiers the section names, in the rules' tier order.
    pub tiers: Vec<TierAssignment>,
    /// Every candidate with its place in the file.
    pub(crate) placed: Vec<PlacedCandidate>,
}

impl Assignment {
    /// What the section says about `tier`, if it names it.
    #[must_use]
    pub fn for_tier(&self, tier: &str) -> Option<&TierAssignment> {
        self.tiers.iter().find(|assignment| assignment.tier == tier)
    }

    /// Whether the rules have an `assignment` section naming at least one tier.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }
}

/// A manager as [`assign`] sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerLoad {
    /// The manager's id (`manager_id`).
    pub id: String,
    /// Their role, if any.
    pub role: Option<String>,
    /// How many customers they can look after; `None`: no limit.
    pub capacity: Option<u64>,
    /// Customers they own now.
    pub customers: u64,
    /// Whether they take work.
    pub active: bool,
}

/// A customer without an owner, for [`assign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unowned<'a> {
    /// The caller's key for the customer (the store's rowid).
    pub key: i64,
    /// The customer's current tier.
    pub tier: &'a str,
    /// Managers who must not get the customer: the owners they were reclaimed from within
    /// the pool's no-return period.
    pub not_to: Vec<&'a str>,
}

/// What [`assign`] decided for one tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TierOutcome {
    /// The tier.
    pub tier: String,
    /// What the rules say: the candidates, or `nobody`.
    pub to: String,
    /// Customers without an owner in the tier.
    pub unowned: u64,
    /// Customers given an owner.
    pub assigned: u64,
    /// Customers left without one because every candidate is full.
    pub full: u64,
    /// Customers left without one because no candidate is an active manager.
    pub no_candidate: u64,
    /// Customers left without one because their only candidate with room is the owner they
    /// were reclaimed from, within the no-return period.
    pub no_return: u64,
}

/// The decisions of [`assign`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssignmentPlan {
    /// `(customer key, manager id)`, in the customers' order.
    pub assignments: Vec<(i64, String)>,
    /// Per tier named by the rules, in their order (tiers not named are left out).
    pub tiers: Vec<TierOutcome>,
    /// Customers given to each manager.
    pub per_manager: BTreeMap<String, u64>,
}

/// Decides who owns each customer of `customers` (in their order) by the rules' `assignment`,
/// balancing by spare capacity (see the [module documentation](self)). Pure: `managers` are the
/// workspace's managers with their current load, nothing is written.
#[must_use]
pub fn assign<'a>(
    assignment: &Assignment,
    managers: &[ManagerLoad],
    customers: impl IntoIterator<Item = Unowned<'a>>,
) -> AssignmentPlan {
    let mut plan = AssignmentPlan::default();
    let mut load: Vec<u64> = managers.iter().map(|manager| manager.customers).collect();
    // Per named tier: the active managers who take its customers, by index.
    let pools: Vec<Vec<usize>> = assignment
        .tiers
        .iter()
        .map(|tier| {
            managers
                .iter()
                .enumerate()
                .filter(|(_, manager)| {
                    manager.active
                        && tier.to.iter().any(|candidate| match candidate {
                            Candidate::Role(role) => manager.role.as_deref() == Some(role),
                            Candidate::Manager(id) => &manager.id == id,
                        })
                })
                .map(|(index, _)| index)
                .collect()
        })
        .collect();
    // Each manager's rank by id, for ties: the smallest id wins.
    let mut by_id: Vec<usize> = (0..managers.len()).collect();
    by_id.sort_by(|a, b| managers[*a].id.cmp(&managers[*b].id));
    let mut ranks = vec![0; managers.len()];
    for (rank, &m) in by_id.iter().enumerate() {
        ranks[m] = rank;
    }
    // Per tier, its pool in a max-heap by spare capacity. Loads only grow, so an entry's key is
    // never below the manager's current one: a stale entry is refreshed when it comes up.
    let mut heaps: Vec<BinaryHeap<HeapEntry>> = pools
        .iter()
        .map(|pool| {
            pool.iter()
                .filter_map(|&m| heap_entry(m, &managers[m], load[m], ranks[m]))
                .collect()
        })
        .collect();
    plan.tiers = assignment
        .tiers
        .iter()
        .map(|tier| TierOutcome {
            tier: tier.tier.clone(),
            to: if tier.to.is_empty() {
                "nobody".to_owned()
            } else {
                tier.to
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            ..TierOutcome::default()
        })
        .collect();
    for customer in customers {
        let Some(index) = assignment
            .tiers
            .iter()
            .position(|tier| tier.tier == customer.tier)
        else {
            continue;
        };
        let outcome = &mut plan.tiers[index];
        outcome.unowned += 1;
        if assignment.tiers[index].to.is_empty() {
            continue;
        }
        if pools[index].is_empty() {
            outcome.no_candidate += 1;
            continue;
        }
        // Owners the customer was reclaimed from within the no-return period are set aside
        // for this customer only.
        let mut set_aside = Vec::new();
        let chosen = loop {
            match best_candidate(&mut heaps[index], managers, &load) {
                Some(m) if customer.not_to.contains(&managers[m].id.as_str()) => set_aside.push(m),
                other => break other,
            }
        };
        for &m in &set_aside {
            if let Some(entry) = heap_entry(m, &managers[m], load[m], ranks[m]) {
                heaps[index].push(entry);
            }
        }
        match chosen {
            Some(m) => {
                load[m] += 1;
                outcome.assigned += 1;
                *plan.per_manager.entry(managers[m].id.clone()).or_default() += 1;
                plan.assignments
                    .push((customer.key, managers[m].id.clone()));
                // Back in with its new spare capacity (a full manager drops out).
                if let Some(entry) = heap_entry(m, &managers[m], load[m], ranks[m]) {
                    heaps[index].push(entry);
                }
            }
            None if !set_aside.is_empty() => outcome.no_return += 1,
            None => outcome.full += 1,
        }
    }
    plan
}

/// A candidate in a tier's heap: `(unlimited, spare, smallest id first, manager index)`.
type HeapEntry = (bool, u64, Reverse<usize>, usize);

/// The heap entry of manager `m` with `load` customers; `None` when they are full.
fn heap_entry(m: usize, manager: &ManagerLoad, load: u64, rank: usize) -> Option<HeapEntry> {
    match manager.capacity {
        None => Some((true, u64::MAX - load, Reverse(rank), m)),
        Some(capacity) => {
            let spare = capacity.saturating_sub(load);
            (spare > 0).then_some((false, spare, Reverse(rank), m))
        }
    }
}

/// Takes the candidate with the most spare capacity off `heap`, refreshing stale entries
/// (managers who got customers through another tier since they were pushed); `None` when
/// every candidate is full.
fn best_candidate(
    heap: &mut BinaryHeap<HeapEntry>,
    managers: &[ManagerLoad],
    load: &[u64],
) -> Option<usize> {
    while let Some(entry) = heap.pop() {
        let m = entry.3;
        // A manager filled up through another tier drops out.
        let Some(current) = heap_entry(m, &managers[m], load[m], (entry.2).0) else {
            continue;
        };
        if current == entry {
            return Some(m);
        }
        heap.push(current);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager(id: &str, role: &str, capacity: Option<u64>, customers: u64) -> ManagerLoad {
        ManagerLoad {
            id: id.to_owned(),
            role: Some(role.to_owned()),
            capacity,
            customers,
            active: true,
        }
    }

    fn tier(tier: &str, to: Vec<Candidate>) -> TierAssignment {
        TierAssignment {
            tier: tier.to_owned(),
            to,
            location: Location {
                path: "rules/followups.yaml".to_owned(),
                line: 1,
                column: 1,
            },
        }
    }

    fn rules() -> Assignment {
        Assignment {
            tiers: vec![
                tier("A", vec![Candidate::Role("senior".into())]),
                tier(
                    "B",
                    vec![
                        Candidate::Role("junior".into()),
                        Candidate::Manager("m9".into()),
                    ],
                ),
                tier("C", vec![]),
            ],
            placed: Vec::new(),
        }
    }

    fn customers<'a>(tiers: &'a [&'a str]) -> impl Iterator<Item = Unowned<'a>> {
        tiers.iter().enumerate().map(|(key, tier)| Unowned {
            key: key as i64,
            tier,
            not_to: Vec::new(),
        })
    }

    #[test]
    fn each_customer_goes_to_the_candidate_with_the_most_spare_capacity() {
        // s1 has 3 spare, s2 has 1: s1 takes two, then they are level and the smaller id wins.
        let managers = [
            manager("s2", "senior", Some(5), 4),
            manager("s1", "senior", Some(10), 7),
        ];
        let plan = assign(
            &rules(),
            &managers,
            customers(&["A", "A", "A", "A", "A", "A"]),
        );
        let owners: Vec<&str> = plan.assignments.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(owners, ["s1", "s1", "s1", "s2"]);
        assert_eq!(plan.tiers[0].assigned, 4);
        assert_eq!(plan.tiers[0].full, 2, "both full after four");
        assert_eq!(plan.per_manager["s1"], 3);
    }

    #[test]
    fn roles_and_named_managers_mix_and_c_goes_to_nobody() {
        let mut inactive = manager("j2", "junior", None, 0);
        inactive.active = false;
        let managers = [
            manager("j1", "junior", Some(2), 0),
            inactive,
            manager("m9", "other", None, 100),
            manager("s1", "senior", Some(1), 1),
        ];
        let plan = assign(
            &rules(),
            &managers,
            customers(&["B", "B", "C", "A", "D", "B"]),
        );
        // m9 has no capacity: never full, preferred over j1; inactive j2 never gets anyone.
        assert_eq!(
            plan.assignments,
            vec![(0, "m9".into()), (1, "m9".into()), (5, "m9".into())]
        );
        let c = &plan.tiers[2];
        assert_eq!((c.to.as_str(), c.unowned, c.assigned), ("nobody", 1, 0));
        let a = &plan.tiers[0];
        assert_eq!((a.unowned, a.assigned, a.full), (1, 0, 1), "s1 is full");
        assert_eq!(plan.tiers.len(), 3, "D is not named: left alone");
    }

    #[test]
    fn a_tier_whose_candidates_are_all_inactive_or_missing_is_counted() {
        let plan = assign(&rules(), &[], customers(&["A", "B"]));
        assert!(plan.assignments.is_empty());
        assert_eq!(plan.tiers[0].no_candidate, 1);
        assert_eq!(plan.tiers[1].no_candidate, 1);
    }

    #[test]
    fn a_manager_in_two_tiers_is_filled_through_both() {
        // m9 takes B customers by name and A customers by role: each tier sees the load the
        // other gave.
        let managers = [
            manager("m9", "senior", Some(3), 0),
            manager("s1", "senior", Some(2), 0),
            manager("j1", "junior", Some(1), 0),
        ];
        let plan = assign(
            &rules(),
            &managers,
            customers(&["B", "A", "A", "B", "A", "B"]),
        );
        let owners: Vec<(i64, &str)> = plan
            .assignments
            .iter()
            .map(|(key, m)| (*key, m.as_str()))
            .collect();
        // B0: m9 (3 spare) over j1 (1); A1: m9 (2) and s1 (2): m9 by id; A2: s1 (2) over m9
        // (1); B3: m9 (1) and j1 (1): j1 by id; A4: m9 and s1 (1 each): m9 by id; B5: all full.
        assert_eq!(
            owners,
            [(0, "m9"), (1, "m9"), (2, "s1"), (3, "j1"), (4, "m9")]
        );
        assert_eq!(plan.tiers[1].full, 1);
    }

    #[test]
    fn the_previous_owner_is_passed_over_within_the_no_return_period() {
        let managers = [
            manager("a", "senior", None, 0),
            manager("b", "senior", Some(1), 5),
        ];
        let back = |key, not_to: &[&'static str]| Unowned {
            key,
            tier: "A",
            not_to: not_to.to_vec(),
        };
        let plan = assign(
            &rules(),
            &managers,
            [back(0, &["a"]), back(1, &["a", "b"]), back(2, &[])],
        );
        // b is full: customer 0 and 1 may not go back to a, customer 2 may.
        assert_eq!(plan.assignments, vec![(2, "a".into())]);
        assert_eq!((plan.tiers[0].no_return, plan.tiers[0].full), (2, 0));
        let plan = assign(&rules(), &[managers[0].clone()], [back(0, &["b"])]);
        assert_eq!(
            plan.assignments,
            vec![(0, "a".into())],
            "another owner is fine"
        );
    }

    #[test]
    fn unlimited_managers_are_balanced_by_load() {
        let managers = [
            manager("a", "senior", None, 3),
            manager("b", "senior", None, 1),
        ];
        let plan = assign(&rules(), &managers, customers(&["A", "A", "A", "A"]));
        let owners: Vec<&str> = plan.assignments.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(owners, ["b", "b", "a", "b"]);
    }
}
