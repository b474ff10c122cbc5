//! The crate's layers import one way, as `src/lib.rs` says.
//!
//! This reads every source file under `src/`, finds the paths it names
//! (`crate::…` and `super::…`, in `use` items and in code, brace groups
//! included), resolves each to the module file that defines it (following
//! the `use` re-exports of `lib.rs` and of each `mod.rs`), and checks:
//!
//! - no two sibling modules import each other, directly or around a loop,
//!   at any level: not the layers under the crate root, not the files inside
//!   a layer (a parent and its own children are one unit and not compared);
//! - the layers' allowed imports, the table below, hold.
//!
//! Test-only code (`#[cfg(test)]` modules and files) is left out: a test may
//! reach across layers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module, as the path from the crate root (`["sdk", "exporter"]`).
type ModPath = Vec<String>;

/// What each top-level layer may import (besides `pb`, the generated
/// protobuf code, which any layer may use).
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("sink", &[]),
    ("otlp", &[]),
    ("tcp", &[]),
    ("tls", &["config", "tcp"]),
    ("deliver", &["config", "sink", "otlp", "tls"]),
    ("spool", &[]),
    ("grpc", &["config", "sink", "otlp", "tcp", "tls", "deliver"]),
    ("http", &["config", "sink", "otlp", "tcp", "tls", "deliver"]),
    ("drains", &["config", "sink", "otlp", "tls", "deliver", "spool", "grpc", "http"]),
    ("sdk", &["config", "sink", "otlp", "tls", "deliver", "spool", "grpc", "http", "drains"]),
    ("receiver", &["config", "sink", "otlp", "tls", "deliver", "grpc", "http"]),
];

/// One source file's module and the text that is not test-only.
struct Source {
    module: ModPath,
    text: String,
}

fn main_text(raw: &str) -> String {
    // Line comments (doc comments included) name paths in prose only.
    let mut text = String::with_capacity(raw.len());
    for line in raw.lines() {
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        text.push_str(code);
        text.push('\n');
    }
    // The inline test module closes a file, by convention.
    if let Some(i) = text.find("#[cfg(test)]\nmod tests") {
        text.truncate(i);
    }
    text
}

/// The modules a file declares behind a `cfg` that mentions `test`.
fn test_only_children(raw: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = raw.lines().map(str::trim).collect();
    let mut children = BTreeSet::new();
    for pair in lines.windows(2) {
        let declared = pair[1].strip_prefix("pub(crate) ").unwrap_or(pair[1]);
        if let Some(name) = declared.strip_prefix("mod ").and_then(|rest| rest.strip_suffix(';')) {
            if pair[0].starts_with("#[cfg(") && pair[0].contains("test") {
                children.insert(name.to_string());
            }
        }
    }
    children
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<(ModPath, PathBuf)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let mut module: ModPath = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            let file = module.pop().unwrap();
            match file.as_str() {
                "mod.rs" | "lib.rs" => {}
                other => module.push(other.trim_end_matches(".rs").to_string()),
            }
            out.push((module, path));
        }
    }
}

/// Every source file that is not test-only, with its module path.
fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let raw: BTreeMap<ModPath, String> =
        files.into_iter().map(|(module, path)| (module, fs::read_to_string(path).unwrap())).collect();
    let mut test_only: BTreeSet<ModPath> = BTreeSet::new();
    for (module, text) in &raw {
        for child in test_only_children(text) {
            let mut path = module.clone();
            path.push(child);
            test_only.insert(path);
        }
    }
    raw.iter()
        .filter(|(module, _)| !test_only.iter().any(|t| module.starts_with(t)))
        .map(|(module, text)| Source { module: module.clone(), text: main_text(text) })
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths of a `use` tree or expression starting at `s` (just after
/// `prefix::`), with brace groups expanded.
fn paths_at(s: &str, prefix: &[String], out: &mut Vec<ModPath>) -> usize {
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut path = prefix.to_vec();
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_whitespace() || bytes[i] == ',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == '}' {
                    return i + 1;
                }
                let rest: String = bytes[i..].iter().collect();
                i += paths_at(&rest, &path, out);
                // Skip an `as` rename up to the next separator.
                while i < bytes.len() && bytes[i] != ',' && bytes[i] != '}' {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if i == start {
            out.push(path);
            return i;
        }
        let segment: String = bytes[start..i].iter().collect();
        if segment != "self" {
            path.push(segment);
        }
        if bytes.get(i) == Some(&':') && bytes.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// The absolute paths a file names through `crate::` and `super::`.
fn named_paths(source: &Source) -> Vec<ModPath> {
    let text = &source.text;
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !is_ident(text[..i].chars().next_back().unwrap());
        if boundary && rest.starts_with("crate::") {
            i += "crate::".len() + paths_at(&text[i + "crate::".len()..], &[], &mut out);
        } else if boundary && rest.starts_with("super::") {
            let mut base = source.module.clone();
            let mut j = i;
            while text[j..].starts_with("super::") {
                base.pop();
                j += "super::".len();
            }
            i = j + paths_at(&text[j..], &base, &mut out);
        } else {
            i += rest.chars().next().unwrap().len_utf8();
        }
    }
    out
}

