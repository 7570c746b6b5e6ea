//! The contract ledger (`docs/CONTRACT.md`) against the docs it ties together: every
//! promise names a property `docs/INVARIANTS.md` defines and a mutant the generated kill
//! matrix in `docs/VERIFICATION.md` shows killed; every mutant of the matrix and every
//! property belongs to some promise; every promise id a doc cites is in the ledger.
//!
//! It reads Markdown only, so it runs in the library's test suite without building the
//! gate; a new mutant or property fails it until the ledger says what it is for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The cells of a Markdown table row (`| a | b |`), trimmed.
fn cells(line: &str) -> Vec<&str> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

/// Every `` `name` `` in `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The property ids (`P1`, `M3`, ...) in `text`.
fn property_ids(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let mut ids = BTreeSet::new();
    for i in 0..b.len() {
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if starts && (b[i] == b'P' || b[i] == b'M') {
            let digits: String = text[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            let after = text[i + 1 + digits.len()..].chars().next();
            if !digits.is_empty() && !after.is_some_and(|c| c.is_ascii_alphanumeric()) {
                ids.insert(format!("{}{digits}", b[i] as char));
            }
        }
    }
    ids
}

struct Promise {
    id: String,
    judges: BTreeSet<String>,
    mutants: Vec<String>,
}

/// The ledger's rows.
fn ledger() -> Vec<Promise> {
    let text = read("docs/CONTRACT.md");
    let rows: Vec<Promise> = text
        .lines()
        .filter(|l| l.starts_with("| C"))
        .map(|l| {
            let c = cells(l);
            assert_eq!(c.len(), 5, "a ledger row has five cells: {l}");
            Promise {
                id: c[0].to_string(),
                judges: property_ids(c[3]),
                mutants: quoted(c[4]).into_iter().map(String::from).collect(),
            }
        })
        .collect();
    assert!(!rows.is_empty(), "docs/CONTRACT.md has no promise rows");
    rows
}

/// The properties INVARIANTS.md defines (its `### P1 — ...` headings).
fn properties() -> BTreeSet<String> {
    read("docs/INVARIANTS.md")
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| h.split(" — ").next())
        .filter(|id| property_ids(id).len() == 1 && property_ids(id).contains(*id))
        .map(String::from)
        .collect()
}

/// The generated kill matrix: each mutant and whether some checker killed it.
fn kill_matrix() -> BTreeMap<String, bool> {
    let text = read("docs/VERIFICATION.md");
    let begin = text
        .find("<!-- gate:mutants:begin")
        .expect("VERIFICATION.md embeds the kill matrix (gate mutants --update-docs)");
    let end = text[begin..]
        .find("<!-- gate:mutants:end")
        .map(|e| begin + e)
        .expect("the kill matrix's end marker");
    let mut matrix = BTreeMap::new();
    let mut in_table = false;
    for line in text[begin..end].lines() {
        if line.starts_with("| mutant | what it breaks |") {
            in_table = true;
            continue;
        }
        if in_table {
            if !line.starts_with('|') {
                break;
            }
            let c = cells(line);
            if c[0].starts_with("---") {
                continue;
            }
            // A killed cell names what failed (`P4`, `div.`, ...); the others say why not.
            let killed = c[2..].iter().any(|cell| {
                !(cell.starts_with("survived")
                    || *cell == "no counterpart"
                    || *cell == "not run"
                    || cell.is_empty())
            });
            matrix.insert(c[0].to_string(), killed);
        }
    }
    assert!(
        !matrix.is_empty(),
        "no kill matrix table found in VERIFICATION.md"
    );
    matrix
}

#[test]
fn ids_are_numbered_in_order_and_every_row_has_a_judge_and_a_mutant() {
    for (i, p) in ledger().iter().enumerate() {
        assert_eq!(
            p.id,
            format!("C{}", i + 1),
            "ledger ids run C1, C2, ... in order"
        );
        assert!(!p.judges.is_empty(), "{} names no judging property", p.id);
        assert!(
            !p.mutants.is_empty(),
            "{} names no mutant that breaks it",
            p.id
        );
    }
}

