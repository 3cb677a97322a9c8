//! Import mappings applied to rows: every parse rule, skips, derives, rejections and bind errors.

use chrono::NaiveDate;
use chrono_tz::Tz;
use tiercare_engine::{
    BindError, BoundMapping, Cell, Mapping, RecordKind, Rejection, RowOutcome, TypedRow, Value,
    script_name,
};

const LONDON: Tz = chrono_tz::Europe::London;

const RETAIL: &str = r#"kind: orders
delimiter: ","
columns:
  order_id: InvoiceNo
  customer_id: CustomerID
  ordered_at: InvoiceDate
  sku: StockCode
  quantity: Quantity
  unit_price: UnitPrice
  customer_region: Country
types:
  Quantity: int
  UnitPrice: float
dates:
  ordered_at: { format: "%Y-%m-%d %H:%M:%S", timezone: Europe/London }
derive:
  amount: Quantity * UnitPrice
skip:
  no customer id: CustomerID == ""
  cancelled invoice: InvoiceNo.starts_with("C")
  non-positive quantity: Quantity <= 0
group_by: order_id
create_customers: true
"#;

const RETAIL_HEADER: [&str; 8] = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
];

fn strs(row: &[&'static str]) -> Vec<Cell<'static>> {
    row.iter().map(|s| Cell::Str(s)).collect()
}

fn row(outcome: RowOutcome) -> TypedRow {
    match outcome {
        RowOutcome::Row(row) => row,
        other => panic!("expected a row, got {other:?}"),
    }
}

fn rejection(outcome: RowOutcome) -> Rejection {
    match outcome {
        RowOutcome::Reject(rejection) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn get<'r>(bound: &BoundMapping<'_>, row: &'r TypedRow, field: &str) -> Option<&'r Value> {
    row.values[bound.field_index(field).expect("a field")].as_ref()
}

fn text(s: &str) -> Option<Value> {
    Some(Value::Text(s.to_owned()))
}

fn parse(text: &str, kind: RecordKind) -> Mapping {
    match Mapping::parse("m.yaml", text, kind) {
        Ok(mapping) => mapping,
        Err(errors) => panic!("{}", tiercare_engine::render_all(&errors, false)),
    }
}

#[test]
fn online_retail_rows() {
    let mapping = parse(RETAIL, RecordKind::Orders);
    assert!(mapping.warnings().is_empty(), "{:?}", mapping.warnings());
    assert_eq!(mapping.delimiter(), Some(b','));
    assert_eq!(mapping.group_by(), Some("order_id"));
    assert!(mapping.create_customers());
    assert_eq!(
        mapping.skip_reasons(),
        [
            "no customer id",
            "cancelled invoice",
            "non-positive quantity"
        ]
    );
    let mut bound = mapping.bind(&RETAIL_HEADER, chrono_tz::UTC).unwrap();

    // Winter: London is on GMT.
    let winter = row(bound.apply(&strs(&[
        "536365",
        "85123A",
        "WHITE HANGING HEART",
        "6",
        "2010-12-01 08:26:00",
        "2.55",
        "17850",
        "United Kingdom",
    ])));
    assert_eq!(get(&bound, &winter, "order_id"), text("536365").as_ref());
    assert_eq!(get(&bound, &winter, "customer_id"), text("17850").as_ref());
    assert_eq!(
        get(&bound, &winter, "ordered_at"),
        Some(&Value::Time(1_291_191_960))
    );
    assert_eq!(get(&bound, &winter, "sku"), text("85123A").as_ref());
    assert_eq!(get(&bound, &winter, "quantity"), Some(&Value::Float(6.0)));
    assert_eq!(
        get(&bound, &winter, "unit_price"),
        Some(&Value::Float(2.55))
    );
    assert_eq!(
        get(&bound, &winter, "customer_region"),
        text("United Kingdom").as_ref()
    );
    // Not mapped: `Description` is not our `description` (names are case-sensitive).
    assert_eq!(get(&bound, &winter, "description"), None);
    match get(&bound, &winter, "amount") {
        Some(Value::Float(amount)) => assert!((amount - 15.3).abs() < 1e-9, "{amount}"),
        other => panic!("amount {other:?}"),
    }
    assert!(winter.attributes.is_empty());

    // Summer: London is on BST (UTC+1), so 08:26 local is 07:26 UTC.
    let summer = row(bound.apply(&strs(&[
        "536366",
        "22633",
        "HAND WARMER",
        "2",
        "2011-06-01 08:26:00",
        "1.85",
        "17850",
        "United Kingdom",
    ])));
    assert_eq!(
        get(&bound, &summer, "ordered_at"),
        Some(&Value::Time(1_306_913_160))
    );

    // Skips, counted under the first reason that holds.
    let no_customer = [
        "536367",
        "1",
        "x",
        "1",
        "2010-12-01 08:26:00",
        "1.0",
        "",
        "UK",
    ];
    assert_eq!(bound.apply(&strs(&no_customer)), RowOutcome::Skip(0));
    let cancelled = [
        "C536379",
        "D",
        "Discount",
        "-1",
        "2010-12-01 09:41:00",
        "27.5",
        "14527",
        "UK",
    ];
    assert_eq!(bound.apply(&strs(&cancelled)), RowOutcome::Skip(1));
    let zero = [
        "536368",
        "1",
        "x",
        "0",
        "2010-12-01 08:26:00",
        "1.0",
        "1",
        "UK",
    ];
    assert_eq!(bound.apply(&strs(&zero)), RowOutcome::Skip(2));

    // A bad date is rejected with the column, the value and the expected format.
    let bad_date = [
        "536369",
        "1",
        "x",
        "1",
        "2010-13-01 08:26:00",
        "1.0",
        "1",
        "UK",
    ];
    assert_eq!(
        rejection(bound.apply(&strs(&bad_date))),
        Rejection {
            column: "InvoiceDate".to_owned(),
            value: Some("2010-13-01 08:26:00".to_owned()),
            reason: "not a date-time: expected format %Y-%m-%d %H:%M:%S".to_owned(),
        }
    );
    // A local time inside the spring-forward gap does not exist.
    let gap = [
        "536370",
        "1",
        "x",
        "1",
        "2011-03-27 01:30:00",
        "1.0",
        "1",
        "UK",
    ];
    assert_eq!(
        rejection(bound.apply(&strs(&gap))).reason,
        "2011-03-27 01:30:00 does not exist in Europe/London (clocks skip it at a daylight-saving change)"
    );
    // A cell that is not its declared type.
    let bad_quantity = [
        "536371",
        "1",
        "x",
        "six",
        "2010-12-01 08:26:00",
        "1.0",
        "1",
        "UK",
    ];
    assert_eq!(
        rejection(bound.apply(&strs(&bad_quantity))),
        Rejection {
            column: "Quantity".to_owned(),
            value: Some("six".to_owned()),
            reason: "not an integer (declared under `types:`)".to_owned(),
        }
    );
    // Rows of the wrong width.
    assert_eq!(
        rejection(bound.apply(&strs(&["1", "2"]))).reason,
        "2 cells, but the header has 8 columns"
    );
}

#[test]
fn int_times_float_works_in_scripts() {
    let mapping = parse(
        "columns: { order_id: id, customer_id: c, ordered_at: t }\ntypes: { q: int, p: float }\nderive:\n  amount: q * p\n",
        RecordKind::Orders,
    );
    let mut bound = mapping.bind(&["id", "c", "t", "q", "p"], LONDON).unwrap();
    let out = row(bound.apply(&strs(&["1", "c1", "2020-01-01", "3", "2.5"])));
    assert_eq!(get(&bound, &out, "amount"), Some(&Value::Float(7.5)));
}

#[test]
fn strings_in_arithmetic_reject_with_the_types_hint() {
    let mapping = parse(
        "columns: { order_id: id, customer_id: c, ordered_at: t }\nderive:\n  amount: q * p\n",
        RecordKind::Orders,
    );
    let mut bound = mapping.bind(&["id", "c", "t", "q", "p"], LONDON).unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["1", "c1", "2020-01-01", "3", "2.5"]))),
        Rejection {
            column: "derive.amount".to_owned(),
            value: None,
            reason: "function not found: * (string, string); hint: columns are strings in scripts unless listed under `types:`".to_owned(),
        }
    );
}

