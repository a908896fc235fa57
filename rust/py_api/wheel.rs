//! `fastcron._core.Wheel`: the timing wheel over core schedules, with integer milliseconds in
//! and out. The wheel re-arms entries itself, so Python pays only for the fires `advance`
//! returns; those come back as plain tuples, the cheapest thing to build and unpack.

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::schedule::Schedule;
use crate::wheel::{Fire, Wheel, DEFAULT_CATCHUP_LIMIT};

#[pyclass(module = "fastcron._core", name = "Wheel")]
pub struct PyWheel {
    inner: Wheel<Schedule>,
    /// Fires of the last advance; kept so that its allocation is reused.
    out: Vec<Fire>,
}

impl PyWheel {
    /// Advances the wheel, leaving the due fires in `out`. Time going backwards is a usage
    /// error from Python, not the core's crash.
    fn advance_into_out(&mut self, now_ms: i64) -> PyResult<()> {
        let elapsed_ms = self.inner.elapsed_ms();
        if now_ms < elapsed_ms {
            return Err(PyValueError::new_err(format!(
                "Wheel.advance: now_ms {now_ms} is before the wheel's time {elapsed_ms}; time must not go backwards"
            )));
        }
        self.out.clear();
        self.inner.advance(now_ms, &mut self.out);
        Ok(())
    }
}

fn fire_tuple(fire: &Fire) -> (u64, u32, i64, bool) {
    (fire.job_id, fire.schedule_index, fire.scheduled_ms, fire.truncated)
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
        self.advance_into_out(now_ms)?;
        PyList::new(py, self.out.iter().map(fire_tuple))
    }

    /// `advance`, but starting the due fires of simple async jobs right here, in one pass, before
    /// any bookkeeping: with 10k fires due in one millisecond, the last one starts after 10k
    /// calls of a few hundred nanoseconds instead of 10k trips through Python's dispatcher.
    ///
    /// `slots[job_id]` is the scheduler's slot; its `fast` attribute is None (take the general
    /// path) or `(misfire_grace_ms, max_concurrency, calls)` with `calls[schedule_index] =
    /// (coroutine_function, args, kwargs)`. A fire is started here when its slot is `armed`, has
    /// `running < max_concurrency`, is on time, no earlier fire of this tick was late or
    /// suspended for the same job, and fewer than `budget` runs have suspended. Starting means
    /// calling the function and sending None into the coroutine once.
    ///
    /// Returns `(done, suspended, failed, rest)`: `(job_id, index, scheduled_ms, value)` for
    /// coroutines that returned, `(job_id, index, scheduled_ms, coroutine, yielded)` for ones
    /// that suspended (the caller wraps them in Tasks), `(job_id, index, scheduled_ms,
    /// exception)` for ones that raised, and the plain fire tuples left for the general path.
    fn advance_eager<'py>(
        slf: &Bound<'py, Self>,
        now_ms: i64,
        slots: &Bound<'py, PyList>,
        budget: usize,
    ) -> PyResult<EagerLists<'py>> {
        // The fires leave the wheel before any job runs: a job may call back into the wheel
        // (adding or rescheduling jobs), which needs the wheel not to be borrowed.
        let fires = {
            let mut this = slf.try_borrow_mut()?;
            this.advance_into_out(now_ms)?;
            std::mem::take(&mut this.out)
        };
        let mut batch = EagerBatch::default();
        let mut rest: Vec<Fire> = Vec::new();
        let mut late_seen = false;
        let mut suspended_jobs: Vec<u64> = Vec::new();
        for (at, fire) in fires.iter().enumerate() {
            let call = eager_call(slots, fire, now_ms, &mut late_seen)?;
            let startable =
                !late_seen && suspended_jobs.len() < budget && !suspended_jobs.contains(&fire.job_id);
            match call {
                Some((func, args, kwargs)) if startable => {
                    if batch.start(at, &func, &args, &kwargs) {
                        suspended_jobs.push(fire.job_id);
                    }
                }
                _ => rest.push(*fire),
            }
        }
        let py = slf.py();
        // Positions come from enumerating `fires`, so the lookup always finds its fire.
        let key =
            |at: usize| fires.get(at).map_or((0, 0, 0), |f| (f.job_id, f.schedule_index, f.scheduled_ms));
        let (done, suspended, failed) = batch.into_lists(py, key)?;
        let rest = PyList::new(py, rest.iter().map(fire_tuple))?;
        // Hand the allocation back for the next tick, unless a job is advancing the wheel now.
        if let Ok(mut this) = slf.try_borrow_mut() {
            this.out = fires;
        }
        Ok((done, suspended, failed, rest))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("Wheel(len={}, now_ms={})", self.inner.len(), self.inner.elapsed_ms())
    }
}

