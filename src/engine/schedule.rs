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
//!
//! Parsing the fields and searching for the next run are croner's. This module only rewrites
//! tzcron's lax text into croner's strict syntax first ([`Field::translate`]): each item is
//! read as tzcron reads it and written back as plain numbers and `a-b/n` ranges, which mean
//! the same in both; croner is told to need day-of-month and day-of-week together and is
//! given the fixed second 0.

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
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

/// A parsed schedule: the expression as given, and croner's reading of its translation.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    /// The year field, kept to tell a schedule whose year has passed from one that never
    /// fires (croner reports both as a search that found nothing).
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

/// One field as tzcron reads it: its range and its name replacements (upper case).
struct Field {
    name: &'static str,
    min: u64,
    max: u64,
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
/// tzcron's 1 = MON … 7 = SUN is also croner's default numbering (where 7 is Sunday as 0
/// is), so weekday numbers pass through unchanged.
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
    /// The field (`*`, or comma-separated items) in croner's syntax; `None` when tzcron
    /// lets it allow every value (`*`, or only empty ranges, which tzcron leaves out).
    fn translate(&self, text: &str) -> Result<Option<String>, String> {
        if text == "*" {
            return Ok(None);
        }
        let mut items = Vec::new();
        for item in text.split(',') {
            items.extend(self.item(item)?);
        }
        Ok((!items.is_empty()).then(|| items.join(",")))
    }

