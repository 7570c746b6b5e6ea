//! Keeps the gate's reports embedded in docs/VERIFICATION.md honest.
//!
//! Each generated section sits between `<!-- gate:NAME:begin ... -->` and
//! `<!-- gate:NAME:end -->` and its begin marker records a fingerprint of the sources
//! that can change a verdict or a figure: the library, the harness and its tests, the
//! specification, and the build (manifests, lock file, nextest's profile), each part
//! fingerprinted on its own. `gate check-docs` recomputes them and fails when a section was
//! generated from other sources than the ones committed, naming the parts that changed.
//!
//! What cannot change a result does not count: comments (doc comments included),
//! formatting (whitespace, line breaks, rustfmt's trailing commas) and the progress bar's
//! module. A comment-only or `cargo fmt` change leaves the reports current.

use std::path::Path;

/// The sources whose change can change a verdict or a figure of an embedded report, by
/// part (the part names appear in the docs' markers and in `gate check-docs`' message).
/// The progress bar's module is left out: it draws, it decides nothing.
const PARTS: &[(&str, &[&str])] = &[
    ("library", &["src"]),
    ("harness", &["model/src", "model/tests"]),
    ("specification", &["model/spec/src", "model/spec/tests"]),
    (
        "build",
        &[
            "Cargo.toml",
            "Cargo.lock",
            "model/Cargo.toml",
            "model/spec/Cargo.toml",
            ".config/nextest.toml",
        ],
    ),
];

/// Files that cannot change a verdict or a figure although they sit in a checked folder.
const IGNORED: &[&str] = &["model/src/gate/display.rs"];

fn files(root: &Path, rel: &str, out: &mut Vec<String>) {
    let path = root.join(rel);
    if path.is_file() {
        if !IGNORED.contains(&rel) {
            out.push(rel.to_string());
        }
    } else if let Ok(entries) = std::fs::read_dir(&path) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            files(root, &format!("{rel}/{name}"), out);
        }
    }
}

/// FNV-1a: stable across toolchains and machines (unlike std's hasher).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// What of a file can change a result: Rust without comments and formatting, TOML
/// without comments and blank lines, anything else as it is.
fn significant(rel: &str, bytes: Vec<u8>) -> Vec<u8> {
    if rel.ends_with(".rs") {
        rust_tokens(&String::from_utf8_lossy(&bytes)).into_bytes()
    } else if rel.ends_with(".toml") || rel.ends_with(".lock") {
        toml_lines(&String::from_utf8_lossy(&bytes)).into_bytes()
    } else {
        bytes
    }
}

/// One part's fingerprint: its files' paths and significant contents, in path order.
fn part_fingerprint(root: &Path, globs: &[&str]) -> String {
    let mut list = Vec::new();
    for rel in globs {
        files(root, rel, &mut list);
    }
    list.sort();
    let mut h = Fnv::new();
    for rel in &list {
        h.eat(rel.as_bytes());
        h.eat(&significant(
            rel,
            std::fs::read(root.join(rel)).unwrap_or_default(),
        ));
    }
    h.hex()
}

/// Each part's fingerprint, in [`PARTS`] order.
pub fn parts(root: &Path) -> Vec<(&'static str, String)> {
    PARTS
        .iter()
        .map(|(name, globs)| (*name, part_fingerprint(root, globs)))
        .collect()
}

/// The fingerprint of every checked source: what a docs marker's `sources=` records.
pub fn fingerprint(root: &Path) -> String {
    combine(&parts(root))
}

fn combine(parts: &[(&str, String)]) -> String {
    let mut h = Fnv::new();
    for (name, f) in parts {
        h.eat(name.as_bytes());
        h.eat(f.as_bytes());
    }
    h.hex()
}

/// What a docs marker records: the combined fingerprint, then each part's
/// (`sources=C library=L harness=H specification=S build=B`).
pub fn stamp(root: &Path) -> String {
    let parts = parts(root);
    let mut s = combine(&parts);
    for (name, f) in &parts {
        s.push_str(&format!(" {name}={f}"));
    }
    s
}

/// The parts whose fingerprint differs from the one recorded in section `name` of `doc`
/// (every part when the section records none, as older markers did not).
pub fn changed_parts(doc: &str, name: &str, root: &Path) -> Vec<&'static str> {
    let line = marker_line(doc, name).unwrap_or_default();
    parts(root)
        .into_iter()
        .filter(|(part, f)| {
            !line
                .split_whitespace()
                .any(|w| w.strip_prefix(part).and_then(|r| r.strip_prefix('=')) == Some(f))
        })
        .map(|(part, _)| part)
        .collect()
}

