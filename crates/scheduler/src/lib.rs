//! tiercare's orchestration: it carries out what the engine decides against the store.
//!
//! It is tiercare's application layer. It opens and creates workspaces ([`workspace`],
//! [`config`]), runs imports ([`ingest`]: files → engine mapping → store), assesses tiers
//! ([`assess`]: store features → engine decisions → store), lists customers ([`customers`]),
//! plans and records follow-ups ([`plan`]), assigns owners ([`owners`]), renders care emails from
//! templates, queues them, passes them through the delivery gate and sends them ([`mail`]:
//! [`templates`], [`outbox`], [`delivery_gate`] and the transports), builds reports ([`report`])
//! and writes synthetic demo data ([`demo`]). New rule sets are proven on a sample of real
//! customers first ([`proof`]); what new rules would change is previewed
//! without recording ([`preview`]). The daemon ([`daemon`]: [`clock`], [`firing`], [`lock`],
//! [`watch`], [`status`]) runs it all on schedule and reloads rules while running. Times are
//! read and written in one place ([`time`]). Bounces, complaints and unsubscribe requests come
//! back through [`inbound`] (the mailbox) and [`providers`] (providers' webhooks), recorded by
//! [`bounces`].
//! Other systems hear of tier changes, emails and tasks through signed webhooks the daemon
//! delivers ([`webhooks`]).
//! The staff workspace's accounts, passwords and sessions are [`staff`]'s.
//!
//! It must never contain SQL (that is the store's) nor evaluate rules itself (that is the
//! engine's): it reads files, moves data between the two, and does the IO the engine may not.

pub mod assess;
pub mod bounces;
pub mod config;
pub mod customers;
pub mod daemon;
pub mod demo;
pub mod growth;
pub mod html;
pub mod http_config;
pub mod inbound;
pub mod incentives;
pub mod ingest;
pub mod mail;
pub mod owners;
pub mod phone;
pub mod plan;
pub mod points_settings;
pub mod pool;
pub mod preview;
pub mod proof;
pub mod providers;
pub mod reminders;
pub mod report;
pub mod sending_settings;
pub mod sms;
pub mod sms_settings;
pub mod snapshot;
pub mod staff;
#[cfg(test)]
mod test_support;
pub mod time;
pub mod webhooks;
pub mod workspace;

// The modules' earlier paths (`tiercare_scheduler::outbox`, `tiercare_scheduler::clock`...).
pub use daemon::{clock, firing, lock, status, watch};
pub use mail::{delivery_gate, outbox, preferences, templates};
