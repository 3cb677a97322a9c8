//! `/staff/tasks`: my tasks.

use std::sync::Arc;

use axum::Router;

use crate::AppState;

/// The tasks page's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