#[test]
fn a_string_result_for_a_number_field_is_refused() {
    // `"3" + 1` is `"31"` in Rhai: never accept it as 31.
    let mapping = parse(
        "columns: { order_id: id, customer_id: c, ordered_at: t }\nderive:\n  amount: q + 1\n",
        RecordKind::Orders,
    );
    let mut bound = mapping.bind(&["id", "c", "t", "q"], LONDON).unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["1", "c1", "2020-01-01", "3"]))),
        Rejection {
            column: "derive.amount".to_owned(),
            value: Some("31".to_owned()),
            reason: "the script returned a string where `amount` needs a number; columns are strings in scripts unless listed under `types:`".to_owned(),
        }
    );
}

#[test]
fn json_lines_cells_keep_their_types() {
    let mapping = Mapping::native(RecordKind::Orders);
    let header = [
        "order_id",
        "customer_id",
        "ordered_at",
        "quantity",
        "unit_price",
    ];
    let mut bound = mapping.bind(&header, LONDON).unwrap();
    let out = row(bound.apply(&[
        Cell::Str("A1"),
        Cell::Int(17850),
        Cell::Int(1_291_191_960),
        Cell::Int(6),
        Cell::Float(2.5),
    ]));
    assert_eq!(get(&bound, &out, "customer_id"), text("17850").as_ref());
    assert_eq!(
        get(&bound, &out, "ordered_at"),
        Some(&Value::Time(1_291_191_960))
    );
    // amount = quantity × unit_price when the row has no amount.
    assert_eq!(get(&bound, &out, "amount"), Some(&Value::Float(15.0)));
    assert_eq!(
        rejection(bound.apply(&[
            Cell::Str("A2"),
            Cell::Null,
            Cell::Str("2020-01-01"),
            Cell::Int(1),
            Cell::Int(1),
        ])),
        Rejection {
            column: "customer_id".to_owned(),
            value: None,
            reason: "`customer_id` is required but empty".to_owned(),
        }
    );
    assert_eq!(
        rejection(bound.apply(&[
            Cell::Str("A3"),
            Cell::Str("c"),
            Cell::Str("2020-01-01"),
            Cell::Null,
            Cell::Float(2.0),
        ]))
        .reason,
        "no amount, and no quantity and unit_price to compute it"
    );

    // Undeclared JSON numbers are numbers in scripts.
    let mapping = parse(
        "columns: { order_id: id, customer_id: c, ordered_at: t }\nderive:\n  amount: q * p\nskip:\n  free: p == 0\n",
        RecordKind::Orders,
    );
    let mut bound = mapping.bind(&["id", "c", "t", "q", "p"], LONDON).unwrap();
    let cells = [
        Cell::Str("1"),
        Cell::Str("c"),
        Cell::Int(0),
        Cell::Int(3),
        Cell::Float(1.5),
    ];
    let out = row(bound.apply(&cells));
    assert_eq!(get(&bound, &out, "amount"), Some(&Value::Float(4.5)));
    let free = [
        Cell::Str("1"),
        Cell::Str("c"),
        Cell::Int(0),
        Cell::Int(3),
        Cell::Float(0.0),
    ];
    assert_eq!(bound.apply(&free), RowOutcome::Skip(0));
}

