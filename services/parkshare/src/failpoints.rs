//! Fault injection for the fault matrix (`load-tests/faults.sh`, docs/faults.md). Compiled
//! only with the `failpoints` feature: in the default build every hook is an empty function.
//!
//! `PARKSHARE_FAILPOINT_KILL_BEFORE_EXIT_COMMIT=<n>`: the process kills itself with SIGKILL
//! right after the n-th exit that opened the barrier gave its place back in Redis, before its
//! commit — the moment between release and commit, hit deterministically.

/// Called after an exit that opens the barrier gave its place back in Redis, before its
/// commit.
#[cfg(feature = "failpoints")]
pub fn exit_released() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static AFTER: OnceLock<Option<u64>> = OnceLock::new();
    static EXITS: AtomicU64 = AtomicU64::new(0);
    let after = AFTER.get_or_init(|| {
        std::env::var("PARKSHARE_FAILPOINT_KILL_BEFORE_EXIT_COMMIT")
            .ok()
            .and_then(|n| n.trim().parse().ok())
    });
    let Some(after) = *after else { return };
    if EXITS.fetch_add(1, Ordering::SeqCst) + 1 == after {
        tracing::error!(
            exits = after,
            "failpoint: killed between an exit's Redis release and its commit"
        );
        // SIGKILL, as `kill -9` from outside: no destructor, no graceful shutdown.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Called after an exit that opens the barrier gave its place back in Redis, before its
/// commit.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn exit_released() {}
