//! The Python face of the core: `fastcron._core`.
//!
//! This is the only module that knows about Python. It converts at the edge and nowhere else:
//! datetimes to epoch seconds on the way in, epoch seconds to aware datetimes on the way out, and
//! `CronError` into `fastcron.errors.CronError`. Hot paths (`next_after_ts`) take and return
//! plain integers.
//!
//! `Trigger` is the base class of `Cron`, `Interval` and `Once`: it owns the schedule, the zone
//! results are shown in, and every method that only asks "when?". The subclasses add their
//! constructors and what is particular to them.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyString, PyTimeAccess, PyTuple, PyTzInfo,
    PyTzInfoAccess,
};

use crate::calendar::{days_from_civil, SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE};
use crate::cron::{describe, Cron};
use crate::error::CronError;
use crate::schedule::{Interval, Schedule};
use crate::zone::Zone;

mod wheel;

const MICROS_PER_SECOND: i64 = 1_000_000;
/// `next_n` refuses to build lists longer than this; use `iter_after` for more.
const MAX_NEXT_N: usize = 1_000_000;

fn to_py_error(py: Python<'_>, error: CronError) -> PyErr {
    static CRON_ERROR: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
    match CRON_ERROR.import(py, "fastcron.errors", "CronError") {
        Ok(class) => PyErr::from_type(class.clone(), error.to_string()),
        Err(import_error) => import_error,
    }
}

/// The tzinfo results are given in, and the zone the core computes with.
struct ResolvedZone {
    zone: Zone,
    tzinfo: Py<PyTzInfo>,
}

fn utc_tzinfo(py: Python<'_>) -> PyResult<Py<PyTzInfo>> {
    Ok(PyTzInfo::utc(py)?.to_owned().unbind())
}

/// `None` (UTC), an IANA name, a `zoneinfo.ZoneInfo` (its `key`), or `datetime.timezone.utc`.
fn resolve_zone(py: Python<'_>, tz: Option<&Bound<'_, PyAny>>) -> PyResult<ResolvedZone> {
    let Some(tz) = tz.filter(|tz| !tz.is_none()) else {
        return Ok(ResolvedZone { zone: Zone::Utc, tzinfo: utc_tzinfo(py)? });
    };
    if let Ok(name) = tz.extract::<String>() {
        let zone = Zone::get(&name).map_err(|e| to_py_error(py, e))?;
        if zone == Zone::Utc {
            return Ok(ResolvedZone { zone, tzinfo: utc_tzinfo(py)? });
        }
        static ZONE_INFO: PyOnceLock<Py<pyo3::types::PyType>> = PyOnceLock::new();
        let tzinfo = ZONE_INFO.import(py, "zoneinfo", "ZoneInfo")?.call1((name,))?;
        return Ok(ResolvedZone { zone, tzinfo: tzinfo.cast_into::<PyTzInfo>()?.unbind() });
    }
    if tz.is(PyTzInfo::utc(py)?) {
        return Ok(ResolvedZone { zone: Zone::Utc, tzinfo: utc_tzinfo(py)? });
    }
    if let (Ok(tzinfo), Ok(key)) = (tz.cast::<PyTzInfo>(), tz.getattr("key")) {
        let name: String = key.extract()?;
        let zone = Zone::get(&name).map_err(|e| to_py_error(py, e))?;
        return Ok(ResolvedZone { zone, tzinfo: tzinfo.clone().unbind() });
    }
    Err(PyTypeError::new_err(format!(
        "tz must be an IANA zone name, a zoneinfo.ZoneInfo or None, not {}",
        tz.get_type().name()?
    )))
}

/// The text of a str argument; a str that is not valid Unicode (a lone surrogate) is bad input,
/// reported as `CronError` like any other unreadable expression.
fn text_of<'a>(value: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, str>> {
    let text = value.cast::<PyString>().map_err(|_| {
        let type_name = value.get_type().name().map(|name| name.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("a cron expression is a str, not {type_name}"))
    })?;
    text.to_cow().map_err(|_| to_py_error(value.py(), CronError::NotText))
}

/// An instant given from Python: whole epoch seconds (floored) and whether a fraction was dropped.
struct Moment {
    seconds: i64,
    fractional: bool,
}

