//! Care-email templates: parsed, checked against the context schema, and rendered.
//!
//! A template is a subject, a plain-text part and an HTML part, written with
//! [minijinja](https://docs.rs/minijinja) (Jinja2 syntax). It comes in one of two forms:
//!
//! - one file `NAME.eml.j2`: a header block (`subject: …`; blank lines, `# …` and one-line
//!   `{# … #}` comments are allowed), then a line `--- text` and the
//!   text part, then optionally a line `--- html` and the HTML part;
//! - `NAME.txt.j2` (the header block, `--- text`, the text part), with optionally
//!   `NAME.html.j2` beside it (the HTML part alone).
//!
//! With an HTML part the email is `multipart/alternative` (text and HTML); without one it is
//! plain text.
//!
//! Rendering is strict: an undefined variable is an error, never an empty string. The HTML part
//! is auto-escaped (customer data cannot add markup); the text part and the subject are not (the
//! mail layer removes line breaks from the subject). A value that is none prints as nothing.
//!
//! [`load_templates`] checks every variable a template uses against the documented context
//! ([`TemplateContext`], [`CONTEXT_SCHEMA`]) and renders each template once against a sample
//! context, so a typo (`customer.nmae`) is a `path:line:col` diagnostic at `tiercare check`,
//! before anything is sent. Like the rest of the engine this module does no IO: it gets
//! `(path, text)` pairs and returns templates, diagnostics and rendered text.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::customer::feature::{FeatureType, features};
use crate::text::diagnostic::{Diagnostic, closest, list_names};

/// How much work one rendering may do (minijinja "fuel", roughly one unit per instruction): far
/// more than a care email needs, and a bound on a template that loops too long.
pub const RENDER_FUEL: u64 = 200_000;

/// A survey link's token as long as a real one gets (a 10-digit outbox id, the day, a 128-bit
/// MAC in hex): what the sample's `survey.link` carries, so that `check` counts an SMS
/// survey's length with its link.
pub const SAMPLE_SURVEY_TOKEN: &str = "1234567890.20467.0123456789abcdef0123456789abcdef";

/// The sample's `survey.link` when no public URL is known.
const SAMPLE_SURVEY_LINK: &str =
    "https://care.example.com/survey/1234567890.20467.0123456789abcdef0123456789abcdef";

/// The file name endings of template files, and the part(s) each holds.
pub const TEMPLATE_SUFFIXES: &[&str] = &[".eml.j2", ".txt.j2", ".html.j2"];

/// A file of the template folder, given by the caller (the engine reads no files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// The file's path as the user should see it in diagnostics (`templates/care.eml.j2`).
    pub path: String,
    /// Its text.
    pub text: String,
}

impl TemplateFile {
    /// A template file.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        TemplateFile {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// One rendered email: what goes into the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedTemplate {
    /// The subject, on one line (runs of whitespace, line breaks included, become one space).
    pub subject: String,
    /// The plain-text part, ending with one newline.
    pub text: String,
    /// The HTML part (escaped), ending with one newline; `None` for a text-only template.
    pub html: Option<String>,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// No template has this name (or it has errors: see `tiercare check`).
    #[error("there is no usable template `{name}`{}", known_hint(.known))]
    UnknownTemplate {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
    /// The template failed for this context (an undefined attribute, a filter error, too much
    /// work), at its place in the template file.
    #[error("{}", .0.render(false))]
    Render(Box<Diagnostic>),
    /// The context could not be turned into template values.
    #[error("cannot build the template context: {0}")]
    Context(String),
}

fn known_hint(known: &[String]) -> String {
    if known.is_empty() {
        ": there are no templates (add NAME.eml.j2 files to templates/)".to_owned()
    } else {
        format!(
            ": templates are {}",
            list_names(known.iter().map(String::as_str))
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The context
// ---------------------------------------------------------------------------------------------

/// Everything a template can read, for one customer. Serialised into the template's variables;
/// [`CONTEXT_SCHEMA`] lists the same names for `check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateContext {
    /// The customer.
    pub customer: CustomerContext,
    /// The customer's features at the rendering time, by feature name (see `tiercare
    /// functions`); a feature that is none prints as nothing.
    pub features: BTreeMap<String, serde_json::Value>,
    /// The customer's current tier.
    pub tier: TierContext,
    /// The customer's segment in each segment set, by set name (`segments.rfm`).
    pub segments: BTreeMap<String, String>,
    /// The customer's account manager.
    pub owner: OwnerContext,
    /// Products to suggest, best first (possibly empty).
    pub recommendations: Vec<RecommendationContext>,
    /// Who sends the email (the workspace's `[mail] from`).
    pub sender: SenderContext,
    /// The rendering day in the customer's time zone, `YYYY-MM-DD`.
    pub today: String,
    /// The survey a `survey:` follow-up asks; absent from other e-mails (so a template that
    /// reads it fails to render for them, as any undefined variable does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<SurveyContext>,
    /// The coupon code the e-mail carries (`email: { coupon: POOL }`); none in other e-mails,
    /// where reading `coupon.code` is an error, so no e-mail goes out with an empty code.
    pub coupon: Option<CouponContext>,
}

/// `survey.*`: a one-question survey and its answer links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyContext {
    /// The survey's id (`quarterly`).
    pub id: String,
    /// `nps` (scores 0 to 10) or `csat` (1 to 5).
    pub kind: String,
    /// The question.
    pub question: String,
    /// The lowest score.
    pub min: u8,
    /// The highest score.
    pub max: u8,
    /// One link per score, lowest first.
    pub links: Vec<SurveyLink>,
    /// By SMS: the one link, to a page that asks for the score (absent from e-mails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One of `survey.links`: a score and the signed link that answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyLink {
    /// The score.
    pub score: u8,
    /// The link (it carries no personal data).
    pub url: String,
}

impl SurveyContext {
    /// The context of `survey`, with the link of each score made by `url`.
    #[must_use]
    pub fn new(survey: &tiercare_types::Survey, url: impl Fn(u8) -> String) -> SurveyContext {
        let (min, max) = survey.kind.range();
        SurveyContext {
            id: survey.id.clone(),
            kind: survey.kind.as_str().to_owned(),
            question: survey.question.clone(),
            min,
            max,
            links: (min..=max)
                .map(|score| SurveyLink {
                    score,
                    url: url(score),
                })
                .collect(),
            link: None,
        }
    }

    /// The context with `link` as `survey.link`, the one link of an SMS survey.
    #[must_use]
    pub fn with_link(self, link: String) -> SurveyContext {
        SurveyContext {
            link: Some(link),
            ..self
        }
    }
}

/// `coupon.*`: the code issued to the customer with this e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponContext {
    /// The single-use code.
    pub code: String,
    /// Its pool.
    pub pool: String,
    /// What it is worth, as the pool says (`""` when it does not).
    pub value: String,
    /// What it is for (`""` when the pool does not say).
    pub description: String,
    /// The last day it can be used, `YYYY-MM-DD` in the customer's zone (`""`: never expires).
    pub expires: String,
}

/// `customer.*`. Text fields are `""` when not stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerContext {
    /// The customer's id (customer_id in your files).
    pub id: String,
    /// The full name.
    pub name: String,
    /// The first name: the name's first word, or the first word after the comma of
    /// `Last, First` (`""` when there is no name). Wrong for names written family name
    /// first ("Hu Jiahao"): greet with `greeting_name`.
    pub first_name: String,
    /// The name to greet the customer by: their `greeting_name` attribute (or `given_name`)
    /// when imported, else the full name, which is right in every name order.
    pub greeting_name: String,
    /// The email address.
    pub email: String,
    /// The region.
    pub region: String,
    /// The owner's manager id.
    pub owner: String,
    /// The IANA time zone.
    pub timezone: String,
    /// The birthday, `YYYY-MM-DD`.
    pub birthday: String,
    /// The custom attributes (`customer.attributes.industry`); a missing attribute is an error
    /// when printed, so write `customer.attributes.x | default("")` for optional ones.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// `tier.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierContext {
    /// The tier id (`A`), `""` before the first assessment.
    pub id: String,
    /// The tier's label from the rules (`Key accounts`), else the id.
    pub label: String,
    /// When the customer entered the tier, `YYYY-MM-DD` (`""` when not assessed).
    pub since: String,
}

