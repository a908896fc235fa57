//! `fastcron._core.Wheel`: the timing wheel over core schedules, with integer milliseconds in
//! and out. The wheel re-arms entries itself, so Python pays only for the fires `advance`
//! returns; those come back as plain tuples, the cheapest thing to build and unpack.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping, PyTuple};

use crate::schedule::Schedule;
use crate::wheel::{Fire, Wheel, DEFAULT_CATCHUP_LIMIT};

#[pyclass(module = "fastcron._core", name = "Wheel")]
pub struct PyWheel {
    inner: Wheel<Schedule>,
    /// Fires of the last advance; kept so that its allocation is reused.
    out: Vec<Fire>,
    /// Counts the calls that arm or disarm entries. While it stands still, every fire taken out
    /// by an advance still belongs to an armed job (the scheduler disarms a job only by removing
    /// its entries), so `advance_eager` need not ask the job. Shared so that `advance_eager` can
    /// read it between calls into Python without borrowing the wheel (a job may be borrowing it
    /// mutably right then).
    changes: Arc<AtomicU64>,
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
        PyWheel {
            inner: Wheel::with_catchup_limit(now_ms, catchup_limit),
            out: Vec::new(),
            changes: Arc::new(AtomicU64::new(0)),
        }
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
        self.changes.fetch_add(1, Ordering::Relaxed);
        let schedule = super::extract_schedule(schedule)?;
        Ok(self.inner.insert(job_id, schedule_index, schedule, after_ms))
    }

    /// `insert` for consecutive jobs, all after `after_ms`: `schedules[k]` holds the schedules
    /// of job `first_job_id + k`, each armed at its position as schedule index (an empty one
    /// arms nothing). Returns the earliest deadline armed, or None. All or nothing: an item that
    /// is not a schedule raises before any is armed. Registering 100k jobs is one such call.
    fn insert_jobs(
        &mut self,
        first_job_id: u64,
        schedules: &Bound<'_, PyList>,
        after_ms: i64,
    ) -> PyResult<Option<i64>> {
        let mut batch = Vec::with_capacity(schedules.len());
        for (offset, job_schedules) in (0u64..).zip(schedules.iter()) {
            let job_id = first_job_id
                .checked_add(offset)
                .ok_or_else(|| PyOverflowError::new_err("job id out of range"))?;
            for (index, schedule) in (0u32..).zip(job_schedules.try_iter()?) {
                batch.push((job_id, index, super::extract_schedule(&schedule?)?));
            }
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(self.inner.insert_many(batch, after_ms))
    }

    /// Arms at an explicit deadline; later re-arms follow the schedule.
    fn insert_at(
        &mut self,
        job_id: u64,
        schedule_index: u32,
        schedule: &Bound<'_, PyAny>,
        deadline_ms: i64,
    ) -> PyResult<()> {
        self.changes.fetch_add(1, Ordering::Relaxed);
        let schedule = super::extract_schedule(schedule)?;
        self.inner.insert_at(job_id, schedule_index, schedule, deadline_ms);
        Ok(())
    }

    /// Disarms one schedule; whether it was armed.
    fn remove(&mut self, job_id: u64, schedule_index: u32) -> bool {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.inner.remove(job_id, schedule_index)
    }

    /// Disarms every schedule of a job; how many were armed.
    fn remove_job(&mut self, job_id: u64) -> usize {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.inner.remove_job(job_id)
    }

    /// Moves an armed entry to a new deadline; whether it was armed.
    fn reschedule(&mut self, job_id: u64, schedule_index: u32, deadline_ms: i64) -> bool {
        self.changes.fetch_add(1, Ordering::Relaxed);
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
    /// Per job, by id: `starts[job_id]` is its `EagerJob`, or None (take the general path);
    /// `running[job_id]` its runs in progress; `slots[job_id]` the scheduler's slot, whose `armed`
    /// is read only if the wheel changed during this call (a job that ran disarmed another). A
    /// fire is started here when its job is armed, has `running < max_concurrency`, is on time,
    /// no earlier fire of this tick was late or suspended for the same job, and fewer than
    /// `budget` runs have suspended. Starting means calling the function and sending None into
    /// the coroutine once.
    ///
    /// Returns `(done, suspended, failed, rest)`: `(job_id, index, scheduled_ms, value)` for
    /// coroutines that returned, `(job_id, index, scheduled_ms, coroutine, yielded)` for ones
    /// that suspended (the caller wraps them in Tasks), `(job_id, index, scheduled_ms,
    /// exception)` for ones that raised, and the plain fire tuples left for the general path.
    fn advance_eager<'py>(
        slf: &Bound<'py, Self>,
        now_ms: i64,
        starts: &Bound<'py, PyList>,
        running: &Bound<'py, PyList>,
        slots: &Bound<'py, PyList>,
        budget: usize,
    ) -> PyResult<EagerLists<'py>> {
        // The fires leave the wheel before any job runs: a job may call back into the wheel
        // (adding or rescheduling jobs), which needs the wheel not to be borrowed.
        let (fires, changes) = {
            let mut this = slf.try_borrow_mut()?;
            this.advance_into_out(now_ms)?;
            (std::mem::take(&mut this.out), Arc::clone(&this.changes))
        };
        let changes_before = changes.load(Ordering::Relaxed);
        let py = slf.py();
        let mut batch = EagerBatch::with_capacity(fires.len());
        let mut rest: Vec<Fire> = Vec::new();
        let mut tick = TickState::default();
        let jobs = JobLists { starts, running, slots };
        for (at, fire) in fires.iter().enumerate() {
            // A job that ran earlier in this tick may have disarmed another: then ask the slot.
            let unchanged = changes.load(Ordering::Relaxed) == changes_before;
            match jobs.eager_start(fire, now_ms, unchanged, &mut tick)? {
                Some(job) if tick.may_start(fire.job_id, budget) => {
                    match job.get().call_for(fire.schedule_index) {
                        Some(call) => {
                            let kwargs = call.kwargs.as_ref().map(|kwargs| kwargs.bind(py));
                            if batch.start(at, call.func.bind(py), call.args.bind(py), kwargs) {
                                tick.suspended(fire.job_id);
                            }
                        }
                        None => rest.push(*fire),
                    }
                }
                _ => rest.push(*fire),
            }
        }
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

/// What the core needs to start a job's fires itself: `_core.EagerJob(misfire_grace_ms,
/// max_concurrency, calls)` with `calls[schedule_index] = (coroutine_function, args, kwargs)`.
/// Built once per job definition and read without conversion on every fire.
#[pyclass(module = "fastcron._core", name = "EagerJob", frozen)]
pub struct EagerJob {
    misfire_grace_ms: i64,
    max_concurrency: i64,
    /// The call of schedule 0, kept inline: most jobs have one schedule, and the hot loop then
    /// reads this object's memory and no other.
    first: Option<Call>,
    others: Vec<Call>,
}

/// A coroutine function with its arguments; `kwargs` is None when empty.
struct Call {
    func: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
}

impl EagerJob {
    fn call_for(&self, schedule_index: u32) -> Option<&Call> {
        match schedule_index {
            0 => self.first.as_ref(),
            index => self.others.get(usize::try_from(index).ok()?.checked_sub(1)?),
        }
    }
}

#[pymethods]
impl EagerJob {
    #[new]
    fn new(
        py: Python<'_>,
        misfire_grace_ms: i64,
        max_concurrency: i64,
        calls: Vec<(Py<PyAny>, Py<PyTuple>, Bound<'_, PyAny>)>,
    ) -> PyResult<Self> {
        let mut converted = Vec::with_capacity(calls.len());
        for (func, args, kwargs) in calls {
            let kwargs = keywords(py, &kwargs)?.map(Bound::unbind);
            converted.push(Call { func, args, kwargs });
        }
        let mut calls = converted.into_iter();
        Ok(EagerJob { misfire_grace_ms, max_concurrency, first: calls.next(), others: calls.collect() })
    }

    fn __repr__(&self) -> String {
        format!(
            "EagerJob(misfire_grace_ms={}, max_concurrency={}, calls={})",
            self.misfire_grace_ms,
            self.max_concurrency,
            usize::from(self.first.is_some()) + self.others.len()
        )
    }
}

/// A call's keywords as a dict, or None when there are none: any mapping is taken.
fn keywords<'py>(py: Python<'py>, kwargs: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyDict>>> {
    let dict = match kwargs.cast::<PyDict>() {
        Ok(dict) => dict.clone(),
        Err(_) => {
            let dict = PyDict::new(py);
            dict.update(kwargs.cast::<PyMapping>()?)?;
            dict
        }
    };
    Ok((!dict.is_empty()).then_some(dict))
}

/// Per-tick order rules of `advance_eager`: once a fire is late, the later ones take the general
/// path too (so the tick keeps its order); a job with a suspended run this tick starts no more.
#[derive(Default)]
struct TickState {
    late_seen: bool,
    suspended_jobs: HashSet<u64>,
}

impl TickState {
    fn may_start(&self, job_id: u64, budget: usize) -> bool {
        // Checked for emptiness first: most ticks suspend nothing, and hashing is not free.
        !self.late_seen
            && self.suspended_jobs.len() < budget
            && (self.suspended_jobs.is_empty() || !self.suspended_jobs.contains(&job_id))
    }

    fn suspended(&mut self, job_id: u64) {
        self.suspended_jobs.insert(job_id);
    }
}

/// What `advance_eager` reads of the jobs, each list indexed by job id.
struct JobLists<'a, 'py> {
    starts: &'a Bound<'py, PyList>,
    running: &'a Bound<'py, PyList>,
    slots: &'a Bound<'py, PyList>,
}

impl<'py> JobLists<'_, 'py> {
    /// The job's `EagerJob` when this fire may start in the core, or None for the general path.
    /// `armed_known` says the job cannot have been disarmed since the advance, so its slot need
    /// not be read. Marks the tick late when the fire is past its job's grace.
    fn eager_start(
        &self,
        fire: &Fire,
        now_ms: i64,
        armed_known: bool,
        tick: &mut TickState,
    ) -> PyResult<Option<Bound<'py, EagerJob>>> {
        let py = self.starts.py();
        let Ok(at) = usize::try_from(fire.job_id) else { return Ok(None) };
        let Some(job) = self.starts.get_item(at).ok().and_then(|start| start.cast_into::<EagerJob>().ok())
        else {
            return Ok(None);
        };
        if !armed_known {
            let Ok(slot) = self.slots.get_item(at) else { return Ok(None) };
            if slot.is_none() || !slot.getattr(intern!(py, "armed"))?.is_truthy()? {
                return Ok(None);
            }
        }
        let spec = job.get();
        if now_ms.saturating_sub(fire.scheduled_ms) > spec.misfire_grace_ms {
            tick.late_seen = true;
            return Ok(None);
        }
        let Ok(running) = self.running.get_item(at) else { return Ok(None) };
        let running: i64 = running.extract()?;
        Ok((running < spec.max_concurrency).then_some(job))
    }
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
struct EagerBatch<'py> {
    started: Vec<(usize, Outcome<'py>)>,
}

impl<'py> EagerBatch<'py> {
    fn with_capacity(calls: usize) -> Self {
        EagerBatch { started: Vec::with_capacity(calls) }
    }

    /// Calls the coroutine function and runs the coroutine to its first suspension; files the
    /// outcome. Returns whether it suspended.
    fn start(
        &mut self,
        at: usize,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> bool {
        let py = func.py();
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
            pyo3::ffi::PySendResult::PYGEN_RETURN => {
                // SAFETY: a new reference, per PyIter_Send's contract above.
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
    let mut batch = EagerBatch::with_capacity(calls.len());
    for (at, call) in calls.iter().enumerate() {
        let (func, args, kwargs): (Bound<'py, PyAny>, Bound<'py, PyTuple>, Bound<'py, PyAny>) =
            call.extract()?;
        let kwargs = keywords(calls.py(), &kwargs)?;
        batch.start(at, &func, &args, kwargs.as_ref());
    }
    batch.into_lists(calls.py(), |at| at)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWheel>()?;
    m.add_class::<EagerJob>()?;
    m.add_function(wrap_pyfunction!(start_coroutines, m)?)
}
