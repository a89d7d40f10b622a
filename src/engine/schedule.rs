//! Sync schedules with the meaning Elastic's Python connectors service gives them (its
//! `utils.next_run` over the `tzcron` library), so a schedule set in Kibana fires at the same
//! minute whichever service runs it, and the scheduler's rule for when a job is due. Pure
//! functions of the times given; the caller owns the clock and the writes.
//!
//! The expression is Quartz-shaped (`sec min hour day-of-month month day-of-week [year]`) but
//! read as that service reads it:
//! - the seconds field is ignored: a schedule fires at second 0 of its minute;
//! - a day-of-week that is a plain number is Quartz's (1 = SUN … 7 = SAT) and converted;
//!   anything else (`2-6`, `1,7`, `MON-FRI`) keeps tzcron's meaning, 1 = MON … 7 = SUN, so
//!   `2-6` is Tuesday to Saturday there and here;
//! - `?` means `*`; the year is optional, `*` or one year;
//! - day-of-month and day-of-week must both match when both are given;
//! - `a/n` steps from `a` up to `a` only (`0/5` is minute 0), while `*/n` steps over the whole
//!   range; `L`, `W` and `#` are not understood (`2#1` reads as `2`, `L` is an error);
//! - the next run is the first whole minute at or after the given time.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("cron expression '{expr}': {reason}")]
    Invalid { expr: String, reason: String },
}

/// The error of a schedule whose year has passed, word for word as the Python service
/// reports it on the connector.
pub const PAST_YEAR: &str = "Valid time already past";

/// How far ahead a schedule is searched: 400 years hold every calendar (leap days on a given
/// weekday included), so a schedule with no match in them never fires.
const SEARCH_YEARS: i32 = 400;

/// A parsed schedule. Each field is a set of allowed values; an empty set allows every value.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    /// Bit `m` for minute `m` (0–59); never empty.
    minutes: u64,
    /// Bit `h` for hour `h` (0–23).
    hours: u32,
    /// Bit `d` for day of month `d` (1–31).
    days: u32,
    /// Bit `m` for month `m` (1–12).
    months: u16,
    /// Bit `d` for weekday `d`, 0 = Monday … 6 = Sunday.
    weekdays: u8,
    year: Option<i32>,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expr).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// One field's grammar: its range and its name replacements (upper case).
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [(&'static str, &'static str)],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        ("JAN", "1"),
        ("FEB", "2"),
        ("MAR", "3"),
        ("APR", "4"),
        ("MAY", "5"),
        ("JUN", "6"),
        ("JUL", "7"),
        ("AUG", "8"),
        ("SEP", "9"),
        ("OCT", "10"),
        ("NOV", "11"),
        ("DEC", "12"),
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 1,
    max: 7,
    names: &[
        ("MON", "1"),
        ("TUE", "2"),
        ("WED", "3"),
        ("THU", "4"),
        ("FRI", "5"),
        ("SAT", "6"),
        ("SUN", "7"),
    ],
};

impl Field {
    /// The values of a field (`*`, or comma-separated items), as a bit set; `None` for `*`.
    fn parse(&self, text: &str) -> Result<Option<u64>, String> {
        if text == "*" {
            return Ok(None);
        }
        let mut bits = 0u64;
        for item in text.split(',') {
            for value in self.item(item)? {
                bits |= 1 << value;
            }
        }
        Ok(Some(bits))
    }

