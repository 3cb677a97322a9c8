//! The staff workspace under `/staff/`: what account managers, the care team and the owner
//! use in a browser. Server-rendered pages without script, one module per page area.
//!
//! - [`auth`]: the session layer every staff request goes through (language, CSRF, session),
//!   the [`Staff`] extractor, login and logout, and the audit of changes.
//! - [`csrf`]: the CSRF checks and the hidden `_csrf` field every form carries.
//! - [`frame`]: the page frame (header, navigation, language, logout) and the stylesheet.
//! - [`dashboard`]: `/staff/`, the headline figures and today's work.
//! - [`tasks`]: `/staff/tasks`, "my tasks".
//!
//! A page area adds a module here and registers its routes with one `.merge(...)` line in
//! [`routes`]; its handlers take [`Staff`] (signed in, or redirected to the login page), render
//! with [`frame::page`], put [`Staff::csrf_field`] in every form, call
//! [`Staff::require_write`] before changing anything and [`Staff::audit`] after, and scope
//! reads with [`Staff::owner_scope`].

pub mod auth;
pub mod csrf;
pub mod customer;
pub mod customer_texts;
pub mod customers;
pub mod dashboard;
pub mod frame;
pub mod tasks;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use auth::{Role, Staff, StaffLang, blocking};
pub use frame::Nav;

use crate::AppState;

/// The staff area's routes, behind its session layer.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .merge(auth::routes())
        .merge(dashboard::routes())
        .merge(tasks::routes())
        .merge(customers::routes())
        .merge(customer::routes())
        .route(frame::STYLESHEET_PATH, get(frame::stylesheet))
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::session_layer,
        ))
}
