//! One error type for everything a user wrote: a [`Diagnostic`] points at a file, a line and a
//! column, quotes the offending line, and may carry a hint.
//!
//! Rendering follows the shape compilers use, so that the first line is friendly to `grep`, editors
//! and CI annotations:
//!
//! ```text
//! path/to/file.yaml:3:5: error: unknown key `colums`
//!   3 | colums:
//!     |     ^
//!   hint: did you mean `columns`?
//! ```

use std::fmt;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something in it is probably not what the user meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem in something a user wrote, located at `path:line:column` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the problem is in, as the user named it.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, in one line (long values shortened to an [`excerpt`] when rendered or
    /// serialised).
    #[serde(serialize_with = "serialize_shortened")]
    pub message: String,
    /// The text of the offending line, if known (see [`Diagnostic::with_source`]).
    pub source_line: Option<String>,
    /// How to fix it, if we can tell.
    #[serde(serialize_with = "serialize_shortened_hint")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `path:line:column` (both 1-based; 0 is treated as 1).
    pub fn error(
        path: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, path, line, column, message)
    }

    /// A warning at `path:line:column` (both 1-based; 0 is treated as 1).
    pub fn warning(
        path: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, path, line, column, message)
    }

    fn new(
        severity: Severity,
        path: impl Into<String>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            path: path.into(),
            line: line.max(1),
            column: column.max(1),
            message: shorten_long_words(message.into()),
            source_line: None,
            hint: None,
        }
    }

    /// Adds a hint, shown below the quoted line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(shorten_long_words(hint.into()));
        self
    }

    /// Fills [`Diagnostic::source_line`] with line [`Diagnostic::line`] of `full_text` (the whole
    /// file). Leaves it empty when the file has fewer lines.
    ///
    /// A long line is quoted up to [`MAX_QUOTED_LINE`] characters (then `…`), and not at all when
    /// the column is beyond that: a diagnostic never repeats a whole long value.
    #[must_use]
    pub fn with_source(mut self, full_text: &str) -> Self {
        self.source_line = full_text
            .lines()
            .nth(self.line - 1)
            .map(|line| line.trim_end_matches('\r'))
            .and_then(|line| {
                if line.len() <= MAX_QUOTED_LINE {
                    return Some(line.to_owned());
                }
                if self.column > MAX_QUOTED_LINE {
                    return None;
                }
                let mut quoted: String = line.chars().take(MAX_QUOTED_LINE).collect();
                quoted.push('…');
                Some(quoted)
            });
        self
    }

    /// Renders the diagnostic on several lines (no trailing newline); ANSI colours only when
    /// `color` is true.
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        let paint = Painter { color };
        let mut out = String::new();
        let (label, label_style) = match self.severity {
            Severity::Error => ("error", RED_BOLD),
            Severity::Warning => ("warning", YELLOW_BOLD),
        };
        out.push_str(&paint.apply(
            BOLD,
            &format!("{}:{}:{}:", self.path, self.line, self.column),
        ));
        out.push(' ');
        out.push_str(&paint.apply(label_style, &format!("{label}:")));
        out.push(' ');
        out.push_str(&paint.apply(BOLD, &shorten_long_words(self.message.clone())));
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        if let Some(source) = &self.source_line {
            out.push('\n');
            out.push_str(&paint.apply(BLUE_BOLD, &format!("  {number} |")));
            if !source.is_empty() {
                out.push(' ');
                out.push_str(source);
            }
            out.push('\n');
            out.push_str(&paint.apply(BLUE_BOLD, &format!("  {gutter} |")));
            out.push(' ');
            // Keep tabs so that the caret lines up with the quoted text.
            let padding: String = source
                .chars()
                .chain(std::iter::repeat(' '))
                .take(self.column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&padding);
            out.push_str(&paint.apply(label_style, "^"));
        }
        if let Some(hint) = &self.hint {
            out.push('\n');
            out.push_str("  ");
            out.push_str(&paint.apply(CYAN_BOLD, "hint:"));
            out.push(' ');
            out.push_str(&shorten_long_words(hint.clone()));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostic {}

/// Longest source line a diagnostic quotes, in characters.
pub const MAX_QUOTED_LINE: usize = 200;

/// Longest value a message quotes whole, in characters; longer ones become an [`excerpt`].
pub const MAX_QUOTED_VALUE: usize = 60;

/// A user value as messages quote it: whole when short, else its first characters, an ellipsis
/// and its length (`xxxxxxxx… (921600 bytes)`), so that a huge value never floods the output.
#[must_use]
pub fn excerpt(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_VALUE {
        return value.to_owned();
    }
    let head: String = value.chars().take(MAX_QUOTED_VALUE / 2).collect();
    format!("{head}… ({} bytes)", value.len())
}

/// Every run of characters without white space longer than [`MAX_QUOTED_VALUE`] shortened to an
/// [`excerpt`]: the last guard that keeps a value someone wrote (a 900 KB identifier, a huge
/// string) out of a message, wherever it was quoted.
fn shorten_long_words(text: String) -> String {
    if text.len() <= MAX_QUOTED_VALUE
        || !text
            .split(char::is_whitespace)
            .any(|word| word.chars().count() > MAX_QUOTED_VALUE)
    {
        return text;
    }
    let mut out = String::with_capacity(4 * MAX_QUOTED_LINE);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().count() > MAX_QUOTED_VALUE {
            out.push_str(&excerpt(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn serialize_shortened<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&shorten_long_words(text.to_owned()))
}

fn serialize_shortened_hint<S: serde::Serializer>(
    text: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => serializer.serialize_some(&shorten_long_words(text.clone())),
        None => serializer.serialize_none(),
    }
}

/// Renders several diagnostics, each followed by a newline, separated by blank lines.
#[must_use]
pub fn render_all(diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for (i, diagnostic) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&diagnostic.render(color));
        out.push('\n');
    }
    out
}

