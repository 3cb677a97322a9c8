//! Import mappings: how the columns of a user's file become our fields
//! (`tiercare import KIND FILE [--mapping M.yaml]`).
//!
//! The scheduler reads CSV or JSON Lines and hands the engine a header and rows of [`Cell`]s; a
//! [`Mapping`] (parsed and validated once) is [bound](Mapping::bind) to the header (every column
//! resolved, every script compiled once), and the [`BoundMapping`] turns each row into a
//! [`RowOutcome`]: typed values of our fields, a skip (with its reason), or a rejection (with the
//! column, the value and why).
//!
//! # The mapping file
//!
//! ```yaml
//! kind: orders                 # optional; if present must match the command's kind
//! delimiter: ","               # optional (one ASCII character; "\t" or tab for tabs)
//! columns:                     # our field: source column (rename)
//!   order_id: InvoiceNo
//!   customer_id: CustomerID
//!   ordered_at: InvoiceDate
//!   sku: StockCode
//!   quantity: Quantity
//!   unit_price: UnitPrice
//!   customer_region: Country
//! types:                       # source column types seen by scripts (default: string)
//!   Quantity: int
//!   UnitPrice: float
//! dates:                       # per target time or date field
//!   ordered_at: { format: "%Y-%m-%d %H:%M:%S", timezone: Europe/London }
//! derive:                      # our field: Rhai expression over source columns
//!   amount: Quantity * UnitPrice
//! skip:                        # reason: Rhai expression; a row is skipped when any is true
//!   no customer id: CustomerID == ""
//!   cancelled invoice: InvoiceNo.starts_with("C")
//!   non-positive quantity: Quantity <= 0
//! group_by: order_id           # lines with the same order id form one order (orders only)
//! create_customers: true       # orders only: create customers that do not exist yet
//! refunds: true                # orders only: import negative amounts as refunds
//! defaults:                    # constant values for our fields when the row gives none
//!   customer_region: Unknown
//! ```
//!
//! and for customers:
//!
//! ```yaml
//! kind: customers
//! columns:
//!   customer_id: Id
//!   name: Full Name
//!   email: E-mail
//! dates:
//!   birthday: { format: "%d.%m.%Y" }
//! derive:
//!   region: if Country == "" { () } else { Country.to_upper() }
//! defaults:
//!   consent_email: true
//! attributes:                  # customers only: attribute name: source column
//!   potential: Potential Score
//! ```
//!
//! Every key is optional. The fields of each kind and their types are listed by
//! [`fields`].
//!
//! - **`columns`** renames: `our_field: Source Column`. A field that is not listed (and not
//!   derived) is still read from a column with the field's own name when the file has one.
//! - **`types`** declares what scripts see for a source column: `string` (the default), `int`,
//!   `float` or `bool`. A CSV cell is a string in scripts unless declared; a JSON Lines cell
//!   keeps its JSON type unless declared. An empty or null cell is `""` for string columns and
//!   `()` for declared `int`, `float` and `bool` columns. A cell that does not parse as its
//!   declared type rejects the row. Types only affect scripts: our fields always parse their
//!   cells by the field's own type.
//! - **`dates`** gives a time or date field a strftime `format` (default: RFC 3339 with an offset,
//!   `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD` at midnight)
//!   and a `timezone` that local times are in (default: the workspace's zone, passed to
//!   [`Mapping::bind`]). A JSON Lines integer in a time field is unix seconds. A local time that
//!   does not exist (the gap when clocks move forward) is rejected; an ambiguous one (the hour
//!   repeated when clocks move back) takes the **earlier** instant. Times are stored as unix
//!   seconds (UTC).
//! - **`derive`** computes a field with a Rhai script (one expression, or statements whose last
//!   value is the result). A field may be in `columns` or in `derive`, not both. A script result
//!   of `()` means "not given"; a string result is not accepted for a number field (in Rhai
//!   `"3" + 1` is `"31"`, so a string there is almost always a forgotten `types:` entry).
//! - **`skip`** lists reasons with a script each; a row is skipped, and counted under the first
//!   reason whose script returns `true`. A script must return `true` or `false`.
//! - **`group_by`** (orders only) names the field whose equal values form one order;
//!   **`create_customers`** (orders only) lets the import create customers it does not know,
//!   using `customer_name` and `customer_region`.
//! - **`refunds`** (orders only): a line with a negative amount (a refund, a credit, a gift
//!   card) is rejected unless the mapping says `refunds: true`; then it is imported as it is and
//!   lowers the revenue of its order (see the store's features for how refunds count).
//! - **`defaults`** gives constant values to fields a row leaves empty.
//! - **`attributes`** (customers only) imports custom attributes: `name: Source Column`. The value
//!   is an int, float or bool when the text is exactly one (`true`/`false`; no leading zeros),
//!   else text. Without a mapping, every column of a customers file that is not one of our
//!   fields becomes an attribute of the same name.
//!
//! ## Column names in scripts
//!
//! A source column is a variable named by the column name with every character that is not an
//! ASCII letter, digit or `_` replaced by `_` ([`script_name`]). When that is not a name Rhai
//! accepts (it starts with a digit, or it is a keyword or reserved word), it gets the prefix
//! `col_`: `Potential Score` is `Potential_Score`, `2nd-phone` is `col_2nd_phone`, `default` is
//! `col_default`. (Rhai refuses `_2nd_phone`: after leading underscores it wants a letter.)
//!
//! Columns are constants: a script cannot change them (copy one with `let q = Quantity;` to work
//! on it). Scripts run in the sandbox of [`crate::script::sandbox`]: a script that exceeds its limits
//! rejects the row, it never hangs.
//!
//! ## Speed: the native evaluator
//!
//! A script that is one simple expression (literals, columns, `!`, `&&`, `||`, comparisons,
//! `+ - * / %`, `??`, parentheses and the string tests `starts_with`, `ends_with`, `contains`,
//! `is_empty`, `len`) is also compiled by `native::compile_row` and evaluated without Rhai. It
//! answers only when its answer is certain to be Rhai's; anything else (a type mismatch, an
//! overflow, a string result for a number field, any error) runs the Rhai script, so results and
//! error messages are Rhai's. Syntax errors are always Rhai's, at their place in the YAML file. A
//! test compares both paths over random expressions and rows.
//!
//! ## Rhai quirks worth knowing
//!
//! - `int * float` works (`Quantity * UnitPrice` with `Quantity: int`, `UnitPrice: float`).
//! - Comparing values of different types (`"3" <= 0`, `() == 0`) is silently `false`, not an
//!   error. [`Mapping::parse`] warns when a script compares an undeclared column with a number.
//! - `+` on a string concatenates: `"3" + 1` is `"31"`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::format::Item;
use chrono_tz::Tz;
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::import::convert::{self, TimeRule};
use crate::import::mapping_functions;
use crate::import::record::{FieldSpec, FieldType, RecordKind, field_index, fields};
use crate::script::native::{self, RowValue};
use crate::text::diagnostic::{Diagnostic, closest, hint_among, list_names, render_all};
// What a mapping takes and returns, so that importers need only this module.
pub use crate::import::record::{Cell, Rejection, RowOutcome, TypedRow, Value};
use crate::script::lint;
use crate::script::sandbox::{self, ScriptError};
use crate::text::yaml::{self, PathSeg, Spans, YamlLimits};

/// The type a source column has in scripts (`types:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    String,
    Int,
    Float,
    Bool,
}

const COLUMN_TYPES: [&str; 4] = ["string", "int", "float", "bool"];

impl ColumnType {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "string" => Some(ColumnType::String),
            "int" => Some(ColumnType::Int),
            "float" => Some(ColumnType::Float),
            "bool" => Some(ColumnType::Bool),
            _ => None,
        }
    }
}

/// A validated import mapping for one [`RecordKind`]. See the [module documentation](self) for
/// the file format.
#[derive(Debug)]
pub struct Mapping {
    kind: RecordKind,
    native: bool,
    origin: Origin,
    delimiter: Option<u8>,
    /// (field index, source column)
    columns: Vec<(usize, String)>,
    /// (source column, type)
    types: Vec<(String, ColumnType)>,
    dates: Vec<DateRule>,
    derives: Vec<ScriptSpec>,
    skips: Vec<ScriptSpec>,
    skip_reasons: Vec<String>,
    group_by: Option<String>,
    create_customers: bool,
    refunds: bool,
    /// (field index, value)
    defaults: Vec<(usize, Value)>,
    /// (attribute name, source column)
    attributes: Vec<(String, String)>,
    warnings: Vec<Diagnostic>,
    engine: Engine,
}

