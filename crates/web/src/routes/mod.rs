//! The router: one module per area, each adding its routes; the layers every request goes
//! through (access log, rate limit, security headers, body size limit, timeout); the
//! stylesheet and the not-found page.
//!
//! Areas: [`unsubscribe`] (what recipients reach from their e-mails) and [`webhooks`] (the
//! providers' `/webhooks/{provider}`: bounce and complaint events, authenticated and recorded
//! by the scheduler). To come beside them: the staff workspace (issue #17), whose sessions will
//! be a layer of its own area's router, not of these public pages.

pub mod unsubscribe;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::guard::{RateLimit, access_log, rate_limit};
use crate::i18n::texts_for;
use crate::layout::{STYLESHEET, page, paragraph, security_headers};

/// The whole application: every area's routes and the layers around them.
pub fn router(state: Arc<AppState>) -> Router {
    let config = state.config().clone();
    let limit = Arc::new(RateLimit::new(config.requests_per_minute, config.language));
    Router::new()
        .merge(unsubscribe::routes())
        .merge(webhooks::routes())
        .merge(crate::staff::routes(Arc::clone(&state)))
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use tiercare_scheduler::http_config::HttpConfig;
    use tiercare_scheduler::mail::TokenSigner;
    use tiercare_store::Store;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-secret";

    fn app(config: HttpConfig) -> (Router, String) {
        let signer = TokenSigner::new(SECRET, None).unwrap();
        let token = signer.token("ada@example.com", 1, 100);
        let mut store = Store::open_in_memory().unwrap();
        store.set_address_keys(signer.address_keys().clone());
        let state = Arc::new(AppState::new(store, signer, config, || 100));
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        (router(state).layer(MockConnectInfo(peer)), token)
    }

    async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn post(uri: &str, body: &str) -> Request<Body> {
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn pages_carry_the_security_headers_and_get_never_unsubscribes() {
        let (app, token) = app(HttpConfig::default());
        let (status, headers, page) = call(
            &app,
            Request::get(format!("/unsubscribe?token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], crate::layout::CSP);
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(page.contains("action=\"unsubscribe?token="), "{page}");
        assert!(!page.contains("<script"));
        let (_, _, preferences) = call(
            &app,
            Request::get(format!("/preferences?token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(
            preferences.contains("Press the button to stop"),
            "not unsubscribed by the GET: {preferences}"
        );
        // The one-click POST, then the page says so.
        let (status, _, _) = call(
            &app,
            post(
                &format!("/unsubscribe?token={token}"),
                "List-Unsubscribe=One-Click",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, preferences) = call(
            &app,
            Request::get(format!("/preferences?token={token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(
            preferences.contains("This address is unsubscribed"),
            "{preferences}"
        );
        // A POST without the one-click field is refused; not found is a page too.
        let (status, _, _) = call(&app, post(&format!("/unsubscribe?token={token}"), "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, headers, _) =
            call(&app, Request::get("/nothing").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], crate::layout::CSP);
    }

    #[tokio::test]
    async fn large_bodies_and_too_many_requests_are_refused() {
        let (app, token) = app(HttpConfig {
            max_body_bytes: 256,
            requests_per_minute: 3,
            ..HttpConfig::default()
        });
        let uri = format!("/unsubscribe?token={token}");
        let big = format!("List-Unsubscribe=One-Click&padding={}", "x".repeat(400));
        let (status, _, _) = call(&app, post(&uri, &big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        for _ in 0..2 {
            let (status, _, _) = call(&app, Request::get(&uri).body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, headers, page) = call(
            &app,
            Request::get(&uri)
                .header(header::ACCEPT_LANGUAGE, "zh-CN")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(headers.contains_key(header::RETRY_AFTER));
        assert!(page.contains("lang=\"zh-CN\""), "{page}");
    }
}
