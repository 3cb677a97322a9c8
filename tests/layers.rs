//! No import circles inside a crate: between the rooms (top-level modules: folders, or files at
//! the top) of every crate of the workspace, and between the files of the engine.
//!
//! It reads the sources as text: every `crate::…` and `super::…` path outside comments and
//! `#[cfg(test)]` items, resolved against the modules the files define (`a.rs`, `a/mod.rs`,
//! `a/b.rs`) and the modules the crate root re-exports under their earlier names (`crate::outbox`
//! for `crate::mail::outbox`). A path that stops at the crate root (`crate::Foo`) names no
//! module and is not counted; nor is a module's use of its own children. Run it alone with
//! `cargo test --test layers`; a failure names the circle and, for each arrow, the first
//! `file:line` that makes it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Circles known when this test was written, to be taken apart (each names its crate and the
/// rooms in the circle, sorted). The test fails when one of them is gone, so the list only
/// shrinks.
const KNOWN: &[(&str, &[&str])] = &[
    // Opening a store checks the file's integrity, which is written as `impl Store`.
    ("crates/store", &["db", "integrity"]),
];

/// One module of a crate: its path from the crate root (`["load", "rules"]`) and its file.
#[derive(Debug)]
struct Module {
    path: Vec<String>,
    file: PathBuf,
}

/// An arrow from one module to another, with where it is first made.
#[derive(Debug, Clone)]
struct Use {
    to: Vec<String>,
    line: usize,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every crate's source folder and its root file.
fn crates() -> Vec<(String, PathBuf, PathBuf)> {
    let root = workspace();
    let mut out = vec![(
        "the root package (src)".to_owned(),
        root.join("src"),
        root.join("src/main.rs"),
    )];
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("read crates/")
        .map(|entry| entry.expect("read crates/").path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let src = dir.join("src");
        let top = ["lib.rs", "main.rs"]
            .iter()
            .map(|name| src.join(name))
            .find(|file| file.is_file());
        if let Some(top) = top {
            let name = format!("crates/{}", dir.file_name().unwrap().to_string_lossy());
            out.push((name, src, top));
        }
    }
    out
}

/// Removes comments (line and block) and the contents of string and char literals, keeping
/// the lines where they were.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            out.push('"');
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some('\n') => out.push('\n'),
                    Some(_) => {}
                }
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && next.is_some() && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            // '\n', '\u{..}'
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Blanks every item under `#[cfg(test)]` (a `mod tests { … }`, a `use`, a function), keeping
/// the lines; returns the names of `mod NAME;` declared under it (test-only files).
fn without_test_items(code: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(code.len());
    let mut test_mods = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its first `;` before any `{`, or where its first `{` closes.
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, ch) in item.char_indices().skip("#[cfg(test)]".len()) {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
        }
        let skipped = &item[..end];
        let declaration = skipped["#[cfg(test)]".len()..].trim_start();
        if let Some(name) = declaration
            .strip_prefix("mod ")
            .or_else(|| declaration.strip_prefix("pub(crate) mod "))
            .or_else(|| declaration.strip_prefix("pub mod "))
            .and_then(|name| name.strip_suffix(';'))
        {
            test_mods.push(name.trim().to_owned());
        }
        out.extend(skipped.chars().filter(|&ch| ch == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_mods)
}