/// `owner.*`: the account manager; every field `""` when the customer has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnerContext {
    /// The manager id.
    pub id: String,
    /// The manager's name.
    pub name: String,
    /// The manager's email address.
    pub email: String,
}

/// One item of `recommendations`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecommendationContext {
    /// The product's SKU.
    pub sku: String,
    /// Its description (the SKU when none is stored).
    pub description: String,
    /// How strongly it is recommended (co-purchase count; higher is better).
    pub score: f64,
}

/// `sender.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SenderContext {
    /// The display name (`Customer Care`), `""` when the address has none.
    pub name: String,
    /// The address.
    pub email: String,
}

/// What a name in the context holds, for the static check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A value without attributes (text, number, bool).
    Leaf,
    /// An object with these fields.
    Fields(&'static [(&'static str, Shape)]),
    /// The customer features: one field per feature name.
    Features,
    /// A map or list whose keys are not known in advance: any attribute path below is accepted
    /// by `check` (and checked when rendering).
    Open,
}

/// The context's variables and their shapes: what `check` accepts. Documented in
/// `templates/README.md`.
pub const CONTEXT_SCHEMA: &[(&str, Shape)] = &[
    (
        "customer",
        Shape::Fields(&[
            ("id", Shape::Leaf),
            ("name", Shape::Leaf),
            ("first_name", Shape::Leaf),
            ("greeting_name", Shape::Leaf),
            ("email", Shape::Leaf),
            ("region", Shape::Leaf),
            ("owner", Shape::Leaf),
            ("timezone", Shape::Leaf),
            ("birthday", Shape::Leaf),
            ("attributes", Shape::Open),
        ]),
    ),
    ("features", Shape::Features),
    (
        "tier",
        Shape::Fields(&[
            ("id", Shape::Leaf),
            ("label", Shape::Leaf),
            ("since", Shape::Leaf),
        ]),
    ),
    ("segments", Shape::Open),
    (
        "owner",
        Shape::Fields(&[
            ("id", Shape::Leaf),
            ("name", Shape::Leaf),
            ("email", Shape::Leaf),
        ]),
    ),
    ("recommendations", Shape::Open),
    (
        "sender",
        Shape::Fields(&[("name", Shape::Leaf), ("email", Shape::Leaf)]),
    ),
    ("today", Shape::Leaf),
    (
        "survey",
        Shape::Fields(&[
            ("id", Shape::Leaf),
            ("kind", Shape::Leaf),
            ("question", Shape::Leaf),
            ("min", Shape::Leaf),
            ("max", Shape::Leaf),
            ("links", Shape::Open),
            ("link", Shape::Leaf),
        ]),
    ),
    (
        "coupon",
        Shape::Fields(&[
            ("code", Shape::Leaf),
            ("pool", Shape::Leaf),
            ("value", Shape::Leaf),
            ("description", Shape::Leaf),
            ("expires", Shape::Leaf),
        ]),
    ),
];

/// Checks one attribute path (`customer.name`) against [`CONTEXT_SCHEMA`]: `Err` says which
/// segment is unknown and what exists there.
pub(crate) fn check_path(path: &str) -> Result<(), (String, Vec<&'static str>)> {
    let mut segments = path.split('.');
    let first = segments.next().unwrap_or_default();
    let Some(&(_, mut shape)) = CONTEXT_SCHEMA.iter().find(|(name, _)| *name == first) else {
        return Err((
            first.to_owned(),
            CONTEXT_SCHEMA.iter().map(|(name, _)| *name).collect(),
        ));
    };
    let mut walked = first.to_owned();
    for segment in segments {
        let next = match shape {
            Shape::Open => return Ok(()),
            Shape::Leaf => {
                return Err((format!("{walked}.{segment}"), Vec::new()));
            }
            Shape::Features => {
                let spec = features().iter().find(|spec| spec.name == segment);
                match spec {
                    Some(spec) if spec.ty == FeatureType::Map => Shape::Open,
                    Some(_) => Shape::Leaf,
                    None => {
                        return Err((
                            format!("{walked}.{segment}"),
                            features().iter().map(|spec| spec.name).collect(),
                        ));
                    }
                }
            }
            Shape::Fields(fields) => match fields.iter().find(|(name, _)| *name == segment) {
                Some((_, shape)) => *shape,
                None => {
                    return Err((
                        format!("{walked}.{segment}"),
                        fields.iter().map(|(name, _)| *name).collect(),
                    ));
                }
            },
        };
        walked.push('.');
        walked.push_str(segment);
        shape = next;
    }
    Ok(())
}

