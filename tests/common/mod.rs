//! Helpers shared by the integration tests: the backends, the device, value
//! extraction and the one approximate comparison.
//!
//! Every test file that says `mod common;` compiles its own copy of this
//! module and uses only some of it, hence the `allow(dead_code)`.
#![allow(dead_code)]

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use serde_json::Value;

/// The CPU backend of the tests.
pub type B = NdArray<f32>;
/// The same backend with autodiff, for gradients and training.
pub type AD = Autodiff<NdArray<f32>>;

/// The CPU device (the same for [`B`] and [`AD`]).
pub fn device() -> Device<B> {
    Default::default()
}

/// A tensor's values in row-major order, as `f32` whatever its float type.
pub fn values<Bk: Backend, const D: usize>(tensor: Tensor<Bk, D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().to_vec().unwrap()
}

/// The numbers of a JSON array, as `f32`.
pub fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array of numbers, got {value}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("{x} is not a number")) as f32)
        .collect()
}

/// How far `ours` is from `theirs`: absolute where `|theirs| <= 1`, relative
/// above. Equal values (infinities included) are 0 apart; a NaN is infinitely
/// far from anything.
pub fn error(ours: f32, theirs: f32) -> f64 {
    if ours == theirs {
        return 0.0;
    }
    let error = (f64::from(ours) - f64::from(theirs)).abs() / f64::from(theirs.abs()).max(1.0);
    if error.is_nan() { f64::INFINITY } else { error }
}

/// The largest [`error`] between two equally long slices.
#[track_caller]
pub fn worst_error(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "element counts differ");
    ours.iter()
        .zip(theirs)
        .map(|(&a, &b)| error(a, b))
        .fold(0.0, f64::max)
}

/// Panics unless every value of `ours` is within `tolerance` of `theirs`
/// (see [`error`]); the message names `what`, where it differs most and how
/// many values are off.
#[track_caller]
pub fn assert_close(ours: &[f32], theirs: &[f32], tolerance: f64, what: &str) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {} values, expected {}",
        ours.len(),
        theirs.len()
    );
    let errors: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(&a, &b)| error(a, b))
        .collect();
    let off = errors.iter().filter(|&&e| e > tolerance).count();
    if off > 0 {
        let (at, worst) =
            errors.iter().enumerate().fold(
                (0, 0.0),
                |(i, w), (j, &e)| if e > w { (j, e) } else { (i, w) },
            );
        panic!(
            "{what}: {off} of {} values differ by more than {tolerance:.0e} \
             (absolute below 1, relative above); worst at index {at}: {} vs {} (error {worst:.2e})",
            ours.len(),
            ours[at],
            theirs[at],
        );
    }
}

/// [`assert_close`] for two tensors, which must also have the same shape.
#[track_caller]
pub fn assert_tensors_close<Bk: Backend, const D: usize>(
    ours: Tensor<Bk, D>,
    theirs: Tensor<Bk, D>,
    tolerance: f64,
    what: &str,
) {
    assert_eq!(ours.dims(), theirs.dims(), "{what}: shapes differ");
    assert_close(&values(ours), &values(theirs), tolerance, what);
}
