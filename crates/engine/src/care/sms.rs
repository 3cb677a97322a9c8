//! SMS templates (`NAME.sms.j2`) and the length of an SMS: its encoding and segments.
//!
//! An SMS template is plain text written with the same minijinja syntax, the same context
//! ([`TemplateContext`]) and the same strict rendering as an email template: an undefined
//! variable is an error, never an empty string. The whole file is the message; there is no
//! subject and no HTML. Leading and trailing blank lines and trailing spaces are dropped.
//!
//! The length of a message decides what it costs: a text whose every character is in the GSM
//! 03.38 alphabet (with its extension table, whose characters `^{}\[~]|€` and form feed take
//! two septets each) is sent as GSM-7, 160 septets in one segment or 153 per segment of a
//! concatenated message; any other character (any Chinese, most emoji) makes the whole text
//! UCS-2, 70 UTF-16 units in one segment or 67 per segment. A character is never split between
//! two segments (an escape and its character, or a surrogate pair).
//!
//! [`load_sms_templates`] checks each template and renders it for the sample customer, and
//! reports its encoding and length; a template whose sample needs more segments than the
//! workspace allows (`[sms] max_segments`, default 3) is an error at `path:1:1`. Like the rest
//! of the engine this module does no IO.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::Environment;
use serde::Serialize;

use crate::care::template::{
    PartOrigin, RenderError, TemplateContext, TemplateFile, check_path, jinja_diagnostic,
    new_environment, undefined_diagnostic, without_bom,
};
use crate::text::diagnostic::Diagnostic;

/// The file name ending of SMS templates.
pub const SMS_TEMPLATE_SUFFIX: &str = ".sms.j2";

/// The default of `[sms] max_segments`: the most segments a message may need.
pub const DEFAULT_MAX_SEGMENTS: u32 = 3;

/// The GSM 03.38 basic alphabet (one septet each; the escape itself left out).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table (an escape and the character: two septets each).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// How an SMS is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SmsEncoding {
    /// The GSM 03.38 7-bit alphabet (with its extension table).
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UTF-16 (UCS-2 as the networks call it): any character outside GSM-7.
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl fmt::Display for SmsEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        })
    }
}

/// The length of one SMS text: its encoding, its size in that encoding's units and the
/// segments it is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsLength {
    /// The encoding.
    pub encoding: SmsEncoding,
    /// Characters (Unicode scalar values).
    pub characters: usize,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Segments (1 for an empty text).
    pub segments: u32,
}

impl fmt::Display for SmsLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.encoding {
            SmsEncoding::Gsm7 => "septets",
            SmsEncoding::Ucs2 => "UTF-16 units",
        };
        let plural = if self.segments == 1 { "" } else { "s" };
        write!(
            f,
            "{}, {} characters ({} {unit}), {} segment{plural}",
            self.encoding, self.characters, self.units, self.segments
        )
    }
}

/// The septets a character takes in GSM-7: 1, 2 (extension table) or `None` (not in GSM-7).
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// How many segments `sizes` (each character's units, never split) fill when a single
/// segment holds `single` units and each of several holds `multi`.
fn count_segments(sizes: &[usize], single: usize, multi: usize) -> u32 {
    let total: usize = sizes.iter().sum();
    if total <= single {
        return 1;
    }
    let mut segments = 1u32;
    let mut used = 0;
    for &size in sizes {
        if used + size > multi {
            segments += 1;
            used = 0;
        }
        used += size;
    }
    segments
}

/// The encoding, size and segments of `text` as an SMS.
#[must_use]
pub fn sms_length(text: &str) -> SmsLength {
    let characters = text.chars().count();
    let septets: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match septets {
        Some(sizes) => SmsLength {
            encoding: SmsEncoding::Gsm7,
            characters,
            units: sizes.iter().sum(),
            segments: count_segments(&sizes, 160, 153),
        },
        None => {
            let sizes: Vec<usize> = text.chars().map(char::len_utf16).collect();
            SmsLength {
                encoding: SmsEncoding::Ucs2,
                characters,
                units: sizes.iter().sum(),
                segments: count_segments(&sizes, 70, 67),
            }
        }
    }
}