    /// One item, read as tzcron reads it: `N`, `N-M` or `*`, each optionally `/STEP`, at the
    /// start of the item (a trailing `#1` or `x` is ignored); `*-N` is still `*`, `N/STEP`
    /// stays at `N`, and `N-M` with `M < N` is empty (`None`). Written back as `N` or
    /// `N-LAST/STEP` with `LAST` the last value the step reaches, because croner rejects a
    /// range that ends past the field even when no step lands there, and starts a weekday
    /// `*` at 0 (Sunday) where tzcron starts at 1.
    fn item(&self, item: &str) -> Result<Option<String>, String> {
        let mut text = item.to_ascii_uppercase();
        for (name, number) in self.names {
            text = text.replace(name, number);
        }
        let (start, end, rest) = if let Some(rest) = text.strip_prefix('*') {
            let rest = match rest.strip_prefix('-').and_then(leading_number) {
                Some((_, after)) => after,
                None => rest,
            };
            (self.min, self.max, rest)
        } else {
            let (start, rest) =
                leading_number(&text).ok_or_else(|| format!("invalid {} '{item}'", self.name))?;
            match rest.strip_prefix('-').and_then(leading_number) {
                Some((end, after)) => (start, end, after),
                None => (start, start, rest),
            }
        };
        let step = match rest.strip_prefix('/').and_then(leading_number) {
            Some((0, _)) => return Err(format!("invalid {} '{item}': a step of 0", self.name)),
            Some((step, _)) => step,
            None => 1,
        };
        if end < start {
            return Ok(None);
        }
        let last = end - (end - start) % step;
        if start < self.min || last > self.max {
            return Err(format!(
                "{} '{item}' is out of range {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(Some(match step {
            _ if start == last => start.to_string(),
            1 => format!("{start}-{last}"),
            _ => format!("{start}-{last}/{step}"),
        }))
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
/// Done here rather than with croner's Quartz numbering because only a plain number is
/// converted (and any number is, `0`, `8` and `9` included), while ranges and lists are not.
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
        // fields after the year are ignored there too. `?` means `*` in every field there.
        let fields: Vec<String> = expr.split(' ').map(|f| f.replace('?', "*")).collect();
        if fields.len() < 6 {
            return Err(invalid(format!(
                "{} fields given; expected 'sec min hour day-of-month month day-of-week [year]', \
                 e.g. '0 0 0 * * ?'",
                fields.len()
            )));
        }
        let year = match fields.get(6).map(String::as_str) {
            None | Some("" | "*") => None,
            Some(y) => {
                let year = y
                    .parse::<i32>()
                    .map_err(|_| invalid(format!("invalid year '{y}': give '*' or one year")))?;
                if !(croner::YEAR_LOWER_LIMIT..=croner::YEAR_UPPER_LIMIT).contains(&year) {
                    return Err(invalid(format!(
                        "year {year} is out of range {}-{}",
                        croner::YEAR_LOWER_LIMIT,
                        croner::YEAR_UPPER_LIMIT
                    )));
                }
                Some(year)
            }
        };
        let part = |field: &Field, text: &str| -> Result<String, ScheduleError> {
            if text.is_empty() {
                return Err(invalid(format!("the {} field is empty", field.name)));
            }
            Ok(field
                .translate(text)
                .map_err(&invalid)?
                .unwrap_or_else(|| "*".into()))
        };
        let minutes = part(&MINUTE, &fields[1])?;
        // Only in the minute field does a field of empty ranges fail there (the other
        // fields then allow every value).
        if minutes == "*" && fields[1] != "*" {
            return Err(invalid("the minute field allows no minute".into()));
        }
        let weekday = quartz_weekday(&fields[5]).map_err(&invalid)?;
        let pattern = format!(
            "0 {minutes} {} {} {} {} {}",
            part(&HOUR, &fields[2])?,
            part(&DAY_OF_MONTH, &fields[3])?,
            part(&MONTH, &fields[4])?,
            part(&DAY_OF_WEEK, &weekday)?,
            year.map_or_else(|| "*".to_string(), |y| y.to_string()),
        );
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Required)
            // tzcron (through dateutil's rrule) needs both days when both are given.
            .dom_and_dow(true)
            .build()
            .parse(&pattern)
            .map_err(|e| invalid(format!("'{pattern}': {e}")))?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            year,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The first time at or after `t`, on a whole minute, that the schedule fires (the
    /// reference's `next_run`). An error when its year has passed ([`PAST_YEAR`]) or when
    /// no date ever matches (`0 0 0 30 2 ?`).
    pub fn next_run(&self, t: DateTime<Utc>) -> Result<DateTime<Utc>, ScheduleError> {
        let error = |reason: String| ScheduleError::Invalid {
            expr: self.expr.clone(),
            reason,
        };
        // The first whole minute at or after `t`: croner would match 10:00:00 for
        // 10:00:00.5, the reference does not.
        let floor = t
            .with_second(0)
            .and_then(|m| m.with_nanosecond(0))
            .unwrap_or(t);
        let start = if floor < t {
            floor + Duration::minutes(1)
        } else {
            floor
        };
        match self.year {
            // Checked first so croner does not walk every year up to its limit to say so.
            Some(year) if year < start.year() => Err(error(PAST_YEAR.into())),
            // A schedule bound to a year that finds nothing has run out of that year.
            Some(_) => self
                .cron
                .find_next_occurrence(&start, true)
                .map_err(|_| error(PAST_YEAR.into())),
            None => self
                .cron
                .find_next_occurrence(&start, true)
                .map_err(|e| error(format!("the schedule never fires ({e})"))),
        }
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
    use chrono::TimeZone;

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
        // Rows where croner, given the text as is, would answer otherwise: it rejects a
        // range ending past the field (`61`) even when no step lands there, counts a weekday
        // `*/2` from Sunday (0) where tzcron counts from Monday (1), and reads `SUN-TUE` as
        // 0-2 where tzcron's 7-2 is empty, so every day.
        (
            "0 55-61/10 * * * ?",
            "2024-03-05T00:00:30",
            "2024-03-05T00:55:00",
        ),
        (
            "0 0 12 ? * */2",
            "2024-03-05T00:00:30",
            "2024-03-06T12:00:00",
        ),
        (
            "0 0 12 ? * SUN-TUE",
            "2024-03-06T00:00:30",
            "2024-03-06T12:00:00",
        ),
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