/// A datetime (aware in any zone, or naive = wall time in `zone`) or an int/float of epoch seconds.
fn moment_of(value: &Bound<'_, PyAny>, zone: &Zone, own: Option<&Py<PyTzInfo>>) -> PyResult<Moment> {
    let Ok(datetime) = value.cast::<PyDateTime>() else {
        if let Ok(seconds) = value.extract::<i64>() {
            return Ok(Moment { seconds, fractional: false });
        }
        if let Ok(seconds) = value.extract::<f64>() {
            if seconds.is_finite() {
                let floor = seconds.floor();
                return Ok(Moment { seconds: floor as i64, fractional: floor != seconds });
            }
        }
        return Err(PyTypeError::new_err(format!(
            "expected a datetime or epoch seconds, not {}",
            value.get_type().name()?
        )));
    };
    let wall =
        days_from_civil(datetime.get_year(), u32::from(datetime.get_month()), u32::from(datetime.get_day()))
            * SECONDS_PER_DAY
            + i64::from(datetime.get_hour()) * SECONDS_PER_HOUR
            + i64::from(datetime.get_minute()) * SECONDS_PER_MINUTE
            + i64::from(datetime.get_second());
    let micros = i64::from(datetime.get_microsecond());
    let offset_micros = match datetime.get_tzinfo() {
        None => {
            let instant = zone.instant_of_wall(wall, datetime.get_fold());
            return Ok(Moment { seconds: instant, fractional: micros != 0 });
        }
        Some(tzinfo) if tzinfo.is(PyTzInfo::utc(value.py())?) => 0,
        // A datetime in the schedule's own zone (what its results carry) is read with the core's
        // spans, by PEP 495's rules, instead of asking the tzinfo through a Python call.
        Some(tzinfo) if own.is_some_and(|own| tzinfo.is(own)) => {
            let instant = zone.instant_of_wall(wall, datetime.get_fold());
            return Ok(Moment { seconds: instant, fractional: micros != 0 });
        }
        Some(_) => {
            let offset = datetime.call_method0("utcoffset")?;
            let delta = offset.cast::<PyDelta>()?;
            (i64::from(delta.get_days()) * SECONDS_PER_DAY + i64::from(delta.get_seconds()))
                * MICROS_PER_SECOND
                + i64::from(delta.get_microseconds())
        }
    };
    let utc_micros = wall * MICROS_PER_SECOND + micros - offset_micros;
    Ok(Moment {
        seconds: utc_micros.div_euclid(MICROS_PER_SECOND),
        fractional: utc_micros.rem_euclid(MICROS_PER_SECOND) != 0,
    })
}

#[pyclass(module = "fastcron._core", name = "Trigger", subclass, frozen)]
pub struct PyTrigger {
    schedule: Schedule,
    zone: Zone,
    tzinfo: Py<PyTzInfo>,
}

impl PyTrigger {
    fn datetime<'py>(&self, py: Python<'py>, instant: i64) -> PyResult<Bound<'py, PyDateTime>> {
        let span = self.zone.span_at(instant);
        let wall = crate::calendar::Civil::from_local_seconds(instant + span.offset);
        let narrow = |value: u32| u8::try_from(value).unwrap_or(0);
        PyDateTime::new_with_fold(
            py,
            wall.year,
            narrow(wall.month),
            narrow(wall.day),
            narrow(wall.hour),
            narrow(wall.minute),
            narrow(wall.second),
            0,
            Some(self.tzinfo.bind(py)),
            span.is_second_occurrence(instant),
        )
    }

    fn optional_datetime<'py>(
        &self,
        py: Python<'py>,
        instant: Option<i64>,
    ) -> PyResult<Option<Bound<'py, PyDateTime>>> {
        instant.map(|instant| self.datetime(py, instant)).transpose()
    }

    fn next_after_moment(&self, value: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
        Ok(self.schedule.next_after(moment_of(value, &self.zone, Some(&self.tzinfo))?.seconds))
    }
}

#[pymethods]
impl PyTrigger {
    /// The first fire time strictly after `dt`, aware in this schedule's zone, or None.
    fn next_after<'py>(
        &self,
        py: Python<'py>,
        dt: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDateTime>>> {
        let next = self.next_after_moment(dt)?;
        self.optional_datetime(py, next)
    }

    /// The last fire time strictly before `dt`, aware in this schedule's zone, or None.
    fn prev_before<'py>(
        &self,
        py: Python<'py>,
        dt: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyDateTime>>> {
        let moment = moment_of(dt, &self.zone, Some(&self.tzinfo))?;
        let before = moment.seconds.saturating_add(i64::from(moment.fractional));
        self.optional_datetime(py, self.schedule.prev_before(before))
    }

