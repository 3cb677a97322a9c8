//! `tiercare customers`: the customer list, filtered, sorted and paged, as a table, CSV or JSON
//! Lines.
//!
//! The store filters what SQL can (tier, segment, owner, last contact, attribute) and reads the
//! key figures; a `--where` expression or a sort by a feature then runs the engine's
//! [`CustomerExpression`] over the features pass the assessment uses (computed at `at` over the
//! rules' window), for the listed customers only.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io;
use std::path::Path;

use tiercare_engine::{CustomerExpression, QueryValue, Snapshot, Stored};
use tiercare_store::{CustomerQuery, CustomerRow, Store, StoreError, Window};

use crate::assess::{AssessError, RuleSource, fill_snapshot};
use crate::time::iso_time;
use crate::workspace::Workspace;

/// The columns `--sort` can name besides features and expressions (they sort without a
/// features pass).
pub const SORT_COLUMNS: [&str; 9] = [
    "id",
    "name",
    "email",
    "tier",
    "owner",
    "orders_total",
    "revenue_total",
    "last_order_at",
    "last_contact_at",
];

/// The CSV header (`--csv`): a newsletter tool's columns first, then the key figures.
pub const CSV_HEADER: [&str; 11] = [
    "id",
    "name",
    "email",
    "tier",
    "segments",
    "owner",
    "owner_name",
    "orders_total",
    "revenue_total",
    "last_order_at",
    "last_contact_at",
];

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// The filters the store applies.
    pub query: CustomerQuery,
    /// A condition in the rules' expression language (features, `tier`, `segments`, `scores`).
    pub condition: Option<String>,
    /// A column, feature or expression to sort by; `-` before it sorts descending. Customers
    /// without a value come last; ties keep id order.
    pub sort: Option<String>,
    /// The time features are computed at (unix seconds).
    pub at: i64,
    /// Customers skipped before the first listed.
    pub offset: usize,
    /// At most this many listed (`None`: all).
    pub limit: Option<usize>,
}

/// One page of the list.
#[derive(Debug, Clone)]
pub struct CustomerList {
    /// The listed customers, in order.
    pub rows: Vec<CustomerRow>,
    /// Customers matching every filter (before paging).
    pub matching: usize,
    /// The offset asked for.
    pub offset: usize,
}

impl CustomerList {
    /// Matching customers after this page.
    #[must_use]
    pub fn after(&self) -> usize {
        self.matching
            .saturating_sub(self.offset)
            .saturating_sub(self.rows.len())
    }
}

/// Why the list could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// `--where` does not compile.
    #[error("--where: {0}")]
    Condition(String),
    /// `--sort` names nothing sortable.
    #[error("--sort: {0}")]
    Sort(String),
    /// The expression failed for a customer.
    #[error("{what} failed for customer {customer}: {message}")]
    Failed {
        /// `--where` or `--sort`.
        what: &'static str,
        /// The customer's id.
        customer: String,
        /// Why.
        message: String,
    },
    /// The rules (for their window) could not be read.
    #[error(transparent)]
    Rules(#[from] AssessError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How rows are sorted.
enum SortKey {
    Column(usize),
    Expression(Box<CustomerExpression>),
}

/// A sortable value: missing last whatever the direction.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Number(f64),
    Text(String),
    Missing,
}

fn compare(a: &Key, b: &Key, descending: bool) -> Ordering {
    let order = match (a, b) {
        (Key::Missing, Key::Missing) => return Ordering::Equal,
        (Key::Missing, _) => return Ordering::Greater,
        (_, Key::Missing) => return Ordering::Less,
        (Key::Number(a), Key::Number(b)) => a.total_cmp(b),
        (Key::Text(a), Key::Text(b)) => a.cmp(b),
        (Key::Number(_), Key::Text(_)) => Ordering::Less,
        (Key::Text(_), Key::Number(_)) => Ordering::Greater,
    };
    if descending { order.reverse() } else { order }
}