type EagerCall<'py> = (Bound<'py, PyAny>, Bound<'py, PyTuple>, Bound<'py, PyAny>);

/// The call to start for a fire, or None when it must take the general path. Sets `late_seen`
/// when the fire is past its job's grace, so that later fires of the tick keep their order
/// relative to it.
fn eager_call<'py>(
    slots: &Bound<'py, PyList>,
    fire: &Fire,
    now_ms: i64,
    late_seen: &mut bool,
) -> PyResult<Option<EagerCall<'py>>> {
    let py = slots.py();
    let Some(slot) = usize::try_from(fire.job_id).ok().and_then(|at| slots.get_item(at).ok()) else {
        return Ok(None);
    };
    let fast = slot.getattr(intern!(py, "fast"))?;
    if fast.is_none() || !slot.getattr(intern!(py, "armed"))?.is_truthy()? {
        return Ok(None);
    }
    let (grace_ms, max_concurrency, calls): (i64, i64, Bound<'py, PyTuple>) = fast.extract()?;
    if now_ms.saturating_sub(fire.scheduled_ms) > grace_ms {
        *late_seen = true;
        return Ok(None);
    }
    let running: i64 = slot.getattr(intern!(py, "running"))?.extract()?;
    if running >= max_concurrency {
        return Ok(None);
    }
    let Ok(call) = calls.get_item(fire.schedule_index as usize) else { return Ok(None) };
    Ok(Some(call.extract()?))
}