/// Where a mapping came from, kept for diagnostics raised at bind time.
#[derive(Debug, Default)]
struct Origin {
    path: String,
    text: String,
    spans: Spans,
}

/// `dates.<field>`: a format and a zone for one time or date field.
#[derive(Debug)]
struct DateRule {
    field: usize,
    format: Option<(String, Vec<Item<'static>>)>,
    tz: Option<Tz>,
}

#[derive(Debug)]
struct ScriptSpec {
    /// The derived field (derive only).
    field: Option<usize>,
    /// `derive.amount`, `skip.cancelled invoice`.
    label: String,
    key_path: Vec<PathSeg>,
    source: String,
}

/// A mapping's keys in file order (duplicates are refused earlier, by [`crate::text::yaml`]).
#[derive(Debug)]
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of `name: value` lines")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_any(OrderedVisitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    kind: Option<String>,
    delimiter: Option<String>,
    #[serde(default)]
    columns: Ordered<String>,
    #[serde(default)]
    types: Ordered<String>,
    #[serde(default)]
    dates: Ordered<RawDate>,
    #[serde(default)]
    derive: Ordered<String>,
    #[serde(default)]
    skip: Ordered<String>,
    group_by: Option<String>,
    create_customers: Option<bool>,
    refunds: Option<bool>,
    #[serde(default)]
    defaults: Ordered<serde_yaml::Value>,
    #[serde(default)]
    attributes: Ordered<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDate {
    format: Option<String>,
    timezone: Option<String>,
}

/// Collects diagnostics while validating a parsed mapping.
struct Validator<'a> {
    path: &'a str,
    text: &'a str,
    spans: &'a Spans,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

fn key_path(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|part| PathSeg::from(*part)).collect()
}

impl Validator<'_> {
    fn at(&self, line_col: (usize, usize), message: String, hint: Option<String>) -> Diagnostic {
        let diagnostic =
            Diagnostic::error(self.path, line_col.0, line_col.1, message).with_source(self.text);
        match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    }

    /// An error pointing at the key of `path`.
    fn key_error(&mut self, path: &[PathSeg], message: String, hint: Option<String>) {
        let position = self.spans.key(path).map_or_else(
            || self.spans.position(path),
            |span| (span.line, span.column),
        );
        let diagnostic = self.at(position, message, hint);
        self.errors.push(diagnostic);
    }

    /// An error pointing at the value of `path` (or its key when the value is not a scalar).
    fn value_error(&mut self, path: &[PathSeg], message: String, hint: Option<String>) {
        let diagnostic = self.at(self.spans.position(path), message, hint);
        self.errors.push(diagnostic);
    }

    /// Resolves `name` as a field of `kind`, reporting an unknown one at the key of `path`.
    fn field(&mut self, kind: RecordKind, name: &str, path: &[PathSeg]) -> Option<usize> {
        if let Some(index) = field_index(kind, name) {
            return Some(index);
        }
        let names = fields(kind).iter().map(|field| field.name);
        let hint = hint_among(name, &format!("fields of {kind}"), names);
        self.key_error(
            path,
            format!("unknown field `{name}` for {kind}"),
            Some(hint),
        );
        None
    }

    fn check_script(&mut self, path: &[PathSeg], source: &str) -> bool {
        if let Err(err) = sandbox::check_syntax(source) {
            self.errors.push(sandbox::script_diagnostic(
                self.path, self.text, self.spans, path, &err,
            ));
            return false;
        }
        let unknown = mapping_functions::unknown_calls(source);
        for call in &unknown {
            let at = self.spans.locate_in_scalar(path, call.line, call.column);
            let hint = match call.near {
                Some(near) => format!(
                    "did you mean `{near}`? Mappings can call Rhai's standard functions and \
                     trim, trim_start, trim_end, lower, upper and replace"
                ),
                None => "mappings can call Rhai's standard functions and trim, trim_start, \
                         trim_end, lower, upper and replace"
                    .to_owned(),
            };
            let message = format!(
                "`{}` calls `{}`, which is not a function mappings have",
                yaml::path_to_string(path),
                call.name
            );
            self.errors.push(self.at(at, message, Some(hint)));
        }
        unknown.is_empty()
    }
}

impl Mapping {
    /// Parses and validates a mapping file for an import of `kind`. `path` is only used in
    /// diagnostics.
    ///
    /// # Errors
    /// Every problem found, each at its `path:line:column`: YAML errors (syntax, duplicate keys,
    /// limits), unknown keys, wrong types, unknown fields, bad type names, strftime formats and
    /// time zones, Rhai syntax errors (at their position in the YAML file), keys that do not
    /// apply to `kind`, and a `kind:` that differs from `kind`.
    pub fn parse(path: &str, text: &str, kind: RecordKind) -> Result<Mapping, Vec<Diagnostic>> {
        let document = yaml::parse::<RawMapping>(path, text, &YamlLimits::default())?;
        let raw = document.value;
        let spans = document.spans;
        let mut v = Validator {
            path,
            text,
            spans: &spans,
            errors: Vec::new(),
            warnings: Vec::new(),
        };

        if let Some(declared) = &raw.kind {
            match declared.parse::<RecordKind>() {
                Ok(declared) if declared == kind => {}
                Ok(declared) => v.value_error(
                    &key_path(&["kind"]),
                    format!("this mapping is for {declared}, but the import is for {kind}"),
                    Some(format!(
                        "run `tiercare import {declared} ...`, or use a mapping written for {kind}"
                    )),
                ),
                Err(_) => {
                    let names = RecordKind::ALL.map(RecordKind::as_str);
                    let hint = match closest(declared, names) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("expected one of {}", list_names(names)),
                    };
                    v.value_error(
                        &key_path(&["kind"]),
                        format!("unknown record kind `{declared}`"),
                        Some(hint),
                    );
                }
            }
        }

        let delimiter = raw.delimiter.as_deref().and_then(|text| {
            let parsed = parse_delimiter(text);
            if parsed.is_none() {
                v.value_error(
                    &key_path(&["delimiter"]),
                    format!("`{}` is not a delimiter", text.escape_default()),
                    Some(
                        "a delimiter is one ASCII character such as \",\", \";\", \"|\" or \"\\t\""
                            .to_owned(),
                    ),
                );
            }
            parsed
        });

        let mut columns = Vec::new();
        for (target, source) in &raw.columns.0 {
            let path = key_path(&["columns", target]);
            if let Some(index) = v.field(kind, target, &path) {
                if source.trim().is_empty() {
                    v.value_error(
                        &path,
                        format!("`columns.{target}` names no source column"),
                        None,
                    );
                } else {
                    columns.push((index, source.clone()));
                }
            }
        }

        let mut types = Vec::new();
        for (column, type_name) in &raw.types.0 {
            let path = key_path(&["types", column]);
            match ColumnType::parse(type_name) {
                Some(ty) => types.push((column.clone(), ty)),
                None => {
                    let hint = hint_among(type_name, "types", COLUMN_TYPES.iter().copied());
                    v.value_error(&path, format!("unknown type `{type_name}`"), Some(hint));
                }
            }
        }

