//! Outgoing emails as data ([`OutgoingEmail`]) and their one way onto the wire ([`build`]).
//!
//! Everything a customer controls (names, subjects, addresses) passes through here before any
//! transport sees it, so this is where header injection is made impossible:
//!
//! - **addresses** containing control characters or whitespace are refused outright
//!   ([`MailError::InvalidAddress`]): an address is an identifier, and a "fixed" address would
//!   be a different, possibly someone else's, mailbox;
//! - **display names and the subject** have every control character (CR, LF, tab, NUL, DEL,
//!   C1) and the Unicode line and paragraph separators replaced by a space. They are prose: a
//!   stray line break in an imported name should not stop a birthday greeting, but it must
//!   never start a new header. lettre then encodes anything non-ASCII per RFC 2047, so the
//!   wire carries exactly one header line (folded if long) for each field.
//!
//! Bodies are not escaped: the text part is plain text and arrives literally (`<script>`
//! included); escaping customer data inside HTML is the template layer's job, which knows
//! which parts are markup. Line endings in bodies are normalised to CRLF (bare CR here, bare
//! LF by lettre), so no bare CR or LF reaches the wire.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::{DkimError, DkimSigner, MailError};

/// A mailbox: an email address and an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The display name (`"Ada Lovelace"`). Control characters become spaces when built.
    pub name: Option<String>,
    /// The address (`ada@example.com`). Must be a valid address without control characters.
    pub email: String,
}

impl Address {
    /// An address without a display name.
    pub fn new(email: impl Into<String>) -> Address {
        Address {
            name: None,
            email: email.into(),
        }
    }

    /// An address with a display name.
    pub fn named(name: impl Into<String>, email: impl Into<String>) -> Address {
        Address {
            name: Some(name.into()),
            email: email.into(),
        }
    }
}

/// The links of a `List-Unsubscribe` header (RFC 2369), with one-click unsubscription
/// (RFC 8058) when an HTTPS link is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe {
    /// The full mailto URI, e.g. `mailto:unsubscribe+c42@care.example.com?subject=unsubscribe`.
    pub mailto: String,
    /// The full HTTPS URI that unsubscribes on a POST, e.g.
    /// `https://care.example.com/unsubscribe?token=…`. When present, the message also carries
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    pub https: Option<String>,
}

/// An email ready to be built: every field as data, no IO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The `Message-ID`, chosen by the caller once (e.g. `<outbox-123.4f2a@tiercare.invalid>`)
    /// and kept, so a retry sends the same id and the folder transport can recognise a resend.
    pub message_id: String,
    /// The sender (also the envelope's reverse path).
    pub from: Address,
    /// The one recipient (also the envelope's only forward path).
    pub to: Address,
    /// Where replies go, if not to `from`.
    pub reply_to: Option<Address>,
    /// The subject. Control characters become spaces.
    pub subject: String,
    /// The plain-text body (always present: it is what text-only readers show).
    pub text: String,
    /// The HTML body, already escaped by the template layer. With it the message is
    /// `multipart/alternative` (text first, then HTML).
    pub html: Option<String>,
    /// Unsubscribe links, for care mail to customers.
    pub list_unsubscribe: Option<ListUnsubscribe>,
    /// The `Date` header (whole seconds are kept).
    pub date: DateTime<Utc>,
}

/// Headers that say what kind of mail a message is, for receivers' filters: set by the outbox
/// per recipient kind ([`build_with`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListHeaders {
    /// `List-Id: <ID>` (RFC 2919), e.g. `care.shop.example`: the same for every care email of
    /// a workspace, so receivers and filters recognise the list.
    pub list_id: Option<String>,
    /// `Precedence: bulk`: mail sent to many (care emails), which auto-responders should not
    /// answer.
    pub precedence_bulk: bool,
    /// `Auto-Submitted: auto-generated` (RFC 3834): a notification a program made (the
    /// managers' notifications), which other robots must not answer.
    pub auto_submitted: bool,
}

