//! The customer list (`tiercare customers`): customers with their stored tier, segments, owner
//! and a few key figures, filtered in SQL by tier, segment, owner, last contact and attribute.
//!
//! Filters that need the rules' features (`--where`) are applied by the scheduler on top of
//! these rows; the store only reads.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The shortest search (in characters) the trigram index `customers_search` can answer: a
/// shorter one has no trigram, so it reads the customers one by one (in id order, stopping
/// when a page is full).
pub const MIN_INDEXED_SEARCH: usize = 3;

/// The full-text query of `search` for the trigram index: every distinct run of 3 characters
/// of it, each quoted, all required (`"abc" AND "bcd"`); `None` when it is shorter than
/// [`MIN_INDEXED_SEARCH`].
fn trigram_query(search: &str) -> Option<String> {
    let chars: Vec<char> = search.chars().collect();
    let mut trigrams: Vec<String> = Vec::new();
    for window in chars.windows(MIN_INDEXED_SEARCH) {
        let trigram: String = window.iter().collect();
        let trigram = format!("\"{}\"", trigram.replace('"', "\"\""));
        if !trigrams.contains(&trigram) {
            trigrams.push(trigram);
        }
    }
    (!trigrams.is_empty()).then(|| trigrams.join(" AND "))
}

/// What to list: every filter that is set must hold (an empty query lists every customer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Customers whose current tier is one of these (none: any tier, or none).
    pub tiers: Vec<String>,
    /// Customers in one of these segments, each `SEGMENT` (in any segment set) or
    /// `SET=SEGMENT`.
    pub segments: Vec<String>,
    /// Customers owned by this manager, given by external id or by name.
    pub owner: Option<String>,
    /// Customers with no interaction at or after this time (unix seconds), never contacted
    /// included.
    pub not_contacted_since: Option<i64>,
    /// Customers with an interaction at or after this time (unix seconds).
    pub contacted_since: Option<i64>,
    /// Customers whose custom attribute `name` (the first) equals `value` (the second), compared
    /// as text (`true`/`false` for booleans).
    pub attribute: Option<(String, String)>,
    /// Customers whose external id, name or e-mail address contains this text (ignoring
    /// ASCII case). From `MIN_INDEXED_SEARCH` characters on, the trigram index finds them;
    /// a shorter text reads the customers in order until the page is full.
    pub search: Option<String>,
    /// Only customers owned by exactly this manager (external id): a signed-in manager's
    /// scope, which a manager of that name cannot widen the way `owner` would.
    pub scope_owner: Option<String>,
}

/// One customer of the list, from [`Store::list_customers`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CustomerRow {
    /// The customer's row id (internal; the key of features).
    #[serde(skip)]
    pub rowid: i64,
    /// The customer's external id.
    pub id: String,
    /// Name (`None` when not given or erased).
    pub name: Option<String>,
    /// E-mail address (`None` when not given or erased).
    pub email: Option<String>,
    /// The current tier (`None`: never assessed).
    pub tier: Option<String>,
    /// The current segment in each segment set: `(set, segment)`, sorted by set.
    pub segments: Vec<(String, String)>,
    /// The owning manager's external id.
    pub owner: Option<String>,
    /// The owning manager's name, when the manager is known.
    pub owner_name: Option<String>,
    /// Orders ever placed (refunds, orders with a negative amount, are not orders).
    pub orders_total: i64,
    /// Sum of every order's amount, refunds subtracted.
    pub revenue_total: f64,
    /// Time (unix seconds) of the latest order (refunds aside).
    pub last_order_at: Option<i64>,
    /// Time (unix seconds) of the latest interaction.
    pub last_contact_at: Option<i64>,
    /// The scores of the latest assessment that decided about the customer.
    pub scores: serde_json::Map<String, serde_json::Value>,
    /// Custom attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Parses a JSON object column, empty when it is not one.
