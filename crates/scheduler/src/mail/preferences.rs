//! What recipients do from their e-mails' links: unsubscribe (one click, or the page's
//! button) and change their consents on the preference page. The web server (`tiercare
//! serve`), `tiercare unsubscribe` and the CLI's lists all unsubscribe through [`unsubscribe`],
//! the one place an unsubscription is recorded (with why and where from); an `unsubscribed`
//! event hooks in there.

use tiercare_store::{Store, StoreError, SuppressionReason};

use super::TokenSigner;

/// Who unsubscribes: an address (typed, or from a list), or the hash a signed token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsubscriber<'a> {
    /// An address; it is stored under its current keyed hash.
    Address(&'a str),
    /// An address hash from a verified token.
    Hash(&'a str),
}

/// Suppresses an address because its owner unsubscribed (reason `unsubscribe`), recording
/// `source` (`"cli"`, `"csv:FILE:ROW"`, `"web:one-click"`, `"web:page"`, `"token"`), in one
/// transaction. Returns whether it was new; an address already suppressed keeps its first
/// reason. Logs no address.
pub fn unsubscribe(
    store: &mut Store,
    who: Unsubscriber<'_>,
    source: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let new = match who {
        Unsubscriber::Address(address) => {
            store.suppress(address, SuppressionReason::Unsubscribe, source, now)?
        }
        Unsubscriber::Hash(hash) => {
            store.suppress_hash(hash, SuppressionReason::Unsubscribe, source, now)?
        }
    };
    tracing::info!(source, new, "unsubscribed");
    Ok(new)
}

/// What an unsubscribe token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOutcome {
    /// The address is suppressed (`new`: by this request).
    Unsubscribed {
        /// Whether this request added it.
        new: bool,
    },
    /// The token is not valid (damaged, forged, another secret's, or expired): nothing changed.
    Invalid,
}

/// Unsubscribes the address a token names. When the token names its e-mail and the e-mail is
/// still on file, the address it went to is suppressed under the current key (so a token of
/// the previous secret leaves no row only that secret can read); otherwise the token's hash.
pub fn unsubscribe_with_token(
    store: &mut Store,
    signer: &TokenSigner,
    token: &str,
    source: &str,
    now: i64,
) -> Result<TokenOutcome, StoreError> {
    let Some(verified) = signer.verify_at(token, now) else {
        tracing::info!(source, "unsubscribe token not valid: nothing changed");
        return Ok(TokenOutcome::Invalid);
    };
    let sent_to = match verified.outbox {
        Some(outbox) => store
            .link_recipient(outbox)?
            .map(|recipient| recipient.sent_to)
            .filter(|address| {
                signer
                    .address_keys()
                    .lookups(address)
                    .contains(&verified.hash)
            }),
        None => None,
    };
    let new = match &sent_to {
        Some(address) => unsubscribe(store, Unsubscriber::Address(address), source, now)?,
        None => unsubscribe(store, Unsubscriber::Hash(&verified.hash), source, now)?,
    };
    Ok(TokenOutcome::Unsubscribed { new })
}

/// What the preference page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// Whether the address the e-mail went to is suppressed.
    pub unsubscribed: bool,
    /// The customer's consents (e-mail, SMS), when the token names an e-mail whose customer is
    /// still on file; `None` otherwise (only unsubscribing is offered).
    pub consents: Option<Consents>,
}

/// A customer's consents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consents {
    /// To e-mail.
    pub email: bool,
    /// To text messages.
    pub sms: bool,
}

/// What the preference page of `token` shows, or `None` for a token that is not valid.
pub fn preferences(
    store: &Store,
    signer: &TokenSigner,
    token: &str,
    now: i64,
) -> Result<Option<Preferences>, StoreError> {
    let Some(verified) = signer.verify_at(token, now) else {
        return Ok(None);
    };
    let consents = match verified.outbox {
        Some(outbox) => store.link_recipient(outbox)?.map(|r| Consents {
            email: r.consent_email,
            sms: r.consent_sms,
        }),
        None => None,
    };
    Ok(Some(Preferences {
        unsubscribed: store.hash_is_suppressed(&verified.hash)?,
        consents,
    }))
}

/// Sets the consents of the customer `token`'s e-mail went to (`None` leaves one as it is),
/// in one transaction. Returns the page's new state, or `None` for a token that is not valid
/// or names no customer on file (nothing changed).
pub fn set_consents(
    store: &mut Store,
    signer: &TokenSigner,
    token: &str,
    email: Option<bool>,
    sms: Option<bool>,
    now: i64,
) -> Result<Option<Preferences>, StoreError> {
    let Some(verified) = signer.verify_at(token, now) else {
        return Ok(None);
    };
    let Some(recipient) = verified
        .outbox
        .map(|outbox| store.link_recipient(outbox))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    store.set_consents(recipient.customer, email, sms, now)?;
    tracing::info!(?email, ?sms, "consents set from the preference page");
    preferences(store, signer, token, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_token_unsubscribes_once_and_an_invalid_one_changes_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        store.set_address_keys(signer.address_keys().clone());
        let token = signer.token("ada@example.com", 1, 100);
        assert_eq!(
            unsubscribe_with_token(&mut store, &signer, "nonsense", "web", 100).unwrap(),
            TokenOutcome::Invalid
        );
        assert!(!store.is_suppressed("ada@example.com").unwrap());
        assert_eq!(
            unsubscribe_with_token(&mut store, &signer, &token, "web", 100).unwrap(),
            TokenOutcome::Unsubscribed { new: true }
        );
        assert!(store.is_suppressed("ada@example.com").unwrap());
        assert_eq!(
            unsubscribe_with_token(&mut store, &signer, &token, "web", 101).unwrap(),
            TokenOutcome::Unsubscribed { new: false }
        );
        // No e-mail 1 on file: the page offers no consents.
        assert_eq!(
            preferences(&store, &signer, &token, 100).unwrap(),
            Some(Preferences {
                unsubscribed: true,
                consents: None
            })
        );
        assert_eq!(preferences(&store, &signer, "x.y", 100).unwrap(), None);
    }
}
