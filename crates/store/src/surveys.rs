//! Survey answers: the survey an e-mail asked (`outbox.survey`, migration 15) and each answer
//! recorded as feedback, so the `satisfaction_*` features and the `low_satisfaction` trigger
//! see it like imported feedback; and the report's response rates and scores.
//!
//! An answer is one `feedback` row per e-mail (`external_id` `survey:<outbox id>`, unique
//! `outbox_id`): a later answer to the same e-mail replaces its score and time, and a comment
//! given later is added to it (an empty comment keeps the one given before). `score` holds the
//! answer on the 0–10 feedback scale ([`tiercare_types::SurveyKind::feedback_score`]), `answer`
//! the score as asked.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use tiercare_types::{Survey, SurveyKind};

use crate::counts::count;
use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// A survey e-mail as its answer page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyEmail {
    /// The outbox row.
    pub outbox_id: i64,
    /// What it asks.
    pub survey: Survey,
    /// The answer given so far (the score as asked), if any.
    pub answer: Option<u8>,
    /// The comment given so far, if any.
    pub comment: Option<String>,
    /// Whether the customer was forgotten (`tiercare customer forget`): no answer is recorded.
    pub forgotten: bool,
}

/// What [`Store::record_survey_answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyAnswer {
    /// The first answer to the e-mail was recorded.
    Recorded,
    /// An earlier answer to the e-mail was replaced.
    Replaced,
    /// The e-mail asks no survey, no longer exists, or its customer was forgotten.
    NotASurvey,
    /// The score is not one of the survey's.
    OutOfRange,
}

/// Responses and scores of one survey among the customers of one tier, as of the report time.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SurveyResults {
    /// The survey's id.
    pub survey: String,
    /// `nps` or `csat`.
    pub kind: String,
    /// The customers' tier as of the report's assessment; `None` without one.
    pub tier: Option<String>,
    /// Survey e-mails sent by the report time.
    pub sent: u64,
    /// Of those, answered by the report time.
    pub answered: u64,
    /// NPS answers 9–10.
    pub promoters: u64,
    /// NPS answers 7–8.
    pub passives: u64,
    /// NPS answers 0–6.
    pub detractors: u64,
    /// The sum of the answers as asked (CSAT: 1–5).
    pub answer_sum: u64,
}

impl SurveyResults {
    /// Answered / sent, `None` when none was sent.
    #[must_use]
    pub fn response_rate(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.answered as f64 / self.sent as f64)
    }

    /// NPS: the share of promoters minus the share of detractors among the answers, in
    /// points (-100 to 100); `None` without answers or for CSAT.
    #[must_use]
    pub fn nps(&self) -> Option<f64> {
        (self.kind == "nps" && self.answered > 0).then(|| {
            (self.promoters as f64 - self.detractors as f64) * 100.0 / self.answered as f64
        })
    }

    /// CSAT: the mean answer (1 to 5); `None` without answers or for NPS.
    #[must_use]
    pub fn csat_mean(&self) -> Option<f64> {
        (self.kind == "csat" && self.answered > 0)
            .then(|| self.answer_sum as f64 / self.answered as f64)
    }
}

fn parse_survey(text: &str) -> rusqlite::Result<Survey> {
    serde_json::from_str(text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
    })
}

const SURVEY_EMAIL: &str = "SELECT o.survey, f.answer, f.comment, \
     EXISTS (SELECT 1 FROM privacy_requests p WHERE p.kind = 'forget' \
             AND p.customer_id = o.customer_id) \
     FROM outbox o LEFT JOIN feedback f ON f.outbox_id = o.id \
     WHERE o.id = ?1 AND o.survey IS NOT NULL AND o.customer_id IS NOT NULL";

fn survey_email(
    conn: &rusqlite::Connection,
    outbox_id: i64,
) -> rusqlite::Result<Option<SurveyEmail>> {
    conn.prepare_cached(SURVEY_EMAIL)?
        .query_row([outbox_id], |row| {
            let survey: String = row.get(0)?;
            Ok(SurveyEmail {
                outbox_id,
                survey: parse_survey(&survey)?,
                answer: row
                    .get::<_, Option<i64>>(1)?
                    .and_then(|a| u8::try_from(a).ok()),
                comment: row.get(2)?,
                forgotten: row.get(3)?,
            })
        })
        .optional()
}

