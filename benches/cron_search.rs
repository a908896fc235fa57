//! Criterion bench of the Rust cron search alone: `Cron::next_after` on the mixed set of
//! expressions, in UTC and in America/New_York. Parsing and zone lookup happen before timing.
//!
//! Each timed iteration is ONE `next_after` call; the start instant rotates through 52 instants
//! spread over a year (so the New York cases cross both DST transitions), the same instants that
//! `benches/compare_cron.py` uses. Criterion's per-iteration figure is therefore a per-call time
//! averaged over the starts.
//!
//! Groups:
//! - `next_after/<expr> @ <zone>`: one expression in one zone.
//! - `mixed/<zone>` and `mixed/all`: every call moves on to the next (start, expression) pair, so
//!   the expressions alternate call by call (harder on caches and branch prediction than one
//!   expression in a loop). The target for `mixed/all` is a median of at most 100 ns.
//!
//! After criterion's own report, a summary table of the medians (criterion's `median` estimate of
//! the per-iteration time) of every bench run in this invocation is printed.
//!
//! Run (short, and away from other builds):
//!     CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench cron_search -- \
//!         --warm-up-time 1 --measurement-time 3

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use _core::cron::Cron;
use criterion::{black_box, Criterion};

/// The mixed set, in fastcron's dialect (a 6-field expression has seconds first).
const EXPRESSIONS: [&str; 5] = ["* * * * *", "0 9 * * 1-5", "30 2 1 * *", "0 0 29 2 *", "*/15 * * * * *"];
const ZONES: [&str; 2] = ["UTC", "America/New_York"];

/// 2024-01-01T03:25:37Z, then every 607,020 s (about 7 days and 37 minutes): 52 starts covering a
/// year at every hour of the day, always at second 37 (never itself a fire time of the set). The
/// same instants as compare_cron.py.
const BASE: i64 = 1_704_067_200 + 12_337;
const STEP: i64 = 607_020;
const STARTS: i64 = 52;

fn starts() -> Vec<i64> {
    (0..STARTS).map(|k| BASE + k * STEP).collect()
}

fn parse(expr: &str, zone: &str) -> Cron {
    Cron::parse(expr, Some(zone)).unwrap_or_else(|e| panic!("{expr:?} in {zone}: {e:?}"))
}

/// Time one `next_after` call per iteration, cycling through `pairs`.
fn bench_pairs(b: &mut criterion::Bencher<'_>, pairs: &[(&Cron, i64)]) {
    let mut index = 0usize;
    b.iter(|| {
        let (cron, start) = pairs[index];
        index += 1;
        if index == pairs.len() {
            index = 0;
        }
        black_box(cron).next_after(black_box(start))
    });
}

fn benches(c: &mut Criterion) {
    let starts = starts();
    let crons: Vec<(String, Cron)> = ZONES
        .iter()
        .flat_map(|zone| EXPRESSIONS.iter().map(move |expr| (format!("{expr} @ {zone}"), parse(expr, zone))))
        .collect();
    for (label, cron) in &crons {
        // Every case must find a fire time from every start; a None would make a cheap no-op.
        for &start in &starts {
            assert!(cron.next_after(start).is_some(), "{label}: no fire after {start}");
        }
    }

    let mut group = c.benchmark_group("next_after");
    for (label, cron) in &crons {
        let pairs: Vec<(&Cron, i64)> = starts.iter().map(|&s| (cron, s)).collect();
        group.bench_function(label.as_str(), |b| bench_pairs(b, &pairs));
    }
    group.finish();

    let mut group = c.benchmark_group("mixed");
    for zone in ZONES.iter().map(|z| Some(*z)).chain([None]) {
        let selected: Vec<&Cron> = crons
            .iter()
            .filter(|(label, _)| zone.map_or(true, |z| label.ends_with(&format!("@ {z}"))))
            .map(|(_, cron)| cron)
            .collect();
        let pairs: Vec<(&Cron, i64)> =
            starts.iter().flat_map(|&s| selected.iter().map(move |&cron| (cron, s))).collect();
        group.bench_function(zone.unwrap_or("all"), |b| bench_pairs(b, &pairs));
    }
    group.finish();
}

