//! The kinds of schedule a job can have, behind one enum with one question: when next?
//!
//! - `Cron`: a cron expression in a zone (`cron::Cron`).
//! - `Interval`: every `period` seconds, on the grid `anchor + k * period` (k any integer), so an
//!   interval keeps its phase across restarts and never drifts.
//! - `Once`: a single instant.
//!
//! Instants are epoch seconds here; the wheel works in milliseconds and converts at `NextFire`.

use std::sync::Arc;

use crate::cron::{Cron, MAX_INSTANT, MIN_INSTANT};
use crate::error::CronError;
use crate::wheel::NextFire;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    pub period: i64,
    pub anchor: i64,
}

/// The units an interval may be written in, largest first.
const INTERVAL_UNITS: [(char, i64); 5] = [('w', 604_800), ('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
/// A period longer than this many seconds (about 100 years) is certainly a mistake.
const MAX_PERIOD: i64 = 100 * 366 * 86_400;

impl Interval {
    /// Parses `"90s"`, `"5m"`, `"2h"`, `"1d"`, `"1w"` and sums such as `"1h30m"`.
    pub fn parse(spec: &str, anchor: i64) -> Result<Interval, CronError> {
        let error = |reason: String| CronError::Interval { spec: spec.chars().take(40).collect(), reason };
        let text = spec.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(error("empty: expected a duration such as 90s, 5m, 2h, 1d or 1h30m".into()));
        }
        let mut period: i64 = 0;
        let mut number: Option<i64> = None;
        for ch in text.chars() {
            if let Some(digit) = ch.to_digit(10) {
                let value = number.unwrap_or(0).checked_mul(10).and_then(|n| n.checked_add(i64::from(digit)));
                number = Some(value.ok_or_else(|| error("the number is too large".into()))?);
                continue;
            }
            let Some(&(_, unit)) = INTERVAL_UNITS.iter().find(|(name, _)| *name == ch) else {
                return Err(error(format!("{ch:?} is not a unit: use s, m, h, d or w")));
            };
            let Some(count) = number.take() else {
                return Err(error(format!("unit {ch:?} has no number before it")));
            };
            period = count
                .checked_mul(unit)
                .and_then(|seconds| period.checked_add(seconds))
                .ok_or_else(|| error("the duration is too large".into()))?;
        }
        if number.is_some() {
            return Err(error("the last number has no unit: use s, m, h, d or w".into()));
        }
        if period <= 0 {
            return Err(error("the period must be at least one second".into()));
        }
        if period > MAX_PERIOD {
            return Err(error("the period is longer than 100 years".into()));
        }
        Ok(Interval { period, anchor })
    }

    pub fn next_after(&self, after: i64) -> Option<i64> {
        let steps = after.checked_sub(self.anchor)?.div_euclid(self.period).checked_add(1)?;
        let next = self.anchor.checked_add(steps.checked_mul(self.period)?)?;
        (next <= MAX_INSTANT).then_some(next)
    }

    pub fn prev_before(&self, before: i64) -> Option<i64> {
        let steps = before.checked_sub(1)?.checked_sub(self.anchor)?.div_euclid(self.period);
        let prev = self.anchor.checked_add(steps.checked_mul(self.period)?)?;
        (prev >= MIN_INSTANT).then_some(prev)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Shared: a cron carries six field masks, and every wheel entry of a job points at one copy.
    Cron(Arc<Cron>),
    Interval(Interval),
    Once(i64),
}

impl Schedule {
    /// The first fire strictly after `after` (epoch seconds), or None if there is none.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after),
            Schedule::Interval(interval) => interval.next_after(after),
            Schedule::Once(at) => (*at > after).then_some(*at),
        }
    }

    /// The last fire strictly before `before` (epoch seconds), or None if there is none.
    pub fn prev_before(&self, before: i64) -> Option<i64> {
        match self {
            Schedule::Cron(cron) => cron.prev_before(before),
            Schedule::Interval(interval) => interval.prev_before(before),
            Schedule::Once(at) => (*at < before).then_some(*at),
        }
    }
}

impl Schedule {
    /// Whether `instant` is a fire time: the last fire before the next second is this one.
    pub fn fires_at(&self, instant: i64) -> bool {
        instant.checked_add(1).and_then(|after| self.prev_before(after)) == Some(instant)
    }
}

impl NextFire for Schedule {
    /// Schedules fire on whole seconds, so the next fire after a millisecond instant is the next
    /// fire after the second it falls in.
    fn next_fire_after_ms(&self, after_ms: i64) -> Option<i64> {
        self.next_after(after_ms.div_euclid(1000))?.checked_mul(1000)
    }

