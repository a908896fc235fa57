//! Plain-English descriptions of schedules, in the style of cron-descriptor and crontab.guru:
//! "At 09:00, Monday through Friday", "Every 15 minutes", "Every 1 hour 30 minutes".
//!
//! Promises: every function here returns a non-empty sentence that starts with a capital letter,
//! and none of them panics, whatever bits a `CronExpr` holds (even bits `parse` never sets). The
//! wording is meant for people, not for parsing back, and may be polished between releases.
//!
//! How: each field's bitmask is first sorted into a `Shape` (every value, one value, a step
//! pattern, or a list of values and runs), then the time of day, the days and the months are
//! phrased on their own and joined with commas.

use super::field::bounds;
use super::{CronExpr, DayRule, Field};
use crate::error::FieldKind;

const WEEKDAY_NAMES: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// The words for `n#k`, k = 1..=5.
const NTH_WORDS: [&str; 5] = ["first", "second", "third", "fourth", "fifth"];
/// Above this many times of day, listing each one ("At 09:00, 09:30 and 17:00") stops helping.
const MAX_LISTED_TIMES: usize = 8;
/// Bits 1..=31 and 1..=12: a day-of-month or month field that allows everything.
const EVERY_MONTH_DAY: u64 = ((1 << 31) - 1) << 1;
const EVERY_MONTH: u64 = ((1 << 12) - 1) << 1;
const EVERY_WEEKDAY: u64 = 0x7f;

/// One entry of a list: a single value, or a run of three or more consecutive values. A run
/// may wrap past the field's maximum (`Run(22, 2)` is 22, 23, 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    One(u32),
    Run(u32, u32),
}

/// What a field's set of values looks like, which decides how it is worded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// Every value of the field.
    All,
    One(u32),
    /// `start`, `start + step`, … `last`, at least three values, where `last + step` would
    /// pass the field's maximum: what `start/step` parses to.
    Step {
        start: u32,
        last: u32,
        step: u32,
    },
    /// Anything else, as single values and runs (empty only for a day field holding specials).
    List(Vec<Item>),
}

/// The words for a unit of the time of day.
struct Unit {
    one: &'static str,
    many: &'static str,
    /// The unit it counts within: seconds past the *minute*.
    parent: &'static str,
}

const SECOND: Unit = Unit { one: "second", many: "seconds", parent: "minute" };
const MINUTE: Unit = Unit { one: "minute", many: "minutes", parent: "hour" };
const HOUR: Unit = Unit { one: "hour", many: "hours", parent: "day" };

pub fn describe(expr: &CronExpr) -> String {
    let mut parts = vec![time_phrase(expr)];
    parts.extend(day_phrase(expr));
    parts.extend(month_phrase(&expr.month));
    capitalize(&parts.join(", "))
}

/// "Every 90 seconds", "Every 5 minutes", "Every 1 hour 30 minutes", "Every day".
pub fn describe_interval(period_seconds: i64) -> String {
    if period_seconds <= 0 {
        // Interval::parse rejects these; word them plainly rather than fail.
        return format!("Every {period_seconds} seconds");
    }
    let mut rest = period_seconds;
    let mut parts = Vec::new();
    for &(size, one, many) in interval_units(period_seconds) {
        let amount = rest / size;
        rest %= size;
        if amount != 0 {
            parts.push(if amount == 1 { format!("1 {one}") } else { format!("{amount} {many}") });
        }
    }
    // "Every hour", not "Every 1 hour"; but "Every 1 hour 30 minutes" keeps its numbers.
    match parts.as_slice() {
        [only] => format!("Every {}", only.strip_prefix("1 ").unwrap_or(only)),
        _ => format!("Every {}", parts.join(" ")),
    }
}

/// The units a positive period is split into, largest first.
fn interval_units(period_seconds: i64) -> &'static [(i64, &'static str, &'static str)] {
    if period_seconds % 604_800 == 0 {
        &[(604_800, "week", "weeks")]
    } else if period_seconds < 3600 && period_seconds % 60 != 0 {
        // Below an hour, a period that is not whole minutes reads best in seconds ("90 seconds"
        // rather than "1 minute 30 seconds").
        &[(1, "second", "seconds")]
    } else {
        &[
            (86_400, "day", "days"),
            (3600, "hour", "hours"),
            (60, "minute", "minutes"),
            (1, "second", "seconds"),
        ]
    }
}

