//! `tiercare report`: the figures managers look at (tiers, the Pareto curve, the RFM grid, tier
//! moves, follow-up work, e-mail outcomes, the care programme), gathered from the store by
//! [`figures`], and rendered as one self-contained HTML page by [`html::render`].
//!
//! Everything is read from what is stored: tiers from the assessments, work from the follow-up
//! ledger and the tasks, e-mail outcomes from the outbox. Nothing is re-decided: the only
//! computation is the features at the assessment's time (revenue, recency and frequency
//! scores), which are the same the assessment read.

mod figures;
mod headline;
pub mod html;

pub use figures::{
    Assessment, Boundary, Figures, ManagerLoad, MoveMatrix, PARETO_POINTS, Pareto, ReportError,
    ReportOptions, RfmCell, RfmGrid, TREND_ASSESSMENTS, TierFigure, TierInfo, TrendPoint, figures,
};
pub use headline::{Headline, headline};