const BOLD: &str = "\x1b[1m";
const RED_BOLD: &str = "\x1b[1;31m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const BLUE_BOLD: &str = "\x1b[1;34m";
const CYAN_BOLD: &str = "\x1b[1;36m";
const RESET: &str = "\x1b[0m";

struct Painter {
    color: bool,
}

impl Painter {
    fn apply(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

/// Levenshtein distance between two short strings (characters), used for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `wrong`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // A typo is short; comparing a huge name with every candidate would take minutes.
    if wrong.len() > 4 * MAX_QUOTED_VALUE {
        return None;
    }
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            let candidate_lower = candidate.to_lowercase();
            // `Price` for `Unit_Price`: one name inside the other, of comparable length.
            let (shorter, longer) = if wrong_lower.len() <= candidate_lower.len() {
                (&wrong_lower, &candidate_lower)
            } else {
                (&candidate_lower, &wrong_lower)
            };
            let contained = shorter.len() >= 3
                && longer.len() <= 3 * shorter.len()
                && longer.contains(shorter.as_str());
            let distance = if candidate_lower == wrong_lower {
                0
            } else if contained {
                1
            } else {
                edit_distance(&wrong_lower, &candidate_lower)
            };
            (distance, candidate)
        })
        .filter(|(distance, candidate)| {
            let longest = wrong.chars().count().max(candidate.chars().count());
            *distance <= 2.max(longest / 3) && *distance < longest
        })
        // Among equals, a real typo (two edits at most) first: `revenue_share_before` for
        // `revenue_share_befor`, though `revenue_share` is contained in it.
        .min_by_key(|(distance, candidate)| {
            let edits = edit_distance(&wrong_lower, &candidate.to_lowercase());
            (*distance, edits.min(3))
        })
        .map(|(_, candidate)| candidate)
}

