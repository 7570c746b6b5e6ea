//! The one module that decides which synchronisation primitives the library sees.
//!
//! Production builds get `std`. The verification harness in `model/` builds the *same*
//! library source with the `loom` feature (exhaustive interleavings and the C11 memory
//! model) or the `shuttle` feature (randomised and PCT schedules), and this module swaps
//! in that checker's atomics, locks, condition variables and thread-locals. No other
//! module names `std::sync` or `std::thread` directly: if a primitive is not exported
//! here, the checkers cannot see it, and a race through it would go unchecked. (Two
//! `std` items elsewhere are deliberate and order nothing: the process-wide counter that
//! numbers Policy Managers, and the `std::sync::Arc` that holds the gate's probe.)
//!
//! `Arc` is taken from the checker too: loom tracks reference counts to report leaks.

#[cfg(all(feature = "loom", feature = "shuttle"))]
compile_error!(
    "usbpm: the `loom` and `shuttle` features select different schedulers; enable one at a time"
);

#[cfg(feature = "loom")]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread_local;
}

#[cfg(feature = "shuttle")]
mod imp {
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use shuttle::thread_local;
}

#[cfg(not(any(feature = "loom", feature = "shuttle")))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread_local;
}

pub(crate) use imp::*;
pub(crate) use std::sync::atomic::Ordering;

/// Locks `mutex`, ignoring poisoning.
///
/// The library never panics while holding one of its own locks (callbacks run with no
/// library lock held and their panics are caught), so a poisoned lock can only come from
/// a bug in this crate; the protected data is still consistent at every unlock point.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