#[test]
fn customers_native_with_attributes_and_parse_rules() {
    let mapping = Mapping::native(RecordKind::Customers);
    let header = [
        "customer_id",
        "name",
        "email",
        "birthday",
        "timezone",
        "consent_email",
        "consent_sms",
        "potential",
        "zip",
        "vip",
        "segment",
    ];
    let mut bound = mapping.bind(&header, LONDON).unwrap();
    let out = row(bound.apply(&strs(&[
        "c1",
        "Ann Smith",
        "ann@example.com",
        "1985-03-14",
        "europe/paris",
        "Yes",
        "n",
        "72",
        "01234",
        "TRUE",
        "gold",
    ])));
    assert_eq!(get(&bound, &out, "name"), text("Ann Smith").as_ref());
    assert_eq!(
        get(&bound, &out, "birthday"),
        Some(&Value::Date(NaiveDate::from_ymd_opt(1985, 3, 14).unwrap()))
    );
    assert_eq!(get(&bound, &out, "timezone"), text("Europe/Paris").as_ref());
    assert_eq!(get(&bound, &out, "consent_email"), Some(&Value::Bool(true)));
    assert_eq!(get(&bound, &out, "consent_sms"), Some(&Value::Bool(false)));
    assert_eq!(get(&bound, &out, "consent_phone"), None);
    assert_eq!(
        out.attributes,
        vec![
            ("potential".to_owned(), 72.into()),
            ("zip".to_owned(), "01234".into()),
            ("vip".to_owned(), true.into()),
            ("segment".to_owned(), "gold".into()),
        ]
    );

    let reject =
        |bound: &mut BoundMapping<'_>, row: [&'static str; 11]| rejection(bound.apply(&strs(&row)));
    let base = ["c1", "Ann", "", "", "", "", "", "", "", "", ""];
    let mut injected = base;
    injected[1] = "Ann\r\nBcc: everyone@example.com";
    assert_eq!(
        reject(&mut bound, injected),
        Rejection {
            column: "name".to_owned(),
            value: Some("Ann\r\nBcc: everyone@example.com".to_owned()),
            reason: "line break in `name` (it is used in mail headers)".to_owned(),
        }
    );
    let mut bad_email = base;
    bad_email[2] = "Ann <ann@example.com>";
    assert_eq!(reject(&mut bound, bad_email).reason, "invalid email");
    let mut bad_bool = base;
    bad_bool[5] = "maybe";
    assert_eq!(
        reject(&mut bound, bad_bool).reason,
        "not a yes/no value: expected true/false, yes/no, y/n or 1/0"
    );
    let mut bad_tz = base;
    bad_tz[4] = "Europe/Londn";
    assert_eq!(
        reject(&mut bound, bad_tz).reason,
        "not a time zone: expected an IANA name such as Europe/London"
    );
    let mut no_id = base;
    no_id[0] = "  ";
    assert_eq!(
        reject(&mut bound, no_id).reason,
        "`customer_id` is required but empty"
    );
}

