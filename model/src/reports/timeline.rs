//! A failing interleaving drawn for reviewers: the timeline text the monitor prints
//! ([`crate::judge::monitor::Monitor::timeline`]: `"  {step:>3}  {thread:<16} {text}"`, a
//! violation ending in `<- VIOLATION Pn`) parsed back into steps and rendered as a Mermaid
//! `sequenceDiagram`: threads as participants, the library's steps as notes, the model
//! clients' and drivers' actions as each thread's own messages, and the violating step
//! (or, when the checker itself stopped the run, the point where it stopped) marked.

use std::fmt::Write as _;

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub step: usize,
    pub thread: String,
    /// What happened, without the violation marker.
    pub text: String,
    /// A step of the library (reported through its probe) rather than of the client.
    pub library: bool,
    /// The property this step violates ("P2"), when the monitor marked it.
    pub violation: Option<String>,
}

const THREAD_WIDTH: usize = 16;
const MARK: &str = "<- VIOLATION ";

/// Parses one timeline line; `None` for any other line.
pub fn parse_line(line: &str) -> Option<Step> {
    let rest = line.trim_start_matches(' ');
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let step: usize = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix("  ")?;
    let thread_len = rest.find(' ')?;
    let thread = &rest[..thread_len];
    if thread.is_empty() {
        return None;
    }
    // The thread is padded to its column's width, then one space before the text.
    let text = rest.get(thread_len.max(THREAD_WIDTH) + 1..).unwrap_or("");
    let (text, violation) = match text.rfind(MARK) {
        Some(i) => (
            text[..i].trim_end(),
            Some(text[i + MARK.len()..].trim().to_string()),
        ),
        None => (text, None),
    };
    let library = text.trim_start().starts_with("lib:");
    let text = text
        .trim()
        .strip_prefix("lib:")
        .map_or(text.trim(), str::trim_start)
        .to_string();
    Some(Step {
        step,
        thread: thread.to_string(),
        text,
        library,
        violation,
    })
}

/// The steps of the timeline in a failure report: the lines after its "Timeline ..."
/// heading, up to the first blank line.
pub fn from_report(report: &str) -> Vec<Step> {
    let mut lines = report
        .lines()
        .skip_while(|l| !l.starts_with("Timeline of the failing"));
    lines.next();
    lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

/// Text made safe for a Mermaid message or note (its entity codes for the characters the
/// sequence-diagram grammar gives a meaning).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '%' => out.push_str("#37;"),
            '{' => out.push_str("#123;"),
            '}' => out.push_str("#125;"),
            _ => out.push(c),
        }
    }
    out
}

/// The colour of the marked step.
const RED: &str = "rgb(255, 210, 210)";

