//! Fused compute on plain slices, and its binding to Burn backends.
//!
//! - [`ltc`]: one LTC time step over the existing synapses only (grouped by
//!   destination), forward and analytic backward, on `f32` slices: no Burn
//!   types, so a later Burn or a GPU kernel reuses the same arithmetic.
//! - `ndarray` (feature `ndarray`): the step as one Burn operation on
//!   `NdArray<f32>` and `Autodiff<NdArray<f32>>`, dispatched at run time by
//!   [`LTCCell`](crate::cells::LTCCell); other backends use the cell's
//!   tensor-op reference path.

pub mod ltc;
#[cfg(feature = "ndarray")]
pub(crate) mod ndarray;