/// For each module, the names it brings in from its own children with `use
/// child::…` (the re-exports of a `mod.rs`), so that `super::Name` resolves
/// to the child that defines `Name`.
fn child_uses(sources: &[Source], modules: &BTreeSet<ModPath>) -> BTreeMap<(ModPath, String), ModPath> {
    let mut map = BTreeMap::new();
    for source in sources {
        for line in source.text.split(';') {
            let line = line.trim();
            let Some(tree) = line
                .split_once("use ")
                .map(|(before, tree)| (before.trim(), tree))
                .and_then(|(before, tree)| matches!(before, "" | "pub" | "pub(crate)" | "pub(super)").then_some(tree))
            else {
                continue;
            };
            let mut paths = Vec::new();
            paths_at(tree, &[], &mut paths);
            for path in paths {
                let mut child = source.module.clone();
                child.push(path[0].clone());
                if path.len() >= 2 && modules.contains(&child) {
                    let name = path.last().unwrap().clone();
                    let target = resolve(&child, &path[1..], modules);
                    map.insert((source.module.clone(), name), target);
                }
            }
        }
    }
    map
}

/// The deepest module file `path` (from `base`) reaches.
fn resolve(base: &[String], path: &[String], modules: &BTreeSet<ModPath>) -> ModPath {
    let mut module = base.to_vec();
    for segment in path {
        let mut next = module.clone();
        next.push(segment.clone());
        if modules.contains(&next) {
            module = next;
        } else {
            break;
        }
    }
    module
}

/// The module edges `a -> b` of the whole crate, each with a file that makes it.
fn edges() -> BTreeSet<(ModPath, ModPath)> {
    let sources = sources();
    let modules: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let reexports = child_uses(&sources, &modules);
    let mut edges = BTreeSet::new();
    for source in &sources {
        for path in named_paths(source) {
            let mut target = resolve(&[], &path, &modules);
            // Follow re-exports: `crate::Name` through lib.rs, `sdk::Name` through sdk/mod.rs.
            let mut rest = &path[target.len()..];
            while let Some(name) = rest.first() {
                match reexports.get(&(target.clone(), name.clone())) {
                    Some(child) if child != &target => {
                        target = child.clone();
                        rest = &rest[1..];
                    }
                    _ => break,
                }
            }
            if target.first().is_some_and(|m| m == "pb") || target.is_empty() {
                continue;
            }
            edges.insert((source.module.clone(), target));
        }
    }
    edges
}

/// `a -> b` seen between the siblings under their lowest common ancestor;
/// `None` when one contains the other.
fn sibling_edge(a: &[String], b: &[String]) -> Option<(ModPath, ModPath)> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if common == a.len() || common == b.len() {
        return None;
    }
    Some((a[..=common].to_vec(), b[..=common].to_vec()))
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    let graph: BTreeMap<ModPath, BTreeSet<ModPath>> =
        edges().iter().filter_map(|(a, b)| sibling_edge(a, b)).fold(BTreeMap::new(), |mut graph, (a, b)| {
            graph.entry(a).or_default().insert(b);
            graph
        });
    assert!(graph.len() > 10, "the scan found too few modules to be working: {graph:?}");
    // Depth-first search for a back edge; report the loop it closes.
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
        loops: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let cycle: Vec<String> = stack[at..].iter().chain([node]).map(|m| name(m)).collect();
            loops.push(cycle.join(" -> "));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, loops);
        }
        stack.pop();
    }
    let mut loops = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut loops);
    }
    assert!(loops.is_empty(), "import cycles in src/:\n{}", loops.join("\n"));
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for (a, b) in edges() {
        let (Some(from), Some(to)) = (a.first(), b.first()) else { continue };
        if from == to {
            continue;
        }
        seen.insert((from.clone(), to.clone()));
        match allowed.get(from.as_str()) {
            Some(layers) if layers.contains(&to.as_str()) => {}
            Some(_) => wrong.push(format!("{} imports {}", name(&a), name(&b))),
            None => wrong.push(format!("{} is a layer the table in tests/layers.rs does not list", from)),
        }
    }
    assert!(wrong.is_empty(), "imports against the layering:\n{}", wrong.join("\n"));
    // The scan sees real imports: the SDK adapters use the sink and the engine.
    for expected in [("sdk", "sink"), ("deliver", "otlp"), ("grpc", "deliver")] {
        assert!(seen.contains(&(expected.0.into(), expected.1.into())), "no {expected:?} edge found: {seen:?}");
    }
}

#[test]
fn the_scan_resolves_paths_groups_and_reexports() {
    // A planted file exercises the parser the two tests above rely on.
    let source = Source {
        module: vec!["sdk".into(), "exporter".into()],
        text: main_text(
            "use super::{metrics::OtlpMetricReader, shared::{ExporterState, SIGNALS}};\n\
             use crate::sink::{self, SinkDrain as _};\n\
             fn f() { crate::deliver::Service::x(); } // crate::grpc in a comment\n\
             #[cfg(test)]\nmod tests { use crate::receiver::Receiver; }\n",
        ),
    };
    let paths: BTreeSet<String> = named_paths(&source).iter().map(|p| name(p)).collect();
    let expected: BTreeSet<String> = [
        "sdk::metrics::OtlpMetricReader",
        "sdk::shared::ExporterState",
        "sdk::shared::SIGNALS",
        "sink",
        "sink::SinkDrain",
        "deliver::Service::x",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paths, expected);
    assert_eq!(
        sibling_edge(&["sdk".into(), "exporter".into()], &["sdk".into(), "metrics".into(), "x".into()]),
        Some((vec!["sdk".into(), "exporter".into()], vec!["sdk".into(), "metrics".into()]))
    );
    assert_eq!(sibling_edge(&["sdk".into(), "exporter".into()], &["sdk".into()]), None, "a parent is not a sibling");
}
