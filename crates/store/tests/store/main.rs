//! Integration tests of the store on real SQLite files in temporary
//! directories: opening and identity, upserts of every record kind, and
//! whole-import rollback.

mod customers;
mod events;
mod fixture;
mod open;
mod orders;
mod rollback;