fn text(value: &Option<String>) -> Key {
    value.clone().map_or(Key::Missing, Key::Text)
}

fn column_key(row: &CustomerRow, column: usize) -> Key {
    match SORT_COLUMNS[column] {
        "id" => Key::Text(row.id.clone()),
        "name" => text(&row.name),
        "email" => text(&row.email),
        "tier" => text(&row.tier),
        "owner" => text(&row.owner),
        "orders_total" => Key::Number(row.orders_total as f64),
        "revenue_total" => Key::Number(row.revenue_total),
        "last_order_at" => row
            .last_order_at
            .map_or(Key::Missing, |t| Key::Number(t as f64)),
        _ => row
            .last_contact_at
            .map_or(Key::Missing, |t| Key::Number(t as f64)),
    }
}

fn query_key(value: QueryValue) -> Key {
    match value {
        QueryValue::Missing => Key::Missing,
        QueryValue::Bool(b) => Key::Number(f64::from(u8::from(b))),
        QueryValue::Number(n) if n.is_nan() => Key::Missing,
        QueryValue::Number(n) => Key::Number(n),
        QueryValue::Text(t) => Key::Text(t),
    }
}

/// The rules' window (the workspace's `rules/`), for the features pass.
fn rules_window(workspace: &Workspace) -> Result<Window, ListError> {
    let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))?.load()?;
    Ok(rules.rules.window())
}

/// Lists the workspace's customers by `options`.
///
/// Without `--where` and with no sort or a sort by a column, this is one query; otherwise the
/// rules are read for their window and the features of every customer are computed once (the
/// assessment's pass), and the expression runs for the customers the store listed.
pub fn list_customers(
    workspace: &Workspace,
    store: &Store,
    options: &ListOptions,
) -> Result<CustomerList, ListError> {
    let mut condition = options
        .condition
        .as_deref()
        .map(CustomerExpression::compile)
        .transpose()
        .map_err(ListError::Condition)?;
    let (mut sort, descending) = match options.sort.as_deref().map(str::trim) {
        None => (None, false),
        Some(sort) => {
            let (descending, name) = match sort.strip_prefix('-') {
                Some(name) => (true, name.trim()),
                None => (false, sort),
            };
            let key = match SORT_COLUMNS.iter().position(|column| *column == name) {
                Some(column) => SortKey::Column(column),
                None => SortKey::Expression(Box::new(
                    CustomerExpression::compile(name).map_err(ListError::Sort)?,
                )),
            };
            (Some(key), descending)
        }
    };
    let mut rows = store.list_customers(&options.query)?;
    let mut keys: Vec<Key> = Vec::new();
    let needs_features = condition.is_some() || matches!(sort, Some(SortKey::Expression(_)));
    if needs_features {
        let window = rules_window(workspace)?;
        let index: HashMap<i64, usize> = rows
            .iter()
            .enumerate()
            .map(|(position, row)| (row.rowid, position))
            .collect();
        let mut keep = vec![condition.is_none(); rows.len()];
        keys = vec![Key::Missing; rows.len()];
        let mut snapshot = Snapshot::new();
        let mut failure: Option<ListError> = None;
        let mut sort_expression = match &mut sort {
            Some(SortKey::Expression(expression)) => Some(expression),
            _ => None,
        };
        let attributes = condition
            .as_ref()
            .is_some_and(|condition| condition.reads_attributes())
            || sort_expression
                .as_ref()
                .is_some_and(|expression| expression.reads_attributes());
        store.for_each_features_with(options.at, window, None, attributes, &mut |features| {
            if failure.is_some() {
                return;
            }
            let Some(&position) = index.get(&features.customer_rowid) else {
                return;
            };
            let row = &rows[position];
            snapshot.reset();
            fill_snapshot(&mut snapshot, features);
            let stored = Stored {
                tier: row.tier.as_deref().unwrap_or(""),
                segments: &row.segments,
                scores: &row.scores,
            };
            if let Some(condition) = &mut condition {
                match condition.matches(&snapshot, stored) {
                    Ok(matched) => keep[position] = matched,
                    Err(message) => {
                        failure = Some(ListError::Failed {
                            what: "--where",
                            customer: row.id.clone(),
                            message,
                        });
                        return;
                    }
                }
            }
            if let Some(expression) = &mut sort_expression
                && keep[position]
            {
                match expression.eval(&snapshot, stored) {
                    Ok(value) => keys[position] = query_key(value),
                    Err(message) => {
                        failure = Some(ListError::Failed {
                            what: "--sort",
                            customer: row.id.clone(),
                            message,
                        });
                    }
                }
            }
        })?;
        if let Some(failure) = failure {
            return Err(failure);
        }
        let mut position = 0;
        rows.retain(|_| {
            position += 1;
            keep[position - 1]
        });
        let mut position = 0;
        keys.retain(|_| {
            position += 1;
            keep[position - 1]
        });
    }
    let matching = rows.len();
    if let Some(sort) = &sort {
        if let SortKey::Column(column) = sort {
            keys = rows.iter().map(|row| column_key(row, *column)).collect();
        }
        let mut order: Vec<usize> = (0..rows.len()).collect();
        // Stable: ties keep the store's (id) order.
        order.sort_by(|&a, &b| compare(&keys[a], &keys[b], descending));
        let mut slots: Vec<Option<CustomerRow>> = rows.into_iter().map(Some).collect();
        rows = order
            .into_iter()
            .filter_map(|position| slots[position].take())
            .collect();
    }
    let rows: Vec<CustomerRow> = rows
        .into_iter()
        .skip(options.offset)
        .take(options.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(CustomerList {
        rows,
        matching,
        offset: options.offset,
    })
}

/// Where the page after a [`CustomerPage`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextPage {
    /// After the customer with this external id (keyset paging, id order).
    After(String),
    /// After this many matching customers (sorted lists).
    Offset(usize),
}

