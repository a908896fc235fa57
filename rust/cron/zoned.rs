//! A cron expression in a time zone: wall-time matches mapped to instants.
//!
//! Debian cron's DST rule, for 5- and 6-field expressions alike:
//! - A *fixed-time* expression (neither minute nor hour starts with `*`) runs once per wall time:
//!   a wall time skipped by a forward jump fires at the first instant after the jump, and a wall
//!   time repeated by a backward jump fires on its first occurrence only.
//! - Every other expression fires at each real instant whose wall time matches: in both passes of
//!   a repeated hour, and not at all in a skipped one.
//!
//! The search walks spans of constant offset (`zone::Span`). Within a span, wall time and instant
//! differ by a constant, so the first wall match maps straight to an instant; if that instant
//! falls past the span's end, no instant in the span matched and the search resumes at the next
//! span. Invariant: `prev_before(t) = max { f in F : f < t }` and `next_after(t) = min { f in F :
//! f > t }` for one fire set F; the tests check the two directions against each other.

use crate::calendar::Civil;
use crate::cron::CronExpr;
use crate::error::CronError;
use crate::zone::{Span, Zone};

/// Instants (epoch seconds) from 0001-01-01 to 9999-12-31 UTC: the range searches cover.
pub const MIN_INSTANT: i64 = -62_135_596_800;
pub const MAX_INSTANT: i64 = 253_402_300_799;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    pub expr: CronExpr,
    pub zone: Zone,
}

impl Cron {
    pub fn parse(expr: &str, zone_name: Option<&str>) -> Result<Cron, CronError> {
        let zone = Zone::get(zone_name.unwrap_or("UTC"))?;
        Ok(Cron { expr: CronExpr::parse(expr)?, zone })
    }

    /// The first fire time strictly after `after` (epoch seconds).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut instant = after.checked_add(1)?.max(MIN_INSTANT);
        if instant > MAX_INSTANT {
            return None;
        }
        let mut span = self.zone.span_at(instant);
        if instant == span.start && self.owes_gap_fire(&span) {
            return Some(instant);
        }
        let mut from_wall = instant + span.offset;
        // Invariant: `wall` is the first match at or after `from_wall`, and no instant in
        // [after + 1, instant) fires.
        let mut wall = self.expr.next_wall(from_wall)?;
        loop {
            let candidate = wall - span.offset;
            if candidate < span.end {
                if self.expr.fixed_time && span.repeats_wall(wall) {
                    // A fixed-time job already ran at this wall time before the clock went back.
                    instant = span.start.saturating_add(span.offset_before - span.offset);
                    from_wall = instant + span.offset;
                    wall = self.expr.next_wall(from_wall)?;
                    continue;
                }
                return (candidate <= MAX_INSTANT).then_some(candidate);
            }
            if span.end > MAX_INSTANT {
                return None;
            }
            let next_instant = skip_forward(instant, span.end, candidate);
            let next_span = self.zone.span_at(next_instant);
            if self.expr.fixed_time && next_instant == span.end && next_span.skipped_wall(wall) {
                return Some(span.end);
            }
            let next_from_wall = next_instant + next_span.offset;
            if next_from_wall < from_wall || next_from_wall > wall {
                // The clock went back over walls not yet searched, or forward past the match.
                wall = self.expr.next_wall(next_from_wall)?;
            }
            (instant, span, from_wall) = (next_instant, next_span, next_from_wall);
        }
    }

    /// The last fire time strictly before `before` (epoch seconds).
    pub fn prev_before(&self, before: i64) -> Option<i64> {
        let mut instant = before.checked_sub(1)?.min(MAX_INSTANT);
        if instant < MIN_INSTANT {
            return None;
        }
        let mut span = self.zone.span_at(instant);
        let mut from_wall = instant + span.offset;
        // Invariant: `wall` is the last match at or before `from_wall`, and no instant in
        // (instant, before) fires.
        let mut wall = self.expr.prev_wall(from_wall)?;
        loop {
            let candidate = wall - span.offset;
            if candidate >= span.start {
                if self.expr.fixed_time && span.repeats_wall(wall) {
                    // Its first occurrence lies in the span before the fold.
                    instant = span.start.checked_sub(1)?;
                    span = self.zone.span_at(instant);
                    from_wall = instant + span.offset;
                    wall = self.expr.prev_wall(from_wall)?;
                    continue;
                }
                return (candidate >= MIN_INSTANT).then_some(candidate);
            }
            if self.expr.fixed_time && span.skipped_wall(wall) {
                return Some(span.start);
            }
            if span.start <= MIN_INSTANT {
                return None;
            }
            let next_instant = skip_backward(instant, span.start - 1, candidate);
            let next_span = self.zone.span_at(next_instant);
            let next_from_wall = next_instant + next_span.offset;
            if next_from_wall > from_wall || next_from_wall < wall {
                wall = self.expr.prev_wall(next_from_wall)?;
            }
            (instant, span, from_wall) = (next_instant, next_span, next_from_wall);
        }
    }

    /// Whether a fixed-time expression owes a fire at the start of `span` for a wall time that
    /// the forward jump opening the span skipped.
    fn owes_gap_fire(&self, span: &Span) -> bool {
        let gap_start = span.start.saturating_add(span.offset_before);
        self.expr.fixed_time
            && span.offset > span.offset_before
            && self.expr.next_wall(gap_start).is_some_and(|wall| span.skipped_wall(wall))
    }

    /// The wall time and the span of an instant, for converting results back to datetimes.
    pub fn wall_of(&self, instant: i64) -> (Civil, Span) {
        let span = self.zone.span_at(instant);
        (Civil::from_local_seconds(instant + span.offset), span)
    }
}

