//! Containment of a third-party reader's panics on hostile input.
//!
//! backhand trusts some squashfs fields it reads (fragment offsets and file
//! lengths are used to slice decompressed blocks), so a crafted file can make
//! it panic instead of returning an error; the fuzz target `sif` found one
//! (`Vec::drain` out of range in its fragment reader, backhand 0.25.1).
//! Validating every such field ahead of backhand would mean re-reading its
//! tables by hand, so instead the conversion runs under [`quietly`]: a panic
//! there becomes the caller's one-line error, and the process-wide panic hook
//! stays silent for it (no "thread panicked" lines on stderr, and a fuzzer's
//! abort-on-panic hook is not reached). Panics anywhere else are reported by
//! the previous hook exactly as before.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs under [`quietly`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Run `f`; a panic inside it becomes `Err(what)`, unreported by the panic
/// hook. `f` must leave nothing shared half-updated when it panics (the
/// conversion only writes its own temporary file, discarded on error).
pub fn quietly<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.unwrap_or_else(|_| Err(what.to_string()))
}

#[cfg(test)]
mod tests {
    use super::quietly;

    #[test]
    fn a_panic_becomes_the_error_and_results_pass_through() {
        assert_eq!(quietly("bad", || Ok::<_, String>(1)), Ok(1));
        assert_eq!(
            quietly("bad", || Err::<u8, _>("own".to_string())),
            Err("own".to_string())
        );
        let r: Result<u8, String> = quietly("corrupt squashfs", || {
            let v: Vec<u8> = Vec::new();
            Ok(v[6])
        });
        assert_eq!(r, Err("corrupt squashfs".to_string()));
    }
}