#[test]
fn customers_mapping_with_defaults_and_attributes() {
    let mapping = parse(
        "columns:\n  customer_id: Id\n  name: Full Name\ndefaults:\n  consent_email: true\n  timezone: Europe/Berlin\nattributes:\n  potential: Potential Score\n",
        RecordKind::Customers,
    );
    let mut bound = mapping
        .bind(&["Id", "Full Name", "Potential Score", "Other"], LONDON)
        .unwrap();
    let out = row(bound.apply(&strs(&["7", "Bo", "3.5", "ignored"])));
    assert_eq!(get(&bound, &out, "consent_email"), Some(&Value::Bool(true)));
    assert_eq!(
        get(&bound, &out, "timezone"),
        text("Europe/Berlin").as_ref()
    );
    assert_eq!(out.attributes, vec![("potential".to_owned(), 3.5.into())]);
}

#[test]
fn other_kinds_parse_rules() {
    let interactions = Mapping::native(RecordKind::Interactions);
    let mut bound = interactions
        .bind(&["customer_id", "kind", "occurred_at", "by"], LONDON)
        .unwrap();
    let out = row(bound.apply(&strs(&["c1", "Visit", "2021-10-31 01:30", "m1"])));
    assert_eq!(get(&bound, &out, "kind"), text("visit").as_ref());
    // Ambiguous (clocks go back): the earlier instant, 00:30 UTC.
    assert_eq!(
        get(&bound, &out, "occurred_at"),
        Some(&Value::Time(1_635_640_200))
    );
    assert_eq!(
        rejection(bound.apply(&strs(&["c1", "fax", "2021-01-01", ""]))).reason,
        "expected one of call, visit, email, meeting, chat, event, other"
    );

    let complaints = Mapping::native(RecordKind::Complaints);
    let mut bound = complaints
        .bind(&["customer_id", "opened_at", "severity"], LONDON)
        .unwrap();
    let out = row(bound.apply(&strs(&["c1", "2021-01-01", ""])));
    assert_eq!(
        get(&bound, &out, "severity"),
        Some(&Value::Int(2)),
        "default medium"
    );
    let out = row(bound.apply(&strs(&["c1", "2021-01-01", "Critical"])));
    assert_eq!(get(&bound, &out, "severity"), Some(&Value::Int(4)));

    let feedback = Mapping::native(RecordKind::Feedback);
    let mut bound = feedback
        .bind(&["customer_id", "given_at", "score"], LONDON)
        .unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["c1", "2021-01-01", "10.5"]))).reason,
        "must be between 0 and 10"
    );
    assert!(matches!(
        bound.apply(&strs(&["c1", "2021-01-01", "10"])),
        RowOutcome::Row(_)
    ));

    let managers = Mapping::native(RecordKind::Managers);
    let mut bound = managers
        .bind(&["manager_id", "name", "capacity", "active"], LONDON)
        .unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["m1", "Max", "-3", "y"]))).reason,
        "must be at least 0"
    );
    let out = row(bound.apply(&strs(&["m1", "Max", "40", "y"])));
    assert_eq!(get(&bound, &out, "capacity"), Some(&Value::Int(40)));
    assert_eq!(get(&bound, &out, "active"), Some(&Value::Bool(true)));
}

