//! `.env.example` is the configuration's own list of variables
//! (`config::VARIABLES`): every name, in order, with its default and its line
//! of documentation; copied to `.env` unchanged it changes nothing; and the
//! README documents every variable.

use smsauth::config::{Config, Env, VARIABLES};

const HEADER: &str = "\
# smsauth configuration: every variable, set to its default.
#
# Copy this file to .env in the folder smsauth runs in (or to the file the
# systemd unit reads, /etc/smsauth/env) and change what you need. Variables
# already set in the environment win over the file. An empty value means the
# default, or nothing where there is none. The README's \"Configuration\"
# section explains each variable.
";

/// The file as the list of variables writes it.
fn expected() -> String {
    let mut text = HEADER.to_owned();
    for variable in VARIABLES {
        text.push_str(&format!(
            "\n# {}\n{}={}\n",
            variable.doc, variable.name, variable.default
        ));
    }
    text
}

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `NAME=value` lines, in order, each with the comment line just above it.
fn entries(text: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && line.contains('='))
        .map(|(i, line)| {
            let (name, value) = line.split_once('=').unwrap();
            let doc = i
                .checked_sub(1)
                .and_then(|above| lines[above].strip_prefix("# "))
                .unwrap_or_default();
            (name.to_owned(), value.to_owned(), doc.to_owned())
        })
        .collect()
}

#[test]
fn env_example_lists_every_variable_with_its_default() {
    let file = repo_file(".env.example");
    let wanted = expected();
    let found = entries(&file);
    let listed = entries(&wanted);
    let mismatches: Vec<String> = listed
        .iter()
        .zip(found.iter().map(Some).chain(std::iter::repeat(None)))
        .filter(|(want, got)| Some(*want) != *got)
        .map(|(want, got)| format!("want {want:?}, found {got:?}"))
        .collect();
    if file != wanted {
        let fixed = std::env::temp_dir().join("smsauth.env.example");
        std::fs::write(&fixed, &wanted).unwrap();
        panic!(
            ".env.example is not the configuration's list of variables \
             ({} entries, {} in the file; first differences: {:#?}).\n\
             The file config::VARIABLES writes is at {}: cp it to .env.example",
            listed.len(),
            found.len(),
            &mismatches[..mismatches.len().min(5)],
            fixed.display()
        );
    }
}

#[test]
fn env_example_copied_to_dotenv_changes_nothing() {
    let file = repo_file(".env.example");
    let pairs: Vec<(String, String)> = dotenvy::from_read_iter(file.as_bytes())
        .map(|pair| pair.expect("dotenv reads every line"))
        .collect();
    assert_eq!(pairs.len(), VARIABLES.len(), "one line per variable");
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let from_file = Config::from_source(&Env::from_pairs(&borrowed)).unwrap();
    let unset = Config::from_source(&Env::from_pairs(&[])).unwrap();
    assert_eq!(format!("{from_file:?}"), format!("{unset:?}"));
}

#[test]
fn the_readme_documents_every_variable() {
    let readme = repo_file("README.md");
    let missing: Vec<&str> = VARIABLES
        .iter()
        .map(|variable| variable.name)
        .filter(|name| !readme.contains(&format!("`{name}")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}
