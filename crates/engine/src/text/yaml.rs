//! The only module that reads YAML, so that the parser can be swapped without touching the rest.
//!
//! [`parse`] runs in two passes:
//!
//! 1. A guard pass over yaml-rust2's event stream (with positions) that refuses what serde_yaml
//!    would accept but we must not: files over a size limit, nesting deeper than a limit, alias
//!    bombs (exponential *and* quadratic: every alias costs the size of the node it names, and the
//!    expanded document must stay under a node budget *and* a byte budget, so that one long
//!    string aliased many times is refused before serde_yaml copies it), duplicate mapping keys (serde_yaml
//!    silently keeps the last one) and more than one document. It also records a [`Spans`] index:
//!    the line, column and scalar style of every mapping key and every scalar value, keyed by its
//!    path, so that later validation (and Rhai errors inside YAML strings) can point at the right
//!    place.
//! 2. serde_yaml deserializes the value; its errors become [`Diagnostic`]s, with a "did you mean"
//!    hint for unknown keys.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use crate::text::diagnostic::{Diagnostic, hint_among};

/// Limits applied before a YAML file is deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest accepted file, in bytes (checked before parsing).
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Largest number of nodes the document may have once every alias is expanded.
    pub max_expanded_nodes: u64,
    /// Largest number of bytes of scalar text (keys and values) the document may have once every
    /// alias is expanded: what deserializing it would copy. Bounds memory whatever the aliases
    /// name (a node budget alone lets one 900 KB string aliased 400 times through).
    pub max_expanded_bytes: u64,
}

impl YamlLimits {
    /// 1 MiB, 64 levels, 100,000 expanded nodes, 2 MiB of expanded scalar text.
    pub const DEFAULT: YamlLimits = YamlLimits {
        max_bytes: 1024 * 1024,
        max_depth: 64,
        max_expanded_nodes: 100_000,
        max_expanded_bytes: 2 * 1024 * 1024,
    };
}

impl Default for YamlLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A deserialized YAML file together with the positions of its keys and scalars.
#[derive(Debug, Clone)]
pub struct Document<T> {
    /// The deserialized value.
    pub value: T,
    /// Where each key and scalar value is in the file.
    pub spans: Spans,
}

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(key: &str) -> Self {
        PathSeg::Key(key.to_owned())
    }
}

impl From<String> for PathSeg {
    fn from(key: String) -> Self {
        PathSeg::Key(key)
    }
}

impl From<usize> for PathSeg {
    fn from(index: usize) -> Self {
        PathSeg::Index(index)
    }
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(key) => f.write_str(key),
            PathSeg::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// Formats a path the way users read it: `derive.amount`, `tiers[2].when`.
#[must_use]
pub fn path_to_string(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathSeg::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarStyle {
    /// `key: value`
    Plain,
    /// `key: 'value'`
    SingleQuoted,
    /// `key: "value"`
    DoubleQuoted,
    /// `key: |` followed by an indented block.
    Literal,
    /// `key: >` followed by an indented block.
    Folded,
}

/// Where a key or scalar value starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// 1-based line of the first character (for block scalars: of the first content line).
    pub line: usize,
    /// 1-based column of the first character (for quoted scalars: of the opening quote).
    pub column: usize,
    /// How the scalar was written.
    pub style: ScalarStyle,
    layout: Layout,
}

/// How the characters of a scalar's value map back to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// One line; value character `i` (0-based) is at file column `first_column + i`.
    Inline { first_column: usize },
    /// One line with escapes; value character `i` is at file column `columns[i]`.
    Escaped { columns: Box<[usize]> },
    /// Literal block: value line `n` (1-based) is file line `first_line + n - 1`, and value column
    /// `c` (1-based) is file column `indent + c`.
    Block { first_line: usize, indent: usize },
    /// Folded or multi-line: only the start is known.
    Approximate,
}

/// Positions of every mapping key and scalar value of a document, by path.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    values: HashMap<Vec<PathSeg>, Span>,
    keys: HashMap<Vec<PathSeg>, Span>,
}

impl Spans {
    /// The position of the scalar value at `path` (aliases are recorded where the alias is).
    #[must_use]
    pub fn value(&self, path: &[PathSeg]) -> Option<Span> {
        self.values.get(path).cloned()
    }

    /// The position of the key whose value is at `path`.
    #[must_use]
    pub fn key(&self, path: &[PathSeg]) -> Option<Span> {
        self.keys.get(path).cloned()
    }

    /// Best position to report something about `path`: its scalar value, else its key, else the
    /// nearest ancestor's; `(1, 1)` when nothing is known.
    #[must_use]
    pub fn position(&self, path: &[PathSeg]) -> (usize, usize) {
        let mut path = path;
        loop {
            if let Some(span) = self.values.get(path).or_else(|| self.keys.get(path)) {
                return (span.line, span.column);
            }
            match path.split_last() {
                Some((_, parent)) => path = parent,
                None => return (1, 1),
            }
        }
    }

