//! Survey answers: the survey an e-mail asked (`outbox.survey`, migration 18) and each answer
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
    /// (customers' e-mails only; read through the partial index `outbox_surveys`, never the
    /// whole outbox: the `+` keeps SQLite from preferring `outbox_by_state`, which visits every
    /// sent e-mail), and the answers given to them by `at`, each customer in their
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
             WHERE o.survey IS NOT NULL AND +o.state = 'sent' AND o.sent_at <= ?2 \
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with `customers` customers, an assessment (id 1) putting customer `i` in tier
    /// `tiers[i % 3]` (every seventh without a tier), and one survey e-mail of `survey` sent
    /// to each at time 100 (every fifth still queued).
    fn store_with_surveys(customers: i64, survey: &Survey) -> Store {
        let store = Store::open_in_memory().unwrap();
        let conn = &store.conn;
        conn.execute(
            "INSERT INTO assessments (id, at, ruleset_version, started_at, finished_at, \
             customers, changed, rule_errors) VALUES (1, 50, 'v', 50, 50, 0, 0, 0)",
            [],
        )
        .unwrap();
        let json = serde_json::to_string(survey).unwrap();
        for i in 1..=customers {
            conn.execute(
                "INSERT INTO customers (id, external_id, email, consent_email, created_at, \
                 updated_at) VALUES (?1, 'C' || ?1, 'c' || ?1 || '@example.com', 1, 0, 0)",
                [i],
            )
            .unwrap();
            if i % 7 != 0 {
                conn.execute(
                    "INSERT INTO customer_tiers (customer_id, tier, since, assessment_id) \
                     VALUES (?1, ?2, 50, 1)",
                    params![i, ["A", "B", "C"][(i % 3) as usize]],
                )
                .unwrap();
            }
            let sent = i % 5 != 0;
            conn.execute(
                "INSERT INTO outbox (id, customer_id, rule_id, template, recipient_kind, \
                 to_address, message_id, subject, body_text, state, due_at, created_at, \
                 claimed_at, sent_at, updated_at, survey) \
                 VALUES (?1, ?1, 'ask', 'survey', 'customer', 'c@example.com', \
                 '<' || ?1 || '@x>', 's', 't', ?2, 90, 90, ?3, ?3, 90, ?4)",
                params![
                    i,
                    if sent { "sent" } else { "queued" },
                    sent.then_some(100),
                    json
                ],
            )
            .unwrap();
        }
        store
    }

    fn nps() -> Survey {
        Survey {
            id: "quarterly".to_owned(),
            kind: SurveyKind::Nps,
            question: "Recommend us?".to_owned(),
        }
    }

    #[test]
    fn an_answer_is_feedback_once_per_email_and_a_later_one_replaces_it() {
        let mut store = store_with_surveys(3, &nps());
        assert_eq!(
            store.record_survey_answer(1, 9, None, 200).unwrap(),
            SurveyAnswer::Recorded
        );
        assert_eq!(
            store
                .record_survey_answer(1, 3, Some("slow delivery"), 300)
                .unwrap(),
            SurveyAnswer::Replaced
        );
        // A comment-less answer keeps the comment given before.
        assert_eq!(
            store.record_survey_answer(1, 4, Some("  "), 400).unwrap(),
            SurveyAnswer::Replaced
        );
        assert_eq!(
            store.record_survey_answer(1, 11, None, 400).unwrap(),
            SurveyAnswer::OutOfRange
        );
        let rows: Vec<(String, i64, f64, Option<String>, String, i64)> = store
            .conn
            .prepare("SELECT external_id, given_at, score, comment, survey, answer FROM feedback")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [(
                "survey:1".to_owned(),
                400,
                4.0,
                Some("slow delivery".to_owned()),
                "quarterly".to_owned(),
                4
            )]
        );
        // Not a survey e-mail, and a forgotten customer: nothing recorded.
        assert_eq!(
            store.record_survey_answer(99, 5, None, 400).unwrap(),
            SurveyAnswer::NotASurvey
        );
        store
            .conn
            .execute(
                "INSERT INTO privacy_requests (kind, customer_id, at, by_whom, detail) \
                 VALUES ('forget', 2, 1, 'test', '{}')",
                [],
            )
            .unwrap();
        assert_eq!(
            store.record_survey_answer(2, 5, None, 400).unwrap(),
            SurveyAnswer::NotASurvey
        );
        assert!(store.survey_email(2).unwrap().unwrap().forgotten);
    }

    #[test]
    fn csat_answers_are_scaled_onto_the_feedback_scale() {
        let csat = Survey {
            kind: SurveyKind::Csat,
            ..nps()
        };
        let mut store = store_with_surveys(1, &csat);
        assert_eq!(
            store.record_survey_answer(1, 0, None, 200).unwrap(),
            SurveyAnswer::OutOfRange
        );
        for (answer, score) in [(1, 0.0), (2, 2.5), (3, 5.0), (4, 7.5), (5, 10.0)] {
            store.record_survey_answer(1, answer, None, 200).unwrap();
            let stored: f64 = store
                .conn
                .query_row("SELECT score FROM feedback", [], |row| row.get(0))
                .unwrap();
            assert_eq!(stored, score, "CSAT {answer}");
        }
    }

    #[test]
    fn response_rates_and_nps_per_tier_match_an_independent_count() {
        let customers = 200;
        let mut store = store_with_surveys(customers, &nps());
        // Answers from a fixed pseudo-random sequence; some customers never answer, one
        // answers after the report time, some change their answer.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut last: std::collections::BTreeMap<i64, (u8, i64)> = Default::default();
        for i in 1..=customers {
            for _ in 0..next(3) {
                let answer = u8::try_from(next(11)).unwrap();
                let at = if i == 17 { 5_000 } else { 200 + i };
                if store.record_survey_answer(i, answer, None, at).unwrap()
                    != SurveyAnswer::NotASurvey
                {
                    last.insert(i, (answer, at));
                }
            }
        }
        let report_at = 1_000;
        let results = store.survey_results(Some(1), report_at).unwrap();

        // The independent count: every customer's tier, state and final answer, by hand.
        #[derive(Default, Debug, PartialEq)]
        struct Expected {
            sent: u64,
            answered: u64,
            promoters: u64,
            detractors: u64,
        }
        let mut expected: std::collections::BTreeMap<Option<&str>, Expected> = Default::default();
        for i in 1..=customers {
            if i % 5 == 0 {
                continue; // still queued: not sent
            }
            let tier = (i % 7 != 0).then(|| ["A", "B", "C"][(i % 3) as usize]);
            let entry = expected.entry(tier).or_default();
            entry.sent += 1;
            if let Some(&(answer, at)) = last.get(&i)
                && at <= report_at
            {
                entry.answered += 1;
                entry.promoters += u64::from(answer >= 9);
                entry.detractors += u64::from(answer <= 6);
            }
        }
        assert_eq!(results.len(), expected.len());
        for row in &results {
            let want = &expected[&row.tier.as_deref()];
            let got = Expected {
                sent: row.sent,
                answered: row.answered,
                promoters: row.promoters,
                detractors: row.detractors,
            };
            assert_eq!(&got, want, "tier {:?}", row.tier);
            let nps =
                (want.promoters as f64 - want.detractors as f64) * 100.0 / want.answered as f64;
            assert!((row.nps().unwrap() - nps).abs() < 1e-9);
            assert!(
                (row.response_rate().unwrap() - want.answered as f64 / want.sent as f64).abs()
                    < 1e-9
            );
        }
        assert_eq!(results.last().unwrap().tier, None, "no tier last");
    }
}