/// No zone's offset changes by a day or more at once; instants this far from a transition cannot
/// see walls that the transition repeats or skips near the search's start.
const SKIP_MARGIN: i64 = 2 * 86_400;

/// Where a forward search resumes once the current span (ending at `span_end`) has no match and
/// the match under the current offset lies at `candidate`. Normally the next span; but when the
/// span ends well after the search point, every span before `candidate - SKIP_MARGIN` only
/// shows walls between the searched-from wall and the match (no fold reaches back that far), so
/// none of them fires and the search jumps straight there. This keeps `0 0 29 2 *` in a DST zone
/// from visiting every transition of the years between leap days.
fn skip_forward(instant: i64, span_end: i64, candidate: i64) -> i64 {
    if span_end.saturating_sub(instant) >= SKIP_MARGIN / 2 {
        span_end.max(candidate.saturating_sub(SKIP_MARGIN))
    } else {
        span_end
    }
}

/// The mirror of `skip_forward` for backward searches; `span_last` is the last instant before the
/// current span.
fn skip_backward(instant: i64, span_last: i64, candidate: i64) -> i64 {
    if instant.saturating_sub(span_last) >= SKIP_MARGIN / 2 {
        span_last.min(candidate.saturating_add(SKIP_MARGIN))
    } else {
        span_last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn ts(text: &str) -> i64 {
        text.parse::<Timestamp>().map(|t| t.as_second()).unwrap_or(i64::MIN)
    }

    fn iso(instant: i64) -> String {
        Timestamp::from_second(instant).map(|t| t.to_string()).unwrap_or_default()
    }

    fn cron(expr: &str, zone: &str) -> Cron {
        Cron::parse(expr, Some(zone)).unwrap_or_else(|err| panic!("{expr}: {err}"))
    }

    /// The next `count` fire times after `start`, in UTC ISO form.
    fn fires(expr: &str, zone: &str, start: &str, count: usize) -> Vec<String> {
        let cron = cron(expr, zone);
        let mut at = ts(start);
        let mut out = Vec::new();
        for _ in 0..count {
            let Some(next) = cron.next_after(at) else { break };
            out.push(iso(next));
            at = next;
        }
        out
    }

    /// The same fires found walking backwards from just after the last one.
    fn fires_backwards(expr: &str, zone: &str, forward: &[String]) -> Vec<String> {
        let cron = cron(expr, zone);
        let Some(last) = forward.last() else { return Vec::new() };
        let mut at = ts(last) + 1;
        let mut out = Vec::new();
        for _ in 0..forward.len() {
            let Some(prev) = cron.prev_before(at) else { break };
            out.push(iso(prev));
            at = prev;
        }
        out.reverse();
        out
    }

    fn check(expr: &str, zone: &str, start: &str, expected: &[&str]) {
        let got = fires(expr, zone, start, expected.len());
        assert_eq!(got, expected, "{expr} in {zone} after {start}");
        assert_eq!(fires_backwards(expr, zone, &got), got, "{expr} in {zone} backwards");
    }

    #[test]
    fn utc_basics() {
        check("* * * * *", "UTC", "2024-01-01T00:00:30Z", &["2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"]);
        check(
            "0 9 * * 1-5",
            "UTC",
            "2024-01-05T09:00:00Z",
            &["2024-01-08T09:00:00Z", "2024-01-09T09:00:00Z"],
        );
        check("0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]);
        check(
            "*/20 * * * * *",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-01T00:00:20Z", "2024-01-01T00:00:40Z"],
        );
    }

    #[test]
    fn day_fields_or_unless_one_is_starred() {
        // 2024-01-01 is a Monday: `0 0 */2 * 1` means odd days that are Mondays.
        check(
            "0 0 */2 * 1",
            "UTC",
            "2023-12-31T00:00:00Z",
            &["2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z", "2024-01-29T00:00:00Z"],
        );
        check(
            "0 0 13 * 5",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-05T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"],
        );
    }

    #[test]
    fn quartz_day_specials() {
        check("0 0 L * *", "UTC", "2024-01-31T00:00:00Z", &["2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"]);
        // 2024-03-31 is a Sunday, so LW is Friday the 29th; 2024-06-01 is a Saturday, so 1W is Monday the 3rd.
        check("0 0 LW * *", "UTC", "2024-03-01T00:00:00Z", &["2024-03-29T00:00:00Z"]);
        check("0 0 1W * *", "UTC", "2024-05-02T00:00:00Z", &["2024-06-03T00:00:00Z"]);
        check("0 0 * * 5L", "UTC", "2024-01-01T00:00:00Z", &["2024-01-26T00:00:00Z", "2024-02-23T00:00:00Z"]);
        check(
            "0 0 * * MON#2",
            "UTC",
            "2024-01-01T00:00:00Z",
            &["2024-01-08T00:00:00Z", "2024-02-12T00:00:00Z"],
        );
        check("0 0 * 2 MON#5", "UTC", "2024-03-01T00:00:00Z", &["2044-02-29T00:00:00Z"]);
    }

    #[test]
    fn instants_far_outside_the_range_find_nothing_in_any_zone() {
        for zone in ["UTC", "America/New_York", "Pacific/Chatham"] {
            let cron = cron("* * * * *", zone);
            assert_eq!(cron.prev_before(i64::MIN + 17_000), None, "{zone}");
            assert_eq!(cron.prev_before(MIN_INSTANT - 86_400), None, "{zone}");
            assert_eq!(cron.next_after(i64::MAX - 17_000), None, "{zone}");
            assert_eq!(cron.next_after(MAX_INSTANT + 86_400), None, "{zone}");
        }
    }

    #[test]
    fn year_bounds() {
        let every_minute = cron("* * * * *", "UTC");
        assert_eq!(every_minute.next_after(MAX_INSTANT), None);
        assert_eq!(every_minute.next_after(i64::MAX), None);
        assert_eq!(every_minute.prev_before(i64::MIN), None);
        assert_eq!(every_minute.next_after(i64::MIN), Some(MIN_INSTANT));
        assert_eq!(cron("0 0 29 2 *", "UTC").next_after(ts("9997-01-01T00:00:00Z")), None);
        assert_eq!(
            iso(cron("0 0 29 2 *", "UTC").prev_before(ts("2101-01-01T00:00:00Z")).unwrap_or(0)),
            "2096-02-29T00:00:00Z"
        );
    }

    #[test]
    fn new_york_fixed_time_in_the_gap_fires_after_the_jump() {
        check(
            "30 2 * * *",
            "America/New_York",
            "2024-03-09T12:00:00Z",
            &["2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"],
        );
        // Two skipped wall times still fire only once.
        check(
            "0,30 2 * * *",
            "America/New_York",
            "2024-03-10T00:00:00Z",
            &["2024-03-10T07:00:00Z", "2024-03-11T06:00:00Z"],
        );
    }

    #[test]
    fn a_search_starting_at_the_jump_still_fires_for_the_skipped_time() {
        // 2024-03-31 01:00:00Z is the jump in Berlin; the search starts exactly there.
        check(
            "0 2 * * *",
            "Europe/Berlin",
            "2024-03-31T00:59:59Z",
            &["2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z"],
        );
        check("0 30 2 * * *", "America/New_York", "2024-03-10T06:59:59Z", &["2024-03-10T07:00:00Z"]);
    }

    #[test]
    fn new_york_fixed_time_in_the_fold_fires_once() {
        check(
            "30 1 * * *",
            "America/New_York",
            "2024-11-02T12:00:00Z",
            &["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"],
        );
    }

    #[test]
    fn new_york_wildcard_schedules_follow_real_instants() {
        // Not fixed-time: nothing in the skipped hour, both passes of the repeated one.
        check("*/30 2 * * *", "America/New_York", "2024-03-09T12:00:00Z", &["2024-03-11T06:00:00Z"]);
        check(
            "0 * * * *",
            "America/New_York",
            "2024-11-03T04:30:00Z",
            &["2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z", "2024-11-03T07:00:00Z"],
        );
    }

    #[test]
    fn zones_with_midnight_and_odd_transitions() {
        // Havana springs forward at midnight: 00:00 does not exist on 2024-03-10.
        check(
            "0 0 * * *",
            "America/Havana",
            "2024-03-09T12:00:00Z",
            &["2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"],
        );
        // Lord Howe moves half an hour: 02:15 is skipped on 2024-10-06.
        check(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2024-10-05T00:00:00Z",
            &["2024-10-05T15:30:00Z", "2024-10-06T15:15:00Z"],
        );
        // Chatham (+12:45/+13:45) repeats 02:45-03:45 on 2024-04-07.
        check("0 3 * * *", "Pacific/Chatham", "2024-04-06T00:00:00Z", &["2024-04-06T13:15:00Z"]);
    }

    /// Every fire in [from, until) by brute force, minute by minute, straight from the rule:
    /// a non-fixed expression fires at every instant whose wall time matches; a fixed-time one at
    /// the first occurrence of each matching wall time and at a forward jump that skips one.
    fn brute_force(cron: &Cron, from: i64, until: i64) -> Vec<i64> {
        let mut fires = Vec::new();
        let mut instant = from;
        while instant < until {
            let (wall, span) = cron.wall_of(instant);
            let matches = cron.expr.matches_wall(wall);
            let skipped_match = cron.expr.fixed_time
                && instant == span.start
                && (span.start + span.offset_before..span.start + span.offset)
                    .step_by(60)
                    .any(|gap_wall| cron.expr.matches_wall(Civil::from_local_seconds(gap_wall)));
            let first_pass = !(cron.expr.fixed_time && span.is_second_occurrence(instant));
            if (matches && first_pass) || skipped_match {
                fires.push(instant);
            }
            instant += 60;
        }
        fires
    }

    #[test]
    fn searches_agree_with_brute_force_across_years_of_transitions() {
        let expressions =
            ["30 2 * * *", "0 0 29 2 *", "*/30 * * * *", "15 1 * * 0", "0 0 * * *", "45 23 L * *"];
        let zones = [
            "America/New_York",
            "Australia/Lord_Howe",
            "Pacific/Chatham",
            "America/Santiago",
            "Europe/Dublin",
        ];
        let (from, until) = (ts("2023-01-01T00:00:00Z"), ts("2029-01-01T00:00:00Z"));
        for zone in zones {
            for expr in expressions {
                let cron = cron(expr, zone);
                let expected = brute_force(&cron, from, until);
                let mut forward = Vec::new();
                let mut at = from - 1;
                while let Some(next) = cron.next_after(at).filter(|&next| next < until) {
                    forward.push(next);
                    at = next;
                }
                assert_eq!(forward, expected, "{expr} in {zone}, forward");
                let mut backward = Vec::new();
                let mut at = until;
                while let Some(prev) = cron.prev_before(at).filter(|&prev| prev >= from) {
                    backward.push(prev);
                    at = prev;
                }
                backward.reverse();
                assert_eq!(backward, expected, "{expr} in {zone}, backward");
            }
        }
    }
}