/// One page of the list for a screen: its customers and where the next page starts.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    /// The listed customers, in order.
    pub rows: Vec<CustomerRow>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<NextPage>,
}

/// One page of at most `size` customers by `options` (whose `limit` is ignored), for a screen
/// that pages on (the staff customers list).
///
/// In id order without `--where` (the common case) this is keyset paging: the store reads
/// `size + 1` customers after the customer `after` (from the first when `None`), so any page
/// of a million customers costs the same and nothing is counted. Sorted or filtered by an expression, it is [`list_customers`] from
/// `options.offset`, which reads every matching customer.
pub fn customer_page(
    workspace: &Workspace,
    store: &Store,
    options: &ListOptions,
    after: Option<&str>,
    size: usize,
) -> Result<CustomerPage, ListError> {
    let id_order = options
        .sort
        .as_deref()
        .is_none_or(|sort| sort.trim().is_empty() || sort.trim() == "id");
    if options.condition.is_none() && id_order {
        let mut rows = store.list_customers_after(&options.query, after, size.saturating_add(1))?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = more
            .then(|| rows.last().map(|row| NextPage::After(row.id.clone())))
            .flatten();
        return Ok(CustomerPage { rows, next });
    }
    let options = ListOptions {
        limit: Some(size),
        ..options.clone()
    };
    let list = list_customers(workspace, store, &options)?;
    let next = (list.after() > 0).then(|| NextPage::Offset(list.offset + list.rows.len()));
    Ok(CustomerPage {
        rows: list.rows,
        next,
    })
}