/// A message built by [`build`]: its envelope and its exact bytes, which every transport sends
/// unchanged (so a retry sends the same bytes).
#[derive(Debug, Clone)]
pub struct BuiltMessage {
    message_id: String,
    message: lettre::Message,
    envelope: Envelope,
    raw: Vec<u8>,
}

impl BuiltMessage {
    /// The `Message-ID`, angle brackets included.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The SMTP envelope: the sender's address and the one recipient.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The message as lettre holds it.
    pub fn message(&self) -> &lettre::Message {
        &self.message
    }

    /// The message as it goes on the wire (headers and body, CRLF line endings).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Signs the final bytes with DKIM at `timestamp` (unix seconds): the `DKIM-Signature`
    /// header goes on top of the bytes every transport sends.
    pub fn sign(&mut self, signer: &DkimSigner, timestamp: i64) -> Result<(), DkimError> {
        self.raw = signer.sign(&self.raw, timestamp)?;
        Ok(())
    }
}

/// The longest URI accepted in `List-Unsubscribe`: the header must stay under SMTP's
/// 998-byte line limit, as it cannot be folded inside a URI.
const MAX_UNSUBSCRIBE_URI: usize = 900;

/// The longest `Message-ID` accepted (RFC 5322 lines are at most 998 bytes).
const MAX_MESSAGE_ID: usize = 250;

/// Builds the message: validates addresses and headers, strips control characters from names
/// and the subject (see the [module docs](self)), and formats the bytes once.
pub fn build(email: &OutgoingEmail) -> Result<BuiltMessage, MailError> {
    build_with(email, &ListHeaders::default())
}

/// [`build`], with the headers that say what kind of mail it is.
pub fn build_with(email: &OutgoingEmail, kind: &ListHeaders) -> Result<BuiltMessage, MailError> {
    validate_message_id(&email.message_id)?;
    let from = mailbox(&email.from)?;
    let to = mailbox(&email.to)?;
    let envelope = Envelope::new(Some(from.email.clone()), vec![to.email.clone()])
        .map_err(|error| MailError::Build(error.to_string()))?;

    let mut builder = lettre::Message::builder()
        .message_id(Some(email.message_id.clone()))
        .date(SystemTime::from(email.date))
        .from(from)
        .envelope(envelope.clone());
    // lettre writes an ASCII word as it is (in a display name, quoted), and readers decode
    // customer text that looks like an RFC 2047 encoded word even there: encode such a name.
    builder = match to.name.clone().filter(|name| name.contains("=?")) {
        Some(name) => builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("To"),
            to.to_string(),
            format!("{} <{}>", encoded_words(&name), to.email),
        )),
        None => builder.to(to),
    };
    let subject = clean_text(&email.subject);
    builder = if subject.contains("=?") {
        // The same for the subject: encode it whole.
        builder.raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("Subject"),
            subject.clone(),
            encoded_words(&subject),
        ))
    } else {
        builder.subject(subject)
    };
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    if let Some(links) = &email.list_unsubscribe {
        let mut value = format!("<{}>", unsubscribe_uri(&links.mailto, "mailto:")?);
        if let Some(https) = &links.https {
            value.push_str(&format!(", <{}>", unsubscribe_uri(https, "https://")?));
            // RFC 8058: one-click only with an HTTPS URI, which receives the POST.
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
        }
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            value,
        ));
    }
    if let Some(id) = &kind.list_id {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Id"),
            format!("<{}>", list_id(id)?),
        ));
    }
    if kind.precedence_bulk {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Precedence"),
            "bulk".to_owned(),
        ));
    }
    // `Auto-Submitted: auto-generated` (RFC 3834) only where the caller asks: the managers'
    // notifications. Care mail is an ordinary message meant for a person, whose reply is
    // welcome; it is identified by `List-Id` and `List-Unsubscribe` instead.
    if kind.auto_submitted {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
    }
    let text = normalise_line_endings(&email.text);
    let message = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text,
            normalise_line_endings(html),
        )),
        None => builder.singlepart(SinglePart::plain(text)),
    }
    .map_err(|error| MailError::Build(error.to_string()))?;
    let raw = message.formatted();
    Ok(BuiltMessage {
        message_id: email.message_id.clone(),
        message,
        envelope,
        raw,
    })
}

