//! What recipients reach from their e-mails: the one-click unsubscribe (RFC 8058), the page a
//! browser opening the same link sees, and the preference page.
//!
//! - `POST /unsubscribe?token=T` with `List-Unsubscribe=One-Click` (form-urlencoded or
//!   multipart, as RFC 8058 allows) suppresses the address at once and answers 200, for a
//!   token that is not valid too (nothing changes then), so nobody can probe which tokens or
//!   addresses exist.
//! - `GET /unsubscribe?token=T` changes nothing (link scanners follow GETs): a page with a
//!   button, a form that makes that POST.
//! - `GET /preferences?token=T`: whether the address is unsubscribed and the customer's e-mail
//!   and SMS consents, with buttons to turn each off (`POST /preferences?token=T`, `stop=email`
//!   or `stop=sms`).
//!
//! The token in the URL is the only credential: forms post back to the same URL (relative
//! links, so the server may sit under a prefix of the reverse proxy), and a page from another
//! site cannot make the POSTs without the token.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::{PREFERENCES_PATH, UNSUBSCRIBE_PATH};
use tiercare_scheduler::preferences::{
    Preferences, TokenOutcome, preferences, set_consents, unsubscribe_with_token,
};
use tiercare_store::StoreError;

use crate::AppState;
use crate::i18n::{Texts, texts_for};
use crate::layout::{page, paragraph};

/// The area's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(UNSUBSCRIBE_PATH, get(unsubscribe_page).post(one_click))
        .route(
            PREFERENCES_PATH,
            get(preferences_page).post(change_preferences),
        )
}

/// The `token` of a query string (empty when there is none).
fn token_of(query: Option<&str>) -> String {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == "token")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// The query string carrying `token`, escaped for an attribute.
fn token_query(token: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    escape(&format!("?token={encoded}"))
}

/// Whether a POST body asks for the one-click unsubscribe (`List-Unsubscribe=One-Click`).
fn asks_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(body);
        return text
            .split("name=\"List-Unsubscribe\"")
            .nth(1)
            .is_some_and(|rest| {
                rest.split("\r\n\r\n")
                    .nth(1)
                    .is_some_and(|value| value.trim_start().starts_with("One-Click"))
            });
    }
    form_urlencoded::parse(body)
        .any(|(key, value)| key == "List-Unsubscribe" && value == "One-Click")
}

/// Runs `work` with the store on the blocking pool; a failure is logged (without the token)
/// and becomes `None`.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(
        &mut tiercare_store::Store,
        &tiercare_scheduler::mail::TokenSigner,
        i64,
    ) -> Result<T, StoreError>
    + Send
    + 'static,
) -> Option<T> {
    let state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || state.with_store(work)).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "a recipient's request failed in the database");
            None
        }
        Err(err) => {
            tracing::error!(error = %err, "a recipient's request failed");
            None
        }
    }
}

pub(crate) fn server_error(texts: &Texts) -> Response {
    page(
        texts,
        StatusCode::INTERNAL_SERVER_ERROR,
        texts.server_error,
        &paragraph(texts.server_error),
    )
}

/// The form that unsubscribes: the one-click POST, from a browser.
fn unsubscribe_form(texts: &Texts, token: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{UNSUBSCRIBE}{query}\">\n\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
         <button type=\"submit\">{button}</button>\n</form>\n",
        UNSUBSCRIBE = &UNSUBSCRIBE_PATH[1..],
        query = token_query(token),
        button = escape(texts.unsubscribe_button),
    )
}

fn preferences_link(texts: &Texts, token: &str) -> String {
    format!(
        "<p><a href=\"{PREFERENCES}{query}\">{text}</a></p>\n",
        PREFERENCES = &PREFERENCES_PATH[1..],
        query = token_query(token),
        text = escape(texts.preferences_link),
    )
}

/// `GET /unsubscribe`: the button, never a change (the same page for any token).
async fn unsubscribe_page(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    let token = token_of(query.as_deref());
    let body = format!(
        "{}{}{}",
        paragraph(texts.unsubscribe_lead),
        unsubscribe_form(texts, &token),
        preferences_link(texts, &token)
    );
    page(texts, StatusCode::OK, texts.unsubscribe_title, &body)
}