pub fn describe_once(at_epoch_seconds: i64) -> String {
    format!("Once, at {}", iso_utc(at_epoch_seconds))
}

/// An instant as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso_utc(at: i64) -> String {
    let civil = crate::calendar::Civil::from_local_seconds(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        civil.year, civil.month, civil.day, civil.hour, civil.minute, civil.second
    )
}

// ---- Sorting bitmasks into shapes ----

/// The values a field can take; day-of-week stops at 6 because the parser folds 7 into 0.
fn value_range(kind: FieldKind) -> (u32, u32) {
    let (min, max) = bounds(kind);
    if kind == FieldKind::DayOfWeek {
        (min, 6)
    } else {
        (min, max)
    }
}

fn classify(values: u64, kind: FieldKind) -> Shape {
    let (min, max) = value_range(kind);
    let set: Vec<u32> = (min..=max).filter(|&value| values & (1u64 << value) != 0).collect();
    match set.as_slice() {
        [] => Shape::List(Vec::new()),
        [only] => Shape::One(*only),
        _ if set.len() as u32 == max - min + 1 => Shape::All,
        _ => step_of(&set, max).unwrap_or_else(|| Shape::List(items_of(values, kind))),
    }
}

/// The step pattern `set` follows, if it is one: evenly spaced, at least three values, and
/// running on to the field's maximum (otherwise a plain list reads better).
fn step_of(set: &[u32], max: u32) -> Option<Shape> {
    let (&start, &next, &last) = (set.first()?, set.get(1)?, set.last()?);
    // `set` is strictly increasing, so these subtractions cannot underflow.
    let step = next - start;
    let even = set.windows(2).all(|pair| matches!(pair, [a, b] if b - a == step));
    (set.len() >= 3 && step >= 2 && even && last + step > max).then_some(Shape::Step { start, last, step })
}

/// The values as single values and runs of three or more, in order. Fields that cycle (hours,
/// weekdays, months…) start at a run that wraps past the maximum, so `22-2` stays one run.
fn items_of(values: u64, kind: FieldKind) -> Vec<Item> {
    let (min, max) = value_range(kind);
    let has = |value: u32| values & (1u64 << value) != 0;
    let width = max - min + 1;
    // Day 31 is not followed by day 1 of the same month, so day-of-month never wraps.
    let origin = if kind == FieldKind::DayOfMonth { min } else { wrap_start(&has, min, max) };
    let mut items = Vec::new();
    let mut run: Option<(u32, u32, u32)> = None; // first value, last value, length
    for offset in 0..width {
        let value = min + (origin - min + offset) % width;
        if has(value) {
            run = Some(run.map_or((value, value, 1), |(first, _, length)| (first, value, length + 1)));
        } else if let Some(ended) = run.take() {
            push_run(&mut items, ended);
        }
    }
    if let Some(ended) = run {
        push_run(&mut items, ended);
    }
    items
}

/// Where a run crossing from the maximum back to the minimum begins, if that run has three or
/// more values; otherwise the minimum.
fn wrap_start(has: &dyn Fn(u32) -> bool, min: u32, max: u32) -> u32 {
    if !has(min) || !has(max) {
        return min;
    }
    let mut start = max;
    while start > min && has(start - 1) {
        start -= 1;
    }
    let mut end = min;
    while end < max && has(end + 1) {
        end += 1;
    }
    let length = (max - start + 1) + (end - min + 1);
    if start > min && length >= 3 {
        start
    } else {
        min
    }
}

fn push_run(items: &mut Vec<Item>, (first, last, length): (u32, u32, u32)) {
    match length {
        1 => items.push(Item::One(first)),
        2 => items.extend([Item::One(first), Item::One(last)]),
        _ => items.push(Item::Run(first, last)),
    }
}

// ---- The time of day ----

fn time_phrase(expr: &CronExpr) -> String {
    let second = classify(expr.second.values, FieldKind::Second);
    let minute = classify(expr.minute.values, FieldKind::Minute);
    let hour = classify(expr.hour.values, FieldKind::Hour);
    fixed_times(&second, &minute, &hour)
        .or_else(|| clock_run(&second, &minute, &hour))
        .unwrap_or_else(|| general_time(&second, &minute, &hour))
}

