//! Cron schedules of backups: five fields in UTC, and the due times they give.
//!
//! The syntax is the classic one CronJobs take: `minute hour day-of-month month day-of-week`,
//! each field `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, or a comma list of
//! those; months and weekdays also by their English three-letter names (`JAN`, `MON`), Sunday
//! as 0 or 7; and the macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily`
//! (`@midnight`) and `@hourly`. As in cron, when both day fields are restricted a day matches
//! if either does. Written here, not taken from a crate: it is a hundred lines over the `jiff`
//! the operator already has (through k8s-openapi), and the due-time queries the scheduler
//! needs ([`Schedule::latest_at_or_before`]) are not what the crates offer.

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan};

/// How far a search for a due time goes, in days: eight years covers a schedule that only
/// matches on 29 February (no leap day between 2096 and 2104).
const SEARCH_DAYS: i32 = 8 * 366 + 1;

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// Whether the day-of-month field is `*` (then only the weekday restricts the day).
    any_day: bool,
    /// Whether the day-of-week field is `*`.
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    /// Parses a schedule; the error says which field is wrong and why.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!(
                "{text:?} has {} fields; a schedule has five (minute hour day-of-month month day-of-week) or is a macro such as @daily",
                fields.len()
            ));
        };
        let weekdays = field("day-of-week", weekday, 0, 7, &WEEKDAYS)?;
        Ok(Schedule {
            minutes: field("minute", minute, 0, 59, &[])?,
            hours: field("hour", hour, 0, 23, &[])? as u32,
            days: field("day-of-month", day, 1, 31, &[])? as u32,
            months: field("month", month, 1, 12, &MONTHS)? as u16,
            // 7 is Sunday too.
            weekdays: ((weekdays | (weekdays >> 7)) & 0x7f) as u8,
            any_day: day.starts_with('*'),
            any_weekday: weekday.starts_with('*'),
        })
    }

    /// The latest due time at or before `t` (whole minutes, UTC), if there is one in the last
    /// eight years.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let now = minute_of(t);
        let mut date = now.date();
        for day in 0..SEARCH_DAYS {
            if self.on(date) {
                let last_hour = if day == 0 { now.hour() } else { 23 };
                for hour in (0..=last_hour).rev().filter(|h| self.hours & (1 << h) != 0) {
                    let last_minute = if day == 0 && hour == now.hour() {
                        now.minute()
                    } else {
                        59
                    };
                    if let Some(minute) = (0..=last_minute)
                        .rev()
                        .find(|m| self.minutes & (1 << m) != 0)
                    {
                        return utc(date, hour, minute);
                    }
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    /// The first due time strictly after `t` (whole minutes, UTC), if there is one in the next
    /// eight years.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let start = minute_of(t).checked_add(1.minute()).ok()?;
        let mut date = start.date();
        for day in 0..SEARCH_DAYS {
            if self.on(date) {
                let first_hour = if day == 0 { start.hour() } else { 0 };
                for hour in (first_hour..24).filter(|h| self.hours & (1 << h) != 0) {
                    let first_minute = if day == 0 && hour == start.hour() {
                        start.minute()
                    } else {
                        0
                    };
                    if let Some(minute) = (first_minute..60).find(|m| self.minutes & (1 << m) != 0)
                    {
                        return utc(date, hour, minute);
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// Whether the schedule runs on `date` (its month, and its day of month or of week).
    fn on(&self, date: Date) -> bool {
        let month = self.months & (1 << date.month()) != 0;
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        let day = if self.any_day || self.any_weekday {
            day && weekday
        } else {
            day || weekday
        };
        month && day
    }
}

/// `t` cut to its minute, as a UTC date and time.
fn minute_of(t: Timestamp) -> DateTime {
    let dt = t.to_zoned(TimeZone::UTC).datetime();
    dt.date().at(dt.hour(), dt.minute(), 0, 0)
}

/// `date` at `hour:minute` UTC.
fn utc(date: Date, hour: i8, minute: i8) -> Option<Timestamp> {
    date.at(hour, minute, 0, 0)
        .to_zoned(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// One field as a bit set of the values it allows (bit `v` for value `v`), from `lo` to `hi`;
/// `names[i]` stands for the value `i` (`lo` is 1 for months: `names[0]` is January).
fn field(what: &str, text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let bad = |why: String| format!("{what} field {text:?}: {why}");
    let value = |s: &str| -> Result<u32, String> {
        let named = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| i as u32 + if lo == 1 { 1 } else { 0 });
        let v = match named {
            Some(v) => v,
            None => s
                .parse::<u32>()
                .map_err(|_| bad(format!("{s:?} is not a number")))?,
        };
        if !(lo..=hi).contains(&v) {
            return Err(bad(format!("{v} is outside {lo}-{hi}")));
        }
        Ok(v)
    };
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| bad(format!("step {step:?} is not a number")))?;
                if step == 0 {
                    return Err(bad("a step must be at least 1".into()));
                }
                (range, Some(step))
            }
            None => (item, None),
        };
        let (first, last) = match range {
            "*" => (lo, hi),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `a/n` runs from a to the end of the range, as in cron.
                None if step.is_some() => (value(range)?, hi),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if first > last {
            return Err(bad(format!("the range {first}-{last} is backwards")));
        }
        for v in (first..=last).step_by(step.unwrap_or(1) as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn schedule(s: &str) -> Schedule {
        Schedule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn daily_at_three() {
        let s = schedule("0 3 * * *");
        let now = at("2025-03-10T12:34:56Z");
        assert_eq!(s.latest_at_or_before(now), Some(at("2025-03-10T03:00:00Z")));
        assert_eq!(s.next_after(now), Some(at("2025-03-11T03:00:00Z")));
        // A due time is due at its own minute, and the next one is strictly later.
        let due = at("2025-03-10T03:00:00Z");
        assert_eq!(s.latest_at_or_before(due), Some(due));
        assert_eq!(s.latest_at_or_before(at("2025-03-10T03:00:59Z")), Some(due));
        assert_eq!(s.next_after(due), Some(at("2025-03-11T03:00:00Z")));
        assert_eq!(
            s.latest_at_or_before(at("2025-03-10T02:59:59Z")),
            Some(at("2025-03-09T03:00:00Z"))
        );
    }

    #[test]
    fn steps_ranges_and_lists() {
        let s = schedule("*/15 9-17 * * 1-5");
        // Friday 17:50 → Friday 17:45; next: Monday 09:00.
        let friday = at("2025-03-14T17:50:00Z");
        assert_eq!(
            s.latest_at_or_before(friday),
            Some(at("2025-03-14T17:45:00Z"))
        );
        assert_eq!(s.next_after(friday), Some(at("2025-03-17T09:00:00Z")));
        // Sunday: the latest is Friday's last.
        assert_eq!(
            s.latest_at_or_before(at("2025-03-16T12:00:00Z")),
            Some(at("2025-03-14T17:45:00Z"))
        );
        let s = schedule("5,35 0/12 * * *");
        assert_eq!(
            s.next_after(at("2025-01-01T00:05:00Z")),
            Some(at("2025-01-01T00:35:00Z"))
        );
        assert_eq!(
            s.next_after(at("2025-01-01T00:35:00Z")),
            Some(at("2025-01-01T12:05:00Z"))
        );
        let s = schedule("0 0 1-10/3 * *");
        assert_eq!(
            s.next_after(at("2025-01-02T00:00:00Z")),
            Some(at("2025-01-04T00:00:00Z"))
        );
    }

    #[test]
    fn names_macros_and_sunday_as_seven() {
        assert_eq!(schedule("0 0 * JAN-mar SUN"), schedule("0 0 * 1-3 7"));
        assert_eq!(schedule("0 0 * * 0"), schedule("0 0 * * 7"));
        assert_eq!(schedule("@daily"), schedule("0 0 * * *"));
        assert_eq!(schedule("@weekly"), schedule("0 0 * * SUN"));
        assert_eq!(
            schedule("@hourly").next_after(at("2025-06-01T10:00:00Z")),
            Some(at("2025-06-01T11:00:00Z"))
        );
        assert_eq!(
            schedule("@yearly").latest_at_or_before(at("2025-06-01T10:00:00Z")),
            Some(at("2025-01-01T00:00:00Z"))
        );
        assert_eq!(
            schedule("@monthly").next_after(at("2025-12-15T00:00:00Z")),
            Some(at("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 13th, or any Friday.
        let s = schedule("0 0 13 * 5");
        // 2025-03-13 is a Thursday, 2025-03-14 a Friday.
        assert_eq!(
            s.next_after(at("2025-03-12T00:00:00Z")),
            Some(at("2025-03-13T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2025-03-13T00:00:00Z")),
            Some(at("2025-03-14T00:00:00Z"))
        );
        // With the day of month left `*`, only Fridays.
        let s = schedule("0 0 * * 5");
        assert_eq!(
            s.next_after(at("2025-03-12T00:00:00Z")),
            Some(at("2025-03-14T00:00:00Z"))
        );
    }

    #[test]
    fn rare_schedules_are_found_across_years() {
        let leap = schedule("0 0 29 2 *");
        assert_eq!(
            leap.next_after(at("2025-03-01T00:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
        assert_eq!(
            leap.latest_at_or_before(at("2028-02-28T00:00:00Z")),
            Some(at("2024-02-29T00:00:00Z"))
        );
        // A day that no month has never comes.
        let never = schedule("0 0 31 2 *");
        assert_eq!(never.next_after(at("2025-01-01T00:00:00Z")), None);
        assert_eq!(never.latest_at_or_before(at("2025-01-01T00:00:00Z")), None);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (text, complaint) in [
            ("* * * *", "five"),
            ("* * * * * *", "five"),
            ("60 * * * *", "minute field"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day-of-month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day-of-week field"),
            ("*/0 * * * *", "at least 1"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "not a number"),
            ("@often", "fields"),
            ("1,,2 * * * *", "not a number"),
        ] {
            let err = Schedule::parse(text).expect_err(text);
            assert!(err.contains(complaint), "{text}: {err}");
        }
    }
}