#[test]
fn missing_columns_hint_at_the_delimiter() {
    let mapping = parse(RETAIL, RecordKind::Orders);
    let header =
        ["InvoiceNo;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID;Country"];
    let err = mapping.bind(&header, LONDON).unwrap_err();
    assert_eq!(
        err,
        BindError::MissingColumns {
            missing: [
                "InvoiceNo",
                "CustomerID",
                "InvoiceDate",
                "StockCode",
                "Quantity",
                "UnitPrice",
                "Country"
            ]
            .map(str::to_owned)
            .to_vec(),
            found: vec![header[0].to_owned()],
        }
    );
    assert_eq!(
        err.to_string(),
        "missing columns `InvoiceNo`, `CustomerID`, `InvoiceDate`, `StockCode`, `Quantity`, `UnitPrice`, `Country`; columns found: `InvoiceNo;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID;Country`; is the delimiter right? the only column found contains `;`"
    );
}

#[test]
fn missing_required_fields_and_near_misses() {
    let err = Mapping::native(RecordKind::Orders)
        .bind(&["order_id", "Customer_ID", "ordered_at", "amount"], LONDON)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing column `customer_id` (did you mean `Customer_ID` for `customer_id`?); columns found: `order_id`, `Customer_ID`, `ordered_at`, `amount`"
    );
    let err = Mapping::native(RecordKind::Orders)
        .bind(&["order_id", "customer_id", "ordered_at"], LONDON)
        .unwrap_err();
    assert!(
        matches!(&err, BindError::MissingColumns { missing, .. } if missing == &["amount"]),
        "{err}"
    );
}

#[test]
fn native_import_refuses_unknown_columns() {
    let err = Mapping::native(RecordKind::Managers)
        .bind(&["manager_id", "name", "team"], LONDON)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown column `team`; the columns of this import are `manager_id`, `name`, `email`, `role`, `capacity`, `active`, `timezone` (or give a mapping with --mapping)"
    );
}

#[test]
fn duplicate_header_column() {
    let err = Mapping::native(RecordKind::Managers)
        .bind(&["manager_id", "name", "name"], LONDON)
        .unwrap_err();
    assert_eq!(
        err,
        BindError::DuplicateColumn {
            name: "name".to_owned()
        }
    );
}

#[test]
fn script_referring_to_an_absent_column_is_located_in_the_mapping() {
    let text = "columns: { order_id: id, customer_id: c, ordered_at: t }\ntypes: { Qty: int }\nderive:\n  amount: |\n    let q = Qty;\n    q * Price\n";
    let mapping = parse(text, RecordKind::Orders);
    let err = mapping
        .bind(&["id", "c", "t", "Qty", "Unit Price"], LONDON)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "m.yaml:6:9: error: `derive.amount` refers to `Price`, which is not a column of this file\n  6 |     q * Price\n    |         ^\n  hint: did you mean `Unit_Price`? columns (as script names): `id`, `c`, `t`, `Qty`, `Unit_Price`"
    );
}

#[test]
fn sandbox_limits_inside_a_derive_reject_the_row_only() {
    let text = "columns: { order_id: id, customer_id: c, ordered_at: t }\ntypes: { q: int }\nderive:\n  amount: |\n    if q < 0 { loop { } }\n    let doubled = q * 2;\n    doubled\n";
    let mapping = parse(text, RecordKind::Orders);
    let mut bound = mapping.bind(&["id", "c", "t", "q"], LONDON).unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["1", "c", "2020-01-01", "-1"]))),
        Rejection {
            column: "derive.amount".to_owned(),
            value: None,
            reason: "script stopped: more than 200000 operations (an endless loop?)".to_owned(),
        }
    );
    // The scope is rewound after every script: 300 rows each declaring a variable stay under
    // the limit of 256 variables.
    for _ in 0..300 {
        let out = row(bound.apply(&strs(&["1", "c", "2020-01-01", "4"])));
        assert_eq!(get(&bound, &out, "amount"), Some(&Value::Float(8.0)));
    }
}

#[test]
fn skip_scripts_must_return_bools() {
    let mapping = parse("skip:\n  odd: customer_id.len()\n", RecordKind::Feedback);
    let mut bound = mapping
        .bind(&["customer_id", "given_at", "score"], LONDON)
        .unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["abc", "2020-01-01", "5"]))),
        Rejection {
            column: "skip.odd".to_owned(),
            value: Some("3".to_owned()),
            reason: "a skip script must return true or false, not an int".to_owned(),
        }
    );
}