        let mut dates = Vec::new();
        for (target, date) in &raw.dates.0 {
            let path = key_path(&["dates", target]);
            let Some(index) = v.field(kind, target, &path) else {
                continue;
            };
            let spec = &fields(kind)[index];
            if !matches!(spec.ty, FieldType::Time | FieldType::Date) {
                let time_fields: Vec<&str> = fields(kind)
                    .iter()
                    .filter(|field| matches!(field.ty, FieldType::Time | FieldType::Date))
                    .map(|field| field.name)
                    .collect();
                v.key_error(
                    &path,
                    format!("`{target}` is not a date or time field"),
                    Some(format!(
                        "date and time fields of {kind}: {}",
                        list_names(time_fields)
                    )),
                );
                continue;
            }
            let format = date.format.as_ref().and_then(|format| {
                match convert::compile_format(format, spec.ty) {
                    Ok(items) => Some((format.clone(), items)),
                    Err(message) => {
                        v.value_error(
                            &key_path(&["dates", target, "format"]),
                            message,
                            Some("see https://docs.rs/chrono/latest/chrono/format/strftime/ (e.g. \"%d/%m/%Y %H:%M\")".to_owned()),
                        );
                        None
                    }
                }
            });
            let tz = date.timezone.as_ref().and_then(|name| {
                let tz_path = key_path(&["dates", target, "timezone"]);
                if spec.ty == FieldType::Date {
                    v.value_error(
                        &tz_path,
                        format!("`{target}` is a date; a time zone applies to times only"),
                        None,
                    );
                    return None;
                }
                match convert::parse_tz(name) {
                    Some(tz) => Some(tz),
                    None => {
                        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
                        let hint = match closest(name, names) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => {
                                "use an IANA name such as `Europe/London` or `America/New_York`"
                                    .to_owned()
                            }
                        };
                        v.value_error(&tz_path, format!("unknown time zone `{name}`"), Some(hint));
                        None
                    }
                }
            });
            dates.push(DateRule {
                field: index,
                format,
                tz,
            });
        }

        let mut derives = Vec::new();
        for (target, source) in &raw.derive.0 {
            let path = key_path(&["derive", target]);
            let Some(index) = v.field(kind, target, &path) else {
                continue;
            };
            if raw.columns.0.iter().any(|(name, _)| name == target) {
                v.key_error(
                    &path,
                    format!("`{target}` is both in `columns` and in `derive`"),
                    Some(
                        "keep one: `columns` copies a column, `derive` computes a value".to_owned(),
                    ),
                );
                continue;
            }
            if v.check_script(&path, source) {
                derives.push(ScriptSpec {
                    field: Some(index),
                    label: format!("derive.{target}"),
                    key_path: path,
                    source: source.clone(),
                });
            }
        }

        let mut skips = Vec::new();
        for (reason, source) in &raw.skip.0 {
            let path = key_path(&["skip", reason]);
            if v.check_script(&path, source) {
                skips.push(ScriptSpec {
                    field: None,
                    label: format!("skip.{reason}"),
                    key_path: path,
                    source: source.clone(),
                });
            }
        }

        if let Some(group_by) = &raw.group_by {
            if kind == RecordKind::Orders {
                v.field(kind, group_by, &key_path(&["group_by"]));
            } else {
                v.key_error(
                    &key_path(&["group_by"]),
                    format!("`group_by` applies to orders, not to {kind}"),
                    Some("remove it, or import this file as orders".to_owned()),
                );
            }
        }
        if raw.refunds.is_some() && kind != RecordKind::Orders {
            v.key_error(
                &key_path(&["refunds"]),
                format!("`refunds` applies to orders, not to {kind}"),
                Some("remove it, or import this file as orders".to_owned()),
            );
        }
        if raw.create_customers.is_some() && kind != RecordKind::Orders {
            v.key_error(
                &key_path(&["create_customers"]),
                format!("`create_customers` applies to orders, not to {kind}"),
                Some("remove it, or import this file as orders".to_owned()),
            );
        }

        let mut defaults = Vec::new();
        for (target, value) in &raw.defaults.0 {
            let path = key_path(&["defaults", target]);
            let Some(index) = v.field(kind, target, &path) else {
                continue;
            };
            let spec = &fields(kind)[index];
            let text;
            let cell = match value {
                serde_yaml::Value::Bool(b) => Cell::Bool(*b),
                serde_yaml::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => Cell::Int(i),
                    (None, Some(f)) => Cell::Float(f),
                    _ => Cell::Null,
                },
                serde_yaml::Value::String(s) => {
                    text = s.clone();
                    Cell::Str(&text)
                }
                _ => Cell::Null,
            };
            let time_rule = TimeRule::new(None, Tz::UTC);
            match convert::convert(cell, spec, Some(&time_rule)) {
                Ok(Some(value)) => defaults.push((index, value)),
                Ok(None) => v.value_error(
                    &path,
                    format!("`defaults.{target}` must be a {} value", spec.ty),
                    None,
                ),
                Err(reason) => v.value_error(&path, format!("`defaults.{target}`: {reason}"), None),
            }
        }

        let mut attributes = Vec::new();
        if !raw.attributes.0.is_empty() && kind != RecordKind::Customers {
            v.key_error(
                &key_path(&["attributes"]),
                format!("`attributes` applies to customers, not to {kind}"),
                None,
            );
        } else {
            for (name, source) in &raw.attributes.0 {
                let path = key_path(&["attributes", name]);
                if field_index(kind, name).is_some() {
                    v.key_error(
                        &path,
                        format!("`{name}` is one of our fields, not a custom attribute"),
                        Some(format!("map it under `columns:` as `{name}: {source}`")),
                    );
                } else {
                    attributes.push((name.clone(), source.clone()));
                }
            }
        }

        for script in derives.iter().chain(&skips) {
            warn_string_comparisons(&mut v, script, &types);
        }

        if !v.errors.is_empty() {
            return Err(v.errors);
        }
        let warnings = v.warnings;
        Ok(Mapping {
            kind,
            native: false,
            origin: Origin {
                path: path.to_owned(),
                text: text.to_owned(),
                spans,
            },
            delimiter,
            columns,
            types,
            dates,
            skip_reasons: skips
                .iter()
                .map(|skip| skip.label["skip.".len()..].to_owned())
                .collect(),
            derives,
            skips,
            group_by: raw.group_by,
            create_customers: raw.create_customers.unwrap_or(false),
            refunds: raw.refunds.unwrap_or(false),
            defaults,
            attributes,
            warnings,
            engine: mapping_functions::mapping_engine(),
        })
    }

    /// The identity mapping: every column is named like our field (see
    /// [`fields`]). For customers, every other column becomes a custom
    /// attribute; for other kinds, another column is an error at bind time.
    #[must_use]
    pub fn native(kind: RecordKind) -> Mapping {
        Mapping {
            kind,
            native: true,
            origin: Origin::default(),
            delimiter: None,
            columns: Vec::new(),
            types: Vec::new(),
            dates: Vec::new(),
            derives: Vec::new(),
            skips: Vec::new(),
            skip_reasons: Vec::new(),
            group_by: None,
            create_customers: false,
            refunds: false,
            defaults: Vec::new(),
            attributes: Vec::new(),
            warnings: Vec::new(),
            engine: mapping_functions::mapping_engine(),
        }
    }

    /// Orders: whether negative amounts are imported as refunds (`refunds: true`) rather than
    /// rejected.
    #[must_use]
    pub fn refunds(&self) -> bool {
        self.refunds
    }

    /// The record kind this mapping imports.
    #[must_use]
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// The delimiter the file should be read with, if the mapping says.
    #[must_use]
    pub fn delimiter(&self) -> Option<u8> {
        self.delimiter
    }

    /// The field whose equal values form one order (orders only).
    #[must_use]
    pub fn group_by(&self) -> Option<&str> {
        self.group_by.as_deref()
    }

    /// Whether the import may create customers it does not know (orders only).
    #[must_use]
    pub fn create_customers(&self) -> bool {
        self.create_customers
    }

    /// The skip reasons, in file order; [`RowOutcome::Skip`] holds an index into this.
    #[must_use]
    pub fn skip_reasons(&self) -> &[String] {
        &self.skip_reasons
    }

    /// Things in the file that are accepted but probably wrong.
    #[must_use]
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Resolves every source column against a file's `header` and compiles every script once.
    /// `default_tz` is the zone of local times for fields without a `dates.<field>.timezone`.
    ///
    /// # Errors
    /// [`BindError::MissingColumns`] when columns the mapping names, or required fields, are
    /// not in the header; [`BindError::UnknownColumns`] for an unexpected column of a native
    /// (mapping-less) import of anything but customers; [`BindError::DuplicateColumn`] when a
    /// column the import needs appears twice; [`BindError::Script`] when a script refers to a
    /// column the file does not have (located in the mapping file).
    pub fn bind(&self, header: &[&str], default_tz: Tz) -> Result<BoundMapping<'_>, BindError> {
        Binder::new(self, header).bind(default_tz)
    }
}

