//! The loading layer: rule files parsed (raw serde structs, their JSON Schema) and validated,
//! section by section, into the models of the other rooms, with every problem at
//! `path:line:col`; and rule tests, which load test files and run them. The top room: it may use
//! every other room, and no other room uses it (outside tests).

pub mod assignment;
pub(crate) mod coupons;
pub mod followups;
pub mod json_schema;
pub mod pool;
pub mod reminders;
pub(crate) mod rule_file;
pub mod rules;
pub mod ruletest;
pub mod values;
