//! fastcron's core: a cron dialect (parser and evaluator), time-zone spans, schedule kinds and a
//! hierarchical timing wheel. Everything here but `py_api` is plain Rust with no Python in it, so
//! `cargo test` exercises the engine alone; `py_api` (built with the `python` feature by maturin)
//! is the one place where values cross into Python.

pub mod calendar;
pub mod cron;
pub mod error;
pub mod schedule;
pub mod wheel;
pub mod zone;

#[cfg(feature = "python")]
mod py_api;
