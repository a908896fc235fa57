//! Plain-English descriptions of schedules ("At 09:00, Monday through Friday").

use crate::cron::CronExpr;

pub fn describe(expr: &CronExpr) -> String {
    let _ = expr;
    String::from("(description pending)")
}

pub fn describe_interval(period: i64) -> String {
    format!("Every {period} seconds")
}

pub fn describe_once(at: i64) -> String {
    format!("Once, at {}", iso_utc(at))
}

/// An instant as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(at: i64) -> String {
    let civil = crate::calendar::Civil::from_local_seconds(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second
    )
}
