//! `gate docs-render`: every Mermaid diagram the project shows a reader must parse. It
//! renders, with mermaid-cli driven by the system's Chromium:
//!
//! - every ```` ```mermaid ```` block of `docs/*.md` and `ARCHITECTURE.md`;
//! - the diagrams of a failing run's report.md: the gate's own mutant mechanism runs a
//!   few checks against a seeded bug (by default loom and shuttle on
//!   dispatch-vs-deregister against deregister-no-wait), and the failures section of the
//!   report made from their records is rendered like a document.
//!
//! Everything it writes goes under `target/docs-render/`; nothing rendered is committed.
//! A parse error fails the check and names the block (file and line).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::checks::run_mutants;
use super::Options;
use crate::base::checker::Checker;
use crate::checkers::check::Verdict;
use crate::reports::report::Report;

/// Where the rendering goes, under the workspace root.
pub const OUT_DIR: &str = "target/docs-render";

/// Where `.ci/run` installs mermaid-cli (`npm install --prefix`), under the root.
pub const LOCAL_MMDC: &str = "target/tools/mermaid-cli/node_modules/.bin/mmdc";

/// The browser mermaid-cli drives unless `PUPPETEER_EXECUTABLE_PATH` names another.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The failing run rendered by default: a seeded bug, the checkers and the scenario.
pub const FAILING_RUN: (&str, &[Checker], &str) = (
    "deregister-no-wait",
    &[Checker::Loom, Checker::Shuttle],
    "dispatch-vs-deregister",
);

/// One diagram of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The document, as given (a path relative to the root).
    pub source: String,
    /// The line of its opening fence (1-based).
    pub line: usize,
    pub text: String,
}

/// The ```` ```mermaid ```` blocks of `text`.
pub fn mermaid_blocks(source: &str, text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut open {
            None if line.trim() == "```mermaid" => open = Some((i + 1, String::new())),
            None => {}
            Some((start, body)) => {
                if line.trim() == "```" {
                    blocks.push(Block {
                        source: source.to_string(),
                        line: *start,
                        text: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((start, body)) = open {
        // An unclosed fence: still a diagram a reader would see (and likely broken).
        blocks.push(Block {
            source: source.to_string(),
            line: start,
            text: body,
        });
    }
    blocks
}

/// The documents whose diagrams must render: `docs/*.md` (sorted) and `ARCHITECTURE.md`.
pub fn documents(root: &Path) -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.ends_with(".md").then(|| format!("docs/{name}"))
        })
        .collect();
    docs.sort();
    docs.push("ARCHITECTURE.md".into());
    docs
}

/// The puppeteer configuration that makes mermaid-cli use `chromium` headless, offline,
/// and without a sandbox (CI runs as root).
pub fn puppeteer_config(chromium: &str) -> String {
    let args = [
        "--no-sandbox",
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ];
    serde_json::json!({ "executablePath": chromium, "args": args }).to_string()
}

/// mermaid-cli: `MMDC`, else the copy `.ci/run` installs under target/, else `mmdc` on
/// the PATH.
pub fn find_mmdc(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MMDC") {
        return Some(PathBuf::from(p));
    }
    let local = root.join(LOCAL_MMDC);
    if local.is_file() {
        return Some(local);
    }
    let on_path = Command::new("mmdc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    on_path.then(|| PathBuf::from("mmdc"))
}

/// A Markdown document holding `blocks`, each under a heading that names where it is from.
pub fn bundle(blocks: &[Block]) -> String {
    blocks
        .iter()
        .map(|b| {
            format!(
                "## {}:{}\n\n```mermaid\n{}```\n\n",
                b.source, b.line, b.text
            )
        })
        .collect()
}

/// mermaid-cli's error, shortened to what names the problem.
fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join("\n      ")
}

struct Renderer {
    mmdc: PathBuf,
    config: PathBuf,
    out: PathBuf,
}

impl Renderer {
    /// Renders `input` (a .md or .mmd file) into `output`; `Err(mermaid-cli's message)`.
    fn render(&self, input: &Path, output: &Path) -> Result<(), String> {
        let out = Command::new(&self.mmdc)
            .arg("--puppeteerConfigFile")
            .arg(&self.config)
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(output)
            .arg("--quiet")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.mmdc.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(first_lines(&String::from_utf8_lossy(&out.stderr), 4))
        }
    }

    /// Renders every block with one browser start; when that fails, each block on its own
    /// to name the broken ones. Returns the failures, each "source:line: message".
    fn render_all(&self, name: &str, blocks: &[Block]) -> Vec<String> {
        let input = self.out.join(format!("{name}.md"));
        std::fs::write(&input, bundle(blocks)).expect("write the diagrams to render");
        if self
            .render(&input, &self.out.join(format!("{name}.rendered.md")))
            .is_ok()
        {
            return Vec::new();
        }
        let mut failures = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let one = self.out.join(format!("{name}-{}.mmd", i + 1));
            std::fs::write(&one, &b.text).expect("write a diagram");
            if let Err(e) = self.render(&one, &one.with_extension("svg")) {
                failures.push(format!("{}:{}: {e}", b.source, b.line));
            }
        }
        if failures.is_empty() {
            failures.push(format!(
                "{}: mermaid-cli failed on the bundle but on no block alone",
                input.display()
            ));
        }
        failures
    }
}