impl Store {
    /// The survey the e-mail `outbox_id` asks, if it asks one.
    pub fn outbox_survey(&self, outbox_id: i64) -> Result<Option<Survey>, StoreError> {
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT survey FROM outbox WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([outbox_id], |row| row.get(0)).optional())
            .at(&self.label)?;
        text.flatten()
            .map(|text| parse_survey(&text))
            .transpose()
            .at(&self.label)
    }

    /// The survey e-mail `outbox_id` with its answer so far; `None` when it asks no survey.
    pub fn survey_email(&self, outbox_id: i64) -> Result<Option<SurveyEmail>, StoreError> {
        survey_email(&self.conn, outbox_id).at(&self.label)
    }

    /// Records `answer` (the score as asked) to the survey e-mail `outbox_id` at `now`, with
    /// an optional comment, as the customer's feedback: one `IMMEDIATE` transaction. A later
    /// answer replaces the score and time; an empty comment keeps the earlier one. Nothing is
    /// written for a forgotten customer.
    pub fn record_survey_answer(
        &mut self,
        outbox_id: i64,
        answer: u8,
        comment: Option<&str>,
        now: i64,
    ) -> Result<SurveyAnswer, StoreError> {
        let path = self.label.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(&path)?;
        let Some(email) = survey_email(&tx, outbox_id).at(&path)? else {
            return Ok(SurveyAnswer::NotASurvey);
        };
        if email.forgotten {
            return Ok(SurveyAnswer::NotASurvey);
        }
        let kind: SurveyKind = email.survey.kind;
        if !kind.accepts(answer) {
            return Ok(SurveyAnswer::OutOfRange);
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        let replaced = email.answer.is_some();
        tx.prepare_cached(
            "INSERT INTO feedback (external_id, customer_id, given_at, score, comment, survey, \
             survey_kind, answer, outbox_id) \
             SELECT 'survey:' || o.id, o.customer_id, ?2, ?3, ?4, ?5, ?6, ?7, o.id \
             FROM outbox o WHERE o.id = ?1 \
             ON CONFLICT (external_id) DO UPDATE SET given_at = excluded.given_at, \
             score = excluded.score, answer = excluded.answer, \
             comment = coalesce(excluded.comment, comment)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                outbox_id,
                now,
                kind.feedback_score(answer),
                comment,
                email.survey.id,
                kind.as_str(),
                answer,
            ])
        })
        .at(&path)?;
        tx.commit().at(&path)?;
        Ok(if replaced {
            SurveyAnswer::Replaced
        } else {
            SurveyAnswer::Recorded
        })
    }

    /// Response rates and scores per survey and tier at `at`: survey e-mails sent by `at`
    /// (customers' e-mails only), and the answers given to them by `at`, each customer in their
    /// tier as of `assessment_id` (no tier when `None`). Ordered by survey, then tier (no tier
    /// last).
    pub fn survey_results(
        &self,
        assessment_id: Option<i64>,
        at: i64,
    ) -> Result<Vec<SurveyResults>, StoreError> {
        let tiers = match assessment_id {
            Some(id) => crate::report::tiers_as_of_sql(&self.conn, id).at(&self.label)?,
            None => "SELECT customer_id, tier FROM customer_tiers WHERE 0 AND ?1 IS NULL",
        };
        let sql = format!(
            "WITH tiers AS ({tiers}) \
             SELECT json_extract(o.survey, '$.id'), json_extract(o.survey, '$.kind'), t.tier, \
               count(*), count(f.id), \
               count(CASE WHEN f.answer >= 9 THEN 1 END), \
               count(CASE WHEN f.answer BETWEEN 7 AND 8 THEN 1 END), \
               count(CASE WHEN f.answer <= 6 THEN 1 END), \
               coalesce(sum(f.answer), 0) \
             FROM outbox o \
             LEFT JOIN tiers t ON t.customer_id = o.customer_id \
             LEFT JOIN feedback f ON f.outbox_id = o.id AND f.given_at <= ?2 \
             WHERE o.survey IS NOT NULL AND o.state = 'sent' AND o.sent_at <= ?2 \
               AND o.recipient_kind = 'customer' \
             GROUP BY 1, 2, 3 ORDER BY 1, t.tier IS NULL, t.tier"
        );
        let mut stmt = self.conn.prepare(&sql).at(&self.label)?;
        let rows = stmt
            .query_map(params![assessment_id, at], |row| {
                Ok(SurveyResults {
                    survey: row.get(0)?,
                    kind: row.get(1)?,
                    tier: row.get(2)?,
                    sent: count(row, 3)?,
                    answered: count(row, 4)?,
                    promoters: count(row, 5)?,
                    passives: count(row, 6)?,
                    detractors: count(row, 7)?,
                    answer_sum: count(row, 8)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .at(&self.label)?;
        Ok(rows)
    }
}
