//! Time zones as runs of constant UTC offset ("spans").
//!
//! The cron search works on wall times and needs, for an instant, three facts: the offset in force,
//! where that offset started and ended, and the offset before it (to tell a gap from a fold). A
//! `Span` carries exactly those. Offsets are whole seconds east of UTC.
//!
//! Invariants:
//! - `span_at(t)` returns a span with `start <= t < end`; `start` is `i64::MIN` and `end` is
//!   `i64::MAX` where the zone has no transition on that side.
//! - Within a span the offset is constant, so wall = instant + offset is strictly increasing there.
//! - Transitions between the years `CACHE_FROM_YEAR` and `CACHE_UNTIL_YEAR` are read from the tz
//!   database once per zone per process and then found by binary search; instants outside that
//!   window ask jiff directly. Both paths answer the same question from the same database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use crate::calendar::{days_from_civil, Civil, SECONDS_PER_DAY};
use crate::error::CronError;

const CACHE_FROM_YEAR: i32 = 1900;
const CACHE_UNTIL_YEAR: i32 = 2200;

/// A run of instants `[start, end)` with one UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    pub offset: i64,
    /// The offset in force just before `start` (equal to `offset` when there is none).
    pub offset_before: i64,
}

impl Span {
    const WHOLE: Span = Span { start: i64::MIN, end: i64::MAX, offset: 0, offset_before: 0 };

    /// Whether the span begins with a backward jump (a fold) and `wall` lies in the hour that the
    /// clock repeats, so that its instant in this span is the wall time's second occurrence.
    pub fn repeats_wall(&self, wall: i64) -> bool {
        self.offset_before > self.offset && wall < self.start.saturating_add(self.offset_before)
    }

    /// Whether the span begins with a forward jump and `wall` is one of the skipped wall times.
    pub fn skipped_wall(&self, wall: i64) -> bool {
        self.offset > self.offset_before
            && wall >= self.start.saturating_add(self.offset_before)
            && wall < self.start.saturating_add(self.offset)
    }

    /// Whether `instant` (in this span) shows a wall time that the clock already showed before
    /// the span began: Python's `fold=1`.
    pub fn is_second_occurrence(&self, instant: i64) -> bool {
        self.repeats_wall(instant.saturating_add(self.offset))
    }
}

/// A time zone: UTC (no transitions) or a named IANA zone.
#[derive(Debug, Clone)]
pub enum Zone {
    Utc,
    Named(Arc<NamedZone>),
}

#[derive(Debug)]
pub struct NamedZone {
    name: String,
    tz: TimeZone,
    /// `starts[i]` is where `offsets[i]` begins; `starts[0]` is the start of the span in force at
    /// the beginning of the cached window and the last entry is where the window's last span ends.
    starts: Vec<i64>,
    offsets: Vec<i64>,
    /// The offset before `starts[0]`.
    offset_before_first: i64,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Zone {}

impl Zone {
    /// The zone named `name` (any IANA name; "UTC" and "Etc/UTC" are the fast UTC zone).
    pub fn get(name: &str) -> Result<Zone, CronError> {
        if name == "UTC" {
            return Ok(Zone::Utc);
        }
        static ZONES: OnceLock<Mutex<HashMap<String, Arc<NamedZone>>>> = OnceLock::new();
        let zones = ZONES.get_or_init(|| Mutex::new(HashMap::new()));
        // A poisoned lock only means another thread panicked while inserting; the map itself
        // is still a valid cache.
        let mut zones = zones.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(zone) = zones.get(name) {
            return Ok(Zone::Named(Arc::clone(zone)));
        }
        let tz = TimeZone::get(name).map_err(|err| CronError::UnknownZone {
            name: name.chars().take(80).collect(),
            reason: err.to_string(),
        })?;
        let zone = Arc::new(NamedZone::load(name, tz));
        zones.insert(name.to_string(), Arc::clone(&zone));
        Ok(Zone::Named(zone))
    }