    /// Whether the second `dt` falls in is a fire time.
    fn matches(&self, dt: &Bound<'_, PyAny>) -> PyResult<bool> {
        let seconds = moment_of(dt, &self.zone, Some(&self.tzinfo))?.seconds;
        Ok(self.schedule.fires_at(seconds))
    }

    /// The next `n` fire times after `dt`, fewer if the schedule ends.
    fn next_n<'py>(
        &self,
        py: Python<'py>,
        dt: &Bound<'py, PyAny>,
        n: usize,
    ) -> PyResult<Vec<Bound<'py, PyDateTime>>> {
        if n > MAX_NEXT_N {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "n={n} is more than {MAX_NEXT_N}: use iter_after() to walk further"
            )));
        }
        let mut at = moment_of(dt, &self.zone, Some(&self.tzinfo))?.seconds;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let Some(next) = self.schedule.next_after(at) else { break };
            out.push(self.datetime(py, next)?);
            at = next;
        }
        Ok(out)
    }

    /// An endless iterator of fire times after `dt` (it stops only if the schedule ends).
    fn iter_after(slf: Bound<'_, Self>, dt: &Bound<'_, PyAny>) -> PyResult<FireIterator> {
        let at = moment_of(dt, &slf.get().zone, Some(&slf.get().tzinfo))?.seconds;
        Ok(FireIterator { trigger: slf.unbind(), at: std::sync::atomic::AtomicI64::new(at) })
    }

    /// The first fire strictly after epoch second `ts`, as epoch seconds, or None.
    fn next_after_ts(&self, ts: i64) -> Option<i64> {
        self.schedule.next_after(ts)
    }

    /// The last fire strictly before epoch second `ts`, as epoch seconds, or None.
    fn prev_before_ts(&self, ts: i64) -> Option<i64> {
        self.schedule.prev_before(ts)
    }

    /// The schedule in plain English, e.g. "At 09:00, Monday through Friday".
    fn describe(&self) -> String {
        match &self.schedule {
            Schedule::Cron(cron) => describe::describe(&cron.expr),
            Schedule::Interval(interval) => describe::describe_interval(interval.period),
            Schedule::Once(at) => describe::describe_once(*at),
        }
    }

    /// The IANA name of the zone results are given in.
    #[getter]
    fn tz(&self) -> &str {
        self.zone.name()
    }

    /// The tzinfo results are given in.
    #[getter]
    fn tzinfo(&self, py: Python<'_>) -> Py<PyTzInfo> {
        self.tzinfo.clone_ref(py)
    }
}

#[pyclass(module = "fastcron._core", name = "FireIterator", frozen)]
pub struct FireIterator {
    trigger: Py<PyTrigger>,
    at: std::sync::atomic::AtomicI64,
}

#[pymethods]
impl FireIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDateTime>>> {
        use std::sync::atomic::Ordering;
        let trigger = self.trigger.get();
        let Some(next) = trigger.schedule.next_after(self.at.load(Ordering::Relaxed)) else {
            return Ok(None);
        };
        self.at.store(next, Ordering::Relaxed);
        trigger.datetime(py, next).map(Some)
    }
}

#[pyclass(module = "fastcron._core", name = "Cron", extends = PyTrigger, frozen)]
pub struct PyCron {
    expr: String,
    cron: Arc<Cron>,
}

#[pymethods]
impl PyCron {
    #[new]
    #[pyo3(signature = (expr, tz = None))]
    fn new(
        py: Python<'_>,
        expr: &Bound<'_, PyAny>,
        tz: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let expr = text_of(expr)?;
        let resolved = resolve_zone(py, tz)?;
        let parsed = crate::cron::CronExpr::parse(&expr).map_err(|e| to_py_error(py, e))?;
        let cron = Arc::new(Cron { expr: parsed, zone: resolved.zone.clone() });
        let base = PyTrigger {
            schedule: Schedule::Cron(Arc::clone(&cron)),
            zone: resolved.zone,
            tzinfo: resolved.tzinfo,
        };
        Ok(PyClassInitializer::from(base).add_subclass(PyCron { expr: expr.to_string(), cron }))
    }

