//! The fail-open journal: passages a lane let through on its fail-open policy, on local disk
//! until Postgres has them.
//!
//! A fail-open lane opens when the backend cannot decide in time; the car then passes and its
//! stay must still be recorded and billed. Before the lane is told to open, the passage is
//! written to a file of its own in the journal directory and fsynced (the file, then the
//! directory, so that its name survives too). The lane worker records every file in Postgres
//! (at start, then every `PARKSHARE_FAIL_OPEN_DRAIN_MS`, so also as soon as Postgres is back)
//! and removes it only after the commit.
//!
//! Recording is idempotent by the device's event id: a file recorded but not yet removed when
//! the process died, a camera that retried while the lane was failing open, or two processes
//! sharing the directory record the passage once (`facts` answers `duplicate` for an event id
//! already stored).
//!
//! What it survives: the loss of the process (kill -9, a crash, a restart, SIGTERM) and of
//! Redis, at any moment after the answer, and Postgres being away for as long as the disk
//! lasts. What it does not: the loss of the disk itself (a node lost with a node-local volume)
//! before Postgres has the passage.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Files the worker reads in one pass; the rest wait for the next. An outage of an hour at a
/// busy compound is a few thousand passages.
const PASS_FILES_MAX: usize = 10_000;
/// A write in progress this old was cut short (one takes milliseconds).
const ABANDONED_WRITE_AGE: std::time::Duration = std::time::Duration::from_secs(60);
/// What a journal file's name ends with; a name starting with `.` is a write in progress.
const SUFFIX: &str = ".json";

/// A passage let through on a fail-open policy, waiting to be recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Passage {
    pub gate_id: Uuid,
    pub plate: String,
    pub class: Option<String>,
    pub captured_at: DateTime<Utc>,
    pub device_event_id: String,
}

/// A passage in the journal, and its file.
pub struct Pending {
    pub passage: Passage,
    file: PathBuf,
}

/// The journal directory.
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens (creating) the journal in `dir` and checks that a passage can be written there:
    /// a journal that cannot be written is found at start, not in an outage.
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let journal = Journal {
            dir: dir.to_path_buf(),
        };
        let probe = dir.join(format!(".probe-{}", Uuid::new_v4().simple()));
        write_synced(&probe, b"probe")?;
        std::fs::remove_file(&probe)?;
        // Writes cut short by a crash: never acknowledged, so nothing to record. (Only old
        // ones: another process sharing the directory may be writing one now.)
        for entry in std::fs::read_dir(dir)?.flatten() {
            let abandoned = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_WRITE_AGE);
            if entry.file_name().to_string_lossy().starts_with('.') && abandoned {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(journal)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `passage` durably: when this returns `Ok`, a crash of the process or the machine
    /// (with its disk) does not lose it.
    pub async fn append(&self, passage: &Passage) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(passage)?;
        // Named by capture time first, so that a pass records the passages in order.
        let name = format!(
            "{}-{}{SUFFIX}",
            passage.captured_at.format("%Y%m%dT%H%M%S%.6fZ"),
            Uuid::new_v4().simple()
        );
        let dir = self.dir.clone();
        blocking(move || {
            let writing = dir.join(format!(".{name}"));
            write_synced(&writing, &bytes)?;
            std::fs::rename(&writing, dir.join(&name))?;
            sync_dir(&dir)
        })
        .await
    }

    /// The passages not yet recorded, oldest capture first. An unreadable file is moved aside
    /// (`*.unreadable`, for staff) rather than blocking the others.
    pub async fn pending(&self) -> std::io::Result<Vec<Pending>> {
        let dir = self.dir.clone();
        blocking(move || {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy())
                        .is_some_and(|n| !n.starts_with('.') && n.ends_with(SUFFIX))
                })
                .collect();
            files.sort();
            files.truncate(PASS_FILES_MAX);
            let mut pending = Vec::with_capacity(files.len());
            for file in files {
                let read = std::fs::read(&file)?;
                match serde_json::from_slice::<Passage>(&read) {
                    Ok(passage) => pending.push(Pending { passage, file }),
                    Err(e) => {
                        tracing::error!(file = %file.display(), error = %e, "unreadable fail-open passage set aside");
                        let _ = std::fs::rename(&file, file.with_extension("unreadable"));
                    }
                }
            }
            Ok(pending)
        })
        .await
    }

    /// Removes a passage Postgres now holds.
    pub async fn done(&self, pending: Pending) -> std::io::Result<()> {
        blocking(move || match std::fs::remove_file(&pending.file) {
            // Another process sharing the directory recorded it too.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the directory's entries (a new or renamed file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: &str, at: &str) -> Passage {
        Passage {
            gate_id: Uuid::nil(),
            plate: "京A12345".into(),
            class: None,
            captured_at: at.parse().unwrap_or_default(),
            device_event_id: id.into(),
        }
    }

    #[tokio::test]
    async fn a_passage_stays_until_it_is_done_and_comes_back_in_capture_order() {
        let dir = std::env::temp_dir().join(format!("ps-journal-{}", Uuid::new_v4().simple()));
        let journal = Journal::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        for (id, at) in [("b", "2026-01-01T08:00:02Z"), ("a", "2026-01-01T08:00:01Z")] {
            journal
                .append(&passage(id, at))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(dir.join("x.json"), b"not json").unwrap_or_else(|e| panic!("{e}"));
        // A journal opened again (a new process) finds the same passages.
        let again = Journal::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        let pending = again.pending().await.unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = pending
            .iter()
            .map(|p| p.passage.device_event_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(dir.join("x.unreadable").exists(), "set aside for staff");
        for done in pending {
            again.done(done).await.unwrap_or_else(|e| panic!("{e}"));
        }
        let left = again.pending().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(left.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
