//! One cron field: its text turned into a bitmask of allowed values plus the day-field specials.
//!
//! Grammar of a field (cron(5) as Vixie/Debian read it, with the Quartz day specials):
//!   field := term ("," term)*
//!   term  := range ["/" step] | "L" | "LW" | n "W"        (day-of-month only)
//!          | value "L" | value "#" k                       (day-of-week only)
//!   range := "*" | "?" (day fields) | value | value "-" value
//! A range whose start is above its end wraps past the field's maximum (`22-2`, `FRI-MON`).
//! `value/step` runs from value to the field's maximum. Day-of-week 7 is Sunday, like 0.
//!
//! Invariants: bit `v` of `values` is set iff value `v` is allowed, and only bits inside the
//! field's range are ever set; every error names the token and its 1-based column.

use crate::error::{CronError, FieldKind};

const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// The longest token echoed back in an error; a 10,000-character token is cut to this.
const MAX_ECHO: usize = 24;

/// The bounds a field's values must lie in (day-of-week accepts 7 as a second Sunday).
pub fn bounds(kind: FieldKind) -> (u32, u32) {
    match kind {
        FieldKind::Second | FieldKind::Minute => (0, 59),
        FieldKind::Hour => (0, 23),
        FieldKind::DayOfMonth => (1, 31),
        FieldKind::Month => (1, 12),
        FieldKind::DayOfWeek => (0, 7),
    }
}

/// The parsed field. The day specials stay empty in every field but the two day fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Field {
    pub values: u64,
    /// The field's text starts with `*` or is `?`: the marker of cron's day-field rule.
    pub starred: bool,
    /// Day of month `L`.
    pub last_day: bool,
    /// Day of month `LW`.
    pub last_weekday: bool,
    /// Days of month `nW`, bit n.
    pub nearest_weekday: u64,
    /// Day of week `nL`, bit = weekday.
    pub last_of_weekday: u64,
    /// Day of week `n#k`: entry k-1 holds the weekday bits for the k-th occurrence.
    pub nth_weekday: [u64; 5],
}

impl Field {
    pub fn has_specials(&self) -> bool {
        self.last_day
            || self.last_weekday
            || self.nearest_weekday != 0
            || self.last_of_weekday != 0
            || self.nth_weekday.iter().any(|&bits| bits != 0)
    }
}

/// Where a piece of text sits in the expression, for error messages.
#[derive(Clone, Copy)]
struct Place {
    kind: FieldKind,
    column: usize,
}

impl Place {
    fn error(self, reason: String) -> CronError {
        CronError::Field { field: self.kind, column: self.column, reason }
    }

    fn shifted(self, text_before: &str) -> Place {
        Place { kind: self.kind, column: self.column + text_before.chars().count() }
    }
}

fn echo(token: &str) -> String {
    if token.chars().count() <= MAX_ECHO {
        format!("{token:?}")
    } else {
        let head: String = token.chars().take(MAX_ECHO).collect();
        format!("{head:?}...")
    }
}

/// Parses the text of one field starting at 1-based `column`.
pub fn parse_field(kind: FieldKind, text: &str, column: usize) -> Result<Field, CronError> {
    let place = Place { kind, column };
    let mut field = Field { starred: text.starts_with('*') || text == "?", ..Field::default() };
    let mut offset = 0;
    for term in text.split(',') {
        parse_term(&mut field, term, place.shifted(&text[..offset]))?;
        offset += term.len() + 1;
    }
    if kind == FieldKind::DayOfWeek && field.values & (1 << 7) != 0 {
        field.values = (field.values & !(1 << 7)) | 1;
    }
    Ok(field)
}

fn parse_term(field: &mut Field, term: &str, place: Place) -> Result<(), CronError> {
    if term.is_empty() {
        return Err(place.error("empty list item".to_string()));
    }
    if place.kind == FieldKind::DayOfMonth && parse_month_day_special(field, term, place)? {
        return Ok(());
    }
    if place.kind == FieldKind::DayOfWeek && parse_weekday_special(field, term, place)? {
        return Ok(());
    }
    let (range, step) = match term.split_once('/') {
        Some((range, step)) => (range, Some((step, place.shifted(&term[..range.len() + 1])))),
        None => (term, None),
    };
    let (low, high) = parse_range(range, step.is_some(), place)?;
    let step = match step {
        Some((text, step_place)) => parse_step(text, place.kind, step_place)?,
        None => 1,
    };
    field.values |= expand(place.kind, low, high, step);
    Ok(())
}