/// A Mermaid `sequenceDiagram` of `steps`. `stopped`: what the checker reported when it
/// stopped the run itself (a race, a deadlock), drawn after the last step when no step
/// carries a violation mark.
pub fn sequence_diagram(steps: &[Step], stopped: Option<&str>) -> String {
    let mut threads: Vec<&str> = Vec::new();
    for s in steps {
        if !threads.contains(&s.thread.as_str()) {
            threads.push(&s.thread);
        }
    }
    let alias = |thread: &str| {
        format!(
            "T{}",
            threads.iter().position(|t| *t == thread).unwrap_or(0)
        )
    };
    let mut out = String::from("sequenceDiagram\n");
    for (i, t) in threads.iter().enumerate() {
        let _ = writeln!(out, "    participant T{i} as {}", escape(t));
    }
    for s in steps {
        let who = alias(&s.thread);
        let text = format!("{}: {}", s.step, escape(&s.text));
        let line = if s.library {
            format!("Note right of {who}: lib: {text}")
        } else {
            format!("{who}->>{who}: {text}")
        };
        match &s.violation {
            Some(p) => {
                let _ = writeln!(out, "    rect {RED}");
                let _ = writeln!(out, "    {line}");
                let _ = writeln!(out, "    Note over {who}: VIOLATION {}", escape(p));
                let _ = writeln!(out, "    end");
            }
            None => {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if let (Some(why), false) = (stopped, steps.iter().any(|s| s.violation.is_some())) {
        let over = match threads.len() {
            0 => None,
            1 => Some("T0".to_string()),
            n => Some(format!("T0,T{}", n - 1)),
        };
        if let Some(over) = over {
            let _ = writeln!(out, "    rect {RED}");
            let _ = writeln!(
                out,
                "    Note over {over}: the checker stopped the run here: {}",
                escape(why)
            );
            let _ = writeln!(out, "    end");
        }
    }
    out
}

/// The diagram of a failure report (its timeline, and what the checker reported when the
/// monitor marked no step), or `None` when the report has no timeline.
pub fn diagram_of_report(report: &str) -> Option<String> {
    let steps = from_report(report);
    if steps.is_empty() {
        return None;
    }
    let stopped = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("the checker reports: "))
        .map(str::trim);
    Some(sequence_diagram(&steps, stopped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeline as `Monitor::timeline` prints it.
    fn line(step: usize, thread: &str, text: &str) -> String {
        format!("  {:>3}  {:<16} {}", step, thread, text)
    }

    #[test]
    fn lines_parse_back_into_steps() {
        let s = parse_line(&line(7, "main", "deregister(A) called")).expect("a step");
        assert_eq!(
            s,
            Step {
                step: 7,
                thread: "main".into(),
                text: "deregister(A) called".into(),
                library: false,
                violation: None
            }
        );
        let lib = parse_line(&line(
            10,
            "dispatcher-h1",
            "  lib: in-flight count of A 0 -> 1",
        ))
        .expect("a step");
        assert!(lib.library);
        assert_eq!(lib.text, "in-flight count of A 0 -> 1");
        let v = parse_line(&line(
            14,
            "main",
            "deregister(A) returned Ok while its callback was running   <- VIOLATION P2",
        ))
        .expect("a step");
        assert_eq!(v.violation.as_deref(), Some("P2"));
        assert_eq!(
            v.text,
            "deregister(A) returned Ok while its callback was running"
        );
    }

    #[test]
    fn a_thread_name_wider_than_its_column_still_parses() {
        let s = parse_line(&line(123, "a-very-long-thread-name", "  lib: x")).expect("a step");
        assert_eq!(
            (s.step, s.thread.as_str(), s.text.as_str(), s.library),
            (123, "a-very-long-thread-name", "x", true)
        );
    }

    #[test]
    fn other_lines_are_not_steps() {
        for l in [
            "",
            "Timeline of the failing interleaving (step, thread, what happened):",
            "  P2 (step 14): deregister returned",
            "  the checker reports: deadlock",
            "Replay: cargo run",
        ] {
            assert_eq!(parse_line(l), None, "{l}");
        }
    }

    fn report(violation: bool) -> String {
        let mut r = String::from(
            "PROPERTY VIOLATED: P2 deregister returns only after its callbacks ended\n",
        );
        if !violation {
            r.push_str("  the checker reports: Causality violation: Concurrent read and write accesses to `UnsafeCell`.\n");
        }
        r.push_str("\nTimeline of the failing execution, up to where it stopped:\n");
        r.push_str(&format!(
            "{}\n",
            line(1, "main", "register A -> client 0.1")
        ));
        r.push_str(&format!(
            "{}\n",
            line(2, "dispatcher-h1", "  lib: in-flight count of A 0 -> 1")
        ));
        r.push_str(&format!(
            "{}\n",
            line(
                3,
                "dispatcher-h1",
                "callback A begins: hub 1 seq 1 connector change"
            )
        ));
        let last = if violation {
            "deregister(A) returns Ok(())   <- VIOLATION P2"
        } else {
            "deregister(A) returns Ok(())"
        };
        r.push_str(&format!("{}\n", line(4, "main", last)));
        r.push_str("\nReplay: cargo run --release -p usbpm-model --features loom --bin replay -- --scenario x\n");
        r
    }

    #[test]
    fn the_timeline_is_read_from_a_failure_report() {
        let steps = from_report(&report(true));
        assert_eq!(
            steps.iter().map(|s| s.step).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert!(from_report("PROPERTY VIOLATED: P3\nno timeline here\n").is_empty());
        assert_eq!(diagram_of_report("no timeline"), None);
    }

    #[test]
    fn threads_are_participants_library_steps_notes_and_the_violation_marked() {
        let d = diagram_of_report(&report(true)).expect("a diagram");
        assert!(d.starts_with("sequenceDiagram\n"));
        assert!(
            d.contains("participant T0 as main\n")
                && d.contains("participant T1 as dispatcher-h1\n"),
            "{d}"
        );
        assert!(
            d.contains("T0->>T0: 1: register A -#gt; client 0.1\n"),
            "{d}"
        );
        assert!(
            d.contains("Note right of T1: lib: 2: in-flight count of A 0 -#gt; 1\n"),
            "{d}"
        );
        assert!(d.contains(&format!("rect {RED}\n    T0->>T0: 4: deregister(A) returns Ok(())\n    Note over T0: VIOLATION P2\n    end\n")), "{d}");
        assert!(
            !d.contains("checker stopped"),
            "the monitor marked the step"
        );
    }

    #[test]
    fn a_run_the_checker_stopped_is_marked_where_it_stopped() {
        let d = diagram_of_report(&report(false)).expect("a diagram");
        assert!(!d.contains("VIOLATION"));
        assert!(d.ends_with("    Note over T0,T1: the checker stopped the run here: Causality violation: Concurrent read and write accesses to `UnsafeCell`.\n    end\n"), "{d}");
    }

    #[test]
    fn text_cannot_break_the_diagram() {
        assert_eq!(
            escape("a;b #c <d> 50% {e}"),
            "a#59;b #35;c #lt;d#gt; 50#37; #123;e#125;"
        );
    }
}
