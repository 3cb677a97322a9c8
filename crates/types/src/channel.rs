//! How a message reaches a customer.

use serde::Serialize;

/// The channel of a message to a customer: a follow-up's action names it, the outbox stores it
/// (`outbox.channel`), and the contact policy's caps, minimum gap and send window hold per
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// An email.
    Email,
    /// An SMS (text message).
    Sms,
}

impl Channel {
    /// The stored name (`email`, `sms`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// The channel with this stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