/// Where criterion writes its results: the same rules as criterion's own default, with the
/// target directory found from this executable (target/<profile>/deps/<bench>) instead of
/// `cargo metadata`. Set explicitly so the summary below reads the same place.
fn output_directory() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|target| target.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The string value of `"key":"..."` in a small JSON document (no escapes in our ids).
fn json_string(text: &str, key: &str) -> Option<String> {
    let at = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_string())
}

/// The number that follows `"key":` at or after `from`.
fn json_number_after(text: &str, from: usize, key: &str) -> Option<f64> {
    let at = text[from..].find(&format!("\"{key}\":"))? + from + key.len() + 3;
    let end = text[at..].find([',', '}'])?;
    text[at..at + end].trim().parse().ok()
}

/// (full id, median ns, lower, upper) of every benchmark written since `since`.
fn collect_medians(dir: &Path, since: SystemTime, out: &mut Vec<(String, f64, f64, f64)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "new") {
                let bench = path.join("benchmark.json");
                let estimates = path.join("estimates.json");
                let fresh = fs::metadata(&estimates).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
                if let (true, Ok(bench), Ok(est)) =
                    (fresh, fs::read_to_string(&bench), fs::read_to_string(&estimates))
                {
                    let id = json_string(&bench, "full_id");
                    let median_at = est.find("\"median\":");
                    if let (Some(id), Some(m)) = (id, median_at) {
                        let point = json_number_after(&est, m, "point_estimate");
                        let low = json_number_after(&est, m, "lower_bound");
                        let high = json_number_after(&est, m, "upper_bound");
                        if let (Some(p), Some(l), Some(h)) = (point, low, high) {
                            out.push((id, p, l, h));
                        }
                    }
                }
            } else {
                collect_medians(&path, since, out);
            }
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let dir = output_directory();
    let mut criterion = Criterion::default().output_directory(&dir).configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();

    let mut rows = Vec::new();
    collect_medians(&dir, started, &mut rows);
    if rows.is_empty() {
        return; // e.g. `cargo test --benches`, or a filter that matched nothing
    }
    // Per-expression rows first (in the order of the set), then the mixed groups.
    let order = |id: &str| -> (usize, usize) {
        let case = ZONES
            .iter()
            .flat_map(|z| EXPRESSIONS.iter().map(move |e| format!("next_after/{e} @ {z}")))
            .position(|full| full == id);
        let mixed = ["mixed/UTC", "mixed/America/New_York", "mixed/all"].iter().position(|m| *m == id);
        (case.map_or(1, |_| 0), case.or(mixed).unwrap_or(usize::MAX))
    };
    rows.sort_by_key(|(id, ..)| order(id));
    println!("\nMedians of Cron::next_after per call (criterion's median estimate, 95% CI):");
    println!("| bench | median | 95% CI |");
    println!("|---|---:|---|");
    for (id, median, low, high) in &rows {
        println!("| `{id}` | {median:.1} ns | {low:.1} – {high:.1} ns |");
    }
    // Two readings of "the median on the mixed set": the median of the ten per-case medians (a
    // typical expression), and mixed/all (a call picked from the whole mix, so the slow cases
    // weigh in by their cost).
    let mut per_case: Vec<f64> =
        rows.iter().filter(|(id, ..)| id.starts_with("next_after/")).map(|(_, m, ..)| *m).collect();
    per_case.sort_by(f64::total_cmp);
    if !per_case.is_empty() {
        let n = per_case.len();
        let mid = if n % 2 == 1 { per_case[n / 2] } else { (per_case[n / 2 - 1] + per_case[n / 2]) / 2.0 };
        println!("\nmedian of the {n} per-case medians: {mid:.1} ns ({}).", verdict(mid));
    }
    if let Some((_, median, ..)) = rows.iter().find(|(id, ..)| id == "mixed/all") {
        println!("mixed/all median: {median:.1} ns ({}).", verdict(*median));
    }
}

fn verdict(ns: f64) -> &'static str {
    if ns <= 100.0 {
        "meets the target of <= 100 ns"
    } else {
        "MISSES the target of <= 100 ns"
    }
}
