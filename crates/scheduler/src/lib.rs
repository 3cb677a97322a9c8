//! tiercare's orchestration: it carries out what the engine decides against the store.
//!
//! Today it opens and creates workspaces ([`workspace`], [`config`]), runs imports
//! ([`ingest`]: files → engine mapping → store), assesses tiers ([`assess`]: store features →
//! engine decisions → store), renders care emails from templates ([`templates`]), queues and
//! delivers them ([`outbox`], [`mail`]; [`simple_templates`] is the minimal renderer it replaces)
//! and writes synthetic demo data ([`demo`]). The daemon (watching rules, cron schedules, the
//! outbox) will live here too.
//!
//! It must never contain SQL (that is the store's) nor evaluate rules itself (that is the
//! engine's): it reads files, moves data between the two, and does the IO the engine may not.

pub mod assess;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod mail;
pub mod outbox;
pub mod plan;
pub mod simple_templates;
pub mod templates;
pub mod workspace;
