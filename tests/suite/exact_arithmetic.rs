//! The elementwise operations the models use are exact to float32 rounding,
//! forward and backward, on the CPU backend the crate ships with.
//!
//! Burn 0.21 with its `simd` feature computes the f32 reciprocal with the
//! x86 approximate-reciprocal instructions (`rcpps`: ~3.7e-4 relative error on
//! AVX2, ~6e-5 on AVX-512), and burn-autodiff's division backward multiplies
//! by that reciprocal: LTC's gradients then miss the float64 truth by up to
//! 1e-3. Each row below compares an operation (value and gradient) with the
//! same formula in f64; a Burn upgrade or a feature that brings an
//! approximation back fails here, naming the operation.

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::activation;

type B = Autodiff<NdArray<f32>>;

/// Relative error with a floor of 1 on the magnitude (absolute below 1).
fn error(ours: f32, truth: f64) -> f64 {
    (f64::from(ours) - truth).abs() / truth.abs().max(1.0)
}

/// A few float32 roundings: what an exact float32 evaluation of these short
/// formulas lands within. The approximate reciprocal is 500x worse.
const TOLERANCE: f64 = 6e-7;

/// Inputs spanning the ranges the models see: potentials, synapse
/// arguments, denominators from 1e-3 to 1e3.
fn grid() -> Vec<f32> {
    let mut values = vec![
        -30.0, -7.5, -2.0, -1.0, -0.3, -1e-3, 1e-3, 0.25, 0.7, 1.3, 3.0, 9.0, 30.0,
    ];
    values.extend((1..40).map(|i| 0.37 * i as f32 - 6.1));
    values
}

struct Row {
    name: &'static str,
    /// Keep inputs where the function is defined.
    domain: fn(f64) -> bool,
    op: fn(Tensor<B, 1>) -> Tensor<B, 1>,
    value: fn(f64) -> f64,
    derivative: fn(f64) -> f64,
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn rows() -> Vec<Row> {
    let all = |_: f64| true;
    vec![
        Row {
            name: "recip",
            domain: |x| x.abs() >= 1e-3,
            op: |t| t.recip(),
            value: |x| 1.0 / x,
            derivative: |x| -1.0 / (x * x),
        },
        Row {
            name: "div (numerator 1.7 / x)",
            domain: |x| x.abs() >= 1e-3,
            op: |t| t.ones_like().mul_scalar(1.7) / t,
            value: |x| 1.7 / x,
            derivative: |x| -1.7 / (x * x),
        },
        Row {
            name: "div (x / 2.9)",
            domain: all,
            op: |t| t.clone() / t.ones_like().mul_scalar(2.9),
            value: |x| x / 2.9,
            derivative: |_| 1.0 / 2.9,
        },
        Row {
            name: "sigmoid",
            domain: all,
            op: activation::sigmoid,
            value: sigmoid64,
            derivative: |x| sigmoid64(x) * (1.0 - sigmoid64(x)),
        },
        Row {
            name: "tanh",
            domain: all,
            op: |t| t.tanh(),
            value: f64::tanh,
            derivative: |x| 1.0 - x.tanh().powi(2),
        },
        Row {
            name: "exp",
            domain: |x| x <= 20.0,
            op: |t| t.exp(),
            value: f64::exp,
            derivative: f64::exp,
        },
        Row {
            name: "log",
            domain: |x| x > 0.0,
            op: |t| t.log(),
            value: f64::ln,
            derivative: |x| 1.0 / x,
        },
        Row {
            name: "mul",
            domain: all,
            op: |t| t.clone() * t,
            value: |x| x * x,
            derivative: |x| 2.0 * x,
        },
    ]
}

#[test]
fn elementwise_operations_match_float64() {
    let device = Default::default();
    let mut failures = Vec::new();
    for row in rows() {
        let inputs: Vec<f32> = grid()
            .into_iter()
            .filter(|&x| (row.domain)(f64::from(x)))
            .collect();
        let x = Tensor::<B, 1>::from_floats(inputs.as_slice(), &device).require_grad();
        let y = (row.op)(x.clone());
        let grads = y.clone().sum().backward();
        let values: Vec<f32> = y.into_data().to_vec().unwrap();
        let gradient: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        let (mut worst_value, mut worst_gradient) = (0.0f64, 0.0f64);
        for ((&input, &value), &grad) in inputs.iter().zip(&values).zip(&gradient) {
            let input = f64::from(input);
            worst_value = worst_value.max(error(value, (row.value)(input)));
            worst_gradient = worst_gradient.max(error(grad, (row.derivative)(input)));
        }
        if worst_value > TOLERANCE || worst_gradient > TOLERANCE {
            failures.push(format!(
                "{}: value error {worst_value:.1e}, gradient error {worst_gradient:.1e}",
                row.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "operations less exact than float32 rounding:\n{}",
        failures.join("\n")
    );
}

/// The smallest reproduction of the `simd` defect: the gradient of a
/// quotient with respect to its denominator, `-x / d²`, which the autodiff
/// backward computes through `recip(d)`.
#[test]
fn division_gradient_matches_float64() {
    let device = Default::default();
    let numerators = [0.3f32, 1.0, 2.5, -4.0, 7.25, 11.0, -0.01, 3.3];
    let denominators = [0.7f32, 1.9, 3.1, 5.5, 8.3, 13.0, 21.7, 0.0625];
    let x = Tensor::<B, 1>::from_floats(numerators, &device).require_grad();
    let d = Tensor::<B, 1>::from_floats(denominators, &device).require_grad();
    let grads = (x.clone() / d.clone()).sum().backward();
    let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
    let dd: Vec<f32> = d.grad(&grads).unwrap().into_data().to_vec().unwrap();
    for i in 0..numerators.len() {
        let (n, den) = (f64::from(numerators[i]), f64::from(denominators[i]));
        let (ex, ed) = (error(dx[i], 1.0 / den), error(dd[i], -n / (den * den)));
        assert!(
            ex <= TOLERANCE && ed <= TOLERANCE,
            "d({n}/{den}): gradient errors {ex:.1e} (numerator), {ed:.1e} (denominator): \
             an approximate reciprocal is in the backward pass"
        );
    }
}
