//! Judging an execution: the properties and the monitor that judges them as they happen,
//! the results oracle, trace validation against the specification, and a check's verdict.
//!
//! - [`monitor`]: `Property` P1–P6, P8, P9 and `Monitor`, from the client's side;
//! - [`stall`]: a hang on real threads recognised from the probe's steps, in seconds;
//! - [`oracle`]: a program's results explained by a real-time-consistent sequential order;
//! - [`trace`]: the probe's steps as the specification's observations;
//! - [`verdict`]: the profile, verdict and failure of a check.

pub mod monitor;
pub mod oracle;
pub mod stall;
pub mod trace;
pub mod verdict;
