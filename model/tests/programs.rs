//! Generated programs: every program of an enumerated tier under loom (split into
//! chunks, one test each, so nextest's partitions and the gate's `--shard` split a tier
//! across runners), and random larger programs under shuttle.
#![cfg(feature = "loom")]

use usbpm_model::enumerate::{enumerate, Size};
use usbpm_model::generated::{chunk, loom_programs};
use usbpm_model::run::Progress;

#[test]
fn measure() {
    let size: Size = std::env::var("SIZE")
        .unwrap_or("2x1-c1-h1".into())
        .parse()
        .unwrap();
    let bound: Option<usize> = std::env::var("BOUND").ok().and_then(|b| b.parse().ok());
    let every: usize = std::env::var("EVERY")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    let tier = enumerate(size);
    let programs = chunk(&tier, 0, every);
    let progress = Progress::new(None);
    let (e, f) = loom_programs(&programs, None, bound, None, "measure", &progress);
    println!(
        "{size} bound {bound:?}: {} programs, {} executions, {:.1}s, most {} ({:?})",
        e.programs, e.executions, e.seconds, e.most_executions, e.heaviest
    );
    if let Some(f) = f {
        panic!("{}", f.report);
    }
}