/// One SMS template's sample: what `check` reports of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmsSample {
    /// The template's name (`birthday` for `birthday.sms.j2`).
    pub name: String,
    /// Its file, as given.
    pub path: String,
    /// The length of its rendering for the sample customer.
    pub length: SmsLength,
}

/// SMS templates loaded from a folder: the usable ones, compiled.
pub struct SmsTemplates {
    env: Environment<'static>,
    origins: BTreeMap<String, PartOrigin>,
}

impl fmt::Debug for SmsTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsTemplates")
            .field("names", &self.origins.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for SmsTemplates {
    fn default() -> Self {
        SmsTemplates {
            env: new_environment(),
            origins: BTreeMap::new(),
        }
    }
}

/// What [`load_sms_templates`] returns.
#[derive(Debug, Default)]
pub struct LoadedSmsTemplates {
    /// The usable templates (those without errors).
    pub templates: SmsTemplates,
    /// Each usable template's sample length, by name.
    pub samples: Vec<SmsSample>,
    /// Every problem, each at `path:line:col`.
    pub diagnostics: Vec<Diagnostic>,
}

fn internal_name(name: &str) -> String {
    format!("{name}#sms")
}

/// Loads every SMS template among `files` (names ending in [`SMS_TEMPLATE_SUFFIX`]; others are
/// ignored), checks each (syntax, every variable against the context schema, a rendering for
/// the sample customer) and measures its sample: more than `max_segments` segments is an
/// error.
#[must_use]
pub fn load_sms_templates(files: &[TemplateFile], max_segments: u32) -> LoadedSmsTemplates {
    load_sms_templates_for(files, max_segments, None)
}

/// [`load_sms_templates`], measuring each sample with `survey.link` as it will be sent:
/// `survey_url` (`<public_url>/survey`, when known) followed by a token as long as a real one
/// ([`crate::care::template::SAMPLE_SURVEY_TOKEN`]), so that an SMS survey's link is counted
/// in its segments.
#[must_use]
pub fn load_sms_templates_for(
    files: &[TemplateFile],
    max_segments: u32,
    survey_url: Option<&str>,
) -> LoadedSmsTemplates {
    let mut sample = TemplateContext::sample();
    if let (Some(base), Some(survey)) = (survey_url, sample.survey.as_mut()) {
        survey.link = Some(format!(
            "{}/{}",
            base.trim_end_matches('/'),
            crate::care::template::SAMPLE_SURVEY_TOKEN
        ));
    }
    let mut loaded = LoadedSmsTemplates::default();
    let env = &mut loaded.templates.env;
    for file in files {
        let file_name = file.path.rsplit(['/', '\\']).next().unwrap_or(&file.path);
        let Some(name) = file_name.strip_suffix(SMS_TEMPLATE_SUFFIX) else {
            continue;
        };
        let text = without_bom(&file.text).to_owned();
        let origin = PartOrigin {
            path: file.path.clone(),
            first_line: 1,
            first_column: 1,
            file_text: Arc::from(text.as_str()),
        };
        let internal = internal_name(name);
        if let Err(err) = env.add_template_owned(internal.clone(), text.clone()) {
            loaded
                .diagnostics
                .push(jinja_diagnostic(&err, &origin, &text));
            continue;
        }
        let Ok(template) = env.get_template(&internal) else {
            continue;
        };
        let mut used: Vec<String> = template.undeclared_variables(true).into_iter().collect();
        used.sort();
        let mut ok = true;
        for path in used {
            if let Err((wrong, known)) = check_path(&path) {
                loaded
                    .diagnostics
                    .push(undefined_diagnostic(&path, &wrong, &known, &origin, &text));
                ok = false;
            }
        }
        if !ok {
            env.remove_template(&internal);
            continue;
        }
        loaded.templates.origins.insert(name.to_owned(), origin);
    }
    let names: Vec<String> = loaded.templates.origins.keys().cloned().collect();
    for name in names {
        let origin = loaded.templates.origins[&name].clone();
        let problem = match loaded.templates.render_value(&name, &sample, true) {
            Ok(text) => {
                let length = sms_length(&text);
                if length.segments > max_segments {
                    Some(
                        origin
                            .diagnostic(
                                1,
                                1,
                                format!(
                                    "SMS template `{name}` needs {} segments for the sample \
                                     customer ({length}), more than the {max_segments} allowed",
                                    length.segments
                                ),
                            )
                            .with_hint(format!(
                                "shorten the text, or raise `[sms] max_segments` in \
                                 tiercare.toml; {} is {} per segment",
                                length.encoding,
                                match length.encoding {
                                    SmsEncoding::Gsm7 => "153 septets",
                                    SmsEncoding::Ucs2 => "67 characters (any Chinese makes UCS-2)",
                                }
                            )),
                    )
                } else {
                    loaded.samples.push(SmsSample {
                        name: name.clone(),
                        path: origin.path.clone(),
                        length,
                    });
                    None
                }
            }
            Err(RenderError::Render(diagnostic)) => {
                let mut d = *diagnostic;
                d.hint = Some(
                    "found by rendering the template for a sample customer; see templates/README.md for the variables"
                        .to_owned(),
                );
                Some(d)
            }
            Err(other) => Some(origin.diagnostic(1, 1, other.to_string())),
        };
        if let Some(problem) = problem {
            loaded.diagnostics.push(problem);
            loaded.templates.env.remove_template(&internal_name(&name));
            loaded.templates.origins.remove(&name);
        }
    }
    loaded
}

impl SmsTemplates {
    /// The usable template names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.origins.keys().map(String::as_str)
    }

    /// Whether a usable SMS template has this name.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.origins.contains_key(name)
    }

    /// Renders SMS template `name` for `context`: the message's text.
    ///
    /// # Errors
    /// [`RenderError::UnknownTemplate`], or [`RenderError::Render`] at the template's
    /// `path:line:col`.
    pub fn render(&self, name: &str, context: &TemplateContext) -> Result<String, RenderError> {
        self.render_value(name, context, false)
    }

    /// Renders `source`, a one-line template written in the settings (an SMS provider's
    /// template parameter, `{{ customer.name }}`), for `context` with these templates'
    /// environment and its strict undefined: the text, trimmed.
    ///
    /// # Errors
    /// [`RenderError::Context`] naming what failed (a syntax error, an undefined variable).
    pub fn render_inline(
        &self,
        source: &str,
        context: &TemplateContext,
    ) -> Result<String, RenderError> {
        let value = context.to_value(false)?;
        self.env
            .render_str(source, &value)
            .map(|text| text.trim().to_owned())
            .map_err(|err| RenderError::Context(format!("`{source}`: {err}")))
    }

    /// [`SmsTemplates::render_inline`] for the sample customer (as `check` renders the SMS
    /// templates): whether `source` renders, and what it gives.
    ///
    /// # Errors
    /// As [`SmsTemplates::render_inline`].
    pub fn render_inline_sample(&self, source: &str) -> Result<String, RenderError> {
        let value = TemplateContext::sample().to_value(true)?;
        self.env
            .render_str(source, &value)
            .map(|text| text.trim().to_owned())
            .map_err(|err| RenderError::Context(format!("`{source}`: {err}")))
    }

    fn render_value(
        &self,
        name: &str,
        context: &TemplateContext,
        sample: bool,
    ) -> Result<String, RenderError> {
        let Some(origin) = self.origins.get(name) else {
            return Err(RenderError::UnknownTemplate {
                name: format!("{name}{SMS_TEMPLATE_SUFFIX}"),
                known: self.origins.keys().cloned().collect(),
            });
        };
        let value = context.to_value(sample)?;
        let template = self
            .env
            .get_template(&internal_name(name))
            .map_err(|err| RenderError::Render(Box::new(jinja_diagnostic(&err, origin, ""))))?;
        let text = template.render(&value).map_err(|err| {
            let source = err.template_source().unwrap_or_default().to_owned();
            RenderError::Render(Box::new(jinja_diagnostic(&err, origin, &source)))
        })?;
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        Ok(lines.join("\n").trim_matches('\n').to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_counts_septets_and_the_extension_table_twice() {
        let length = sms_length("Hello {there} €5");
        assert_eq!(length.encoding, SmsEncoding::Gsm7);
        assert_eq!(length.characters, 16);
        assert_eq!(length.units, 19);
        assert_eq!(length.segments, 1);
    }

    #[test]
    fn gsm7_segments_are_160_then_153() {
        assert_eq!(sms_length(&"a".repeat(160)).segments, 1);
        assert_eq!(sms_length(&"a".repeat(161)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(306)).segments, 2);
        assert_eq!(sms_length(&"a".repeat(307)).segments, 3);
        // 152 septets then an escaped character: it does not fit the first segment's end.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        let length = sms_length(&text);
        assert_eq!(length.units, 164);
        assert_eq!(length.segments, 2);
    }

    #[test]
    fn any_chinese_makes_ucs2_with_70_then_67() {
        let length = sms_length("生日快乐 Happy birthday");
        assert_eq!(length.encoding, SmsEncoding::Ucs2);
        assert_eq!(length.units, 19);
        assert_eq!(sms_length(&"生".repeat(70)).segments, 1);
        assert_eq!(sms_length(&"生".repeat(71)).segments, 2);
        assert_eq!(sms_length(&"生".repeat(134)).segments, 2);
        assert_eq!(sms_length(&"生".repeat(135)).segments, 3);
        // An emoji is a surrogate pair: two units, never split.
        assert_eq!(sms_length("🎂").units, 2);
    }

    #[test]
    fn templates_render_strictly_and_report_their_length() {
        let files = [
            TemplateFile::new(
                "templates/birthday.sms.j2",
                "{# a greeting #}\nHappy birthday, {{ customer.first_name }}!  \n\n",
            ),
            TemplateFile::new("templates/care.eml.j2", "subject: x\n--- text\nx\n"),
        ];
        let loaded = load_sms_templates(&files, 3);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!(loaded.templates.names().collect::<Vec<_>>(), ["birthday"]);
        assert_eq!(loaded.samples.len(), 1);
        assert_eq!(loaded.samples[0].length.encoding, SmsEncoding::Gsm7);
        let text = loaded
            .templates
            .render("birthday", &TemplateContext::sample())
            .unwrap();
        assert!(text.starts_with("Happy birthday, "), "{text}");
        assert!(text.ends_with('!'), "{text:?}");
    }

    #[test]
    fn an_undefined_variable_is_an_error_at_its_place() {
        let files = [TemplateFile::new(
            "templates/oops.sms.j2",
            "Hi\n{{ customer.nmae }}\n",
        )];
        let loaded = load_sms_templates(&files, 3);
        let rendered = render_all(&loaded.diagnostics);
        assert!(rendered.contains("templates/oops.sms.j2:2:4"), "{rendered}");
        assert!(rendered.contains("customer.name"), "{rendered}");
        assert!(!loaded.templates.contains("oops"));
    }

    #[test]
    fn a_text_over_the_segment_limit_is_an_error() {
        let files = [TemplateFile::new(
            "templates/long.sms.j2",
            "生日快乐".repeat(40),
        )];
        let loaded = load_sms_templates(&files, 2);
        let rendered = render_all(&loaded.diagnostics);
        assert!(rendered.contains("templates/long.sms.j2:1:1"), "{rendered}");
        assert!(rendered.contains("needs 3 segments"), "{rendered}");
        assert!(rendered.contains("UCS-2"), "{rendered}");
        assert!(load_sms_templates(&files, 3).diagnostics.is_empty());
    }

    fn render_all(diagnostics: &[Diagnostic]) -> String {
        diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
