//! Sync schedules: Quartz cron expressions with seconds (`sec min hour dom month dow [year]`,
//! `?` for "any", day-of-week 1 = SUN … 7 = SAT or MON-FRI names), as Elasticsearch accepts
//! them (PROTOCOL.md §5.2), and the framework's rule for when a scheduled job is due. Pure
//! functions of the times given; the caller owns the clock and the writes.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use std::fmt;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    #[error("cron expression '{expr}': {reason}")]
    Invalid { expr: String, reason: String },
}

/// A parsed Quartz cron expression.
#[derive(Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
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

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            expr: expr.to_string(),
            reason,
        };
        let fields = expr.split_whitespace().count();
        match fields {
            0 => return Err(invalid("the expression is empty".into())),
            5 => {
                return Err(invalid(
                    "5 fields given, but a seconds field is required: 'sec min hour day-of-month month \
                     day-of-week [year]', e.g. '0 0 0 * * ?'"
                        .into(),
                ));
            }
            6 | 7 => {}
            n => {
                return Err(invalid(format!(
                    "{n} fields given; expected 6 or 7 (seconds first, year optional)"
                )));
            }
        }
        if expr.contains('@') {
            return Err(invalid(
                "nicknames like '@daily' are not Quartz syntax".into(),
            ));
        }
        // Quartz weekdays (1 = SUN … 7 = SAT, names mapped the same way) and `0/5` steps.
        let parser = CronParser::builder()
            .seconds(Seconds::Required)
            .alternative_weekdays(true)
            .sloppy_ranges(true)
            .build();
        let cron = parser.parse(expr).map_err(|e| invalid(e.to_string()))?;
        Ok(Schedule {
            expr: expr.trim().to_string(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The first time strictly after `t` that the schedule fires, or `None` when it never
    /// fires again (a year in the past, or no date matching).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }
}

/// The scheduler's rule, per job type, at each tick (PROTOCOL.md §5.2): skip when another
/// worker already scheduled after the previous tick (`last_scheduled > previous_tick`);
/// otherwise the job is due when `now` has reached the schedule's first time after the
/// previous tick. Returns that time, to store as `last_*_scheduled_at`.
pub fn is_due(
    schedule: &Schedule,
    last_scheduled: Option<DateTime<Utc>>,
    previous_tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if last_scheduled.is_some_and(|last| last > previous_tick) {
        return None;
    }
    let next = schedule.next_after(previous_tick)?;
    (now >= next).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(expr: &str, t: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(expr).unwrap().next_after(t).unwrap()
    }

    #[test]
    fn midnight_every_day() {
        assert_eq!(
            next("0 0 0 * * ?", at(2024, 3, 1, 10, 0, 0)),
            at(2024, 3, 2, 0, 0, 0)
        );
        assert_eq!(
            next("0 0 0 * * ?", at(2024, 3, 2, 0, 0, 0)),
            at(2024, 3, 3, 0, 0, 0),
            "strictly after"
        );
    }

    #[test]
    fn every_five_minutes() {
        assert_eq!(
            next("0 */5 * * * ?", at(2024, 3, 1, 10, 2, 30)),
            at(2024, 3, 1, 10, 5, 0)
        );
        assert_eq!(
            next("0 0/5 * * * ?", at(2024, 3, 1, 10, 5, 0)),
            at(2024, 3, 1, 10, 10, 0),
            "Quartz 0/5 steps"
        );
    }

    #[test]
    fn quartz_weekdays_run_from_sunday_1_to_saturday_7() {
        // 2024-03-01 is a Friday.
        let friday_evening = at(2024, 3, 1, 18, 0, 0);
        let weekdays = next("0 30 9 ? * 2-6", friday_evening);
        assert_eq!(weekdays, at(2024, 3, 4, 9, 30, 0));
        assert_eq!(weekdays.weekday(), Weekday::Mon);
        assert_eq!(next("0 30 9 ? * MON-FRI", friday_evening), weekdays);
        assert_eq!(next("0 0 12 ? * 1", friday_evening).weekday(), Weekday::Sun);
        assert_eq!(next("0 0 12 ? * 7", friday_evening).weekday(), Weekday::Sat);
        assert_eq!(
            next("0 0 12 ? * SAT", friday_evening).weekday(),
            Weekday::Sat
        );
        assert_eq!(
            next("0 0 12 ? * 6", at(2024, 3, 2, 0, 0, 0)),
            at(2024, 3, 8, 12, 0, 0),
            "6 = Friday"
        );
    }

    #[test]
    fn seconds_and_year_fields() {
        assert_eq!(
            next("15 * * * * ?", at(2024, 3, 1, 10, 0, 20)),
            at(2024, 3, 1, 10, 1, 15)
        );
        assert_eq!(
            next("0 0 8 1 1 ? 2030", at(2024, 3, 1, 0, 0, 0)),
            at(2030, 1, 1, 8, 0, 0)
        );
        let past = Schedule::parse("0 0 8 1 1 ? 2020").unwrap();
        assert_eq!(past.next_after(at(2024, 3, 1, 0, 0, 0)), None);
    }

    #[test]
    fn invalid_expressions_name_the_expression_and_the_problem() {
        let err = Schedule::parse("0 0 * * *").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "cron expression '0 0 * * *': 5 fields given, but a seconds field is required"
            ),
            "{err}"
        );
        let err = Schedule::parse("").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        for bad in [
            "0 0 25 * * ?",
            "0 0 0 * * 8",
            "x 0 0 * * ?",
            "0 0 0 * * ? 2030 1",
            "0 61 * * * ?",
            "@daily",
        ] {
            let err = Schedule::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("cron expression '{bad}':")),
                "{err}"
            );
        }
    }

    #[test]
    fn due_once_the_next_time_after_the_previous_tick_has_come() {
        let every_5 = Schedule::parse("0 */5 * * * ?").unwrap();
        let previous_tick = at(2024, 3, 1, 10, 4, 50);
        assert_eq!(
            is_due(&every_5, None, previous_tick, at(2024, 3, 1, 10, 4, 59)),
            None,
            "not yet"
        );
        assert_eq!(
            is_due(&every_5, None, previous_tick, at(2024, 3, 1, 10, 5, 20)),
            Some(at(2024, 3, 1, 10, 5, 0))
        );
        let earlier = Some(at(2024, 3, 1, 10, 0, 0));
        assert_eq!(
            is_due(&every_5, earlier, previous_tick, at(2024, 3, 1, 10, 5, 20)),
            Some(at(2024, 3, 1, 10, 5, 0)),
            "an older schedule does not block"
        );
    }

    #[test]
    fn not_due_when_another_worker_scheduled_after_the_previous_tick() {
        let every_5 = Schedule::parse("0 */5 * * * ?").unwrap();
        let previous_tick = at(2024, 3, 1, 10, 4, 50);
        let by_other = Some(at(2024, 3, 1, 10, 5, 0));
        assert_eq!(
            is_due(&every_5, by_other, previous_tick, at(2024, 3, 1, 10, 5, 20)),
            None
        );
        assert_eq!(
            is_due(
                &every_5,
                Some(previous_tick),
                previous_tick,
                at(2024, 3, 1, 10, 5, 20)
            ),
            Some(at(2024, 3, 1, 10, 5, 0)),
            "equal to the previous tick is not later"
        );
    }

    #[test]
    fn a_schedule_that_never_fires_is_never_due() {
        let past = Schedule::parse("0 0 8 1 1 ? 2020").unwrap();
        assert_eq!(
            is_due(
                &past,
                None,
                at(2024, 1, 1, 0, 0, 0),
                at(2025, 1, 1, 0, 0, 0)
            ),
            None
        );
    }
}
