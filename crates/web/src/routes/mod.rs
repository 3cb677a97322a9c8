//! The router: one module per area, each adding its routes; the layers every request goes
//! through (access log, rate limit, security headers, body size limit, timeout); the
//! stylesheet and the not-found page.
//!
//! Areas: [`unsubscribe`] (what recipients reach from their e-mails). To come beside it: the
//! providers' `/webhooks/{provider}` (bounce and complaint events, parsed by the bounce
//! library), and the staff workspace (issue #17), whose sessions will be a layer of its own
//! area's router, not of these public pages.

pub mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tiercare_scheduler::http_config::PageLanguage;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::guard::{RateLimit, access_log, rate_limit};
use crate::i18n::{Texts, negotiate, texts};
use crate::layout::{STYLESHEET, page, paragraph, security_headers};

/// The whole application: every area's routes and the layers around them.
pub fn router(state: Arc<AppState>) -> Router {
    let config = state.config().clone();
    let limit = Arc::new(RateLimit::new(config.requests_per_minute));
    Router::new()
        .merge(unsubscribe::routes())
        // The providers' webhooks go here: `.merge(webhooks::routes())` serving
        // `POST /webhooks/{provider}` (authenticated per provider, then the bounce library).
        .route("/static/page.css", get(stylesheet))
        .fallback(not_found)
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(config.timeout_seconds),
        ))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(limit, rate_limit))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(access_log))
}

/// The texts of a request: the configured language, else its `Accept-Language`.
pub fn texts_for(configured: Option<PageLanguage>, headers: &HeaderMap) -> &'static Texts {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok());
    texts(negotiate(configured, accept))
}

async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    page(
        texts,
        StatusCode::NOT_FOUND,
        texts.not_found,
        &paragraph(texts.not_found),
    )
}