    pub fn name(&self) -> &str {
        match self {
            Zone::Utc => "UTC",
            Zone::Named(zone) => &zone.name,
        }
    }

    pub fn span_at(&self, instant: i64) -> Span {
        match self {
            Zone::Utc => Span::WHOLE,
            Zone::Named(zone) => zone.span_at(instant),
        }
    }

    pub fn offset_at(&self, instant: i64) -> i64 {
        self.span_at(instant).offset
    }

    /// The instant of a wall time, resolved as PEP 495 does: in a fold, `later` picks the second
    /// occurrence; in a gap, `later` reads the wall time with the offset after the jump (an
    /// earlier instant) and otherwise with the offset before it (a later instant).
    pub fn instant_of_wall(&self, wall: i64, later: bool) -> i64 {
        let Zone::Named(zone) = self else { return wall };
        let Some(datetime) = jiff_datetime(Civil::from_local_seconds(wall)) else { return wall };
        let offset = match zone.tz.to_ambiguous_timestamp(datetime).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { before, after } | AmbiguousOffset::Fold { before, after } => {
                if later {
                    after
                } else {
                    before
                }
            }
        };
        wall.saturating_sub(i64::from(offset.seconds()))
    }
}

fn jiff_datetime(civil: Civil) -> Option<jiff::civil::DateTime> {
    let narrow = |value: u32| i8::try_from(value).ok();
    jiff::civil::DateTime::new(
        i16::try_from(civil.year).ok()?,
        narrow(civil.month)?,
        narrow(civil.day)?,
        narrow(civil.hour)?,
        narrow(civil.minute)?,
        narrow(civil.second)?,
        0,
    )
    .ok()
}

impl NamedZone {
    fn load(name: &str, tz: TimeZone) -> NamedZone {
        let window_start = days_from_civil(CACHE_FROM_YEAR, 1, 1) * SECONDS_PER_DAY;
        let window_end = days_from_civil(CACHE_UNTIL_YEAR, 1, 1) * SECONDS_PER_DAY;
        let first = jiff_span_at(&tz, window_start);
        let mut starts = vec![first.start];
        let mut offsets = vec![first.offset];
        let mut cursor = first.end;
        while cursor < window_end {
            let span = jiff_span_at(&tz, cursor);
            // Transitions that change only the abbreviation or the DST flag are not transitions
            // for a clock that reads wall time: merge them into the span before.
            if offsets.last() != Some(&span.offset) {
                starts.push(span.start);
                offsets.push(span.offset);
            }
            cursor = span.end;
        }
        starts.push(cursor);
        NamedZone { name: name.to_string(), tz, starts, offsets, offset_before_first: first.offset_before }
    }

    fn span_at(&self, instant: i64) -> Span {
        let (Some(&first), Some(&last)) = (self.starts.first(), self.starts.last()) else {
            return jiff_span_at(&self.tz, instant);
        };
        if instant < first || instant >= last {
            return jiff_span_at(&self.tz, instant);
        }
        // starts[0] <= instant < starts[last], so the index is in 0..offsets.len().
        let index = self.starts.partition_point(|&start| start <= instant) - 1;
        let offset_before = match index.checked_sub(1) {
            Some(before) => self.offsets.get(before).copied(),
            None => Some(self.offset_before_first),
        };
        match (self.starts.get(index), self.starts.get(index + 1), self.offsets.get(index)) {
            (Some(&start), Some(&end), Some(&offset)) => {
                Span { start, end, offset, offset_before: offset_before.unwrap_or(offset) }
            }
            _ => jiff_span_at(&self.tz, instant),
        }
    }
}

