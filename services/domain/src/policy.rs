//! Per-compound gate policies. Each is a rule of DOMAIN.md made configurable.

use serde::{Deserialize, Serialize};

/// Longest duplicate-read window: a camera re-reading the same car is a matter of seconds; a
/// longer window would swallow a genuine second visit.
pub const DUPLICATE_WINDOW_S_MAX: u32 = 600;
/// Longest exit grace after paying.
pub const EXIT_GRACE_MIN_MAX: u32 = 120;
/// Letting booked cars in more than two hours early would hold spaces for nobody.
pub const BOOKING_EARLY_ARRIVAL_MIN_MAX: u32 = 120;
/// A free-cancellation period longer than a day is a policy no one can rely on.
pub const BOOKING_FREE_CANCEL_MIN_MAX: u32 = 24 * 60;
/// Longest free stay for owners without a space (a day).
pub const OWNER_FREE_MIN_MAX: u32 = 24 * 60;

/// What happens at an exit read that matches no open session (无入场记录).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A booked plate is let in this many minutes before its booking starts.
    #[serde(default = "default_booking_early_arrival_min")]
    pub booking_early_arrival_min: u32,
    /// Cancelling a booking at least this many minutes before it starts is free.
    #[serde(default = "default_booking_free_cancel_min")]
    pub booking_free_cancel_min: u32,
}

fn default_booking_early_arrival_min() -> u32 {
    15
}

fn default_booking_free_cancel_min() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("owner_free_min must be at most {OWNER_FREE_MIN_MAX}")]
    OwnerFree,
    #[error("duplicate_window_s must be at most {DUPLICATE_WINDOW_S_MAX}")]
    DuplicateWindow,
    #[error("exit_grace_min must be at most {EXIT_GRACE_MIN_MAX}")]
    ExitGrace,
    #[error("booking_early_arrival_min must be at most {BOOKING_EARLY_ARRIVAL_MIN_MAX}")]
    BookingEarlyArrival,
    #[error("booking_free_cancel_min must be at most {BOOKING_FREE_CANCEL_MIN_MAX}")]
    BookingFreeCancel,
}

impl Default for GatePolicy {
    fn default() -> GatePolicy {
        GatePolicy {
            owner_free_min: 120,
            no_entry_record: NoEntryRecord::Refuse,
            reentry: Reentry::CloseAndReopen,
            duplicate_window_s: 10,
            exit_grace_min: 15,
            booking_early_arrival_min: default_booking_early_arrival_min(),
            booking_free_cancel_min: default_booking_free_cancel_min(),
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
        if self.booking_early_arrival_min > BOOKING_EARLY_ARRIVAL_MIN_MAX {
            return Err(PolicyError::BookingEarlyArrival);
        }
        if self.booking_free_cancel_min > BOOKING_FREE_CANCEL_MIN_MAX {
            return Err(PolicyError::BookingFreeCancel);
        }
        Ok(())
    }
}
