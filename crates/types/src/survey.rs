//! One-question satisfaction surveys: what a follow-up asks (`survey:` in the rules), as the
//! engine validates it, the store keeps it with the e-mail, and the scheduler signs its links.

use serde::{Deserialize, Serialize};

/// The kind of question a survey asks, which fixes its scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurveyKind {
    /// Net Promoter Score: "how likely are you to recommend us", 0 to 10.
    Nps,
    /// Customer satisfaction: "how satisfied are you", 1 to 5.
    Csat,
}

impl SurveyKind {
    /// Its name in rules and in the database: `nps` or `csat`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Nps => "nps",
            SurveyKind::Csat => "csat",
        }
    }

    /// The kind named `name` (`nps`, `csat`), if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<SurveyKind> {
        match name.trim() {
            "nps" => Some(SurveyKind::Nps),
            "csat" => Some(SurveyKind::Csat),
            _ => None,
        }
    }

    /// The lowest and highest answer: NPS 0..=10, CSAT 1..=5.
    #[must_use]
    pub fn range(self) -> (u8, u8) {
        match self {
            SurveyKind::Nps => (0, 10),
            SurveyKind::Csat => (1, 5),
        }
    }

    /// Whether `answer` is one of its scores.
    #[must_use]
    pub fn accepts(self, answer: u8) -> bool {
        let (low, high) = self.range();
        (low..=high).contains(&answer)
    }

    /// The answer on the feedback scale (0 to 10, the scale of imported feedback, which the
    /// `satisfaction_*` features average): NPS as it is; CSAT mapped linearly so that its ends
    /// meet the scale's ends, `(answer - 1) * 2.5` (1 → 0, 2 → 2.5, 3 → 5, 4 → 7.5, 5 → 10).
    #[must_use]
    pub fn feedback_score(self, answer: u8) -> f64 {
        match self {
            SurveyKind::Nps => f64::from(answer),
            SurveyKind::Csat => (f64::from(answer) - 1.0) * 2.5,
        }
    }
}

/// What a survey follow-up asks: its id (what answers are grouped by in the report), its kind
/// and its question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Survey {
    /// The survey's id (letters, digits, `_`, `-`), e.g. `quarterly`.
    pub id: String,
    /// NPS or CSAT.
    pub kind: SurveyKind,
    /// The question, as the e-mail asks it.
    pub question: String,
}
