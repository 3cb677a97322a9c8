//! The care sections' models, and what they decide without a rule set: follow-up rules and the
//! contact policy, owner assignment, cron schedules, email templates and SMS templates. Depends on `text`,
//! `customer` and `script`.

pub mod assignment;
pub mod followup;
pub mod schedule;
pub mod sms;
pub mod template;