fn parse_delimiter(text: &str) -> Option<u8> {
    let text = match text {
        "\\t" | "tab" | "TAB" => "\t",
        other => other,
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && !matches!(c, '\n' | '\r' | '"') => u8::try_from(c).ok(),
        _ => None,
    }
}

/// The variable name of a source column in scripts: every character that is not an ASCII letter,
/// digit or `_` becomes `_`, and a name that Rhai would not accept as a variable (one starting
/// with a digit, a keyword or reserved word) gets the prefix `col_`.
#[must_use]
pub fn script_name(column: &str) -> String {
    let name: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if sandbox::is_variable_name(&name) {
        name
    } else {
        format!("col_{name}")
    }
}

/// Whether `word` occurs in `text` as a whole identifier (anywhere: also inside strings, which
/// only makes the set of variables a script may read larger, never smaller).
fn mentions(text: &str, word: &str) -> bool {
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(start, _)| {
        let end = start + word.len();
        (start == 0 || !is_ident(bytes[start - 1])) && (end == bytes.len() || !is_ident(bytes[end]))
    })
}

/// Warns about `Column <op> number` where `Column` is not declared under `types:`: in a CSV file
/// that compares a string with a number, which Rhai evaluates to `false` without an error.
fn warn_string_comparisons(
    v: &mut Validator<'_>,
    script: &ScriptSpec,
    types: &[(String, ColumnType)],
) {
    let declared: HashSet<String> = types
        .iter()
        .filter(|(_, ty)| *ty != ColumnType::String)
        .map(|(column, _)| script_name(column))
        .collect();
    for found in lint::number_comparisons(&script.source) {
        let name = found.name;
        if declared.contains(name) {
            continue;
        }
        let (line, column) = v
            .spans
            .locate_in_scalar(&script.key_path, found.line, found.column);
        let diagnostic = Diagnostic::warning(
            v.path,
            line,
            column,
            format!(
                "`{}` compares column `{name}` with a number, but columns are strings in scripts unless listed under `types:`",
                script.label
            ),
        )
        .with_source(v.text)
        .with_hint(format!(
            "add `{name}: int` (or `float`) under `types:`; in Rhai a string compared with a number is always false"
        ));
        v.warnings.push(diagnostic);
    }
}

/// Why a mapping cannot be used with a file's header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// Columns the mapping names, or required fields, are not in the header.
    #[error("{}", missing_message(missing, found))]
    MissingColumns {
        /// Missing source columns (or our field names, for required fields nothing provides).
        missing: Vec<String>,
        /// The columns the header has.
        found: Vec<String>,
    },
    /// Columns that a native (mapping-less) import does not know.
    #[error(
        "unknown column{} {}; the columns of this import are {} (or give a mapping with --mapping)",
        if unknown.len() == 1 { "" } else { "s" },
        list_names(unknown.iter().map(String::as_str)),
        list_names(valid.iter().map(String::as_str))
    )]
    UnknownColumns {
        /// The columns not recognized.
        unknown: Vec<String>,
        /// Our column names for this kind.
        valid: Vec<String>,
    },
    /// A column the import needs appears more than once in the header.
    #[error("column `{name}` appears more than once in the header; which one is meant?")]
    DuplicateColumn {
        /// The repeated column name.
        name: String,
    },
    /// Scripts that refer to columns the file does not have, located in the mapping file.
    #[error("{}", render_all(diagnostics, false).trim_end())]
    Script {
        /// One diagnostic per script problem, at its position in the mapping file.
        diagnostics: Vec<Diagnostic>,
    },
}

fn missing_message(missing: &[String], found: &[String]) -> String {
    let mut message = format!(
        "missing column{} {}",
        if missing.len() == 1 { "" } else { "s" },
        list_names(missing.iter().map(String::as_str))
    );
    for name in missing {
        if let Some(best) = closest(name, found.iter().map(String::as_str)) {
            message.push_str(&format!(" (did you mean `{best}` for `{name}`?)"));
        }
    }
    message.push_str(&format!(
        "; columns found: {}",
        list_names(found.iter().map(String::as_str))
    ));
    if let [only] = found
        && let Some(separator) = [';', '\t', '|', ',']
            .into_iter()
            .find(|c| only.contains(*c))
    {
        message.push_str(&format!(
            "; is the delimiter right? the only column found contains `{}`",
            separator.escape_default()
        ));
    }
    message
}

/// A source column read by scripts.
#[derive(Debug)]
struct ScriptVar {
    cell: usize,
    name: String,
    column: String,
    ty: Option<ColumnType>,
}

#[derive(Debug)]
struct BoundScript {
    ast: AST,
    label: String,
    /// The script compiled natively, when it is in [`native`]'s subset (the AST stays for the
    /// rows where the native evaluator declines).
    native: Option<native::RowNode>,
}

#[derive(Debug)]
enum Source {
    Column(usize),
    Derive(usize),
    Nothing,
}

#[derive(Debug)]
struct FieldPlan {
    spec: &'static FieldSpec,
    source: Source,
    /// The source column (or script key, or field name) for rejections.
    label: String,
    time: Option<TimeRule>,
    default: Option<Value>,
}

/// A [`Mapping`] bound to one file's header: apply it to each row.
///
/// Everything is resolved and compiled once; [`BoundMapping::apply`] reuses one Rhai scope and
/// takes a fast path when the mapping has no scripts. One bound mapping per thread.
#[derive(Debug)]
pub struct BoundMapping<'m> {
    mapping: &'m Mapping,
    header_len: usize,
    plans: Vec<FieldPlan>,
    vars: Vec<ScriptVar>,
    derives: Vec<BoundScript>,
    skips: Vec<BoundScript>,
    scope: Scope<'static>,
    attributes: Vec<(String, usize)>,
    /// Orders: indices of amount, quantity and unit_price.
    amount: Option<(usize, usize, usize)>,
    /// Complaints: index of severity (default medium = 2).
    severity: Option<usize>,
    /// The time each row's scripts may take (none: no deadline).
    budget: Option<crate::script::sandbox::Budget>,
}

struct Binder<'m, 'h> {
    mapping: &'m Mapping,
    header: &'h [&'h str],
    positions: HashMap<&'h str, Vec<usize>>,
    missing: Vec<String>,
}

impl<'m, 'h> Binder<'m, 'h> {
    fn new(mapping: &'m Mapping, header: &'h [&'h str]) -> Self {
        let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, name) in header.iter().enumerate() {
            positions.entry(*name).or_default().push(index);
        }
        Binder {
            mapping,
            header,
            positions,
            missing: Vec::new(),
        }
    }

    /// The cell index of a column the mapping names; records it as missing when absent.
    fn column(&mut self, name: &str) -> Result<Option<usize>, BindError> {
        match self.positions.get(name).map(Vec::as_slice) {
            Some([index]) => Ok(Some(*index)),
            Some(_) => Err(BindError::DuplicateColumn {
                name: name.to_owned(),
            }),
            None => {
                if !self.missing.iter().any(|m| m == name) {
                    self.missing.push(name.to_owned());
                }
                Ok(None)
            }
        }
    }

    /// The cell index of a column named like our field, if the header has one.
    fn native_column(&self, name: &str) -> Result<Option<usize>, BindError> {
        match self.positions.get(name).map(Vec::as_slice) {
            Some([index]) => Ok(Some(*index)),
            Some(_) => Err(BindError::DuplicateColumn {
                name: name.to_owned(),
            }),
            None => Ok(None),
        }
    }

