//! The staff customers list, `/staff/customers`: the filters of `tiercare customers` (search,
//! tier, segment, owner, sort) over the same scheduler call ([`customer_page`]), paged by
//! keyset in id order, and its CSV export `/staff/customers.csv` (the CLI's `--csv`, through
//! the same [`write_csv`]).
//!
//! A manager sees only their own customers: the scope is added on the server
//! ([`CustomerQuery::scope_owner`]), whatever the query string says.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use tiercare_scheduler::customers::{
    CustomerPage, ListError, ListOptions, NextPage, SORT_COLUMNS, csv_record, customer_page,
    list_customers, write_csv,
};
use tiercare_scheduler::html::escape;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{CustomerQuery, CustomerRow, Store};

use super::customer_texts::{CustomerTexts, texts};
use super::{Nav, Staff, blocking, frame};
use crate::AppState;

/// Customers per page.
pub const PAGE_SIZE: usize = 50;

/// The list's filters, as its query string carries them (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilters {
    /// `q`: a substring of the id, the name or the address.
    pub search: String,
    /// `tier`: one tier.
    pub tier: String,
    /// `segment`: `SEGMENT` or `SET=SEGMENT`.
    pub segment: String,
    /// `owner`: a manager's id or name (ignored for a manager, who sees their own).
    pub owner: String,
    /// `sort`: a column of [`SORT_COLUMNS`], `-` before it for descending; empty for id order.
    pub sort: String,
    /// `after`: the page starts after this customer (id order).
    pub after: Option<String>,
    /// `offset`: the page starts after this many customers (sorted lists).
    pub offset: usize,
}

impl ListFilters {
    /// The filters of a query string (`None`: no query string). Unknown keys are ignored.
    #[must_use]
    pub fn parse(query: Option<&str>) -> Self {
        let mut filters = ListFilters::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim().to_owned();
            match key.as_ref() {
                "q" => filters.search = value,
                "tier" => filters.tier = value,
                "segment" => filters.segment = value,
                "owner" => filters.owner = value,
                "sort" => filters.sort = value,
                "after" if !value.is_empty() => filters.after = Some(value),
                "offset" => filters.offset = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        filters
    }

    /// Whether the sort names a column the list can sort by (empty: id order).
    #[must_use]
    pub fn sort_is_known(&self) -> bool {
        let column = self.sort.strip_prefix('-').unwrap_or(&self.sort);
        self.sort.is_empty() || SORT_COLUMNS.contains(&column)
    }

    /// The scheduler's list options for these filters: `scope` is the signed-in manager's id
    /// (their customers only), `at` the time of the figures.
    #[must_use]
    pub fn options(&self, scope: Option<&str>, at: i64) -> ListOptions {
        let some = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        ListOptions {
            query: CustomerQuery {
                tiers: some(&self.tier).into_iter().collect(),
                segments: some(&self.segment).into_iter().collect(),
                owner: if scope.is_some() {
                    None
                } else {
                    some(&self.owner)
                },
                search: some(&self.search),
                scope_owner: scope.map(str::to_owned),
                ..CustomerQuery::default()
            },
            condition: None,
            sort: some(&self.sort),
            at,
            offset: if self.after.is_some() { 0 } else { self.offset },
            limit: None,
        }
    }

    /// The query string of these filters (without paging), `&`-joined and encoded.
    #[must_use]
    pub fn query_string(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", &self.search),
            ("tier", &self.tier),
            ("segment", &self.segment),
            ("owner", &self.owner),
            ("sort", &self.sort),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        query.finish()
    }

    /// The query string of the page `next`, with these filters.
    #[must_use]
    pub fn page_query(&self, next: &NextPage) -> String {
        let mut query = self.query_string();
        let mut pair = form_urlencoded::Serializer::new(String::new());
        match next {
            NextPage::After(id) => pair.append_pair("after", id),
            NextPage::Offset(offset) => pair.append_pair("offset", &offset.to_string()),
        };
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&pair.finish());
        query
    }
}

/// One page of the list for `filters`, scoped to the manager `scope` if any.
///
/// # Errors
/// The scheduler's [`ListError`] (an unreadable rule set for a sort, the database).
pub fn load_page(
    workspace: &Workspace,
    store: &Store,
    filters: &ListFilters,
    scope: Option<&str>,
    at: i64,
) -> Result<CustomerPage, ListError> {
    customer_page(
        workspace,
        store,
        &filters.options(scope, at),
        filters.after.as_deref(),
        PAGE_SIZE,
    )
}

