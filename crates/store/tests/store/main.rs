//! Integration tests of the store on real SQLite files in temporary
//! directories: opening and identity, upserts of every record kind,
//! whole-import rollback, customer features, assessments and tier pins.

mod customers;
mod events;
mod features;
mod fixture;
mod open;
mod orders;
mod pins;
mod rollback;
mod tiers;