    fn bind(mut self, default_tz: Tz) -> Result<BoundMapping<'m>, BindError> {
        let mapping = self.mapping;
        let kind = mapping.kind;
        let specs = fields(kind);
        let mut plans = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let mut label = spec.name.to_owned();
            let source = if let Some((_, column)) =
                mapping.columns.iter().find(|(f, _)| *f == index)
            {
                label.clone_from(column);
                match self.column(column)? {
                    Some(cell) => Source::Column(cell),
                    None => Source::Nothing,
                }
            } else if let Some(script) = mapping.derives.iter().position(|d| d.field == Some(index))
            {
                label.clone_from(&mapping.derives[script].label);
                Source::Derive(script)
            } else {
                match self.native_column(spec.name)? {
                    Some(cell) => Source::Column(cell),
                    None => Source::Nothing,
                }
            };
            let time = matches!(spec.ty, FieldType::Time | FieldType::Date).then(|| {
                let (format, tz) = mapping
                    .dates
                    .iter()
                    .find(|rule| rule.field == index)
                    .map_or((None, None), |rule| (rule.format.clone(), rule.tz));
                TimeRule::new(format, tz.unwrap_or(default_tz))
            });
            let default = mapping
                .defaults
                .iter()
                .find(|(f, _)| *f == index)
                .map(|(_, value)| value.clone());
            plans.push(FieldPlan {
                spec,
                source,
                label,
                time,
                default,
            });
        }

        // Required fields that nothing provides.
        let provided =
            |plan: &FieldPlan| !matches!(plan.source, Source::Nothing) || plan.default.is_some();
        for plan in &plans {
            let mapped = mapping
                .columns
                .iter()
                .any(|(f, _)| specs[*f].name == plan.spec.name);
            if plan.spec.required && !provided(plan) && !mapped {
                self.missing.push(plan.spec.name.to_owned());
            }
        }
        let amount = (kind == RecordKind::Orders).then(|| {
            let index = |name| field_index(kind, name).expect("orders have this field");
            (index("amount"), index("quantity"), index("unit_price"))
        });
        if let Some((a, q, p)) = amount {
            let mapped = |i: usize| mapping.columns.iter().any(|(f, _)| *f == i);
            let computable = provided(&plans[q]) && provided(&plans[p]);
            if !(provided(&plans[a]) || mapped(a) || computable) {
                self.missing.push("amount".to_owned());
            }
        }

        // Columns named by `types:` and `attributes:` must exist too.
        for (column, _) in &mapping.types {
            self.column(column)?;
        }
        let mut attributes = Vec::new();
        for (name, column) in &mapping.attributes {
            if let Some(cell) = self.column(column)? {
                attributes.push((name.clone(), cell));
            }
        }
        if !self.missing.is_empty() {
            return Err(BindError::MissingColumns {
                missing: self.missing,
                found: self.header.iter().map(|name| (*name).to_owned()).collect(),
            });
        }

        if mapping.native {
            let unknown: Vec<(usize, &str)> = self
                .header
                .iter()
                .enumerate()
                .filter(|(_, name)| field_index(kind, name).is_none())
                .map(|(index, name)| (index, *name))
                .collect();
            if kind == RecordKind::Customers {
                attributes.extend(
                    unknown
                        .iter()
                        .map(|(index, name)| ((*name).to_owned(), *index)),
                );
            } else if !unknown.is_empty() {
                return Err(BindError::UnknownColumns {
                    unknown: unknown.iter().map(|(_, name)| (*name).to_owned()).collect(),
                    valid: specs.iter().map(|spec| spec.name.to_owned()).collect(),
                });
            }
        }

        let (vars, scope, derives, skips) = self.compile_scripts()?;
        let severity = (kind == RecordKind::Complaints)
            .then(|| field_index(kind, "severity"))
            .flatten();
        Ok(BoundMapping {
            mapping,
            header_len: self.header.len(),
            plans,
            vars,
            derives,
            skips,
            scope,
            attributes,
            amount,
            severity,
            budget: None,
        })
    }

    #[expect(clippy::type_complexity, reason = "a private step of bind")]
    fn compile_scripts(
        &self,
    ) -> Result<
        (
            Vec<ScriptVar>,
            Scope<'static>,
            Vec<BoundScript>,
            Vec<BoundScript>,
        ),
        BindError,
    > {
        let mapping = self.mapping;
        let scripts: Vec<&ScriptSpec> = mapping.derives.iter().chain(&mapping.skips).collect();
        if scripts.is_empty() {
            return Ok((Vec::new(), Scope::new(), Vec::new(), Vec::new()));
        }
        // Script names of the header, with the columns behind each (two columns may collide).
        let mut by_name: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, column) in self.header.iter().enumerate() {
            let name = script_name(column);
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, cells)) => cells.push(index),
                None => by_name.push((name, vec![index])),
            }
        }
        let origin = &mapping.origin;
        let mut diagnostics = Vec::new();
        let mut vars = Vec::new();
        for (name, cells) in &by_name {
            if !scripts.iter().any(|script| mentions(&script.source, name)) {
                continue;
            }
            if let [first, second, ..] = cells.as_slice() {
                let script = scripts
                    .iter()
                    .find(|script| mentions(&script.source, name))
                    .expect("some script mentions it");
                let (line, column) = origin.spans.position(&script.key_path);
                diagnostics.push(
                    Diagnostic::error(
                        &origin.path,
                        line,
                        column,
                        format!(
                            "columns `{}` and `{}` are both `{name}` in scripts",
                            self.header[*first], self.header[*second]
                        ),
                    )
                    .with_source(&origin.text)
                    .with_hint("rename one of the columns in the file"),
                );
                continue;
            }
            let column = self.header[cells[0]].to_owned();
            let ty = mapping
                .types
                .iter()
                .find(|(declared, _)| *declared == column)
                .map(|(_, ty)| *ty);
            vars.push(ScriptVar {
                cell: cells[0],
                name: name.clone(),
                column,
                ty,
            });
        }
        let mut scope = Scope::new();
        for var in &vars {
            scope.push_dynamic(var.name.as_str(), Dynamic::UNIT);
        }
        let compile = |script: &ScriptSpec, diagnostics: &mut Vec<Diagnostic>| match mapping
            .engine
            .compile_with_scope(&scope, &script.source)
        {
            Ok(ast) => Some(BoundScript {
                ast,
                label: script.label.clone(),
                native: native::compile_row(&script.source, &|name| {
                    vars.iter().position(|var| var.name == name)
                }),
            }),
            Err(err) => {
                let mut diagnostic = sandbox::script_diagnostic(
                    &origin.path,
                    &origin.text,
                    &origin.spans,
                    &script.key_path,
                    ScriptError::Parse(&err),
                );
                if let rhai::ParseErrorType::VariableUndefined(name) = err.err_type() {
                    let names = by_name.iter().map(|(n, _)| n.as_str());
                    diagnostic.message = format!(
                        "`{}` refers to `{name}`, which is not a column of this file",
                        script.label
                    );
                    diagnostic.hint = Some(match closest(name, names.clone()) {
                        Some(best) => format!(
                            "did you mean `{best}`? columns (as script names): {}",
                            list_names(names)
                        ),
                        None => format!("columns (as script names): {}", list_names(names)),
                    });
                }
                diagnostics.push(diagnostic);
                None
            }
        };
        let derives: Vec<BoundScript> = mapping
            .derives
            .iter()
            .filter_map(|script| compile(script, &mut diagnostics))
            .collect();
        let skips: Vec<BoundScript> = mapping
            .skips
            .iter()
            .filter_map(|script| compile(script, &mut diagnostics))
            .collect();
        if !diagnostics.is_empty() {
            return Err(BindError::Script { diagnostics });
        }
        Ok((vars, scope, derives, skips))
    }
}

const TYPES_HINT: &str = "columns are strings in scripts unless listed under `types:`";