    /// Maps a 1-based position inside the text of the scalar at `path` (for example a Rhai error
    /// at script line 1, column 12) to the 1-based line and column in the file.
    ///
    /// Exact for single-line plain, single-quoted and double-quoted scalars (escapes included)
    /// and for literal block scalars (`|`); for folded (`>`) and multi-line flow scalars it
    /// returns where the scalar starts. Unknown paths fall back to [`Spans::position`].
    #[must_use]
    pub fn locate_in_scalar(
        &self,
        path: &[PathSeg],
        line_in_script: usize,
        col_in_script: usize,
    ) -> (usize, usize) {
        let Some(span) = self.values.get(path) else {
            return self.position(path);
        };
        let line_in_script = line_in_script.max(1);
        let col_in_script = col_in_script.max(1);
        match &span.layout {
            Layout::Inline { first_column } if line_in_script == 1 => {
                (span.line, first_column + col_in_script - 1)
            }
            Layout::Escaped { columns } if line_in_script == 1 => {
                let column = columns
                    .get(col_in_script - 1)
                    .copied()
                    .unwrap_or_else(|| columns.last().map_or(span.column, |last| last + 1));
                (span.line, column)
            }
            Layout::Block { first_line, indent } => {
                (first_line + line_in_script - 1, indent + col_in_script)
            }
            _ => (span.line, span.column),
        }
    }

    /// Whether anything (a key or a value) was recorded at `path`.
    #[must_use]
    pub fn contains(&self, path: &[PathSeg]) -> bool {
        self.values.contains_key(path) || self.keys.contains_key(path)
    }

    /// Whether anything was recorded at `path` or inside it (a sequence item holding a mapping
    /// has no span of its own, but its keys do).
    fn contains_or_encloses(&self, path: &[PathSeg]) -> bool {
        self.contains(path) || self.keys.keys().any(|key| key.starts_with(path))
    }
}

/// Parses one YAML document into `T`, refusing oversized files, deep nesting, alias bombs,
/// duplicate keys and multi-document files first (see the module documentation).
///
/// # Errors
/// Every problem as a [`Diagnostic`] located in `path`: the guard pass reports all duplicate keys
/// it finds (and stops at the first syntax error or limit); deserialization reports every
/// unknown key (see [`parse_recovering`]) and then its first other error.
pub fn parse<T: DeserializeOwned>(
    path: &str,
    text: &str,
    limits: &YamlLimits,
) -> Result<Document<T>, Vec<Diagnostic>> {
    match parse_recovering(path, text, limits) {
        (Some(document), errors) if errors.is_empty() => Ok(document),
        (_, errors) => Err(errors),
    }
}

/// How many unknown keys one file may report before deserialization gives up recovering.
const MAX_RECOVERED_KEYS: usize = 32;

/// Parses like [`parse`], but keeps going past unknown keys: each one is reported, its entry
/// (the key's line and the lines of its value) is blanked out of a copy of the text, which keeps
/// every other line where it was, and the copy is deserialized again. So a file with an unknown
/// key and other mistakes reports all of them in one run, and the caller gets the value
/// without the unknown keys to validate further (no cascade of "missing section" errors).
///
/// Returns the value when deserialization succeeded in the end, and every diagnostic. Only block
/// mapping keys alone at the start of their line are blanked out; any other error ends the
/// recovery with that error and no value.
pub fn parse_recovering<T: DeserializeOwned>(
    path: &str,
    text: &str,
    limits: &YamlLimits,
) -> (Option<Document<T>>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut current = std::borrow::Cow::Borrowed(text);
    let mut blanked_parents: Vec<Vec<PathSeg>> = Vec::new();
    for _ in 0..=MAX_RECOVERED_KEYS {
        match parse_once::<T>(path, &current, limits) {
            Ok(document) => return (Some(document), errors),
            Err(Failure::Guard(mut found)) => {
                errors.append(&mut found);
                return (None, errors);
            }
            Err(Failure::Serde(diagnostic, problem)) => {
                // A key missing from a mapping that had an unknown key blanked out is most
                // likely that key misspelt (`tier:` for `tiers:`): reported once, not twice.
                if let SerdeProblem::MissingKey(parent) = &problem
                    && blanked_parents.contains(parent)
                {
                    return (None, errors);
                }
                let blanked = match problem {
                    SerdeProblem::UnknownKey(line, column, parent) => {
                        blanked_parents.push(parent);
                        blank_entry(&current, line, column)
                    }
                    _ => None,
                };
                // Diagnostics quote the file as written, not the blanked copy.
                errors.push(diagnostic.with_source(text));
                match blanked {
                    Some(next) => current = std::borrow::Cow::Owned(next),
                    None => return (None, errors),
                }
            }
        }
    }
    (None, errors)
}