#[test]
fn every_judge_is_a_defined_property_and_every_property_judges_a_promise() {
    let defined = properties();
    assert!(
        defined.contains("P1") && defined.contains("M1"),
        "{defined:?}"
    );
    let mut used = BTreeSet::new();
    for p in ledger() {
        for j in &p.judges {
            assert!(
                defined.contains(j),
                "{} is judged by {j}, which docs/INVARIANTS.md does not define",
                p.id
            );
            used.insert(j.clone());
        }
    }
    let idle: Vec<_> = defined.difference(&used).collect();
    assert!(
        idle.is_empty(),
        "properties that judge no promise of the ledger: {idle:?}"
    );
}

#[test]
fn every_mutant_of_a_promise_is_killed_and_every_killed_mutant_has_a_promise() {
    let matrix = kill_matrix();
    let mut listed = BTreeSet::new();
    for p in ledger() {
        for m in &p.mutants {
            match matrix.get(m) {
                None => panic!(
                    "{}'s mutant {m} is not in VERIFICATION.md's kill matrix",
                    p.id
                ),
                Some(false) => panic!("{}'s mutant {m} was killed by no checker", p.id),
                Some(true) => {}
            }
            listed.insert(m.clone());
        }
    }
    let orphans: Vec<_> = matrix.keys().filter(|m| !listed.contains(*m)).collect();
    assert!(
        orphans.is_empty(),
        "mutants of the kill matrix that break no promise of docs/CONTRACT.md: {orphans:?}"
    );
}

#[test]
fn every_cited_promise_id_is_in_the_ledger() {
    let ids: BTreeSet<String> = ledger().into_iter().map(|p| p.id).collect();
    let mut docs: Vec<PathBuf> = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    let dir = root().join("docs");
    for entry in std::fs::read_dir(&dir).expect("docs/") {
        let path = entry.expect("a docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc).expect("a doc");
        for (i, _) in text.match_indices('[') {
            let Some(len) = text[i + 1..].find(']') else {
                continue;
            };
            // A citation: `[C3]` or `[C5, C6]`, nothing else in the brackets.
            let items: Vec<&str> = text[i + 1..i + 1 + len].split(',').map(str::trim).collect();
            let is_id = |item: &&str| {
                item.strip_prefix('C')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            };
            if !items.iter().all(is_id) {
                continue;
            }
            for id in items {
                assert!(
                    ids.contains(id),
                    "{} cites [{id}], which docs/CONTRACT.md does not have",
                    rel(&doc)
                );
            }
        }
    }
}

/// Rust sources under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_promise_id_the_rustdoc_cites_is_in_the_ledger() {
    // Rustdoc cites rows as `(ledger C1, C2 ...)`: `[C1]` would read as an intra-doc link.
    let ids: BTreeSet<String> = ledger().into_iter().map(|p| p.id).collect();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut cited = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a source file");
        // Doc comments wrap: read the comment text as one line.
        let prose: String = text
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                l.strip_prefix("///").or_else(|| l.strip_prefix("//!"))
            })
            .collect::<Vec<_>>()
            .join(" ");
        for (i, _) in prose.match_indices("(ledger ") {
            let list = &prose[i + "(ledger ".len()..];
            let end = list.find(|c: char| !(c.is_ascii_alphanumeric() || c == ',' || c == ' '));
            for item in list[..end.unwrap_or(list.len())].split(',') {
                let id = item.split_whitespace().next().unwrap_or("");
                if id.is_empty() {
                    continue;
                }
                assert!(
                    ids.contains(id),
                    "{} cites ledger {id}, which docs/CONTRACT.md does not have",
                    rel(&file)
                );
                cited += 1;
            }
        }
    }
    assert!(cited > 0, "the rustdoc cites no ledger row");
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}
