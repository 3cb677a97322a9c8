//! Delivery status notifications (RFC 3464, and RFC 6533's `global` form): the fields of a
//! `multipart/report; report-type=delivery-status` message that say what failed, and the
//! Message-ID of the email that bounced.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// What a DSN says about the one recipient tiercare sent to (the first that failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// `Action:` of the recipient (`failed`, `delayed`, `delivered`, `relayed`, `expanded`).
    pub action: String,
    /// `Status:`, the RFC 3463 code (`5.1.1`); class 5 is a hard bounce, class 4 a soft one.
    pub status: Option<String>,
    /// `Diagnostic-Code:` (the remote server's words; may quote the address).
    pub diagnostic: Option<String>,
    /// The Message-ID of the email that bounced: `Original-Message-ID:` among the DSN's
    /// fields, else the `Message-ID:` of the returned message or headers.
    pub original_message_id: Option<String>,
}

impl Dsn {
    /// True for a permanent failure (action `failed`, status class 5, or no status at all).
    pub fn is_hard(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|status| status.starts_with('5'))
    }

    /// True when the DSN reports a failure (not a delay or a success).
    pub fn is_failure(&self) -> bool {
        self.action.eq_ignore_ascii_case("failed")
    }
}

/// Whether `message` is a delivery status report.
pub fn is_report(message: &Message<'_>) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    })
}

/// The DSN of a `multipart/report; report-type=delivery-status` message; `None` when it is
/// not one or carries no per-recipient fields.
pub fn parse(message: &Message<'_>) -> Option<Dsn> {
    if !is_report(message) {
        return None;
    }
    let mut fields = None;
    let mut returned_id = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let (ctype, subtype) = (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        );
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") if fields.is_none() => {
                fields = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") if returned_id.is_none() => {
                returned_id = match &part.body {
                    PartType::Message(returned) => returned.message_id().map(str::to_owned),
                    _ => header_in(&String::from_utf8_lossy(part.contents()), "message-id"),
                };
            }
            ("text", "rfc822-headers") | ("message", "global-headers") if returned_id.is_none() => {
                returned_id = header_in(&String::from_utf8_lossy(part.contents()), "message-id");
            }
            _ => {}
        }
    }
    let fields = fields?;
    let groups = groups(&fields);
    let per_message = groups.first()?;
    let recipients = &groups[1..];
    let recipient = recipients
        .iter()
        .find(|g| field(g, "action").is_some_and(|a| a.eq_ignore_ascii_case("failed")))
        .or_else(|| recipients.first())?;
    let original_message_id = field(per_message, "original-message-id")
        .or_else(|| field(recipient, "original-message-id"))
        .map(str::to_owned)
        .or(returned_id);
    Some(Dsn {
        action: field(recipient, "action")
            .unwrap_or_default()
            .to_ascii_lowercase(),
        status: field(recipient, "status").map(|s| {
            // `5.1.1 (user unknown)`: the code only.
            s.split_whitespace().next().unwrap_or_default().to_owned()
        }),
        diagnostic: field(recipient, "diagnostic-code").map(str::to_owned),
        original_message_id: original_message_id.map(|id| {
            let id = id.trim();
            if id.starts_with('<') {
                id.to_owned()
            } else {
                format!("<{id}>")
            }
        }),
    })
}

/// The groups of header fields of a `message/delivery-status` body (separated by blank
/// lines), each as `(lowercase name, unfolded value)`.
fn groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The value of header `name` in a block of headers.
fn header_in(text: &str, name: &str) -> Option<String> {
    let headers = MessageParser::default().parse_headers(text.as_bytes())?;
    headers
        .header_raw(name)
        .map(|value| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example\r\n\
To: bounces+7.abc@shop.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example\r\n\
\r\n\
Final-Recipient: rfc822; ada@example.com\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <ada@example.com>:\r\n \
Recipient address rejected: User unknown\r\n\
\r\n\
--B\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Message-ID: <tc.1.abc@shop.example>\r\n\
Subject: Hello\r\n\
\r\n\
--B--\r\n";

    #[test]
    fn a_postfix_style_dsn_is_read() {
        let message = MessageParser::default().parse(DSN.as_bytes()).unwrap();
        let dsn = parse(&message).expect("a DSN");
        assert!(dsn.is_failure() && dsn.is_hard(), "{dsn:?}");
        assert_eq!(dsn.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            dsn.original_message_id.as_deref(),
            Some("<tc.1.abc@shop.example>")
        );
        assert!(dsn.diagnostic.unwrap().ends_with("User unknown"));
        let soft = DSN.replace("Status: 5.1.1", "Status: 4.2.2 (mailbox full)");
        let message = MessageParser::default().parse(soft.as_bytes()).unwrap();
        let dsn = parse(&message).unwrap();
        assert_eq!(dsn.status.as_deref(), Some("4.2.2"));
        assert!(!dsn.is_hard());
        let plain = MessageParser::default()
            .parse(b"Subject: hi\r\n\r\nhello\r\n".as_slice())
            .unwrap();
        assert_eq!(parse(&plain), None);
    }
}