/// The hint for `wrong`, a name that is not among `known`: ``did you mean `best`? WHAT: `a`,
/// `b` `` when one of them is a plausible typo away, else ``WHAT: `a`, `b` ``.
pub(crate) fn hint_among<'a, I>(wrong: &str, what: &str, known: I) -> String
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: Clone,
{
    let known = known.into_iter();
    let list = list_names(known.clone());
    match closest(wrong, known) {
        Some(best) => format!("did you mean `{best}`? {what}: {list}"),
        None => format!("{what}: {list}"),
    }
}

/// `a`, `b`, `c` for a hint listing valid names.
pub(crate) fn list_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_shape() {
        let text = "kind: orders\ncolums:\n  a: b\n";
        let diagnostic = Diagnostic::error("path/to/file.yaml", 2, 1, "unknown key `colums`")
            .with_source(text)
            .with_hint("did you mean `columns`?");
        assert_eq!(
            diagnostic.render(false),
            "path/to/file.yaml:2:1: error: unknown key `colums`\n  2 | colums:\n    | ^\n  hint: did you mean `columns`?"
        );
        assert_eq!(diagnostic.to_string(), diagnostic.render(false));
    }

    #[test]
    fn caret_follows_the_column_and_keeps_tabs() {
        let diagnostic = Diagnostic::error("f.yaml", 10, 5, "bad")
            .with_source("1\n2\n3\n4\n5\n6\n7\n8\n9\n\tab: c\n");
        assert_eq!(
            diagnostic.render(false),
            "f.yaml:10:5: error: bad\n  10 | \tab: c\n     | \t   ^"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let diagnostic = Diagnostic::warning("f.yaml", 1, 1, "odd").with_source("x: 1\n");
        assert!(!diagnostic.render(false).contains('\x1b'));
        let coloured = diagnostic.render(true);
        assert!(coloured.contains("\x1b[1;33mwarning:\x1b[0m"), "{coloured}");
    }

    #[test]
    fn render_all_separates_with_blank_lines() {
        let a = Diagnostic::error("f", 1, 1, "a");
        let b = Diagnostic::error("f", 2, 3, "b").with_hint("h");
        assert_eq!(
            render_all(&[a, b], false),
            "f:1:1: error: a\n\nf:2:3: error: b\n  hint: h\n"
        );
        assert_eq!(render_all(&[], false), "");
    }

    #[test]
    fn source_line_missing_when_file_is_shorter() {
        let diagnostic = Diagnostic::error("f", 7, 1, "eof").with_source("a\n");
        assert_eq!(diagnostic.source_line, None);
    }

    #[test]
    fn a_hint_names_the_closest_and_lists_the_rest() {
        let known = ["gold", "silver"];
        assert_eq!(
            hint_among("glod", "tiers", known),
            "did you mean `gold`? tiers: `gold`, `silver`"
        );
        assert_eq!(
            hint_among("zzzz", "tiers", known),
            "tiers: `gold`, `silver`"
        );
    }

    #[test]
    fn long_values_are_quoted_as_an_excerpt() {
        let long = "x".repeat(100_000);
        let diagnostic = Diagnostic::error("f", 1, 7, format!("undefined variable: {long}"))
            .with_source(&format!("when: {long}\n"))
            .with_hint(format!("did you mean `{long}`?"));
        let rendered = diagnostic.render(false);
        assert!(rendered.len() < 1_000, "{rendered}");
        assert!(
            rendered.contains(&format!("{}… (100000 bytes)", "x".repeat(30))),
            "{rendered}"
        );
        assert_eq!(excerpt("short"), "short");
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(closest("colums", ["columns", "types"]), Some("columns"));
        assert_eq!(closest("Order_ID", ["order_id", "sku"]), Some("order_id"));
        assert_eq!(closest("zzz", ["columns", "types"]), None);
        assert_eq!(closest("Price", ["Qty", "Unit_Price"]), Some("Unit_Price"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
