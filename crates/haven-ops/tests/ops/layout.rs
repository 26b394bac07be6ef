//! The layout ARCHITECTURE.md promises: no import cycles between the
//! files of any crate, and haven-ops' capabilities depending on each other
//! in one direction only (the layers below). Read from the sources, test
//! modules excluded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// haven-ops' top-level modules, lowest first: a module may use only
/// modules of a lower layer (ARCHITECTURE.md, "haven-ops").
const OPS_LAYERS: &[&[&str]] = &[
    &["clock"],
    &["instance"],
    &["jobs", "delivery"],
    &["audit", "access"],
    &["status", "preflight", "drills", "holds"],
    &["recovery", "metrics"],
    &["api"],
    &["watch"],
    &["server"],
    &["datadir"],
];

/// Module path ("jobs::runner") → the modules of the same crate it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn no_crate_has_an_import_cycle_between_files() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).expect("crates dir") {
        let src = entry.expect("entry").path().join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = module_graph(&src);
        assert!(!graph.is_empty(), "no modules read in {}", src.display());
        let cycles = cycles(&graph);
        assert!(
            cycles.is_empty(),
            "import cycles in {}: {cycles:?}",
            src.display()
        );
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} crates found in {crates:?}");
}

#[test]
fn haven_ops_capabilities_depend_downwards_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer_of = |top: &str| {
        OPS_LAYERS
            .iter()
            .position(|layer| layer.contains(&top))
            .unwrap_or_else(|| panic!("module {top} is in no layer of OPS_LAYERS"))
    };
    let mut upward = Vec::new();
    for (module, uses) in module_graph(&src) {
        let from = top_level(&module);
        if from == "crate" {
            continue;
        }
        for used in uses {
            let to = top_level(&used);
            if to != from && to != "crate" && layer_of(to) >= layer_of(from) {
                upward.push(format!("{module} -> {used}"));
            }
        }
    }
    assert!(upward.is_empty(), "uses against the layers: {upward:#?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(Graph::new(), |mut g, (from, to)| {
            g.entry(from.into()).or_default().insert(to.into());
            g
        });
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
}

fn top_level(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Every `.rs` file under `src` as a module, with the modules it refers
/// to through `crate::` and `super::` paths (a parent's re-export of its
/// own children does not count).
fn module_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let modules: BTreeMap<String, PathBuf> = files
        .into_iter()
        .map(|f| (module_name(src, &f), f))
        .collect();
    let mut graph = Graph::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("read source");
        let code = without_tests_and_comments(&text);
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut uses = BTreeSet::new();
        for (base, path) in references(&code) {
            let base = if base == "crate" { "" } else { parent };
            if let Some(found) = longest_module(&modules, base, &path) {
                uses.insert(found);
            }
        }
        uses.remove(module);
        graph.insert(module.clone(), uses);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// `src/jobs/mod.rs` → `jobs`, `src/jobs/plan.rs` → `jobs::plan`,
/// `src/lib.rs` → `crate`.
fn module_name(src: &Path, file: &Path) -> String {
    let relative = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    if parts.is_empty() {
        "crate".into()
    } else {
        parts.join("::")
    }
}

/// The code before the first `#[cfg(test)]`, without line comments.
fn without_tests_and_comments(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` and `super::a::b` path: (base, [a, b]); a group
/// (`crate::{a::X, b}`) gives one path per item.
fn references(code: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut found = Vec::new();
    for base in ["crate", "super"] {
        let marker = format!("{base}::");
        for (at, _) in code.match_indices(&marker) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in paths_at(&code[at + marker.len()..]) {
                found.push((if base == "crate" { "crate" } else { "super" }, path));
            }
        }
    }
    found
}

/// The module-like paths at the start of `rest`: `a::b::X` gives [a, b],
/// `{a::X, b}` gives [a] and [b], `*` or `X` gives [].
fn paths_at(rest: &str) -> Vec<Vec<String>> {
    let is_path_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':';
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let end = group
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth < 0
            })
            .map_or(group.len(), |(i, _)| i);
        let mut items = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in group[..end].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&group[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&group[start..end]);
        return items
            .into_iter()
            .flat_map(|item| paths_at(item.trim_start()))
            .collect();
    }
    let prefix: String = rest.chars().take_while(|&c| is_path_char(c)).collect();
    let path: Vec<String> = prefix
        .split("::")
        .filter(|part| !part.is_empty())
        .map(String::from)
        .collect();
    vec![path]
}

/// The longest prefix of `base::path` that is a module; `super::{…}`
/// with nothing further resolves to the parent.
fn longest_module(
    modules: &BTreeMap<String, PathBuf>,
    base: &str,
    path: &[String],
) -> Option<String> {
    for n in (1..=path.len()).rev() {
        let tail = path[..n].join("::");
        let candidate = if base.is_empty() {
            tail
        } else {
            format!("{base}::{tail}")
        };
        if modules.contains_key(&candidate) {
            return Some(candidate);
        }
    }
    (!base.is_empty() && modules.contains_key(base)).then(|| base.to_string())
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        next: usize,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|x| *x == v).expect("on stack");
            let mut component: Vec<String> = s.stack.drain(at..).map(String::from).collect();
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        next: 0,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}
