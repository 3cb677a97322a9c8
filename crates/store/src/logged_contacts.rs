//! Contacts logged by hand (the staff workspace's "log a call or visit"): one interaction row,
//! written in one `IMMEDIATE` transaction, beside the imported ones.
//!
//! A logged contact gets an external id of its own (`staff:{customer rowid}:{row id}`), so a
//! later import of the interactions file never mistakes it for one of its rows.

use rusqlite::{TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, ContactProblem, StoreError};
use crate::stored::require_customer;

/// A contact to log with a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedContact<'a> {
    /// The customer's external id.
    pub customer: &'a str,
    /// What kind of contact: `call` or `visit` (any non-empty word is kept as it is).
    pub kind: &'a str,
    /// When it happened, unix seconds UTC.
    pub occurred_at: i64,
    /// The manager (external id) or staff login who made it.
    pub by: &'a str,
    /// What was said; empty for none.
    pub note: &'a str,
}

impl Store {
    /// Logs `contact` as an interaction of its customer and returns the interaction's external
    /// id. Refused with [`StoreError::InvalidContact`] when the kind is empty or not one word,
    /// or the customer has been forgotten (no new notes about them are kept); an unknown
    /// customer is [`StoreError::UnknownCustomer`].
    pub fn log_contact(&mut self, contact: &LoggedContact<'_>) -> Result<String, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let refuse = |problem: ContactProblem| StoreError::InvalidContact {
            id: contact.customer.to_owned(),
            problem,
        };
        let kind = contact.kind.trim();
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return Err(refuse(ContactProblem::Kind));
        }
        let note = contact.note.trim();
        let by = contact.by.trim();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let rowid = require_customer(&tx, path, contact.customer)?;
        let forgotten: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM privacy_requests WHERE customer_id = ?1)",
                [rowid],
                |row| row.get(0),
            )
            .at(path)?;
        if forgotten {
            return Err(refuse(ContactProblem::Forgotten));
        }
        let next: i64 = tx
            .query_row(
                "SELECT coalesce(max(id), 0) + 1 FROM interactions",
                [],
                |row| row.get(0),
            )
            .at(path)?;
        let external_id = format!("staff:{rowid}:{next}");
        tx.execute(
            "INSERT INTO interactions (id, external_id, customer_id, kind, occurred_at, \
             by_manager, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                next,
                external_id,
                rowid,
                kind,
                contact.occurred_at,
                (!by.is_empty()).then_some(by),
                (!note.is_empty()).then_some(note),
            ],
        )
        .at(path)?;
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(external_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerRecord, ImportAudit, ImportKind, ImportOptions};

    fn store_with_ada() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        let ada = CustomerRecord {
            external_id: "C1".into(),
            name: Some("Ada".into()),
            ..CustomerRecord::default()
        };
        session.customer(2, &ada).unwrap();
        session.commit(&ImportAudit::default()).unwrap();
        store
    }

    fn contact(kind: &str) -> LoggedContact<'_> {
        LoggedContact {
            customer: "C1",
            kind,
            occurred_at: 1_000,
            by: "m1",
            note: " asked about the renewal ",
        }
    }

    #[test]
    fn a_logged_call_is_an_interaction_of_the_customer() {
        let mut store = store_with_ada();
        let id = store.log_contact(&contact("call")).unwrap();
        let again = store.log_contact(&contact("visit")).unwrap();
        assert_ne!(id, again);
        let export = store.export_customer("C1").unwrap();
        let interactions = export["interactions"].as_array().unwrap();
        assert_eq!(interactions.len(), 2);
        assert_eq!(interactions[0]["kind"], "call");
        assert_eq!(interactions[0]["note"], "asked about the renewal");
        assert_eq!(interactions[0]["by_manager"], "m1");
        assert_eq!(interactions[0]["occurred_at"], 1_000);
    }

    #[test]
    fn a_contact_without_a_kind_or_with_a_forgotten_or_unknown_customer_is_refused() {
        let mut store = store_with_ada();
        assert!(matches!(
            store.log_contact(&contact(" ")),
            Err(StoreError::InvalidContact { .. })
        ));
        let mut unknown = contact("call");
        unknown.customer = "C9";
        assert!(matches!(
            store.log_contact(&unknown),
            Err(StoreError::UnknownCustomer { .. })
        ));
        store.forget_customer("C1", "admin", 500).unwrap();
        assert!(matches!(
            store.log_contact(&contact("call")),
            Err(StoreError::InvalidContact { .. })
        ));
        let export = store.export_customer("C1").unwrap();
        assert!(export["interactions"].as_array().unwrap().is_empty());
    }
}