/// The tokens of Rust source `text` with comments and formatting removed: comments
/// (doc comments included) are dropped, whitespace survives only as one space between
/// two word characters, and a comma before a closing bracket (rustfmt's trailing comma)
/// is dropped. String, char and raw-string literals are kept byte for byte.
pub fn rust_tokens(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    // A space is owed between two word characters separated by whitespace or a comment.
    let mut gap = false;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let push = |out: &mut Vec<u8>, bytes: &[u8], gap: &mut bool| {
        if *gap && out.last().is_some_and(|&l| word(l)) && word(bytes[0]) {
            out.push(b' ');
        }
        *gap = false;
        out.extend_from_slice(bytes);
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            gap = true;
            i += 1;
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            gap = true;
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            gap = true;
        } else if let Some(end) = raw_string_end(b, i) {
            push(&mut out, &b[i..end], &mut gap);
            i = end;
        } else if c == b'"'
            || (c == b'b' || c == b'c')
                && b.get(i + 1) == Some(&b'"')
                && !out.last().is_some_and(|&l| word(l) && !gap)
        {
            let start = i;
            i += if c == b'"' { 1 } else { 2 };
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            push(&mut out, &b[start..i], &mut gap);
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\''), or a lifetime / label ('a).
            let start = i;
            if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
            } else {
                let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + ch_len) == Some(&b'\'') {
                    i += 2 + ch_len;
                } else {
                    i += 1;
                }
            }
            push(&mut out, &b[start..i], &mut gap);
        } else if c == b','
            && next_significant(b, i + 1).is_some_and(|n| matches!(n, b')' | b']' | b'}'))
        {
            i += 1;
        } else {
            let start = i;
            i += 1;
            if word(c) {
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
            }
            push(&mut out, &b[start..i], &mut gap);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// If a raw (byte or C) string literal starts at `i` (`r"`, `r#"`, `br#"`, `cr"`), the
/// index just past it.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let prefix_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    if !prefix_ok {
        return None;
    }
    let mut j = i;
    if matches!(b[j], b'b' | b'c') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    while j < b.len() {
        if b[j..].starts_with(&close) {
            return Some(j + close.len());
        }
        j += 1;
    }
    Some(b.len())
}

/// The next byte after `i` that is not whitespace or inside a comment.
fn next_significant(b: &[u8], mut i: usize) -> Option<u8> {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            // Nested comments are rare before a closing bracket; a flat scan is enough.
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else {
            return b.get(i).copied();
        }
    }
}

/// TOML `text` without comments, blank lines and indentation.
pub fn toml_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = None;
        let mut end = line.len();
        for (i, c) in line.char_indices() {
            match (in_str, c) {
                (None, '"' | '\'') => in_str = Some(c),
                (Some(q), _) if c == q => in_str = None,
                (None, '#') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let kept = line[..end].trim();
        if !kept.is_empty() {
            out.push_str(kept);
            out.push('\n');
        }
    }
    out
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

/// The rest of section `name`'s begin marker line, if the section exists.
fn marker_line<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let (begin, _) = markers(name);
    let rest = &doc[doc.find(&begin)? + begin.len()..];
    rest.lines().next()
}

/// The fingerprint recorded in section `name`, if the section exists.
pub fn recorded(doc: &str, name: &str) -> Option<String> {
    marker_line(doc, name)?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sources="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_formatting_do_not_count() {
        let a = r##"
/// doc
fn f<'a>(x: &'a str) -> char { // note
    let s = "a // not a comment"; let r = r#"raw "// x"#;
    let c = '\''; let d = 'x'; /* block /* nested */ */
    g(a, b,
    );
    let v = vec![1, 2, 3,];
    b"bytes"
}
"##;
        let b = r##"fn f<'a>(x:&'a str)->char{let s="a // not a comment";let r=r#"raw "// x"#;
 let c='\'';let d='x';g(a,b);let v=vec![1,2,3]; b"bytes" }"##;
        assert_eq!(rust_tokens(a), rust_tokens(b));
    }

    #[test]
    fn code_strings_and_words_count() {
        for (x, y) in [
            ("let x = 1;", "let x = 2;"),
            ("let s = \"a  b\";", "let s = \"a b\";"),
            ("let s = \"// c\";", "let s = \"\";"),
            ("fn a() {}", "fna() {}"),
            ("f(a, b)", "f(a; b)"),
        ] {
            assert_ne!(rust_tokens(x), rust_tokens(y), "{x} vs {y}");
        }
    }

    #[test]
    fn toml_comments_do_not_count() {
        let a = "# head\n[a]\nx = 1 # why\n\n  y = \"#not\"\n";
        assert_eq!(toml_lines(a), "[a]\nx = 1\ny = \"#not\"\n");
        assert_ne!(toml_lines("x = 1"), toml_lines("x = 2"));
    }

    #[test]
    fn a_marker_names_the_parts_that_changed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let stamp = stamp(root);
        let doc = embed(
            "<!-- gate:report:begin -->\n<!-- gate:report:end -->\n",
            "report",
            &stamp,
            "body\n",
        )
        .expect("markers");
        assert_eq!(recorded(&doc, "report"), Some(fingerprint(root)));
        assert!(changed_parts(&doc, "report", root).is_empty());
        let library = parts(root)[0].1.clone();
        let edited = doc.replace(&format!("library={library}"), "library=0");
        assert_eq!(changed_parts(&edited, "report", root), vec!["library"]);
        assert_eq!(changed_parts("", "report", root).len(), PARTS.len());
    }
}
