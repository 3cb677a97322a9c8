//! Survey links: one signed link per score in a `survey:` e-mail, and what the web server does
//! with them.
//!
//! - A template renders `survey.links`, whose URLs are `<public_url>/survey/<marker>`: the
//!   e-mail's outbox id is not known when it is first rendered (before it is queued), so the
//!   marker ([`link_marker`]) stands for the token, and the send loop puts the signed token in
//!   its place when it builds the message ([`sign_links`], in [`crate::outbox::outgoing`]). The
//!   outbox keeps the markers, never a token.
//! - An SMS cannot carry a link per score: its template renders one link, `survey.link`, whose
//!   marker ([`SINGLE_LINK_MARKER`]) becomes a token that carries no score,
//!   `<outbox id>.<day issued>.<mac>`; its page preselects nothing and the POST records the
//!   score chosen there, under the same rules.
//! - A token is `<outbox id>.<score>.<day issued>.<mac>`: the first 128 bits of an HMAC-SHA256
//!   over the rest under a key derived from the workspace secret (not the unsubscribe tokens'
//!   key), in lowercase hex. It names no person: the e-mail is found by its outbox id, which is
//!   not guessable with its MAC. Links are honoured for [`SURVEY_LINK_DAYS`] days after they
//!   were sent, under the current secret or, after a rotation, the previous one.
//! - [`survey_page`] is what a GET shows (it changes nothing: mail scanners follow links);
//!   [`answer_survey`] records an answer (a POST) through
//!   [`tiercare_store::Store::record_survey_answer`].

use tiercare_store::{Store, StoreError, Survey, SurveyAnswer};

use super::unsubscribe::{TokenSigner, day, hex_mac, same};

/// How many days after it was sent a survey link is honoured.
pub const SURVEY_LINK_DAYS: i64 = 90;

/// Hex digits of the MAC kept in a token (128 bits).
const MAC_HEX: usize = 32;

/// The text standing for the token of `score`'s link until the message is built.
#[must_use]
pub fn link_marker(score: u8) -> String {
    format!("tc-survey-{score:02}-link")
}

/// The text standing for the token of the single link (no score) of an SMS survey until the
/// message is built.
pub const SINGLE_LINK_MARKER: &str = "tc-survey-link";

/// `text` with every survey link marker replaced by the signed token of its score (the single
/// link's marker: a token without a score) for the message `outbox`, issued at `now`. Without a signer the text is returned as it is.
#[must_use]
pub fn sign_links(text: &str, signer: Option<&TokenSigner>, outbox: i64, now: i64) -> String {
    let Some(signer) = signer else {
        return text.to_owned();
    };
    if !text.contains("tc-survey-") {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    for score in 0..=10 {
        let marker = link_marker(score);
        if out.contains(&marker) {
            out = out.replace(&marker, &signer.survey_token(outbox, score, now));
        }
    }
    if out.contains(SINGLE_LINK_MARKER) {
        out = out.replace(SINGLE_LINK_MARKER, &signer.survey_token_any(outbox, now));
    }
    out
}

/// What a valid survey token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SurveyToken {
    /// The e-mail the link came in.
    pub outbox: i64,
    /// The score the link answers; `None`: the single link of an SMS, which lets the page
    /// choose.
    pub score: Option<u8>,
}

/// Why a survey token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// Forged, damaged or of another workspace.
    Invalid,
    /// Valid, but older than [`SURVEY_LINK_DAYS`].
    Expired,
}

impl TokenSigner {
    /// The token of the link answering `score` to the survey e-mail `outbox`, issued at `now`.
    #[must_use]
    pub fn survey_token(&self, outbox: i64, score: u8, now: i64) -> String {
        let body = format!("{outbox}.{score}.{}", day(now));
        let mac = hex_mac(&self.current.survey, &body);
        format!("{body}.{mac}")
    }

    /// The token of the single link of the SMS survey `outbox`, issued at `now`: it carries no
    /// score (`<outbox>.<day>.<mac>`; its MAC covers two fields, a scored token's three, so
    /// neither can pass for the other).
    #[must_use]
    pub fn survey_token_any(&self, outbox: i64, now: i64) -> String {
        let body = format!("{outbox}.{}", day(now));
        let mac = hex_mac(&self.current.survey, &body);
        format!("{body}.{mac}")
    }