/// A few fixed times of day, listed: "at 09:00 and 17:00", "at 09:00:30".
fn fixed_times(second: &Shape, minute: &Shape, hour: &Shape) -> Option<String> {
    let (seconds, minutes, hours) = (singles(second)?, singles(minute)?, singles(hour)?);
    if seconds.len() * minutes.len() * hours.len() > MAX_LISTED_TIMES {
        return None;
    }
    // Seconds are shown only when some are not zero: "09:00", not "09:00:00".
    let show_seconds = seconds.iter().any(|&s| s != 0);
    let mut times = Vec::new();
    for &h in &hours {
        for &m in &minutes {
            times.extend(seconds.iter().map(|&s| clock(h, m, show_seconds.then_some(s))));
        }
    }
    Some(format!("at {}", join_list(&times, "and")))
}

/// The values of a field made only of single values (no runs, steps or "every").
fn singles(shape: &Shape) -> Option<Vec<u32>> {
    match shape {
        Shape::One(value) => Some(vec![*value]),
        Shape::List(items) if !items.is_empty() => items
            .iter()
            .map(|item| match *item {
                Item::One(value) => Some(value),
                Item::Run(..) => None,
            })
            .collect(),
        _ => None,
    }
}

/// One unbroken stretch inside a single hour: "every minute from 09:00 through 09:10".
fn clock_run(second: &Shape, minute: &Shape, hour: &Shape) -> Option<String> {
    let Shape::One(h) = *hour else { return None };
    if let (Shape::One(s), Some((first, last))) = (second, span(minute)) {
        let s = (*s != 0).then_some(*s);
        return Some(format!("every minute from {} through {}", clock(h, first, s), clock(h, last, s)));
    }
    let (Shape::One(m), Some((first, last))) = (minute, span(second)) else { return None };
    Some(format!("every second from {} through {}", clock(h, *m, Some(first)), clock(h, *m, Some(last))))
}

/// The first and last of a second or minute field that is one run not wrapping past 59.
fn span(shape: &Shape) -> Option<(u32, u32)> {
    match shape {
        Shape::All => Some((0, 59)),
        Shape::List(items) => match items.as_slice() {
            [Item::Run(first, last)] if first < last => Some((*first, *last)),
            _ => None,
        },
        _ => None,
    }
}

/// The general case: the finest restricted unit leads ("every 5 minutes"), and the coarser
/// ones narrow it down ("between 09:00 and 17:59").
fn general_time(second: &Shape, minute: &Shape, hour: &Shape) -> String {
    let mut parts = Vec::new();
    if *second == Shape::One(0) {
        // On the hour, every hour or every n hours: "every 2 hours" says it all.
        if let (Shape::One(0), Some(phrase)) = (minute, hours_leading(hour)) {
            return phrase;
        }
        parts.push(leading(minute, &MINUTE));
    } else if let (Shape::One(s), Shape::One(m)) = (second, minute) {
        parts.push(format!("at {} and {} past the hour", count(*m, &MINUTE), count(*s, &SECOND)));
    } else {
        parts.push(leading(second, &SECOND));
        parts.extend(minutes_within(minute));
    }
    parts.extend(hours_within(hour));
    parts.join(", ")
}

fn hours_leading(hour: &Shape) -> Option<String> {
    match hour {
        Shape::All => Some("every hour".to_string()),
        Shape::Step { start: 0, step, .. } => Some(format!("every {step} hours")),
        _ => None,
    }
}

/// A second or minute field as the main clause: "every 15 minutes", "at 15 minutes past the hour".
fn leading(shape: &Shape, unit: &Unit) -> String {
    let (one, many, parent) = (unit.one, unit.many, unit.parent);
    match shape {
        Shape::All => format!("every {one}"),
        Shape::One(value) => format!("at {} past the {parent}", count(*value, unit)),
        Shape::Step { start: 0, step, .. } => format!("every {step} {many}"),
        Shape::Step { start, last, step } => {
            format!("every {} {one} from {start} through {last}", ordinal(*step))
        }
        Shape::List(items) => match items.as_slice() {
            [Item::Run(first, last)] => format!("every {one} from {first} through {last} past the {parent}"),
            _ => format!("at {} {many} past the {parent}", numbers(items)),
        },
    }
}

/// A minute field narrowing down a seconds clause: "during minute 5 past the hour".
fn minutes_within(minute: &Shape) -> Option<String> {
    match minute {
        Shape::All => None,
        Shape::One(value) => Some(format!("during minute {value} past the hour")),
        Shape::Step { start, last, step } => Some(step_within(*start, *last, *step, &MINUTE)),
        Shape::List(items) => Some(format!("during minutes {} past the hour", numbers(items))),
    }
}

