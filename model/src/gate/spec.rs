//! `gate spec`: only the specification's checks (`--full` for the full size);
//! `gate spec --explore`: stateright's Explorer on localhost; `gate spec --screenshot`:
//! the Explorer driven by headless Chromium, checked to show the initial state and the
//! property list, with a screenshot in the report directory.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use usbpm_spec::run::{property_names, serve, QUICK};

use super::checks::{self, RunKind};
use super::Options;
use crate::base::checker::Checker;

/// Where `gate spec --explore` serves unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The screenshot's file name in the report directory.
pub const SCREENSHOT: &str = "spec-explorer.png";

/// The Chromium the check drives: Debian's `chromium` package, unless `USBPM_CHROMIUM`
/// names another build (CI's runners have Google Chrome).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser to drive: `USBPM_CHROMIUM`, or [`CHROMIUM`].
pub fn chromium_path() -> PathBuf {
    std::env::var_os("USBPM_CHROMIUM")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from)
}

/// `gate spec [--full]`: the gate restricted to the `spec` checker.
pub fn run(opts: &Options, root: &Path, full: bool) -> ExitCode {
    let opts = Options {
        checkers: vec![Checker::Spec],
        ..opts.clone()
    };
    let kind = if full { RunKind::Full } else { RunKind::Quick };
    checks::run(kind, &opts, root, false)
}

/// `gate spec --explore`: serves the Explorer on `addr` until interrupted.
pub fn explore(addr: &str) -> ExitCode {
    println!(
        "gate spec: stateright's Explorer for the specification at {}",
        QUICK.label()
    );
    println!("gate spec: open http://{addr}/ (Ctrl-C to stop)");
    serve(QUICK, addr);
    ExitCode::SUCCESS
}

/// A port nobody listens on now (the OS's choice).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A plain HTTP/1.0 GET: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    parse_response(&text)
}

/// The status code and body of an HTTP response.
pub fn parse_response(text: &str) -> Result<(u16, String), String> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {:.80}", text))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status code in {:.80}", head))?;
    Ok((code, body.to_string()))
}

/// Waits until something accepts connections on `addr` (the Explorer binds in its own
/// thread and says nothing when it is ready), for at most `limit`.
fn wait_until_listening(addr: SocketAddr, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > limit => {
                return Err(format!("the Explorer did not listen on {addr}: {e}"))
            }
            // Refused at once: the server thread has not bound yet. The loop waits on the
            // condition itself (a connection accepted); the pause only spares the CPU.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The Explorer's path to the one initial state (its action index), from its `/.states`
/// answer, which must show the state with its clients unborn.
pub fn initial_step(states_json: &str) -> Result<u64, String> {
    let v: serde_json::Value =
        serde_json::from_str(states_json).map_err(|e| format!("/.states is not JSON: {e}"))?;
    let init = v.as_array().filter(|a| a.len() == 1).ok_or_else(|| {
        format!(
            "/.states should list one initial state: {:.200}",
            states_json
        )
    })?;
    let state = init[0]["state"].as_str().unwrap_or("");
    if !state.contains("Unborn") {
        return Err(format!(
            "the initial state shows no unborn client: {:.200}",
            state
        ));
    }
    init[0]["actionIndex"]
        .as_u64()
        .ok_or_else(|| "the initial state has no action index".into())
}

/// What the page must show: every property's name, and the initial state (its unborn
/// clients and idle threads, as the state's text prints them). Returns what is missing.
pub fn page_lacks(dom: &str, properties: &[String]) -> Vec<String> {
    let mut lacks: Vec<String> = properties
        .iter()
        .filter(|p| !dom.contains(p.as_str()))
        .map(|p| format!("property `{p}`"))
        .collect();
    for marker in ["Current State", "Unborn", "reentrant_left", "threads: ["] {
        if !dom.contains(marker) {
            lacks.push(format!("the initial state's `{marker}`"));
        }
    }
    lacks
}

/// Runs Chromium headless on `url` with `extra` flags; its standard output, or why not.
/// A fresh profile directory each time; a Chromium that hangs is killed after `limit`.
pub fn chromium(extra: &[String], url: &str, limit: Duration) -> Result<String, String> {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "usbpm-gate-chromium-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).map_err(|e| format!("a Chromium profile dir: {e}"))?;
    let browser = chromium_path();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "{}: {e}; install it with `apt-get install -y chromium`",
                browser.display()
            )
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let result = match rx.recv_timeout(limit) {
        Ok(out) => {
            let status = child.wait().map_err(|e| e.to_string())?;
            if status.success() {
                Ok(out)
            } else {
                Err(format!("chromium exited with {status}"))
            }
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("chromium did not finish in {} s", limit.as_secs()))
        }
    };
    let _ = std::fs::remove_dir_all(&profile);
    result
}

