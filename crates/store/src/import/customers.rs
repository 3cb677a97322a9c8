//! Writing customers.
//!
//! A customer who was forgotten (`tiercare customer forget`, a `forget` row in
//! `privacy_requests`) stays forgotten: a later import of the same file keeps
//! the external id and updates region, owner and time zone, but never writes
//! back the personal fields forgetting erased (name, email, phone, birthday,
//! attributes) nor grants consent again. Such rows are counted
//! ([`ImportSession::kept_forgotten`]). Interactions, complaints and feedback
//! of theirs keep their free text out the same way, through
//! `ImportSession::unless_forgotten`.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};
use rusqlite::params;
use serde_json::{Map, Value};

use super::{
    ImportKind, ImportSession, KindTable, Outcome, RowError, customer_index, int_differs, reject,
    require, text_differs,
};
use crate::error::{AtPath, StoreError};
use crate::records::CustomerRecord;

/// The customers with a forget request, loaded on the first update of a
/// session, and how many rows of theirs had their personal fields left out.
#[derive(Debug, Default)]
pub(super) struct ForgottenCustomers {
    rowids: Option<HashSet<i64>>,
    pub(super) kept: u64,
}

impl ForgottenCustomers {
    /// Whether customer `rowid` was forgotten; loads the set on first use.
    fn contains(
        &mut self,
        conn: &rusqlite::Connection,
        path: &std::path::Path,
        rowid: i64,
    ) -> Result<bool, StoreError> {
        if self.rowids.is_none() {
            let rowids = conn
                .prepare(
                    "SELECT DISTINCT customer_id FROM privacy_requests \
                     WHERE kind = 'forget' AND customer_id IS NOT NULL",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| row.get(0))?
                        .collect::<rusqlite::Result<HashSet<i64>>>()
                })
                .at(path)?;
            self.rowids = Some(rowids);
        }
        Ok(self.rowids.as_ref().is_some_and(|set| set.contains(&rowid)))
    }
}

/// `rec` without the fields forgetting erases: name, email, phone, birthday,
/// attributes and consents (left as stored: erased and withdrawn).
fn without_personal_data(rec: &CustomerRecord) -> CustomerRecord {
    CustomerRecord {
        external_id: rec.external_id.clone(),
        region: rec.region.clone(),
        owner: rec.owner.clone(),
        timezone: rec.timezone.clone(),
        ..CustomerRecord::default()
    }
}

impl ImportSession<'_> {
    /// Upserts a customer by `external_id`; `line` is where the record came
    /// from, for duplicate messages.
    ///
    /// Fields that are `None` keep their stored value (an insert uses the
    /// column defaults), attributes merge key by key, and a record that would
    /// change nothing is [`Outcome::Unchanged`] and leaves `updated_at` alone.
    ///
    /// A forgotten customer's personal fields are left out (see the module
    /// documentation) and the row is counted in
    /// [`kept_forgotten`](ImportSession::kept_forgotten).
    pub fn customer(&mut self, line: u64, rec: &CustomerRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_customer(line, rec))
    }

    /// How many rows of this session were for forgotten customers and had
    /// their personal fields (customers) or free text (interaction notes,
    /// complaint subjects, feedback comments) left out.
    pub fn kept_forgotten(&self) -> u64 {
        self.forgotten.kept
    }

    /// An event's free text (`text`: a note, subject or comment) as it may be
    /// written for customer `rowid`: unchanged, or `None` when the customer
    /// was forgotten, so that the text forgetting erased stays erased; a row
    /// whose text was left out is counted in
    /// [`kept_forgotten`](ImportSession::kept_forgotten).
    pub(super) fn unless_forgotten<'t>(
        &mut self,
        rowid: i64,
        text: Option<&'t str>,
    ) -> Result<Option<&'t str>, StoreError> {
        if text.is_none() || !self.forgotten.contains(self.conn, self.path, rowid)? {
            return Ok(text);
        }
        self.forgotten.kept += 1;
        Ok(None)
    }

    fn write_customer(&mut self, line: u64, rec: &CustomerRecord) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Customers;
        require(KIND.id_column(), &rec.external_id)?;
        let birthday = rec.birthday.map(date_text).transpose()?;
        let birthday = birthday.as_ref().map(|text| {
            std::str::from_utf8(text).expect("date_text writes ASCII digits and dashes")
        });
        let key = rec.external_id.as_str();
        let path = self.path;
        // The session's map knows every stored customer, so it answers
        // "insert or update?" without a query.
        let known = customer_index(&mut self.customers, self.conn, path)?
            .get(key)
            .copied();
        let (rowid, outcome) = match known {
            None => {
                let attributes = if rec.attributes.is_empty() {
                    None
                } else {
                    Some(attributes_json(&rec.attributes))
                };
                self.statements
                    .customer_insert()
                    .at(path)?
                    .execute(params![
                        key,
                        rec.name.as_deref(),
                        rec.email.as_deref(),
                        rec.phone.as_deref(),
                        birthday,
                        rec.region.as_deref(),
                        rec.owner.as_deref(),
                        rec.timezone.as_deref(),
                        rec.consent_email.unwrap_or(false),
                        rec.consent_sms.unwrap_or(false),
                        rec.consent_phone.unwrap_or(false),
                        attributes.as_deref().unwrap_or("{}"),
                        self.now,
                    ])
                    .at(path)?;
                let rowid = self.conn.last_insert_rowid();
                customer_index(&mut self.customers, self.conn, path)?.insert(key.into(), rowid);
                (rowid, Outcome::Inserted)
            }
            Some(rowid) => {
                self.check_seen(KIND, rowid, key, false)?;
                let outcome = if self.forgotten.contains(self.conn, path, rowid)? {
                    self.forgotten.kept += 1;
                    self.update_customer(rowid, &without_personal_data(rec), None)?
                } else {
                    self.update_customer(rowid, rec, birthday)?
                };
                (rowid, outcome)
            }
        };
        self.remember(KIND, rowid, line);
        Ok(outcome)
    }

    /// Compares the record with the stored customer `rowid` and writes the
    /// difference, if there is one.
    fn update_customer(
        &mut self,
        rowid: i64,
        rec: &CustomerRecord,
        birthday: Option<&str>,
    ) -> Result<Outcome, RowError> {
        let path = self.path;
        let (changed, attributes) = self
            .statements
            .customer_select()
            .at(path)?
            .query_row([rowid], |row| {
                let changed = text_differs(row.get_ref(0)?, rec.name.as_deref())
                    || text_differs(row.get_ref(1)?, rec.email.as_deref())
                    || text_differs(row.get_ref(2)?, rec.phone.as_deref())
                    || text_differs(row.get_ref(3)?, birthday)
                    || text_differs(row.get_ref(4)?, rec.region.as_deref())
                    || text_differs(row.get_ref(5)?, rec.owner.as_deref())
                    || text_differs(row.get_ref(6)?, rec.timezone.as_deref())
                    || int_differs(row.get_ref(7)?, rec.consent_email.map(i64::from))
                    || int_differs(row.get_ref(8)?, rec.consent_sms.map(i64::from))
                    || int_differs(row.get_ref(9)?, rec.consent_phone.map(i64::from));
                let attributes = if rec.attributes.is_empty() {
                    None
                } else {
                    merge_attributes(row.get_ref(10)?.as_str()?, &rec.attributes)
                };
                Ok((changed, attributes))
            })
            .at(path)?;
        if !changed && attributes.is_none() {
            return Ok(Outcome::Unchanged);
        }
        self.statements
            .customer_update()
            .at(path)?
            .execute(params![
                rowid,
                rec.name.as_deref(),
                rec.email.as_deref(),
                rec.phone.as_deref(),
                birthday,
                rec.region.as_deref(),
                rec.owner.as_deref(),
                rec.timezone.as_deref(),
                rec.consent_email,
                rec.consent_sms,
                rec.consent_phone,
                attributes,
                self.now,
            ])
            .at(path)?;
        Ok(Outcome::Updated)
    }
}