/// Every customer `filters` match (no paging), scoped to `scope`, as the CLI's `--csv` writes
/// them.
///
/// # Errors
/// The scheduler's [`ListError`] (writing to memory cannot fail).
pub fn export_csv(
    workspace: &Workspace,
    store: &Store,
    filters: &ListFilters,
    scope: Option<&str>,
    at: i64,
) -> Result<Vec<u8>, ListError> {
    let options = ListOptions {
        offset: 0,
        ..filters.options(scope, at)
    };
    let list = list_customers(workspace, store, &options)?;
    let mut buffer = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_csv(&list.rows, true, &mut buffer);
    Ok(buffer)
}

/// A path segment: `text` with everything but unreserved characters percent-encoded.
#[must_use]
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The link of a customer's page.
#[must_use]
pub fn customer_href(id: &str) -> String {
    format!("/staff/customers/{}", path_segment(id))
}

/// What the list page shows besides its rows.
pub struct ListView<'a> {
    /// The filters asked for.
    pub filters: &'a ListFilters,
    /// The rule set's tiers (for the tier choice).
    pub tiers: &'a [String],
    /// Whether the owner filter is offered (not for a manager: they see their own).
    pub owner_filter: bool,
    /// A problem with the filters, shown above the table.
    pub problem: Option<String>,
}

fn selected(on: bool) -> &'static str {
    if on { " selected" } else { "" }
}

/// The body of the list page (the frame adds the title and navigation).
#[must_use]
pub fn render_list(texts: &CustomerTexts, view: &ListView<'_>, page: &CustomerPage) -> String {
    let filters = view.filters;
    let mut html = String::new();
    // The filters: a GET form, so a filtered list is a link.
    let _ = write!(
        html,
        "<form class=\"inline filters\" method=\"get\" action=\"/staff/customers\" role=\"search\">\n\
         <div class=\"field\"><label for=\"f-q\">{search}</label>\
         <input id=\"f-q\" name=\"q\" type=\"search\" value=\"{q}\"></div>\n\
         <div class=\"field\"><label for=\"f-tier\">{tier}</label>\
         <select id=\"f-tier\" name=\"tier\"><option value=\"\">{any}</option>",
        search = escape(texts.search),
        q = escape(&filters.search),
        tier = escape(texts.tier),
        any = escape(texts.any),
    );
    for tier in view.tiers {
        let _ = write!(
            html,
            "<option value=\"{v}\"{s}>{v}</option>",
            v = escape(tier),
            s = selected(*tier == filters.tier)
        );
    }
    if !filters.tier.is_empty() && !view.tiers.contains(&filters.tier) {
        let _ = write!(
            html,
            "<option value=\"{v}\" selected>{v}</option>",
            v = escape(&filters.tier)
        );
    }
    let _ = write!(
        html,
        "</select></div>\n\
         <div class=\"field\"><label for=\"f-segment\">{segment}</label>\
         <input id=\"f-segment\" name=\"segment\" value=\"{segment_value}\"></div>\n",
        segment = escape(texts.segment),
        segment_value = escape(&filters.segment),
    );
    if view.owner_filter {
        let _ = writeln!(
            html,
            "<div class=\"field\"><label for=\"f-owner\">{owner}</label>\
             <input id=\"f-owner\" name=\"owner\" value=\"{value}\"></div>",
            owner = escape(texts.owner),
            value = escape(&filters.owner),
        );
    }
    let _ = write!(
        html,
        "<div class=\"field\"><label for=\"f-sort\">{sort}</label>\
         <select id=\"f-sort\" name=\"sort\"><option value=\"\">{by_id}</option>",
        sort = escape(texts.sort),
        by_id = escape(texts.sort_default),
    );
    for column in SORT_COLUMNS.iter().skip(1) {
        for descending in [false, true] {
            let value = if descending {
                format!("-{column}")
            } else {
                (*column).to_owned()
            };
            let _ = write!(
                html,
                "<option value=\"{value}\"{s}>{label} {arrow}</option>",
                s = selected(value == filters.sort),
                label = escape(texts.column(column)),
                arrow = if descending { "↓" } else { "↑" },
            );
        }
    }
    let _ = write!(
        html,
        "</select></div>\n<div class=\"field\"><button type=\"submit\">{apply}</button></div>\n\
         </form>\n",
        apply = escape(texts.apply),
    );
    if let Some(problem) = &view.problem {
        let _ = writeln!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let csv = filters.query_string();
    let _ = writeln!(
        html,
        "<p class=\"actions\"><a href=\"/staff/customers.csv{q}{csv}\" download>{export}</a></p>",
        q = if csv.is_empty() { "" } else { "?" },
        csv = escape(&csv),
        export = escape(texts.export_csv),
    );
    if page.rows.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.no_customers));
    } else {
        render_table(texts, &page.rows, &mut html);
    }
    // Paging: the first page and the next one.
    let mut links = Vec::new();
    if filters.after.is_some() || filters.offset > 0 {
        let first = filters.query_string();
        links.push(format!(
            "<a href=\"/staff/customers{q}{first}\">{label}</a>",
            q = if first.is_empty() { "" } else { "?" },
            first = escape(&first),
            label = escape(texts.first_page),
        ));
    }
    if let Some(next) = &page.next {
        links.push(format!(
            "<a href=\"/staff/customers?{}\" rel=\"next\">{}</a>",
            escape(&filters.page_query(next)),
            escape(texts.next_page),
        ));
    }
    if !links.is_empty() {
        let _ = writeln!(
            html,
            "<nav class=\"pages\" aria-label=\"{}\">{}</nav>",
            escape(texts.pages),
            links.join(" ")
        );
    }
    html
}

