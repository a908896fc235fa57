//! Timing-wheel benchmarks for the workload the wheel is sized for: 100k jobs each firing every
//! second. Throughput is per entry, so criterion's "thrpt" line reads as the cost per
//! insert/fire/removal.

use std::hint::black_box;

use _core::wheel::{Fire, NextFire, Wheel};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const JOBS: u64 = 100_000;
const PERIOD_MS: i64 = 1000;
const T0: i64 = 1_700_000_000_000;

/// Fires at `anchor + k * period`.
#[derive(Clone, Copy)]
struct Every {
    anchor: i64,
    period: i64,
}

impl NextFire for Every {
    fn next_fire_after_ms(&self, after_ms: i64) -> Option<i64> {
        let steps = (after_ms - self.anchor).div_euclid(self.period) + 1;
        self.anchor.checked_add(steps.checked_mul(self.period)?)
    }
}

/// `JOBS` entries; with `spread` their phases cover the whole second, otherwise all fire in the
/// same millisecond.
fn filled(spread: bool) -> Wheel<Every> {
    let mut wheel = Wheel::new(T0);
    for job in 0..JOBS {
        let phase = if spread { (job % PERIOD_MS as u64) as i64 } else { 0 };
        wheel.insert(job, 0, Every { anchor: T0 + phase, period: PERIOD_MS }, T0);
    }
    wheel
}

fn bench_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(20);
    group.bench_function("insert_100k_same_ms", |b| {
        b.iter_batched(
            || Wheel::new(T0),
            |mut wheel: Wheel<Every>| {
                for job in 0..JOBS {
                    wheel.insert(job, 0, Every { anchor: T0, period: PERIOD_MS }, T0);
                }
                wheel
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("remove_100k", |b| {
        b.iter_batched(
            || filled(false),
            |mut wheel| {
                for job in 0..JOBS {
                    black_box(wheel.remove(job, 0));
                }
                wheel
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_advance(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(30);

    // One advance of a second: every entry is due in the same millisecond, fires once and is
    // re-armed a second later. The wheel carries over between iterations, so each one is the
    // same steady state.
    group.bench_function("advance_1s_100k_due_same_ms", |b| {
        let mut wheel = filled(false);
        let mut now = T0;
        let mut out: Vec<Fire> = Vec::with_capacity(JOBS as usize);
        b.iter(|| {
            now += PERIOD_MS;
            out.clear();
            wheel.advance(now, &mut out);
            assert_eq!(out.len(), JOBS as usize);
        });
    });

    // The same second as a runtime would see it with phases spread: 1000 advances of 1 ms,
    // about 100 fires each.
    group.bench_function("advance_1s_in_1ms_steps_100k_spread", |b| {
        let mut wheel = filled(true);
        let mut now = T0;
        let mut out: Vec<Fire> = Vec::with_capacity(JOBS as usize);
        b.iter(|| {
            let mut fired = 0;
            for _ in 0..PERIOD_MS {
                now += 1;
                out.clear();
                wheel.advance(now, &mut out);
                fired += out.len();
            }
            assert_eq!(fired, JOBS as usize);
        });
    });

    // Advance then ask for the next deadline, as a runtime loop does before sleeping: the
    // cache is cold after fires, so this includes one scan of the earliest slot.
    group.bench_function("advance_1s_100k_due_then_next_deadline", |b| {
        let mut wheel = filled(false);
        let mut now = T0;
        let mut out: Vec<Fire> = Vec::with_capacity(JOBS as usize);
        b.iter(|| {
            now += PERIOD_MS;
            out.clear();
            wheel.advance(now, &mut out);
            assert_eq!(wheel.next_deadline(), Some(now + PERIOD_MS));
        });
    });
    group.finish();

    // An advance with nothing due must not cost anything per entry held. The 100k entries are
    // spread from ~115 days to ~3 years ahead (upper levels and overflow); criterion's billions
    // of 1 ms steps stay well short of the first.
    let mut group = c.benchmark_group("wheel");
    group.bench_function("advance_1ms_nothing_due_100k_held", |b| {
        let mut wheel = Wheel::new(T0);
        for job in 0..JOBS {
            let deadline = T0 + 10_000_000_000 + job as i64 * 1_000_000;
            wheel.insert_at(job, 0, Every { anchor: deadline, period: PERIOD_MS }, deadline);
        }
        let mut out: Vec<Fire> = Vec::new();
        let mut now = T0;
        b.iter(|| {
            now += 1;
            wheel.advance(now, &mut out);
        });
        assert!(out.is_empty());
    });
    group.finish();
}

criterion_group!(benches, bench_insert, bench_advance);
criterion_main!(benches);
