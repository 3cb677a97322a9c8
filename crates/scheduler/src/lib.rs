//! tiercare's orchestration: it carries out what the engine decides against the store.
//!
//! Today it opens and creates workspaces ([`workspace`], [`config`]), runs imports
//! ([`ingest`]: files → engine mapping → store), assesses tiers ([`assess`]: store features →
//! engine decisions → store), plans and records follow-ups ([`plan`]), assigns owners
//! ([`owners`]), renders care emails from templates ([`templates`]), queues and delivers them
//! ([`outbox`], [`mail`]) and writes synthetic demo data
//! ([`demo`]). New rule sets are proven on a sample of real customers first ([`proof`]). The daemon ([`daemon`]: [`clock`], [`firing`], [`lock`], [`watch`], [`status`])
//! runs it all on schedule and reloads rules while running.
//!
//! It must never contain SQL (that is the store's) nor evaluate rules itself (that is the
//! engine's): it reads files, moves data between the two, and does the IO the engine may not.

pub mod assess;
pub mod clock;
pub mod config;
pub mod customers;
pub mod daemon;
pub mod delivery_gate;
pub mod demo;
pub mod firing;
pub mod growth;
pub mod html;
pub mod ingest;
pub mod lock;
pub mod mail;
pub mod outbox;
pub mod owners;
pub mod plan;
pub mod proof;
pub mod report;
pub mod status;
pub mod templates;
#[cfg(test)]
mod test_support;
pub mod watch;
pub mod workspace;
