//! The cron dialect: parsing an expression and finding fire times.
//!
//! A `CronExpr` is six bitmasks (second, minute, hour, day-of-month, month, day-of-week) plus the
//! day specials. Searching happens in two layers:
//! 1. `next_wall` / `prev_wall` find the nearest matching *wall time* (local seconds, no zone),
//!    stepping field by field from the largest unit down, always restartable from the top.
//! 2. `Cron::next_after` / `Cron::prev_before` walk the zone's spans of constant offset and map
//!    wall matches to instants, applying Debian cron's DST rule (see `Cron`).
//!
//! Invariants: every mask is non-empty (a field always allows at least one value); an expression
//! that names no day that exists in any month it allows is rejected when parsed; searches give up
//! at `calendar::MIN_YEAR` / `MAX_YEAR`, so each call does a bounded amount of work.

pub mod describe;
mod field;
mod zoned;

use crate::calendar::{self, days_in_month, Civil, MAX_YEAR, MIN_YEAR};
use crate::error::{CronError, FieldKind};
pub use field::Field;
pub use zoned::{Cron, MAX_INSTANT, MIN_INSTANT};

/// Day-of-month ∧ day-of-week, or ∨: cron(5)'s day-field rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayRule {
    /// One of the day fields starts with `*` (or is `?`): a day must match both.
    Both,
    /// Both day fields are restricted: a day matches if it matches either.
    Either,
}

/// A parsed expression, zone-free.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CronExpr {
    pub second: Field,
    pub minute: Field,
    pub hour: Field,
    pub day_of_month: Field,
    pub month: Field,
    pub day_of_week: Field,
    pub day_rule: DayRule,
    /// Neither the minute nor the hour field starts with `*`: Debian's test for a job that runs
    /// at a fixed time of day, which gets the special DST treatment.
    pub fixed_time: bool,
    /// The expression had six fields.
    pub has_seconds: bool,
    /// For each weekday of the 1st (0 = Sunday), the days 1..=31 whose weekday the plain
    /// day-of-week values allow: the specials aside, a month's weekday mask is one lookup.
    weekday_days: [u64; 7],
}

fn expand_macro(expr: &str) -> Result<Option<&'static str>, CronError> {
    let Some(name) = expr.strip_prefix('@') else { return Ok(None) };
    let expansion = match name.to_ascii_lowercase().as_str() {
        "yearly" | "annually" => "0 0 1 1 *",
        "monthly" => "0 0 1 * *",
        "weekly" => "0 0 * * 0",
        "daily" | "midnight" => "0 0 * * *",
        "hourly" => "0 * * * *",
        "reboot" => return Err(CronError::Reboot),
        _ => {
            return Err(CronError::UnknownMacro { token: expr.chars().take(24).collect() });
        }
    };
    Ok(Some(expansion))
}

