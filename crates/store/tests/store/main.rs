//! Integration tests of the store on real SQLite files in temporary
//! directories: opening and identity, upserts of every record kind,
//! whole-import rollback, customer features, assessments, tier pins, the
//! follow-up ledger, tasks and managers.

mod bounces;
mod coupons;
mod customers;
mod events;
mod features;
mod fixture;
mod followups;
mod open;
mod orders;
mod outbox;
mod outbox_pages;
mod pins;
mod pool;
mod recommend;
mod rollback;
mod tasks;
mod tiers;
