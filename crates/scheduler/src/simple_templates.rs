//! [`SimpleTemplates`]: a small [`RenderEmail`] for care-email templates that only fill in
//! customer fields, so the outbox works end to end without the full template engine.
//!
//! It reads the template files of the workspace's `templates/` folder in the documented forms
//! (one file `NAME.eml.j2`: a header block with `subject: …`, a line `--- text` and the text
//! part, optionally a line `--- html` and the HTML part; or `NAME.txt.j2` with the header block
//! and text part plus an optional `NAME.html.j2`), and replaces `{{ customer.FIELD }}` for
//! the fields `id`, `name`, `email`, `region` and `owner`. Values are HTML-escaped in the HTML
//! part and literal in the subject and text. Anything else between `{{ }}` or `{% %}` is an
//! error naming the template and what is supported: never an empty string in a sent email.

use std::fs;
use std::path::PathBuf;

use tiercare_store::Store;

use crate::outbox::{RenderEmail, RenderError, RenderedEmail, escape_html};

/// Renders `templates/NAME.eml.j2` (or `NAME.txt.j2` and `NAME.html.j2`) with customer fields
/// read from `store`.
#[derive(Debug)]
pub struct SimpleTemplates<'s> {
    dir: PathBuf,
    store: &'s Store,
}

impl<'s> SimpleTemplates<'s> {
    /// Templates in `dir`, customers read from `store`.
    pub fn new(dir: impl Into<PathBuf>, store: &'s Store) -> SimpleTemplates<'s> {
        SimpleTemplates {
            dir: dir.into(),
            store,
        }
    }

    fn read(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(name)).ok()
    }
}

/// The parts of a template file: subject, text and HTML, still with their placeholders.
fn split(template: &str, text: &str) -> Result<(String, String, Option<String>), RenderError> {
    let error = |message: &str| RenderError {
        template: template.to_owned(),
        message: message.to_owned(),
    };
    let text = text.replace("\r\n", "\n");
    let mut subject = None;
    let mut lines = text.split_inclusive('\n');
    for line in lines.by_ref() {
        let line = line.trim_end();
        if line == "--- text" {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case("subject")
        {
            subject = Some(value.trim().to_owned());
        }
    }
    let subject = subject.ok_or_else(|| {
        error("no `subject:` line before `--- text`: start the file with `subject: ...`")
    })?;
    let rest: String = lines.collect();
    let (body, html) = match rest.split_once("\n--- html\n") {
        Some((body, html)) => (format!("{body}\n"), Some(html.to_owned())),
        None => match rest.strip_prefix("--- html\n") {
            Some(html) => (String::new(), Some(html.to_owned())),
            None => (rest, None),
        },
    };
    Ok((subject, body, html))
}

/// Replaces every `{{ customer.FIELD }}` in `text` with `value(FIELD)`, escaped for HTML when
/// `html`.
fn fill(
    template: &str,
    text: &str,
    html: bool,
    value: &dyn Fn(&str) -> Option<String>,
) -> Result<String, RenderError> {
    let error = |message: String| RenderError {
        template: template.to_owned(),
        message,
    };
    if text.contains("{%") {
        return Err(error(
            "`{% ... %}` blocks need the full template engine; this tiercare fills in only \
             {{ customer.id|name|email|region|owner }}"
                .to_owned(),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| error("a `{{` is never closed with `}}`".to_owned()))?;
        let name = after[..end].trim();
        let field = name.strip_prefix("customer.").unwrap_or("");
        let filled = value(field).ok_or_else(|| {
            error(format!(
                "unknown variable `{name}`: this tiercare fills in only \
                 {{{{ customer.id }}}}, name, email, region and owner"
            ))
        })?;
        if html {
            out.push_str(&escape_html(&filled));
        } else {
            out.push_str(&filled);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl RenderEmail for SimpleTemplates<'_> {
    fn render(
        &self,
        template: &str,
        customer_external_id: &str,
        _at: i64,
    ) -> Result<RenderedEmail, RenderError> {
        let error = |message: String| RenderError {
            template: template.to_owned(),
            message,
        };
        if template.contains(['/', '\\']) || template.starts_with('.') {
            return Err(error("a template name cannot contain a path".to_owned()));
        }
        let (subject, text, html) = match self.read(&format!("{template}.eml.j2")) {
            Some(file) => split(template, &file)?,
            None => {
                let file = self.read(&format!("{template}.txt.j2")).ok_or_else(|| {
                    error(format!(
                        "no {template}.eml.j2 or {template}.txt.j2 in {}",
                        self.dir.display()
                    ))
                })?;
                let (subject, text, _) = split(template, &file)?;
                (subject, text, self.read(&format!("{template}.html.j2")))
            }
        };
        let customer = self
            .store
            .customer(customer_external_id)
            .map_err(|err| error(err.to_string()))?
            .ok_or_else(|| error(format!("unknown customer {customer_external_id}")))?;
        let value = |field: &str| -> Option<String> {
            Some(match field {
                "id" => customer.external_id.clone(),
                "name" => customer.name.clone().unwrap_or_default(),
                "email" => customer.email.clone().unwrap_or_default(),
                "region" => customer.region.clone().unwrap_or_default(),
                "owner" => customer.owner.clone().unwrap_or_default(),
                _ => return None,
            })
        };
        Ok(RenderedEmail {
            subject: fill(template, &subject, false, &value)?,
            text: fill(template, &text, false, &value)?,
            html: html
                .map(|html| fill(template, &html, true, &value))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_literal_in_text_and_escaped_in_html() {
        let file = "subject: Hi {{ customer.name }}\n--- text\nDear {{customer.name}},\n--- html\n<p>Dear {{ customer.name }}</p>\n";
        let (subject, text, html) = split("t", file).unwrap();
        let value = |field: &str| (field == "name").then(|| "<script>Bob</script>".to_owned());
        assert_eq!(
            fill("t", &subject, false, &value).unwrap(),
            "Hi <script>Bob</script>"
        );
        assert_eq!(
            fill("t", &text, false, &value).unwrap(),
            "Dear <script>Bob</script>,\n"
        );
        assert_eq!(
            fill("t", &html.unwrap(), true, &value).unwrap(),
            "<p>Dear &lt;script&gt;Bob&lt;/script&gt;</p>\n"
        );
        let err = fill("t", "{{ customer.nmae }}", false, &value).unwrap_err();
        assert!(err.to_string().contains("customer.nmae"), "{err}");
        assert!(fill("t", "{% if x %}", false, &value).is_err());
        assert!(split("t", "--- text\nno subject\n").is_err());
    }
}