/// What became of each fire `advance_eager` started. Outcomes are kept as Rust values while the
/// tick's fires are being started and turned into Python tuples only afterwards, so that building
/// them does not delay the fires that come later in the tick.
enum Outcome<'py> {
    Returned(Bound<'py, PyAny>),
    Suspended(Bound<'py, PyAny>, Bound<'py, PyAny>),
    Raised(Bound<'py, PyAny>),
}

/// Outcomes of started calls, by the caller's position of each call.
#[derive(Default)]
struct EagerBatch<'py> {
    started: Vec<(usize, Outcome<'py>)>,
}

impl<'py> EagerBatch<'py> {
    /// Calls the coroutine function and runs the coroutine to its first suspension; files the
    /// outcome. Returns whether it suspended.
    fn start(
        &mut self,
        at: usize,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: &Bound<'py, PyAny>,
    ) -> bool {
        let py = func.py();
        let kwargs = kwargs.cast::<PyDict>().ok().filter(|kwargs| !kwargs.is_empty());
        // Most jobs take no arguments: the no-argument vectorcall skips building a call.
        let called = if args.is_empty() && kwargs.is_none() { func.call0() } else { func.call(args, kwargs) };
        let coroutine = match called {
            Ok(coroutine) => coroutine,
            Err(error) => {
                self.started.push((at, Outcome::Raised(error.into_value(py).into_bound(py).into_any())));
                return false;
            }
        };
        let mut yielded: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
        // SAFETY: `coroutine` is a live object we own a reference to and the GIL is held;
        // PyIter_Send stores a new reference in `yielded` for PYGEN_RETURN and PYGEN_NEXT and
        // leaves it NULL (with an exception set) for PYGEN_ERROR, which is what each arm reads.
        let status =
            unsafe { pyo3::ffi::PyIter_Send(coroutine.as_ptr(), pyo3::ffi::Py_None(), &mut yielded) };
        let outcome = match status {
            // SAFETY: a new reference, per PyIter_Send's contract above.
            pyo3::ffi::PySendResult::PYGEN_RETURN => {
                Outcome::Returned(unsafe { Bound::from_owned_ptr(py, yielded) })
            }
            pyo3::ffi::PySendResult::PYGEN_NEXT => {
                // SAFETY: as above.
                Outcome::Suspended(coroutine, unsafe { Bound::from_owned_ptr(py, yielded) })
            }
            pyo3::ffi::PySendResult::PYGEN_ERROR => {
                Outcome::Raised(PyErr::fetch(py).into_value(py).into_bound(py).into_any())
            }
        };
        let suspended = matches!(outcome, Outcome::Suspended(..));
        self.started.push((at, outcome));
        suspended
    }

    /// The done, suspended and failed lists: `(*key, value)`, `(*key, coroutine, yielded)`,
    /// `(*key, exception)`, where `key(at)` names the call at position `at`.
    fn into_lists<K>(self, py: Python<'py>, key: impl Fn(usize) -> K) -> PyResult<OutcomeLists<'py>>
    where
        K: PyTupleParts<'py>,
    {
        let (done, suspended, failed) = (PyList::empty(py), PyList::empty(py), PyList::empty(py));
        for (at, outcome) in self.started {
            let mut parts = key(at).parts(py)?;
            match outcome {
                Outcome::Returned(value) => {
                    parts.push(value);
                    done.append(PyTuple::new(py, parts)?)?
                }
                Outcome::Suspended(coroutine, yielded) => {
                    parts.push(coroutine);
                    parts.push(yielded);
                    suspended.append(PyTuple::new(py, parts)?)?
                }
                Outcome::Raised(error) => {
                    parts.push(error);
                    failed.append(PyTuple::new(py, parts)?)?
                }
            }
        }
        Ok((done, suspended, failed))
    }
}

/// A key that opens an outcome tuple: a fire's `(job_id, index, scheduled_ms)` or a position.
trait PyTupleParts<'py> {
    fn parts(self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>>;
}

impl<'py> PyTupleParts<'py> for (u64, u32, i64) {
    fn parts(self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        Ok(vec![
            self.0.into_pyobject(py)?.into_any(),
            self.1.into_pyobject(py)?.into_any(),
            self.2.into_pyobject(py)?.into_any(),
        ])
    }
}

impl<'py> PyTupleParts<'py> for usize {
    fn parts(self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        Ok(vec![self.into_pyobject(py)?.into_any()])
    }
}

type OutcomeLists<'py> = (Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>);
type EagerLists<'py> = (Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>, Bound<'py, PyList>);

/// Starts `calls[i] = (coroutine_function, args, kwargs)` in order, each called and sent None
/// once, as `Wheel.advance_eager` does for due fires; for runs that were admitted and recorded
/// first (a durable store commits them before they start). Returns `(done, suspended, failed)`
/// with `(i, value)`, `(i, coroutine, yielded)` and `(i, exception)`.
#[pyfunction]
fn start_coroutines<'py>(calls: &Bound<'py, PyList>) -> PyResult<OutcomeLists<'py>> {
    let mut batch = EagerBatch::default();
    for (at, call) in calls.iter().enumerate() {
        let (func, args, kwargs): EagerCall<'py> = call.extract()?;
        batch.start(at, &func, &args, &kwargs);
    }
    batch.into_lists(calls.py(), |at| at)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWheel>()?;
    m.add_function(wrap_pyfunction!(start_coroutines, m)?)
}