impl BoundMapping<'_> {
    /// The index of field `name` in [`TypedRow::values`].
    #[must_use]
    pub fn field_index(&self, name: &str) -> Option<usize> {
        field_index(self.mapping.kind, name)
    }

    /// The text of the cell that field `name` is copied from in `cells` (a row of the bound
    /// header); `None` when the field is derived, absent or the cell empty. For naming the order
    /// of a rejected order line.
    #[must_use]
    pub fn column_text(&self, name: &str, cells: &[Cell<'_>]) -> Option<String> {
        let plan = self.plans.get(self.field_index(name)?)?;
        match plan.source {
            Source::Column(cell) => cells
                .get(cell)
                .copied()
                .and_then(cell_text)
                .filter(|text| !text.trim().is_empty()),
            _ => None,
        }
    }

    /// The mapping this was bound from.
    #[must_use]
    pub fn mapping(&self) -> &Mapping {
        self.mapping
    }

    /// Gives every row's scripts a time budget (none by default): a script still running when
    /// it is spent is stopped, and the row is rejected with the reason.
    pub fn set_budget(&mut self, budget: Option<crate::script::sandbox::Budget>) {
        self.budget = budget;
    }

    /// Turns one row (cells in header order) into typed values, a skip or a rejection.
    pub fn apply(&mut self, cells: &[Cell<'_>]) -> RowOutcome {
        // The row's budget starts when its cells are loaded into Rhai's scope (see
        // `load_scope_for_rhai`): a row the native evaluator answers reads no clock.
        let outcome = match self.try_apply(cells) {
            Ok(outcome) => outcome,
            Err(rejection) => RowOutcome::Reject(rejection),
        };
        if self.budget.is_some() {
            crate::script::sandbox::start_budget(None);
        }
        outcome
    }

    fn try_apply(&mut self, cells: &[Cell<'_>]) -> Result<RowOutcome, Rejection> {
        if cells.len() != self.header_len {
            return Err(Rejection {
                column: "(row)".to_owned(),
                value: None,
                reason: format!(
                    "{} cells, but the header has {} columns",
                    cells.len(),
                    self.header_len
                ),
            });
        }
        let engine = &self.mapping.engine;
        let has_scripts =
            !self.vars.is_empty() || !self.derives.is_empty() || !self.skips.is_empty();
        // The row as scripts see it, for the native evaluator; the Rhai scope is loaded only
        // when a script needs Rhai.
        let mut row: Vec<RowValue<'_>> = Vec::with_capacity(self.vars.len());
        let mut loaded = false;
        if has_scripts {
            for var in &self.vars {
                let cell = cells[var.cell];
                match native_value(cell, var.ty) {
                    Ok(Some(value)) => row.push(value),
                    Ok(None) => {
                        // A value only Rhai holds: every script of this row runs in Rhai.
                        load_scope_for_rhai(&mut self.scope, &self.vars, cells, self.budget)?;
                        loaded = true;
                        break;
                    }
                    Err(reason) => {
                        return Err(Rejection {
                            column: var.column.clone(),
                            value: cell_text(cell),
                            reason,
                        });
                    }
                }
            }
            let native_ok = !loaded;
            for (index, skip) in self.skips.iter().enumerate() {
                if native_ok && let Some(node) = &skip.native {
                    match native::eval_row(node, &row) {
                        Some(RowValue::Bool(true)) => return Ok(RowOutcome::Skip(index)),
                        Some(RowValue::Bool(false)) => continue,
                        _ => {}
                    }
                }
                if !loaded {
                    load_scope_for_rhai(&mut self.scope, &self.vars, cells, self.budget)?;
                    loaded = true;
                }
                let result = run_script(engine, &mut self.scope, self.vars.len(), skip)?;
                match result.as_bool() {
                    Ok(true) => return Ok(RowOutcome::Skip(index)),
                    Ok(false) => {}
                    Err(type_name) => {
                        return Err(Rejection {
                            column: skip.label.clone(),
                            value: Some(result.to_string()),
                            reason: format!(
                                "a skip script must return true or false, not {}",
                                user_type_name(type_name)
                            ),
                        });
                    }
                }
            }
        }

        // Every problem of the row is collected, so that one import shows them all.
        let mut problems: Vec<Rejection> = Vec::new();
        let mut failed = vec![false; self.plans.len()];
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.plans.len());
        for (index, plan) in self.plans.iter().enumerate() {
            let value = match plan.source {
                Source::Column(cell) => {
                    match convert::convert(cells[cell], plan.spec, plan.time.as_ref()) {
                        Ok(value) => value,
                        Err(reason) => {
                            problems.push(Rejection {
                                column: plan.label.clone(),
                                value: cell_text(cells[cell]),
                                reason,
                            });
                            failed[index] = true;
                            None
                        }
                    }
                }
                Source::Derive(script) => {
                    let script = &self.derives[script];
                    let native = match &script.native {
                        Some(node) if !loaded && row.len() == self.vars.len() => {
                            native::eval_row(node, &row)
                                .and_then(|value| native_derived(value, plan))
                        }
                        _ => None,
                    };
                    match native {
                        Some(value) => value,
                        None => {
                            if !loaded {
                                load_scope_for_rhai(
                                    &mut self.scope,
                                    &self.vars,
                                    cells,
                                    self.budget,
                                )?;
                                loaded = true;
                            }
                            match run_script(engine, &mut self.scope, self.vars.len(), script)
                                .and_then(|result| derived_value(&result, plan))
                            {
                                Ok(value) => value,
                                Err(rejection) => {
                                    problems.push(rejection);
                                    failed[index] = true;
                                    None
                                }
                            }
                        }
                    }
                }
                Source::Nothing => None,
            };
            values.push(value.or_else(|| plan.default.clone()));
        }

        if let Some((a, q, p)) = self.amount
            && values[a].is_none()
            && !failed[a]
        {
            match (&values[q], &values[p]) {
                (Some(Value::Float(quantity)), Some(Value::Float(price))) => {
                    values[a] = Some(Value::Float(quantity * price));
                }
                // The quantity's or the price's own problem is reported already.
                _ if failed[q] || failed[p] => failed[a] = true,
                _ => {
                    problems.push(Rejection {
                        column: self.plans[a].label.clone(),
                        value: None,
                        reason: "no amount, and no quantity and unit_price to compute it"
                            .to_owned(),
                    });
                    failed[a] = true;
                }
            }
        }
        if let Some((a, _, _)) = self.amount
            && !self.mapping.refunds
            && let Some(Value::Float(amount)) = values[a]
            && amount < 0.0
        {
            problems.push(Rejection {
                column: self.plans[a].label.clone(),
                value: Some(amount.to_string()),
                reason: "a negative amount (a refund, credit or gift card?) is refused: add \
                         `refunds: true` to the mapping to import it as a refund (it lowers \
                         revenue and is not counted as an order), or skip such rows with a \
                         `skip:` rule"
                    .to_owned(),
            });
        }
        if let Some(severity) = self.severity {
            values[severity].get_or_insert(Value::Int(2));
        }
        for ((plan, value), failed) in self.plans.iter().zip(&values).zip(&failed) {
            if plan.spec.required && value.is_none() && !failed {
                problems.push(Rejection {
                    column: plan.label.clone(),
                    value: None,
                    reason: format!("`{}` is required but empty", plan.spec.name),
                });
            }
        }
        if !problems.is_empty() {
            return Err(combine(problems));
        }

        let mut attributes = Vec::with_capacity(self.attributes.len());
        for (name, cell) in &self.attributes {
            if let Some(value) = convert::attribute_value(cells[*cell]) {
                attributes.push((name.clone(), value));
            }
        }
        Ok(RowOutcome::Row(TypedRow { values, attributes }))
    }
}

/// One rejection for every problem of a row: the first, with the others after its reason
/// (`; also COLUMN: REASON (value V)`), so that one import shows them all.
fn combine(mut problems: Vec<Rejection>) -> Rejection {
    let mut first = problems.remove(0);
    for other in problems {
        first.reason.push_str("; also ");
        first.reason.push_str(&other.to_string());
    }
    first
}

/// Starts the row's script budget (if any), then puts its cells into the scope: called once per
/// row, before the first script of the row that runs in Rhai.
fn load_scope_for_rhai(
    scope: &mut Scope<'static>,
    vars: &[ScriptVar],
    cells: &[Cell<'_>],
    budget: Option<crate::script::sandbox::Budget>,
) -> Result<(), Rejection> {
    if budget.is_some() {
        crate::script::sandbox::start_budget(budget);
    }
    load_scope(scope, vars, cells)
}

/// Puts this row's cells into the scope, typed as declared.
fn load_scope(
    scope: &mut Scope<'static>,
    vars: &[ScriptVar],
    cells: &[Cell<'_>],
) -> Result<(), Rejection> {
    scope.rewind(0);
    for var in vars {
        let cell = cells[var.cell];
        let value = script_value(cell, var.ty).map_err(|reason| Rejection {
            column: var.column.clone(),
            value: cell_text(cell),
            reason,
        })?;
        // Constants: a script cannot change what the next script sees.
        scope.push_constant_dynamic(var.name.as_str(), value);
    }
    Ok(())
}

fn script_value(cell: Cell<'_>, ty: Option<ColumnType>) -> Result<Dynamic, String> {
    Ok(match native_value(cell, ty)? {
        Some(value) => value.to_dynamic(),
        // A typed JSON cell in a `string` column: its text.
        None => Dynamic::from(cell_text(cell).unwrap_or_default()),
    })
}

/// A cell as scripts see it, typed as declared; `Ok(None)` for a JSON number or bool in a
/// `string` column (its text is a new string, which only Rhai's scope holds).
fn native_value(cell: Cell<'_>, ty: Option<ColumnType>) -> Result<Option<RowValue<'_>>, String> {
    let declared = |name: &str| format!("not {name} (declared under `types:`)");
    Ok(Some(match (ty, cell) {
        (None | Some(ColumnType::String), Cell::Null) => RowValue::Str(""),
        (None | Some(ColumnType::String), Cell::Str(s)) => RowValue::Str(s.trim()),
        (Some(ColumnType::String), Cell::Int(_) | Cell::Float(_) | Cell::Bool(_)) => {
            return Ok(None);
        }
        (None, Cell::Int(i)) => RowValue::Int(i),
        (None, Cell::Float(f)) => RowValue::Float(f),
        (None, Cell::Bool(b)) => RowValue::Bool(b),
        (Some(_), Cell::Null) => RowValue::Unit,
        (Some(_), Cell::Str(s)) if s.trim().is_empty() => RowValue::Unit,
        (Some(ColumnType::Int), cell) => match cell {
            Cell::Int(i) => RowValue::Int(i),
            Cell::Str(s) => {
                RowValue::Int(convert::parse_int(s.trim()).ok_or_else(|| declared("an integer"))?)
            }
            Cell::Float(f) => match convert::parse_int(&f.to_string()) {
                Some(i) => RowValue::Int(i),
                None => return Err(declared("an integer")),
            },
            _ => return Err(declared("an integer")),
        },
        (Some(ColumnType::Float), cell) => match cell {
            Cell::Float(f) => RowValue::Float(f),
            Cell::Int(i) => RowValue::Float(i as f64),
            Cell::Str(s) => {
                RowValue::Float(convert::parse_float(s.trim()).ok_or_else(|| declared("a number"))?)
            }
            _ => return Err(declared("a number")),
        },
        (Some(ColumnType::Bool), cell) => match cell {
            Cell::Bool(b) => RowValue::Bool(b),
            Cell::Int(0) => RowValue::Bool(false),
            Cell::Int(1) => RowValue::Bool(true),
            Cell::Str(s) => RowValue::Bool(
                convert::parse_bool(s.trim()).ok_or_else(|| declared("a yes/no value"))?,
            ),
            _ => return Err(declared("a yes/no value")),
        },
    }))
}

/// A native script result as its field's value, when that is certain to be what
/// [`derived_value`] makes of Rhai's result; `None` (run Rhai) for anything that is an error.
fn native_derived(value: RowValue<'_>, plan: &FieldPlan) -> Option<Option<Value>> {
    let cell = match value {
        RowValue::Unit => Cell::Null,
        RowValue::Int(i) => Cell::Int(i),
        RowValue::Float(f) => Cell::Float(f),
        RowValue::Bool(b) => Cell::Bool(b),
        RowValue::Str(_) if matches!(plan.spec.ty, FieldType::Int | FieldType::Float) => {
            return None;
        }
        RowValue::Str(s) => Cell::Str(s),
    };
    convert::convert(cell, plan.spec, plan.time.as_ref()).ok()
}

/// Runs one script against the loaded scope, then drops whatever variables it declared.
fn run_script(
    engine: &Engine,
    scope: &mut Scope<'static>,
    base: usize,
    script: &BoundScript,
) -> Result<Dynamic, Rejection> {
    let result = engine.eval_ast_with_scope::<Dynamic>(scope, &script.ast);
    scope.rewind(base);
    result.map_err(|err| script_rejection(&script.label, &err))
}

fn script_rejection(label: &str, err: &EvalAltResult) -> Rejection {
    let mut reason = sandbox::describe_eval_error(err);
    if sandbox::is_type_mismatch(err) {
        reason.push_str("; hint: ");
        reason.push_str(TYPES_HINT);
    }
    Rejection {
        column: label.to_owned(),
        value: None,
        reason,
    }
}

/// Converts a script's result to the value of its field.
fn derived_value(result: &Dynamic, plan: &FieldPlan) -> Result<Option<Value>, Rejection> {
    let reject = |reason: String| Rejection {
        column: plan.label.clone(),
        value: Some(result.to_string()),
        reason,
    };
    let text;
    let cell = if result.is_unit() {
        Cell::Null
    } else if let Ok(i) = result.as_int() {
        Cell::Int(i)
    } else if let Ok(f) = result.as_float() {
        Cell::Float(f)
    } else if let Ok(b) = result.as_bool() {
        Cell::Bool(b)
    } else if result.is_string() {
        if matches!(plan.spec.ty, FieldType::Int | FieldType::Float) {
            return Err(reject(format!(
                "the script returned a string where `{}` needs a number; {TYPES_HINT}",
                plan.spec.name
            )));
        }
        text = result.clone().into_immutable_string().unwrap_or_default();
        Cell::Str(text.as_str())
    } else {
        return Err(reject(format!(
            "the script returned {}, `{}` needs a {} value",
            user_type_name(result.type_name()),
            plan.spec.name,
            plan.spec.ty
        )));
    };
    convert::convert(cell, plan.spec, plan.time.as_ref()).map_err(reject)
}

fn user_type_name(name: &str) -> &str {
    match name {
        "i64" => "an int",
        "f64" => "a float",
        "bool" => "a bool",
        "()" => "nothing (`()`)",
        "string" | "&str" | "ImmutableString" => "a string",
        "array" => "an array",
        "map" => "a map",
        other => other,
    }
}

fn cell_text(cell: Cell<'_>) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Str(s) => Some(s.to_owned()),
        Cell::Int(i) => Some(i.to_string()),
        Cell::Float(f) => Some(f.to_string()),
        Cell::Bool(b) => Some(b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [&str; 8] = [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ];

    /// The random choices the generators below make, drawn by proptest: a failing case shrinks
    /// to fewer and smaller choices (simpler scripts and rows) and is saved in
    /// `proptest-regressions/` to be replayed first. Past the end every choice is 0.
    struct Random {
        choices: Vec<u64>,
        used: usize,
    }

    impl Random {
        fn next(&mut self) -> u64 {
            let choice = self.choices.get(self.used).copied().unwrap_or(0);
            self.used += 1;
            choice
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).expect("small")
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    fn text(random: &mut Random, depth: u32) -> String {
        let column = random.pick(&["InvoiceNo", "CustomerID", "Country", "Description"]);
        match random.below(if depth == 0 { 2 } else { 3 }) {
            0 => column.to_owned(),
            1 => format!(
                "\"{}\"",
                random.pick(&["", "C", "c", "5363", "United Kingdom", "É", "a b"])
            ),
            _ => format!("({})", text(random, depth - 1)),
        }
    }

    fn number(random: &mut Random, depth: u32) -> String {
        let leaf = |random: &mut Random| match random.below(5) {
            0 => "Quantity".to_owned(),
            1 => "UnitPrice".to_owned(),
            2 => random
                .pick(&["0", "1", "-3", "12", "9223372036854775807", "1_000"])
                .to_owned(),
            3 => random
                .pick(&["0.0", "2.55", "-1.5", "0.1", "1000000.0"])
                .to_owned(),
            _ => format!("{}.len()", text(random, 0)),
        };
        if depth == 0 {
            return leaf(random);
        }
        match random.below(6) {
            0 | 1 => leaf(random),
            2 => {
                let inner = number(random, depth - 1);
                if inner.starts_with('-') {
                    format!("-({inner})")
                } else {
                    format!("-{inner}")
                }
            }
            3 => format!("({})", number(random, depth - 1)),
            4 => format!(
                "{} ?? {}",
                number(random, depth - 1),
                number(random, depth - 1)
            ),
            _ => format!(
                "{} {} {}",
                number(random, depth - 1),
                random.pick(&["+", "-", "*", "/", "%"]),
                number(random, depth - 1)
            ),
        }
    }

    fn condition(random: &mut Random, depth: u32) -> String {
        let comparison = ["==", "!=", "<", "<=", ">", ">="];
        let leaf = |random: &mut Random| match random.below(5) {
            0 => format!(
                "{} {} {}",
                number(random, 1),
                random.pick(&comparison),
                number(random, 1)
            ),
            1 => format!(
                "{} {} {}",
                text(random, 1),
                random.pick(&comparison),
                text(random, 1)
            ),
            2 => format!(
                "{}.{}({})",
                text(random, 0),
                random.pick(&["starts_with", "ends_with", "contains"]),
                text(random, 0)
            ),
            3 => format!("{}.is_empty()", text(random, 0)),
            // Mixed types: Rhai's answer (false, or an error) whatever the native side does.
            _ => format!(
                "{} {} {}",
                text(random, 0),
                random.pick(&comparison),
                number(random, 0)
            ),
        };
        if depth == 0 {
            return leaf(random);
        }
        match random.below(6) {
            0 | 1 => leaf(random),
            2 => format!("!({})", condition(random, depth - 1)),
            3 => random.pick(&["true", "false"]).to_owned(),
            _ => format!(
                "{} {} {}",
                condition(random, depth - 1),
                random.pick(&["&&", "||"]),
                condition(random, depth - 1)
            ),
        }
    }

    fn cells(random: &mut Random) -> [&'static str; 8] {
        [
            random.pick(&["536365", "C536379", "c1", "", " 536366 "]),
            "85123A",
            random.pick(&["WHITE HANGING HEART", "", "Éclair"]),
            random.pick(&["6", "0", "-3", "", " 12 ", "9223372036854775807", "x"]),
            "2010-12-01 08:26:00",
            random.pick(&["2.55", "0", "-1.5", "", "1e3", "0.1", "x"]),
            random.pick(&["17850", "", " 12346 "]),
            random.pick(&["United Kingdom", "", "EIRE"]),
        ]
    }

    fn mapping(derive: &str, skips: &[String]) -> Mapping {
        let mut yaml = String::from(
            "kind: orders\ncolumns:\n  order_id: InvoiceNo\n  customer_id: CustomerID\n  \
             ordered_at: InvoiceDate\n  sku: StockCode\n  quantity: Quantity\n  \
             unit_price: UnitPrice\ntypes:\n  Quantity: int\n  UnitPrice: float\n\
             dates:\n  ordered_at: { format: \"%Y-%m-%d %H:%M:%S\" }\nderive:\n",
        );
        yaml.push_str(&format!("  amount: '{derive}'\nskip:\n"));
        for (index, skip) in skips.iter().enumerate() {
            yaml.push_str(&format!("  reason {index}: '{skip}'\n"));
        }
        Mapping::parse("test.mapping.yaml", &yaml, RecordKind::Orders)
            .unwrap_or_else(|errors| panic!("{yaml}\n{}", render_all(&errors, false)))
    }

    /// The native evaluator and Rhai give the same outcome (row, skip or the same rejection) for
    /// random expressions over random rows, and the native side does answer most of them.
    #[test]
    fn native_mapping_scripts_agree_with_rhai() {
        use proptest::prelude::*;
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let (compiled, scripts) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (answered, evaluated) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let config = ProptestConfig {
            cases: 300,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let choices = prop::collection::vec(any::<u64>(), 1_000..2_000);
        let result = proptest::test_runner::TestRunner::new(config).run(&choices, |choices| {
            let mut random = Random { choices, used: 0 };
            let derive = number(&mut random, 3);
            let skips: Vec<String> = (0..2).map(|_| condition(&mut random, 3)).collect();
            let mapping = mapping(&derive, &skips);
            let mut fast = mapping.bind(&HEADER, chrono_tz::UTC).unwrap();
            let mut rhai = mapping.bind(&HEADER, chrono_tz::UTC).unwrap();
            for script in rhai.derives.iter_mut().chain(&mut rhai.skips) {
                scripts.fetch_add(1, Relaxed);
                compiled.fetch_add(usize::from(script.native.take().is_some()), Relaxed);
            }
            for _ in 0..40 {
                let row = cells(&mut random);
                let row: Vec<Cell<'_>> = row.iter().map(|s| Cell::Str(s)).collect();
                let expected = rhai.apply(&row);
                prop_assert_eq!(
                    fast.apply(&row),
                    expected,
                    "derive {:?}, skips {:?}, row {:?}",
                    derive,
                    skips,
                    row
                );
                // How often the native side answers by itself.
                let values: Vec<RowValue<'_>> = fast
                    .vars
                    .iter()
                    .filter_map(|var| native_value(row[var.cell], var.ty).ok().flatten())
                    .collect();
                if values.len() == fast.vars.len() {
                    for script in fast.derives.iter().chain(&fast.skips) {
                        evaluated.fetch_add(1, Relaxed);
                        let node = script.native.as_ref().expect("compiled natively");
                        answered.fetch_add(
                            usize::from(native::eval_row(node, &values).is_some()),
                            Relaxed,
                        );
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            panic!("{error}");
        }
        let (compiled, scripts) = (compiled.into_inner(), scripts.into_inner());
        let (answered, evaluated) = (answered.into_inner(), evaluated.into_inner());
        assert_eq!(compiled, scripts, "every generated script is in the subset");
        assert!(
            answered * 2 > evaluated,
            "native answered {answered} of {evaluated}"
        );
    }

    #[test]
    fn the_online_retail_mapping_runs_natively() {
        let text = include_str!("../../../../examples/online-retail/orders.mapping.yaml");
        let mapping = Mapping::parse("orders.mapping.yaml", text, RecordKind::Orders).unwrap();
        let header = HEADER.to_vec();
        let bound = mapping.bind(&header, chrono_tz::UTC).unwrap();
        assert_eq!(bound.derives.len() + bound.skips.len(), 5);
        for script in bound.derives.iter().chain(&bound.skips) {
            assert!(script.native.is_some(), "{} is not native", script.label);
        }
    }

    static CLOCK_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    fn counting_clock() -> std::time::Instant {
        CLOCK_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::time::Instant::now()
    }

    /// The scripts' time budget is for Rhai: a row the native evaluator answers whole reads no
    /// clock (a clock read per row was 1.3 % of the Online Retail import), and a row whose
    /// script runs in Rhai is still stopped by its budget.
    #[test]
    fn only_rows_that_run_in_rhai_start_the_script_budget() {
        use crate::script::sandbox::Budget;
        let header = HEADER.to_vec();
        let row = [
            "536365",
            "85123A",
            "WHITE HANGING HEART",
            "6",
            "2010-12-01 08:26:00",
            "2.55",
            "17850",
            "United Kingdom",
        ]
        .map(Cell::Str);
        let native = mapping("Quantity * UnitPrice", &["Quantity <= 0".to_owned()]);
        let mut bound = native.bind(&header, chrono_tz::UTC).unwrap();
        bound.set_budget(Some(Budget {
            limit: std::time::Duration::from_secs(60),
            now: counting_clock,
        }));
        for _ in 0..100 {
            assert!(matches!(bound.apply(&row), RowOutcome::Row(_)));
        }
        assert_eq!(CLOCK_READS.load(std::sync::atomic::Ordering::Relaxed), 0);

        let slow = mapping(
            "Quantity * UnitPrice",
            &[r#"let s = "abcdefgh"; for i in 0..10 { s += s; } for i in 0..1000000 { s.to_upper(); } false"#.to_owned()],
        );
        let mut bound = slow.bind(&header, chrono_tz::UTC).unwrap();
        assert!(bound.skips[0].native.is_none());
        bound.set_budget(Some(Budget {
            limit: std::time::Duration::from_millis(20),
            now: std::time::Instant::now,
        }));
        let started = std::time::Instant::now();
        match bound.apply(&row) {
            RowOutcome::Reject(rejection) => {
                assert!(rejection.reason.contains("time budget"), "{rejection:?}");
            }
            _ => panic!("the slow script was not stopped"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn outside_the_subset_stays_rhai() {
        let header = HEADER.to_vec();
        for source in [
            "let q = Quantity; q * UnitPrice",
            "if Quantity > 0 { UnitPrice } else { 0.0 }",
            "Quantity.to_float() * UnitPrice",
            "len(InvoiceNo) + 0",
            "InvoiceNo.sub_string(1).len()",
        ] {
            let mapping = mapping(source, &[]);
            let bound = mapping.bind(&header, chrono_tz::UTC).unwrap();
            assert!(bound.derives[0].native.is_none(), "{source}");
        }
    }
}
