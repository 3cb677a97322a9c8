//! The care sections' models, and what they decide without a rule set: follow-up rules and the
//! contact policy, owner assignment, managers' reminders (digest and escalation, with the digest's
//! template), cron schedules and email templates. Depends on `text`,
//! contact policy, owner assignment, cron schedules, email templates and SMS templates. Depends on `text`,
//! `customer` and `script`.

pub mod assignment;
pub mod digest;
pub mod followup;
pub mod incentive;
pub mod pool;
pub mod reminders;
pub mod schedule;
pub mod sms;
pub mod template;
