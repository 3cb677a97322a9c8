//! The providers' bounce and complaint webhooks: `POST /webhooks/{provider}` (`postmark`,
//! `mailgun` or `generic`), authenticated and recorded by
//! [`tiercare_scheduler::providers::handle_provider_webhook`] with the settings
//! [`AppState::providers`] holds (built once at start from `[mail.bounces]` and the
//! environment).
//!
//! Answers: 200 with `{"outcome": "recorded" | "duplicate" | "unmatched" | "ignored"}`
//! (`unmatched`: neither the email nor the address was found; `ignored`: an authentic event
//! that is not a bounce or complaint); otherwise the error's status (401 a wrong or missing
//! signature or password, 400 a body that is not the provider's notification, 404 an unknown
//! or unconfigured provider, 503 a busy database, which providers retry) with a short fixed
//! text that quotes nothing from the request. The body is never logged.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tiercare_scheduler::providers::{Outcome, ProviderError, handle_provider_webhook};

use crate::AppState;

/// The path the providers call.
pub const WEBHOOKS_PATH: &str = "/webhooks/{provider}";

/// The providers served, the only names logged.
const PROVIDERS: [&str; 3] = ["postmark", "mailgun", "generic"];

/// The area's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(WEBHOOKS_PATH, post(provider_webhook))
}

/// The request's headers as `(name, value)` pairs; a value that is not visible ASCII is
/// left out (no provider signs with one).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|value| (name.as_str().to_owned(), value.to_owned()))
        })
        .collect()
}

/// The one word the answer's JSON gives for `outcome`.
fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Recorded(recorded) if recorded.duplicate => "duplicate",
        Outcome::Recorded(recorded) if recorded.recorded => "recorded",
        Outcome::Recorded(_) => "unmatched",
        Outcome::Ignored { .. } => "ignored",
    }
}

/// The fixed text of a refusal (nothing from the request: the error's own words may quote
/// the body or the path).
fn refusal_text(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized: wrong or missing signature or password\n",
        StatusCode::BAD_REQUEST => "bad request: not a notification of this provider\n",
        StatusCode::NOT_FOUND => {
            "not found: the provider is unknown or not configured (postmark, mailgun, generic)\n"
        }
        StatusCode::SERVICE_UNAVAILABLE => "the database is busy: try again later\n",
        _ => "the notification could not be recorded\n",
    }
}

fn text(status: StatusCode, body: impl Into<String>, content_type: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

/// `POST /webhooks/{provider}`: the store on the blocking pool, one transaction per call.
async fn provider_webhook(
    State(state): State<Arc<AppState>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = header_pairs(&headers);
    let logged = PROVIDERS
        .iter()
        .find(|known| **known == provider)
        .copied()
        .unwrap_or("(unknown)");
    let worker = Arc::clone(&state);
    let result = tokio::task::spawn_blocking(move || {
        worker.with_store(|store, _, now| {
            handle_provider_webhook(store, worker.providers(), &provider, &headers, &body, now)
        })
    })
    .await;
    match result {
        Ok(Ok(outcome)) => {
            let word = outcome_word(&outcome);
            tracing::info!(provider = logged, outcome = word, "provider webhook");
            let json = format!("{{\"outcome\":\"{word}\"}}\n");
            text(StatusCode::OK, json, "application/json")
        }
        Ok(Err(err)) => {
            let status =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            log_refusal(logged, status, &err);
            text(status, refusal_text(status), "text/plain; charset=utf-8")
        }
        Err(err) => {
            tracing::error!(provider = logged, error = %err, "a provider webhook failed");
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            text(status, refusal_text(status), "text/plain; charset=utf-8")
        }
    }
}

/// Logs a refusal: its status at warn (server faults at error), the error's words (which
/// may quote the body) at debug only.
fn log_refusal(provider: &str, status: StatusCode, err: &ProviderError) {
    if status.is_server_error() {
        match err {
            ProviderError::Store(store) => {
                tracing::error!(provider, status = status.as_u16(), error = %store,
                    "a provider webhook failed in the database");
            }
            _ => tracing::error!(
                provider,
                status = status.as_u16(),
                "a provider webhook failed"
            ),
        }
    } else {
        tracing::warn!(
            provider,
            status = status.as_u16(),
            "a provider webhook was refused"
        );
    }
    tracing::debug!(provider, error = %err, "provider webhook refusal");
}