fn json_object(text: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

impl Store {
    /// Every customer `query` accepts, in row id (import) order, in one read transaction.
    ///
    /// One statement: the filters that are set become its conditions (the owner filter uses
    /// the `customers_by_owner` index), the key figures are read per listed customer through
    /// the orders' and interactions' customer indexes.
    pub fn list_customers(&self, query: &CustomerQuery) -> Result<Vec<CustomerRow>, StoreError> {
        self.select_customers(query, None, None)
    }

    /// One page of the customers `query` accepts, in row id (import) order: at most `limit`
    /// customers after the customer with external id `after` (from the first when `None`).
    ///
    /// Keyset paging: the statement walks the customers (or the owner index) from `after`
    /// and stops after `limit` matches, so a page costs the same on page 1 and page 20,000,
    /// and nothing counts or sorts the whole table. An `after` that names no customer lists
    /// nobody.
    pub fn list_customers_after(
        &self,
        query: &CustomerQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CustomerRow>, StoreError> {
        self.select_customers(query, Some(after), Some(limit))
    }

    /// The one customer-list statement behind [`Store::list_customers`] and
    /// [`Store::list_customers_after`]: only the conditions of the filters that are set are
    /// written into it, so SQLite can use an index for each.
    fn select_customers(
        &self,
        query: &CustomerQuery,
        after: Option<Option<&str>>,
        limit: Option<usize>,
    ) -> Result<Vec<CustomerRow>, StoreError> {
        let (sql, values) = select_sql(query, after, limit);
        let mut stmt = self.conn.prepare_cached(&sql).at(&self.label)?;
        let rows = stmt
            .query_map(params_from_iter(values), |row| {
                let scores: String = row.get(11)?;
                let attributes: String = row.get(12)?;
                let segments: String = row.get(13)?;
                let mut segments: Vec<(String, String)> =
                    serde_json::from_str(&segments).unwrap_or_default();
                segments.sort();
                Ok(CustomerRow {
                    rowid: row.get(0)?,
                    id: row.get(1)?,
                    name: row.get(2)?,
                    email: row.get(3)?,
                    tier: row.get(4)?,
                    owner: row.get(5)?,
                    owner_name: row.get(6)?,
                    orders_total: row.get(7)?,
                    revenue_total: row.get(8)?,
                    last_order_at: row.get(9)?,
                    last_contact_at: row.get(10)?,
                    scores: json_object(&scores),
                    attributes: json_object(&attributes),
                    segments,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .at(&self.label)?;
        Ok(rows)
    }
}

/// The statement of [`Store::list_customers`] and [`Store::list_customers_after`] and its
/// values: only the conditions of the filters that are set are written into it, so SQLite
/// can use an index for each.
fn select_sql(
    query: &CustomerQuery,
    after: Option<Option<&str>>,
    limit: Option<usize>,
) -> (String, Vec<Value>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    // Binds a value and returns its placeholder.
    let mut bind = |value: Value| {
        values.push(value);
        format!("?{}", values.len())
    };
    if !query.tiers.is_empty() {
        // Lists travel as JSON arrays, read by json_each: one statement for any number.
        let tiers = bind(Value::Text(serde_json::json!(query.tiers).to_string()));
        conditions.push(format!("t.tier IN (SELECT value FROM json_each({tiers}))"));
    }
    if !query.segments.is_empty() {
        let segments = bind(Value::Text(serde_json::json!(query.segments).to_string()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM customer_segments s, json_each({segments}) w \
                  WHERE s.customer_id = c.id \
                    AND (s.segment = w.value OR s.segment_set || '=' || s.segment = w.value))"
        ));
    }
    if let Some(owner) = &query.owner {
        let owner = bind(Value::Text(owner.clone()));
        conditions.push(format!(
            "c.owner IN (SELECT {owner} UNION SELECT m.external_id FROM managers m \
                  WHERE m.name = {owner})"
        ));
    }
    if let Some(scope) = &query.scope_owner {
        let scope = bind(Value::Text(scope.clone()));
        conditions.push(format!("c.owner = {scope}"));
    }
    if let Some(since) = query.not_contacted_since {
        let since = bind(Value::Integer(since));
        conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM interactions i \
                  WHERE i.customer_id = c.id AND i.occurred_at >= {since})"
        ));
    }
    if let Some(since) = query.contacted_since {
        let since = bind(Value::Integer(since));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM interactions i \
                  WHERE i.customer_id = c.id AND i.occurred_at >= {since})"
        ));
    }
    if let Some((name, value)) = &query.attribute {
        let path = bind(Value::Text(format!("$.\"{}\"", name.replace('"', "\\\""))));
        let value = bind(Value::Text(value.clone()));
        conditions.push(format!(
            "CASE json_type(c.attributes, {path}) \
                   WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                   ELSE CAST(json_extract(c.attributes, {path}) AS TEXT) END = {value}"
        ));
    }
    // The customers in id order: the table itself, or, for a search the trigram index
    // can serve, the index's hits in row id order (it walks them lazily, so a page stops
    // after `limit` matches there too).
    let mut source = "customers c";
    let mut key = "c.id";
    if let Some(search) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|search| !search.is_empty())
    {
        if let Some(trigrams) = trigram_query(search) {
            // The customers with every trigram of the text: a superset of those whose text
            // holds it (anywhere, in any column, and case folded beyond ASCII); the
            // condition below keeps exactly the substring matches.
            let trigrams = bind(Value::Text(trigrams));
            conditions.push(format!("f.customers_search MATCH {trigrams}"));
            source = "customers_search f CROSS JOIN customers c ON c.id = f.rowid";
            key = "f.rowid";
        }
        // A substring of the external id, the name or the address, ignoring ASCII case
        // (SQLite's lower()).
        let search = bind(Value::Text(search.to_owned()));
        conditions.push(format!(
            "(instr(lower(c.external_id), lower({search})) > 0 \
                  OR instr(lower(c.name), lower({search})) > 0 \
                  OR instr(lower(c.email), lower({search})) > 0)"
        ));
    }
    if let Some(Some(after)) = after {
        let after = bind(Value::Text(after.to_owned()));
        conditions.push(format!(
            "{key} > (SELECT a.id FROM customers a WHERE a.external_id = {after})"
        ));
    }
    let limit = match limit {
        Some(limit) => format!(
            " LIMIT {}",
            bind(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)))
        ),
        None => String::new(),
    };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT c.id, c.external_id, c.name, c.email, t.tier, c.owner, \
                    (SELECT m.name FROM managers m WHERE m.external_id = c.owner), \
                    (SELECT count(*) FROM orders o WHERE o.customer_id = c.id AND o.amount >= 0), \
                    (SELECT total(o.amount) FROM orders o WHERE o.customer_id = c.id), \
                    (SELECT max(o.ordered_at) FROM orders o \
                      WHERE o.customer_id = c.id AND o.amount >= 0), \
                    (SELECT max(i.occurred_at) FROM interactions i WHERE i.customer_id = c.id), \
                    coalesce(t.scores, '{{}}'), c.attributes, \
                    (SELECT json_group_array(json_array(s.segment_set, s.segment)) \
                       FROM customer_segments s WHERE s.customer_id = c.id) \
             FROM {source} LEFT JOIN customer_tiers t ON t.customer_id = c.id\
             {filter} ORDER BY {key}{limit}"
    );
    (sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerRecord, ImportAudit, ImportKind, ImportOptions};

    /// A store with customers C01..C{n}: every third owned by `m2`, the rest by `m1`; names
    /// `Name {i}` and addresses `c{i}@example.com`, plus one `Zoë Ärger`.
    fn store_with(n: u64) -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        for i in 1..=n {
            let record = CustomerRecord {
                external_id: format!("C{i:02}"),
                name: Some(if i == 5 {
                    "Zoë Ärger".to_owned()
                } else {
                    format!("Name {i}")
                }),
                email: Some(format!("c{i}@Example.com")),
                owner: Some(if i % 3 == 0 { "m2" } else { "m1" }.to_owned()),
                ..CustomerRecord::default()
            };
            session.customer(i + 1, &record).unwrap();
        }
        session.commit(&ImportAudit::default()).unwrap();
        store
    }

    fn ids(rows: &[CustomerRow]) -> Vec<&str> {
        rows.iter().map(|row| row.id.as_str()).collect()
    }

    /// The ids a search for `text` lists, in order.
    fn search(store: &Store, text: &str) -> Vec<String> {
        let query = CustomerQuery {
            search: Some(text.to_owned()),
            ..CustomerQuery::default()
        };
        ids(&store.list_customers(&query).unwrap())
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_search_finds_a_substring_of_the_id_the_name_or_the_address_ignoring_case() {
        let store = store_with(12);
        let search = |text: &str| search(&store, text);
        assert_eq!(search("c1"), ["C01", "C10", "C11", "C12"]);
        assert_eq!(search("NAME 1"), ["C01", "C10", "C11", "C12"]);
        assert_eq!(search("c7@example.COM"), ["C07"]);
        assert_eq!(search("Zoë"), ["C05"]);
        assert_eq!(search("100%"), Vec::<String>::new());
        // Blank is no filter.
        assert_eq!(search("  ").len(), 12);
    }

    /// What the search promised before the trigram index, computed apart from SQLite: the
    /// ids of the customers whose id, name or address contains `text` once both are lowered
    /// in ASCII only (SQLite's `lower()`), in row id order.
    fn substring_matches(customers: &[CustomerRecord], text: &str) -> Vec<String> {
        let text = text.trim().to_ascii_lowercase();
        customers
            .iter()
            .filter(|c| {
                [Some(&c.external_id), c.name.as_ref(), c.email.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|field| field.to_ascii_lowercase().contains(&text))
            })
            .map(|c| c.external_id.clone())
            .collect()
    }

    /// 3,000 customers with Chinese, accented and plain names (some in capitals, some
    /// missing), in a store.
    fn mixed_customers() -> (Store, Vec<CustomerRecord>) {
        let surnames = [
            "王", "李", "张", "刘", "陈", "欧阳", "Zoë", "ÄRGER", "Smith", "o'Brien",
        ];
        let given = [
            "伟",
            "芳",
            "小明",
            "秀英",
            "Ada",
            "ZOË",
            "jürgen",
            "Ann-Marie",
            "\"Q\"",
            "Lü",
        ];
        let mut customers = Vec::new();
        for i in 0..3_000_usize {
            let name = match i % 13 {
                0 => None,
                _ => Some(format!(
                    "{}{}{}",
                    surnames[i % surnames.len()],
                    if i % 3 == 0 { " " } else { "" },
                    given[(i / 7) % given.len()]
                )),
            };
            let email = (i % 11 != 0).then(|| {
                format!(
                    "{}{i}@{}",
                    ["wang", "Li", "ZOE", "smith"][i % 4],
                    ["Example.com", "qq.com", "例子.中国"][i % 3]
                )
            });
            customers.push(CustomerRecord {
                external_id: format!("K{i:05}"),
                name,
                email,
                ..CustomerRecord::default()
            });
        }
        let mut store = Store::open_in_memory().unwrap();
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        for (line, record) in (2..).zip(&customers) {
            session.customer(line, record).unwrap();
        }
        session.commit(&ImportAudit::default()).unwrap();
        (store, customers)
    }

    #[test]
    fn the_indexed_search_finds_exactly_the_case_insensitive_substring_matches() {
        let (store, customers) = mixed_customers();
        let queries = [
            "王",
            "欧阳",
            "王小明",
            "李 秀英",
            "阳小",
            "例子.中",
            "子.中国",
            "zoë",
            "ZOË",
            "Zoë",
            "ärger",
            "ÄRGER",
            "jürgen",
            "JÜRGEN",
            "lü",
            "LÜ",
            "smith1",
            "SMITH",
            "@qq.com",
            "@example.COM",
            "k0012",
            "K02999",
            "\"q\"",
            "o'b",
            "O'BRIEN",
            "ann-",
            "n-m",
            "%",
            "_",
            "a_a",
            "1%",
            "  ada  ",
            "nobody here",
            "@",
            ".",
            "wang3",
            "zoe2",
        ];
        for text in queries {
            let query = CustomerQuery {
                search: Some(text.to_owned()),
                ..CustomerQuery::default()
            };
            let expected = substring_matches(&customers, text);
            let found: Vec<String> = store
                .list_customers(&query)
                .unwrap()
                .into_iter()
                .map(|row| row.id)
                .collect();
            assert_eq!(found, expected, "search {text:?}");
            // Paged, the same customers in the same order.
            let mut paged = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list_customers_after(&query, after.as_deref(), 97)
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                paged.extend(page.into_iter().map(|row| row.id));
            }
            assert_eq!(paged, expected, "search {text:?}, paged");
        }
        // Not a vacuous comparison: most of the queries find someone.
        assert!(!substring_matches(&customers, "王小明").is_empty());
        assert!(!substring_matches(&customers, "ÄRGER").is_empty());
        // ASCII-only case folding, as before: a capital Ä is not an ä.
        assert!(substring_matches(&customers, "ärger").is_empty());
    }

    #[test]
    fn a_search_of_three_characters_or_more_reads_the_trigram_index() {
        let store = store_with(3);
        let plan = |search: &str| -> String {
            let query = CustomerQuery {
                search: Some(search.to_owned()),
                ..CustomerQuery::default()
            };
            let (sql, values) = select_sql(&query, None, Some(50));
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            stmt.query_map(params_from_iter(values), |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("\n")
        };
        let indexed = plan("name 2");
        assert!(indexed.contains("VIRTUAL TABLE INDEX"), "{indexed}");
        assert!(!indexed.contains("SCAN c"), "{indexed}");
        assert!(!indexed.contains("USE TEMP B-TREE"), "{indexed}");
        let short = plan("c2");
        assert!(!short.contains("VIRTUAL TABLE"), "{short}");
    }

    /// Where `needle` occurs in `haystack`.
    fn find(haystack: &[u8], needle: &str) -> Option<usize> {
        haystack
            .windows(needle.len())
            .position(|window| window == needle.as_bytes())
    }

    #[test]
    fn a_forgotten_customer_leaves_no_trigram_in_the_search_index_or_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiercare.db");
        let mut store = Store::create(&path).unwrap();
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        // Letters no other text of the file has, so these trigrams of the name can only be
        // the index's entries for it.
        let forgotten = CustomerRecord {
            external_id: "C1".to_owned(),
            name: Some("Xyzzy Qwfpgj".to_owned()),
            email: Some("vkvkv@jjjj.example".to_owned()),
            ..CustomerRecord::default()
        };
        let other = CustomerRecord {
            external_id: "C2".to_owned(),
            name: Some("Ada Lovelace".to_owned()),
            email: Some("ada@example.com".to_owned()),
            ..CustomerRecord::default()
        };
        session.customer(2, &forgotten).unwrap();
        session.customer(3, &other).unwrap();
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(search(&store, "zzy qw"), ["C1"]);
        // Trigrams an index page stores in full (their first letter begins no other term).
        let trigrams = ["qwf", "wfp", "fpg", "pgj"];
        store
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        // The test can see the index's entries: they are in the file before.
        for trigram in trigrams {
            assert!(find(&before, trigram).is_some(), "{trigram} before forget");
        }

        let report = store.forget_customer("C1", "test", 100).unwrap();
        assert!(report.wal_truncated);
        assert!(search(&store, "zzy qw").is_empty());
        assert!(search(&store, "vkvkv").is_empty());
        assert_eq!(search(&store, "lovelace"), ["C2"]);
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let file = std::fs::read(&path).unwrap();
        let wal = std::fs::read(wal).unwrap_or_default();
        for trigram in trigrams {
            assert_eq!(find(&file, trigram), None, "tiercare.db holds {trigram:?}");
            assert_eq!(find(&wal, trigram), None, "the WAL holds {trigram:?}");
        }
        assert!(
            find(&file, "ove").is_some(),
            "the other customer stays indexed"
        );
    }

    #[test]
    fn pages_after_a_customer_walk_the_list_in_id_order_without_gaps_or_repeats() {
        let store = store_with(12);
        let query = CustomerQuery {
            owner: Some("m1".to_owned()),
            ..CustomerQuery::default()
        };
        let all = store.list_customers(&query).unwrap();
        assert_eq!(all.len(), 8);
        let mut walked = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_customers_after(&query, after.as_deref(), 3)
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().map(|row| row.id.clone());
            walked.extend(page);
        }
        assert_eq!(walked, all);
        // A manager's scope is the exact id, whatever the owner filter says.
        let scoped = CustomerQuery {
            scope_owner: Some("m2".to_owned()),
            ..CustomerQuery::default()
        };
        assert_eq!(
            ids(&store.list_customers(&scoped).unwrap()),
            ["C03", "C06", "C09", "C12"]
        );
        let both = CustomerQuery {
            scope_owner: Some("m2".to_owned()),
            ..query.clone()
        };
        assert!(store.list_customers(&both).unwrap().is_empty());
        // An unknown cursor lists nobody rather than starting again.
        assert!(
            store
                .list_customers_after(&query, Some("nobody"), 3)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_page_of_one_owner_uses_the_owner_index_and_stops_at_its_limit() {
        let store = store_with(3);
        let plan: Vec<String> = store
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT c.id FROM customers c \
                 WHERE c.owner IN (SELECT 'm1' UNION SELECT m.external_id FROM managers m \
                 WHERE m.name = 'm1') ORDER BY c.id LIMIT 5",
            )
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("customers_by_owner")),
            "{plan:?}"
        );
    }

    #[test]
    fn an_empty_database_lists_nobody() {
        let store = Store::open_in_memory().unwrap();
        assert!(
            store
                .list_customers(&CustomerQuery::default())
                .unwrap()
                .is_empty()
        );
    }
}
