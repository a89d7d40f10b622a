//! Validation of Quartz cron expressions as ES's `Cron` class accepts them: 6 or 7 fields
//! (`sec min hour day-of-month month day-of-week [year]`), `*`, `?`, lists, ranges, steps, month
//! and weekday names, `L`, `W`, `#`; exactly one of day-of-month / day-of-week must be `?`.
//! Only validation: the stand-in never schedules anything.

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [FieldSpec; 7] = [
    FieldSpec {
        name: "seconds",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    FieldSpec {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: DAYS,
    },
    FieldSpec {
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
    },
];

const DOM: usize = 3;
const DOW: usize = 5;

fn value(spec: &FieldSpec, s: &str) -> Result<u32, String> {
    if let Some(pos) = spec.names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(spec.min + pos as u32);
    }
    let v: u32 = s
        .parse()
        .map_err(|_| format!("invalid {} value [{s}]", spec.name))?;
    if v < spec.min || v > spec.max {
        return Err(format!(
            "{} value [{v}] out of range [{}-{}]",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(v)
}

fn item(i: usize, spec: &FieldSpec, s: &str) -> Result<(), String> {
    let upper = s.to_ascii_uppercase();
    // Day-of-month specials: L, LW, L-n, nW.
    if i == DOM {
        if upper == "L" || upper == "LW" {
            return Ok(());
        }
        if let Some(off) = upper.strip_prefix("L-") {
            return off
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 30)
                .map(|_| ())
                .ok_or_else(|| format!("invalid day-of-month offset [{s}]"));
        }
        if let Some(day) = upper.strip_suffix('W') {
            return value(spec, day).map(|_| ());
        }
    }
    // Day-of-week specials: L, nL, n#k.
    if i == DOW {
        if upper == "L" {
            return Ok(());
        }
        if let Some(day) = upper.strip_suffix('L') {
            return value(spec, day).map(|_| ());
        }
        if let Some((day, nth)) = upper.split_once('#') {
            value(spec, day)?;
            return match nth.parse::<u32>() {
                Ok(1..=5) => Ok(()),
                _ => Err(format!(
                    "a numeric value between 1 and 5 must follow the '#' option [{s}]"
                )),
            };
        }
    }
    let (range, step) = match upper.split_once('/') {
        Some((r, st)) => (r, Some(st)),
        None => (upper.as_str(), None),
    };
    if let Some(st) = step {
        match st.parse::<u32>() {
            Ok(n) if n > 0 && n <= spec.max.max(1) => {}
            _ => return Err(format!("invalid increment [{st}] in {} field", spec.name)),
        }
    }
    if range == "*" {
        return Ok(());
    }
    if range == "?" {
        return if i == DOM || i == DOW {
            Ok(())
        } else {
            Err(format!(
                "'?' can only be specified for Day-of-Month or Day-of-Week, not {}",
                spec.name
            ))
        };
    }
    match range.split_once('-') {
        Some((a, b)) => {
            value(spec, a)?;
            value(spec, b)?;
        }
        None => {
            value(spec, range)?;
        }
    }
    Ok(())
}

pub(crate) fn validate(expr: &str) -> Result<(), String> {
    let parts: Vec<&str> = expr.split_whitespace().collect();
    if parts.len() < 6 || parts.len() > 7 {
        return Err(format!(
            "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), found {}",
            parts.len()
        ));
    }
    for (i, part) in parts.iter().enumerate() {
        for it in part.split(',') {
            if it.is_empty() {
                return Err(format!("empty list item in {} field", FIELDS[i].name));
            }
            item(i, &FIELDS[i], it)?;
        }
    }
    let (dom_q, dow_q) = (parts[DOM] == "?", parts[DOW] == "?");
    if dom_q && dow_q {
        return Err("'?' can only be specified for Day-of-Month -OR- Day-of-Week".to_owned());
    }
    if !dom_q && !dow_q {
        return Err(
            "support for specifying both a day-of-week AND a day-of-month parameter is not implemented".to_owned(),
        );
    }
    Ok(())
}
