//! The layout's rules, checked on the source: which module may use which.
//! A rule broken here is a design question, not a lint to silence.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `(module, modules it must never use)`.
/// Besides: `domain` uses nothing of the crate but itself, and only the
/// binary (`main`) uses `startup`.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("service", &["graphql", "http"]),
    ("sms", &["service", "graphql", "http", "db"]),
    ("codes", &["service", "graphql", "http", "db"]),
    ("db", &["service", "graphql", "http"]),
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The crate's top-level modules a source file refers to as `crate::x`,
/// including inside grouped imports (`use crate::{x, y::z}`).
fn crate_modules_used(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used
}

/// The top-level module a file belongs to (`src/service/accounts.rs` → `service`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        let source = std::fs::read_to_string(&file).unwrap();
        let used = crate_modules_used(&source);
        let name = file.display();
        if module == "domain" {
            for other in used.iter().filter(|m| *m != "domain") {
                found.push(format!("{name}: domain uses crate::{other}"));
            }
        }
        if let Some((_, forbidden)) = FORBIDDEN.iter().find(|(m, _)| *m == module) {
            for other in used.iter().filter(|m| forbidden.contains(&m.as_str())) {
                found.push(format!("{name}: {module} uses crate::{other}"));
            }
        }
        // Only the binary wires the application together.
        if module != "startup" && used.contains("startup") {
            found.push(format!("{name}: only main may use startup"));
        }
    }
    found
}

#[test]
fn modules_use_only_what_the_layout_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports that break the layout (see README, Architecture):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let used = crate_modules_used(
        "use crate::{db, domain::Mobile};\nuse crate::service::accounts;\nfn f() { crate::http::x() }",
    );
    let expected: BTreeSet<String> = ["db", "domain", "service", "http"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(used, expected);
}
