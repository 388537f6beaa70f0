//! Time-shared private spaces (车位分时共享, rule 5 of the domain brief), the pure core.
//!
//! - [`interval`]: half-open UTC time ranges and the set operations availability needs;
//! - [`window`]: an owner's sharing schedule — weekly windows in the compound's local time, plus
//!   one-off openings and blackouts — and the UTC intervals it opens;
//! - [`booking`]: the limits on a booking request, arrival tolerance and cancellation terms;
//! - [`caps`]: how long an unpaid hold keeps its space, and how many live bookings a plate and
//!   a client may have.
//!
//! Storage (the exclusion constraint that keeps two bookings off one space, webhooks) lives in
//! the gate service.

pub mod booking;
pub mod caps;
pub mod interval;
pub mod window;

pub use booking::{BookingError, BookingLimits, CancellationTerms};
pub use caps::{holds_space, BookingCaps, CapExceeded, Live};
pub use interval::Interval;
pub use window::{Exception, ExceptionKind, Schedule, WeeklyWindow, WindowError};