/// `*`, `?`, `a`, `a-b`; with a step, a lone `a` runs to the field's maximum.
fn parse_range(range: &str, has_step: bool, place: Place) -> Result<(u32, u32), CronError> {
    let (min, max) = bounds(place.kind);
    // `*` in day-of-week is the seven days 0..=6; Sunday's second name 7 would only repeat 0.
    let top = if place.kind == FieldKind::DayOfWeek { 6 } else { max };
    let day_field = matches!(place.kind, FieldKind::DayOfMonth | FieldKind::DayOfWeek);
    if range == "*" || (range == "?" && day_field) {
        return Ok((min, top));
    }
    if range == "?" {
        return Err(place.error(format!(
            "\"?\" is only allowed in the day fields, not in the {} field",
            place.kind.name()
        )));
    }
    match range.split_once('-') {
        Some((first, last)) => {
            let low = parse_value(first, place)?;
            let high = parse_value(last, place.shifted(&range[..first.len() + 1]))?;
            Ok((low, high))
        }
        None => {
            // `a/s` runs to the field's maximum: 7 in day-of-week, so `1/2` includes Sunday.
            let low = parse_value(range, place)?;
            Ok((low, if has_step { max } else { low }))
        }
    }
}

fn parse_step(text: &str, kind: FieldKind, place: Place) -> Result<u32, CronError> {
    let (min, max) = bounds(kind);
    let width = if kind == FieldKind::DayOfWeek { 7 } else { max - min + 1 };
    match parse_number(text) {
        Some(step) if (1..=width as u64).contains(&step) => Ok(step as u32),
        Some(_) => Err(place.error(format!("step {} is out of range 1-{width}", echo_number(text)))),
        None if text.is_empty() => Err(place.error("missing step after \"/\"".to_string())),
        None => Err(place.error(format!("step {} is not a number", echo(text)))),
    }
}

/// A number or, in the month and day-of-week fields, a three-letter name.
fn parse_value(text: &str, place: Place) -> Result<u32, CronError> {
    let (min, max) = bounds(place.kind);
    if let Some(number) = parse_number(text) {
        return if (u64::from(min)..=u64::from(max)).contains(&number) {
            Ok(number as u32)
        } else {
            Err(place.error(format!("{} is out of range {min}-{max}", echo_number(text))))
        };
    }
    let names: &[&str] = match place.kind {
        FieldKind::Month => &MONTH_NAMES,
        FieldKind::DayOfWeek => &WEEKDAY_NAMES,
        _ => &[],
    };
    if let Some(index) = names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        let first = if place.kind == FieldKind::Month { 1 } else { 0 };
        return Ok(index as u32 + first);
    }
    if text.is_empty() {
        return Err(place.error("missing value".to_string()));
    }
    let expected = match place.kind {
        FieldKind::Month => format!("a number {min}-{max} or a name JAN..DEC"),
        FieldKind::DayOfWeek => format!("a number {min}-{max} or a name SUN..SAT"),
        _ => format!("a number {min}-{max}"),
    };
    Err(place.error(format!("{} is not valid here: expected {expected}", echo(text))))
}

/// Digits only, with no sign; None when the text is not all digits. Values too large for u64
/// saturate, which every caller reports as out of range.
fn parse_number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0u64, |acc, digit| acc.saturating_mul(10).saturating_add(u64::from(digit - b'0'))))
}

fn echo_number(text: &str) -> String {
    let trimmed = text.trim_start_matches('0');
    let shown = if trimmed.is_empty() { "0" } else { trimmed };
    if shown.len() <= MAX_ECHO {
        shown.to_string()
    } else {
        format!("{}...", &shown[..MAX_ECHO])
    }
}

/// The bits of `low..=high` by `step`, wrapping past the maximum when `low > high`.
fn expand(kind: FieldKind, low: u32, high: u32, step: u32) -> u64 {
    let (min, max) = bounds(kind);
    let (low, cycle_top) = match kind {
        // 7 is another name for Sunday: `7-2` is Sunday to Tuesday, and a wrapping range
        // cycles through the seven days 0..=6.
        FieldKind::DayOfWeek if low == 7 && high < 7 => (0, 6),
        FieldKind::DayOfWeek => (low, 6),
        _ => (low, max),
    };
    let step = step.max(1) as usize;
    if low <= high {
        return (low..=high).step_by(step).fold(0, |bits, value| bits | 1 << value);
    }
    let width = cycle_top - min + 1;
    let length = (high + width - low) % width + 1;
    (0..length)
        .step_by(step)
        .map(|position| (low - min + position) % width + min)
        .fold(0, |bits, value| bits | 1 << value)
}

/// `L`, `LW`, `nW`. Returns Ok(false) when the term is not one of them.
fn parse_month_day_special(field: &mut Field, term: &str, place: Place) -> Result<bool, CronError> {
    if term.eq_ignore_ascii_case("L") {
        field.last_day = true;
    } else if term.eq_ignore_ascii_case("LW") {
        field.last_weekday = true;
    } else {
        let Some(day) = term.strip_suffix(['W', 'w']) else { return Ok(false) };
        if day.contains(['-', '/', '*', ',']) {
            return Err(place.error(format!("{}: W takes a single day, as in 15W", echo(term))));
        }
        let day = parse_value(day, place)?;
        field.nearest_weekday |= 1 << day;
    }
    Ok(true)
}

