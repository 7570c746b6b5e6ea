//! Keeps the gate's reports embedded in docs/VERIFICATION.md honest.
//!
//! Each generated section sits between `<!-- gate:NAME:begin ... -->` and
//! `<!-- gate:NAME:end -->` and its begin marker records a fingerprint of the checked
//! sources (the library, the harness and its tests). `gate check-docs` recomputes the
//! fingerprint and fails when a section was generated from other sources than the ones
//! committed: the report no longer describes the code.

use std::path::Path;

/// The sources whose change makes an embedded report stale.
const CHECKED: &[&str] = &[
    "src",
    "model/src",
    "model/tests",
    "Cargo.toml",
    "model/Cargo.toml",
];

fn files(root: &Path, rel: &str, out: &mut Vec<String>) {
    let path = root.join(rel);
    if path.is_file() {
        out.push(rel.to_string());
    } else if let Ok(entries) = std::fs::read_dir(&path) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            files(root, &format!("{rel}/{name}"), out);
        }
    }
}

/// FNV-1a over the checked files' paths and contents, in path order: stable across
/// toolchains and machines (unlike std's hasher).
pub fn fingerprint(root: &Path) -> String {
    let mut list = Vec::new();
    for rel in CHECKED {
        files(root, rel, &mut list);
    }
    list.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for rel in &list {
        eat(rel.as_bytes());
        eat(&std::fs::read(root.join(rel)).unwrap_or_default());
    }
    format!("{h:016x}")
}

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- gate:{name}:begin"),
        format!("<!-- gate:{name}:end -->"),
    )
}

/// Replaces section `name` of `doc` with `body`, stamped with `fingerprint`.
pub fn embed(doc: &str, name: &str, fingerprint: &str, body: &str) -> Result<String, String> {
    let (begin, end) = markers(name);
    let b = doc
        .find(&begin)
        .ok_or_else(|| format!("docs/VERIFICATION.md has no `{begin} -->` marker"))?;
    let e = doc
        .find(&end)
        .ok_or_else(|| format!("docs/VERIFICATION.md has no `{end}` marker"))?;
    // Demote the report's headings so they nest under the document's own.
    let body: String = body
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("##{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    Ok(format!(
        "{}{begin} sources={fingerprint} -->\n{}{}",
        &doc[..b],
        body,
        &doc[e..]
    ))
}

/// The fingerprint recorded in section `name`, if the section exists.
pub fn recorded(doc: &str, name: &str) -> Option<String> {
    let (begin, _) = markers(name);
    let rest = &doc[doc.find(&begin)? + begin.len()..];
    let line = rest.lines().next()?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("sources="))
        .map(str::to_string)
}
