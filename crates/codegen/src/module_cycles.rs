//! The module graph of a crate and its cycles: the check that no two sibling modules of a
//! crate depend on each other, directly or around a loop (`runner` uses `cache` and `cache`
//! uses `runner`). Run by the `no_module_cycles` test over every crate of the workspace, and
//! by `cargo run -p codeyard-codegen -- module-cycles`.
//!
//! Modules are found from the file layout (`src/a/b.rs` and `src/a/b/mod.rs` are `a::b`;
//! `src/bin/` is left out). A module depends on another when its code (comments and strings
//! left out, and the inline `#[cfg(test)]` module) names a path into it: `crate::a::b::X`,
//! `super::b::X`, `use crate::{a::X, b}`. For each module, its children are compared as whole
//! subtrees: child `x` depends on child `y` when anything in `x` names anything in `y`. A
//! module naming its own ancestors (`crate::Error`, `super::*`) is containment, not a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A cycle: the module paths around it, each depending on the next and the last on the first
/// (`["runner", "cache"]`).
pub type Cycle = Vec<String>;

/// The cycles among sibling modules of the crate whose `src/` is `src`.
pub fn cycles(src: &Path) -> std::io::Result<Vec<Cycle>> {
    let mut sources = BTreeMap::new();
    collect(src, src, &mut sources)?;
    let modules: BTreeSet<Vec<String>> = sources.keys().cloned().collect();
    // module -> the modules it names (resolved to the longest known module prefix).
    let mut uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in &sources {
        let set = uses.entry(module.clone()).or_default();
        for path in paths(&strip(text)) {
            if let Some(target) = resolve(module, &path, &modules) {
                set.insert(target);
            }
        }
    }
    let mut found = Vec::new();
    // Each parent's children, as subtrees.
    let parents: BTreeSet<Vec<String>> = modules.iter().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
    for parent in parents {
        let depth = parent.len();
        let child_of = |m: &Vec<String>| -> Option<String> { (m.len() > depth && m[..depth] == parent[..]).then(|| m[depth].clone()) };
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in &uses {
            let Some(a) = child_of(from) else { continue };
            for to in targets {
                if let Some(b) = child_of(to)
                    && a != b
                {
                    edges.entry(a.clone()).or_default().insert(b);
                }
            }
        }
        for cycle in find_cycles(&edges) {
            found.push(cycle.iter().map(|c| parent.iter().chain(std::iter::once(c)).cloned().collect::<Vec<_>>().join("::")).collect());
        }
    }
    Ok(found)
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<Vec<String>, String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let rel: Vec<String> = path.strip_prefix(root).unwrap().iter().map(|c| c.to_string_lossy().into_owned()).collect();
        if path.is_dir() {
            if rel != ["bin"] {
                collect(root, &path, out)?;
            }
            continue;
        }
        let Some(stem) = rel.last().and_then(|f| f.strip_suffix(".rs")) else { continue };
        let mut module: Vec<String> = rel[..rel.len() - 1].to_vec();
        if !(matches!(stem, "mod") || (module.is_empty() && matches!(stem, "lib" | "main"))) {
            module.push(stem.to_string());
        }
        let text = std::fs::read_to_string(&path)?;
        out.entry(module).or_default().push_str(&text);
    }
    Ok(())
}

