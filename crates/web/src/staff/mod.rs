//! The staff workspace under `/staff/`: what account managers, the care team and the owner
//! use in a browser. Server-rendered pages without script, one module per page area.
//!
//! - [`auth`]: the session layer every staff request goes through (language, CSRF, session),
//!   the [`Staff`] extractor, login and logout, and the audit of changes.
//! - [`csrf`]: the CSRF checks and the hidden `_csrf` field every form carries.
//! - [`frame`]: the page frame (header, navigation, language, logout) and the stylesheet.
//! - [`dashboard`]: `/staff/`, the headline figures and today's work.
//! - [`tasks`]: `/staff/tasks`, "my tasks".
//! - [`outbox`], [`plan`], [`rules`]: `/staff/outbox` (per state, retry, cancel, held, resume),
//!   `/staff/plan` (the coming days), `/staff/rules` (as loaded, reload problems, a preview).
//! - [`refusal`]: the store's refusals (409 pages) in the page's language.
//! - [`rules_cache`]: the rules the customers list reads, compiled once per version.
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
pub mod outbox;
pub mod plan;
pub mod reading;
pub mod refusal;
pub mod rules;
pub mod rules_cache;
pub mod tasks;

#[cfg(test)]
mod ops_tests;

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
        .merge(outbox::routes())
        .merge(plan::routes())
        .merge(rules::routes())
        .merge(customers::routes())
        .merge(customer::routes())
        .route(frame::STYLESHEET_PATH, get(frame::stylesheet))
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::session_layer,
        ))
}

/// Test support for the staff pages' unit tests: an app over an in-memory store and a
/// signed-in session, without a socket or a password hash.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{HeaderMap, Request, StatusCode, header};
    use tiercare_scheduler::http_config::HttpConfig;
    use tiercare_scheduler::mail::TokenSigner;
    use tiercare_scheduler::staff::session_hash;
    use tiercare_store::Store;
    use tower::ServiceExt;

    use super::Role;
    use crate::AppState;

    /// The tests' clock.
    pub const NOW: i64 = 1_800_000_000;

    /// A signed-in test session.
    pub struct Session {
        /// The `Cookie` header value.
        pub cookie: String,
        /// The session's CSRF token.
        pub csrf: String,
    }

    /// The whole router over an in-memory store prepared by `setup`, with a session of the
    /// account `login` (`role`, `manager`).
    pub fn app(
        setup: impl FnOnce(&mut Store),
        login: &str,
        role: Role,
        manager: Option<&str>,
    ) -> (Router, Session) {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let mut store = Store::open_in_memory().unwrap();
        store.set_address_keys(signer.address_keys().clone());
        setup(&mut store);
        let user = store
            .add_staff_user(login, role, manager, "not a hash", NOW)
            .unwrap();
        let cookie = format!("{login}-session");
        let csrf = format!("{login}-csrf");
        store
            .start_staff_session(&session_hash(&cookie), user.id, &csrf, None, "test", NOW)
            .unwrap();
        let state = Arc::new(AppState::new(store, signer, HttpConfig::default(), || NOW));
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let router = crate::router(state).layer(MockConnectInfo(peer));
        (
            router,
            Session {
                cookie: format!("{}={cookie}", super::auth::SESSION_COOKIE),
                csrf,
            },
        )
    }

    /// Sends `request`: the status, the headers and the body.
    pub async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET uri` in `session` (none: signed out).
    pub async fn get(
        app: &Router,
        uri: &str,
        session: Option<&Session>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::get(uri);
        if let Some(session) = session {
            request = request.header(header::COOKIE, &session.cookie);
        }
        call(app, request.body(Body::empty()).unwrap()).await
    }

    /// `POST uri` with the urlencoded `form` (the session's `_csrf` added first) in `session`.
    pub async fn post(
        app: &Router,
        uri: &str,
        session: &Session,
        form: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let request = Request::post(uri)
            .header(header::COOKIE, &session.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("_csrf={}&{form}", session.csrf)))
            .unwrap();
        call(app, request).await
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};

    use super::Role;
    use super::testing::{app, get, post};

    #[tokio::test]
    async fn signed_out_requests_go_to_the_login_page_and_the_language_sticks() {
        let (app, session) = app(|_| {}, "ada", Role::Admin, None);
        let (status, headers, _) = get(&app, "/staff/tasks", None).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers[header::LOCATION], "/staff/login");
        let (status, _, page) = get(&app, "/staff/login", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<label for=\"password\">"), "{page}");

        let (status, headers, page) = get(&app, "/staff/?lang=zh-CN", Some(&session)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("lang=\"zh-CN\"") && page.contains("概览"),
            "{page}"
        );
        assert!(
            !page.contains("<script") && !page.contains("style="),
            "{page}"
        );
        let cookie = headers[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("tiercare_lang=zh-CN; HttpOnly; SameSite=Strict; Path=/staff"));
        assert!(!cookie.contains("Secure"), "http public URL: no Secure");
        // Every nav entry of the frame.
        for path in [
            "/staff/customers",
            "/staff/tasks",
            "/staff/outbox",
            "/staff/plan",
            "/staff/rules",
        ] {
            assert!(page.contains(&format!("href=\"{path}\"")), "{path}");
        }
    }

    #[tokio::test]
    async fn two_login_tabs_share_one_login_token() {
        use axum::body::Body;
        use axum::http::Request;

        let (app, _) = app(|_| {}, "ada", Role::Admin, None);
        let (_, headers, first) = get(&app, "/staff/login", None).await;
        let set = headers[header::SET_COOKIE].to_str().unwrap();
        let token = set
            .strip_prefix("tiercare_login=")
            .and_then(|rest| rest.split(';').next())
            .unwrap()
            .to_owned();
        assert!(first.contains(&format!("value=\"{token}\"")), "{first}");
        let request = Request::get("/staff/login")
            .header(header::COOKIE, format!("tiercare_login={token}"))
            .body(Body::empty())
            .unwrap();
        let (_, _, second) = super::testing::call(&app, request).await;
        assert!(second.contains(&format!("value=\"{token}\"")), "{second}");
    }

    #[tokio::test]
    async fn a_post_with_the_sessions_token_passes_the_layer_and_a_stale_one_does_not() {
        let (app, session) = app(|_| {}, "ada", Role::Admin, None);
        let (status, _, _) = post(&app, "/staff/tasks/1/done", &session, "note=x").await;
        // Past the layer: the task does not exist (a 409 page), not a 403.
        assert_eq!(status, StatusCode::CONFLICT);
        let stale = super::testing::Session {
            cookie: session.cookie.clone(),
            csrf: "stale".to_owned(),
        };
        let (status, _, _) = post(&app, "/staff/tasks/1/done", &stale, "note=x").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