    /// One item: `N`, `N-M`, `*`, each optionally `/STEP`. Like the reference, the item
    /// only has to start with that (a trailing `#1` or `x` is ignored), `N/STEP` stays at
    /// `N`, and `N-M` with `M < N` is empty.
    fn item(&self, item: &str) -> Result<Vec<u32>, String> {
        let mut text = item.to_ascii_uppercase();
        for (name, number) in self.names {
            text = text.replace(name, number);
        }
        let mut rest = text.as_str();
        let (start, end) = if let Some(after) = rest.strip_prefix('*') {
            rest = after;
            // `*-N` still means the whole range.
            if let Some(after) = rest.strip_prefix('-')
                && let Some((_, after)) = leading_number(after)
            {
                rest = after;
            }
            (u64::from(self.min), u64::from(self.max))
        } else {
            let Some((start, after)) = leading_number(rest) else {
                return Err(format!("invalid {} '{item}'", self.name));
            };
            rest = after;
            let end = match rest.strip_prefix('-').and_then(leading_number) {
                Some((end, after)) => {
                    rest = after;
                    end
                }
                None => start,
            };
            (start, end)
        };
        let step = match rest.strip_prefix('/').and_then(leading_number) {
            Some((0, _)) => return Err(format!("invalid {} '{item}': a step of 0", self.name)),
            Some((step, _)) => step,
            None => 1,
        };
        let mut values = Vec::new();
        let mut value = start;
        while value <= end {
            if value < u64::from(self.min) || value > u64::from(self.max) {
                return Err(format!(
                    "{} '{item}' is out of range {}-{}",
                    self.name, self.min, self.max
                ));
            }
            values.push(value as u32);
            match value.checked_add(step) {
                Some(next) => value = next,
                None => break,
            }
        }
        Ok(values)
    }
}

/// The digits at the start of `text` as a number, and what follows them.
fn leading_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let value = text[..digits].parse().ok()?;
    Some((value, &text[digits..]))
}

/// A day-of-week written as a plain number is Quartz's (1 = SUN); tzcron counts from Monday.
fn quartz_weekday(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.to_string());
    }
    let day: u64 = text
        .parse()
        .map_err(|_| format!("invalid day-of-week '{text}'"))?;
    Ok(((day + 5) % 7 + 1).to_string())
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            expr: expr.to_string(),
            reason,
        };
        if expr.trim().is_empty() {
            return Err(invalid("the expression is empty".into()));
        }
        // Split on single spaces as the reference does (two spaces make an empty field);
        // fields after the year are ignored there too.
        let fields: Vec<&str> = expr.split(' ').collect();
        if fields.len() < 6 {
            return Err(invalid(format!(
                "{} fields given; expected 'sec min hour day-of-month month day-of-week [year]', \
                 e.g. '0 0 0 * * ?'",
                fields.len()
            )));
        }
        let any = |text: &str| text.replace('?', "*");
        let weekday = quartz_weekday(fields[5]).map_err(&invalid)?;
        let year = match fields.get(6).map(|y| any(y)) {
            None => None,
            Some(y) if y.is_empty() || y == "*" => None,
            Some(y) => Some(
                y.parse::<i32>()
                    .map_err(|_| invalid(format!("invalid year '{y}': give '*' or one year")))?,
            ),
        };
        let set = |field: &Field, text: &str| -> Result<u64, ScheduleError> {
            if text.is_empty() {
                return Err(invalid(format!("the {} field is empty", field.name)));
            }
            Ok(field.parse(&any(text)).map_err(&invalid)?.unwrap_or(0))
        };
        let minutes = match set(&MINUTE, fields[1])? {
            0 if any(fields[1]) != "*" => {
                return Err(invalid("the minute field allows no minute".into()));
            }
            0 => u64::MAX >> 4,
            bits => bits,
        };
        Ok(Schedule {
            expr: expr.to_string(),
            minutes,
            hours: set(&HOUR, fields[2])? as u32,
            days: set(&DAY_OF_MONTH, fields[3])? as u32,
            months: set(&MONTH, fields[4])? as u16,
            // tzcron's 1 = MON … 7 = SUN, to bit 0 = Monday.
            weekdays: (set(&DAY_OF_WEEK, &weekday)? >> 1) as u8,
            year,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.expr
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let allows = |bits: u64, value: u32| bits == 0 || bits & (1 << value) != 0;
        allows(u64::from(self.months), date.month())
            && allows(u64::from(self.days), date.day())
            && allows(
                u64::from(self.weekdays),
                date.weekday().num_days_from_monday(),
            )
    }

    /// The first time at or after `t`, on a whole minute, that the schedule fires (the
    /// reference's `next_run`). An error when its year has passed ([`PAST_YEAR`]) or when
    /// no date ever matches (`0 0 0 30 2 ?`).
    pub fn next_run(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let error = |reason: &str| ScheduleError::Invalid {
            expr: self.expr.clone(),
            reason: reason.to_string(),
        };
        // The first whole minute at or after `t`.
        let floor = t
            .with_second(0)
            .and_then(|m| m.with_nanosecond(0))
            .unwrap_or(t);
        let start = if floor < t {
            floor + Duration::minutes(1)
        } else {
            floor
        };
        let mut date = start.date_naive();
        let last_year = start.year() + SEARCH_YEARS;
        while date.year() <= last_year {
            if let Some(year) = self.year {
                if date.year() > year {
                    return Err(error(PAST_YEAR));
                }
                if date.year() < year {
                    date = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| error(PAST_YEAR))?;
                    continue;
                }
            }
            if self.day_matches(date) {
                let first_day = date == start.date_naive();
                for hour in 0..24u32 {
                    if self.hours != 0 && self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    if first_day && hour < start.hour() {
                        continue;
                    }
                    for minute in 0..60u32 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        if first_day && hour == start.hour() && minute < start.minute() {
                            continue;
                        }
                        if let Some(at) = date.and_hms_opt(hour, minute, 0) {
                            return Ok(Utc.from_utc_datetime(&at));
                        }
                    }
                }
            }
            date = date
                .succ_opt()
                .ok_or_else(|| error("the schedule never fires"))?;
        }
        Err(error("the schedule never fires"))
    }
}