/// The code without comments, string and char literals, and without the inline
/// `#[cfg(test)] mod tests { .. }` (test code is not the crate's structure).
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && (i == 0 || !is_ident(b[i - 1])) => {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                i += 2 + hashes;
                while i < b.len() && !b[i..].starts_with(&close) {
                    i += 1;
                }
                i += close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal ('"', '\'', '{'); a lifetime ('a) has no closing quote after one char.
            b'\'' if b.get(i + 2) == Some(&b'\'') && b.get(i + 1) != Some(&b'\\') => i += 3,
            b'\'' if b.get(i + 1) == Some(&b'\\') => {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every path that starts with `crate::`, `super::` or `self::`, with `use` groups expanded
/// (`crate::{a::X, b}` is `crate::a::X` and `crate::b`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = ["crate::", "super::", "self::"].iter().find(|p| b[i..].starts_with(p.as_bytes()));
        match starts {
            Some(_) if i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':' || b[i - 1] == b'$') => {
                let (list, end) = tree(b, i, Vec::new());
                out.extend(list);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Reads one use tree from `i` (segments separated by `::`, possibly ending in a `{..}` group),
/// prefixed by `prefix`. Answers the paths and where it ended.
fn tree(b: &[u8], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'{') {
            let mut all = Vec::new();
            i += 1;
            loop {
                while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return (all, i + 1);
                }
                let (list, end) = tree(b, i, path.clone());
                all.extend(list);
                if end <= i {
                    return (all, i + 1);
                }
                i = end;
                // Skip an `as name` and anything else up to the next item of the group.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i == start {
            return (vec![path], i);
        }
        path.push(String::from_utf8_lossy(&b[start..i]).into_owned());
        if b[i..].starts_with(b"::") {
            i += 2;
        } else {
            return (vec![path], i);
        }
    }
}

/// The module `path` (named in `from`) lands in: `crate::`, `super::` and `self::` resolved,
/// then the longest prefix that is a module.
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => rest = &rest[1..],
        Some("self") | Some("super") => {
            base = from.to_vec();
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "self" => {}
                    "super" => {
                        base.pop()?;
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut full = base;
    full.extend(rest.iter().cloned());
    (0..=full.len()).rev().map(|n| full[..n].to_vec()).find(|m| modules.contains(m))
}

/// The cycles of a directed graph, one per strongly connected component of more than one
/// node (its members in order around one loop through them).
fn find_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flatten()).collect();
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reachable[n].contains(*n) {
            continue;
        }
        let component: BTreeSet<String> = reachable[n].iter().filter(|m| reachable[m].contains(*n)).cloned().collect();
        done.extend(component.iter().cloned());
        out.push(component.into_iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Vec<Cycle> {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        cycles(dir.path()).unwrap()
    }

    #[test]
    fn finds_a_cycle_between_siblings_through_groups_and_super() {
        let found = graph(&[
            ("lib.rs", "mod runner; mod cache; pub struct Error;"),
            ("runner/mod.rs", "mod phases; use crate::Error; pub struct Ctx;"),
            ("runner/phases.rs", "use crate::{cache::{self, Cache}, Error};"),
            ("cache.rs", "fn f(c: &super::runner::Ctx) {}"),
        ]);
        assert_eq!(found, vec![vec!["cache".to_string(), "runner".to_string()]]);
    }

    #[test]
    fn ancestors_comments_strings_and_tests_are_not_dependencies() {
        let found = graph(&[
            ("lib.rs", "mod a; mod b; pub use a::A; pub use b::B;"),
            ("a.rs", "use crate::B; // crate::b is fine\npub struct A;"),
            ("b.rs", "use super::*; const S: &str = \"crate::a::A\"; pub struct B;\n#[cfg(test)]\nmod tests {\n use crate::a::A;\n}\n"),
        ]);
        // `a` names `crate::B` (the root, an ancestor), never the module `b`.
        assert!(found.is_empty(), "{found:?}");
    }

    /// Cycles in crates whose owners are still breaking them. The test fails on any cycle not
    /// listed here, and on a listed one that is gone (so that the list only shrinks).
    const KNOWN: &[&str] = &[];

    /// No crate of the workspace has a module cycle (but the [`KNOWN`] ones).
    #[test]
    fn no_module_cycles() {
        let root = crate::workspace_root();
        let mut all = Vec::new();
        for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
            let src = entry.path().join("src");
            if src.is_dir() {
                for cycle in cycles(&src).unwrap() {
                    all.push(format!("{}: {}", entry.file_name().to_string_lossy(), cycle.join(" <-> ")));
                }
            }
        }
        all.sort();
        let new: Vec<&String> = all.iter().filter(|c| !KNOWN.contains(&c.as_str())).collect();
        assert!(new.is_empty(), "module cycles:\n{}", new.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("\n"));
        let gone: Vec<&&str> = KNOWN.iter().filter(|k| !all.iter().any(|c| c == *k)).collect();
        assert!(gone.is_empty(), "no longer cycles, remove them from KNOWN: {gone:?}");
    }
}