impl TemplateContext {
    /// A context with every field filled with plausible values: `check` renders every template
    /// against it, so mistakes that only show when rendering are caught before sending.
    #[must_use]
    pub fn sample() -> TemplateContext {
        let features = features()
            .iter()
            .map(|spec| {
                let value = match spec.ty {
                    FeatureType::Text => serde_json::json!("sample"),
                    FeatureType::Bool => serde_json::json!(true),
                    FeatureType::Int => serde_json::json!(3),
                    FeatureType::Float => serde_json::json!(2.5),
                    FeatureType::Time => serde_json::json!(1_767_225_600),
                    FeatureType::Map => serde_json::json!({}),
                };
                (spec.name.to_owned(), value)
            })
            .collect();
        TemplateContext {
            customer: CustomerContext {
                id: "C0000001".to_owned(),
                name: "Ada Lovelace".to_owned(),
                first_name: "Ada".to_owned(),
                greeting_name: "Ada".to_owned(),
                email: "ada@example.com".to_owned(),
                region: "London".to_owned(),
                owner: "alice".to_owned(),
                timezone: "Europe/London".to_owned(),
                birthday: "1990-12-10".to_owned(),
                attributes: serde_json::Map::new(),
            },
            features,
            tier: TierContext {
                id: "C".to_owned(),
                label: "Basic".to_owned(),
                since: "2026-01-01".to_owned(),
            },
            segments: BTreeMap::new(),
            owner: OwnerContext {
                id: "alice".to_owned(),
                name: "Alice Chen".to_owned(),
                email: "alice@example.com".to_owned(),
            },
            recommendations: vec![
                RecommendationContext {
                    sku: "SKU-1".to_owned(),
                    description: "Sample product".to_owned(),
                    score: 3.0,
                },
                RecommendationContext {
                    sku: "SKU-2".to_owned(),
                    description: "Another sample product".to_owned(),
                    score: 2.0,
                },
            ],
            sender: SenderContext {
                name: "Customer Care".to_owned(),
                email: "care@example.com".to_owned(),
            },
            today: "2026-01-15".to_owned(),
            survey: Some(
                SurveyContext::new(
                    &tiercare_types::Survey {
                        id: "quarterly".to_owned(),
                        kind: tiercare_types::SurveyKind::Nps,
                        question: "How likely are you to recommend us to a friend?".to_owned(),
                    },
                    |score| format!("https://care.example.com/survey/sample-{score}"),
                )
                .with_link(SAMPLE_SURVEY_LINK.to_owned()),
            ),
            coupon: Some(CouponContext {
                code: "WB-KXQT-4821".to_owned(),
                pool: "winback".to_owned(),
                value: "10%".to_owned(),
                description: "10% off your next order".to_owned(),
                expires: "2026-02-14".to_owned(),
            }),
        }
    }

    /// The context as template values. With `open_maps_answer_anything`, the open maps
    /// (attributes, segments) answer every key with a sample string: the sample rendering
    /// of `check` cannot know which attributes a workspace has.
    pub(crate) fn to_value(&self, open_maps_answer_anything: bool) -> Result<Value, RenderError> {
        let json =
            serde_json::to_value(self).map_err(|err| RenderError::Context(err.to_string()))?;
        let serde_json::Value::Object(top) = json else {
            return Err(RenderError::Context("the context is not an object".into()));
        };
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for (key, value) in top {
            out.insert(key, jinja_value(&value));
        }
        if open_maps_answer_anything {
            let anything = || Value::from_object(AnyKey);
            let mut customer: BTreeMap<String, Value> = BTreeMap::new();
            if let serde_json::Value::Object(fields) = serde_json::to_value(&self.customer)
                .map_err(|e| RenderError::Context(e.to_string()))?
            {
                for (key, value) in fields {
                    customer.insert(key, jinja_value(&value));
                }
            }
            customer.insert("attributes".into(), anything());
            out.insert("customer".into(), Value::from(customer));
            out.insert("segments".into(), anything());
            let mut features: BTreeMap<String, Value> = self
                .features
                .iter()
                .map(|(k, v)| (k.clone(), jinja_value(v)))
                .collect();
            features.insert("attr".into(), anything());
            out.insert("features".into(), Value::from(features));
        }
        Ok(Value::from(out))
    }
}

/// A serde value as a template value.
fn jinja_value<T: Serialize>(value: &T) -> Value {
    Value::from(Serde(value))
}

/// A map that has every key (with the value `"sample"`), for the sample rendering.
#[derive(Debug)]
struct AnyKey;

impl Object for AnyKey {
    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from("sample"))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a part's source sits in its file: the file, the line of the part's first line, and
/// the column of its first character (for the subject, after `subject:`).
#[derive(Debug, Clone)]
pub(crate) struct PartOrigin {
    pub(crate) path: String,
    pub(crate) first_line: usize,
    pub(crate) first_column: usize,
    pub(crate) file_text: Arc<str>,
}

impl PartOrigin {
    /// The file position of a (1-based) line and column inside the part.
    fn position(&self, line: usize, column: usize) -> (usize, usize) {
        let file_line = self.first_line + line.max(1) - 1;
        let file_column = if line <= 1 {
            self.first_column + column.max(1) - 1
        } else {
            column.max(1)
        };
        (file_line, file_column)
    }

    pub(crate) fn diagnostic(&self, line: usize, column: usize, message: String) -> Diagnostic {
        let (line, column) = self.position(line, column);
        Diagnostic::error(&self.path, line, column, message).with_source(&self.file_text)
    }
}

#[derive(Debug, Clone)]
struct TemplateParts {
    subject: PartOrigin,
    text: PartOrigin,
    html: Option<PartOrigin>,
    /// Whether a part reads `survey` (defined only for `survey:` follow-ups' e-mails).
    reads_survey: bool,
}

impl TemplateParts {
    fn origin(&self, part: Part) -> Option<&PartOrigin> {
        match part {
            Part::Subject => Some(&self.subject),
            Part::Text => Some(&self.text),
            Part::Html => self.html.as_ref(),
        }
    }
}