#[test]
fn unit_from_a_derive_means_not_given() {
    let mapping = parse(
        "derive:\n  region: if name == \"\" { () } else { name.to_upper() }\n",
        RecordKind::Customers,
    );
    let mut bound = mapping.bind(&["customer_id", "name"], LONDON).unwrap();
    let out = row(bound.apply(&strs(&["c1", ""])));
    assert_eq!(get(&bound, &out, "region"), None);
    let out = row(bound.apply(&strs(&["c1", "ann"])));
    assert_eq!(get(&bound, &out, "region"), text("ANN").as_ref());
}

#[test]
fn script_names() {
    assert_eq!(script_name("Potential Score"), "Potential_Score");
    assert_eq!(script_name("2nd-phone"), "col_2nd_phone");
    assert_eq!(script_name("Größe"), "Gr__e");
    assert_eq!(script_name("ok_1"), "ok_1");
    assert_eq!(script_name("default"), "col_default");
    assert_eq!(script_name("if"), "col_if");
    assert_eq!(script_name(""), "col_");
}

#[test]
fn awkward_column_names_are_readable_in_scripts() {
    let mapping = parse(
        "types: { 2019: int, default: int }\nderive:\n  score: col_2019 + col_default + Unit_Price__EUR_\n",
        RecordKind::Feedback,
    );
    let mut bound = mapping
        .bind(
            &[
                "customer_id",
                "given_at",
                "2019",
                "default",
                "Unit Price (EUR)",
            ],
            LONDON,
        )
        .unwrap();
    let out = row(bound.apply(&[
        Cell::Str("c"),
        Cell::Str("2020-01-01"),
        Cell::Str("2"),
        Cell::Str("3"),
        Cell::Float(0.5),
    ]));
    assert_eq!(get(&bound, &out, "score"), Some(&Value::Float(5.5)));
}

#[test]
fn warns_when_an_undeclared_column_is_compared_with_a_number() {
    let mapping = parse(
        "skip:\n  none: Quantity <= 0 || 5 > Other\n",
        RecordKind::Orders,
    );
    let rendered: Vec<String> = mapping.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "m.yaml:2:9: warning: `skip.none` compares column `Quantity` with a number, but columns are strings in scripts unless listed under `types:`\n  2 |   none: Quantity <= 0 || 5 > Other\n    |         ^\n  hint: add `Quantity: int` (or `float`) under `types:`; in Rhai a string compared with a number is always false",
            "m.yaml:2:30: warning: `skip.none` compares column `Other` with a number, but columns are strings in scripts unless listed under `types:`\n  2 |   none: Quantity <= 0 || 5 > Other\n    |                              ^\n  hint: add `Other: int` (or `float`) under `types:`; in Rhai a string compared with a number is always false",
        ]
    );
    let declared = parse(
        "types: { Quantity: int }\nskip:\n  none: Quantity <= 0 || \"5 > x\" == y\n",
        RecordKind::Orders,
    );
    assert!(declared.warnings().is_empty(), "{:?}", declared.warnings());
}

#[test]
fn columns_are_constants_in_scripts() {
    let mapping = parse(
        "types: { q: int }\nskip:\n  sneaky: |\n    q = 100;\n    false\nderive:\n  amount: q * 1.0\n",
        RecordKind::Orders,
    );
    let mut bound = mapping
        .bind(&["order_id", "customer_id", "ordered_at", "q"], LONDON)
        .unwrap();
    assert_eq!(
        rejection(bound.apply(&strs(&["1", "c", "2020-01-01", "3"]))),
        Rejection {
            column: "skip.sneaky".to_owned(),
            value: None,
            reason: "cannot modify constant q".to_owned(),
        }
    );
}

#[test]
fn the_documented_examples_are_valid() {
    let source = include_str!("../src/import/mapping.rs");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        match (&mut current, doc) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => examples.extend(current.take()),
            (Some(text), line) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert_eq!(examples.len(), 2);
    for example in &examples {
        let kind_line = example.lines().next().expect("a kind line");
        let kind: RecordKind = kind_line
            .strip_prefix("kind: ")
            .and_then(|rest| rest.split_whitespace().next())
            .expect("examples start with `kind:`")
            .parse()
            .expect("a record kind");
        let mapping = parse(example, kind);
        assert!(mapping.warnings().is_empty(), "{:?}", mapping.warnings());
    }
}

#[test]
fn mappings_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Mapping>();
    send::<BoundMapping<'static>>();
}