    /// What a survey token says, or why it is refused (MACs compared in constant time).
    pub fn verify_survey(&self, token: &str, now: i64) -> Result<SurveyToken, LinkProblem> {
        let token = token.trim();
        let parts: Vec<&str> = token.split('.').collect();
        let (outbox, score, issued, mac) = match parts[..] {
            [outbox, score, issued, mac] => (outbox, Some(score), issued, mac),
            [outbox, issued, mac] => (outbox, None, issued, mac),
            _ => return Err(LinkProblem::Invalid),
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if mac.len() != MAC_HEX || !digits(outbox) || !score.is_none_or(digits) || !digits(issued) {
            return Err(LinkProblem::Invalid);
        }
        let score = match score.map(str::parse::<u8>) {
            None => None,
            Some(Ok(score)) => Some(score),
            Some(Err(_)) => return Err(LinkProblem::Invalid),
        };
        let (Ok(outbox), Ok(issued)) = (outbox.parse::<i64>(), issued.parse::<i64>()) else {
            return Err(LinkProblem::Invalid);
        };
        let body = &token[..token.len() - MAC_HEX - 1];
        let valid = std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|keys| same(hex_mac(&keys.survey, body).as_bytes(), mac.as_bytes()));
        if !valid {
            return Err(LinkProblem::Invalid);
        }
        if day(now) - issued > SURVEY_LINK_DAYS {
            return Err(LinkProblem::Expired);
        }
        Ok(SurveyToken { outbox, score })
    }
}

/// What a survey link's page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveyPage {
    /// The question, with `chosen` preselected (the link's score; for the single link of an
    /// SMS the answer so far, or nothing).
    Ask {
        /// What is asked.
        survey: Survey,
        /// The score to preselect, if any.
        chosen: Option<u8>,
        /// The answer recorded so far, if any.
        answered: Option<u8>,
        /// The comment recorded so far, if any.
        comment: Option<String>,
    },
    /// The answer was recorded (`replaced`: an earlier one was changed).
    Thanks {
        /// What was asked.
        survey: Survey,
        /// The answer recorded.
        answer: u8,
        /// Whether it replaced an earlier answer.
        replaced: bool,
    },
    /// The link is not valid (forged, damaged, of another workspace, or its e-mail asks no
    /// survey any more).
    Invalid,
    /// The link is older than [`SURVEY_LINK_DAYS`].
    Expired,
    /// The score is not one of the survey's.
    OutOfRange,
}

fn refused(problem: LinkProblem) -> SurveyPage {
    match problem {
        LinkProblem::Invalid => SurveyPage::Invalid,
        LinkProblem::Expired => SurveyPage::Expired,
    }
}

/// The page of the survey link `token` at `now`: a GET, which changes nothing.
pub fn survey_page(
    store: &Store,
    signer: &TokenSigner,
    token: &str,
    now: i64,
) -> Result<SurveyPage, StoreError> {
    let verified = match signer.verify_survey(token, now) {
        Ok(verified) => verified,
        Err(problem) => return Ok(refused(problem)),
    };
    let Some(email) = store.survey_email(verified.outbox)? else {
        return Ok(SurveyPage::Invalid);
    };
    if email.forgotten {
        return Ok(SurveyPage::Invalid);
    }
    if verified
        .score
        .is_some_and(|score| !email.survey.kind.accepts(score))
    {
        return Ok(SurveyPage::OutOfRange);
    }
    Ok(SurveyPage::Ask {
        survey: email.survey,
        chosen: verified.score.or(email.answer),
        answered: email.answer,
        comment: email.comment,
    })
}

