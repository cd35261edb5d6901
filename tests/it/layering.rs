//! The library's modules depend one way: among the modules of one parent (the crate's,
//! `config`'s, `providers`'s…) no two reach each other, directly or around a loop. Read
//! from the `crate::` and `super::` paths of `src/`, test code excluded, so that a
//! cycle fails `cargo test` (and CI) with the lines that make it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every module of the library (`src/`, not the binary's `main.rs`) and its file.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("inside src");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts == ["main"] {
                continue;
            }
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            out.insert(parts, path);
        }
    }
    out
}

/// The paths a file names through `crate::` and `super::`, before its tests, with the
/// line each is on. `use a::{b, c::d}` groups are expanded.
fn references(module: &[String], text: &str) -> Vec<(Module, usize)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        for start in ["crate::", "super::"] {
            let mut rest = line;
            while let Some(at) = rest.find(start) {
                // A path segment right before (`foo::crate::`) is not a start.
                let before = &rest[..at];
                rest = &rest[at..];
                if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    rest = &rest[start.len()..];
                    continue;
                }
                let mut base: Module = if start == "crate::" {
                    Vec::new()
                } else {
                    module[..module.len().saturating_sub(1)].to_vec()
                };
                rest = &rest[start.len()..];
                // More `super::`.
                while let Some(after) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = after;
                }
                for path in expand(rest) {
                    let mut full = base.clone();
                    full.extend(path);
                    out.push((full, n + 1));
                }
            }
        }
    }
    out
}

/// The paths of `a::b::{c, d::e}` (as written after `crate::`): `[a, b, c]`, `[a, b, d, e]`.
fn expand(text: &str) -> Vec<Module> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        if !word.is_empty() {
            prefix.push(word.to_string());
        }
        if let Some(after) = after.strip_prefix("::") {
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 1;
                let mut items = Vec::new();
                let mut current = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => {
                            items.push(std::mem::take(&mut current));
                            continue;
                        }
                        _ => {}
                    }
                    current.push(c);
                }
                items.push(current);
                return items
                    .iter()
                    .map(|i| i.trim())
                    .filter(|i| !i.is_empty() && *i != "self")
                    .flat_map(|i| {
                        expand(i).into_iter().map(|tail| {
                            let mut p = prefix.clone();
                            p.extend(tail);
                            p
                        })
                    })
                    .chain(std::iter::once(prefix.clone()))
                    .collect();
            }
            rest = after;
            continue;
        }
        return vec![prefix];
    }
}

/// The longest prefix of `path` that is a module.
fn module_of(path: &[String], known: &BTreeMap<Module, PathBuf>) -> Module {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains_key(p))
        .unwrap_or_default()
}

/// Sibling edges: for `from` using `to`, the two children of their deepest common
/// ancestor, when neither module contains the other.
fn sibling_edge(from: &[String], to: &[String]) -> Option<(Module, String, String)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((
        from[..common].to_vec(),
        from[common].clone(),
        to[common].clone(),
    ))
}

#[test]
fn modules_depend_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    assert!(known.len() > 20, "{} modules found", known.len());
    // Per parent: child -> (child it uses -> where).
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for (module, file) in &known {
        let text = std::fs::read_to_string(file).expect("read");
        for (path, line) in references(module, &text) {
            let target = module_of(&path, &known);
            if let Some((parent, a, b)) = sibling_edge(module, &target) {
                let at = format!(
                    "{}:{line}",
                    file.strip_prefix(&src).unwrap_or(file).display()
                );
                graphs
                    .entry(parent)
                    .or_default()
                    .entry(a)
                    .or_default()
                    .entry(b)
                    .or_insert(at);
            }
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &graphs {
        for start in graph.keys() {
            // Depth-first from `start`, looking for a way back to it.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for next in graph.get(&node).map(|m| m.keys()).into_iter().flatten() {
                    if next == start {
                        let mut loop_ = trail.clone();
                        loop_.push(next.clone());
                        if loop_.iter().min() == Some(start) {
                            let wheres: Vec<String> = loop_
                                .windows(2)
                                .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[&w[0]][&w[1]]))
                                .collect();
                            cycles.push(format!("in {}: {}", parent.join("::"), wheres.join(", ")));
                        }
                    } else if seen.insert(next.clone()) {
                        let mut longer = trail.clone();
                        longer.push(next.clone());
                        stack.push((next.clone(), longer));
                    }
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_relative_paths() {
    let module: Module = vec!["config".into(), "routes".into()];
    let found: Vec<Module> = references(
        &module,
        "use crate::providers::{self, Provider, sig::{a, b}};\nuse super::validate::Checker;\nlet x = crate::ratelimit::MAX;\n#[cfg(test)]\nuse crate::later;",
    )
    .into_iter()
    .map(|(p, _)| p)
    .collect();
    let strings: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    for expected in [
        "providers::Provider",
        "providers::sig::a",
        "config::validate::Checker",
        "ratelimit::MAX",
    ] {
        assert!(
            strings.iter().any(|s| s == expected),
            "{expected} not in {strings:?}"
        );
    }
    assert!(
        !strings.iter().any(|s| s.contains("later")),
        "test code is not read"
    );
    assert_eq!(
        sibling_edge(&module, &["config".into(), "validate".into()]),
        Some((vec!["config".into()], "routes".into(), "validate".into()))
    );
    assert_eq!(sibling_edge(&module, &["config".into()]), None);
}

/// The module map at the top of `lib.rs` names every module the crate declares, so it
/// cannot fall behind the layout.
#[test]
fn the_module_map_names_every_module() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("read lib.rs");
    let map: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches("pub ");
            l.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    assert!(declared.len() > 20, "{declared:?}");
    let missing: Vec<&&str> = declared
        .iter()
        .filter(|m| !map.contains(&format!("[`{m}`]")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in lib.rs's module map: {missing:?}"
    );
}
