//! PLACEHOLDER until the wheel binding lands (helper-1 replaces this file).
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