/// Parses an email address, refusing control characters and whitespace outright.
pub fn parse_address(email: &str) -> Result<lettre::Address, MailError> {
    let invalid = |reason: &str| MailError::InvalidAddress {
        address: email.to_owned(),
        reason: reason.to_owned(),
    };
    if email.is_empty() {
        return Err(invalid("the address is empty"));
    }
    if email.chars().any(char::is_control) {
        return Err(invalid("the address contains a control character"));
    }
    if email.chars().any(char::is_whitespace) {
        return Err(invalid("the address contains whitespace"));
    }
    email
        .parse::<lettre::Address>()
        .map_err(|error| invalid(&error.to_string()))
}

fn mailbox(address: &Address) -> Result<Mailbox, MailError> {
    let email = parse_address(&address.email)?;
    let name = address
        .name
        .as_deref()
        .map(clean_text)
        .filter(|name| !name.is_empty());
    Ok(Mailbox::new(name, email))
}

/// `text` as RFC 2047 `B` encoded words (UTF-8), each under the 75-character limit, folded
/// onto continuation lines, never splitting a character.
fn encoded_words(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(format!("=?utf-8?b?{}?=", base64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?b?{}?=", base64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Replaces control characters and Unicode line/paragraph separators with spaces and trims:
/// the result can never span two header lines.
pub fn clean_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Turns CRLF and lone CR into LF; lettre then writes every LF as CRLF.
fn normalise_line_endings(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A List-Id's identifier (`care.shop.example`, angle brackets optional): dot-atom text only.
pub fn list_id(id: &str) -> Result<&str, MailError> {
    let inner = id.trim();
    let inner = inner
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(inner);
    let valid = !inner.is_empty()
        && inner.len() <= 255
        && inner.contains('.')
        && inner.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        });
    if valid {
        Ok(inner)
    } else {
        Err(MailError::InvalidHeader {
            header: "List-Id",
            reason: format!(
                "{id:?} must look like care.shop.example (letters, digits and dots; RFC 2919)"
            ),
        })
    }
}

fn validate_message_id(id: &str) -> Result<(), MailError> {
    let invalid = |reason: &str| MailError::InvalidHeader {
        header: "Message-ID",
        reason: reason.to_owned(),
    };
    let inner = id
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .ok_or_else(|| invalid("it must look like <left@right>"))?;
    if id.len() > MAX_MESSAGE_ID {
        return Err(invalid("it is longer than 250 bytes"));
    }
    if !inner
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return Err(invalid(
            "it may only contain printable ASCII without spaces or angle brackets",
        ));
    }
    match inner.split_once('@') {
        Some((left, right)) if !left.is_empty() && !right.is_empty() && !right.contains('@') => {
            Ok(())
        }
        _ => Err(invalid("it must look like <left@right>")),
    }
}

fn unsubscribe_uri<'a>(uri: &'a str, scheme: &str) -> Result<&'a str, MailError> {
    let invalid = |reason: String| MailError::InvalidHeader {
        header: "List-Unsubscribe",
        reason,
    };
    if !uri.starts_with(scheme) || uri.len() == scheme.len() {
        return Err(invalid(format!("the link must start with {scheme}")));
    }
    if uri.len() > MAX_UNSUBSCRIBE_URI {
        return Err(invalid(format!(
            "the link is longer than {MAX_UNSUBSCRIBE_URI} bytes"
        )));
    }
    if !uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
    {
        return Err(invalid(
            "the link may only contain printable ASCII without spaces or angle brackets \
             (percent-encode the rest)"
                .to_owned(),
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            message_id: "<outbox-1.ab@tiercare.invalid>".to_owned(),
            from: Address::named("Care", "care@example.com"),
            to: Address::named("Ada", "ada@example.com"),
            reply_to: None,
            subject: "Hello".to_owned(),
            text: "Hi".to_owned(),
            html: None,
            list_unsubscribe: None,
            date: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        }
    }

    fn headers(built: &BuiltMessage) -> String {
        let raw = String::from_utf8(built.raw().to_vec()).expect("ascii");
        raw.split("\r\n\r\n").next().expect("headers").to_owned()
    }

    #[test]
    fn base64_and_encoded_words_match_the_rfcs() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let long = "ü".repeat(40);
        let words = encoded_words(&long);
        assert!(words.split("\r\n ").all(|w| w.len() <= 75), "{words}");
        assert_eq!(words.split("\r\n ").count(), 3, "{words}");
    }

    #[test]
    fn clean_text_removes_every_line_break() {
        assert_eq!(
            clean_text("Bob\r\nBcc: x@example.com"),
            "Bob  Bcc: x@example.com"
        );
        assert_eq!(clean_text("a\u{2028}b\u{85}c\td\0"), "a b c d");
        assert_eq!(clean_text("\r\n"), "");
    }

    #[test]
    fn addresses_with_control_characters_are_refused() {
        for bad in [
            "",
            "a@example.com\r\nBcc: x@example.com",
            "a b@example.com",
            "nobody",
        ] {
            let mut email = email();
            email.to.email = bad.to_owned();
            match build(&email) {
                Err(MailError::InvalidAddress { address, .. }) => assert_eq!(address, bad),
                other => panic!("{bad:?}: expected InvalidAddress, got {other:?}"),
            }
        }
    }

    #[test]
    fn message_ids_must_be_well_formed() {
        for bad in [
            "outbox-1@x",
            "<outbox 1@x>",
            "<@x>",
            "<a@>",
            "<a@b@c>",
            "<a\r\n@b>",
        ] {
            let mut email = email();
            email.message_id = bad.to_owned();
            assert!(
                matches!(
                    build(&email),
                    Err(MailError::InvalidHeader {
                        header: "Message-ID",
                        ..
                    })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn unsubscribe_links_are_checked() {
        let mut email = email();
        email.list_unsubscribe = Some(ListUnsubscribe {
            mailto: "unsubscribe@example.com".to_owned(),
            https: None,
        });
        assert!(build(&email).is_err(), "a mailto without its scheme");
        email.list_unsubscribe = Some(ListUnsubscribe {
            mailto: "mailto:u@example.com".to_owned(),
            https: Some("https://example.com/u?x=<y>".to_owned()),
        });
        assert!(build(&email).is_err(), "angle brackets in a link");
    }

    #[test]
    fn one_click_only_with_an_https_link() {
        let mut email = email();
        email.list_unsubscribe = Some(ListUnsubscribe {
            mailto: "mailto:u@example.com".to_owned(),
            https: None,
        });
        let headers = headers(&build(&email).expect("built"));
        assert!(headers.contains("List-Unsubscribe: <mailto:u@example.com>"));
        assert!(!headers.contains("List-Unsubscribe-Post"));
    }

    #[test]
    fn injected_names_and_subjects_stay_in_one_header() {
        let mut email = email();
        email.to.name = Some("Bob\r\nBcc: x@example.com".to_owned());
        email.subject = "Hi\r\nBcc: y@example.com\nX-Evil: 1".to_owned();
        let headers = headers(&build(&email).expect("built"));
        for line in headers.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("X-Evil"),
                "injected header line {line:?} in\n{headers}"
            );
        }
        assert!(!headers.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn line_endings_become_crlf() {
        let mut email = email();
        email.text = "one\rtwo\nthree\r\nfour".to_owned();
        let built = build(&email).expect("built");
        let raw = built.raw();
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(raw[i - 1], b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
    }
}
