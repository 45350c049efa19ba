//! A linear layer over rows, `y = x·W + b` with Burn's `Linear` layout
//! (`W [inputs, outputs]`), forward and backward on plain slices, the rows
//! split over the threads: the sequence modules' projection of every
//! output (`proj_size`), which Burn's ndarray backend runs on the calling
//! thread while the others wait (docs/performance.md, "The projection on
//! both cores").
//!
//! Each output is the product's sum, then the bias added, as Burn's
//! `linear` computes it; the weights' and the bias' gradients are summed
//! per thread, then over the threads in order.

use super::gemm::{View, add_transposed_product, matmul};
use super::parallel::new_rows;

/// Rows per thread below which the layer runs on the calling thread: a
/// step's projection (a batch of rows) stays there, a sequence's (batch ·
/// steps rows) is split.
const ROWS_PER_THREAD: usize = 256;

/// The shapes of one call: `rows` rows of `inputs` values to `outputs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Rows of `x` (every leading dimension of the tensor, flattened).
    pub rows: usize,
    /// Values of a row of `x`, rows of `W`.
    pub inputs: usize,
    /// Values of a row of `y`, columns of `W`.
    pub outputs: usize,
}

impl Shape {
    fn check(&self, x: &[f32], weight: &[f32], bias: Option<&[f32]>) {
        assert_eq!(
            x.len(),
            self.rows * self.inputs,
            "linear: x is not [rows, inputs]"
        );
        assert_eq!(
            weight.len(),
            self.inputs * self.outputs,
            "linear: the weight is not [inputs, outputs]"
        );
        if let Some(bias) = bias {
            assert_eq!(
                bias.len(),
                self.outputs,
                "linear: the bias is not [outputs]"
            );
        }
    }
}

/// `x [rows, inputs] · weight [inputs, outputs] + bias`: `[rows, outputs]`.
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, shape: Shape) -> Vec<f32> {
    shape.check(x, weight, bias);
    let (rows, inputs, outputs) = (shape.rows, shape.inputs, shape.outputs);
    if outputs == 0 {
        return Vec::new();
    }
    // Each thread writes its rows in place.
    new_rows(rows * outputs, outputs, ROWS_PER_THREAD, |first, part| {
        let count = part.len() / outputs;
        let x = View::new(&x[first * inputs..(first + count) * inputs], count, inputs);
        matmul(x, View::new(weight, inputs, outputs), part, outputs, false);
        if let Some(bias) = bias {
            for row in part.chunks_exact_mut(outputs) {
                row.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
            }
        }
    })
}

/// The gradients of [`forward`]'s inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    /// Of `x`, `[rows, inputs]`.
    pub x: Vec<f32>,
    /// Of the weight, `[inputs, outputs]`.
    pub weight: Vec<f32>,
    /// Of the bias, `[outputs]`.
    pub bias: Vec<f32>,
}