/// `POST /unsubscribe`: the one-click unsubscribe. 200 whether or not the token is valid.
async fn one_click(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    if !asks_one_click(&headers, &body) {
        return page(
            texts,
            StatusCode::BAD_REQUEST,
            texts.bad_request,
            &paragraph(texts.bad_request),
        );
    }
    let token = token_of(query.as_deref());
    let work_token = token.clone();
    let outcome = blocking(&state, move |store, signer, now| {
        unsubscribe_with_token(store, signer, &work_token, "web:one-click", now)
    })
    .await;
    match outcome {
        Some(TokenOutcome::Unsubscribed { .. } | TokenOutcome::Invalid) => {
            let body = format!(
                "<p class=\"notice\" role=\"status\">{}</p>\n{}",
                escape(texts.unsubscribed_text),
                preferences_link(texts, &token)
            );
            page(texts, StatusCode::OK, texts.unsubscribed_title, &body)
        }
        None => server_error(texts),
    }
}

/// The preference page's body.
fn preferences_body(texts: &Texts, token: &str, shown: &Preferences, saved: bool) -> String {
    let mut body = String::new();
    if saved {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(texts.saved)
        ));
    }
    if shown.unsubscribed {
        body.push_str(&paragraph(texts.address_unsubscribed));
    } else {
        body.push_str(&paragraph(texts.unsubscribe_lead));
        body.push_str(&unsubscribe_form(texts, token));
    }
    if let Some(consents) = shown.consents {
        for (on, yes, no, stop, channel) in [
            (
                consents.email,
                texts.email_on,
                texts.email_off,
                texts.stop_email,
                "email",
            ),
            (
                consents.sms,
                texts.sms_on,
                texts.sms_off,
                texts.stop_sms,
                "sms",
            ),
        ] {
            body.push_str(&paragraph(if on { yes } else { no }));
            if on {
                body.push_str(&format!(
                    "<form method=\"post\" action=\"{PREFERENCES}{query}\">\n\
                     <input type=\"hidden\" name=\"stop\" value=\"{channel}\">\n\
                     <button type=\"submit\">{button}</button>\n</form>\n",
                    PREFERENCES = &PREFERENCES_PATH[1..],
                    query = token_query(token),
                    button = escape(stop),
                ));
            }
        }
    }
    body
}

fn invalid_link(texts: &Texts) -> Response {
    page(
        texts,
        StatusCode::OK,
        texts.preferences_title,
        &paragraph(texts.invalid_link),
    )
}

/// `GET /preferences`: what the recipient gets, with buttons to stop each.
async fn preferences_page(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    let token = token_of(query.as_deref());
    let work_token = token.clone();
    let shown = blocking(&state, move |store, signer, now| {
        preferences(store, signer, &work_token, now)
    })
    .await;
    match shown {
        Some(Some(shown)) => page(
            texts,
            StatusCode::OK,
            texts.preferences_title,
            &preferences_body(texts, &token, &shown, false),
        ),
        Some(None) => invalid_link(texts),
        None => server_error(texts),
    }
}

/// `POST /preferences` with `stop=email` or `stop=sms`: turns that consent off.
async fn change_preferences(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    let stop = form_urlencoded::parse(&body)
        .find(|(key, _)| key == "stop")
        .map(|(_, value)| value.into_owned());
    let (email, sms) = match stop.as_deref() {
        Some("email") => (Some(false), None),
        Some("sms") => (None, Some(false)),
        _ => {
            return page(
                texts,
                StatusCode::BAD_REQUEST,
                texts.bad_request,
                &paragraph(texts.bad_request),
            );
        }
    };
    let token = token_of(query.as_deref());
    let work_token = token.clone();
    let shown = blocking(&state, move |store, signer, now| {
        set_consents(store, signer, &work_token, email, sms, now)
    })
    .await;
    match shown {
        Some(Some(shown)) => page(
            texts,
            StatusCode::OK,
            texts.preferences_title,
            &preferences_body(texts, &token, &shown, true),
        ),
        Some(None) => invalid_link(texts),
        None => server_error(texts),
    }
}