/// The table of rows; every cell escaped, each row a link to the customer's page.
fn render_table(texts: &CustomerTexts, rows: &[CustomerRow], html: &mut String) {
    // The CSV's columns, but the owner's id: its name (or id) is shown.
    const SHOWN: [usize; 10] = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10];
    let _ = write!(
        html,
        "<div class=\"table\"><table class=\"stack customers\" aria-label=\"{}\">\n<thead><tr>",
        escape(texts.customers_caption)
    );
    for column in SHOWN {
        let _ = write!(
            html,
            "<th scope=\"col\">{}</th>",
            escape(texts.column(tiercare_scheduler::customers::CSV_HEADER[column]))
        );
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        let mut record = csv_record(row);
        if record[6].is_empty() {
            record[6] = record[5].clone();
        }
        // Dates, not times, in the table.
        for time in [9, 10] {
            record[time].truncate(10);
        }
        html.push_str("<tr>");
        for (position, column) in SHOWN.into_iter().enumerate() {
            let label = escape(texts.column(tiercare_scheduler::customers::CSV_HEADER[column]));
            if position == 0 {
                let _ = write!(
                    html,
                    "<td data-label=\"{label}\"><a href=\"{}\">{}</a></td>",
                    escape(&customer_href(&row.id)),
                    escape(&record[0])
                );
            } else {
                let _ = write!(
                    html,
                    "<td data-label=\"{label}\">{}</td>",
                    escape(&record[column])
                );
            }
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></div>\n");
}

/// The list's routes: the page and its CSV export.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/customers", get(list_page))
        .route("/staff/customers.csv", get(list_csv))
}

/// The error page of a server started without its workspace (the staff pages read its rules).
pub(crate) fn no_workspace(staff: &Staff) -> Response {
    frame::page_with_status(
        staff,
        StatusCode::SERVICE_UNAVAILABLE,
        Nav::None,
        staff.t("Not available", "不可用"),
        &frame::paragraph(staff.t(
            "This server was started without its workspace: start it with `tiercare serve`.",
            "此服务器启动时没有工作区：请用 `tiercare serve` 启动。",
        )),
    )
}

/// `GET /staff/customers`.
async fn list_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(workspace) = state.workspace().cloned() else {
        return no_workspace(&staff);
    };
    let filters = ListFilters::parse(query.as_deref());
    let scope = staff.owner_scope().map(str::to_owned);
    let work_filters = filters.clone();
    let cache = Arc::clone(&state);
    let loaded = blocking(&state, staff.lang, move |store, now| {
        let tiers = cache
            .rules()
            .get(&workspace)
            .map(|rules| rules.tiers.clone())
            .unwrap_or_default();
        let mut filters = work_filters;
        let mut problem = None;
        if !filters.sort_is_known() {
            filters.sort.clear();
            problem = Some(());
        }
        let page = load_page(&workspace, store, &filters, scope.as_deref(), now)?;
        Ok::<_, ListError>((tiers, page, problem))
    })
    .await;
    let (tiers, page, problem) = match loaded {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let texts = texts(staff.lang);
    let view = ListView {
        filters: &filters,
        tiers: &tiers,
        owner_filter: staff.owner_scope().is_none(),
        problem: problem.map(|()| texts.unknown_sort.to_owned()),
    };
    frame::page(
        &staff,
        Nav::Customers,
        texts.customers_title,
        &render_list(texts, &view, &page),
    )
}

