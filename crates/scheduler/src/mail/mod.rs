//! Mail: care emails from template to transport.
//!
//! - [`templates`]: reads `templates/`, builds one customer's template context and renders
//!   ([`templates::EmailRenderer`], the outbox's renderer).
//! - [`outbox`]: queued emails claimed, composed and sent (`deliver_due`, the send loop of the
//!   CLI and the daemon), with their outcomes recorded.
//! - [`delivery_gate`]: each claimed email checked again right before the hand-over (contact
//!   policy at delivery, the follow-up on current data, rendered again).
//!
//! Below them, building messages safely and handing them to a transport:
//!
//! - [`message`]: [`OutgoingEmail`] (plain data) → [`build`] → [`BuiltMessage`] (envelope and
//!   exact bytes). The one place customer data becomes headers, so the one place header
//!   injection is prevented.
//! - [`transport`]: the [`MailTransport`] trait and [`SendError`], which sorts every failure
//!   into the outbox's classes: deferred (retry), failed (do not; maybe suppress the address),
//!   or unknown (handed over, no answer).
//! - [`folder`]: [`FolderTransport`], the default: one `.eml` file per Message-ID, atomic and
//!   idempotent.
//! - [`smtp`]: [`SmtpMailer`], an SMTP client on lettre's blocking connection that can tell a
//!   failure before the message was handed over from one after.
//! - [`rate`]: [`RateLimiter`], which says how long to wait before the next send.
//! - [`unsubscribe`]: [`TokenSigner`], the signed tokens of unsubscribe links.
//! - [`pacing`]: limits and pauses per receiving domain ([`pacing::Pacing`]).
//! - [`reputation`]: the bounce and complaint guard that pauses sending, and the warm-up caps.
//! - [`dkim`]: [`DkimSigner`], DKIM signatures over the final bytes, and the DNS records.
//! - [`verp`]: [`Verp`], the signed VERP envelope senders that make bounces name their email.
//!
//! The message and transport modules never decide *whether* to send (the outbox, consent and
//! suppression checks do) and never escapes HTML (the template layer does); it never logs addresses or
//! passwords, and never reads the SMTP password from anywhere but the environment.

pub mod delivery_gate;
pub mod dkim;
pub mod folder;
pub mod message;
pub mod outbox;
pub mod pacing;
pub mod preferences;
pub mod rate;
pub mod reputation;
pub mod smtp;
pub mod survey;
pub mod templates;
pub mod transport;
pub mod unsubscribe;
pub mod verp;

use std::path::PathBuf;

pub use dkim::{DkimConfig, DkimError, DkimSigner};
pub use folder::FolderTransport;
pub use message::{
    Address, BuiltMessage, ListHeaders, ListUnsubscribe, OutgoingEmail, build, build_with,
};
pub use rate::{RateLimit, RateLimiter};
pub use smtp::{SmtpMailer, SmtpTransportConfig};
pub use transport::{Delivered, MailTransport, SendError};
pub use unsubscribe::TokenSigner;
pub use verp::{Verp, VerpAddress};

/// Why a message could not be built or a transport could not be set up. (Failures to
/// deliver a built message are [`SendError`]s.)
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An email address is missing or not valid.
    #[error("invalid email address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header value we were given cannot be used (Message-ID, List-Unsubscribe).
    #[error("invalid {header} header: {reason}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// lettre refused to build the message.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// An SMTP username is set but the environment variable meant to hold the password is not.
    #[error(
        "the SMTP password is missing: set the environment variable {variable} \
         (tiercare.toml names it in [mail.smtp] password_env)"
    )]
    MissingPassword {
        /// The variable's name.
        variable: String,
    },
    /// A mail setting is unusable.
    #[error("mail settings: {0}")]
    InvalidConfig(String),
    /// The DKIM key or settings are unusable (found when the sender starts, never at a send).
    #[error(transparent)]
    Dkim(#[from] DkimError),
    /// The mail folder cannot be created.
    #[error("cannot use the mail folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