/// Records the answer to the survey link `token` at `now`: `answer` (the score chosen on the
/// page; the link's own score when `None`) and an optional comment, as the customer's feedback
/// (a later answer replaces the earlier one; a comment can be added later). A link without a
/// score (an SMS's) and no score chosen records nothing: the question is shown again.
pub fn answer_survey(
    store: &mut Store,
    signer: &TokenSigner,
    token: &str,
    answer: Option<u8>,
    comment: Option<&str>,
    now: i64,
) -> Result<SurveyPage, StoreError> {
    let verified = match signer.verify_survey(token, now) {
        Ok(verified) => verified,
        Err(problem) => return Ok(refused(problem)),
    };
    let Some(answer) = answer.or(verified.score) else {
        return survey_page(store, signer, token, now);
    };
    let Some(survey) = store.outbox_survey(verified.outbox)? else {
        return Ok(SurveyPage::Invalid);
    };
    let outcome = store.record_survey_answer(verified.outbox, answer, comment, now)?;
    tracing::info!(outbox = verified.outbox, survey = %survey.id, ?outcome, "survey answer");
    Ok(match outcome {
        SurveyAnswer::Recorded | SurveyAnswer::Replaced => SurveyPage::Thanks {
            survey,
            answer,
            replaced: outcome == SurveyAnswer::Replaced,
        },
        SurveyAnswer::NotASurvey => SurveyPage::Invalid,
        SurveyAnswer::OutOfRange => SurveyPage::OutOfRange,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn survey_tokens_verify_expire_and_refuse_forgeries() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let now = 20_000 * DAY;
        let token = signer.survey_token(42, 9, now);
        assert_eq!(
            signer.verify_survey(&token, now),
            Ok(SurveyToken {
                outbox: 42,
                score: Some(9)
            })
        );
        assert!(!token.contains('@'));
        for forged in [
            token.replacen("42.9.", "42.10.", 1),
            token.replacen("42.", "43.", 1),
            signer.token("ada@example.com", 42, now),
            String::new(),
            "1.2.3.4".to_owned(),
        ] {
            assert_eq!(
                signer.verify_survey(&forged, now),
                Err(LinkProblem::Invalid),
                "{forged}"
            );
        }
        let other = TokenSigner::new(b"another secret of 16+ bytes", None).unwrap();
        assert_eq!(other.verify_survey(&token, now), Err(LinkProblem::Invalid));
        assert!(
            signer
                .verify_survey(&token, now + SURVEY_LINK_DAYS * DAY)
                .is_ok()
        );
        assert_eq!(
            signer.verify_survey(&token, now + (SURVEY_LINK_DAYS + 1) * DAY),
            Err(LinkProblem::Expired)
        );
        let rotated = TokenSigner::new(
            b"a new secret of 16+ bytes",
            Some(b"0123456789abcdef-secret".as_slice()),
        )
        .unwrap();
        assert!(
            rotated.verify_survey(&token, now).is_ok(),
            "previous secret"
        );
    }

    #[test]
    fn markers_become_tokens_of_their_score() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let text = format!(
            "a https://x/survey/{} b https://x/survey/{}",
            link_marker(1),
            link_marker(10)
        );
        let signed = sign_links(&text, Some(&signer), 7, 0);
        let tokens: Vec<&str> = signed
            .split("https://x/survey/")
            .skip(1)
            .map(|rest| rest.split(' ').next().unwrap())
            .collect();
        let scores: Vec<u8> = tokens
            .iter()
            .map(|token| signer.verify_survey(token, 0).unwrap().score.unwrap())
            .collect();
        assert_eq!(scores, [1, 10]);
        assert_eq!(sign_links(&text, None, 7, 0), text);
    }

    #[test]
    fn the_single_link_of_an_sms_carries_no_score_and_cannot_pass_for_a_scored_one() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let now = 20_000 * DAY;
        let text = format!("Rate us: https://x/s/{SINGLE_LINK_MARKER}");
        let signed = sign_links(&text, Some(&signer), 42, now);
        let token = signed.rsplit('/').next().unwrap();
        assert!(!token.contains("tc-survey"), "{signed}");
        assert_eq!(
            signer.verify_survey(token, now),
            Ok(SurveyToken {
                outbox: 42,
                score: None
            })
        );
        // Short enough for an SMS: outbox id, day and 32 hex digits.
        assert!(token.len() <= 2 + 1 + 5 + 1 + MAC_HEX, "{token}");
        let (outbox, rest) = token.split_once('.').unwrap();
        let mac = rest.rsplit('.').next().unwrap();
        for forged in [
            // Its MAC under a score inserted, or another outbox id.
            format!("{outbox}.9.{rest}"),
            format!("43.{rest}"),
            // A scored token's MAC without its score.
            {
                let scored = signer.survey_token(42, 9, now);
                scored.replacen("42.9.", "42.", 1)
            },
            format!("{outbox}..{mac}"),
        ] {
            assert_eq!(
                signer.verify_survey(&forged, now),
                Err(LinkProblem::Invalid),
                "{forged}"
            );
        }
        assert_eq!(
            signer.verify_survey(token, now + (SURVEY_LINK_DAYS + 1) * DAY),
            Err(LinkProblem::Expired)
        );
    }
}