/// The modules of a crate whose root file is `top`, test-only files left out.
fn modules(src: &Path, top: &Path) -> Vec<Module> {
    let mut out = Vec::new();
    let mut queue = vec![(Vec::<String>::new(), top.to_path_buf())];
    while let Some((path, file)) = queue.pop() {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (code, test_mods) = without_test_items(&code_only(&text));
        // Where this module's children live.
        let dir = if path.is_empty() {
            src.to_path_buf()
        } else if file.file_name().is_some_and(|n| n == "mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for line in code.lines() {
            let line = line.trim();
            let declaration = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("pub(super) mod "))
                .or_else(|| line.strip_prefix("mod "));
            let Some(name) = declaration.and_then(|d| d.strip_suffix(';')) else {
                continue;
            };
            let name = name.trim().to_owned();
            if test_mods.contains(&name) {
                continue;
            }
            let candidates = [
                dir.join(format!("{name}.rs")),
                dir.join(&name).join("mod.rs"),
            ];
            if let Some(child) = candidates.into_iter().find(|c| c.is_file()) {
                let mut child_path = path.clone();
                child_path.push(name);
                queue.push((child_path, child));
            }
        }
        out.push(Module { path, file });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The modules the crate root re-exports under another name (`pub use mail::{outbox, …};`
/// makes `crate::outbox` mean `crate::mail::outbox`).
fn aliases(top: &Path, known: &BTreeSet<Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(top).expect("read the crate root");
    let (code, _) = without_test_items(&code_only(&text));
    let mut out = BTreeMap::new();
    for (number, line) in code.lines().enumerate() {
        if !line.contains("pub use ") {
            continue;
        }
        let from_here: String = code
            .lines()
            .skip(number)
            .take(12)
            .collect::<Vec<_>>()
            .join("\n");
        let start = from_here
            .find("pub use ")
            .map_or(0, |i| i + "pub use ".len());
        for path in paths(&from_here[start..]) {
            if path.len() >= 2 && known.contains(&path) {
                out.insert(path.last().unwrap().clone(), path);
            }
        }
    }
    out
}

/// Reads an identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths of a use tree or an expression path starting at `s` (just after `crate::` or
/// `super::`): `a::b::C`, `a::{b::C, d}`, `{a, b::c}`.
fn paths(s: &str) -> Vec<Vec<String>> {
    fn tree(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix.to_vec();
        let mut i = 0;
        loop {
            let rest = s[i..].trim_start();
            i = s.len() - rest.len();
            if rest.starts_with('{') {
                i += 1;
                loop {
                    let rest = s[i..].trim_start();
                    i = s.len() - rest.len();
                    if rest.starts_with('}') {
                        return i + 1;
                    }
                    if rest.is_empty() {
                        return i;
                    }
                    i += tree(&s[i..], &path, out);
                    let rest = s[i..].trim_start();
                    i = s.len() - rest.len();
                    if rest.starts_with(',') {
                        i += 1;
                    }
                }
            }
            let name = ident(rest);
            if name.is_empty() {
                out.push(path);
                return i;
            }
            path.push(name.to_owned());
            i += name.len();
            if s[i..].starts_with("::") {
                i += 2;
            } else {
                out.push(path);
                return i;
            }
        }
    }
    let mut out = Vec::new();
    tree(s, &[], &mut out);
    out
}

/// Every module path `from` reads, with its first line, resolved to the deepest module that
/// exists (`crate::load::rules::Loader` → `load::rules`).
fn uses(
    module: &Module,
    known: &BTreeSet<Vec<String>>,
    aliases: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<Vec<String>, Use> {
    let text = fs::read_to_string(&module.file).expect("read a module");
    let (code, _) = without_test_items(&code_only(&text));
    let mut out: BTreeMap<Vec<String>, Use> = BTreeMap::new();
    let lines: Vec<&str> = code.lines().collect();
    for (number, line) in lines.iter().enumerate() {
        if !line.contains("crate::") && !line.contains("super::") {
            continue;
        }
        // A `use` spanning lines is read from its first line on.
        let from_here = lines[number..lines.len().min(number + 12)].join("\n");
        for (anchor, base) in [
            ("crate::", Vec::new()),
            (
                "super::",
                module.path[..module.path.len().saturating_sub(1)].to_vec(),
            ),
        ] {
            let mut search = 0;
            while let Some(found) = line[search..].find(anchor) {
                let at = search + found;
                search = at + anchor.len();
                if ident_before(
                    &line.chars().collect::<Vec<_>>(),
                    line[..at].chars().count(),
                ) {
                    continue;
                }
                let offset = line[..at].len() + anchor.len();
                for path in paths(&from_here[offset..]) {
                    let mut full = base.clone();
                    full.extend(path);
                    // An earlier path the crate root re-exports (`crate::outbox` for
                    // `crate::mail::outbox`).
                    if let Some(real) = full
                        .first()
                        .filter(|first| !known.contains(&vec![(*first).clone()]))
                        .and_then(|first| aliases.get(first))
                    {
                        full.splice(..1, real.iter().cloned());
                    }
                    // The deepest existing module.
                    let mut target = full;
                    while !target.is_empty() && !known.contains(&target) {
                        target.pop();
                    }
                    if target.is_empty()
                        || target == module.path
                        || target.starts_with(&module.path)
                    {
                        continue;
                    }
                    out.entry(target).or_insert(Use {
                        to: Vec::new(),
                        line: number + 1,
                    });
                }
            }
        }
    }
    for (target, found) in &mut out {
        found.to.clone_from(target);
    }
    out
}

/// The strongly connected components with more than one node (Tarjan).
fn circles(nodes: &[String], edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(s: &mut State<'_>, v: &str) {
        let n = s.index.len();
        s.index.insert(v.to_owned(), n);
        s.low.insert(v.to_owned(), n);
        s.stack.push(v.to_owned());
        s.on_stack.insert(v.to_owned());
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.to_owned(), low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.to_owned(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(&w);
                let done = w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.out.sort();
    state.out
}

/// One circle of a component, as `a → b → … → a`, each arrow with its first `file:line`.
fn describe(
    component: &[String],
    edges: &BTreeMap<String, BTreeSet<String>>,
    evidence: &BTreeMap<(String, String), String>,
) -> String {
    // Walk inside the component from its first node until a node repeats.
    let inside: BTreeSet<&String> = component.iter().collect();
    let mut walk = vec![component[0].clone()];
    loop {
        let last = walk.last().unwrap();
        let next = edges[last]
            .iter()
            .find(|w| inside.contains(w))
            .unwrap()
            .clone();
        if let Some(start) = walk.iter().position(|v| *v == next) {
            walk.drain(..start);
            walk.push(next);
            break;
        }
        walk.push(next);
    }
    let mut text = walk.join(" → ");
    for pair in walk.windows(2) {
        let _ = write!(
            text,
            "\n      {} → {}: {}",
            pair[0],
            pair[1],
            evidence[&(pair[0].clone(), pair[1].clone())]
        );
    }
    text
}

#[test]
fn no_import_circles_between_rooms_or_engine_files() {
    let root = workspace();
    let mut problems = Vec::new();
    let mut known_seen = BTreeSet::new();
    for (name, src, top) in crates() {
        let modules = modules(&src, &top);
        let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
        let aliases = aliases(&top, &known);
        // Rooms: top-level modules. Files: every module (the engine only).
        let levels: &[&str] = if name == "crates/engine" {
            &["rooms", "files"]
        } else {
            &["rooms"]
        };
        for &level in levels {
            let node = |path: &[String]| -> String {
                if level == "rooms" {
                    path[0].clone()
                } else {
                    path.join("::")
                }
            };
            let nodes: Vec<String> = modules
                .iter()
                .filter(|m| !m.path.is_empty())
                .map(|m| node(&m.path))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut evidence = BTreeMap::new();
            for module in modules.iter().filter(|m| !m.path.is_empty()) {
                let from = node(&module.path);
                for (target, found) in uses(module, &known, &aliases) {
                    let to = node(&target);
                    if to == from {
                        continue;
                    }
                    edges.entry(from.clone()).or_default().insert(to.clone());
                    let file = module.file.strip_prefix(&root).unwrap_or(&module.file);
                    evidence.entry((from.clone(), to)).or_insert(format!(
                        "{}:{} uses crate::{}",
                        file.display(),
                        found.line,
                        found.to.join("::")
                    ));
                }
            }
            for component in circles(&nodes, &edges) {
                let is_known = level == "rooms"
                    && KNOWN.iter().any(|(krate, rooms)| {
                        *krate == name
                            && rooms
                                .iter()
                                .map(|r| r.to_string())
                                .eq(component.iter().cloned())
                    });
                if is_known {
                    known_seen.insert((name.clone(), component.clone()));
                    continue;
                }
                problems.push(format!(
                    "{name}: an import circle between {level} ({} tied together: {}), e.g. {}",
                    component.len(),
                    component.join(", "),
                    describe(&component, &edges, &evidence)
                ));
            }
        }
    }
    for (krate, rooms) in KNOWN {
        let rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
        if !known_seen.contains(&(krate.to_string(), rooms.clone())) {
            problems.push(format!(
                "{krate}: the known circle {rooms:?} is gone or changed: remove it from KNOWN in tests/layers.rs"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn a_circle_is_found_and_named() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let nodes: Vec<String> = ["a", "b", "c", "d"].map(str::to_owned).to_vec();
    let found = circles(&nodes, &edges);
    assert_eq!(
        found,
        vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
    let evidence = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(x, y)| {
            (
                (x.to_owned(), y.to_owned()),
                format!("{x}.rs:1 uses crate::{y}"),
            )
        })
        .collect();
    assert!(describe(&found[0], &edges, &evidence).starts_with("a → b → c → a"));
}

#[test]
fn paths_are_read_from_use_trees_and_expressions() {
    let joined = |s: &str| -> Vec<String> { paths(s).iter().map(|p| p.join("::")).collect() };
    assert_eq!(
        joined("load::{rules::{Loader, key}, followups};"),
        ["load::rules::Loader", "load::rules::key", "load::followups"]
    );
    assert_eq!(
        joined("text::yaml::PathSeg::from(x)"),
        ["text::yaml::PathSeg::from"]
    );
    let (code, mods) = without_test_items(&code_only(
        "use crate::a; // crate::b\n#[cfg(test)]\nmod tests {\n use crate::c;\n}\n#[cfg(test)]\nmod support;\nlet s = \"crate::d\";",
    ));
    assert!(code.contains("crate::a") && !code.contains("crate::b") && !code.contains("crate::c"));
    assert!(!code.contains("crate::d"));
    assert_eq!(mods, vec!["support"]);
    let dir = std::env::temp_dir().join(format!("tiercare-layers-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let top = dir.join("lib.rs");
    fs::write(
        &top,
        "pub mod mail;\npub use mail::{\n    outbox,\n    templates};\n",
    )
    .unwrap();
    let known: BTreeSet<Vec<String>> = [
        vec!["mail"],
        vec!["mail", "outbox"],
        vec!["mail", "templates"],
    ]
    .into_iter()
    .map(|p| p.into_iter().map(str::to_owned).collect())
    .collect();
    let found = aliases(&top, &known);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found["outbox"], ["mail", "outbox"]);
    assert_eq!(found["templates"], ["mail", "templates"]);
    assert_eq!(code.lines().count(), 8);
}
