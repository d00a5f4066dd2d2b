//! Schedule expressions: `rate(value unit)` and six-field `cron(...)`, validated as AWS does
//! and evaluated to the next fire time (UTC).
//!
//! cron fields: minutes hours day-of-month month day-of-week year. One of day-of-month and
//! day-of-week must be `?`. Supported: `*`, `?`, lists, ranges, `/` steps, names (JAN, MON),
//! `L` (last day of month; `nL` last weekday n of month), `W` (nearest weekday), `#` (nth
//! weekday). Day-of-week is 1-7 with 1 = Sunday, as on AWS.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};

#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Rate(Duration),
    Cron(Box<Cron>),
}

/// AWS's answer for any malformed expression.
pub const INVALID: &str = "Parameter ScheduleExpression is not valid.";

impl Schedule {
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        let expr = expr.trim();
        if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
            let mut parts = inner.split_whitespace();
            let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(INVALID.into());
            };
            let n: i64 = n.parse().map_err(|_| INVALID.to_string())?;
            if n <= 0 {
                return Err(INVALID.into());
            }
            let singular = n == 1;
            let d = match (unit, singular) {
                ("minute", true) | ("minutes", false) => Duration::minutes(n),
                ("hour", true) | ("hours", false) => Duration::hours(n),
                ("day", true) | ("days", false) => Duration::days(n),
                _ => return Err(INVALID.into()),
            };
            return Ok(Schedule::Rate(d));
        }
        if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
            return Cron::parse(inner)
                .map(|c| Schedule::Cron(Box::new(c)))
                .ok_or_else(|| INVALID.to_string());
        }
        Err(INVALID.into())
    }

    /// The first fire time strictly after `after`. Rates count from `anchor` (the rule's
    /// creation), crons from the clock.
    pub fn next_after(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate(d) => {
                let period = d.num_milliseconds().max(1);
                let elapsed = (after - anchor).num_milliseconds();
                let n = if elapsed < 0 { 1 } else { elapsed / period + 1 };
                Some(anchor + Duration::milliseconds(n * period))
            }
            Schedule::Cron(c) => c.next_after(after),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    dom: DayOfMonth,
    months: Vec<bool>,
    dow: DayOfWeek,
    years: Vec<bool>,
}

#[derive(Clone, Debug, PartialEq)]
enum DayOfMonth {
    Any,
    Days(Vec<bool>),
    Last,
    NearestWeekday(u32),
}

#[derive(Clone, Debug, PartialEq)]
enum DayOfWeek {
    Any,
    Days(Vec<bool>),
    /// Last given weekday of the month (1 = Sunday).
    Last(u32),
    /// The nth given weekday of the month.
    Nth(u32, u32),
}

const YEAR_MIN: u32 = 1970;
const YEAR_MAX: u32 = 2199;

fn names(field: usize) -> &'static [&'static str] {
    match field {
        3 => &[
            "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
        ],
        4 => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
        _ => &[],
    }
}

/// Parses a numeric or named value of a field.
fn value(s: &str, field: usize, lo: u32, hi: u32) -> Option<u32> {
    let v = match s.parse::<u32>() {
        Ok(v) => v,
        Err(_) => {
            names(field)
                .iter()
                .position(|n| n.eq_ignore_ascii_case(s))? as u32
                + lo
        }
    };
    (lo..=hi).contains(&v).then_some(v)
}