/// The scheduler's rule, per job type, at each tick (the Python service's `_should_schedule`):
/// skip when another worker already scheduled after the previous tick (`last_scheduled >
/// previous_tick`); otherwise the job is due when `now` has reached the schedule's next run
/// at or after the previous tick. Returns that time, to store as `last_*_scheduled_at`; an
/// error when the schedule cannot run (it then goes on the connector).
pub fn is_due(
    schedule: &Schedule,
    last_scheduled: Option<DateTime<Utc>>,
    previous_tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    if last_scheduled.is_some_and(|last| last > previous_tick) {
        return Ok(None);
    }
    let next = schedule.next_run(previous_tick)?;
    Ok((now >= next).then_some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_time(text: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        Utc.from_utc_datetime(&naive)
    }

    /// `(expression, now, what the Python service's next_run answers)`: computed with the
    /// reference itself (the connectors service's `utils.next_run` over tzcron 1.0.0), and
    /// checked by hand against a calendar (2024-03-01 is a Friday). `ERR` rows fail there.
    const REFERENCE: &[(&str, &str, &str)] = &[
        ("0 0 0 * * ?", "2024-03-01T10:00:00", "2024-03-02T00:00:00"),
        ("0 0 0 * * ?", "2024-03-02T00:00:00", "2024-03-02T00:00:00"),
        (
            "0 0 0 * * ?",
            "2024-03-02T00:00:00.5",
            "2024-03-03T00:00:00",
        ),
        (
            "0 */5 * * * ?",
            "2024-03-01T10:02:30",
            "2024-03-01T10:05:00",
        ),
        // `0/5` is minute 0 only there, not Quartz's every five minutes.
        (
            "0 0/5 * * * ?",
            "2024-03-01T10:02:30",
            "2024-03-01T11:00:00",
        ),
        (
            "0 5/15 * * * ?",
            "2024-03-01T10:02:30",
            "2024-03-01T10:05:00",
        ),
        (
            "0 */7 * * * ?",
            "2024-03-05T00:00:30",
            "2024-03-05T00:07:00",
        ),
        // A range of weekdays keeps tzcron's 1 = MON: `2-6` is Tuesday to Saturday.
        (
            "0 30 9 ? * 2-6",
            "2024-03-01T18:00:00",
            "2024-03-02T09:30:00",
        ),
        (
            "0 0 12 ? * 2-6",
            "2024-03-05T00:00:30",
            "2024-03-05T12:00:00",
        ),
        (
            "0 30 9 ? * MON-FRI",
            "2024-03-01T18:00:00",
            "2024-03-04T09:30:00",
        ),
        // A single number is Quartz's 1 = SUN … 7 = SAT.
        ("0 0 12 ? * 1", "2024-03-01T18:00:00", "2024-03-03T12:00:00"),
        ("0 0 12 ? * 7", "2024-03-01T18:00:00", "2024-03-02T12:00:00"),
        ("0 0 12 ? * 2", "2024-03-01T18:00:00", "2024-03-04T12:00:00"),
        ("0 0 12 ? * 0", "2024-03-01T18:00:00", "2024-03-02T12:00:00"),
        ("0 0 0 * * 07", "2024-03-05T00:00:30", "2024-03-09T00:00:00"),
        ("0 0 0 * * 8", "2024-03-05T00:00:30", "2024-03-10T00:00:00"),
        ("0 0 0 * * 9", "2024-03-05T00:00:30", "2024-03-11T00:00:00"),
        (
            "0 0 12 ? * SUN",
            "2024-03-01T18:00:00",
            "2024-03-03T12:00:00",
        ),
        (
            "0 0 12 ? * mon",
            "2024-03-05T00:00:30",
            "2024-03-11T12:00:00",
        ),
        // A list is not a plain number: 1 = MON, 7 = SUN.
        (
            "0 0 12 ? * 1,7",
            "2024-03-01T18:00:00",
            "2024-03-03T12:00:00",
        ),
        (
            "0 0 0 * * 2#1",
            "2024-03-05T00:00:00",
            "2024-03-05T00:00:00",
        ),
        // The seconds field is ignored.
        ("15 * * * * ?", "2024-03-01T10:00:20", "2024-03-01T10:01:00"),
        (
            "45 10 8 * * ?",
            "2024-03-01T08:10:00",
            "2024-03-01T08:10:00",
        ),
        ("x 0 0 * * ?", "2024-03-05T00:00:00", "2024-03-05T00:00:00"),
        // Day of month and day of week must both match.
        (
            "0 0 12 13 * 6",
            "2024-03-01T00:00:00",
            "2024-09-13T12:00:00",
        ),
        (
            "0 0 12 13 * FRI",
            "2024-03-01T00:00:00",
            "2024-09-13T12:00:00",
        ),
        (
            "0 0 0 1 JAN-MAR ?",
            "2024-03-05T00:00:00",
            "2025-01-01T00:00:00",
        ),
        (
            "0 0 0 ? JUNE ?",
            "2024-03-05T00:00:30",
            "2024-06-01T00:00:00",
        ),
        ("0 0 12 ? 2 ?", "2024-03-05T00:00:30", "2025-02-01T12:00:00"),
        (
            "0 1-3,30 */6 * * ?",
            "2024-03-05T05:59:00",
            "2024-03-05T06:01:00",
        ),
        (
            "0 10x * * * ?",
            "2024-03-05T00:00:30",
            "2024-03-05T00:10:00",
        ),
        ("0 0 0 29 2 ?", "2024-03-05T00:00:00", "2028-02-29T00:00:00"),
        (
            "0 0 0 31 4,5 ?",
            "2024-03-05T00:00:30",
            "2024-05-31T00:00:00",
        ),
        // An empty range allows every value, except in the minute field.
        (
            "0 0 12 ? * 3-1",
            "2024-03-05T00:00:00",
            "2024-03-05T12:00:00",
        ),
        (
            "0 0 5-1 * * ?",
            "2024-03-05T00:00:30",
            "2024-03-05T01:00:00",
        ),
        (
            "0 0 0 5-1 * ?",
            "2024-03-05T00:00:30",
            "2024-03-06T00:00:00",
        ),
        (
            "0 0,5-1 * * * ?",
            "2024-03-05T00:00:30",
            "2024-03-05T01:00:00",
        ),
        ("0 5-1 * * * ?", "2024-03-05T00:00:30", "ERR"),
        // The year.
        (
            "0 0 8 1 1 ? 2030",
            "2024-03-01T00:00:00",
            "2030-01-01T08:00:00",
        ),
        (
            "0 0 0 * * ? 2024",
            "2024-03-05T00:00:30",
            "2024-03-06T00:00:00",
        ),
        (
            "0 0 0 * * ? ?",
            "2024-03-05T00:00:30",
            "2024-03-06T00:00:00",
        ),
        (
            "0 0 0 * * ? * extra",
            "2024-03-05T00:00:30",
            "2024-03-06T00:00:00",
        ),
        ("0 0 8 1 1 ? 2020", "2024-03-01T00:00:00", "ERR"),
        ("0 0 0 29 2 ? 2025", "2024-03-05T00:00:30", "ERR"),
        ("0 0 0 * * ? 2024-2025", "2024-03-05T00:00:30", "ERR"),
        // Never, or not understood.
        ("0 0 0 30 2 ?", "2024-03-05T00:00:30", "ERR"),
        ("0 0 0 L * ?", "2024-03-05T00:00:00", "ERR"),
        ("0 61 * * * ?", "2024-03-05T00:00:00", "ERR"),
        ("0 0 25 * * ?", "2024-03-05T00:00:00", "ERR"),
        ("0 0 * * *", "2024-03-05T00:00:00", "ERR"),
        ("0 */0 * * * ?", "2024-03-05T00:00:30", "ERR"),
        ("0  0 * * * ?", "2024-03-05T00:00:30", "ERR"),
    ];

    #[test]
    fn next_run_is_the_python_services() {
        let mut wrong = Vec::new();
        for (expr, now, expected) in REFERENCE {
            let got = Schedule::parse(expr).and_then(|s| s.next_run(parse_time(now)));
            let got = match got {
                Ok(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                Err(_) => "ERR".to_string(),
            };
            if got != *expected {
                wrong.push(format!("{expr:?} at {now}: {got}, expected {expected}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn invalid_expressions_name_the_expression_and_the_problem() {
        let err = Schedule::parse("0 0 * * *").unwrap_err().to_string();
        assert!(
            err.starts_with("cron expression '0 0 * * *': 5 fields given"),
            "{err}"
        );
        assert!(
            Schedule::parse("")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let err = Schedule::parse("0 61 * * * ?").unwrap_err().to_string();
        assert!(err.contains("minute '61' is out of range 0-59"), "{err}");
        let past = Schedule::parse("0 0 8 1 1 ? 2020").unwrap();
        let err = past
            .next_run(parse_time("2024-03-01T00:00:00"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with(PAST_YEAR), "{err}");
    }

    #[test]
    fn due_once_the_next_run_after_the_previous_tick_has_come() {
        let every_5 = Schedule::parse("0 */5 * * * ?").unwrap();
        let previous_tick = parse_time("2024-03-01T10:04:50");
        assert_eq!(
            is_due(
                &every_5,
                None,
                previous_tick,
                parse_time("2024-03-01T10:04:59")
            ),
            Ok(None),
            "not yet"
        );
        assert_eq!(
            is_due(
                &every_5,
                None,
                previous_tick,
                parse_time("2024-03-01T10:05:20")
            ),
            Ok(Some(parse_time("2024-03-01T10:05:00")))
        );
        let earlier = Some(parse_time("2024-03-01T10:00:00"));
        assert_eq!(
            is_due(
                &every_5,
                earlier,
                previous_tick,
                parse_time("2024-03-01T10:05:20")
            ),
            Ok(Some(parse_time("2024-03-01T10:05:00"))),
            "an older schedule does not block"
        );
    }

    #[test]
    fn not_due_when_another_worker_scheduled_after_the_previous_tick() {
        let every_5 = Schedule::parse("0 */5 * * * ?").unwrap();
        let previous_tick = parse_time("2024-03-01T10:04:50");
        let by_other = Some(parse_time("2024-03-01T10:05:00"));
        assert_eq!(
            is_due(
                &every_5,
                by_other,
                previous_tick,
                parse_time("2024-03-01T10:05:20")
            ),
            Ok(None)
        );
        assert_eq!(
            is_due(
                &every_5,
                Some(previous_tick),
                previous_tick,
                parse_time("2024-03-01T10:05:20")
            ),
            Ok(Some(parse_time("2024-03-01T10:05:00"))),
            "equal to the previous tick is not later"
        );
    }

    #[test]
    fn a_schedule_whose_year_has_passed_is_an_error_once_due_is_asked() {
        let past = Schedule::parse("0 0 8 1 1 ? 2020").unwrap();
        let previous = parse_time("2024-01-01T00:00:00");
        assert!(is_due(&past, None, previous, parse_time("2025-01-01T00:00:00")).is_err());
        // Another worker's mark after the previous tick answers first, as in the reference.
        let later = Some(parse_time("2024-06-01T00:00:00"));
        assert_eq!(
            is_due(&past, later, previous, parse_time("2025-01-01T00:00:00")),
            Ok(None)
        );
    }
}