/// `date` as `YYYY-MM-DD`, without allocating; years outside 0..=9999 (which
/// SQLite's date functions cannot read) are rejected.
fn date_text(date: NaiveDate) -> Result<[u8; 10], RowError> {
    let Ok(year @ 0..=9999) = u32::try_from(date.year()) else {
        return Err(reject(
            "birthday",
            format!("birthday {date} is outside the years 0000 to 9999"),
        ));
    };
    let mut text = *b"0000-00-00";
    let digits = |slot: &mut [u8], mut value: u32| {
        for digit in slot.iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    digits(&mut text[0..4], year);
    digits(&mut text[5..7], date.month());
    digits(&mut text[8..10], date.day());
    Ok(text)
}

/// The stored attributes with `given` merged in key by key, as JSON text, or
/// `None` if merging changes nothing.
fn merge_attributes(stored: &str, given: &Map<String, Value>) -> Option<String> {
    let mut merged = match serde_json::from_str(stored) {
        Ok(Value::Object(map)) => map,
        // The CHECK keeps the column valid JSON; anything but an object is
        // replaced by the given keys.
        _ => Map::new(),
    };
    let mut changed = false;
    for (key, value) in given {
        if merged.get(key) != Some(value) {
            merged.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    changed.then(|| attributes_json(&merged))
}

fn attributes_json(attributes: &Map<String, Value>) -> String {
    serde_json::to_string(attributes).expect("a JSON object with string keys always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_iso_text() {
        let text =
            |y, m, d| date_text(NaiveDate::from_ymd_opt(y, m, d).unwrap()).map(|t| t.to_vec());
        assert_eq!(text(1987, 3, 9).unwrap(), b"1987-03-09");
        assert_eq!(text(44, 12, 31).unwrap(), b"0044-12-31");
        assert!(text(10_000, 1, 1).is_err());
        assert!(text(-1, 1, 1).is_err());
    }

    #[test]
    fn attributes_merge_key_by_key() {
        let given: Map<String, Value> =
            serde_json::from_str(r#"{"segment": "retail", "vip": true}"#).unwrap();
        let merged = merge_attributes(r#"{"segment": "b2b", "source": "fair"}"#, &given).unwrap();
        let merged: Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"segment": "retail", "source": "fair", "vip": true})
        );
        assert_eq!(
            merge_attributes(r#"{"segment": "retail", "vip": true, "x": 1}"#, &given),
            None
        );
    }
}
