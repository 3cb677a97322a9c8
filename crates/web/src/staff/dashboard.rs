//! `/staff/`: the dashboard.

use std::sync::Arc;

use axum::Router;
use axum::response::{Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::staff::Staff;
use crate::staff::frame::{self, Nav};

/// The dashboard's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/", get(dashboard))
        .route("/staff", get(|| async { Redirect::permanent("/staff/") }))
}

/// `GET /staff/`.
async fn dashboard(staff: Staff) -> Response {
    let title = staff.t("Dashboard", "概览");
    frame::page(&staff, Nav::Dashboard, title, "")
}
