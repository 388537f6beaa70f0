//! A lane's answer and the commit it reports, kept in step.
//!
//! A lane waits for its decision only for its budget. A fail-closed lane that stops waiting
//! answers 503, "nothing was decided, retry" — so the decision still running must not commit
//! after that, or the car the lane refused would hold a place and a stay, and the retry would
//! be told `duplicate`. Each such decision runs with a [`Waiting`] (a task-local, so that every
//! flow's commit finds it without being handed it), and every gate commit goes through
//! [`commit`]:
//!
//! - a commit that starts first claims the answer: the lane, out of budget, then waits for the
//!   commit's outcome instead of answering 503 (one round trip, not another decision);
//! - a lane that gives up first wins: the decision's commit rolls back instead.
//!
//! A fail-open lane keeps no [`Waiting`]: it opened anyway, and its late decision is reconciled
//! with the passage it queued (`lanes`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use sqlx::{Postgres, Transaction};

use crate::error::ApiError;
pub use crate::state::lanes::Waiting;

const WAITING: u8 = 0;
const COMMITTING: u8 = 1;
const GAVE_UP: u8 = 2;

tokio::task_local! {
    static ANSWER: Arc<Waiting>;
}

impl Waiting {
    pub fn new() -> Arc<Waiting> {
        Arc::new(Waiting(AtomicU8::new(WAITING)))
    }

    /// The lane stops waiting. True when no commit has started, and none will; false when
    /// one has: the lane must wait for its outcome.
    pub fn give_up(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == GAVE_UP,
        }
    }

    /// A commit is about to start; false when the lane already gave up. Claiming again is
    /// allowed (a decision that failed to commit and is decided again).
    pub fn claim(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == COMMITTING,
        }
    }

    /// The claimed commit did not happen (it was never sent, or Postgres refused it): the
    /// lane may give up again.
    pub fn unclaim(&self) {
        let _ = self
            .0
            .compare_exchange(COMMITTING, WAITING, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Runs `decision` for a lane that waits on `waiting`.
pub async fn scope<F: std::future::Future>(waiting: Arc<Waiting>, decision: F) -> F::Output {
    ANSWER.scope(waiting, decision).await
}

/// The lane waiting for the decision running here, if it keeps one.
pub fn current() -> Option<Arc<Waiting>> {
    ANSWER.try_with(Arc::clone).ok()
}

/// Why a gate commit did not happen.
#[derive(Debug)]
pub enum NotCommitted {
    /// The lane gave up and answered 503: rolled back.
    GaveUp,
    /// Postgres refused or lost the commit.
    Db(sqlx::Error),
}

impl From<NotCommitted> for ApiError {
    fn from(e: NotCommitted) -> ApiError {
        match e {
            NotCommitted::GaveUp => ApiError::Unavailable(anyhow::anyhow!(
                "the lane stopped waiting; the decision was rolled back"
            )),
            NotCommitted::Db(e) => e.into(),
        }
    }
}

/// Commits a gate transaction unless the lane waiting for it gave up (then rolls it back).
pub async fn commit(tx: Transaction<'_, Postgres>) -> Result<(), NotCommitted> {
    let lane = current();
    commit_for(tx, lane.as_deref().into_iter()).await
}

/// [`commit`] for a transaction that decides for several lanes (a batch): all of them must
/// still wait, or nothing is committed.
pub async fn commit_for<'a>(
    tx: Transaction<'_, Postgres>,
    lanes: impl Iterator<Item = &'a Waiting> + Clone,
) -> Result<(), NotCommitted> {
    let mut claimed = Vec::new();
    for lane in lanes.clone() {
        if !lane.claim() {
            claimed.iter().for_each(|l: &&Waiting| l.unclaim());
            tx.rollback().await.map_err(NotCommitted::Db)?;
            return Err(NotCommitted::GaveUp);
        }
        claimed.push(lane);
    }
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(e) => {
            // Refused by Postgres (a conflict it aborted): known not committed. Any other
            // failure leaves the outcome unknown; the lane keeps waiting for the re-read.
            if crate::error::is_retryable(&e) {
                lanes.for_each(Waiting::unclaim);
            }
            Err(NotCommitted::Db(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoever_comes_first_wins() {
        let lane = Waiting::new();
        assert!(lane.claim(), "a commit claims a waiting lane");
        assert!(!lane.give_up(), "the lane then waits for the outcome");
        assert!(lane.claim(), "claiming again is allowed");
        lane.unclaim();
        assert!(lane.give_up(), "an unclaimed lane may give up");
        assert!(!lane.claim(), "and no commit follows");
        assert!(lane.give_up(), "giving up twice is giving up");
    }
}