/// Why one deserialization attempt failed.
enum Failure {
    /// The guard pass refused the file (syntax, limits, duplicate keys).
    Guard(Vec<Diagnostic>),
    /// serde_yaml refused it.
    Serde(Box<Diagnostic>, SerdeProblem),
}

/// What kind of serde_yaml error a diagnostic came from, for recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SerdeProblem {
    /// An unknown key found in the file: its line and column, and the path of its mapping.
    UnknownKey(usize, usize, Vec<PathSeg>),
    /// A missing key, in the mapping at this path.
    MissingKey(Vec<PathSeg>),
    /// Anything else.
    Other,
}

/// The entry of the block mapping key at `line`:`column` (1-based) blanked out: the key's line
/// and the following lines that belong to its value (indented deeper, or a `- ` item at the
/// key's own indentation) become empty, so every other line keeps its number. `None` when the
/// key does not start its line (a flow mapping, a `- key:` item), where blanking would change
/// the structure around it.
fn blank_entry(text: &str, line: usize, column: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let key_line = lines.get(line.checked_sub(1)?)?;
    let indent = column.checked_sub(1)?;
    let prefix: String = key_line.chars().take(indent).collect();
    if prefix.chars().count() != indent || !prefix.chars().all(|c| c == ' ') {
        return None;
    }
    let mut end = line; // lines[line - 1 .. end] are the entry
    while let Some(next) = lines.get(end) {
        let content = next.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start_matches(' ');
        let depth = content.len() - trimmed.len();
        let belongs = trimmed.is_empty()
            || depth > indent
            || (depth == indent && (trimmed == "-" || trimmed.starts_with("- ")));
        if !belongs {
            break;
        }
        end += 1;
    }
    // Trailing blank lines are nobody's: leave them.
    while end > line && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    let mut out = String::with_capacity(text.len());
    for (index, original) in lines.iter().enumerate() {
        if index + 1 >= line && index < end {
            if original.ends_with("\r\n") {
                out.push_str("\r\n");
            } else if original.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(original);
        }
    }
    Some(out)
}

/// One attempt: size, guard pass, deserialization.
fn parse_once<T: DeserializeOwned>(
    path: &str,
    text: &str,
    limits: &YamlLimits,
) -> Result<Document<T>, Failure> {
    if text.len() > limits.max_bytes {
        return Err(Failure::Guard(vec![
            Diagnostic::error(
                path,
                1,
                1,
                format!(
                    "file is too large: {} bytes, the limit is {} bytes",
                    text.len(),
                    limits.max_bytes
                ),
            )
            .with_hint("a rule or mapping file should be a few kilobytes; is this the right file?"),
        ]));
    }
    let spans = scan(path, text, limits).map_err(Failure::Guard)?;
    match serde_yaml::from_str::<T>(text) {
        Ok(value) => Ok(Document { value, spans }),
        Err(err) => {
            let (diagnostic, problem) = serde_diagnostic(path, text, &spans, &err);
            Err(Failure::Serde(Box::new(diagnostic), problem))
        }
    }
}

/// Identity of a mapping key for duplicate detection: plain scalars are resolved the way YAML
/// resolves them (so `1` and `"1"` differ, `a` and `"a"` do not).
fn key_identity(value: &str, style: TScalarStyle) -> String {
    if style != TScalarStyle::Plain {
        return format!("str:{value}");
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return "null".to_owned(),
        "true" | "True" | "TRUE" => return "bool:true".to_owned(),
        "false" | "False" | "FALSE" => return "bool:false".to_owned(),
        _ => {}
    }
    if let Ok(int) = value.parse::<i64>() {
        return format!("int:{int}");
    }
    if let Ok(float) = value.parse::<f64>() {
        return format!("float:{float}");
    }
    format!("str:{value}")
}

enum FrameKind {
    Map {
        expecting_key: bool,
        pending_key: Option<PathSeg>,
        /// Key identity → (line of first definition, text of the key).
        seen: HashMap<String, usize>,
    },
    Seq {
        next: usize,
    },
}

struct Frame {
    kind: FrameKind,
    /// For `[...]` and `{...}`: where the bracket is (1-based line and column) and which.
    flow: Option<(usize, usize, char)>,
    anchor: usize,
    nodes_at_start: u64,
    bytes_at_start: u64,
    pushed_segment: bool,
}

/// Why the guard pass stopped.
struct Stop;

struct Guard<'t> {
    path: &'t str,
    text: &'t str,
    lines: Vec<&'t str>,
    limits: &'t YamlLimits,
    frames: Vec<Frame>,
    segments: Vec<PathSeg>,
    /// Anchor id → (expanded nodes, expanded bytes) of the node it names.
    anchor_sizes: HashMap<usize, (u64, u64)>,
    nodes: u64,
    bytes: u64,
    documents: usize,
    spans: Spans,
    errors: Vec<Diagnostic>,
}