fn timestamp(seconds: i64) -> Timestamp {
    let clamped = seconds.clamp(Timestamp::MIN.as_second(), Timestamp::MAX.as_second());
    Timestamp::from_second(clamped).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The span around `instant`, asked of jiff (which reads TZif data and its POSIX rule beyond).
fn jiff_span_at(tz: &TimeZone, instant: i64) -> Span {
    let at = timestamp(instant);
    let offset = i64::from(tz.to_offset(at).seconds());
    let before = tz.preceding(timestamp(instant.saturating_add(1))).next();
    let after = tz.following(at).next();
    let start = before.as_ref().map_or(i64::MIN, |t| t.timestamp().as_second());
    let end = after.as_ref().map_or(i64::MAX, |t| t.timestamp().as_second());
    let offset_before = match before {
        Some(t) => i64::from(tz.to_offset(timestamp(t.timestamp().as_second() - 1)).seconds()),
        None => offset,
    };
    Span { start, end, offset, offset_before }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> i64 {
        text.parse::<Timestamp>().map(|t| t.as_second()).unwrap_or(i64::MIN)
    }

    #[test]
    fn new_york_spring_forward_is_a_gap() {
        let zone = Zone::get("America/New_York").unwrap();
        let span = zone.span_at(ts("2024-03-10T07:00:00Z"));
        assert_eq!(span.start, ts("2024-03-10T07:00:00Z"));
        assert_eq!((span.offset, span.offset_before), (-4 * 3600, -5 * 3600));
        let wall_0230 = ts("2024-03-10T02:30:00Z");
        assert!(span.skipped_wall(wall_0230));
        assert!(!span.repeats_wall(wall_0230));
    }

    #[test]
    fn new_york_fall_back_repeats_an_hour() {
        let zone = Zone::get("America/New_York").unwrap();
        let second_pass = ts("2024-11-03T06:30:00Z");
        let span = zone.span_at(second_pass);
        assert!(span.is_second_occurrence(second_pass));
        assert!(!span.is_second_occurrence(ts("2024-11-03T07:30:00Z")));
        let wall = ts("2024-11-03T01:30:00Z");
        assert_eq!(zone.instant_of_wall(wall, false), ts("2024-11-03T05:30:00Z"));
        assert_eq!(zone.instant_of_wall(wall, true), second_pass);
    }

    #[test]
    fn gap_walls_resolve_like_pep_495() {
        let zone = Zone::get("Europe/Berlin").unwrap();
        let wall = ts("2024-03-31T02:30:00Z");
        assert_eq!(zone.instant_of_wall(wall, false), ts("2024-03-31T01:30:00Z"));
        assert_eq!(zone.instant_of_wall(wall, true), ts("2024-03-31T00:30:00Z"));
    }

    #[test]
    fn cached_and_uncached_spans_agree() {
        for name in ["Europe/Dublin", "Australia/Lord_Howe", "Pacific/Chatham", "America/Havana"] {
            let Zone::Named(zone) = Zone::get(name).unwrap() else { panic!("{name} is UTC") };
            let mut instant = ts("1990-01-01T00:00:00Z");
            while instant < ts("2060-01-01T00:00:00Z") {
                let cached = zone.span_at(instant);
                let direct = jiff_span_at(&zone.tz, instant);
                assert_eq!(cached.offset, direct.offset, "{name} at {instant}");
                assert!(cached.start <= instant && instant < cached.end);
                instant += 86_400 * 7 + 3_601;
            }
        }
    }

    #[test]
    fn far_future_spans_follow_the_dst_rule() {
        let zone = Zone::get("America/New_York").unwrap();
        assert_eq!(zone.offset_at(ts("9000-07-01T12:00:00Z")), -4 * 3600);
        assert_eq!(zone.offset_at(ts("9000-01-01T12:00:00Z")), -5 * 3600);
    }

    #[test]
    fn unknown_zone_is_an_error_naming_it() {
        let err = Zone::get("Mars/Olympus").unwrap_err();
        assert!(err.to_string().starts_with("unknown time zone \"Mars/Olympus\""), "{err}");
    }
}
