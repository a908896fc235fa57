//! `fastcron._core.Wheel`: the timing wheel over core schedules, with integer milliseconds in
//! and out. The wheel re-arms entries itself, so Python pays only for the fires `advance`
//! returns; those come back as plain tuples, the cheapest thing to build and unpack.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::schedule::Schedule;
use crate::wheel::{Fire, Wheel, DEFAULT_CATCHUP_LIMIT};

#[pyclass(module = "fastcron._core", name = "Wheel")]
pub struct PyWheel {
    inner: Wheel<Schedule>,
    /// Fires of the last advance; kept so that its allocation is reused.
    out: Vec<Fire>,
}

#[pymethods]
impl PyWheel {
    /// An empty wheel at `now_ms`; an entry reports at most `catchup_limit` missed fires per
    /// advance (the last one flagged truncated).
    #[new]
    #[pyo3(signature = (now_ms, catchup_limit = DEFAULT_CATCHUP_LIMIT))]
    fn new(now_ms: i64, catchup_limit: u32) -> Self {
        PyWheel { inner: Wheel::with_catchup_limit(now_ms, catchup_limit), out: Vec::new() }
    }

    /// Arms at the schedule's first fire strictly after `after_ms`; returns that deadline (ms),
    /// or None (and nothing is armed) if it never fires again. Replaces an existing entry.
    fn insert(
        &mut self,
        job_id: u64,
        schedule_index: u32,
        schedule: &Bound<'_, PyAny>,
        after_ms: i64,
    ) -> PyResult<Option<i64>> {
        let schedule = super::extract_schedule(schedule)?;
        Ok(self.inner.insert(job_id, schedule_index, schedule, after_ms))
    }

    /// Arms at an explicit deadline; later re-arms follow the schedule.
    fn insert_at(
        &mut self,
        job_id: u64,
        schedule_index: u32,
        schedule: &Bound<'_, PyAny>,
        deadline_ms: i64,
    ) -> PyResult<()> {
        let schedule = super::extract_schedule(schedule)?;
        self.inner.insert_at(job_id, schedule_index, schedule, deadline_ms);
        Ok(())
    }

    /// Disarms one schedule; whether it was armed.
    fn remove(&mut self, job_id: u64, schedule_index: u32) -> bool {
        self.inner.remove(job_id, schedule_index)
    }

    /// Disarms every schedule of a job; how many were armed.
    fn remove_job(&mut self, job_id: u64) -> usize {
        self.inner.remove_job(job_id)
    }

    /// Moves an armed entry to a new deadline; whether it was armed.
    fn reschedule(&mut self, job_id: u64, schedule_index: u32, deadline_ms: i64) -> bool {
        self.inner.reschedule(job_id, schedule_index, deadline_ms)
    }

    /// The armed deadline (ms), or None.
    fn deadline_of(&self, job_id: u64, schedule_index: u32) -> Option<i64> {
        self.inner.deadline_of(job_id, schedule_index)
    }

    /// The earliest armed deadline (ms), or None when empty.
    fn next_deadline(&self) -> Option<i64> {
        self.inner.next_deadline()
    }

    /// Every fire due at or before `now_ms` as `(job_id, schedule_index, scheduled_ms,
    /// truncated)`, oldest first. Raises ValueError if `now_ms` is before the last advance.
    fn advance<'py>(&mut self, py: Python<'py>, now_ms: i64) -> PyResult<Bound<'py, PyList>> {
        // The core asserts monotonic time; from Python that is a usage error, not a crash.
        let elapsed_ms = self.inner.elapsed_ms();
        if now_ms < elapsed_ms {
            return Err(PyValueError::new_err(format!(
                "Wheel.advance: now_ms {now_ms} is before the wheel's time {elapsed_ms}; time must not go backwards"
            )));
        }
        let PyWheel { inner, out } = self;
        out.clear();
        inner.advance(now_ms, out);
        PyList::new(
            py,
            out.iter().map(|fire| (fire.job_id, fire.schedule_index, fire.scheduled_ms, fire.truncated)),
        )
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("Wheel(len={}, now_ms={})", self.inner.len(), self.inner.elapsed_ms())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWheel>()
}
