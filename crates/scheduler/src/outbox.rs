//! The outbox's scheduler side: rendering care emails when they are decided ([`RenderEmail`]).
//!
//! An email is rendered once, when its follow-up is recorded ([`crate::plan::record_due`]), and
//! stored rendered in the outbox in the same transaction as the decision: what is sent is what
//! was decided, however the templates or the customer change afterwards, and a retry sends the
//! same text.

use std::fmt;

/// An email's rendered parts, as a [`RenderEmail`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// The subject, one line (control characters become spaces when the message is built).
    pub subject: String,
    /// The plain-text body (customer data literal).
    pub text: String,
    /// The HTML body, customer data already HTML-escaped; `None` for a text-only email.
    pub html: Option<String>,
}

/// Why an email could not be rendered: the follow-up is recorded as skipped with this reason,
/// and nothing is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct RenderError {
    /// The template's name.
    pub template: String,
    /// What went wrong and, where possible, what to do (a missing template file, an undefined
    /// variable, ...).
    pub message: String,
}

/// Renders a care email from a template for one customer: implemented by the template layer
/// (minijinja, `templates/`), and by small deterministic renderers in tests.
///
/// Called inside the follow-up ledger's write transaction, once per new email follow-up, so it
/// must not write to the database; it may read it through its own connection.
pub trait RenderEmail {
    /// Renders `template` for the customer with external id `customer_external_id`, as of
    /// `at` (unix seconds UTC: the time the email is decided, for "days since" and the like).
    fn render(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<RenderedEmail, RenderError>;
}

impl fmt::Debug for dyn RenderEmail + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn RenderEmail")
    }
}
