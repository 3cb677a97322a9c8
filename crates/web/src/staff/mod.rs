//! The staff workspace (`/staff/`).

pub mod outbox;
pub mod plan;
pub mod rules;
