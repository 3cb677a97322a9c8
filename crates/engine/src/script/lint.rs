//! Cheap static checks of Rhai scripts that catch mistakes Rhai itself accepts silently.
//!
//! Rhai evaluates a comparison between values of different types (`"3" <= 0`) to `false` without
//! an error, so a column read as a string and compared with a number quietly never matches.
//! [`number_comparisons`] finds `name <op> number` (and `number <op> name`) with a rough
//! tokenizer that skips strings and comments; the caller decides which names are suspicious.
//!
//! [`library_items`] reads a function library (a `rules/*.rhai` file): the functions it defines
//! and where, and the first top-level statement, which a library must not have.

use std::collections::HashSet;

/// A bare variable compared with a number literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumberComparison<'a> {
    /// The variable.
    pub(crate) name: &'a str,
    /// 1-based line and column of the variable in the script.
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Every variable (not a keyword, not declared with `let`/`const` in the script, not a method or
/// property) that the script compares with a number literal; each name once.
pub(crate) fn number_comparisons(source: &str) -> Vec<NumberComparison<'_>> {
    let tokens = tokenize(source);
    let locals: HashSet<&str> = tokens
        .windows(2)
        .filter_map(|pair| match (&pair[0].kind, &pair[1].kind) {
            (TokenKind::Ident("let" | "const"), TokenKind::Ident(name)) => Some(*name),
            _ => None,
        })
        .collect();
    let mut found: Vec<NumberComparison<'_>> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let TokenKind::Ident(name) = token.kind else {
            continue;
        };
        if locals.contains(name)
            || RHAI_WORDS.contains(&name)
            || found.iter().any(|seen| seen.name == name)
        {
            continue;
        }
        let before = i.checked_sub(1).map(|j| &tokens[j].kind);
        let after = tokens.get(i + 1).map(|t| &t.kind);
        if matches!(before, Some(TokenKind::Punct(".")))
            || matches!(after, Some(TokenKind::Punct("(" | ".")))
        {
            continue;
        }
        let number_after = matches!(after, Some(TokenKind::Compare))
            && matches!(
                (
                    tokens.get(i + 2).map(|t| &t.kind),
                    tokens.get(i + 3).map(|t| &t.kind)
                ),
                (Some(TokenKind::Number), _)
                    | (Some(TokenKind::Punct("-")), Some(TokenKind::Number))
            );
        let number_before = matches!(before, Some(TokenKind::Compare))
            && i >= 2
            && matches!(tokens[i - 2].kind, TokenKind::Number);
        if number_after || number_before {
            found.push(NumberComparison {
                name,
                line: token.line,
                column: token.column,
            });
        }
    }
    found
}

/// A call to a function or a method: a name followed by `(`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call<'a> {
    pub(crate) name: &'a str,
    /// 1-based line and column of the name in the script.
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Every name followed by `(` that is not a keyword (`if (..)`) and not a function the script
/// defines (`fn name(..)`), in order. Rough (it does not parse), so only meaningful for a script
/// that compiles.
pub(crate) fn function_calls(source: &str) -> Vec<Call<'_>> {
    let tokens = tokenize(source);
    let defined: HashSet<&str> = tokens
        .windows(2)
        .filter_map(|pair| match (&pair[0].kind, &pair[1].kind) {
            (TokenKind::Ident("fn"), TokenKind::Ident(name)) => Some(*name),
            _ => None,
        })
        .collect();
    tokens
        .windows(2)
        .filter_map(|pair| match (&pair[0].kind, &pair[1].kind) {
            (TokenKind::Ident(name), TokenKind::Punct("("))
                if !RHAI_WORDS.contains(name) && !defined.contains(name) =>
            {
                Some(Call {
                    name,
                    line: pair[0].line,
                    column: pair[0].column,
                })
            }
            _ => None,
        })
        .collect()
}

const RHAI_WORDS: &[&str] = &[
    "true", "false", "if", "else", "let", "const", "fn", "return", "while", "loop", "for", "in",
    "do", "until", "break", "continue", "switch", "this", "throw", "try", "catch", "private",
];

#[derive(Debug, PartialEq)]
enum TokenKind<'a> {
    Ident(&'a str),
    Number,
    Compare,
    Punct(&'a str),
    /// A string or character literal.
    Str,
}

/// A function defined by a library, with the 1-based position of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LibraryFunction<'a> {
    pub(crate) name: &'a str,
    pub(crate) params: Vec<&'a str>,
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// 1-based line and column of its `fn` and of the last token of its body (the closing
    /// `}`, or the last token of the file when it is missing).
    pub(crate) span: ((usize, usize), (usize, usize)),
}