/// The gradients of `x`, the weight and the bias from `grad_y [rows,
/// outputs]`.
pub fn backward(x: &[f32], weight: &[f32], grad_y: &[f32], shape: Shape) -> Grads {
    shape.check(x, weight, None);
    let (rows, inputs, outputs) = (shape.rows, shape.inputs, shape.outputs);
    assert_eq!(
        grad_y.len(),
        rows * outputs,
        "linear: grad_y is not [rows, outputs]"
    );
    // Each thread writes its rows of the input's gradient in place (joined
    // afterwards, they were a copy of them all on the calling thread) and
    // keeps its sums of the weight's and the bias' gradients.
    let sums = std::sync::Mutex::new(Vec::new());
    let run = |first: usize, count: usize, x_part: &mut [f32]| {
        let x = View::new(&x[first * inputs..(first + count) * inputs], count, inputs);
        let grad_y = &grad_y[first * outputs..(first + count) * outputs];
        let dy = View::new(grad_y, count, outputs);
        matmul(
            dy,
            View::new(weight, inputs, outputs).t(),
            x_part,
            inputs,
            false,
        );
        let mut weight_grad = vec![0.0; inputs * outputs];
        let mut bias_grad = vec![0.0; outputs];
        add_transposed_product(x, dy, &mut weight_grad);
        dy.add_column_sums(&mut bias_grad);
        let mut sums = sums.lock().unwrap_or_else(|e| e.into_inner());
        sums.push((first, weight_grad, bias_grad));
    };
    let x_grad = if inputs == 0 {
        run(0, rows, &mut []);
        Vec::new()
    } else {
        new_rows(rows * inputs, inputs, ROWS_PER_THREAD, |first, part| {
            run(first, part.len() / inputs, part)
        })
    };
    let mut sums = sums.into_inner().unwrap_or_else(|e| e.into_inner());
    sums.sort_by_key(|&(first, ..)| first);
    let mut sums = sums.into_iter();
    let (_, mut weight_grad, mut bias_grad) = sums.next().expect("at least one chunk");
    for (_, weight_part, bias_part) in sums {
        let pairs = [(&mut weight_grad, weight_part), (&mut bias_grad, bias_part)];
        for (sum, more) in pairs {
            sum.iter_mut().zip(more).for_each(|(s, m)| *s += m);
        }
    }
    Grads {
        x: x_grad,
        weight: weight_grad,
        bias: bias_grad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [-1, 1) from a fixed sequence.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(ours: &[f32], truth: &[f64], what: &str) {
        assert_eq!(ours.len(), truth.len(), "{what}: length");
        for (i, (&a, &b)) in ours.iter().zip(truth).enumerate() {
            let tolerance = 1e-5 * b.abs().max(1.0);
            assert!(
                (f64::from(a) - b).abs() <= tolerance,
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn forward_and_backward_match_the_definition() {
        // One row, rows on one thread, rows split over the threads (where
        // there are several); an empty batch; rows of no inputs (only the
        // bias, whose gradient still sums every row).
        for (rows, inputs, outputs) in [
            (1, 5, 17),
            (37, 64, 17),
            (700, 9, 3),
            (0, 4, 2),
            (600, 0, 3),
        ] {
            let shape = Shape {
                rows,
                inputs,
                outputs,
            };
            let x = values(rows * inputs, 1);
            let w = values(inputs * outputs, 2);
            let b = values(outputs, 3);
            let gy = values(rows * outputs, 4);
            let (x64, w64) = (
                x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            );
            let gy64: Vec<f64> = gy.iter().map(|&v| f64::from(v)).collect();
            let mut y = vec![0.0f64; rows * outputs];
            let mut gx = vec![0.0f64; rows * inputs];
            let mut gw = vec![0.0f64; inputs * outputs];
            let mut gb = vec![0.0f64; outputs];
            for r in 0..rows {
                for o in 0..outputs {
                    let dot: f64 = (0..inputs)
                        .map(|i| x64[r * inputs + i] * w64[i * outputs + o])
                        .sum();
                    y[r * outputs + o] = dot + f64::from(b[o]);
                    let g = gy64[r * outputs + o];
                    gb[o] += g;
                    for i in 0..inputs {
                        gx[r * inputs + i] += g * w64[i * outputs + o];
                        gw[i * outputs + o] += g * x64[r * inputs + i];
                    }
                }
            }
            close(&forward(&x, &w, Some(&b), shape), &y, "y");
            let unbiased: Vec<f64> = (0..rows * outputs)
                .map(|k| y[k] - f64::from(b[k % outputs]))
                .collect();
            close(&forward(&x, &w, None, shape), &unbiased, "y without bias");
            let grads = backward(&x, &w, &gy, shape);
            close(&grads.x, &gx, "grad x");
            close(&grads.weight, &gw, "grad weight");
            close(&grads.bias, &gb, "grad bias");
        }
    }

    #[test]
    #[should_panic(expected = "linear: the weight is not [inputs, outputs]")]
    fn a_weight_of_another_shape_is_named() {
        let shape = Shape {
            rows: 2,
            inputs: 3,
            outputs: 4,
        };
        forward(&[0.0; 6], &[0.0; 11], None, shape);
    }
}