/// Segments as `set=segment` joined by `;` (sorted by set).
#[must_use]
pub fn segments_text(row: &CustomerRow) -> String {
    row.segments
        .iter()
        .map(|(set, segment)| format!("{set}={segment}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The CSV fields of one row, in [`CSV_HEADER`] order (times as RFC 3339 UTC).
#[must_use]
pub fn csv_record(row: &CustomerRow) -> [String; 11] {
    [
        row.id.clone(),
        row.name.clone().unwrap_or_default(),
        row.email.clone().unwrap_or_default(),
        row.tier.clone().unwrap_or_default(),
        segments_text(row),
        row.owner.clone().unwrap_or_default(),
        row.owner_name.clone().unwrap_or_default(),
        row.orders_total.to_string(),
        format!("{:.2}", row.revenue_total),
        iso_time(row.last_order_at),
        iso_time(row.last_contact_at),
    ]
}

/// The CSV columns, from the first, that hold imported text (id to owner name).
const TEXT_COLUMNS: usize = 7;

/// A text cell a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab
/// or a carriage return), made inert by a leading `'` (OWASP's advice for CSV injection);
/// `None` when the cell is safe as it is.
#[must_use]
pub fn formula_safe(cell: &str) -> Option<String> {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
        .then(|| format!("'{cell}"))
}

/// Writes rows as CSV (RFC 4180: a header row, fields quoted when needed, CRLF line ends).
/// Text cells a spreadsheet would run as a formula are prefixed with `'` ([`formula_safe`]).
pub fn write_csv(
    rows: &[CustomerRow],
    header: bool,
    writer: impl io::Write,
) -> Result<(), csv::Error> {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(writer);
    if header {
        csv.write_record(CSV_HEADER)?;
    }
    for row in rows {
        let mut record = csv_record(row);
        // The text columns hold what was imported; the figures and times are ours.
        for cell in &mut record[..TEXT_COLUMNS] {
            if let Some(safe) = formula_safe(cell) {
                *cell = safe;
            }
        }
        csv.write_record(record)?;
    }
    csv.flush()?;
    Ok(())
}

/// One row as a JSON object (JSON Lines output): the CSV's fields with times as RFC 3339,
/// segments as a map, and the scores and custom attributes.
#[must_use]
pub fn json_record(row: &CustomerRow) -> serde_json::Value {
    let segments: serde_json::Map<String, serde_json::Value> = row
        .segments
        .iter()
        .map(|(set, segment)| (set.clone(), serde_json::Value::from(segment.as_str())))
        .collect();
    let time = |t: Option<i64>| t.map(|t| iso_time(Some(t)));
    serde_json::json!({
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "tier": row.tier,
        "segments": segments,
        "owner": row.owner,
        "owner_name": row.owner_name,
        "orders_total": row.orders_total,
        "revenue_total": row.revenue_total,
        "last_order_at": time(row.last_order_at),
        "last_contact_at": time(row.last_contact_at),
        "scores": row.scores,
        "attributes": row.attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, revenue: f64) -> CustomerRow {
        CustomerRow {
            rowid: 1,
            id: id.to_owned(),
            name: Some(name.to_owned()),
            email: Some("@home@example.com".to_owned()),
            tier: Some("A".to_owned()),
            segments: vec![("life".to_owned(), "+new".to_owned())],
            owner: Some("m1".to_owned()),
            owner_name: Some("-Mo".to_owned()),
            orders_total: 2,
            revenue_total: revenue,
            last_order_at: None,
            last_contact_at: None,
            scores: serde_json::Map::new(),
            attributes: serde_json::Map::new(),
        }
    }

    #[test]
    fn csv_text_cells_that_a_spreadsheet_would_run_are_made_inert_and_figures_are_kept() {
        let mut out = Vec::new();
        write_csv(
            &[row("=HYPERLINK(\"x\")", "\tTab, \"quoted\"", -12.5)],
            true,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(
            lines[1],
            "\"'=HYPERLINK(\"\"x\"\")\",\"'\tTab, \"\"quoted\"\"\",'@home@example.com,A,\
             life=+new,m1,'-Mo,2,-12.50,,"
        );
        assert_eq!(formula_safe("Ada"), None);
        assert_eq!(formula_safe("+1").as_deref(), Some("'+1"));
    }
}