/// What a function library holds at its top level.
#[derive(Debug, Default)]
pub(crate) struct LibraryItems<'a> {
    /// `fn` definitions, in file order.
    pub(crate) functions: Vec<LibraryFunction<'a>>,
    /// 1-based line and column of the first token that is not part of a function definition.
    pub(crate) first_statement: Option<(usize, usize)>,
}

/// The functions a library defines and its first top-level statement, if any. Rough (it does not
/// parse), so only meaningful for a script that compiles.
pub(crate) fn library_items(source: &str) -> LibraryItems<'_> {
    let tokens = tokenize(source);
    let mut items = LibraryItems::default();
    let mut i = 0;
    while let Some(token) = tokens.get(i) {
        match token.kind {
            TokenKind::Punct(";") | TokenKind::Ident("private") => i += 1,
            TokenKind::Ident("fn") => {
                let Some(Token {
                    kind: TokenKind::Ident(name),
                    line,
                    column,
                }) = tokens.get(i + 1)
                else {
                    i += 1;
                    continue;
                };
                let mut params = Vec::new();
                let mut j = i + 2;
                if matches!(tokens.get(j).map(|t| &t.kind), Some(TokenKind::Punct("("))) {
                    j += 1;
                    while let Some(t) = tokens.get(j) {
                        j += 1;
                        match t.kind {
                            TokenKind::Punct(")") => break,
                            TokenKind::Ident(param) => params.push(param),
                            _ => {}
                        }
                    }
                }
                let start = (token.line, token.column);
                let (name_line, name_column) = (*line, *column);
                // Skip the body: from its `{` to the matching `}`.
                let mut depth = 0usize;
                while let Some(t) = tokens.get(j) {
                    j += 1;
                    match t.kind {
                        TokenKind::Punct("{") => depth += 1,
                        TokenKind::Punct("}") => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = tokens
                    .get(j.saturating_sub(1))
                    .map_or(start, |t| (t.line, t.column));
                items.functions.push(LibraryFunction {
                    name,
                    params,
                    line: name_line,
                    column: name_column,
                    span: (start, end),
                });
                i = j;
            }
            _ => {
                items
                    .first_statement
                    .get_or_insert((token.line, token.column));
                i += 1;
                // Skip to the end of the statement (a `;` or `}` at depth 0).
                let mut depth = 0usize;
                while let Some(t) = tokens.get(i) {
                    i += 1;
                    match t.kind {
                        TokenKind::Punct("{" | "(" | "[") => depth += 1,
                        TokenKind::Punct("}" | ")" | "]") => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 && t.kind == TokenKind::Punct("}") {
                                break;
                            }
                        }
                        TokenKind::Punct(";") if depth == 0 => break,
                        _ => {}
                    }
                }
            }
        }
    }
    items
}

struct Token<'a> {
    kind: TokenKind<'a>,
    /// 1-based line and column in the script.
    line: usize,
    column: usize,
}

/// `source` with every character outside the 1-based, inclusive `span` of lines and columns
/// (columns count characters) replaced by a space, line breaks kept: the text compiles as that
/// part alone, with every position unchanged.
pub(crate) fn keep_only(source: &str, span: ((usize, usize), (usize, usize))) -> String {
    let (start, end) = span;
    let (mut line, mut column) = (1, 1);
    source
        .chars()
        .map(|c| {
            let inside = (line, column) >= start && (line, column) <= end;
            if c == '\n' {
                line += 1;
                column = 1;
                return c;
            }
            column += 1;
            if inside || c == '\r' { c } else { ' ' }
        })
        .collect()
}

