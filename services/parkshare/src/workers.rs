//! Background workers, supervised: each runs in a task of its own, and a worker that panics or
//! ends is logged, counted and started again after a back-off that doubles from
//! [`RESTART_BACKOFF_MIN`] to [`RESTART_BACKOFF_MAX`] (and starts over once a worker has run
//! for a while).
//!
//! The workers: the webhook outbox, the overstay sweep, the rental sweep, the occupancy
//! metrics, the credential cache's listener, the occupancy reconciler, the rate limiters'
//! pruner and the lanes' fail-open recorder. Each is a loop that handles its own errors; supervision is for what it
//! did not foresee (a panic), which before left the worker dead and the process looking well.
//!
//! They stop with the server: [`Workers::stop`] raises one [`Shutdown`] signal that every
//! worker waits on between iterations. A pass under way (a webhook delivery, a sweep's
//! transaction, a drain of the fail-open journal) finishes; a wait (a tick, a sleep, a
//! notification) ends at once. A worker still running at [`STOP_DEADLINE`] is named in the log
//! and aborted, and no worker is started again once shutdown is asked.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first wait before a worker is started again.
pub const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait: a worker that keeps failing is retried once a minute, not in a hot loop.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A worker that ran this long before it failed starts over from the shortest wait.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long the workers have to finish their pass once the HTTP server has stopped. The
/// server's own drain ([`crate::startup::HTTP_DRAIN_S`], 30 s) plus this is the pod's grace
/// period (`terminationGracePeriodSeconds: 40`, k8s/base/gate.yaml), after which Kubernetes
/// kills the process anyway.
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// The shutdown signal as a worker sees it: cloned into each, raised once by [`Workers::stop`].
#[derive(Clone, Debug, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// Waits for `wait` (a tick, a sleep, a notification) unless shutdown is asked before or
    /// meanwhile: `None` then, and the worker returns. Shutdown is looked at first, so a pass
    /// that ended after the signal is not followed by another even when its tick is already due.
    pub async fn until<T>(&self, wait: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            () = self.0.cancelled() => None,
            value = wait => Some(value),
        }
    }

    /// Shutdown has been asked.
    pub fn is_requested(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Aborts the worker's task when the supervisor is dropped (aborted).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The process's background workers, each under its supervisor, and their shutdown signal.
/// Dropped without [`Workers::stop`], they run on until the runtime ends.
#[derive(Default)]
pub struct Workers {
    shutdown: Shutdown,
    supervisors: Vec<(&'static str, JoinHandle<()>)>,
}

impl Workers {
    pub fn new() -> Workers {
        Workers::default()
    }

    /// Runs `start(shutdown)` as the worker `name`, starting it again whenever it panics or
    /// ends, until shutdown is asked.
    pub fn supervise<F, Fut>(&mut self, name: &'static str, start: F)
    where
        F: Fn(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let supervisor = tokio::spawn(supervise(name, self.shutdown.clone(), start));
        self.supervisors.push((name, supervisor));
    }

    /// Asks every worker to stop and waits for them, at most `deadline` in all; a worker still
    /// running then is logged and aborted. Returns the names of those aborted (none when all
    /// stopped in time).
    pub async fn stop(self, deadline: Duration) -> Vec<&'static str> {
        self.shutdown.0.cancel();
        let until = tokio::time::Instant::now() + deadline;
        let (mut stopped, mut aborted) = (Vec::new(), Vec::new());
        for (name, mut supervisor) in self.supervisors {
            if tokio::time::timeout_at(until, &mut supervisor)
                .await
                .is_ok()
            {
                stopped.push(name);
                continue;
            }
            tracing::error!(
                worker = name,
                deadline_s = deadline.as_secs_f64(),
                "background worker did not stop in time; aborting it"
            );
            supervisor.abort();
            aborted.push(name);
        }
        tracing::info!(?stopped, ?aborted, "background workers stopped");
        aborted
    }
}

/// The supervisor of one worker: starts it, and again after a panic or an end, with back-off,
/// unless shutdown was asked.
async fn supervise<F, Fut>(name: &'static str, shutdown: Shutdown, start: F)
where
    F: Fn(Shutdown) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = RESTART_BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(start(shutdown.clone()));
        let guard = AbortOnDrop(task.abort_handle());
        let outcome = task.await;
        drop(guard);
        if shutdown.is_requested() {
            match outcome {
                Err(e) if e.is_panic() => {
                    tracing::error!(worker = name, "background worker panicked while stopping")
                }
                _ => tracing::debug!(worker = name, "background worker stopped"),
            }
            return;
        }
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
        if shutdown.until(tokio::time::sleep(backoff)).await.is_none() {
            return;
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;

    /// Counts calls, shared between a test and the worker it starts.
    #[derive(Clone, Default)]
    struct Count(Arc<AtomicU32>);

    impl Count {
        fn add(&self) -> u32 {
            self.0.fetch_add(1, Ordering::SeqCst)
        }
        fn get(&self) -> u32 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A worker as the service's are: a pass of `pass` every `every`, waiting on `shutdown`
    /// only between passes.
    async fn periodic(
        shutdown: Shutdown,
        every: Duration,
        pass: Duration,
        begun: Count,
        done: Count,
    ) {
        let mut tick = tokio::time::interval(every);
        while shutdown.until(tick.tick()).await.is_some() {
            begun.add();
            tokio::time::sleep(pass).await;
            done.add();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_panics_is_started_again_with_back_off() {
        let starts = Count::default();
        let counted = starts.clone();
        let mut workers = Workers::new();
        workers.supervise("test", move |_| {
            let starts = counted.clone();
            async move {
                let n = starts.add();
                if n < 3 {
                    panic!("worker failure {n}");
                }
                std::future::pending::<()>().await;
            }
        });
        // 100 + 200 + 400 ms of back-off: the fourth start stays up.
        tokio::time::sleep(Duration::from_millis(750)).await;
        assert_eq!(starts.get(), 4);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(starts.get(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_under_way_finishes_and_no_other_begins() {
        let (begun, done) = (Count::default(), Count::default());
        let mut workers = Workers::new();
        let counts = (begun.clone(), done.clone());
        workers.supervise("sweep", move |shutdown| {
            let (begun, done) = counts.clone();
            periodic(
                shutdown,
                Duration::from_secs(1),
                Duration::from_secs(3),
                begun,
                done,
            )
        });
        // The first pass began at 0 s and runs until 3 s; its next tick is due at 1 s already.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((begun.get(), done.get()), (1, 0));

        let asked = Instant::now();
        let aborted = workers.stop(STOP_DEADLINE).await;
        assert_eq!(aborted, Vec::<&str>::new(), "the worker was cut short");
        assert_eq!(
            asked.elapsed(),
            Duration::from_secs(2),
            "stop did not wait for the pass"
        );
        assert_eq!(
            (begun.get(), done.get()),
            (1, 1),
            "the pass was cut short or another begun"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(begun.get(), 1, "a pass began after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_stops_at_once() {
        let (begun, done) = (Count::default(), Count::default());
        let mut workers = Workers::new();
        let counts = (begun.clone(), done.clone());
        workers.supervise("hourly", move |shutdown| {
            let (begun, done) = counts.clone();
            periodic(
                shutdown,
                Duration::from_secs(3600),
                Duration::from_millis(10),
                begun,
                done,
            )
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(done.get(), 1, "the first pass at start");

        let asked = Instant::now();
        assert_eq!(workers.stop(STOP_DEADLINE).await, Vec::<&str>::new());
        assert_eq!(
            asked.elapsed(),
            Duration::ZERO,
            "stop waited for the next tick"
        );
        assert_eq!(begun.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_is_not_started_again_after_shutdown() {
        // One that returns when asked to stop, as every worker does: not "ended", not restarted.
        let starts = Count::default();
        let counted = starts.clone();
        let mut workers = Workers::new();
        workers.supervise("obedient", move |shutdown| {
            let starts = counted.clone();
            async move {
                starts.add();
                shutdown.until(std::future::pending::<()>()).await;
            }
        });
        // One that panicked and is waiting out its back-off when shutdown comes.
        let crashes = Count::default();
        let counted = crashes.clone();
        workers.supervise("crashing", move |_| {
            let crashes = counted.clone();
            async move {
                crashes.add();
                panic!("worker failure");
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!((starts.get(), crashes.get()), (1, 1));

        let asked = Instant::now();
        assert_eq!(workers.stop(STOP_DEADLINE).await, Vec::<&str>::new());
        assert_eq!(
            asked.elapsed(),
            Duration::ZERO,
            "stop waited out the back-off"
        );
        tokio::time::sleep(RESTART_BACKOFF_MAX * 2).await;
        assert_eq!(
            (starts.get(), crashes.get()),
            (1, 1),
            "started again after shutdown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_still_running_at_the_deadline_is_aborted() {
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let mut workers = Workers::new();
        workers.supervise("stuck", move |_| {
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
                // Never looks at the shutdown signal.
                std::future::pending::<()>().await;
            }
        });
        workers.supervise("obedient", |shutdown| async move {
            shutdown.until(std::future::pending::<()>()).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;

        let asked = Instant::now();
        assert_eq!(workers.stop(STOP_DEADLINE).await, vec!["stuck"]);
        assert_eq!(asked.elapsed(), STOP_DEADLINE);
        let stopped = tokio::time::timeout(Duration::from_secs(2), dropped_rx).await;
        assert!(
            matches!(stopped, Ok(Ok(()))),
            "the stuck worker kept running"
        );
    }
}
