//! Half-open time ranges `[start, end)` in UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A non-empty half-open range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    /// `None` when the range is empty (`end <= start`).
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Interval> {
        (start < end).then_some(Interval { start, end })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    pub fn covers(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn clip(&self, to: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(to.start), self.end.min(to.end))
    }

    pub fn duration(&self) -> chrono::Duration {
        self.end - self.start
    }
}

/// Sorted, disjoint, non-adjacent intervals covering the same instants as `intervals`.
pub fn normalise(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match merged.last_mut() {
            Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
            _ => merged.push(next),
        }
    }
    merged
}

/// The instants of `from` not in any of `remove` (both normalised on the way).
pub fn subtract(from: Vec<Interval>, remove: Vec<Interval>) -> Vec<Interval> {
    let remove = normalise(remove);
    let mut out = Vec::new();
    for piece in normalise(from) {
        let mut start = piece.start;
        for cut in remove.iter().filter(|c| c.overlaps(&piece)) {
            if let Some(kept) = Interval::new(start, cut.start) {
                out.push(kept);
            }
            start = start.max(cut.end);
        }
        if let Some(kept) = Interval::new(start, piece.end) {
            out.push(kept);
        }
    }
    out
}

/// True when `normalised` (sorted, disjoint) has one interval covering all of `wanted`.
pub fn covered(normalised: &[Interval], wanted: &Interval) -> bool {
    normalised.iter().any(|i| i.covers(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn iv(a: u32, b: u32) -> Interval {
        Interval::new(at(a), at(b)).unwrap_or(Interval {
            start: at(0),
            end: at(0),
        })
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        assert_eq!(
            normalise(vec![iv(5, 7), iv(1, 3), iv(3, 4), iv(6, 9)]),
            vec![iv(1, 4), iv(5, 9)]
        );
    }

    #[test]
    fn subtracting_cuts_holes_and_trims_edges() {
        assert_eq!(
            subtract(vec![iv(1, 10)], vec![iv(0, 2), iv(4, 5), iv(9, 12)]),
            vec![iv(2, 4), iv(5, 9)]
        );
        assert_eq!(subtract(vec![iv(1, 3)], vec![iv(1, 3)]), vec![]);
    }

    #[test]
    fn empty_ranges_do_not_exist() {
        assert_eq!(Interval::new(at(3), at(3)), None);
        assert_eq!(Interval::new(at(4), at(3)), None);
    }
}
