//! Background workers, supervised: each runs in a task of its own, and a worker that panics or
//! ends is logged, counted and started again after a back-off that doubles from
//! [`RESTART_BACKOFF_MIN`] to [`RESTART_BACKOFF_MAX`] (and starts over once a worker has run
//! for a while). Aborting a supervisor aborts its worker.
//!
//! The workers: the webhook outbox, the overstay sweep, the rental sweep, the occupancy
//! metrics, the credential cache's listener, the occupancy reconciler, the rate limiters'
//! pruner and the lanes' fail-open recorder. Each is a loop that handles its own errors; supervision is for what it
//! did not foresee (a panic), which before left the worker dead and the process looking well.

use std::future::Future;
use std::time::Duration;

/// The first wait before a worker is started again.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait: a worker that keeps failing is retried once a minute, not in a hot loop.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A worker that ran this long before it failed starts over from the shortest wait.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Aborts the worker's task when the supervisor is dropped (aborted).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `start()` as the worker `name`, starting it again whenever it panics or ends.
pub fn supervise<F, Fut>(name: &'static str, start: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = RESTART_BACKOFF_MIN;
        loop {
            let started = tokio::time::Instant::now();
            let task = tokio::spawn(start());
            let guard = AbortOnDrop(task.abort_handle());
            let outcome = task.await;
            drop(guard);
            match outcome {
                Ok(()) => {
                    tracing::error!(worker = name, "background worker ended; starting it again")
                }
                Err(e) if e.is_panic() => {
                    tracing::error!(
                        worker = name,
                        "background worker panicked; starting it again"
                    )
                }
                Err(_) => return,
            }
            crate::metrics::worker_restarted(name);
            if started.elapsed() >= HEALTHY_RUN {
                backoff = RESTART_BACKOFF_MIN;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_panics_is_started_again_with_back_off() {
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        let supervisor = supervise("test", move || {
            let starts = counted.clone();
            async move {
                let n = starts.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    panic!("worker failure {n}");
                }
                std::future::pending::<()>().await;
            }
        });
        // 100 + 200 + 400 ms of back-off: the fourth start stays up.
        tokio::time::sleep(Duration::from_millis(750)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 4);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 4);
        supervisor.abort();
    }

    #[tokio::test]
    async fn aborting_the_supervisor_stops_its_worker() {
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let supervisor = supervise("test", move || {
            let sender = sender.clone();
            async move {
                // Signals when the worker's future is dropped (aborted).
                struct Signal(Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);
                impl Drop for Signal {
                    fn drop(&mut self) {
                        if let Some(tx) = self.0.lock().ok().and_then(|mut s| s.take()) {
                            let _ = tx.send(());
                        }
                    }
                }
                let _signal = Signal(sender);
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        supervisor.abort();
        let stopped = tokio::time::timeout(Duration::from_secs(2), dropped_rx).await;
        assert!(matches!(stopped, Ok(Ok(()))), "the worker kept running");
    }
}