/// An hour field narrowing down a minutes or seconds clause: "between 09:00 and 17:59".
fn hours_within(hour: &Shape) -> Option<String> {
    match hour {
        Shape::All => None,
        Shape::One(value) => Some(between(*value, *value)),
        Shape::Step { start, last, step } => Some(step_within(*start, *last, *step, &HOUR)),
        Shape::List(items) => match items.as_slice() {
            [Item::Run(first, last)] => Some(between(*first, *last)),
            _ => Some(format!("during hours {}", numbers(items))),
        },
    }
}

/// "during every 2nd hour", "during every 3rd hour from 1 through 22". Ordinals rather than
/// "every 2 hours", which would read as a second schedule beside the leading clause.
fn step_within(start: u32, last: u32, step: u32, unit: &Unit) -> String {
    let every = format!("during every {} {}", ordinal(step), unit.one);
    // Seconds, minutes and hours all start at 0, where a step needs no "from".
    if start == 0 {
        every
    } else {
        format!("{every} from {start} through {last}")
    }
}

/// From the start of hour `first` to the end of hour `last`, which may wrap past midnight.
fn between(first: u32, last: u32) -> String {
    format!("between {first:02}:00 and {last:02}:59")
}

// ---- Days and months ----

fn day_phrase(expr: &CronExpr) -> Option<String> {
    let month_days = (expr.day_of_month.values & EVERY_MONTH_DAY != EVERY_MONTH_DAY)
        .then(|| month_day_phrase(&expr.day_of_month));
    let weekdays =
        (expr.day_of_week.values & EVERY_WEEKDAY != EVERY_WEEKDAY).then(|| Weekdays::of(&expr.day_of_week));
    match (expr.day_rule, month_days, weekdays) {
        (DayRule::Either, Some(days), Some(weekdays)) => {
            Some(format!("{days} or {}", weekdays.alternative()))
        }
        // Under ∨, a field that allows every day makes every day match.
        (DayRule::Either, _, _) => None,
        (DayRule::Both, Some(days), Some(weekdays)) => Some(format!("{days}, {}", weekdays.condition())),
        (DayRule::Both, Some(days), None) => Some(days),
        (DayRule::Both, None, Some(weekdays)) => Some(weekdays.standalone()),
        (DayRule::Both, None, None) => None,
    }
}

/// "on day 1 of the month", "on the last weekday of the month", "on days 1 and 15 and the last
/// day of the month".
fn month_day_phrase(field: &Field) -> String {
    let shape = classify(field.values, FieldKind::DayOfMonth);
    if let (Shape::Step { start, step, .. }, false) = (&shape, field.has_specials()) {
        return format!("on every {} day of the month starting on day {start}", ordinal(*step));
    }
    let mut terms: Vec<String> = month_day_values(&shape).into_iter().collect();
    if field.last_day {
        terms.push("the last day".to_string());
    }
    if field.last_weekday {
        terms.push("the last weekday".to_string());
    }
    for day in set_bits(field.nearest_weekday, 1, 31) {
        terms.push(format!("the weekday nearest day {day}"));
    }
    if terms.is_empty() {
        // Only reachable for an expression `parse` would not build; say so rather than panic.
        return "on no day of the month".to_string();
    }
    format!("on {} of the month", join_list(&terms, "and"))
}

fn month_day_values(shape: &Shape) -> Option<String> {
    match shape {
        Shape::All => Some("every day".to_string()),
        Shape::One(day) => Some(format!("day {day}")),
        Shape::Step { start, step, .. } => {
            Some(format!("every {} day starting on day {start}", ordinal(*step)))
        }
        Shape::List(items) if items.is_empty() => None,
        Shape::List(items) => Some(format!("days {}", numbers(items))),
    }
}

/// A restricted day-of-week field: plain weekdays plus `nL` / `n#k` terms.
struct Weekdays {
    items: Vec<Item>,
    names: Vec<String>,
    /// "the last Friday", "the second Monday": each needs "of the month" after it.
    specials: Vec<String>,
}

