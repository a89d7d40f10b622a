//! The layering rules of ARCHITECTURE.md ("Layers point one way"), checked on the source
//! text so that a stray `use` cannot bring a cycle back: the `elastic` client knows nothing
//! of `backend`, and the console reaches the engine through the engine's API, never through
//! `cli`. Test-only; it reads `src/` and changes nothing.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `file:line: text` for every code line (comments aside) of the files of `module` (the
/// directory `src/<module>/` and the file `src/<module>.rs`) that names a forbidden path.
fn uses_of(module: &str, forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = rust_files(&src.join(module));
    let single = src.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    assert!(!files.is_empty(), "no source files for module '{module}'");
    scan(&files, forbidden)
}

fn scan(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let code: Vec<&str> = text
            .lines()
            .map(|line| line.split("//").next().unwrap_or(""))
            .collect();
        for (n, line) in code.iter().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
        // A grouped import (`use crate::{backend::X, model::Y};`, `use super::super::{…}`,
        // often over several lines) names its modules apart from its prefix: expand it to
        // whole paths. Single-line paths were checked above.
        let joined = code.join("\n");
        let mut from = 0;
        while let Some(at) = next_use(&joined, from) {
            let start = at + "use ".len();
            let Some(len) = joined[start..].find(';') else {
                break;
            };
            let tree = &joined[start..start + len];
            if tree.contains('{') {
                let line = joined[..at].matches('\n').count() + 1;
                for path in expand_tree(tree) {
                    if forbidden.iter().any(|f| path.contains(f)) {
                        found.push(format!("{}:{line}: {path}", file.display()));
                    }
                }
            }
            from = start + len;
        }
    }
    found
}

/// Where the next `use ` keyword (not the end of a longer word) starts, from `from` on.
fn next_use(text: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text.get(at..)?.find("use ") {
        let pos = at + i;
        let before = text[..pos].chars().next_back();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
            return Some(pos);
        }
        at = pos + "use ".len();
    }
    None
}

/// The whole paths of one use tree: `a::{b, c}` is `a::b`, `a::c`.
fn expand_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    match tree.find('{') {
        Some(brace) => expand(tree[..brace].trim_end_matches("::"), &tree[brace..]),
        None => vec![tree],
    }
}

/// The whole paths a use group names: `expand("crate", "{a::{b, c}, d}")` is
/// `crate::a::b`, `crate::a::c`, `crate::d`.
fn expand(prefix: &str, group: &str) -> Vec<String> {
    let inner = group
        .strip_prefix('{')
        .and_then(|g| g.strip_suffix('}'))
        .unwrap_or(group);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let join = |item: &str| {
        if prefix.is_empty() {
            item.to_string()
        } else {
            format!("{prefix}::{item}")
        }
    };
    let mut paths = Vec::new();
    for item in items {
        let item: String = item.split_whitespace().collect::<Vec<_>>().join(" ");
        if item.is_empty() {
            continue;
        }
        match item.find('{') {
            Some(brace) => {
                let head = item[..brace].trim_end_matches("::");
                paths.extend(expand(&join(head), &item[brace..]));
            }
            None => paths.push(join(&item)),
        }
    }
    paths
}

#[test]
fn the_elastic_client_does_not_import_the_backend_layer() {
    let found = uses_of(
        "elastic",
        &[
            "crate::backend",
            "super::super::backend",
            "crate::engine",
            "crate::cli",
            "crate::console",
        ],
    );
    assert!(
        found.is_empty(),
        "elastic/ must not depend on backend/, engine/, cli/ or console/ (backend/elasticsearch.rs \
         adapts it):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_console_does_not_call_into_the_cli() {
    let found = uses_of("console", &["crate::cli", "cli::"]);
    assert!(
        found.is_empty(),
        "console/ must not use cli/ (shared pieces live in context, output and engine::build):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_model_depends_on_nothing_above_it() {
    let found = uses_of(
        "model",
        &[
            "crate::backend",
            "crate::elastic",
            "crate::engine",
            "crate::cli",
            "crate::console",
        ],
    );
    assert!(
        found.is_empty(),
        "model/ is the bottom layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_a_forbidden_use() {
    // The scanner itself: a line that names the path is found, a comment is not.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.rs"),
        "// crate::cli in a comment\nuse crate::cli::Context;\n",
    )
    .expect("write");
    let files = rust_files(dir.path());
    let found = scan(&files, &["crate::cli"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(":2: use crate::cli::Context;"),
        "{found:?}"
    );
}

#[test]
fn the_check_sees_a_forbidden_module_inside_a_grouped_import() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("a.rs"),
        "use std::fmt;\nuse crate::{\n    model::Connector,\n    cli::{self, Context},\n};\n\
         use crate::{model::X}; // crate::{cli::Y} in a comment\n",
    )
    .expect("write");
    let found = scan(&rust_files(dir.path()), &["crate::cli"]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].ends_with(":2: crate::cli::self"), "{found:?}");
    assert!(found[1].ends_with(":2: crate::cli::Context"), "{found:?}");
    // Relative groups too, and `pub use`.
    std::fs::write(
        dir.path().join("a.rs"),
        "fn reuse() {}\npub(crate) use super::super::{\n    backend::Store,\n    model::X,\n};\n",
    )
    .expect("write");
    let found = scan(&rust_files(dir.path()), &["super::super::backend"]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with(":2: super::super::backend::Store"),
        "{found:?}"
    );
}

#[test]
fn grouped_imports_expand_to_whole_paths() {
    assert_eq!(
        expand("crate", "{a::{b, c::{d}}, e as f, }"),
        ["crate::a::b", "crate::a::c::d", "crate::e as f"]
    );
    assert_eq!(expand_tree("super::{x, y::z}"), ["super::x", "super::y::z"]);
}