/// `GET /staff/customers.csv`: every customer the filters match (a manager's own), as the
/// CLI's `tiercare customers --csv` writes them.
async fn list_csv(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(workspace) = state.workspace().cloned() else {
        return no_workspace(&staff);
    };
    let mut filters = ListFilters::parse(query.as_deref());
    if !filters.sort_is_known() {
        filters.sort.clear();
    }
    let scope = staff.owner_scope().map(str::to_owned);
    match blocking(&state, staff.lang, move |store, now| {
        export_csv(&workspace, store, &filters, scope.as_deref(), now)
    })
    .await
    {
        Ok(csv) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"customers.csv\""),
                ),
            ],
            csv,
        )
            .into_response(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiercare_scheduler::http_config::PageLanguage;

    fn row(id: &str, name: &str) -> CustomerRow {
        CustomerRow {
            rowid: 1,
            id: id.to_owned(),
            name: Some(name.to_owned()),
            email: Some("ada@example.com".to_owned()),
            tier: Some("A".to_owned()),
            segments: Vec::new(),
            owner: Some("m1".to_owned()),
            owner_name: None,
            orders_total: 1,
            revenue_total: 10.0,
            last_order_at: Some(1_700_000_000),
            last_contact_at: None,
            scores: serde_json::Map::new(),
            attributes: serde_json::Map::new(),
        }
    }

    #[test]
    fn filters_round_trip_through_the_query_string_and_a_manager_is_scoped() {
        let filters = ListFilters::parse(Some(
            "q=Ada+L%C3%B6&tier=A&segment=life%3Dnew&owner=m2&sort=-revenue_total&offset=50&x=1",
        ));
        assert_eq!(filters.search, "Ada Lö");
        assert_eq!(filters.segment, "life=new");
        assert!(filters.sort_is_known());
        assert_eq!(
            ListFilters::parse(Some(&filters.query_string())).search,
            "Ada Lö"
        );
        let admin = filters.options(None, 5);
        assert_eq!(admin.query.owner.as_deref(), Some("m2"));
        assert_eq!(admin.query.scope_owner, None);
        assert_eq!(admin.offset, 50);
        let manager = filters.options(Some("m1"), 5);
        assert_eq!(manager.query.owner, None);
        assert_eq!(manager.query.scope_owner.as_deref(), Some("m1"));
        assert!(!ListFilters::parse(Some("sort=revenue_window")).sort_is_known());
    }

    #[test]
    fn customer_data_cannot_inject_html_and_ids_are_encoded_in_links() {
        let filters = ListFilters::parse(Some("q=%3Cscript%3E"));
        let page = CustomerPage {
            rows: vec![row("C/1 \"x\"", "<img src=x onerror=alert(1)>")],
            next: Some(NextPage::After("C/1 \"x\"".to_owned())),
        };
        let view = ListView {
            filters: &filters,
            tiers: &["A".to_owned()],
            owner_filter: true,
            problem: None,
        };
        let html = render_list(texts(PageLanguage::English), &view, &page);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(
            html.contains("href=\"/staff/customers/C%2F1%20%22x%22\""),
            "{html}"
        );
        assert!(html.contains("after=C%2F1+%22x%22"), "{html}");
        // Every column of the CLI's table and the key figures, the owner by name.
        for column in [
            "Id", "Name", "E-mail", "Tier", "Segments", "Owner", "Orders", "Revenue",
        ] {
            assert!(
                html.contains(&format!("<th scope=\"col\">{column}</th>")),
                "{column}"
            );
        }
        assert!(
            html.contains("<th scope=\"col\">Last contact</th>"),
            "{html}"
        );
        // Every field has a label.
        for id in ["f-q", "f-tier", "f-segment", "f-owner", "f-sort"] {
            assert!(html.contains(&format!("<label for=\"{id}\">")), "{id}");
        }
        let chinese = render_list(texts(PageLanguage::SimplifiedChinese), &view, &page);
        assert!(chinese.contains("导出 CSV"), "{chinese}");
    }
}