fn scan(path: &str, text: &str, limits: &YamlLimits) -> Result<Spans, Vec<Diagnostic>> {
    let mut guard = Guard {
        path,
        text,
        lines: text.split('\n').collect(),
        limits,
        frames: Vec::new(),
        segments: Vec::new(),
        anchor_sizes: HashMap::new(),
        nodes: 0,
        bytes: 0,
        documents: 0,
        spans: Spans::default(),
        errors: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, marker)) => {
                if guard.on_event(event, marker).is_err() {
                    break;
                }
            }
            Err(err) => {
                let mut diagnostic = syntax_diagnostic(path, text, &err);
                // A flow collection left open on an earlier line is the usual real cause.
                let open = guard.frames.iter().rev().find_map(|frame| frame.flow);
                if let Some((line, column, bracket)) = open
                    && line < err.marker().line()
                {
                    diagnostic = diagnostic.with_hint(format!(
                        "the `{bracket}` at line {line}, column {column} is not closed"
                    ));
                }
                guard.errors.push(diagnostic);
                break;
            }
        }
    }
    if guard.errors.is_empty() {
        Ok(guard.spans)
    } else {
        Err(guard.errors)
    }
}

fn syntax_diagnostic(path: &str, text: &str, err: &ScanError) -> Diagnostic {
    let marker = err.marker();
    let info = err.info();
    let diagnostic = Diagnostic::error(
        path,
        marker.line(),
        marker.col() + 1,
        format!("invalid YAML: {info}"),
    )
    .with_source(text);
    let hint = if info.contains("valid YAML whitespace") || info.contains("tab") {
        Some("YAML wants spaces, not tabs, for indentation and after `:`")
    } else if info.contains("mapping values are not allowed") {
        Some("check the indentation of this line, or quote a value that contains `: `")
    } else if info.contains("did not find expected") && info.contains("indicator") {
        Some("check the indentation of this line")
    } else if info.contains("quoted scalar") {
        Some("a quoted string is not closed")
    } else if info.contains("flow") {
        Some("a `[` or `{` is not closed")
    } else {
        None
    };
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

impl Guard<'_> {
    fn error_at(&mut self, marker: Marker, message: String, hint: Option<String>) {
        let mut diagnostic = Diagnostic::error(self.path, marker.line(), marker.col() + 1, message)
            .with_source(self.text);
        if let Some(hint) = hint {
            diagnostic = diagnostic.with_hint(hint);
        }
        self.errors.push(diagnostic);
    }

    /// Adds `bytes` of scalar text to the expanded document, refusing it past the byte budget.
    fn count_bytes(&mut self, bytes: u64, marker: Marker, alias: bool) -> Result<(), Stop> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.max_expanded_bytes {
            let (message, hint) = if alias {
                (
                    format!(
                        "this alias repeats {bytes} bytes and expands the document beyond {} bytes",
                        self.limits.max_expanded_bytes
                    ),
                    "anchors and aliases (`&name`, `*name`) may be used for sharing, not to multiply data; write the values out",
                )
            } else {
                (
                    format!(
                        "the document has more than {} bytes of text",
                        self.limits.max_expanded_bytes
                    ),
                    "a rule or mapping file should be small; is this the right file?",
                )
            };
            self.error_at(marker, message, Some(hint.to_owned()));
            return Err(Stop);
        }
        Ok(())
    }

    fn count(&mut self, nodes: u64, marker: Marker, alias: bool) -> Result<(), Stop> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.limits.max_expanded_nodes {
            let (message, hint) = if alias {
                (
                    format!(
                        "this alias expands the document beyond {} nodes",
                        self.limits.max_expanded_nodes
                    ),
                    "anchors and aliases (`&name`, `*name`) may be used for sharing, not to multiply data; write the values out",
                )
            } else {
                (
                    format!(
                        "the document has more than {} nodes",
                        self.limits.max_expanded_nodes
                    ),
                    "a rule or mapping file should be small; is this the right file?",
                )
            };
            self.error_at(marker, message, Some(hint.to_owned()));
            return Err(Stop);
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event, marker: Marker) -> Result<(), Stop> {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.error_at(
                        marker,
                        "a second YAML document (`---`) in one file".to_owned(),
                        Some("put each document in its own file".to_owned()),
                    );
                    return Err(Stop);
                }
            }
            Event::Scalar(value, style, anchor, _) => {
                self.count(1, marker, false)?;
                let bytes = value.len() as u64;
                self.count_bytes(bytes, marker, false)?;
                if anchor > 0 {
                    self.anchor_sizes.insert(anchor, (1, bytes));
                }
                if self.expecting_key() {
                    self.on_key(&value, style, marker);
                } else {
                    let segment = self.value_segment();
                    // An empty value (`key:` then a new line) is marked at the next token, so it
                    // has no useful position of its own: the key's is used instead.
                    if !(value.is_empty() && style == TScalarStyle::Plain) {
                        let span = self.scalar_span(&value, style, marker);
                        let mut path = self.segments.clone();
                        path.extend(segment);
                        self.spans.values.insert(path, span);
                    }
                    self.finish_value();
                }
            }
            Event::Alias(anchor) => {
                let Some(&(size, bytes)) = self.anchor_sizes.get(&anchor) else {
                    self.error_at(
                        marker,
                        "this alias refers to a node that contains it".to_owned(),
                        Some("recursive aliases are not supported".to_owned()),
                    );
                    return Err(Stop);
                };
                self.count(size, marker, true)?;
                self.count_bytes(bytes, marker, true)?;
                if self.expecting_key() {
                    if let Some(Frame {
                        kind:
                            FrameKind::Map {
                                expecting_key,
                                pending_key,
                                ..
                            },
                        ..
                    }) = self.frames.last_mut()
                    {
                        *expecting_key = false;
                        *pending_key = Some(PathSeg::Key("*".to_owned()));
                    }
                } else {
                    let segment = self.value_segment();
                    let span = Span {
                        line: marker.line(),
                        column: marker.col() + 1,
                        style: ScalarStyle::Plain,
                        layout: Layout::Approximate,
                    };
                    let mut path = self.segments.clone();
                    path.extend(segment);
                    self.spans.values.insert(path, span);
                    self.finish_value();
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if self.expecting_key() {
                    self.error_at(
                        marker,
                        "a mapping or sequence used as a mapping key".to_owned(),
                        Some("keys must be plain strings".to_owned()),
                    );
                    return Err(Stop);
                }
                if self.frames.len() >= self.limits.max_depth {
                    self.error_at(
                        marker,
                        format!("nesting deeper than {} levels", self.limits.max_depth),
                        None,
                    );
                    return Err(Stop);
                }
                let nodes_at_start = self.nodes;
                let bytes_at_start = self.bytes;
                self.count(1, marker, false)?;
                let segment = self.value_segment();
                let pushed_segment = segment.is_some();
                self.segments.extend(segment);
                let kind = if is_map {
                    FrameKind::Map {
                        expecting_key: true,
                        pending_key: None,
                        seen: HashMap::new(),
                    }
                } else {
                    FrameKind::Seq { next: 0 }
                };
                let flow = self
                    .lines
                    .get(marker.line().wrapping_sub(1))
                    .and_then(|line| line.chars().nth(marker.col()))
                    .filter(|c| matches!(c, '[' | '{'))
                    .map(|c| (marker.line(), marker.col() + 1, c));
                self.frames.push(Frame {
                    kind,
                    flow,
                    anchor,
                    nodes_at_start,
                    bytes_at_start,
                    pushed_segment,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.frames.pop() {
                    if frame.pushed_segment {
                        self.segments.pop();
                    }
                    if frame.anchor > 0 {
                        self.anchor_sizes.insert(
                            frame.anchor,
                            (
                                self.nodes - frame.nodes_at_start,
                                self.bytes - frame.bytes_at_start,
                            ),
                        );
                    }
                }
                self.finish_value();
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn expecting_key(&self) -> bool {
        matches!(
            self.frames.last(),
            Some(Frame {
                kind: FrameKind::Map {
                    expecting_key: true,
                    ..
                },
                ..
            })
        )
    }

    /// The path segment of a value node starting now (none for the root).
    fn value_segment(&mut self) -> Option<PathSeg> {
        match self.frames.last_mut() {
            Some(Frame {
                kind: FrameKind::Map { pending_key, .. },
                ..
            }) => pending_key.clone(),
            Some(Frame {
                kind: FrameKind::Seq { next },
                ..
            }) => {
                let index = *next;
                *next += 1;
                Some(PathSeg::Index(index))
            }
            None => None,
        }
    }

    /// After a value node is complete, its parent mapping expects a key again.
    fn finish_value(&mut self) {
        if let Some(Frame {
            kind:
                FrameKind::Map {
                    expecting_key,
                    pending_key,
                    ..
                },
            ..
        }) = self.frames.last_mut()
        {
            *expecting_key = true;
            *pending_key = None;
        }
    }

    fn on_key(&mut self, value: &str, style: TScalarStyle, marker: Marker) {
        let identity = key_identity(value, style);
        let span = self.scalar_span(value, style, marker);
        let mut key_path = self.segments.clone();
        key_path.push(PathSeg::Key(value.to_owned()));
        let mut duplicate_of = None;
        if let Some(Frame {
            kind:
                FrameKind::Map {
                    expecting_key,
                    pending_key,
                    seen,
                },
            ..
        }) = self.frames.last_mut()
        {
            match seen.get(&identity) {
                Some(&first_line) => duplicate_of = Some(first_line),
                None => {
                    seen.insert(identity, marker.line());
                }
            }
            *expecting_key = false;
            *pending_key = Some(PathSeg::Key(value.to_owned()));
        }
        match duplicate_of {
            Some(first_line) => self.error_at(
                marker,
                format!("duplicate key `{value}`"),
                Some(format!("first defined at line {first_line}")),
            ),
            None => {
                self.spans.keys.insert(key_path, span);
            }
        }
    }

    fn scalar_span(&self, value: &str, style: TScalarStyle, marker: Marker) -> Span {
        let line = marker.line();
        let column = marker.col() + 1;
        let source_line = self
            .lines
            .get(line.wrapping_sub(1))
            .map_or("", |l| l.trim_end_matches('\r'));
        let (style, layout) = match style {
            TScalarStyle::Plain => {
                let rest = source_line.chars().skip(marker.col());
                let inline = !value.contains('\n') && value.chars().zip(rest).all(|(a, b)| a == b);
                let inline = inline
                    && source_line.chars().skip(marker.col()).count() >= value.chars().count();
                let layout = if inline {
                    Layout::Inline {
                        first_column: column,
                    }
                } else {
                    Layout::Approximate
                };
                (ScalarStyle::Plain, layout)
            }
            TScalarStyle::SingleQuoted => (
                ScalarStyle::SingleQuoted,
                quoted_layout(source_line, marker.col(), column, value, '\''),
            ),
            TScalarStyle::DoubleQuoted => (
                ScalarStyle::DoubleQuoted,
                quoted_layout(source_line, marker.col(), column, value, '"'),
            ),
            TScalarStyle::Literal => {
                // yaml-rust2 marks a block scalar at its first content line; leading empty lines
                // are part of the value.
                let leading_empty = value.chars().take_while(|c| *c == '\n').count();
                (
                    ScalarStyle::Literal,
                    Layout::Block {
                        first_line: line.saturating_sub(leading_empty).max(1),
                        indent: marker.col(),
                    },
                )
            }
            TScalarStyle::Folded => (ScalarStyle::Folded, Layout::Approximate),
        };
        Span {
            line,
            column,
            style,
            layout,
        }
    }
}

/// Maps each character of a quoted single-line scalar to its file column by decoding the raw
/// text after the opening quote (at 0-based `quote_index`, 1-based `quote_column`).
fn quoted_layout(
    source_line: &str,
    quote_index: usize,
    quote_column: usize,
    value: &str,
    quote: char,
) -> Layout {
    let raw: Vec<char> = source_line.chars().skip(quote_index).collect();
    if raw.first() != Some(&quote) {
        return Layout::Approximate;
    }
    let mut columns = Vec::with_capacity(value.len());
    let mut i = 1;
    let mut escaped = false;
    loop {
        let Some(&c) = raw.get(i) else {
            // The closing quote is on another line: a multi-line scalar.
            return Layout::Approximate;
        };
        let column = quote_column + i;
        if c == quote {
            if quote == '\'' && raw.get(i + 1) == Some(&'\'') {
                columns.push(column);
                escaped = true;
                i += 2;
                continue;
            }
            break;
        }
        if quote == '"' && c == '\\' {
            let width = match raw.get(i + 1) {
                Some('x') => 4,
                Some('u') => 6,
                Some('U') => 10,
                Some(_) => 2,
                None => return Layout::Approximate,
            };
            columns.push(column);
            escaped = true;
            i += width;
            continue;
        }
        columns.push(column);
        i += 1;
    }
    if columns.len() != value.chars().count() {
        return Layout::Approximate;
    }
    if escaped {
        Layout::Escaped {
            columns: columns.into_boxed_slice(),
        }
    } else {
        Layout::Inline {
            first_column: quote_column + 1,
        }
    }
}

/// Converts a serde_yaml error into a diagnostic, locating unknown keys at the key itself; with
/// the key's line and column when it is an unknown key found in the file.
fn serde_diagnostic(
    path: &str,
    text: &str,
    spans: &Spans,
    err: &serde_yaml::Error,
) -> (Diagnostic, SerdeProblem) {
    let mut problem = SerdeProblem::Other;
    let mut message = err.to_string();
    let (mut line, mut column) = (1, 1);
    if let Some(location) = err.location() {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_owned();
        }
        line = location.line();
        column = location.column();
    }
    // serde_yaml prefixes the path of the offending value: `columns.x: invalid type: ...`.
    let mut key_path: Vec<PathSeg> = Vec::new();
    for (index, _) in message.match_indices(": ") {
        let candidate = parse_dotted(&message[..index]);
        if !candidate.is_empty() && spans.contains_or_encloses(&candidate) {
            key_path = candidate;
            message = message[index + 2..].to_owned();
            break;
        }
    }
    let shown_path = path_to_string(&key_path);
    let mut hint = None;
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = backticked(expected);
        let mut field_path = key_path.clone();
        field_path.push(PathSeg::Key(field.to_owned()));
        if let Some(span) = spans.key(&field_path) {
            line = span.line;
            column = span.column;
            problem = SerdeProblem::UnknownKey(line, column, key_path.clone());
        }
        hint = Some(if valid.is_empty() {
            "no keys are allowed here".to_owned()
        } else {
            hint_among(field, "valid keys", valid.iter().copied())
        });
        message = if shown_path.is_empty() {
            format!("unknown key `{field}`")
        } else {
            format!("unknown key `{field}` in `{shown_path}`")
        };
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        problem = SerdeProblem::MissingKey(key_path.clone());
        let field = rest.split('`').next().unwrap_or(rest);
        message = if shown_path.is_empty() {
            format!("missing key `{field}`")
        } else {
            format!("missing key `{field}` in `{shown_path}`")
        };
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            // serde names our private structs (`expected struct RawDate`): users wrote a mapping.
            let expected = if expected.starts_with("struct ") {
                "a mapping"
            } else {
                expected
            };
            let found = found.replace("unit value", "an empty value");
            message = if shown_path.is_empty() {
                format!("wrong type: expected {expected}, found {found}")
            } else {
                format!("wrong type for `{shown_path}`: expected {expected}, found {found}")
            };
        }
    } else if !shown_path.is_empty() {
        message = format!("`{shown_path}`: {message}");
    }
    let diagnostic = Diagnostic::error(path, line, column, message).with_source(text);
    let diagnostic = match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    };
    (diagnostic, problem)
}