/// The report of a failing run's records: the gate's mutant mechanism with `opts`'
/// filters, or [`FAILING_RUN`] where they are empty.
pub fn failing_run(opts: &Options, root: &Path) -> Result<Report, String> {
    let (mutant, checkers, scenario) = FAILING_RUN;
    let run = Options {
        mutants: if opts.mutants.is_empty() {
            vec![mutant.into()]
        } else {
            opts.mutants.clone()
        },
        checkers: if opts.checkers.is_empty() {
            checkers.to_vec()
        } else {
            opts.checkers.clone()
        },
        scenarios: if opts.scenarios.is_empty() {
            vec![scenario.into()]
        } else {
            opts.scenarios.clone()
        },
        shard: None,
        report_dir: Path::new(OUT_DIR).join("failing-run"),
        ..opts.clone()
    };
    run.validate()?;
    super::nextest::require_nextest(root)?;
    let mutants = run_mutants(&run, root);
    let failed: Vec<_> = mutants
        .records
        .into_iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect();
    if failed.is_empty() {
        return Err("the failing run did not fail: no failure to draw".into());
    }
    Ok(Report {
        command: mutants.command,
        profile: mutants.profile,
        shard: None,
        seconds: mutants.seconds,
        records: failed,
        missing: Vec::new(),
        kills: None,
        merged: Vec::new(),
        unreached: Default::default(),
        reach: None,
    })
}

/// Renders every diagram; exits 1 on a parse error, 2 when the tools are missing.
pub fn run(opts: &Options, root: &Path) -> ExitCode {
    let Some(mmdc) = find_mmdc(root) else {
        eprintln!("gate docs-render: mermaid-cli is not installed; `.ci/run` installs it, or: PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix target/tools/mermaid-cli @mermaid-js/mermaid-cli, with Chromium from your distribution (Debian: apt-get install chromium)");
        return ExitCode::from(2);
    };
    let chromium = std::env::var("PUPPETEER_EXECUTABLE_PATH").unwrap_or_else(|_| CHROMIUM.into());
    if !Path::new(&chromium).is_file() {
        eprintln!("gate docs-render: no browser at {chromium}; install Chromium (Debian: apt-get install chromium) or set PUPPETEER_EXECUTABLE_PATH");
        return ExitCode::from(2);
    }
    let out = root.join(OUT_DIR);
    std::fs::create_dir_all(&out).expect("create the render directory");
    let config = out.join("puppeteer.json");
    std::fs::write(&config, puppeteer_config(&chromium))
        .expect("write the puppeteer configuration");
    let renderer = Renderer {
        mmdc,
        config,
        out: out.clone(),
    };

    let mut blocks = Vec::new();
    for doc in documents(root) {
        if let Ok(text) = std::fs::read_to_string(root.join(&doc)) {
            blocks.extend(mermaid_blocks(&doc, &text));
        }
    }
    eprintln!("gate docs-render: {} diagrams in the docs", blocks.len());
    let mut failures = renderer.render_all("docs", &blocks);

    eprintln!("gate docs-render: a failing run, to draw its interleavings");
    match failing_run(opts, root) {
        Err(e) => failures.push(format!("failing run: {e}")),
        Ok(report) => {
            let md = report.markdown();
            let path = out.join("failing-run.md");
            std::fs::write(&path, &md).expect("write the failing run's report");
            let source = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let drawn = mermaid_blocks(&source, &md);
            if drawn.len() < report.records.len() {
                failures.push(format!(
                    "{source}: {} failures but {} diagrams",
                    report.records.len(),
                    drawn.len()
                ));
            }
            eprintln!(
                "gate docs-render: {} diagrams of the failing run's report",
                drawn.len()
            );
            failures.extend(renderer.render_all("failing-run", &drawn));
        }
    }
    if failures.is_empty() {
        println!("gate docs-render: every diagram renders (output in {OUT_DIR}/)");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("gate docs-render: {f}");
        }
        println!("gate docs-render: FAIL ({} problems)", failures.len());
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_with_their_lines() {
        let text = "# T\n\n```mermaid\nsequenceDiagram\n  A->>B: x\n```\n\n```rust\nfn x() {}\n```\n```mermaid\ngraph TD\n```\n";
        let blocks = mermaid_blocks("docs/T.md", text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].line, blocks[0].text.as_str()),
            (3, "sequenceDiagram\n  A->>B: x\n")
        );
        assert_eq!(
            (blocks[1].line, blocks[1].text.as_str()),
            (11, "graph TD\n")
        );
        assert!(mermaid_blocks("x", "```text\nsequenceDiagram\n```\n").is_empty());
        assert_eq!(
            mermaid_blocks("x", "```mermaid\ngraph TD\n").len(),
            1,
            "an unclosed fence is still checked"
        );
    }

    #[test]
    fn the_documents_are_docs_and_the_architecture() {
        let docs = documents(&super::super::workspace_root());
        assert!(docs.contains(&"docs/PROTOCOL.md".to_string()), "{docs:?}");
        assert_eq!(docs.last().map(String::as_str), Some("ARCHITECTURE.md"));
    }

    #[test]
    fn a_bundle_names_each_blocks_origin() {
        let b = Block {
            source: "docs/P.md".into(),
            line: 9,
            text: "graph TD\n".into(),
        };
        let md = bundle(std::slice::from_ref(&b));
        assert_eq!(md, "## docs/P.md:9\n\n```mermaid\ngraph TD\n```\n\n");
        assert_eq!(mermaid_blocks("bundle", &md)[0].text, b.text);
    }

    #[test]
    fn chromium_runs_headless_offline_and_unsandboxed() {
        let v: serde_json::Value =
            serde_json::from_str(&puppeteer_config("/usr/bin/chromium")).unwrap();
        assert_eq!(v["executablePath"], "/usr/bin/chromium");
        let args: Vec<&str> = v["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        for a in [
            "--no-sandbox",
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ] {
            assert!(args.contains(&a), "{a}");
        }
    }
}
