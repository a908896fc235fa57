//! Proleptic Gregorian calendar arithmetic on plain integers.
//!
//! Wall times are `i64` seconds since 1970-01-01T00:00:00 *on the wall clock* ("local seconds"):
//! the same arithmetic as Unix time, but with no zone attached. Converting between local seconds
//! and instants is the zone's job (`zone.rs`); everything here is zone-free.
//!
//! Invariants: `days_from_civil` and `civil_from_days` are exact inverses for every date in
//! `MIN_YEAR..=MAX_YEAR`; weekdays are numbered as cron numbers them, 0 = Sunday .. 6 = Saturday.

/// The first and last years a wall time may fall in; searches give up outside them.
pub const MIN_YEAR: i32 = 1;
pub const MAX_YEAR: i32 = 9999;

pub const SECONDS_PER_MINUTE: i64 = 60;
pub const SECONDS_PER_HOUR: i64 = 60 * SECONDS_PER_MINUTE;
pub const SECONDS_PER_DAY: i64 = 24 * SECONDS_PER_HOUR;

/// 1970-01-01 was a Thursday.
const EPOCH_WEEKDAY: i64 = 4;

/// A wall-clock date and time, to the second, with no zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's algorithm: shift the year to start in
/// March so the leap day is the last day of the shifted year).
pub const fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = year as i64 - (month <= 2) as i64;
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month as i64 + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` days after 1970-01-01; the inverse of `days_from_civil`.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // The casts are exact: month is 1..=12, day 1..=31, and the year of any i64 day count that
    // reaches here fits i32 because callers clamp local seconds to MIN_YEAR..=MAX_YEAR first.
    (year as i32, month as u32, day as u32)
}

/// Weekday of a day count, 0 = Sunday.
pub fn weekday_from_days(days: i64) -> u32 {
    (days + EPOCH_WEEKDAY).rem_euclid(7) as u32
}

pub fn weekday(year: i32, month: u32, day: u32) -> u32 {
    weekday_from_days(days_from_civil(year, month, day))
}

/// Local seconds of the first second of MIN_YEAR and the last second of MAX_YEAR.
pub const MIN_LOCAL_SECONDS: i64 = days_from_civil(MIN_YEAR, 1, 1) * SECONDS_PER_DAY;
pub const MAX_LOCAL_SECONDS: i64 = days_from_civil(MAX_YEAR, 12, 31) * SECONDS_PER_DAY + SECONDS_PER_DAY - 1;

impl Civil {
    /// Breaks local seconds into fields; values outside MIN_YEAR..=MAX_YEAR are clamped to the
    /// nearest bound so that the fields always describe a real date.
    pub fn from_local_seconds(seconds: i64) -> Civil {
        let seconds = seconds.clamp(MIN_LOCAL_SECONDS, MAX_LOCAL_SECONDS);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (in_day / SECONDS_PER_HOUR) as u32,
            minute: (in_day % SECONDS_PER_HOUR / SECONDS_PER_MINUTE) as u32,
            second: (in_day % SECONDS_PER_MINUTE) as u32,
        }
    }

    pub fn to_local_seconds(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
            + i64::from(self.hour) * SECONDS_PER_HOUR
            + i64::from(self.minute) * SECONDS_PER_MINUTE
            + i64::from(self.second)
    }

    pub fn weekday(self) -> u32 {
        weekday(self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_from_year_1_to_9999() {
        let first = days_from_civil(MIN_YEAR, 1, 1);
        let last = days_from_civil(MAX_YEAR, 12, 31);
        let mut expected = (MIN_YEAR, 1, 1);
        for days in first..=last {
            let date = civil_from_days(days);
            assert_eq!(date, expected, "day {days}");
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_leap_year(2000));
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(1900));
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2400, 2), 29);
    }

    #[test]
    fn weekdays_match_known_dates() {
        assert_eq!(weekday(1970, 1, 1), 4);
        assert_eq!(weekday(2000, 1, 1), 6);
        assert_eq!(weekday(2024, 2, 29), 4);
        assert_eq!(weekday(9999, 12, 31), 5);
        assert_eq!(weekday(1, 1, 1), 1);
    }

    #[test]
    fn local_seconds_clamp_to_the_supported_years() {
        assert_eq!(Civil::from_local_seconds(i64::MIN).year, MIN_YEAR);
        let last = Civil::from_local_seconds(i64::MAX);
        assert_eq!((last.year, last.month, last.day, last.second), (MAX_YEAR, 12, 31, 59));
        let c = Civil::from_local_seconds(1_700_000_000);
        assert_eq!(c.to_local_seconds(), 1_700_000_000);
    }
}
