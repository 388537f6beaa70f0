//! Per-compound gate policies. Each is a rule of DOMAIN.md made configurable.

use serde::{Deserialize, Serialize};

/// Longest duplicate-read window: a camera re-reading the same car is a matter of seconds; a
/// longer window would swallow a genuine second visit.
pub const DUPLICATE_WINDOW_S_MAX: u32 = 600;
/// Longest exit grace after paying.
pub const EXIT_GRACE_MIN_MAX: u32 = 120;
/// Longest free stay for owners without a space (a day).
pub const OWNER_FREE_MIN_MAX: u32 = 24 * 60;

/// What happens at an exit read that matches no open session (无入场记录).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoEntryRecord {
    /// Keep the barrier down; staff handle it by hand.
    Refuse,
    /// Charge the tariff's no-entry-record fee (a filed fee item), then open once it is paid.
    /// Without such a fee in the tariff, the exit is refused like `Refuse`.
    ChargeTariffFee,
}

/// What happens when a plate already inside is read at an entry (its exit was missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reentry {
    /// Close the old session as an anomaly and open a new one.
    CloseAndReopen,
    /// Refuse entry; staff handle it by hand.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// Humane handling (人性化管理): registered owners' cars without a permit park free for the
    /// first this-many minutes.
    pub owner_free_min: u32,
    pub no_entry_record: NoEntryRecord,
    pub reentry: Reentry,
    /// The same plate at the same gate within this window is the same read, answered again.
    pub duplicate_window_s: u32,
    /// After paying, the driver has this long to reach the exit (离场宽限).
    pub exit_grace_min: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("owner_free_min must be at most {OWNER_FREE_MIN_MAX}")]
    OwnerFree,
    #[error("duplicate_window_s must be at most {DUPLICATE_WINDOW_S_MAX}")]
    DuplicateWindow,
    #[error("exit_grace_min must be at most {EXIT_GRACE_MIN_MAX}")]
    ExitGrace,
}

impl Default for GatePolicy {
    fn default() -> GatePolicy {
        GatePolicy {
            owner_free_min: 120,
            no_entry_record: NoEntryRecord::Refuse,
            reentry: Reentry::CloseAndReopen,
            duplicate_window_s: 10,
            exit_grace_min: 15,
        }
    }
}

impl GatePolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.owner_free_min > OWNER_FREE_MIN_MAX {
            return Err(PolicyError::OwnerFree);
        }
        if self.duplicate_window_s > DUPLICATE_WINDOW_S_MAX {
            return Err(PolicyError::DuplicateWindow);
        }
        if self.exit_grace_min > EXIT_GRACE_MIN_MAX {
            return Err(PolicyError::ExitGrace);
        }
        Ok(())
    }
}
