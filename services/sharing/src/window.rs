//! An owner's sharing schedule and the instants it opens the space to visitors.
//!
//! Weekly windows are in the compound's local time: "Mon–Fri 08:00–18:00" means those wall-clock
//! hours wherever the compound is. A window whose end is not after its start runs past midnight
//! into the next day (22:00–07:00); equal start and end mean 24 hours. One-off exceptions are
//! absolute instants: an opening adds time, a blackout removes it and wins over everything.
//! Local times that a daylight-saving change skips move forward to the first instant that
//! exists; an ambiguous local time takes its earlier instant (China has no DST; the rule only
//! keeps other zones well defined).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::interval::{self, Interval};

/// Weekly windows on one space; more is a data-entry mistake, not a schedule.
pub const WINDOWS_PER_SPACE_MAX: usize = 28;
/// Availability is computed over at most this many days at once.
pub const QUERY_DAYS_MAX: i64 = 62;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("a window needs at least one weekday (1 = Monday … 7 = Sunday)")]
    NoDays,
    #[error("weekday {0} is not between 1 (Monday) and 7 (Sunday)")]
    BadDay(u8),
    #[error("at most {WINDOWS_PER_SPACE_MAX} weekly windows per space")]
    TooMany,
    #[error("time '{0}' is not HH:MM (00:00 to 24:00)")]
    BadTime(String),
    #[error("local time '{0}' is not YYYY-MM-DDTHH:MM")]
    BadLocalDateTime(String),
    #[error("the range is empty: it must end after it starts")]
    Empty,
    #[error("ranges longer than {QUERY_DAYS_MAX} days are not served at once")]
    TooLong,
}

/// Weekly recurring hours, in local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeeklyWindow {
    /// ISO weekdays the window starts on: 1 = Monday … 7 = Sunday, sorted, no repeats.
    pub days: Vec<u8>,
    pub start: NaiveTime,
    /// Not after `start`: the window ends on the next day.
    pub end: NaiveTime,
}

impl WeeklyWindow {
    /// Parses `HH:MM` times; `24:00` is accepted as an end and means midnight.
    pub fn parse(days: &[u8], start: &str, end: &str) -> Result<WeeklyWindow, WindowError> {
        if days.is_empty() {
            return Err(WindowError::NoDays);
        }
        if let Some(bad) = days.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(WindowError::BadDay(*bad));
        }
        let mut days = days.to_vec();
        days.sort_unstable();
        days.dedup();
        Ok(WeeklyWindow {
            days,
            start: parse_clock(start)?,
            end: parse_clock(end)?,
        })
    }

    /// The local span this window opens on `date`, if `date` is one of its days.
    fn on(&self, date: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let weekday = u8::try_from(date.weekday().number_from_monday()).ok()?;
        if !self.days.contains(&weekday) {
            return None;
        }
        let start = date.and_time(self.start);
        let end_date = if self.end <= self.start {
            date.succ_opt()?
        } else {
            date
        };
        Some((start, end_date.and_time(self.end)))
    }
}

fn parse_clock(text: &str) -> Result<NaiveTime, WindowError> {
    if text == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| WindowError::BadTime(text.to_owned()))
}

/// The instant a local wall-clock time names in `tz` (see the module doc for DST).
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    // A skipped hour is at most two hours long in every zone; step forward past it.
    for _ in 0..=8 {
        if let Some(at) = tz.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(15);
    }
    Utc.from_utc_datetime(&local)
}

/// Parses `YYYY-MM-DDTHH:MM` (seconds optional) as a local time in `tz`.
pub fn parse_local(tz: Tz, text: &str) -> Result<DateTime<Utc>, WindowError> {
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| WindowError::BadLocalDateTime(text.to_owned()))?;
    Ok(local_instant(tz, local))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// Extra hours on top of the weekly windows.
    Open,
    /// Hours the owner needs the space; wins over windows and openings.
    Blackout,
}