/// `nL` (the last such weekday of the month) and `n#k` (the k-th). Returns Ok(false) when the
/// term is not one of them.
fn parse_weekday_special(field: &mut Field, term: &str, place: Place) -> Result<bool, CronError> {
    if let Some((day, nth)) = term.split_once('#') {
        let weekday = parse_value(day, place)? % 7;
        let nth_place = place.shifted(&term[..day.len() + 1]);
        let slot = match parse_number(nth) {
            Some(k @ 1..=5) => (k - 1) as usize,
            _ => return Err(nth_place.error(format!("{} after # must be 1-5", echo(nth)))),
        };
        if let Some(bits) = field.nth_weekday.get_mut(slot) {
            *bits |= 1 << weekday;
        }
        return Ok(true);
    }
    let Some(day) = term.strip_suffix(['L', 'l']) else { return Ok(false) };
    if day.is_empty() {
        return Err(
            place.error("\"L\" in day-of-week needs a weekday before it, as in 5L or FRIL".to_string())
        );
    }
    let weekday = parse_value(day, place)? % 7;
    field.last_of_weekday |= 1 << weekday;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(values: &[u32]) -> u64 {
        values.iter().fold(0, |acc, v| acc | 1 << v)
    }

    fn parse(kind: FieldKind, text: &str) -> Field {
        parse_field(kind, text, 1).unwrap()
    }

    fn error(kind: FieldKind, text: &str) -> String {
        parse_field(kind, text, 1).unwrap_err().to_string()
    }

    #[test]
    fn ranges_steps_and_lists() {
        assert_eq!(parse(FieldKind::Minute, "*/15").values, bits(&[0, 15, 30, 45]));
        assert_eq!(parse(FieldKind::Minute, "5/15").values, bits(&[5, 20, 35, 50]));
        assert_eq!(parse(FieldKind::Minute, "10-20/5,1").values, bits(&[1, 10, 15, 20]));
        assert_eq!(parse(FieldKind::Hour, "22-2").values, bits(&[22, 23, 0, 1, 2]));
        assert_eq!(parse(FieldKind::Hour, "22-2/2").values, bits(&[22, 0, 2]));
        assert_eq!(parse(FieldKind::DayOfMonth, "*/10").values, bits(&[1, 11, 21, 31]));
        assert_eq!(parse(FieldKind::Month, "JUN-9").values, bits(&[6, 7, 8, 9]));
        assert_eq!(parse(FieldKind::Month, "nov-feb").values, bits(&[11, 12, 1, 2]));
    }

    #[test]
    fn day_of_week_seven_is_sunday() {
        assert_eq!(parse(FieldKind::DayOfWeek, "7").values, bits(&[0]));
        assert_eq!(parse(FieldKind::DayOfWeek, "5-7").values, bits(&[0, 5, 6]));
        assert_eq!(parse(FieldKind::DayOfWeek, "0-7").values, bits(&[0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(parse(FieldKind::DayOfWeek, "FRI-MON").values, bits(&[5, 6, 0, 1]));
        assert_eq!(parse(FieldKind::DayOfWeek, "7-2").values, bits(&[0, 1, 2]));
        assert_eq!(parse(FieldKind::DayOfWeek, "*/2").values, bits(&[0, 2, 4, 6]));
        assert_eq!(parse(FieldKind::DayOfWeek, "1/2").values, bits(&[1, 3, 5, 0]));
        assert_eq!(parse(FieldKind::DayOfWeek, "7/2").values, bits(&[0]));
    }

    #[test]
    fn day_specials() {
        let field = parse(FieldKind::DayOfMonth, "L,lw,15W");
        assert!(field.last_day && field.last_weekday);
        assert_eq!(field.nearest_weekday, bits(&[15]));
        let field = parse(FieldKind::DayOfWeek, "5L,MON#2,7#5");
        assert_eq!(field.last_of_weekday, bits(&[5]));
        assert_eq!(field.nth_weekday[1], bits(&[1]));
        assert_eq!(field.nth_weekday[4], bits(&[0]));
    }

    #[test]
    fn the_star_marker_follows_the_first_character() {
        assert!(parse(FieldKind::DayOfMonth, "*/2").starred);
        assert!(parse(FieldKind::DayOfWeek, "?").starred);
        assert!(!parse(FieldKind::DayOfWeek, "1,*").starred);
    }

    #[test]
    fn errors_name_the_token_and_its_column() {
        assert_eq!(
            parse_field(FieldKind::DayOfMonth, "1,32", 5).unwrap_err().to_string(),
            "day-of-month: 32 is out of range 1-31 (column 7)"
        );
        assert_eq!(error(FieldKind::Minute, "*/0"), "minute: step 0 is out of range 1-60 (column 3)");
        assert_eq!(error(FieldKind::Minute, "1,,2"), "minute: empty list item (column 3)");
        assert_eq!(
            error(FieldKind::Month, "FOO"),
            "month: \"FOO\" is not valid here: expected a number 1-12 or a name JAN..DEC (column 1)"
        );
        assert!(error(FieldKind::Hour, &"9".repeat(40)).contains("is out of range 0-23"));
        assert!(error(FieldKind::Hour, "L").contains("expected a number 0-23"));
        assert!(error(FieldKind::DayOfWeek, "MON#6").contains("after # must be 1-5"));
        assert!(error(FieldKind::Minute, "é").contains("not valid here"));
    }
}
