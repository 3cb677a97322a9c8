//! VERP envelope senders: each email's SMTP envelope sender (`MAIL FROM`, the `Return-Path`
//! its bounces go to) names the email, so a delivery status notification says exactly which
//! email bounced, whatever the remote server quotes of it.
//!
//! With `[mail] bounce_address = "bounces@shop.example"`, the email with outbox id 42 goes out
//! with the envelope sender `bounces+42.<mac>@shop.example`, where the MAC is the first 64
//! bits of HMAC-SHA256 over `tiercare-verp:42` with a key derived from the workspace secret
//! (the variable `[mail] unsubscribe_secret_env` names), in lowercase hex. A bounce to an address whose MAC
//! does not verify is forged (or from another workspace) and suppresses nobody. The `From:`
//! header is not changed.

use ring::hmac;

use super::MailError;

/// Hex digits of the MAC kept in an address (64 bits).
const MAC_HEX: usize = 16;

/// What an address a bounce was sent to says, checked by [`Verp::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerpAddress {
    /// Our VERP address with a valid MAC: the outbox id of the email.
    Email(i64),
    /// Our bounce address's form with a MAC that does not verify: forged or damaged.
    Forged,
    /// Not a VERP address of ours.
    NotOurs,
}

/// Makes and checks VERP envelope senders for one bounce address. `Debug` never shows the
/// secret.
pub struct Verp {
    local: String,
    domain: String,
    key: hmac::Key,
}

impl std::fmt::Debug for Verp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verp")
            .field("local", &self.local)
            .field("domain", &self.domain)
            .field("key", &"<secret>")
            .finish()
    }
}

impl Verp {
    /// VERP addresses based on `bounce_address` (`bounces@shop.example`), signed with
    /// `secret` (at least [`super::unsubscribe::MIN_SECRET`] bytes).
    pub fn new(bounce_address: &str, secret: &[u8]) -> Result<Verp, MailError> {
        let invalid = |reason: &str| {
            MailError::InvalidConfig(format!("mail.bounce_address {bounce_address:?}: {reason}"))
        };
        let address = super::message::parse_address(bounce_address.trim())
            .map_err(|_| invalid("not a valid email address"))?;
        let (local, domain) = (address.user(), address.domain());
        if local.contains('+') {
            return Err(invalid(
                "the local part must not contain `+` (tiercare appends `+<id>.<mac>`)",
            ));
        }
        if local.len() + 1 + 19 + 1 + MAC_HEX > 64 {
            return Err(invalid("the local part is too long for a VERP address"));
        }
        if secret.len() < super::unsubscribe::MIN_SECRET {
            return Err(MailError::InvalidConfig(format!(
                "the workspace secret must be at least {} bytes long",
                super::unsubscribe::MIN_SECRET
            )));
        }
        Ok(Verp {
            local: local.to_owned(),
            domain: domain.to_ascii_lowercase(),
            key: derive_key(secret),
        })
    }

    /// The VERP addresses `[mail]` configures: `None` without `bounce_address`; the secret
    /// read through `env` from the variable `unsubscribe_secret_env` names.
    pub fn from_config(
        mail: &crate::config::MailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Verp>, MailError> {
        let Some(bounce_address) = &mail.bounce_address else {
            return Ok(None);
        };
        let variable = &mail.unsubscribe_secret_env;
        let secret = env(variable).filter(|s| !s.is_empty()).ok_or_else(|| {
            MailError::InvalidConfig(format!(
                "mail.bounce_address is set but the environment variable {variable} (the \
                 workspace secret that signs VERP addresses) is not: set it to a long random \
                 string, e.g. `export {variable}=$(head -c 32 /dev/urandom | base64)`"
            ))
        })?;
        Verp::new(bounce_address, secret.as_bytes()).map(Some)
    }

    fn mac(&self, id: i64) -> String {
        let tag = hmac::sign(&self.key, format!("tiercare-verp:{id}").as_bytes());
        tag.as_ref()[..MAC_HEX / 2]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The envelope sender of the email with outbox id `id`.
    pub fn address(&self, id: i64) -> String {
        format!("{}+{id}.{}@{}", self.local, self.mac(id), self.domain)
    }

    /// The bounce address itself (`bounces@shop.example`).
    pub fn bounce_address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// What `address` (a DSN's recipient, angle brackets allowed) says: an email of ours,
    /// a forgery, or not ours. Local part and domain are compared without regard to ASCII
    /// case (some servers change it); the MAC in constant time.
    pub fn parse(&self, address: &str) -> VerpAddress {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let Some((local, domain)) = address.rsplit_once('@') else {
            return VerpAddress::NotOurs;
        };
        let Some((base, tag)) = local.split_once('+') else {
            return VerpAddress::NotOurs;
        };
        if !base.eq_ignore_ascii_case(&self.local) || !domain.eq_ignore_ascii_case(&self.domain) {
            return VerpAddress::NotOurs;
        }
        let Some((id, mac)) = tag.split_once('.') else {
            return VerpAddress::Forged;
        };
        let Ok(id) = id.parse::<i64>() else {
            return VerpAddress::Forged;
        };
        let mac = mac.to_ascii_lowercase();
        let expected = self.mac(id);
        if mac.len() != expected.len() {
            return VerpAddress::Forged;
        }
        let diff = expected
            .bytes()
            .zip(mac.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 {
            VerpAddress::Email(id)
        } else {
            VerpAddress::Forged
        }
    }
}

/// The VERP key derived from the workspace secret (never the secret itself, which also signs
/// unsubscribe tokens).
fn derive_key(secret: &[u8]) -> hmac::Key {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let derived = hmac::sign(&root, b"tiercare verp v1");
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_the_email_and_forgeries_do_not_verify() {
        let verp = Verp::new("Bounces@Shop.Example", b"0123456789abcdef-secret").unwrap();
        let address = verp.address(42);
        assert!(address.starts_with("Bounces+42."), "{address}");
        assert!(address.ends_with("@shop.example"), "{address}");
        assert_eq!(verp.parse(&address), VerpAddress::Email(42));
        assert_eq!(
            verp.parse(&format!("<{}>", address.to_uppercase())),
            VerpAddress::Email(42)
        );
        let (_, mac) = address.split_once('.').unwrap();
        assert_eq!(
            verp.parse(&format!("bounces+43.{mac}")),
            VerpAddress::Forged
        );
        assert_eq!(
            verp.parse(&address.replace("+42.", "+43.")),
            VerpAddress::Forged,
            "a MAC moved to another id"
        );
        assert_eq!(verp.parse("bounces+42@shop.example"), VerpAddress::Forged);
        assert_eq!(verp.parse("bounces@shop.example"), VerpAddress::NotOurs);
        assert_eq!(
            verp.parse("someone+42.abc@other.example"),
            VerpAddress::NotOurs
        );
        let other = Verp::new("bounces@shop.example", b"another secret of 16+ bytes").unwrap();
        assert_eq!(other.parse(&address), VerpAddress::Forged, "another secret");
        assert!(Verp::new("bounces+x@shop.example", b"0123456789abcdef").is_err());
        assert!(Verp::new("nobody", b"0123456789abcdef").is_err());
        assert!(Verp::new("bounces@shop.example", b"short").is_err());
    }
}