/// Splits on runs of spaces and tabs, keeping each field's 1-based column.
fn split_fields(expr: &str) -> Vec<(usize, &str)> {
    let mut fields = Vec::new();
    let mut start = None;
    let mut column = 0;
    for (index, ch) in expr.char_indices() {
        column += 1;
        let blank = ch == ' ' || ch == '\t';
        match (blank, start) {
            (false, None) => start = Some((index, column)),
            (true, Some((from, from_column))) => {
                fields.push((from_column, &expr[from..index]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((from, from_column)) = start {
        fields.push((from_column, &expr[from..]));
    }
    fields
}

impl CronExpr {
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let trimmed = expr.trim_matches([' ', '\t']);
        let text = expand_macro(trimmed)?.unwrap_or(expr);
        let fields = split_fields(text);
        let kinds: &[FieldKind] = match fields.len() {
            0 => return Err(CronError::Empty),
            5 => &FIELDS_5,
            6 => &FIELDS_6,
            found => return Err(CronError::FieldCount { found }),
        };
        let mut parsed = [Field { values: 1, ..Field::default() }; 6];
        for (&kind, &(column, text)) in kinds.iter().zip(&fields) {
            if let Some(slot) = parsed.get_mut(kind as usize) {
                *slot = field::parse_field(kind, text, column)?;
            }
        }
        let [second, minute, hour, day_of_month, month, day_of_week] = parsed;
        let expr = CronExpr {
            second,
            minute,
            hour,
            day_of_month,
            month,
            day_of_week,
            day_rule: if day_of_month.starred || day_of_week.starred {
                DayRule::Both
            } else {
                DayRule::Either
            },
            fixed_time: !minute.starred && !hour.starred,
            has_seconds: fields.len() == 6,
            weekday_days: weekday_days(day_of_week.values),
        };
        if !expr.can_fire() {
            return Err(CronError::NeverFires { expr: trimmed.chars().take(80).collect() });
        }
        Ok(expr)
    }

    /// Whether some day in some year matches. Only ∧ with a restricted day-of-month can fail:
    /// every date falls on every weekday in some year, and every weekday, `nL` and `n#k` occur in
    /// every month's calendar in some year. So it is enough that some allowed month has one of
    /// the days asked for in a leap year, where every month is as long as it ever gets.
    fn can_fire(&self) -> bool {
        if self.day_rule == DayRule::Either || self.day_of_month.starred {
            return true;
        }
        (1..=12).any(|month| self.month.values & (1 << month) != 0 && self.month_days(2000, month) != 0)
    }

    /// Days of `month` in `year` that the day-of-month field allows, as bits 1..=31.
    fn month_days(&self, year: i32, month: u32) -> u64 {
        let field = &self.day_of_month;
        let length = days_in_month(year, month);
        let mut days = field.values;
        if !field.has_specials() {
            return days & days_mask(length);
        }
        if field.last_day {
            days |= 1 << length;
        }
        if field.last_weekday {
            days |= 1 << nearest_weekday(year, month, length);
        }
        let mut wanted = field.nearest_weekday;
        while wanted != 0 {
            let day = wanted.trailing_zeros();
            wanted &= wanted - 1;
            if day <= length {
                days |= 1 << nearest_weekday(year, month, day);
            }
        }
        days & days_mask(length)
    }

    /// Days of `month` in `year` that the day-of-week field allows, as bits 1..=31.
    fn week_days(&self, year: i32, month: u32) -> u64 {
        let field = &self.day_of_week;
        let length = days_in_month(year, month);
        let first_weekday = calendar::weekday(year, month, 1);
        let mut days = self.weekday_days.get(first_weekday as usize).copied().unwrap_or(0);
        if field.has_specials() {
            days |= self.special_week_days(year, month, first_weekday, length);
        }
        days & days_mask(length)
    }

    /// The days `nL` and `n#k` pick in a month whose 1st is `first_weekday`.
    fn special_week_days(&self, year: i32, month: u32, first_weekday: u32, length: u32) -> u64 {
        let field = &self.day_of_week;
        let first_day_of = |weekday: u32| 1 + (weekday + 7 - first_weekday) % 7;
        let last_weekday = calendar::weekday(year, month, length);
        let mut days = 0;
        for weekday in 0..7 {
            let bit = 1u64 << weekday;
            if field.last_of_weekday & bit != 0 {
                days |= 1 << (length - (last_weekday + 7 - weekday) % 7);
            }
            for (nth, bits) in (0u32..).zip(field.nth_weekday) {
                if bits & bit != 0 {
                    days |= 1 << (first_day_of(weekday) + 7 * nth);
                }
            }
        }
        days
    }

    /// The days of a month that match, as bits 1..=31.
    fn day_mask(&self, year: i32, month: u32) -> u64 {
        match self.day_rule {
            DayRule::Both => self.month_days(year, month) & self.week_days(year, month),
            DayRule::Either => self.month_days(year, month) | self.week_days(year, month),
        }
    }

    pub fn matches_wall(&self, wall: Civil) -> bool {
        self.second.values & (1 << wall.second) != 0
            && self.minute.values & (1 << wall.minute) != 0
            && self.hour.values & (1 << wall.hour) != 0
            && self.month.values & (1 << wall.month) != 0
            && self.day_mask(wall.year, wall.month) & (1 << wall.day) != 0
    }

    /// The first matching wall time at or after `from` (local seconds).
    pub fn next_wall(&self, from: i64) -> Option<i64> {
        if from > calendar::MAX_LOCAL_SECONDS {
            return None;
        }
        let mut at = Civil::from_local_seconds(from);
        let mut days = MonthDays::default();
        loop {
            if at.year > MAX_YEAR {
                return None;
            }
            let Some(month) = next_bit(self.month.values, at.month) else {
                at = Civil { year: at.year + 1, month: 1, day: 1, ..MIDNIGHT };
                continue;
            };
            if month != at.month {
                at = Civil { year: at.year, month, day: 1, ..MIDNIGHT };
            }
            let Some(day) = next_bit(days.of(self, at.year, at.month), at.day) else {
                at = first_of_next_month(at);
                continue;
            };
            if day != at.day {
                at = Civil { day, hour: 0, minute: 0, second: 0, ..at };
            }
            let Some(hour) = next_bit(self.hour.values, at.hour) else {
                at = next_day(at);
                continue;
            };
            if hour != at.hour {
                at = Civil { hour, minute: 0, second: 0, ..at };
            }
            let Some(minute) = next_bit(self.minute.values, at.minute) else {
                at = next_hour(at);
                continue;
            };
            if minute != at.minute {
                at = Civil { minute, second: 0, ..at };
            }
            let Some(second) = next_bit(self.second.values, at.second) else {
                at = next_minute(at);
                continue;
            };
            return Some(Civil { second, ..at }.to_local_seconds());
        }
    }

    /// The last matching wall time at or before `from` (local seconds).
    pub fn prev_wall(&self, from: i64) -> Option<i64> {
        if from < calendar::MIN_LOCAL_SECONDS {
            return None;
        }
        let mut at = Civil::from_local_seconds(from);
        let mut days = MonthDays::default();
        loop {
            if at.year < MIN_YEAR {
                return None;
            }
            let Some(month) = prev_bit(self.month.values, at.month) else {
                at = Civil { year: at.year - 1, month: 12, day: 31, ..LAST_SECOND };
                continue;
            };
            if month != at.month {
                let day = days_in_month(at.year, month);
                at = Civil { year: at.year, month, day, ..LAST_SECOND };
            }
            let Some(day) = prev_bit(days.of(self, at.year, at.month), at.day) else {
                at = last_of_previous_month(at);
                continue;
            };
            if day != at.day {
                at = Civil { day, hour: 23, minute: 59, second: 59, ..at };
            }
            let Some(hour) = prev_bit(self.hour.values, at.hour) else {
                at = previous_day(at);
                continue;
            };
            if hour != at.hour {
                at = Civil { hour, minute: 59, second: 59, ..at };
            }
            let Some(minute) = prev_bit(self.minute.values, at.minute) else {
                at = previous_hour(at);
                continue;
            };
            if minute != at.minute {
                at = Civil { minute, second: 59, ..at };
            }
            let Some(second) = prev_bit(self.second.values, at.second) else {
                at = previous_minute(at);
                continue;
            };
            return Some(Civil { second, ..at }.to_local_seconds());
        }
    }
}

/// The matching days of the month a search is in, computed once per month visited: a search
/// that rolls over several days of one month asks for the same mask again and again.
#[derive(Default)]
struct MonthDays {
    year: i32,
    month: u32,
    days: u64,
}

impl MonthDays {
    fn of(&mut self, expr: &CronExpr, year: i32, month: u32) -> u64 {
        if (self.year, self.month) != (year, month) {
            *self = MonthDays { year, month, days: expr.day_mask(year, month) };
        }
        self.days
    }
}

const FIELDS_5: [FieldKind; 5] =
    [FieldKind::Minute, FieldKind::Hour, FieldKind::DayOfMonth, FieldKind::Month, FieldKind::DayOfWeek];
const FIELDS_6: [FieldKind; 6] = [
    FieldKind::Second,
    FieldKind::Minute,
    FieldKind::Hour,
    FieldKind::DayOfMonth,
    FieldKind::Month,
    FieldKind::DayOfWeek,
];

const MIDNIGHT: Civil = Civil { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
const LAST_SECOND: Civil = Civil { year: 0, month: 12, day: 31, hour: 23, minute: 59, second: 59 };

fn first_of_next_month(at: Civil) -> Civil {
    if at.month >= 12 {
        Civil { year: at.year + 1, month: 1, day: 1, ..MIDNIGHT }
    } else {
        Civil { year: at.year, month: at.month + 1, day: 1, ..MIDNIGHT }
    }
}

fn last_of_previous_month(at: Civil) -> Civil {
    if at.month <= 1 {
        Civil { year: at.year - 1, month: 12, day: 31, ..LAST_SECOND }
    } else {
        let month = at.month - 1;
        Civil { year: at.year, month, day: days_in_month(at.year, month), ..LAST_SECOND }
    }
}

// Rolling over to the next or previous unit edits the fields directly instead of converting
// through local seconds: the searches stay free of calendar arithmetic until they return. A day
// past the month's end (or before its start) is left for the day search, which moves on to the
// next (previous) month.

fn next_day(at: Civil) -> Civil {
    Civil { day: at.day + 1, hour: 0, minute: 0, second: 0, ..at }
}

fn next_hour(at: Civil) -> Civil {
    if at.hour >= 23 {
        next_day(at)
    } else {
        Civil { hour: at.hour + 1, minute: 0, second: 0, ..at }
    }
}

fn next_minute(at: Civil) -> Civil {
    if at.minute >= 59 {
        next_hour(at)
    } else {
        Civil { minute: at.minute + 1, second: 0, ..at }
    }
}

fn previous_day(at: Civil) -> Civil {
    if at.day <= 1 {
        last_of_previous_month(at)
    } else {
        Civil { day: at.day - 1, hour: 23, minute: 59, second: 59, ..at }
    }
}

fn previous_hour(at: Civil) -> Civil {
    if at.hour == 0 {
        previous_day(at)
    } else {
        Civil { hour: at.hour - 1, minute: 59, second: 59, ..at }
    }
}

fn previous_minute(at: Civil) -> Civil {
    if at.minute == 0 {
        previous_hour(at)
    } else {
        Civil { minute: at.minute - 1, second: 59, ..at }
    }
}

/// For each weekday of a month's 1st, the days 1..=31 falling on a weekday in `weekdays`.
fn weekday_days(weekdays: u64) -> [u64; 7] {
    let mut table = [0u64; 7];
    for (first_weekday, days) in (0u32..).zip(table.iter_mut()) {
        for day in 1..=31u32 {
            if weekdays & (1 << ((first_weekday + day - 1) % 7)) != 0 {
                *days |= 1 << day;
            }
        }
    }
    table
}

/// Bits 1..=length.
fn days_mask(length: u32) -> u64 {
    ((1u64 << length) - 1) << 1
}

/// The weekday nearest to `day` within its month (Quartz's `W`): a Saturday moves to Friday
/// unless that leaves the month, a Sunday to Monday likewise.
fn nearest_weekday(year: i32, month: u32, day: u32) -> u32 {
    let length = days_in_month(year, month);
    match calendar::weekday(year, month, day) {
        6 if day == 1 => 3,
        6 => day - 1,
        0 if day == length => day - 2,
        0 => day + 1,
        _ => day,
    }
}

/// The lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let above = mask.checked_shr(from)?;
    (above != 0).then(|| from + above.trailing_zeros())
}

/// The highest set bit at or below `from`.
fn prev_bit(mask: u64, from: u32) -> Option<u32> {
    let below = if from >= 63 { mask } else { mask & ((2u64 << from) - 1) };
    (below != 0).then(|| 63 - below.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(expr: &str) -> String {
        CronExpr::parse(expr).err().map(|e| e.to_string()).unwrap_or_default()
    }

    fn wall(text: &str) -> i64 {
        text.parse::<jiff::civil::DateTime>()
            .map(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp().as_second()).unwrap_or(0))
            .unwrap_or(0)
    }

    #[test]
    fn field_counts_and_columns() {
        assert_eq!(parse_error(""), "empty cron expression: expected 5 or 6 fields");
        assert!(parse_error("* * * *").ends_with("found 4"));
        assert_eq!(parse_error("\t0  0 32 * *"), "day-of-month: 32 is out of range 1-31 (column 7)");
        assert_eq!(parse_error("0 0 0 32 * *"), "day-of-month: 32 is out of range 1-31 (column 7)");
        assert!(CronExpr::parse("*/5\t*  * * *").is_ok());
    }

    #[test]
    fn macros_expand_and_reboot_is_refused() {
        assert_eq!(CronExpr::parse("@daily"), CronExpr::parse("0 0 * * *"));
        assert_eq!(CronExpr::parse(" @Yearly "), CronExpr::parse("0 0 1 1 *"));
        assert!(parse_error("@reboot").starts_with("@reboot is not a time schedule"));
        assert!(parse_error("@often").starts_with("unknown macro \"@often\""));
    }

    #[test]
    fn impossible_days_are_refused_when_parsed() {
        assert!(parse_error("0 0 30 2 *").contains("can never fire"));
        assert!(parse_error("0 0 31 2,4,6,9,11 *").contains("can never fire"));
        assert!(CronExpr::parse("0 0 29 2 *").is_ok());
        assert!(CronExpr::parse("0 0 30 2 MON").is_ok(), "either day field may match");
        assert!(CronExpr::parse("0 0 31W 4 *").is_err());
        assert!(CronExpr::parse("0 0 L 2 *").is_ok());
    }

    #[test]
    fn the_markers_of_the_two_rules() {
        let expr = |text: &str| CronExpr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(expr("0 0 */2 * 1").day_rule, DayRule::Both);
        assert_eq!(expr("0 0 1 * ?").day_rule, DayRule::Both);
        assert_eq!(expr("0 0 1,15 * 1").day_rule, DayRule::Either);
        assert!(expr("30 2 * * *").fixed_time);
        assert!(expr("*/5 30 2 * * *").fixed_time, "the seconds field does not count");
        assert!(!expr("*/30 2 * * *").fixed_time);
        assert!(!expr("0 * * * *").fixed_time);
    }

    #[test]
    fn wall_searches_step_over_months_and_years() {
        let leap_day = CronExpr::parse("0 0 29 2 *").unwrap();
        assert_eq!(leap_day.next_wall(wall("2097-01-01T00:00:00")), Some(wall("2104-02-29T00:00:00")));
        assert_eq!(leap_day.prev_wall(wall("2103-12-31T00:00:00")), Some(wall("2096-02-29T00:00:00")));
        let every_second = CronExpr::parse("* * * * * *").unwrap();
        let last = calendar::MAX_LOCAL_SECONDS;
        assert_eq!(every_second.next_wall(last), Some(last));
        assert_eq!(every_second.next_wall(last + 1), None);
        assert_eq!(every_second.prev_wall(calendar::MIN_LOCAL_SECONDS - 1), None);
    }

    #[test]
    fn every_bit_helper_stays_in_range() {
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(u64::MAX, 64), None);
        assert_eq!(prev_bit(0b1010, 2), Some(1));
        assert_eq!(prev_bit(0b1010, 0), None);
        assert_eq!(prev_bit(1 << 63, 100), Some(63));
    }
}