/// Parses serde_yaml's path display (`a.b[2].c`) into segments.
fn parse_dotted(text: &str) -> Vec<PathSeg> {
    let mut path = Vec::new();
    for part in text.split('.') {
        let (key, mut indices) = match part.find('[') {
            Some(open) => (&part[..open], &part[open..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            path.push(PathSeg::Key(key.to_owned()));
        }
        while let Some(rest) = indices.strip_prefix('[') {
            let Some((number, after)) = rest.split_once(']') else {
                break;
            };
            match number.parse() {
                Ok(index) => path.push(PathSeg::Index(index)),
                Err(_) => return Vec::new(),
            }
            indices = after;
        }
    }
    path
}

/// The names between backticks in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields are only deserialized")]
    struct Config {
        columns: Option<BTreeMap<String, String>>,
        derive: Option<BTreeMap<String, String>>,
        flag: Option<bool>,
        list: Option<Vec<serde_yaml::Value>>,
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap_err()
    }

    fn keys(path: &[&str]) -> Vec<PathSeg> {
        path.iter().map(|p| PathSeg::from(*p)).collect()
    }

    #[test]
    fn records_key_and_value_positions() {
        let text = "columns:\n  order_id: InvoiceNo\nlist:\n  - a\n  - 'b'\n";
        let doc = parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap();
        let key = doc.spans.key(&keys(&["columns", "order_id"])).unwrap();
        assert_eq!((key.line, key.column), (2, 3));
        let value = doc.spans.value(&keys(&["columns", "order_id"])).unwrap();
        assert_eq!(
            (value.line, value.column, value.style),
            (2, 13, ScalarStyle::Plain)
        );
        let item = doc
            .spans
            .value(&[PathSeg::from("list"), PathSeg::Index(1)])
            .unwrap();
        assert_eq!(
            (item.line, item.column, item.style),
            (5, 5, ScalarStyle::SingleQuoted)
        );
    }

    #[test]
    fn locate_in_plain_scalar() {
        let text = "derive:\n  amount: Quantity * UnitPrice\n";
        let doc = parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap();
        // `*` is column 10 of the script, column 20 of line 2.
        assert_eq!(
            doc.spans
                .locate_in_scalar(&keys(&["derive", "amount"]), 1, 10),
            (2, 20)
        );
    }

    #[test]
    fn locate_in_quoted_scalars() {
        let text =
            "derive:\n  a: 'x + ''y'' + z'\n  b: \"x + \\\"y\\\" + z\"\n  c: \"plain + z\"\n";
        let doc = parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap();
        // Script `x + 'y' + z`: `z` is character 11; in the file: `  a: 'x + ''y'' + z'`, col 19.
        assert_eq!(
            doc.spans.locate_in_scalar(&keys(&["derive", "a"]), 1, 11),
            (2, 19)
        );
        // Script `x + "y" + z`: `z` is character 11; in the file the escapes add two columns.
        assert_eq!(
            doc.spans.locate_in_scalar(&keys(&["derive", "b"]), 1, 11),
            (3, 19)
        );
        // No escapes: quote offset only. `z` is character 9 of `plain + z`; file column 15.
        assert_eq!(
            doc.spans.locate_in_scalar(&keys(&["derive", "c"]), 1, 9),
            (4, 15)
        );
        assert_eq!(
            doc.spans.value(&keys(&["derive", "b"])).unwrap().style,
            ScalarStyle::DoubleQuoted
        );
    }

    #[test]
    fn locate_in_literal_block() {
        let text = "derive:\n  amount: |\n\n    let x = 1;\n    x +* 2\n";
        let doc = parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap();
        let path = keys(&["derive", "amount"]);
        assert_eq!(doc.spans.value(&path).unwrap().style, ScalarStyle::Literal);
        // Script line 3 (`x +* 2`, after an empty first line), column 4 (`*`).
        assert_eq!(doc.spans.locate_in_scalar(&path, 3, 4), (5, 8));
        assert_eq!(doc.spans.locate_in_scalar(&path, 2, 1), (4, 5));
    }

    #[test]
    fn locate_in_folded_and_multiline_is_best_effort() {
        let text = "derive:\n  a: >\n    x +\n    y\n  b: x +\n    y\n";
        let doc = parse::<Config>("f.yaml", text, &YamlLimits::default()).unwrap();
        let a = keys(&["derive", "a"]);
        assert_eq!(doc.spans.value(&a).unwrap().style, ScalarStyle::Folded);
        assert_eq!(doc.spans.locate_in_scalar(&a, 1, 5), (3, 5));
        assert_eq!(
            doc.spans.locate_in_scalar(&keys(&["derive", "b"]), 1, 5),
            (5, 6)
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second() {
        let errs = errors("columns:\n  a: x\n  b: y\n  a: z\nflag: true\nflag: false\n");
        let rendered: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "f.yaml:4:3: error: duplicate key `a`\n  4 |   a: z\n    |   ^\n  hint: first defined at line 2",
                "f.yaml:6:1: error: duplicate key `flag`\n  6 | flag: false\n    | ^\n  hint: first defined at line 5",
            ]
        );
    }

    #[test]
    fn quoted_and_plain_keys_are_the_same_string() {
        let errs = errors("columns:\n  a: x\n  \"a\": y\n  1: z\n  \"1\": w\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 3);
    }

    #[test]
    fn syntax_errors_are_located() {
        let errs = errors("columns: [a, b\nflag: true\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.starts_with("invalid YAML"), "{}", errs[0]);
    }

    #[test]
    fn second_document_is_refused() {
        let errs = errors("flag: true\n---\nflag: false\n");
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("second YAML document"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("list: {}{}\n", "[".repeat(100), "]".repeat(100));
        let errs = errors(&text);
        assert!(
            errs[0].message.contains("nesting deeper than 64"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn oversized_file_is_refused_before_parsing() {
        let limits = YamlLimits {
            max_bytes: 10,
            ..YamlLimits::default()
        };
        // Not even valid YAML: the size check comes first.
        let errs = parse::<Config>("f.yaml", "flag: [[[[[[[[[[[", &limits).unwrap_err();
        assert!(errs[0].message.starts_with("file is too large: 17 bytes"));
    }

    #[test]
    fn quadratic_alias_bomb_is_refused_quickly() {
        let mut text = String::from("list:\n  - &a [");
        text.push_str(&vec!["x"; 1000].join(", "));
        text.push_str("]\n");
        for _ in 0..1000 {
            text.push_str("  - *a\n");
        }
        let start = Instant::now();
        let errs = errors(&text);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(errs[0].message.contains("alias expands"), "{}", errs[0]);
        // 1,001 nodes for the anchored list, +1 for `list` and the outer sequence: the 99th
        // alias is the one that crosses 100,000.
        assert_eq!(errs[0].line, 3 + 98);
    }

    #[test]
    fn long_string_alias_bomb_is_refused_by_bytes() {
        // 500 KB aliased 2,000 times: few nodes, a gigabyte once expanded.
        let mut text = format!("list:\n  - &a {}\n", "x".repeat(500_000));
        for _ in 0..2_000 {
            text.push_str("  - *a\n");
        }
        let start = Instant::now();
        let errs = errors(&text);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(
            errs[0]
                .message
                .contains("alias repeats 500000 bytes and expands the document beyond 2097152"),
            "{}",
            errs[0]
        );
        // 500,004 bytes before the first alias: the fourth one crosses 2 MiB.
        assert_eq!((errs[0].line, errs[0].column), (6, 5));
        assert!(errs[0].to_string().len() < 1_000, "{}", errs[0]);
    }

    #[test]
    fn unknown_key_gets_a_did_you_mean() {
        let errs = errors("flag: true\ncolums:\n  a: b\n");
        assert_eq!(
            errs[0].to_string(),
            "f.yaml:2:1: error: unknown key `colums`\n  2 | colums:\n    | ^\n  hint: did you mean `columns`? valid keys: `columns`, `derive`, `flag`, `list`"
        );
    }

    #[test]
    fn wrong_type_names_the_path() {
        let errs = errors("flag: maybe\n");
        assert_eq!(
            errs[0].to_string(),
            "f.yaml:1:7: error: wrong type for `flag`: expected a boolean, found string \"maybe\"\n  1 | flag: maybe\n    |       ^"
        );
    }

    #[test]
    fn dotted_paths_parse() {
        assert_eq!(
            parse_dotted("a.b[2].c"),
            vec![
                PathSeg::from("a"),
                PathSeg::from("b"),
                PathSeg::Index(2),
                PathSeg::from("c")
            ]
        );
        assert_eq!(path_to_string(&parse_dotted("a.b[2].c")), "a.b[2].c");
    }
}