impl Weekdays {
    fn of(field: &Field) -> Weekdays {
        let items = items_of(field.values & EVERY_WEEKDAY, FieldKind::DayOfWeek);
        let names = render_items(&items, weekday_name);
        let mut specials = Vec::new();
        for (word, bits) in NTH_WORDS.iter().zip(field.nth_weekday) {
            specials.extend(set_bits(bits, 0, 6).map(|day| format!("the {word} {}", weekday_name(day))));
        }
        specials.extend(
            set_bits(field.last_of_weekday, 0, 6).map(|day| format!("the last {}", weekday_name(day))),
        );
        Weekdays { items, names, specials }
    }

    /// "of the month" after a list that ends with specials.
    fn month_suffix(&self) -> &'static str {
        if self.specials.is_empty() {
            ""
        } else {
            " of the month"
        }
    }

    /// Alone: "Monday through Friday", "only on Sunday", "on the last Friday of the month".
    fn standalone(&self) -> String {
        let specials = format!("on {} of the month", join_list(&self.specials, "and"));
        match (self.items.as_slice(), self.specials.is_empty()) {
            ([Item::Run(..)], true) => join_list(&self.names, "and"),
            (_, true) => format!("only on {}", join_list(&self.names, "and")),
            ([], false) => specials,
            (_, false) => format!("on {} and {specials}", join_list(&self.names, "and")),
        }
    }

    /// After the day-of-month phrase under ∨: "or on Friday".
    fn alternative(&self) -> String {
        let terms: Vec<String> = self.names.iter().chain(&self.specials).cloned().collect();
        format!("on {}{}", join_list(&terms, "and"), self.month_suffix())
    }

    /// After the day-of-month phrase under ∧, making the AND explicit: "if it is a Monday".
    fn condition(&self) -> String {
        let terms: Vec<String> = self.names.iter().chain(&self.specials).cloned().collect();
        match (self.items.as_slice(), terms.as_slice()) {
            ([Item::One(_)], [name]) => format!("if it is a {name}"),
            ([], [special]) => format!("if it is {special} of the month"),
            _ => format!("if it falls on {}{}", join_list(&terms, "or"), self.month_suffix()),
        }
    }
}

/// "only in February", "only in January through March".
fn month_phrase(month: &Field) -> Option<String> {
    if month.values & EVERY_MONTH == EVERY_MONTH {
        return None;
    }
    let names = render_items(&items_of(month.values, FieldKind::Month), month_name);
    Some(format!("only in {}", join_list(&names, "and")))
}

// ---- Small wording helpers ----

/// The set bits of `bits` between `min` and `max`, in order.
fn set_bits(bits: u64, min: u32, max: u32) -> impl Iterator<Item = u32> {
    (min..=max.min(63)).filter(move |&value| bits & (1u64 << value) != 0)
}

fn render_items(items: &[Item], name: fn(u32) -> String) -> Vec<String> {
    items
        .iter()
        .map(|item| match *item {
            Item::One(value) => name(value),
            Item::Run(first, last) => format!("{} through {}", name(first), name(last)),
        })
        .collect()
}

/// "0, 15 and 45", "0 through 10 and 30".
fn numbers(items: &[Item]) -> String {
    join_list(&render_items(items, |value| value.to_string()), "and")
}

fn weekday_name(day: u32) -> String {
    WEEKDAY_NAMES.get(day as usize).map_or_else(|| format!("weekday {day}"), |name| name.to_string())
}

fn month_name(month: u32) -> String {
    let name = month.checked_sub(1).and_then(|index| MONTH_NAMES.get(index as usize));
    name.map_or_else(|| format!("month {month}"), |name| name.to_string())
}

