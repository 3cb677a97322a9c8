//! Who is asking: the session layer of the staff area, the [`Staff`] extractor, the login and
//! logout pages, and the audit of changes made through the web.
//!
//! Every request under `/staff/` goes through [`session_layer`]: it picks the language, checks
//! every POST against cross-site forgery ([`crate::staff::csrf`]) and resolves the session
//! cookie into a [`Staff`] (in the request's extensions). A handler takes [`Staff`] as an
//! argument; a request without a live session is redirected to `/staff/login` before the
//! handler runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;
use tiercare_scheduler::staff::{self as accounts, SessionPolicy};
use tiercare_store::{StaffAuditEntry, StaffRole, Store, StoreError};

use crate::AppState;
use crate::guard::client_address;
use crate::staff::csrf;
use crate::staff::frame;

/// A staff account's role: `Admin` (everything), `Manager` (their own customers and tasks),
/// `Viewer` (reads only).
pub type Role = StaffRole;

/// The session cookie (the random session id; `HttpOnly; SameSite=Strict; Path=/staff`).
pub const SESSION_COOKIE: &str = "tiercare_staff";

/// The login form's cookie: a random token the login form repeats in `_csrf` (there is no
/// session yet to tie it to).
pub const LOGIN_COOKIE: &str = "tiercare_login";

/// The language cookie, set by `?lang=`.
pub const LANG_COOKIE: &str = "tiercare_lang";

/// The login page's path.
pub const LOGIN_PATH: &str = "/staff/login";

/// The signed-in staff member of a request. Take it as a handler argument: a request without
/// a live session never reaches the handler (it is redirected to `/staff/login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// The account's row id.
    pub user_id: i64,
    /// The login name.
    pub login: String,
    /// What the account may do.
    pub role: Role,
    /// For a manager account: the manager's external id (`customers.owner`, `tasks.assignee`).
    pub manager_id: Option<String>,
    /// The session's CSRF token; forms carry it with [`Staff::csrf_field`].
    pub csrf_token: String,
    /// The language of the pages.
    pub lang: PageLanguage,
}

impl Staff {
    /// Whether the account may change anything (admins and managers; not viewers).
    pub fn may_write(&self) -> bool {
        self.role != Role::Viewer
    }

    /// `Ok` when the account may change things, else the 403 page to answer with. Call it first
    /// in every handler that changes something: the server refuses, not just the button.
    pub fn require_write(&self) -> Result<(), Response> {
        if self.may_write() {
            Ok(())
        } else {
            Err(self.forbidden())
        }
    }

    /// `Ok` for an admin, else the 403 page to answer with.
    pub fn require_admin(&self) -> Result<(), Response> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(self.forbidden())
        }
    }

    /// The 403 page: the account may not do this.
    pub fn forbidden(&self) -> Response {
        let title = self.t("Not allowed", "无权操作");
        frame::page_with_status(
            self,
            StatusCode::FORBIDDEN,
            frame::Nav::None,
            title,
            &frame::paragraph(self.t(
                "Your account may not do this. Ask an administrator if you need to.",
                "您的账户无权执行此操作。如有需要，请联系管理员。",
            )),
        )
    }

    /// Whose customers and tasks the account sees: a manager's own id, `None` (everyone's) for
    /// admins and viewers. Pass it to the store's owner/assignee filters.
    pub fn owner_scope(&self) -> Option<&str> {
        match self.role {
            Role::Manager => self.manager_id.as_deref(),
            Role::Admin | Role::Viewer => None,
        }
    }

    /// The hidden `_csrf` field every form of the staff pages must carry.
    pub fn csrf_field(&self) -> String {
        csrf::hidden_field(&self.csrf_token)
    }

    /// `en` or `zh` by the page's language.
    pub fn t(&self, en: &'static str, zh: &'static str) -> &'static str {
        pick(self.lang, en, zh)
    }

    /// An audit entry of this account: `action` (e.g. `task.done`) on `object` (e.g.
    /// `task:12`), with `details` (no personal data where avoidable).
    pub fn audit_entry(
        &self,
        action: &str,
        object: &str,
        details: Option<String>,
    ) -> StaffAuditEntry {
        StaffAuditEntry {
            user_id: Some(self.user_id),
            login: self.login.clone(),
            action: action.to_owned(),
            object: object.to_owned(),
            details,
        }
    }

    /// Records in `staff_audit` that this account did `action` on `object` at `now`. Call it in
    /// the [`blocking`] work right after the change.
    pub fn audit(
        &self,
        store: &mut Store,
        action: &str,
        object: &str,
        details: Option<String>,
        now: i64,
    ) -> Result<(), StoreError> {
        store.record_staff_audit(&self.audit_entry(action, object, details), now)
    }
}

