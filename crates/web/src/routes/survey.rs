//! Survey answers: what a recipient reaches from the score links of a survey e-mail.
//!
//! - `GET /survey/{token}` changes nothing (mail scanners follow links): a page with the
//!   question, the link's score preselected among all the scores (the single link of an SMS
//!   survey carries no score: nothing is preselected, or the answer so far), an optional comment
//!   box and a button that makes the POST.
//! - `POST /survey/{token}` (form fields `score`, `comment`) records the answer as the
//!   customer's feedback (a later answer to the same e-mail replaces it; a comment can be added
//!   later) and shows a thank-you page.
//! - A forged, damaged or foreign token gets a page saying the link is not valid; one older
//!   than the links' lifetime a page saying it expired. Neither says whose it was.
//!
//! The token in the URL is the only credential, as for the unsubscribe pages: the form posts
//! back to the same (relative) URL.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::SURVEY_PATH;
use tiercare_scheduler::mail::survey::{SurveyPage, answer_survey, survey_page};
use tiercare_store::Survey;

use crate::AppState;
use crate::i18n::{Texts, texts_for};
use crate::layout::{page, paragraph};
use crate::routes::unsubscribe::{blocking, server_error};

/// The area's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            &format!("{SURVEY_PATH}/{{token}}"),
            get(question).post(answer),
        )
        // The pages link their stylesheet relatively, as every page does.
        .route(
            &format!("{SURVEY_PATH}/static/page.css"),
            get(crate::routes::stylesheet),
        )
}

/// The form: the question, one radio button per score (`chosen` checked), the comment box.
fn form(
    texts: &Texts,
    token: &str,
    survey: &Survey,
    chosen: Option<u8>,
    comment: Option<&str>,
) -> String {
    let (min, max) = survey.kind.range();
    let mut body = String::new();
    let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{}\">\n<fieldset class=\"scores\">\n\
         <legend>{}</legend>\n<p class=\"scale\">{}</p>\n",
        escape(&encoded),
        escape(&survey.question),
        escape(&texts.survey_scale(min, max)),
    );
    for score in min..=max {
        let checked = if Some(score) == chosen {
            " checked"
        } else {
            ""
        };
        let _ = writeln!(
            body,
            "<label><input type=\"radio\" name=\"score\" value=\"{score}\"{checked}> {score}</label>"
        );
    }
    let _ = write!(
        body,
        "</fieldset>\n<p><label for=\"comment\">{}</label><br>\n\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" maxlength=\"2000\">{}</textarea></p>\n\
         <button type=\"submit\">{}</button>\n</form>\n",
        escape(texts.survey_comment),
        escape(comment.unwrap_or_default()),
        escape(texts.survey_send),
    );
    body
}

fn problem(texts: &Texts, message: &str) -> Response {
    page(
        texts,
        StatusCode::OK,
        texts.survey_title,
        &paragraph(message),
    )
}

/// The page of an outcome.
fn render(texts: &Texts, token: &str, outcome: SurveyPage) -> Response {
    match outcome {
        SurveyPage::Ask {
            survey,
            chosen,
            answered,
            comment,
        } => {
            let mut body = String::new();
            if let Some(answered) = answered {
                body.push_str(&paragraph(&texts.survey_answered(answered)));
            }
            body.push_str(&form(texts, token, &survey, chosen, comment.as_deref()));
            page(texts, StatusCode::OK, texts.survey_title, &body)
        }
        SurveyPage::Thanks {
            survey,
            answer,
            replaced,
        } => {
            let mut body = format!(
                "<p class=\"notice\" role=\"status\">{}</p>\n",
                escape(if replaced {
                    texts.survey_changed
                } else {
                    texts.survey_thanks
                })
            );
            body.push_str(&paragraph(texts.survey_more));
            body.push_str(&form(texts, token, &survey, Some(answer), None));
            page(texts, StatusCode::OK, texts.survey_thanks_title, &body)
        }
        SurveyPage::Invalid => problem(texts, texts.invalid_link),
        SurveyPage::Expired => problem(texts, texts.survey_expired),
        SurveyPage::OutOfRange => page(
            texts,
            StatusCode::BAD_REQUEST,
            texts.survey_title,
            &paragraph(texts.bad_request),
        ),
    }
}

/// `GET /survey/{token}`: the question with the link's score chosen; never a change.
async fn question(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    let work_token = token.clone();
    let outcome = blocking(&state, move |store, signer, now| {
        survey_page(store, signer, &work_token, now)
    })
    .await;
    match outcome {
        Some(outcome) => render(texts, &token, outcome),
        None => server_error(texts),
    }
}

/// `POST /survey/{token}` with `score` (and `comment`): records the answer.
async fn answer(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let texts = texts_for(state.language(), &headers);
    let mut score: Option<u8> = None;
    let mut comment: Option<String> = None;
    for (key, value) in form_urlencoded::parse(&body) {
        match &*key {
            "score" => match value.trim().parse::<u8>() {
                Ok(value) => score = Some(value),
                Err(_) => {
                    return page(
                        texts,
                        StatusCode::BAD_REQUEST,
                        texts.bad_request,
                        &paragraph(texts.bad_request),
                    );
                }
            },
            "comment" => comment = Some(value.chars().take(2000).collect()),
            _ => {}
        }
    }
    let work_token = token.clone();
    let outcome = blocking(&state, move |store, signer, now| {
        answer_survey(store, signer, &work_token, score, comment.as_deref(), now)
    })
    .await;
    match outcome {
        Some(outcome) => render(texts, &token, outcome),
        None => server_error(texts),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{Request, header};
    use tiercare_scheduler::http_config::HttpConfig;
    use tiercare_scheduler::mail::TokenSigner;
    use tiercare_store::Store;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-secret";
    const NOW: i64 = 20_000 * 86_400;

    async fn get(uri: &str, language: &str) -> (StatusCode, String) {
        let signer = TokenSigner::new(SECRET, None).unwrap();
        let state = Arc::new(AppState::new(
            Store::open_in_memory().unwrap(),
            signer,
            HttpConfig::default(),
            || NOW,
        ));
        let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let app = crate::routes::router(state).layer(MockConnectInfo(peer));
        let response = app
            .oneshot(
                Request::get(uri)
                    .header(header::ACCEPT_LANGUAGE, language)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn old_forged_and_unknown_links_get_a_clear_page_and_the_stylesheet_is_served() {
        let signer = TokenSigner::new(SECRET, None).unwrap();
        let old = signer.survey_token(1, 9, NOW - 91 * 86_400);
        let (status, page) = get(&format!("/survey/{old}"), "en").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("This survey link has expired"), "{page}");
        let (_, page) = get(&format!("/survey/{old}"), "zh-CN").await;
        assert!(page.contains("此调查链接已过期"), "{page}");
        let forged = format!("1.9.20000.{}", "0".repeat(32));
        let (_, page) = get(&format!("/survey/{forged}"), "en").await;
        assert!(page.contains("not valid"), "{page}");
        // A valid token of an e-mail that asks no survey.
        let unknown = signer.survey_token(5, 9, NOW);
        let (_, page) = get(&format!("/survey/{unknown}"), "en").await;
        assert!(page.contains("not valid"), "{page}");
        let (status, css) = get("/survey/static/page.css", "en").await;
        assert_eq!(status, StatusCode::OK);
        assert!(css.contains(".scores"), "{css}");
    }
}
