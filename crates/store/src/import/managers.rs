//! Writing account managers.

use rusqlite::{OptionalExtension, params};

use super::{
    ImportKind, ImportSession, KindTable, Outcome, RowError, int_differs, reject, require,
    text_differs,
};
use crate::error::AtPath;
use crate::records::ManagerRecord;

impl ImportSession<'_> {
    /// Upserts a manager by `external_id`; `line` is where the record came
    /// from, for duplicate messages. The name is required and always
    /// replaces the stored one; `None` fields keep their stored value.
    pub fn manager(&mut self, line: u64, rec: &ManagerRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_manager(line, rec))
    }

    fn write_manager(&mut self, line: u64, rec: &ManagerRecord) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Managers;
        require(KIND.id_column(), &rec.external_id)?;
        require("name", &rec.name)?;
        if let Some(capacity @ ..0) = rec.capacity {
            return Err(reject(
                "capacity",
                format!("capacity must not be negative, not {capacity}"),
            ));
        }
        let key = rec.external_id.as_str();

        let path = self.path;
        let stored = if self.insert_blindly(KIND) {
            None
        } else {
            self.statements
                .manager_select()
                .at(path)?
                .query_row([key], |row| {
                    let changed = text_differs(row.get_ref(1)?, Some(&rec.name))
                        || text_differs(row.get_ref(2)?, rec.email.as_deref())
                        || text_differs(row.get_ref(3)?, rec.role.as_deref())
                        || int_differs(row.get_ref(4)?, rec.capacity)
                        || int_differs(row.get_ref(5)?, rec.active.map(i64::from))
                        || text_differs(row.get_ref(6)?, rec.timezone.as_deref());
                    Ok((row.get::<_, i64>(0)?, changed))
                })
                .optional()
                .at(path)?
        };
        let (rowid, outcome) = match stored {
            None => {
                let result = self.statements.manager_insert().at(path)?.execute(params![
                    key,
                    rec.name,
                    rec.email.as_deref(),
                    rec.role.as_deref(),
                    rec.capacity,
                    rec.active.unwrap_or(true),
                    self.now,
                    rec.timezone.as_deref(),
                ]);
                (self.inserted(KIND, key, false, result)?, Outcome::Inserted)
            }
            Some((rowid, changed)) => {
                self.check_seen(KIND, rowid, key, false)?;
                if !changed {
                    return Ok(self.unchanged(KIND, rowid, line));
                }
                self.statements
                    .manager_update()
                    .at(path)?
                    .execute(params![
                        rowid,
                        rec.name,
                        rec.email.as_deref(),
                        rec.role.as_deref(),
                        rec.capacity,
                        rec.active,
                        self.now,
                        rec.timezone.as_deref(),
                    ])
                    .at(path)?;
                (rowid, Outcome::Updated)
            }
        };
        self.remember(KIND, rowid, line);
        Ok(outcome)
    }
}