/// `en` or `zh` by `lang`.
pub fn pick(lang: PageLanguage, en: &'static str, zh: &'static str) -> &'static str {
    match lang {
        PageLanguage::English => en,
        PageLanguage::SimplifiedChinese => zh,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or_else(|| Redirect::to(LOGIN_PATH).into_response())
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Staff {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Staff>().cloned())
    }
}

/// The language of a staff request (also before sign-in), from the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffLang(pub PageLanguage);

impl<S: Send + Sync> FromRequestParts<S> for StaffLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<StaffLang>()
            .copied()
            .unwrap_or(StaffLang(PageLanguage::English)))
    }
}

/// Runs `work` with the store and the time on the blocking pool; a failure is logged and
/// becomes the 500 page.
pub async fn blocking<T, E>(
    state: &Arc<AppState>,
    lang: PageLanguage,
    work: impl FnOnce(&mut Store, i64) -> Result<T, E> + Send + 'static,
) -> Result<T, Response>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let state = Arc::clone(state);
    match tokio::task::spawn_blocking(move || state.with_store(|store, _, now| work(store, now)))
        .await
    {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "a staff request failed");
            Err(server_error(lang))
        }
        Err(err) => {
            tracing::error!(error = %err, "a staff request failed");
            Err(server_error(lang))
        }
    }
}

/// The 500 page.
pub fn server_error(lang: PageLanguage) -> Response {
    let title = pick(lang, "Something went wrong", "出错了");
    frame::bare_page(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        title,
        &frame::paragraph(pick(
            lang,
            "Something went wrong on our side. Please try again; if it persists, tell the administrator.",
            "服务器出现问题。请重试；如果问题持续，请告知管理员。",
        )),
    )
}

/// The value of the cookie `name` in `headers`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `?lang=` of a query string.
fn lang_of_query(query: Option<&str>) -> Option<PageLanguage> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "lang")
        .and_then(|(_, value)| language_named(&value))
}

fn language_named(name: &str) -> Option<PageLanguage> {
    match name {
        "en" => Some(PageLanguage::English),
        "zh-CN" | "zh" => Some(PageLanguage::SimplifiedChinese),
        _ => None,
    }
}

fn language_code(lang: PageLanguage) -> &'static str {
    match lang {
        PageLanguage::English => "en",
        PageLanguage::SimplifiedChinese => "zh-CN",
    }
}

/// A `Set-Cookie` value of the staff area: `HttpOnly; SameSite=Strict; Path=/staff`, `Secure`
/// when `secure`, ended at once when `value` is `None`.
pub fn set_cookie(name: &str, value: Option<&str>, secure: bool) -> HeaderValue {
    let mut text = format!(
        "{name}={}; HttpOnly; SameSite=Strict; Path=/staff",
        value.unwrap_or("")
    );
    if value.is_none() {
        text.push_str("; Max-Age=0");
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether cookies get `Secure`: the public URL is https.
fn secure_cookies(state: &AppState) -> bool {
    state
        .config()
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
}

/// The layer of the staff area: language, CSRF checks on every POST, and the session.
pub async fn session_layer(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let from_query = lang_of_query(parts.uri.query());
    let lang = from_query
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(language_named))
        .unwrap_or_else(|| {
            crate::i18n::negotiate(
                state.language(),
                parts
                    .headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|value| value.to_str().ok()),
            )
        });
    parts.extensions.insert(StaffLang(lang));
    let is_post = parts.method == Method::POST;
    if is_post && !csrf::same_origin(&parts.headers, state.config().public_url.as_deref()) {
        tracing::warn!("a cross-site POST to the staff pages was refused");
        return csrf::refused(lang);
    }
    let session = match cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) {
        Some(value) => {
            let policy = SessionPolicy::from_config(state.config());
            match blocking(&state, lang, move |store, now| {
                accounts::session(store, &value, policy, now)
            })
            .await
            {
                Ok(found) => found,
                Err(response) => return response,
            }
        }
        None => None,
    };
    if let Some(session) = &session {
        parts.extensions.insert(Staff {
            user_id: session.user.id,
            login: session.user.login.clone(),
            role: session.user.role,
            manager_id: session.user.manager_id.clone(),
            csrf_token: session.csrf_token.clone(),
            lang,
        });
    }
    let body = if is_post {
        let bytes = match axum::body::to_bytes(body, state.config().max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        let expected = if parts.uri.path() == LOGIN_PATH {
            cookie(&parts.headers, LOGIN_COOKIE).map(str::to_owned)
        } else {
            session.as_ref().map(|session| session.csrf_token.clone())
        };
        match expected {
            None if parts.uri.path() != LOGIN_PATH => {
                // No session: nothing may change; sign in first.
                return Redirect::to(LOGIN_PATH).into_response();
            }
            Some(token) if csrf::form_token_matches(&bytes, &token) => {}
            _ => {
                tracing::warn!("a staff POST without its CSRF token was refused");
                return csrf::refused(lang);
            }
        }
        axum::body::Body::from(bytes)
    } else {
        body
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(lang) = from_query {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(
                LANG_COOKIE,
                Some(language_code(lang)),
                secure_cookies(&state),
            ),
        );
    }
    response
}

