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

/// Whether [`LTCCell`](crate::cells::LTCCell) runs its fused step on backend
/// `B` (`NdArray<f32>` and `Autodiff<NdArray<f32>>`; with `fused = true`,
/// the default). Other backends take the dense tensor-op path.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
///
/// assert!(ncps::kernels::fused_ltc_available::<NdArray<f32>>());
/// assert!(ncps::kernels::fused_ltc_available::<Autodiff<NdArray<f32>>>());
/// assert!(!ncps::kernels::fused_ltc_available::<NdArray<f64>>());
/// ```
pub fn fused_ltc_available<B: burn::prelude::Backend>() -> bool {
    #[cfg(feature = "ndarray")]
    {
        ndarray::fused_ltc_available::<B>()
    }
    #[cfg(not(feature = "ndarray"))]
    {
        false
    }
}