/// "a", "a and b", "a, b and c" (no serial comma, like cron-descriptor).
fn join_list(parts: &[String], conjunction: &str) -> String {
    match parts {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

/// "1 minute", "15 minutes".
fn count(amount: u32, unit: &Unit) -> String {
    if amount == 1 {
        format!("1 {}", unit.one)
    } else {
        format!("{amount} {}", unit.many)
    }
}

/// "2nd", "11th", "21st".
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "09:05", or "09:05:30" with seconds.
fn clock(hour: u32, minute: u32, second: Option<u32>) -> String {
    match second {
        Some(second) => format!("{hour:02}:{minute:02}:{second:02}"),
        None => format!("{hour:02}:{minute:02}"),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        // Unreachable: the time-of-day phrase is never empty.
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(expr: &str) -> String {
        match CronExpr::parse(expr) {
            Ok(parsed) => describe(&parsed),
            Err(error) => panic!("{expr:?} does not parse: {error}"),
        }
    }

    const EXAMPLES: &[(&str, &str)] = &[
        ("* * * * *", "Every minute"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("* * * * * *", "Every second"),
        ("*/10 * * * * *", "Every 10 seconds"),
        ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
        ("0 0 * * *", "At 00:00"),
        ("30 2 1 * *", "At 02:30, on day 1 of the month"),
        ("0 0 29 2 *", "At 00:00, on day 29 of the month, only in February"),
        ("0 * * * *", "Every hour"),
        ("15 * * * *", "At 15 minutes past the hour"),
        ("0 9,17 * * *", "At 09:00 and 17:00"),
        ("0 0 * * 0", "At 00:00, only on Sunday"),
        ("0 0 L * *", "At 00:00, on the last day of the month"),
        ("0 0 * * 5L", "At 00:00, on the last Friday of the month"),
        ("0 0 * * MON#2", "At 00:00, on the second Monday of the month"),
        ("0 0 15W * *", "At 00:00, on the weekday nearest day 15 of the month"),
        ("0 0 LW * *", "At 00:00, on the last weekday of the month"),
        ("0 0 13 * 5", "At 00:00, on day 13 of the month or on Friday"),
        ("0 0 */2 * 1", "At 00:00, on every 2nd day of the month starting on day 1, if it is a Monday"),
        ("30 0 9 * * *", "At 09:00:30"),
        ("0-10 9 * * *", "Every minute from 09:00 through 09:10"),
        ("*/5 9-17 * * *", "Every 5 minutes, between 09:00 and 17:59"),
        ("0 22-2 * * *", "At 0 minutes past the hour, between 22:00 and 02:59"),
        ("0 0 * 1-3 *", "At 00:00, only in January through March"),
        ("0 0 * 1,7 *", "At 00:00, only in January and July"),
        ("0 0 * * 1,3,5", "At 00:00, only on Monday, Wednesday and Friday"),
    ];

    /// Expressions beyond the brief's examples, pinned so that wording changes are deliberate.
    const MORE: &[(&str, &str)] = &[
        ("0 */2 * * *", "Every 2 hours"),
        ("30 */2 * * *", "At 30 minutes past the hour, during every 2nd hour"),
        ("0 1/3 * * *", "At 0 minutes past the hour, during every 3rd hour from 1 through 22"),
        ("5/15 * * * *", "Every 15th minute from 5 through 50"),
        ("0,30 * * * *", "At 0 and 30 minutes past the hour"),
        ("0-10,30 * * * *", "At 0 through 10 and 30 minutes past the hour"),
        ("0-10 * * * *", "Every minute from 0 through 10 past the hour"),
        ("* 9 * * *", "Every minute from 09:00 through 09:59"),
        ("*/5 9,17 * * *", "Every 5 minutes, during hours 9 and 17"),
        ("0,30 9,17 * * *", "At 09:00, 09:30, 17:00 and 17:30"),
        ("*/10 5 * * * *", "Every 10 seconds, during minute 5 past the hour"),
        ("30 0 * * * *", "At 0 minutes and 30 seconds past the hour"),
        ("0-10 30 9 * * *", "Every second from 09:30:00 through 09:30:10"),
        ("0 0 * * FRI-MON", "At 00:00, Friday through Monday"),
        ("0 0 * nov-feb *", "At 00:00, only in November through February"),
        ("0 0 1,L * *", "At 00:00, on day 1 and the last day of the month"),
        ("0 0 1-10 * *", "At 00:00, on days 1 through 10 of the month"),
        ("0 0 1 * 1-5", "At 00:00, on day 1 of the month or on Monday through Friday"),
        (
            "0 0 */2 * 1-5",
            "At 00:00, on every 2nd day of the month starting on day 1, if it falls on Monday through Friday",
        ),
        ("0 0 1-31 * 1", "At 00:00"),
        ("@weekly", "At 00:00, only on Sunday"),
    ];

    #[test]
    fn describe_examples() {
        for &(expr, expected) in EXAMPLES.iter().chain(MORE) {
            assert_eq!(text(expr), expected, "for {expr:?}");
        }
    }

    #[test]
    fn describe_intervals_and_once() {
        assert_eq!(describe_interval(90), "Every 90 seconds");
        assert_eq!(describe_interval(300), "Every 5 minutes");
        assert_eq!(describe_interval(5400), "Every 1 hour 30 minutes");
        assert_eq!(describe_interval(3600), "Every hour");
        assert_eq!(describe_interval(86_400), "Every day");
        assert_eq!(describe_interval(60), "Every minute");
        assert_eq!(describe_interval(1), "Every second");
        assert_eq!(describe_interval(604_800), "Every week");
        assert_eq!(describe_interval(90_000), "Every 1 day 1 hour");
        assert_eq!(describe_interval(0), "Every 0 seconds");
        assert!(describe_interval(i64::MAX).starts_with("Every "));
        assert!(describe_interval(i64::MIN).starts_with("Every "));
        assert_eq!(describe_once(1_714_564_800), "Once, at 2024-05-01T12:00:00Z");
    }

    /// A small deterministic generator, so the sweep needs no extra crate and always repeats.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        *state >> 33
    }

    fn pick<'a>(state: &mut u64, options: &[&'a str]) -> &'a str {
        options.get(next(state) as usize % options.len()).copied().unwrap_or("*")
    }

    fn assert_sentence(description: &str, what: &str) {
        assert!(description.chars().next().is_some_and(char::is_uppercase), "{what}: {description:?}");
        assert!(!description.contains("  ") && !description.ends_with(' '), "{what}: {description:?}");
    }

    #[test]
    fn describe_never_panics_on_varied_expressions() {
        let seconds = ["0", "*", "*/10", "30", "5-10", "0,30", "10/15", "50-10", "0-5,30"];
        let minutes = ["*", "0", "*/15", "15", "0-10", "0,30", "5/20", "50-10", "1,2,3,10", "0-10,30-40"];
        let hours = ["*", "0", "9", "9,17", "9-17", "22-2", "*/2", "1/3", "0-5,12", "9-17/2"];
        let month_days =
            ["*", "1", "L", "LW", "15W", "*/2", "1-10", "1,15", "13", "?", "1,L", "5/7", "30-2", "1W,L"];
        let months = ["*", "2", "1-3", "1,7", "*/3", "nov-feb", "2,4"];
        let weekdays =
            ["*", "1-5", "0", "5L", "MON#2", "1,3,5", "?", "fri-mon", "1#1,5L", "*/2", "sat,sun", "1-3,6L"];
        let mut state = 7;
        let mut described = 0;
        for round in 0..800 {
            let fields = [
                pick(&mut state, &minutes),
                pick(&mut state, &hours),
                pick(&mut state, &month_days),
                pick(&mut state, &months),
                pick(&mut state, &weekdays),
            ];
            let mut expr = fields.join(" ");
            if round % 2 == 0 {
                expr = format!("{} {expr}", pick(&mut state, &seconds));
            }
            if let Ok(parsed) = CronExpr::parse(&expr) {
                assert_sentence(&describe(&parsed), &expr);
                described += 1;
            }
        }
        assert!(described > 300, "only {described} expressions parsed");
    }

    /// Raw bitmasks, including ones `parse` never builds (empty, out-of-range bits).
    #[test]
    fn describe_never_panics_on_arbitrary_bits() {
        let mut state = 11;
        let parsed = CronExpr::parse("* * * * *").unwrap_or_else(|e| panic!("{e}"));
        for round in 0..400 {
            let mut field = || Field {
                values: next(&mut state) << 31 ^ next(&mut state),
                starred: next(&mut state) % 2 == 0,
                last_day: next(&mut state) % 4 == 0,
                last_weekday: next(&mut state) % 4 == 0,
                nearest_weekday: if next(&mut state) % 3 == 0 { next(&mut state) } else { 0 },
                last_of_weekday: if next(&mut state) % 3 == 0 { next(&mut state) } else { 0 },
                nth_weekday: [0, next(&mut state) % 3, 0, 0, u64::MAX * (next(&mut state) % 2)],
            };
            let expr = CronExpr {
                second: field(),
                minute: field(),
                hour: field(),
                day_of_month: field(),
                month: field(),
                day_of_week: field(),
                day_rule: if round % 2 == 0 { DayRule::Both } else { DayRule::Either },
                fixed_time: false,
                has_seconds: true,
                ..parsed.clone()
            };
            assert!(!describe(&expr).is_empty());
            let empty = CronExpr { second: Field::default(), minute: Field::default(), ..expr };
            assert!(!describe(&empty).is_empty());
        }
    }
}
