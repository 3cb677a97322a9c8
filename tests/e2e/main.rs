//! End-to-end tests of the `tiercare` binary: each module runs the real binary on temporary
//! workspaces (real SQLite files, real SMTP and HTTP servers on loopback, a real browser), as a
//! user or an operator would. One test binary for all of them: on two cores, linking two dozen
//! binaries cost more than running the tests. `cargo test --test e2e MODULE::` runs one module.

mod common;

mod bounces;
mod cli;
mod customer;
mod customers;
mod daemon;
mod daemon_watch;
mod database_safety;
mod deliver;
mod delivery_gate;
mod demo;
mod followups;
mod growth;
mod import;
mod import_mapping_functions;
mod import_orders;
mod import_refunds;
mod import_rows;
mod import_whole_orders;
mod incentives;
mod json;
mod managers;
mod outbox;
mod outbox_faults;
mod owners;
mod pool;
mod provider_webhooks;
mod reentry;
mod report;
mod report_browser;
mod rules_safe;
mod serve;
mod serve_browser;
mod sms;
mod staff_browser;
mod staff_customers;
mod staff_ops;
mod surveys;
mod templates;
mod tiers;
mod webhooks;