impl ExceptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Open => "open",
            ExceptionKind::Blackout => "blackout",
        }
    }

    pub fn parse(text: &str) -> Option<ExceptionKind> {
        match text {
            "open" => Some(ExceptionKind::Open),
            "blackout" => Some(ExceptionKind::Blackout),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    pub kind: ExceptionKind,
    pub during: Interval,
}

/// Everything that decides when one space is open to visitors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub windows: Vec<WeeklyWindow>,
    pub exceptions: Vec<Exception>,
}

impl Schedule {
    /// The open intervals within `range`: sorted, disjoint, clipped to `range`.
    pub fn open_intervals(&self, tz: Tz, range: &Interval) -> Result<Vec<Interval>, WindowError> {
        if range.duration() > Duration::days(QUERY_DAYS_MAX) {
            return Err(WindowError::TooLong);
        }
        // A window starting the day before can run into the range.
        let first = range.start.with_timezone(&tz).date_naive().pred_opt();
        let last = range.end.with_timezone(&tz).date_naive();
        let mut open = Vec::new();
        let mut date = first.unwrap_or(last);
        while date <= last {
            for window in &self.windows {
                if let Some((from, to)) = window.on(date) {
                    let span = Interval::new(local_instant(tz, from), local_instant(tz, to));
                    open.extend(span.and_then(|s| s.clip(range)));
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        let of_kind = |kind| {
            self.exceptions
                .iter()
                .filter(move |e| e.kind == kind)
                .filter_map(|e| e.during.clip(range))
        };
        open.extend(of_kind(ExceptionKind::Open));
        Ok(interval::subtract(
            open,
            of_kind(ExceptionKind::Blackout).collect(),
        ))
    }

    /// True when the whole of `wanted` is open.
    pub fn covers(&self, tz: Tz, wanted: &Interval) -> Result<bool, WindowError> {
        Ok(interval::covered(&self.open_intervals(tz, wanted)?, wanted))
    }

    /// Whether the single instant `at` is open, decided directly from the rules (no interval
    /// arithmetic): the reference the property tests hold [`Schedule::open_intervals`] to.
    pub fn is_open_at(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let blackout = self
            .exceptions
            .iter()
            .any(|e| e.kind == ExceptionKind::Blackout && e.during.contains(at));
        if blackout {
            return false;
        }
        let opened = self
            .exceptions
            .iter()
            .any(|e| e.kind == ExceptionKind::Open && e.during.contains(at));
        let date = at.with_timezone(&tz).date_naive();
        let weekly = [date.pred_opt(), Some(date)]
            .into_iter()
            .flatten()
            .any(|d| {
                self.windows
                    .iter()
                    .filter_map(|w| w.on(d))
                    .any(|(from, to)| {
                        Interval::new(local_instant(tz, from), local_instant(tz, to))
                            .is_some_and(|span| span.contains(at))
                    })
            });
        opened || weekly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Asia::Shanghai;

    fn local(text: &str) -> DateTime<Utc> {
        parse_local(Shanghai, text).unwrap_or_default()
    }

    fn range(a: &str, b: &str) -> Interval {
        Interval::new(local(a), local(b)).unwrap_or(Interval {
            start: local(a),
            end: local(a) + Duration::seconds(1),
        })
    }

    fn weekdays_8_to_18() -> Schedule {
        Schedule {
            windows: vec![WeeklyWindow::parse(&[1, 2, 3, 4, 5], "08:00", "18:00")
                .unwrap_or_else(|e| panic!("{e}"))],
            exceptions: vec![],
        }
    }

    #[test]
    fn weekday_hours_open_in_local_time_and_not_at_weekends() {
        // 2026-11-23 is a Monday.
        let week = range("2026-11-23T00:00", "2026-11-30T00:00");
        let open = weekdays_8_to_18()
            .open_intervals(Shanghai, &week)
            .unwrap_or_default();
        assert_eq!(open.len(), 5);
        assert_eq!(open[0], range("2026-11-23T08:00", "2026-11-23T18:00"));
        // 08:00 in Shanghai is midnight UTC.
        assert_eq!(open[0].start.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(open[4], range("2026-11-27T08:00", "2026-11-27T18:00"));
    }

    #[test]
    fn an_overnight_window_runs_past_midnight_and_into_the_week() {
        let nights = Schedule {
            windows: vec![
                WeeklyWindow::parse(&[7], "22:00", "07:00").unwrap_or_else(|e| panic!("{e}"))
            ],
            exceptions: vec![],
        };
        // Sunday 22:00 → Monday 07:00 is seen from a Monday-only query.
        let monday = range("2026-11-23T00:00", "2026-11-24T00:00");
        let open = nights.open_intervals(Shanghai, &monday).unwrap_or_default();
        assert_eq!(open, vec![range("2026-11-23T00:00", "2026-11-23T07:00")]);
        assert_eq!(
            nights.covers(Shanghai, &range("2026-11-22T23:00", "2026-11-23T06:30")),
            Ok(true)
        );
        assert_eq!(
            nights.covers(Shanghai, &range("2026-11-22T23:00", "2026-11-23T07:30")),
            Ok(false)
        );
    }

    #[test]
    fn equal_start_and_end_mean_the_whole_day() {
        let all_day = Schedule {
            windows: vec![
                WeeklyWindow::parse(&[1], "00:00", "24:00").unwrap_or_else(|e| panic!("{e}"))
            ],
            exceptions: vec![],
        };
        let monday = range("2026-11-23T00:00", "2026-11-24T00:00");
        assert_eq!(all_day.open_intervals(Shanghai, &monday), Ok(vec![monday]));
    }

    #[test]
    fn blackouts_win_and_openings_add() {
        let mut schedule = weekdays_8_to_18();
        schedule.exceptions = vec![
            Exception {
                kind: ExceptionKind::Blackout,
                during: range("2026-11-24T12:00", "2026-11-24T14:00"),
            },
            Exception {
                kind: ExceptionKind::Open,
                during: range("2026-11-28T09:00", "2026-11-28T11:00"),
            },
            // An opening inside a blackout stays closed.
            Exception {
                kind: ExceptionKind::Open,
                during: range("2026-11-24T13:00", "2026-11-24T20:00"),
            },
        ];
        let tuesday = range("2026-11-24T00:00", "2026-11-25T00:00");
        assert_eq!(
            schedule.open_intervals(Shanghai, &tuesday),
            Ok(vec![
                range("2026-11-24T08:00", "2026-11-24T12:00"),
                range("2026-11-24T14:00", "2026-11-24T20:00")
            ])
        );
        assert_eq!(
            schedule.covers(Shanghai, &range("2026-11-28T09:30", "2026-11-28T10:30")),
            Ok(true)
        );
    }

    #[test]
    fn malformed_windows_are_refused_with_their_reason() {
        assert_eq!(
            WeeklyWindow::parse(&[], "08:00", "18:00"),
            Err(WindowError::NoDays)
        );
        assert_eq!(
            WeeklyWindow::parse(&[8], "08:00", "18:00"),
            Err(WindowError::BadDay(8))
        );
        assert_eq!(
            WeeklyWindow::parse(&[1], "8am", "18:00"),
            Err(WindowError::BadTime("8am".into()))
        );
        assert!(parse_local(Shanghai, "2026-13-01T08:00").is_err());
    }

    #[test]
    fn a_skipped_local_hour_moves_forward() {
        // 2026-03-08 02:30 does not exist in New York.
        let tz: Tz = chrono_tz::America::New_York;
        let at = parse_local(tz, "2026-03-08T02:30").unwrap_or_default();
        assert_eq!(at.to_rfc3339(), "2026-03-08T07:00:00+00:00");
    }
}