    /// The expression as given.
    #[getter]
    fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether the expression has a seconds field.
    #[getter]
    fn has_seconds(&self) -> bool {
        self.cron.expr.has_seconds
    }

    fn __repr__(&self) -> String {
        format!("Cron({:?}, tz={:?})", self.expr, self.cron.zone.name())
    }

    /// Two Crons are equal when they fire at the same instants: same fields, same zone.
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyCron>().is_ok_and(|other| other.get().cron == self.cron)
    }

    fn __hash__(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.cron.expr.hash(&mut hasher);
        self.cron.zone.name().hash(&mut hasher);
        hasher.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let args = PyTuple::new(py, [this.expr.as_str(), this.cron.zone.name()])?;
        Ok((slf.get_type().into_any(), args))
    }
}

#[pyclass(module = "fastcron._core", name = "Interval", extends = PyTrigger, frozen)]
pub struct PyInterval {
    spec: String,
    interval: Interval,
}

#[pymethods]
impl PyInterval {
    /// `every` is a duration such as "90s", "5m", "2h", "1d", "1h30m"; fires lie on the grid
    /// `start + k * period`, with `start` the Unix epoch unless given.
    #[new]
    #[pyo3(signature = (every, start = None, tz = None))]
    fn new(
        py: Python<'_>,
        every: &str,
        start: Option<&Bound<'_, PyAny>>,
        tz: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let resolved = resolve_zone(py, tz)?;
        let anchor = match start {
            Some(start) if !start.is_none() => moment_of(start, &resolved.zone, None)?.seconds,
            _ => 0,
        };
        let interval = Interval::parse(every, anchor).map_err(|e| to_py_error(py, e))?;
        let base = PyTrigger {
            schedule: Schedule::Interval(interval),
            zone: resolved.zone,
            tzinfo: resolved.tzinfo,
        };
        Ok(PyClassInitializer::from(base).add_subclass(PyInterval { spec: every.to_string(), interval }))
    }

    /// The period in seconds.
    #[getter]
    fn period(&self) -> i64 {
        self.interval.period
    }

    /// The grid's anchor, epoch seconds.
    #[getter]
    fn anchor(&self) -> i64 {
        self.interval.anchor
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let this = slf.get();
        format!(
            "Interval({:?}, start={}, tz={:?})",
            this.spec,
            this.interval.anchor,
            slf.as_super().get().zone.name()
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyInterval>().is_ok_and(|other| other.get().interval == self.interval)
    }

    fn __hash__(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.interval.hash(&mut hasher);
        hasher.finish()
    }
}

#[pyclass(module = "fastcron._core", name = "Once", extends = PyTrigger, frozen)]
pub struct PyOnce {
    at: i64,
}

#[pymethods]
impl PyOnce {
    /// Fires once, at `when` (a datetime, naive = wall time in `tz`, or epoch seconds).
    #[new]
    #[pyo3(signature = (when, tz = None))]
    fn new(
        py: Python<'_>,
        when: &Bound<'_, PyAny>,
        tz: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let resolved = resolve_zone(py, tz)?;
        let at = moment_of(when, &resolved.zone, None)?.seconds;
        let base = PyTrigger { schedule: Schedule::Once(at), zone: resolved.zone, tzinfo: resolved.tzinfo };
        Ok(PyClassInitializer::from(base).add_subclass(PyOnce { at }))
    }

    /// The instant, epoch seconds.
    #[getter]
    fn at_ts(&self) -> i64 {
        self.at
    }

    fn __repr__(&self) -> String {
        format!("Once({})", describe::iso_utc(self.at))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PyOnce>().is_ok_and(|other| other.get().at == self.at)
    }

    fn __hash__(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.at.hash(&mut hasher);
        hasher.finish()
    }
}

/// The core schedule behind a `Trigger` (for the wheel).
pub(crate) fn extract_schedule(value: &Bound<'_, PyAny>) -> PyResult<Schedule> {
    let trigger = value
        .cast::<PyTrigger>()
        .map_err(|_| PyTypeError::new_err("expected a fastcron Cron, Interval or Once"))?;
    Ok(trigger.get().schedule.clone())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyTrigger>()?;
    m.add_class::<PyCron>()?;
    m.add_class::<PyInterval>()?;
    m.add_class::<PyOnce>()?;
    m.add_class::<FireIterator>()?;
    wheel::register(m)?;
    Ok(())
}
