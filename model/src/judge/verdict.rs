//! What a check concludes: the profile it ran at, its verdict, and a failure made
//! readable (the property, the report with its timeline, the replay command) from
//! whatever panic the checker raised.

use serde::{Deserialize, Serialize};

use crate::judge::monitor::{last_timeline, Property};

/// How much to explore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// For every push: under 2 minutes on 2 cores.
    Quick,
    /// For merges: under 20 minutes on 2 cores.
    Full,
}

impl Profile {
    pub fn from_env() -> Profile {
        match std::env::var("USBPM_PROFILE").as_deref() {
            Ok("full") => Profile::Full,
            Ok("quick") | Err(_) => Profile::Quick,
            Ok(other) => panic!("USBPM_PROFILE={other}: expected `quick` or `full`"),
        }
    }
}

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// Why a check failed, readable and replayable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// The property violated ("P1".."P5"), when the monitor or checker says which.
    pub property: Option<String>,
    /// The full report: violations, timeline, replay.
    pub report: String,
    /// The one command that replays the failure.
    pub replay: String,
}

/// Turns a panic out of a checker into a failure: the monitor's own report when it is
/// one, or the checker's message (deadlock, data race) with the last timeline.
pub fn failure(text: String, replay: String) -> Failure {
    // A runner that knows a better replay (shuttle: the saved schedule) says so in the text.
    let replay = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Replay: "))
        .map(str::to_string)
        .unwrap_or(replay);
    let text = match text.rfind("\nReplay: ") {
        Some(i) if !text.contains("PROPERTY VIOLATED: ") => text[..i].to_string(),
        _ => text,
    };
    if let Some(start) = text.find("PROPERTY VIOLATED: ") {
        let property = text[start + 19..]
            .split_whitespace()
            .next()
            .map(str::to_string);
        let replay = text
            .lines()
            .find_map(|l| l.strip_prefix("Replay: "))
            .map(str::to_string)
            .unwrap_or(replay);
        return Failure {
            property,
            report: text[start..].to_string(),
            replay,
        };
    }
    let property = if text.contains("deadlock") || text.contains("Deadlock") {
        Some("P3")
    } else if text.contains("Causality violation") {
        Some("P2")
    } else {
        None
    };
    let mut report = String::new();
    if let Some(p) = property {
        let title = Property::ALL
            .iter()
            .find(|x| x.id() == p)
            .map(|x| x.title())
            .unwrap_or("");
        report.push_str(&format!("PROPERTY VIOLATED: {p} {title}\n"));
    }
    report.push_str(&format!("  the checker reports: {}\n", text.trim()));
    if let Some(t) = last_timeline() {
        report.push_str("\nTimeline of the failing execution, up to where it stopped:\n");
        report.push_str(&t);
    }
    report.push_str(&format!("\nReplay: {replay}\n"));
    Failure {
        property: property.map(str::to_string),
        report,
        replay,
    }
}
