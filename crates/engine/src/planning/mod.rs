//! Planning follow-ups from a rule set: the planner (one customer over a time range) and the pure
//! half of the delivery gate. Depends on `tiering` and the rooms below it.

pub mod delivery;
pub mod plan;
