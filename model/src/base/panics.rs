//! Panics in the harness: the ones a program or scenario causes on purpose (a client
//! callback that panics, silenced), and the ones a checker raises (a violation, a data
//! race, a deadlock), which a hook above may record before the process goes on or dies.
//!
//! The bottom of the harness: it depends on nothing of it.

use std::sync::{Mutex, Once};

/// The payload of a panic a scenario or program causes on purpose (silenced in the output).
pub struct ModelPanic;

type Hook = fn(&std::panic::PanicHookInfo<'_>);

static CHECKER_HOOK: Mutex<Option<Hook>> = Mutex::new(None);

/// Whether the default hook stays silent (its message and the checker's backtrace kept
/// in [`QUIET_PANICS`] instead): set by [`quiet_checker_panics`].
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The panics the default hook did not print, as "message (at location)", first first.
static QUIET_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the process's panic hook once: deliberate [`ModelPanic`]s are silent; any
/// other panic goes to the checker hook (if one is set), then to the default hook.
pub fn silence_model_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<ModelPanic>().is_none() {
                if let Some(hook) = CHECKER_HOOK.try_lock().ok().and_then(|h| *h) {
                    hook(info);
                }
                if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
                    let place = info
                        .location()
                        .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                        .unwrap_or_default();
                    let text = panic_text(info.payload());
                    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                    QUIET_PANICS
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{first}{place}"));
                } else {
                    default(info);
                }
            }
        }));
    });
}

/// Sets the function that hears every panic except a deliberate one (the check runner
/// uses it to write a failure's record before loom aborts the process on a deadlock).
pub fn set_checker_hook(hook: Hook) {
    *CHECKER_HOOK.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    silence_model_panics();
}

/// Keeps the checker's panics (a violation, a data race, a deadlock) out of the output:
/// no message and no backtrace from the default hook while the run goes on. A tool that
/// prints the failure itself (the replay: timeline first) shows [`quiet_panics`] after it.
/// `USBPM_BACKTRACE=1` keeps the default hook's output, backtraces included.
pub fn quiet_checker_panics() {
    if std::env::var_os("USBPM_BACKTRACE").is_none() {
        QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    silence_model_panics();
}

/// The panics [`quiet_checker_panics`] kept from the output, first first.
pub fn quiet_panics() -> Vec<String> {
    QUIET_PANICS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// A panic's message.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic with a non-text payload".into())
}
