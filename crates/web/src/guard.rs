//! What every request goes through before a handler: the per-client rate limit and the access
//! log. (The body size limit and the timeout are tower layers, set in [`crate::routes`].)

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tiercare_scheduler::http_config::PageLanguage;

/// How many clients the rate limiter remembers before it forgets the ones whose minute is over.
const MAX_CLIENTS: usize = 10_000;

/// A fixed-window rate limit per client address: `per_minute` requests in each client's
/// current minute.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    language: Option<PageLanguage>,
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimit {
    /// A limit of `per_minute` requests per client and minute; its page is in `language` (else
    /// the request's).
    pub fn new(per_minute: u32, language: Option<PageLanguage>) -> RateLimit {
        RateLimit {
            per_minute,
            language,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `client` at `now`: `Ok` if allowed, else `Err` with the seconds to
    /// wait.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        const MINUTE: Duration = Duration::from_secs(60);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, (start, _)| now.duration_since(*start) < MINUTE);
        }
        let (start, count) = clients.entry(client).or_insert((now, 0));
        if now.duration_since(*start) >= MINUTE {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            let wait = MINUTE.saturating_sub(now.duration_since(*start));
            return Err(wait.as_secs().max(1));
        }
        *count += 1;
        Ok(())
    }
}

/// The client of a request: the peer, or, when the peer is on loopback (the reverse proxy),
/// the last address it appended to `X-Forwarded-For`. Only a process on this machine can
/// connect from loopback, so the header cannot be forged from outside.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if peer.ip().is_loopback()
        && let Some(forwarded) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return forwarded;
    }
    peer.ip()
}

/// The rate limit as a middleware: 429 with `Retry-After` beyond it.
pub async fn rate_limit(
    State(limit): State<Arc<RateLimit>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = client_address(peer, request.headers());
    match limit.check(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let texts = crate::i18n::texts_for(limit.language, request.headers());
            let mut response = crate::layout::page(
                texts,
                StatusCode::TOO_MANY_REQUESTS,
                texts.too_many,
                &crate::layout::paragraph(texts.too_many),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
    }
}

/// The access log: one `info` line per request with the method, the route template (never the
/// path or query as sent: they may carry tokens), the status and the duration.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    tracing::info!(
        target: "tiercare_web::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_its_own_minute() {
        let limit = RateLimit::new(2, None);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limit.check(a, now), Ok(()));
        assert_eq!(limit.check(a, now), Ok(()));
        assert!(limit.check(a, now + Duration::from_secs(30)).is_err());
        assert_eq!(limit.check(b, now), Ok(()));
        assert_eq!(limit.check(a, now + Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn the_proxy_names_the_client_and_nobody_else_does() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.0.0.9, 203.0.113.7".parse().unwrap());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let outside: SocketAddr = "198.51.100.3:5000".parse().unwrap();
        assert_eq!(
            client_address(proxy, &headers),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(outside, &headers), outside.ip());
        assert_eq!(client_address(proxy, &HeaderMap::new()), proxy.ip());
    }
}
