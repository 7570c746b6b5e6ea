//! The harness's own view of the scheduler: threads, atomics and the driver-memory model, taken from the same checker the library was built against (loom, shuttle or
//! std). Monitors record into plain `std` locks on purpose: the checkers schedule one
//! thread at a time and only switch at their own primitives, so a `std` lock in a monitor
//! adds no synchronisation the checker could mistake for the library's.

use crate::base::checker::Checker;

#[cfg(feature = "loom")]
pub use loom::{
    sync::atomic::{AtomicBool, AtomicUsize},
    thread,
};
#[cfg(feature = "shuttle")]
pub use shuttle::{
    sync::atomic::{AtomicBool, AtomicUsize},
    thread,
};
#[cfg(not(any(feature = "loom", feature = "shuttle")))]
pub use std::{
    sync::atomic::{AtomicBool, AtomicUsize},
    thread,
};

/// Which scheduler this build of the harness (and of the library) runs on.
pub const CHECKER: Checker = if cfg!(feature = "loom") {
    Checker::Loom
} else if cfg!(feature = "shuttle") {
    Checker::Shuttle
} else {
    Checker::Std
};

/// Spawns a named thread of the current checker; the name appears in timelines.
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn a model thread")
}

/// The current thread's name ("main" for the scenario's own thread).
pub fn thread_name() -> String {
    thread::current().name().unwrap_or("main").to_string()
}

/// Memory that a C driver would `free` after deregister returns: every access by a
/// callback and the free are recorded with loom, whose race detector then fails the run
/// if the free is not ordered after the callback's access by happens-before (for
/// example with `Relaxed` where `Release`/`Acquire` is needed). Only the access is
/// recorded; the cell holds nothing to read. Under shuttle and std it is empty: those
/// checkers see use-after-free through the context's `freed` flag alone.
pub struct DriverMemory {
    #[cfg(feature = "loom")]
    cell: loom::cell::UnsafeCell<()>,
}

impl DriverMemory {
    pub fn new() -> Self {
        DriverMemory {
            #[cfg(feature = "loom")]
            cell: loom::cell::UnsafeCell::new(()),
        }
    }

    /// A callback updates the context, as a driver updates its state with no lock of its
    /// own: the library runs one call of a client at a time, each after the previous one
    /// returned, so two calls at once (or one not ordered after the last) is a data race
    /// loom reports.
    pub fn update(&self) {
        #[cfg(feature = "loom")]
        self.cell.with_mut(|_| ());
    }

    /// The driver frees the context: a write, which must happen-after every update.
    pub fn free(&self) {
        #[cfg(feature = "loom")]
        self.cell.with_mut(|_| ());
    }
}

// SAFETY: the cell is never dereferenced: `update` and `free` hand loom a pointer it does not read
// or write, only so loom records the access and judges whether it races with another.
// Sharing it between threads is the point: a race between a callback's access and the
// driver's free is exactly the use-after-free the model must detect, and loom reports it
// as a failure instead of letting it happen.
#[cfg(feature = "loom")]
#[allow(unsafe_code)]
unsafe impl Sync for DriverMemory {}

impl Default for DriverMemory {
    fn default() -> Self {
        Self::new()
    }
}