    /// A parsed cron is shared (`Arc`) by every entry made from it, and a cron search is the
    /// costly answer; intervals and single instants answer in a few operations.
    fn rule_id(&self) -> Option<usize> {
        match self {
            Schedule::Cron(cron) => Some(Arc::as_ptr(cron) as usize),
            Schedule::Interval(_) | Schedule::Once(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_units_and_sums() {
        let period = |spec: &str| Interval::parse(spec, 0).map(|i| i.period);
        assert_eq!(period("90s"), Ok(90));
        assert_eq!(period("5m"), Ok(300));
        assert_eq!(period("1h30m"), Ok(5400));
        assert_eq!(period("1D"), Ok(86_400));
        assert_eq!(period("2w"), Ok(1_209_600));
    }

    #[test]
    fn interval_errors_say_what_is_wrong() {
        let message =
            |spec: &str| Interval::parse(spec, 0).map_err(|e| e.to_string()).err().unwrap_or_default();
        assert_eq!(message("5x"), "interval \"5x\": 'x' is not a unit: use s, m, h, d or w");
        assert_eq!(message("10"), "interval \"10\": the last number has no unit: use s, m, h, d or w");
        assert_eq!(message("0s"), "interval \"0s\": the period must be at least one second");
        assert_eq!(message(""), "interval \"\": empty: expected a duration such as 90s, 5m, 2h, 1d or 1h30m");
        assert!(message("99999999999999999999s").contains("too large"));
    }

    #[test]
    fn intervals_keep_their_phase() {
        let every_90s = Interval { period: 90, anchor: 1_000 };
        assert_eq!(every_90s.next_after(1_000), Some(1_090));
        assert_eq!(every_90s.next_after(999), Some(1_000));
        assert_eq!(every_90s.next_after(0), Some(10));
        assert_eq!(every_90s.prev_before(1_090), Some(1_000));
        assert_eq!(every_90s.prev_before(1_091), Some(1_090));
        assert_eq!(every_90s.next_after(i64::MAX), None);
    }

    /// The wheel answers a shared rule once per instant: entries sharing one parsed cron, and
    /// entries with their own copies of it or of other rules, fire exactly as unshared ones.
    #[test]
    fn shared_rules_fire_like_separate_ones() -> Result<(), CronError> {
        use crate::wheel::{Fire, Wheel};
        let start_ms = 1_700_000_000_000;
        // Rules that fire at different instants, so one rule is often asked about several
        // instants in a row within one advance.
        let exprs = ["*/2 * * * * *", "*/3 * * * * *", "7 * * * * *"];
        let shared: Vec<Arc<Cron>> = exprs
            .iter()
            .map(|expr| Cron::parse(expr, Some("Europe/Berlin")).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let mut together = Wheel::new(start_ms);
        let mut apart = Wheel::new(start_ms);
        for job in 0..45u64 {
            // Neighbours in a slot share a rule (jobs are armed in order), so the memo is hit.
            let pick = usize::try_from(job / 15).unwrap_or(0) % exprs.len();
            let rule = shared.get(pick).cloned().ok_or(CronError::Empty)?;
            together.insert(job, 0, Schedule::Cron(rule), start_ms);
            apart.insert(
                job,
                0,
                Schedule::Cron(Arc::new(Cron::parse(exprs[pick], Some("Europe/Berlin"))?)),
                start_ms,
            );
        }
        let (mut fired_together, mut fired_apart) = (Vec::<Fire>::new(), Vec::<Fire>::new());
        // Uneven steps: some advances cross several instants (catch-up), some none.
        for step in [1, 999, 1_000, 2_500, 7_000, 1, 60_000, 500, 500] {
            let now = together.elapsed_ms() + step;
            together.advance(now, &mut fired_together);
            apart.advance(now, &mut fired_apart);
        }
        let key = |fire: &Fire| (fire.scheduled_ms, fire.job_id);
        fired_together.sort_by_key(key);
        fired_apart.sort_by_key(key);
        assert_eq!(fired_together.len(), fired_apart.len());
        assert!(fired_together.len() > 45 * 10, "{} fires", fired_together.len());
        assert_eq!(fired_together, fired_apart);
        Ok(())
    }

    #[test]
    fn insert_many_arms_like_insert() -> Result<(), CronError> {
        use crate::wheel::Wheel;
        let after_ms = 1_700_000_000_500;
        let rules: Vec<Arc<Cron>> = ["0 * * * *", "*/5 * * * * *", "0 0 29 2 *"]
            .iter()
            .map(|expr| Cron::parse(expr, Some("Asia/Kolkata")).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let schedule = |job: u64| -> Schedule {
            match job % 5 {
                3 => Schedule::Interval(Interval { period: 7, anchor: 1 }),
                4 => Schedule::Once(if job % 2 == 0 { 1_600_000_000 } else { 1_800_000_000 }), // past: never armed
                pick => Schedule::Cron(rules[usize::try_from(pick).unwrap_or(0)].clone()),
            }
        };
        let mut one_by_one = Wheel::new(after_ms - 1);
        let mut expected_earliest: Option<i64> = None;
        for job in 0..60u64 {
            if let Some(deadline) = one_by_one.insert(job, 0, schedule(job), after_ms) {
                expected_earliest = Some(expected_earliest.map_or(deadline, |e| e.min(deadline)));
            }
        }
        let mut batched = Wheel::new(after_ms - 1);
        batched.insert(4, 0, schedule(0), after_ms); // an entry a never-firing one must replace
        let earliest = batched.insert_many((0..60u64).map(|job| (job, 0, schedule(job))), after_ms);
        assert_eq!(earliest, expected_earliest);
        assert_eq!(batched.len(), one_by_one.len());
        for job in 0..60u64 {
            assert_eq!(batched.deadline_of(job, 0), one_by_one.deadline_of(job, 0), "job {job}");
        }
        Ok(())
    }

    #[test]
    fn once_fires_once_and_milliseconds_round_to_seconds() {
        let once = Schedule::Once(100);
        assert_eq!(once.next_after(99), Some(100));
        assert_eq!(once.next_after(100), None);
        assert_eq!(once.next_fire_after_ms(99_999), Some(100_000));
        assert_eq!(once.next_fire_after_ms(100_000), None);
        let every_second = Schedule::Interval(Interval { period: 1, anchor: 0 });
        assert_eq!(every_second.next_fire_after_ms(1_500), Some(2_000));
        assert_eq!(every_second.next_fire_after_ms(2_000), Some(3_000));
    }
}
