//! [`MailTransport`]: how a built message leaves, and how a failure is classified for the
//! outbox ([`SendError`]).

use super::BuiltMessage;

/// Something that delivers built messages: the folder (the default) or an SMTP server.
///
/// A transport sends one message at a time (`&mut self`); to send in parallel, make one
/// transport per worker thread.
pub trait MailTransport: Send {
    /// Hands `message` over for delivery. On `Ok` the message is delivered (the server said
    /// `250`, or the file is in place); the error says what the outbox should do next.
    fn send(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError>;

    /// A short name for logs and `tiercare outbox` (`"folder"`, `"smtp"`).
    fn name(&self) -> &'static str;
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// What the transport can show for it: the server's final reply for SMTP (often with a
    /// queue id), the file's path for the folder.
    pub receipt: String,
    /// True when the transport found the message already delivered and did nothing (the
    /// folder transport, when the file for this Message-ID exists: a resend after a crash).
    pub already_delivered: bool,
}

/// Why a message was not delivered, classified for the outbox:
/// queued → claimed → sent | deferred ([`Transient`](SendError::Transient)) | failed
/// ([`Permanent`](SendError::Permanent)) | unknown ([`Unknown`](SendError::Unknown)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not delivered, worth retrying with backoff: a 4xx reply, a refused or lost connection
    /// or a timeout before the message content was fully handed over, a local write error.
    #[error("deferred{}: {message}", code_suffix(*code))]
    Transient {
        /// The SMTP reply code, if the server gave one.
        code: Option<u16>,
        /// What happened, for the outbox and the logs.
        message: String,
    },
    /// Not delivered and never will be as it stands: a 5xx reply. Do not retry.
    #[error("failed{}: {message}", code_suffix(*code))]
    Permanent {
        /// The SMTP reply code, if the server gave one.
        code: Option<u16>,
        /// What happened, for the outbox and the logs.
        message: String,
        /// The recipient's address itself was refused (550, 551 or 553 on RCPT, or a 5xx
        /// after DATA whose status is not about the message or a policy): a hard bounce,
        /// which puts the address on the suppression list.
        hard_bounce: bool,
    },
    /// The whole message was handed over but no final reply came (timeout or connection lost):
    /// it may or may not have been delivered. Retrying risks a duplicate; not retrying risks
    /// a loss. The outbox decides (the Message-ID stays the same either way).
    #[error("outcome unknown: {message}")]
    Unknown {
        /// What happened, for the outbox and the logs.
        message: String,
    },
}

impl SendError {
    /// The SMTP reply code, if the server gave one.
    pub fn code(&self) -> Option<u16> {
        match self {
            SendError::Transient { code, .. } | SendError::Permanent { code, .. } => *code,
            SendError::Unknown { .. } => None,
        }
    }
}

/// The RFC 3463 enhanced status code (`5.1.1`) in a server's reply text, if it has one.
pub fn enhanced_status(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

fn code_suffix(code: Option<u16>) -> String {
    code.map(|code| format!(" ({code})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::enhanced_status;

    #[test]
    fn enhanced_status_codes_are_found_in_replies() {
        assert_eq!(
            enhanced_status("failed (550): permanent error (550): 5.1.1 <a@b>: user unknown"),
            Some("5.1.1")
        );
        assert_eq!(enhanced_status("554 5.7.1 (spam)"), Some("5.7.1"));
        assert_eq!(enhanced_status("550 no such user 1.2"), None);
        assert_eq!(enhanced_status("version 10.0.1 here"), None);
    }
}