/// A set-valued field: `*`, lists of values, ranges and steps.
fn set(s: &str, field: usize, lo: u32, hi: u32) -> Option<Vec<bool>> {
    let mut out = vec![false; (hi + 1) as usize];
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (r, st.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((x, y)) = range.split_once('-') {
            (value(x, field, lo, hi)?, value(y, field, lo, hi)?)
        } else {
            let v = value(range, field, lo, hi)?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a > b {
            return None;
        }
        let mut v = a;
        while v <= b {
            out[v as usize] = true;
            v += step;
        }
    }
    Some(out)
}

impl Cron {
    fn parse(inner: &str) -> Option<Cron> {
        let f: Vec<&str> = inner.split_whitespace().collect();
        if f.len() != 6 {
            return None;
        }
        let dom = match f[2] {
            "?" => DayOfMonth::Any,
            "L" => DayOfMonth::Last,
            s if s.ends_with('W') => {
                DayOfMonth::NearestWeekday(value(&s[..s.len() - 1], 2, 1, 31)?)
            }
            s => DayOfMonth::Days(set(s, 2, 1, 31)?),
        };
        let dow = match f[4] {
            "?" => DayOfWeek::Any,
            s if s.ends_with('L') && s.len() > 1 => {
                DayOfWeek::Last(value(&s[..s.len() - 1], 4, 1, 7)?)
            }
            s if s.contains('#') => {
                let (d, n) = s.split_once('#')?;
                DayOfWeek::Nth(
                    value(d, 4, 1, 7)?,
                    n.parse().ok().filter(|n| (1..=5).contains(n))?,
                )
            }
            s => DayOfWeek::Days(set(s, 4, 1, 7)?),
        };
        // Exactly one of day-of-month and day-of-week is '?'.
        if (dom == DayOfMonth::Any) == (dow == DayOfWeek::Any) {
            return None;
        }
        Some(Cron {
            minutes: set(f[0], 0, 0, 59)?,
            hours: set(f[1], 1, 0, 23)?,
            dom,
            months: set(f[3], 3, 1, 12)?,
            dow,
            years: set(f[5], 5, YEAR_MIN, YEAR_MAX)?,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        let last_day = last_day_of_month(d.year(), d.month());
        let weekday = d.weekday().num_days_from_sunday() + 1; // 1 = Sunday
        let dom_ok = match &self.dom {
            DayOfMonth::Any => true,
            DayOfMonth::Days(s) => s[d.day() as usize],
            DayOfMonth::Last => d.day() == last_day,
            DayOfMonth::NearestWeekday(n) => {
                let target =
                    NaiveDate::from_ymd_opt(d.year(), d.month(), (*n).min(last_day)).unwrap();
                let wd = target.weekday().num_days_from_sunday();
                let nearest = match wd {
                    6 if target.day() == 1 => target + Duration::days(2),
                    6 => target - Duration::days(1),
                    0 if target.day() == last_day => target - Duration::days(2),
                    0 => target + Duration::days(1),
                    _ => target,
                };
                nearest == d
            }
        };
        let dow_ok = match &self.dow {
            DayOfWeek::Any => true,
            DayOfWeek::Days(s) => s[weekday as usize],
            DayOfWeek::Last(w) => weekday == *w && d.day() + 7 > last_day,
            DayOfWeek::Nth(w, n) => weekday == *w && (d.day() - 1) / 7 + 1 == *n,
        };
        dom_ok
            && dow_ok
            && self.months[d.month() as usize]
            && self.years.get(d.year() as usize).copied().unwrap_or(false)
    }

    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Start at the next whole minute.
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = start.date_naive();
        let first_day = day;
        // Walk days (at most until the last allowed year), then hours and minutes within a day.
        while day.year() as u32 <= YEAR_MAX {
            if self.day_matches(day) {
                let (h0, m0) = if day == first_day {
                    (start.hour(), start.minute())
                } else {
                    (0, 0)
                };
                for h in h0..24 {
                    if !self.hours[h as usize] {
                        continue;
                    }
                    let mstart = if h == h0 { m0 } else { 0 };
                    for m in mstart..60 {
                        if self.minutes[m as usize] {
                            return Utc
                                .with_ymd_and_hms(day.year(), day.month(), day.day(), h, m, 0)
                                .single();
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

fn last_day_of_month(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (NaiveDate::from_ymd_opt(ny, nm, 1).unwrap() - Duration::days(1)).day()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn validates_like_aws() {
        assert!(Schedule::parse("rate(1 minute)").is_ok());
        assert!(Schedule::parse("rate(5 minutes)").is_ok());
        assert!(Schedule::parse("rate(1 minutes)").is_err());
        assert!(Schedule::parse("rate(0 minutes)").is_err());
        assert!(Schedule::parse("rate(2 weeks)").is_err());
        assert!(Schedule::parse("cron(0 12 * * ? *)").is_ok());
        assert!(Schedule::parse("cron(0/15 * ? * MON-FRI *)").is_ok());
        assert!(
            Schedule::parse("cron(0 12 * * * *)").is_err(),
            "one of dom/dow must be ?"
        );
        assert!(Schedule::parse("cron(0 12 * *)").is_err());
        assert!(Schedule::parse("cron(61 12 * * ? *)").is_err());
        assert!(Schedule::parse("every day").is_err());
    }

    #[test]
    fn next_fire_times() {
        // (expression, anchor (rates count from it), after, next fire time)
        let cases = [
            ("rate(5 minutes)", "2024-01-01T00:00:00Z", "2024-01-01T00:07:00Z", "2024-01-01T00:10:00Z"),
            ("cron(0 12 * * ? *)", "2024-01-01T00:00:00Z", "2024-01-01T12:00:00Z", "2024-01-02T12:00:00Z"),
            // the last Friday
            ("cron(15 10 ? * 6L 2024)", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-26T10:15:00Z"),
            ("cron(0/10 * ? * MON-FRI *)", "2024-01-01T00:00:00Z", "2024-01-06T09:03:00Z", "2024-01-08T00:00:00Z"),
            ("cron(0 0 L * ? *)", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-02-29T00:00:00Z"),
        ];
        for (expression, anchor, after, next) in cases {
            let schedule = Schedule::parse(expression).unwrap();
            assert_eq!(schedule.next_after(t(anchor), t(after)), Some(t(next)), "{expression}");
        }
    }
}