/// Templates loaded from a folder: the usable ones, compiled.
pub struct Templates {
    env: Environment<'static>,
    parts: BTreeMap<String, TemplateParts>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("names", &self.parts.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What [`load_templates`] returns: the templates without errors, and every problem found.
#[derive(Debug)]
pub struct LoadedTemplates {
    /// The usable templates (those without errors).
    pub templates: Templates,
    /// Every problem, each at `path:line:col`.
    pub diagnostics: Vec<Diagnostic>,
}

fn internal_name(template: &str, part: Part) -> String {
    format!("{template}#{part}")
}

pub(crate) fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_debug(true);
    env.set_auto_escape_callback(|name| {
        if name.ends_with("#html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // Block tags on their own line leave no blank line behind, as in most Jinja set-ups.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    // None prints as nothing (an optional feature without a value), not as `none`.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env
}

/// The template name of a file name (`care.eml.j2` → `care`) and its form, or `None` when the
/// file is not a template.
fn classify(file_name: &str) -> Option<(&str, &'static str)> {
    TEMPLATE_SUFFIXES
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix).map(|name| (name, *suffix)))
}

/// Splits a header-and-sections file: the `subject:` header and the sections after
/// `--- text` / `--- html` lines. `allowed` lists the sections this form may have; the text
/// section is required, the HTML one optional.
fn split_sections(
    path: &str,
    text: &Arc<str>,
    allowed: &[Part],
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<BTreeMap<Part, (String, PartOrigin)>> {
    let origin = |first_line: usize, first_column: usize| PartOrigin {
        path: path.to_owned(),
        first_line,
        first_column,
        file_text: text.clone(),
    };
    let error = |line: usize, column: usize, message: String, hint: &str| {
        Diagnostic::error(path, line, column, message)
            .with_source(text)
            .with_hint(hint)
    };
    let mut out: BTreeMap<Part, (String, PartOrigin)> = BTreeMap::new();
    let mut current: Option<(Part, usize, String)> = None;
    let mut ok = true;
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    // The header block: `key: value` lines (and blank or `#` comment lines) up to the first
    // section line.
    while let Some((index, raw)) = lines.peek().copied() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if line.starts_with("---") {
            break;
        }
        lines.next();
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("{#") {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            diagnostics.push(error(
                number,
                1,
                "expected a header line `subject: …` or a section line `--- text`".to_owned(),
                "a template starts with `subject: …`, then `--- text` and the text part",
            ));
            ok = false;
            continue;
        };
        let key_trimmed = key.trim();
        if key_trimmed != "subject" {
            let hint = match closest(key_trimmed, ["subject"]) {
                Some(best) => format!("did you mean `{best}`? the only header is `subject`"),
                None => "the only header is `subject`".to_owned(),
            };
            diagnostics.push(error(
                number,
                line.len() - line.trim_start().len() + 1,
                format!("unknown header `{key_trimmed}`"),
                &hint,
            ));
            ok = false;
            continue;
        }
        if out.contains_key(&Part::Subject) {
            diagnostics.push(error(
                number,
                1,
                "`subject` is given twice".to_owned(),
                "keep one `subject:` line",
            ));
            ok = false;
            continue;
        }
        let leading = value.len() - value.trim_start().len();
        let column = key.chars().count() + 1 + value[..leading].chars().count() + 1;
        out.insert(
            Part::Subject,
            (value.trim().to_owned(), origin(number, column)),
        );
    }
    let header_end_line = lines
        .peek()
        .map_or(text.lines().count() + 1, |(i, _)| i + 1);
    if !out.contains_key(&Part::Subject) {
        diagnostics.push(error(
            1,
            1,
            "the template has no `subject:` line".to_owned(),
            "start the file with a line such as `subject: A note for {{ customer.first_name }}`",
        ));
        ok = false;
    }
    let finish = |current: Option<(Part, usize, String)>,
                  out: &mut BTreeMap<Part, (String, PartOrigin)>| {
        if let Some((part, first_line, body)) = current {
            out.insert(part, (body, origin(first_line, 1)));
        }
    };
    for (index, raw) in lines {
        let line = raw.trim_end_matches(['\n', '\r']);
        let number = index + 1;
        if let Some(rest) = line.strip_prefix("---") {
            let name = rest.trim();
            let part = match name {
                "text" => Some(Part::Text),
                "html" => Some(Part::Html),
                _ => None,
            };
            match part {
                Some(part) if allowed.contains(&part) => {
                    if out.contains_key(&part)
                        || current.as_ref().is_some_and(|(p, _, _)| *p == part)
                    {
                        diagnostics.push(error(
                            number,
                            1,
                            format!("the {part} part is given twice"),
                            "keep one `--- text` and one `--- html` section",
                        ));
                        ok = false;
                    }
                    finish(current.take(), &mut out);
                    current = Some((part, number + 1, String::new()));
                    continue;
                }
                _ => {
                    let sections = allowed
                        .iter()
                        .map(|p| format!("`--- {p}`"))
                        .collect::<Vec<_>>()
                        .join(" and ");
                    diagnostics.push(error(
                        number,
                        1,
                        format!("unknown section `{line}`"),
                        &format!("sections in this file are {sections}"),
                    ));
                    ok = false;
                    continue;
                }
            }
        }
        if let Some((_, _, body)) = current.as_mut() {
            body.push_str(raw);
        }
    }
    finish(current.take(), &mut out);
    for part in allowed.iter().filter(|part| **part == Part::Text) {
        if !out.contains_key(part) {
            diagnostics.push(error(
                header_end_line,
                1,
                format!("the template has no {part} part"),
                &format!("add a line `--- {part}` followed by the {part} part"),
            ));
            ok = false;
        }
    }
    ok.then_some(out)
}

/// Loads every template among `files` (files whose names do not end in
/// [`TEMPLATE_SUFFIXES`] are ignored), checks it, and returns the usable ones with every
/// problem found.
///
/// Checks: the file form (header, sections, pairs complete), Jinja syntax, every variable a
/// part uses against [`CONTEXT_SCHEMA`] (with `did you mean`), and a rendering against
/// [`TemplateContext::sample`] (filters, attribute errors inside loops, too much work).
#[must_use]
pub fn load_templates(files: &[TemplateFile]) -> LoadedTemplates {
    // Per template name: its source parts.
    let mut found: BTreeMap<String, Vec<(&'static str, &TemplateFile)>> = BTreeMap::new();
    for file in files {
        let file_name = file.path.rsplit(['/', '\\']).next().unwrap_or(&file.path);
        if let Some((name, suffix)) = classify(file_name) {
            found
                .entry(name.to_owned())
                .or_default()
                .push((suffix, file));
        }
    }
    let sample = TemplateContext::sample().to_value(true);
    load_checked(
        &found,
        check_path,
        sample.as_ref().ok(),
        "found by rendering the template for a sample customer; see templates/README.md for the variables",
    )
}

/// Checks one attribute path of a template against a context's schema: `Err` says which segment
/// is unknown and what exists there.
pub(crate) type PathCheck = fn(&str) -> Result<(), (String, Vec<&'static str>)>;

/// Loads the templates `found` (per name, its files and their forms), checking every variable
/// with `check` and rendering each against `sample` (a template that fails is left out, with
/// `sample_hint` on its diagnostic): the machinery of [`load_templates`], for other contexts
/// too (the managers' digest, [`crate::care::digest`]).
pub(crate) fn load_checked(
    found: &BTreeMap<String, Vec<(&'static str, &TemplateFile)>>,
    check: PathCheck,
    sample: Option<&Value>,
    sample_hint: &str,
) -> LoadedTemplates {
    let mut diagnostics = Vec::new();
    let mut env = new_environment();
    let mut parts: BTreeMap<String, TemplateParts> = BTreeMap::new();
    for (name, sources) in found {
        let Some(sections) = assemble(name, sources, &mut diagnostics) else {
            continue;
        };
        let mut ok = true;
        let mut reads_survey = false;
        for (part, (source, origin)) in &sections {
            let internal = internal_name(name, *part);
            if let Err(err) = env.add_template_owned(internal.clone(), source.clone()) {
                diagnostics.push(jinja_diagnostic(&err, origin, source));
                ok = false;
                continue;
            }
            let Ok(template) = env.get_template(&internal) else {
                continue;
            };
            let mut used: Vec<String> = template.undeclared_variables(true).into_iter().collect();
            used.sort();
            for path in used {
                let top = path.split('.').next().unwrap_or_default();
                if env.globals().any(|(global, _)| global == top) {
                    continue;
                }
                reads_survey |= top == "survey";
                if let Err((wrong, known)) = check(&path) {
                    diagnostics.push(undefined_diagnostic(&path, &wrong, &known, origin, source));
                    ok = false;
                }
            }
        }
        if !ok {
            for part in sections.keys() {
                env.remove_template(&internal_name(name, *part));
            }
            continue;
        }
        let origins = |part: Part| sections.get(&part).map(|(_, origin)| origin.clone());
        let (Some(subject), Some(text)) = (origins(Part::Subject), origins(Part::Text)) else {
            continue;
        };
        parts.insert(
            name.clone(),
            TemplateParts {
                subject,
                text,
                html: origins(Part::Html),
                reads_survey,
            },
        );
    }
    let mut templates = Templates { env, parts };
    // A rendering against the sample context catches what the static check cannot.
    let names: Vec<String> = templates.parts.keys().cloned().collect();
    for name in names {
        let Some(sample) = sample else {
            break;
        };
        if let Err(err) = templates.render_jinja(&name, sample) {
            let diagnostic = match err {
                RenderError::Render(diagnostic) => {
                    let mut d = *diagnostic;
                    d.hint = Some(sample_hint.to_owned());
                    d
                }
                other => Diagnostic::error(name.clone(), 1, 1, other.to_string()),
            };
            diagnostics.push(diagnostic);
            for part in [Part::Subject, Part::Text, Part::Html] {
                templates.env.remove_template(&internal_name(&name, part));
            }
            templates.parts.remove(&name);
        }
    }
    LoadedTemplates {
        templates,
        diagnostics,
    }
}

/// The parts of one template from its files (`.eml.j2`, or `.txt.j2` + `.html.j2`).
fn assemble(
    name: &str,
    sources: &[(&'static str, &TemplateFile)],
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<BTreeMap<Part, (String, PartOrigin)>> {
    let file_of = |suffix: &str| sources.iter().find(|(s, _)| *s == suffix).map(|(_, f)| *f);
    let (eml, txt, html) = (file_of(".eml.j2"), file_of(".txt.j2"), file_of(".html.j2"));
    match (eml, txt, html) {
        (Some(eml), None, None) => split_sections(
            &eml.path,
            &Arc::from(without_bom(&eml.text)),
            &[Part::Text, Part::Html],
            diagnostics,
        ),
        (None, Some(txt), None) => split_sections(
            &txt.path,
            &Arc::from(without_bom(&txt.text)),
            &[Part::Text],
            diagnostics,
        ),
        (None, Some(txt), Some(html)) => {
            let mut sections = split_sections(
                &txt.path,
                &Arc::from(without_bom(&txt.text)),
                &[Part::Text],
                diagnostics,
            )?;
            sections.insert(
                Part::Html,
                (
                    without_bom(&html.text).to_owned(),
                    PartOrigin {
                        path: html.path.clone(),
                        first_line: 1,
                        first_column: 1,
                        file_text: Arc::from(without_bom(&html.text)),
                    },
                ),
            );
            Some(sections)
        }
        (Some(eml), _, _) => {
            let other = txt.or(html).map_or("", |f| f.path.as_str());
            diagnostics.push(
                Diagnostic::error(
                    &eml.path,
                    1,
                    1,
                    format!("template `{name}` is defined twice: here and in {other}"),
                )
                .with_hint(format!(
                    "keep either {name}.eml.j2 or the pair {name}.txt.j2 + {name}.html.j2"
                )),
            );
            None
        }
        (None, None, Some(html)) => {
            diagnostics.push(
                Diagnostic::error(
                    &html.path,
                    1,
                    1,
                    format!("template `{name}` has an HTML part but no {name}.txt.j2"),
                )
                .with_hint(format!(
                    "add {name}.txt.j2 with the `subject:` line and the text part"
                )),
            );
            None
        }
        (None, None, None) => None,
    }
}

/// The text without a leading byte-order mark (some editors write one).
pub(crate) fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Line and column (1-based, in characters) of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

pub(crate) fn jinja_diagnostic(
    err: &minijinja::Error,
    origin: &PartOrigin,
    source: &str,
) -> Diagnostic {
    let (line, column) = match err.range() {
        Some(range) => line_column(source, range.start),
        None => (err.line().unwrap_or(1), 1),
    };
    let message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    origin.diagnostic(line, column, format!("in the {}: {message}", part_of(err)))
}

/// Which part of a template an error is in, from minijinja's template name (`NAME#part`).
fn part_of(err: &minijinja::Error) -> &'static str {
    match err.name().and_then(|name| name.rsplit('#').next()) {
        Some("subject") => "subject",
        Some("html") => "html part",
        Some("sms") => "SMS text",
        _ => "text part",
    }
}

/// Where `path` (`customer.nmae`) is first used in `source`: the byte offset of the full path,
/// else of its last segment, else of its first.
fn find_use(source: &str, path: &str) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let find_word = |needle: &str| {
        source.match_indices(needle).find_map(|(at, _)| {
            let before_ok = source[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !is_ident(c));
            let after_ok = source[at + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !is_ident(c));
            (before_ok && after_ok).then_some(at)
        })
    };
    find_word(path)
        .or_else(|| path.rsplit('.').next().and_then(find_word))
        .or_else(|| path.split('.').next().and_then(find_word))
}

pub(crate) fn undefined_diagnostic(
    path: &str,
    wrong: &str,
    known: &[&str],
    origin: &PartOrigin,
    source: &str,
) -> Diagnostic {
    let (line, column) = find_use(source, path).map_or((1, 1), |at| line_column(source, at));
    origin
        .diagnostic(line, column, format!("undefined variable `{wrong}`"))
        .with_hint(format!(
            "{} (templates/README.md lists the variables)",
            undefined_hint(wrong, known)
        ))
}

/// What to say about an undefined variable `wrong`, given the names `known` beside it.
fn undefined_hint(wrong: &str, known: &[&str]) -> String {
    let last = wrong.rsplit('.').next().unwrap_or(wrong);
    let parent = wrong.rsplit_once('.').map(|(parent, _)| parent);
    match (closest(last, known.iter().copied()), parent) {
        (Some(best), Some(parent)) if known.len() > 12 => {
            format!("did you mean `{parent}.{best}`?")
        }
        (Some(best), Some(parent)) => format!(
            "did you mean `{parent}.{best}`? `{parent}` has {}",
            list_names(known.iter().copied())
        ),
        (Some(best), None) => format!("did you mean `{best}`?"),
        (None, Some(parent)) if known.is_empty() => {
            format!("`{parent}` is a plain value without attributes")
        }
        (None, Some("features")) => "`tiercare functions` lists the features".to_owned(),
        (None, Some(parent)) => {
            format!("`{parent}` has {}", list_names(known.iter().copied()))
        }
        (None, None) => format!("templates can use {}", list_names(known.iter().copied())),
    }
}

impl Templates {
    /// The usable template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.keys().map(String::as_str)
    }

    /// Whether the usable template `name` reads `survey` (which only the e-mails of `survey:`
    /// follow-ups have).
    #[must_use]
    pub fn reads_survey(&self, name: &str) -> bool {
        self.parts.get(name).is_some_and(|parts| parts.reads_survey)
    }

    /// Whether a usable template has this name.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.parts.contains_key(name)
    }

    /// Renders template `name` for `context`.
    ///
    /// # Errors
    /// [`RenderError::UnknownTemplate`], or [`RenderError::Render`] at the template's
    /// `path:line:col` (an attribute the customer does not have, too much work).
    pub fn render(
        &self,
        name: &str,
        context: &TemplateContext,
    ) -> Result<RenderedTemplate, RenderError> {
        self.render_value(name, context, false)
    }

    fn render_value(
        &self,
        name: &str,
        context: &TemplateContext,
        sample: bool,
    ) -> Result<RenderedTemplate, RenderError> {
        self.render_jinja(name, &context.to_value(sample)?)
    }

    /// Renders template `name` for any serialisable `context` (the managers' digest's).
    ///
    /// # Errors
    /// As [`Templates::render`].
    pub fn render_serialized<C: Serialize>(
        &self,
        name: &str,
        context: &C,
    ) -> Result<RenderedTemplate, RenderError> {
        self.render_jinja(name, &jinja_value(context))
    }

    fn render_jinja(&self, name: &str, value: &Value) -> Result<RenderedTemplate, RenderError> {
        let Some(parts) = self.parts.get(name) else {
            return Err(RenderError::UnknownTemplate {
                name: name.to_owned(),
                known: self.parts.keys().cloned().collect(),
            });
        };
        let render = |part: Part| -> Result<String, RenderError> {
            let Some(origin) = parts.origin(part) else {
                return Ok(String::new());
            };
            let internal = internal_name(name, part);
            let template = self
                .env
                .get_template(&internal)
                .map_err(|err| RenderError::Render(Box::new(jinja_diagnostic(&err, origin, ""))))?;
            template.render(value).map_err(|err| {
                let source = err.template_source().unwrap_or_default().to_owned();
                RenderError::Render(Box::new(jinja_diagnostic(&err, origin, &source)))
            })
        };
        let subject = render(Part::Subject)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let text = format!("{}\n", render(Part::Text)?.trim_matches('\n').trim_end());
        let html = match parts.html {
            Some(_) => Some(format!(
                "{}\n",
                render(Part::Html)?.trim_matches('\n').trim_end()
            )),
            None => None,
        };
        Ok(RenderedTemplate {
            subject,
            text,
            html,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// One-line texts of the rules (task titles)
// ---------------------------------------------------------------------------------------------

/// What is wrong with a rule's text field (a task title), at a character offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextProblem {
    /// 0-based offset in characters of the offending place in the text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// The name of a text field's template in its environment (not an HTML part: not escaped).
const TEXT_NAME: &str = "text#text";

/// Checks a one-line text field of the rules (a task title such as `Monthly review:
/// {{ customer.name }} ({{ customer.region }})`) as an email template is checked: its syntax,
/// every variable it uses against [`CONTEXT_SCHEMA`] (with "did you mean"), and a rendering for
/// the sample customer. The first problem is returned, at its offset in the text.
///
/// # Errors
/// The first problem found.
pub fn check_text(text: &str) -> Result<(), TextProblem> {
    let env = new_environment();
    let char_offset = |byte: usize| {
        text.get(..byte.min(text.len()))
            .map_or(0, |s| s.chars().count())
    };
    let template = env.template_from_named_str(TEXT_NAME, text).map_err(|err| {
        let offset = err.range().map_or(0, |range| char_offset(range.start));
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        TextProblem {
            offset,
            message,
            hint: "placeholders are written `{{ customer.name }}` (templates/README.md lists the variables)".to_owned(),
        }
    })?;
    let mut used: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    used.sort();
    for path in used {
        if let Err((wrong, known)) = check_path(&path) {
            let offset = find_use(text, &path).map_or(0, char_offset);
            return Err(TextProblem {
                offset,
                message: format!("undefined variable `{wrong}`"),
                hint: format!(
                    "{} (templates/README.md lists the variables)",
                    undefined_hint(&wrong, &known)
                ),
            });
        }
    }
    let value = TemplateContext::sample()
        .to_value(true)
        .map_err(|err| TextProblem {
            offset: 0,
            message: err.to_string(),
            hint: String::new(),
        })?;
    template.render(&value).map(drop).map_err(|err| {
        let offset = err.range().map_or(0, |range| char_offset(range.start));
        let message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        TextProblem {
            offset,
            message,
            hint: "found by rendering the text for a sample customer; see templates/README.md for the variables".to_owned(),
        }
    })
}

/// Renders one-line text fields of the rules (checked by [`check_text`]), each compiled once
/// and kept: a batch renders the same few titles for many customers.
pub struct TextTemplates {
    env: Environment<'static>,
}

impl fmt::Debug for TextTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextTemplates").finish_non_exhaustive()
    }
}

impl Default for TextTemplates {
    fn default() -> Self {
        TextTemplates {
            env: new_environment(),
        }
    }
}

impl TextTemplates {
    /// Renders `text` for `context` on one line (runs of whitespace, line breaks included,
    /// become one space). Strict, like the templates: a value the customer lacks is an error.
    /// With `lenient`, such a value prints as nothing instead (for a task that must be created
    /// even when one value is missing).
    ///
    /// # Errors
    /// [`RenderError::Render`] with the problem (its position is in the text, line 1).
    pub fn render(
        &mut self,
        text: &str,
        context: &TemplateContext,
        lenient: bool,
    ) -> Result<String, RenderError> {
        let diagnostic = |err: &minijinja::Error| {
            let message = match err.detail() {
                Some(detail) => format!("{}: {detail}", err.kind()),
                None => err.kind().to_string(),
            };
            let column = err.range().map_or(1, |range| {
                text.get(..range.start).map_or(0, |s| s.chars().count()) + 1
            });
            RenderError::Render(Box::new(Diagnostic::error("text", 1, column, message)))
        };
        if self.env.get_template(text).is_err() {
            self.env
                .add_template_owned(text.to_owned(), text.to_owned())
                .map_err(|err| diagnostic(&err))?;
        }
        self.env.set_undefined_behavior(if lenient {
            UndefinedBehavior::Chainable
        } else {
            UndefinedBehavior::Strict
        });
        let template = self
            .env
            .get_template(text)
            .map_err(|err| diagnostic(&err))?;
        let rendered = template
            .render(context.to_value(false)?)
            .map_err(|err| diagnostic(&err))?;
        Ok(rendered.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> LoadedTemplates {
        let files: Vec<TemplateFile> = files
            .iter()
            .map(|(path, text)| TemplateFile::new(*path, *text))
            .collect();
        load_templates(&files)
    }

    fn rendered(diagnostics: &[Diagnostic]) -> String {
        crate::render_all(diagnostics, false)
    }

    const CARE: &str = "\
subject: Hello {{ customer.first_name }}
--- text
Dear {{ customer.name }},
{% for item in recommendations %}
- {{ item.description }}
{% endfor %}
--- html
<p>Dear {{ customer.name }},</p>
";

    #[test]
    fn a_single_file_template_renders_its_three_parts() {
        let loaded = load(&[("templates/care.eml.j2", CARE)]);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            rendered(&loaded.diagnostics)
        );
        let mut context = TemplateContext::sample();
        context.customer.name = "Bob <script>alert(1)</script>".into();
        context.customer.first_name = "Bob\r\nBcc: x@example.com".into();
        let email = loaded.templates.render("care", &context).unwrap();
        assert_eq!(email.subject, "Hello Bob Bcc: x@example.com");
        assert_eq!(
            email.text,
            "Dear Bob <script>alert(1)</script>,\n- Sample product\n- Another sample product\n"
        );
        assert_eq!(
            email.html.as_deref(),
            Some("<p>Dear Bob &lt;script&gt;alert(1)&lt;&#x2f;script&gt;,</p>\n")
        );
    }

    #[test]
    fn a_pair_of_files_is_one_template() {
        let loaded = load(&[
            (
                "t/offer.txt.j2",
                "subject: For you\n--- text\nHi {{ customer.name }}\n",
            ),
            ("t/offer.html.j2", "<b>{{ customer.name }}</b>\n"),
            ("t/README.md", "not a template"),
        ]);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            rendered(&loaded.diagnostics)
        );
        assert_eq!(loaded.templates.names().collect::<Vec<_>>(), ["offer"]);
        let email = loaded
            .templates
            .render("offer", &TemplateContext::sample())
            .unwrap();
        assert_eq!(email.subject, "For you");
        assert_eq!(email.text, "Hi Ada Lovelace\n");
        assert_eq!(email.html.as_deref(), Some("<b>Ada Lovelace</b>\n"));
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_endings_are_fine() {
        let loaded = load(&[(
            "t/w.eml.j2",
            "\u{feff}subject: Hi {{ customer.name }}\r\n--- text\r\nHello\r\n--- html\r\n<p>x</p>\r\n",
        )]);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            rendered(&loaded.diagnostics)
        );
        let email = loaded
            .templates
            .render("w", &TemplateContext::sample())
            .unwrap();
        assert_eq!(email.subject, "Hi Ada Lovelace");
        assert_eq!(email.text.trim_end(), "Hello");
    }

    #[test]
    fn a_template_without_html_is_plain_text() {
        let loaded = load(&[
            (
                "t/a.eml.j2",
                "subject: A\n--- text\nHi {{ customer.name }}\n",
            ),
            ("t/b.txt.j2", "subject: B\n--- text\nHello\n"),
        ]);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            rendered(&loaded.diagnostics)
        );
        let a = loaded
            .templates
            .render("a", &TemplateContext::sample())
            .unwrap();
        assert_eq!((a.text.as_str(), a.html), ("Hi Ada Lovelace\n", None));
        let b = loaded
            .templates
            .render("b", &TemplateContext::sample())
            .unwrap();
        assert_eq!((b.subject.as_str(), b.html), ("B", None));
    }

    #[test]
    fn an_undefined_variable_is_reported_at_its_place_with_a_suggestion() {
        let loaded = load(&[(
            "templates/care.eml.j2",
            "subject: Hi\n--- text\nDear {{ customer.nmae }},\n--- html\n<p>{{ custmer }}</p>\n",
        )]);
        let text = rendered(&loaded.diagnostics);
        assert!(
            text.contains("templates/care.eml.j2:3:9: error: undefined variable `customer.nmae`"),
            "{text}"
        );
        assert!(text.contains("did you mean `customer.name`?"), "{text}");
        assert!(
            text.contains("templates/care.eml.j2:5:7: error: undefined variable `custmer`"),
            "{text}"
        );
        assert!(text.contains("did you mean `customer`?"), "{text}");
        assert!(!loaded.templates.contains("care"));
    }

    #[test]
    fn features_and_open_maps_are_checked_as_documented() {
        let loaded = load(&[(
            "templates/x.eml.j2",
            "subject: {{ features.revenue_total }} {{ segments.rfm }}\n--- text\n\
             {{ customer.attributes.industry }} {{ features.revenu_total }}\n--- html\n\
             {{ customer.name.first }}\n",
        )]);
        let text = rendered(&loaded.diagnostics);
        assert!(
            text.contains("x.eml.j2:3:39: error: undefined variable `features.revenu_total`"),
            "{text}"
        );
        assert!(
            text.contains("did you mean `features.revenue_total`"),
            "{text}"
        );
        assert!(
            text.contains("x.eml.j2:5:4: error: undefined variable `customer.name.first`"),
            "{text}"
        );
        assert_eq!(loaded.diagnostics.len(), 2, "{text}");
    }

    #[test]
    fn syntax_errors_point_into_the_file() {
        let loaded = load(&[(
            "templates/bad.eml.j2",
            "subject: Hi {{ customer.name\n--- text\nok\n--- html\n{% for x in %}\n",
        )]);
        let text = rendered(&loaded.diagnostics);
        assert!(text.contains("templates/bad.eml.j2:1:"), "{text}");
        assert!(text.contains("templates/bad.eml.j2:5:"), "{text}");
        assert!(text.contains("syntax error"), "{text}");
    }

    #[test]
    fn the_file_form_is_checked() {
        let loaded = load(&[
            ("t/a.eml.j2", "subjet: x\n--- html\nhi\n"),
            ("t/b.html.j2", "<p>hi</p>\n"),
            (
                "t/c.eml.j2",
                "subject: x\n--- text\nhi\n--- html\nhi\n--- body\n",
            ),
        ]);
        let text = rendered(&loaded.diagnostics);
        assert!(
            text.contains("t/a.eml.j2:1:1: error: unknown header `subjet`"),
            "{text}"
        );
        assert!(text.contains("did you mean `subject`?"), "{text}");
        assert!(
            text.contains("t/a.eml.j2:2:1: error: the template has no text part"),
            "{text}"
        );
        assert!(
            text.contains("t/b.html.j2:1:1: error: template `b` has an HTML part but no b.txt.j2"),
            "{text}"
        );
        assert!(
            text.contains("t/c.eml.j2:6:1: error: unknown section `--- body`"),
            "{text}"
        );
        assert_eq!(loaded.templates.names().count(), 0);
    }

    #[test]
    fn rendering_errors_are_caught_with_the_sample_customer() {
        // `item.prize` passes the static check (a loop variable) but fails when rendered.
        let loaded = load(&[(
            "t/r.eml.j2",
            "subject: x\n--- text\n{% for item in recommendations %}{{ item.prize.amount }}{% endfor %}\n--- html\nx\n",
        )]);
        let text = rendered(&loaded.diagnostics);
        assert!(text.contains("t/r.eml.j2:3:"), "{text}");
        assert!(text.contains("undefined"), "{text}");
    }

    #[test]
    fn a_missing_attribute_fails_the_rendering_but_default_works() {
        let loaded = load(&[(
            "t/a.eml.j2",
            "subject: x\n--- text\n{{ customer.attributes.industry | default(\"-\") }}/{{ customer.attributes.vip }}\n--- html\n{% if customer.attributes.vip is defined %}vip{% endif %}\n",
        )]);
        assert!(
            loaded.diagnostics.is_empty(),
            "{}",
            rendered(&loaded.diagnostics)
        );
        let mut context = TemplateContext::sample();
        let err = loaded.templates.render("a", &context).unwrap_err();
        assert!(err.to_string().contains("t/a.eml.j2:3:"), "{err}");
        context
            .customer
            .attributes
            .insert("vip".into(), serde_json::json!("yes"));
        let email = loaded.templates.render("a", &context).unwrap();
        assert_eq!(email.text, "-/yes\n");
        assert_eq!(email.html.as_deref(), Some("vip\n"));
    }

    #[test]
    fn none_prints_as_nothing_and_endless_work_is_stopped() {
        let loaded = load(&[
            (
                "t/n.eml.j2",
                "subject: [{{ features.satisfaction_avg }}]\n--- text\nx\n--- html\nx\n",
            ),
            (
                "t/loop.eml.j2",
                "subject: x\n--- text\n{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}\n--- html\nx\n",
            ),
        ]);
        let text = rendered(&loaded.diagnostics);
        assert!(text.contains("t/loop.eml.j2:3:"), "{text}");
        let mut context = TemplateContext::sample();
        context
            .features
            .insert("satisfaction_avg".into(), serde_json::Value::Null);
        assert_eq!(
            loaded.templates.render("n", &context).unwrap().subject,
            "[]"
        );
    }

    #[test]
    fn the_schema_lists_exactly_the_context_fields() {
        let json = serde_json::to_value(TemplateContext::sample()).unwrap();
        let top: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut schema: Vec<&str> = CONTEXT_SCHEMA.iter().map(|(name, _)| *name).collect();
        schema.sort_unstable();
        assert_eq!(top, schema);
        for (name, shape) in CONTEXT_SCHEMA {
            if let Shape::Fields(fields) = shape {
                let mut expected: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                expected.sort_unstable();
                let actual: Vec<&str> = json[name]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(actual, expected, "{name}");
            }
        }
        for spec in features() {
            assert!(check_path(&format!("features.{}", spec.name)).is_ok());
        }
    }
}