/// A rough tokenizer, good enough to spot `name <op> number` outside strings and comments.
fn tokenize(source: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let (mut line, mut column) = (1, 1);
    let mut i = 0;
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize, n: usize| {
        for _ in 0..n {
            if let Some(&(_, c)) = chars.get(*i) {
                if c == '\n' {
                    *line += 1;
                    *column = 1;
                } else {
                    *column += 1;
                }
            }
            *i += 1;
        }
    };
    while let Some(&(start, c)) = chars.get(i) {
        let next = chars.get(i + 1).map(|&(_, c)| c);
        let (token_line, token_column) = (line, column);
        if c == '"' || c == '`' || c == '\'' {
            let mut n = 1;
            while let Some(&(_, d)) = chars.get(i + n) {
                n += 1;
                if d == '\\' {
                    n += 1;
                } else if d == c {
                    break;
                }
            }
            tokens.push(Token {
                kind: TokenKind::Str,
                line: token_line,
                column: token_column,
            });
            advance(&mut i, &mut line, &mut column, n);
        } else if c == '/' && next == Some('/') {
            let mut n = 0;
            while chars.get(i + n).is_some_and(|&(_, d)| d != '\n') {
                n += 1;
            }
            advance(&mut i, &mut line, &mut column, n);
        } else if c == '/' && next == Some('*') {
            let mut n = 2;
            while chars.get(i + n).is_some()
                && !(chars[i + n].1 == '*' && chars.get(i + n + 1).is_some_and(|&(_, d)| d == '/'))
            {
                n += 1;
            }
            advance(&mut i, &mut line, &mut column, n + 2);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut n = 0;
            while chars
                .get(i + n)
                .is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '_')
            {
                n += 1;
            }
            let end = chars.get(i + n).map_or(source.len(), |&(index, _)| index);
            tokens.push(Token {
                kind: TokenKind::Ident(&source[start..end]),
                line: token_line,
                column: token_column,
            });
            advance(&mut i, &mut line, &mut column, n);
        } else if c.is_ascii_digit() {
            let mut n = 0;
            while chars
                .get(i + n)
                .is_some_and(|&(_, d)| d.is_ascii_alphanumeric() || d == '_' || d == '.')
            {
                n += 1;
            }
            tokens.push(Token {
                kind: TokenKind::Number,
                line: token_line,
                column: token_column,
            });
            advance(&mut i, &mut line, &mut column, n);
        } else if c.is_whitespace() {
            advance(&mut i, &mut line, &mut column, 1);
        } else {
            let two: String = chars[i..chars.len().min(i + 2)]
                .iter()
                .map(|&(_, d)| d)
                .collect();
            let (kind, n) = match two.as_str() {
                "<=" | ">=" | "==" | "!=" => (TokenKind::Compare, 2),
                _ if c == '<' || c == '>' => (TokenKind::Compare, 1),
                _ => (TokenKind::Punct(&source[start..start + c.len_utf8()]), 1),
            };
            tokens.push(Token {
                kind,
                line: token_line,
                column: token_column,
            });
            advance(&mut i, &mut line, &mut column, n);
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str) -> Vec<(&str, usize, usize)> {
        number_comparisons(source)
            .into_iter()
            .map(|found| (found.name, found.line, found.column))
            .collect()
    }

    #[test]
    fn finds_comparisons_with_numbers() {
        assert_eq!(names("Quantity <= 0"), [("Quantity", 1, 1)]);
        assert_eq!(names("a > -1.5 || 3 == b"), [("a", 1, 1), ("b", 1, 18)]);
        assert_eq!(names("x &&\n  Price >= 10"), [("Price", 2, 3)]);
    }

    #[test]
    fn library_functions_and_statements() {
        let items = library_items(
            "// helpers\nfn potential(score, orders) {\n  if score > 1 { score } else { orders }\n}\nprivate fn twice(x) { x * 2 }\n",
        );
        let functions: Vec<(&str, Vec<&str>, usize, usize)> = items
            .functions
            .iter()
            .map(|f| (f.name, f.params.clone(), f.line, f.column))
            .collect();
        assert_eq!(
            functions,
            [
                ("potential", vec!["score", "orders"], 2, 4),
                ("twice", vec!["x"], 5, 12)
            ]
        );
        assert_eq!(items.first_statement, None);
        let items = library_items("fn f() { 1 }\n\"x\";\nlet y = 2;\n");
        assert_eq!(items.first_statement, Some((2, 1)));
        let items = library_items("fn f() { 1 }\nif true { 1 }\n");
        assert_eq!(items.first_statement, Some((2, 1)));
    }

    #[test]
    fn ignores_strings_comments_locals_and_methods() {
        assert!(names(r#""a > 1" == s"#).is_empty());
        assert!(names("// a > 1\n/* b < 2 */ true").is_empty());
        assert!(names("let q = 1; q > 0").is_empty());
        assert!(names("x.len() > 0 || y.size > 1").is_empty());
        assert!(names("a == b").is_empty());
    }
}