/// The account routes: the login page and logout.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(login_submit))
        .route("/staff/logout", post(logout))
}

fn login_form(lang: PageLanguage, token: &str, failed: bool) -> String {
    let mut body = String::new();
    if failed {
        body.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            escape(pick(
                lang,
                "Wrong login or password, or too many attempts: check them, or wait 15 minutes.",
                "登录名或密码错误，或尝试次数过多：请检查，或等待 15 分钟。",
            ))
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{LOGIN_PATH}\" class=\"stacked\">\n{csrf}\
         <label for=\"login\">{login}</label>\n\
         <input id=\"login\" name=\"login\" autocomplete=\"username\" required autofocus>\n\
         <label for=\"password\">{password}</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">{button}</button>\n</form>\n",
        csrf = csrf::hidden_field(token),
        login = escape(pick(lang, "Login", "登录名")),
        password = escape(pick(lang, "Password", "密码")),
        button = escape(pick(lang, "Sign in", "登录")),
    ));
    body
}

/// `GET /staff/login`: the form (with the browser's login token, or a fresh one), or the
/// dashboard when signed in.
async fn login_page(
    State(state): State<Arc<AppState>>,
    StaffLang(lang): StaffLang,
    staff: Option<Staff>,
    headers: HeaderMap,
) -> Response {
    if staff.is_some() {
        return Redirect::to("/staff/").into_response();
    }
    login_response(&state, &headers, lang, StatusCode::OK, false)
}

/// The login page. The browser's login token is kept when it has a well-formed one, so two
/// open login tabs both work; otherwise a new random one is set.
fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    lang: PageLanguage,
    status: StatusCode,
    failed: bool,
) -> Response {
    let kept = cookie(headers, LOGIN_COOKIE)
        .filter(|token| token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let Some(token) = kept.or_else(|| accounts::random_hex(32).ok()) else {
        return server_error(lang);
    };
    let title = pick(lang, "Sign in to tiercare", "登录 tiercare");
    let mut response = frame::bare_page(lang, status, title, &login_form(lang, &token, failed));
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, Some(&token), secure_cookies(state)),
    );
    response
}

/// `POST /staff/login`: signs in, or shows the form again with one message for every refusal.
async fn login_submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    StaffLang(lang): StaffLang,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut login = String::new();
    let mut password = String::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "login" => login = value.trim().to_owned(),
            "password" => password = value.into_owned(),
            _ => {}
        }
    }
    let client = client_address(peer, &headers).to_string();
    let previous = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    let outcome = blocking(&state, lang, move |store, now| {
        let session = accounts::login(store, &login, &password, &client, previous.as_deref(), now)?;
        if let Some(session) = &session {
            store.record_staff_audit(
                &StaffAuditEntry {
                    user_id: Some(session.user.id),
                    login: session.user.login.clone(),
                    action: "login".to_owned(),
                    object: format!("staff_user:{}", session.user.id),
                    details: None,
                },
                now,
            )?;
        }
        Ok::<_, accounts::StaffError>(session)
    })
    .await;
    match outcome {
        Ok(Some(session)) => {
            let secure = secure_cookies(&state);
            let mut response = Redirect::to("/staff/").into_response();
            let cookies = response.headers_mut();
            cookies.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, Some(&session.cookie), secure),
            );
            cookies.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, None, secure));
            response
        }
        Ok(None) => login_response(&state, &headers, lang, StatusCode::UNAUTHORIZED, true),
        Err(response) => response,
    }
}

/// `POST /staff/logout`: ends the session and its cookie.
async fn logout(State(state): State<Arc<AppState>>, staff: Staff, headers: HeaderMap) -> Response {
    let cookie_value = cookie(&headers, SESSION_COOKIE).unwrap_or("").to_owned();
    let lang = staff.lang;
    let done = blocking(&state, lang, move |store, now| {
        staff.audit(
            store,
            "logout",
            &format!("staff_user:{}", staff.user_id),
            None,
            now,
        )?;
        accounts::logout(store, &cookie_value)
    })
    .await;
    if let Err(response) = done {
        return response;
    }
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, None, secure_cookies(&state)),
    );
    response
}