/// `gate spec --screenshot`: serves the Explorer on a free port, confirms its API
/// answers, drives the page in headless Chromium, confirms it shows the initial state
/// and the property list, and saves `spec-explorer.png` in the report directory.
pub fn screenshot(opts: &Options, root: &Path) -> ExitCode {
    match screenshot_check(&root.join(&opts.report_dir)) {
        Ok(png) => {
            println!("gate spec --screenshot: PASS: the Explorer shows the initial state and every property; screenshot {}", png.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gate spec --screenshot: FAIL: {e}");
            ExitCode::from(1)
        }
    }
}

fn screenshot_check(report_dir: &Path) -> Result<PathBuf, String> {
    let browser = chromium_path();
    if !browser.exists() {
        return Err(format!(
            "{} is missing; install Debian's chromium (`apt-get install -y chromium`; .ci/run does) or name a Chromium in USBPM_CHROMIUM",
            browser.display()
        ));
    }
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    std::thread::spawn(move || serve(QUICK, addr));
    wait_until_listening(addr, Duration::from_secs(30))?;
    let properties = property_names(QUICK);
    let (code, status) = http_get(addr, "/.status")?;
    if code != 200 {
        return Err(format!("GET /.status answered {code}"));
    }
    let missing: Vec<&String> = properties
        .iter()
        .filter(|p| !status.contains(p.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!("GET /.status lacks the properties {missing:?}"));
    }
    let (code, states) = http_get(addr, "/.states")?;
    if code != 200 {
        return Err(format!("GET /.states answered {code}"));
    }
    let init = initial_step(&states)?;
    println!("gate spec --screenshot: the Explorer's API answers on {addr} (/.status, /.states)");
    let url = format!("http://{addr}/#/steps/{init}");
    let budget = "--virtual-time-budget=5000".to_string();
    let dom = chromium(
        &["--dump-dom".into(), budget.clone()],
        &url,
        Duration::from_secs(120),
    )?;
    let lacks = page_lacks(&dom, &properties);
    if !lacks.is_empty() {
        return Err(format!(
            "the page at {url} does not show: {}",
            lacks.join(", ")
        ));
    }
    std::fs::create_dir_all(report_dir).map_err(|e| e.to_string())?;
    let png = report_dir
        .canonicalize()
        .map_err(|e| e.to_string())?
        .join(SCREENSHOT);
    let _ = std::fs::remove_file(&png);
    chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,900".into(),
            "--hide-scrollbars".into(),
            budget,
        ],
        &url,
        Duration::from_secs(120),
    )?;
    let bytes =
        std::fs::read(&png).map_err(|e| format!("no screenshot at {}: {e}", png.display()))?;
    if !bytes.starts_with(b"\x89PNG") || bytes.len() < 10_000 {
        return Err(format!(
            "{} is not a screenshot of a page ({} bytes)",
            png.display(),
            bytes.len()
        ));
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_split_into_status_and_body() {
        assert_eq!(
            parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"),
            Ok((200, "[]".into()))
        );
        assert_eq!(
            parse_response("HTTP/1.1 404 Not Found\r\n\r\n"),
            Ok((404, String::new()))
        );
        assert!(parse_response("garbage").is_err());
    }

    #[test]
    fn the_initial_state_must_be_one_with_unborn_clients() {
        let ok = r#"[{"state":"State { clients: [Client { status: Unborn }] }","fingerprint":"42","actionIndex":0}]"#;
        assert_eq!(initial_step(ok), Ok(0));
        assert!(initial_step("[]").is_err());
        assert!(initial_step(r#"[{"state":"State { }","actionIndex":0}]"#).is_err());
        assert!(initial_step("not json").is_err());
    }

    #[test]
    fn a_page_without_the_properties_or_the_state_is_refused() {
        let props = vec!["P1 no callback".to_string(), "P3 no deadlock".to_string()];
        let good = "<h2>Current State</h2> Always P1 no callback Always P3 no deadlock State { clients: [Unborn], threads: [[]], reentrant_left: 2 }";
        assert!(page_lacks(good, &props).is_empty());
        let lacks = page_lacks("<h2>Current State</h2> Always P1 no callback", &props);
        assert!(
            lacks.iter().any(|l| l.contains("P3 no deadlock")),
            "{lacks:?}"
        );
        assert!(lacks.iter().any(|l| l.contains("Unborn")), "{lacks:?}");
    }
}
