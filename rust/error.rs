//! The one error type of the core. Each variant carries what a user needs to find the mistake:
//! the field, the offending token and its 1-based column in the expression. `py_api` turns it into
//! `fastcron.CronError` once, at the edge; nothing else formats errors.

use std::fmt;

/// The six cron fields, in the order they appear in a 6-field expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    Empty,
    /// Python handed over a str that is not Unicode (a lone surrogate).
    NotText,
    FieldCount {
        found: usize,
    },
    UnknownMacro {
        token: String,
    },
    Reboot,
    /// A token that does not parse or is out of range: `reason` is the sentence after the field name.
    Field {
        field: FieldKind,
        column: usize,
        reason: String,
    },
    /// The expression parses but names no day that exists (`0 0 30 2 *`).
    NeverFires {
        expr: String,
    },
    UnknownZone {
        name: String,
        reason: String,
    },
    Interval {
        spec: String,
        reason: String,
    },
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::Empty => write!(f, "empty cron expression: expected 5 or 6 fields"),
            CronError::NotText => {
                write!(f, "the expression is not valid Unicode text (it holds a lone surrogate)")
            }
            CronError::FieldCount { found } => write!(
                f,
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, found {found}"
            ),
            CronError::UnknownMacro { token } => write!(
                f,
                "unknown macro {token:?}: expected one of @yearly @annually @monthly @weekly @daily @midnight @hourly"
            ),
            CronError::Reboot => write!(
                f,
                "@reboot is not a time schedule: it runs once at start-up, which a Cron cannot express"
            ),
            CronError::Field { field, column, reason } => {
                write!(f, "{}: {reason} (column {column})", field.name())
            }
            CronError::NeverFires { expr } => write!(
                f,
                "{expr:?} can never fire: no month it allows has the day-of-month it asks for"
            ),
            CronError::UnknownZone { name, reason } => {
                write!(f, "unknown time zone {name:?}: {reason}")
            }
            CronError::Interval { spec, reason } => write!(f, "interval {spec:?}: {reason}"),
        }
    }
}

impl std::error::Error for CronError {}
