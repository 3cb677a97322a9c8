//! Tiering: the compiled rule set (which also carries the care sections' models, hence this room
//! depends on `care`), evaluating it for one customer (hysteresis and pins included), explaining
//! a decision, and expressions over stored customers. Depends on `text`, `customer`, `script` and
//! `care`.

pub mod evaluate;
pub mod explain;
pub mod hysteresis;
pub mod query;
pub mod rule_set;
