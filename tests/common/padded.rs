//! The padded-batch check shared by tests/padding.rs (float32) and
//! tests/padding_f64.rs (float64): a padded batch run at once equals each
//! sample run alone at its own length.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use ncps::cells::RecurrentCell;
use ncps::import::{StateDict, UpstreamParams};
use ncps::rnn::Rnn;
use proptest::prelude::*;

use super::{values, worst_error, worst_normwise_error};

/// The input features of every padded-batch model.
pub const INPUTS: usize = 3;

/// Everything one run gives: outputs, final state, input and weight
/// gradients.
pub struct Run {
    pub output: Vec<f32>,
    pub hidden: Vec<f32>,
    pub memory: Vec<f32>,
    pub input_grad: Vec<f32>,
    pub grads: StateDict,
}

/// The loss every run backpropagates: squared outputs plus a function of
/// the final state, so that both reach every gradient.
pub fn run_model<Bk: AutodiffBackend, C>(
    model: &Rnn<Bk, C>,
    input: Tensor<Bk, 3>,
    timespans: Tensor<Bk, 2>,
    lengths: Option<Vec<i64>>,
) -> Run
where
    C: RecurrentCell<Bk> + Module<Bk> + Clone,
    Rnn<Bk, C>: UpstreamParams<Bk> + Clone,
{
    let device = input.device();
    let input = input.require_grad();
    let (output, state) = match lengths {
        Some(lengths) => {
            let n = lengths.len();
            let lengths = Tensor::from_data(TensorData::new(lengths, [n]), &device);
            model.forward_padded(input.clone(), lengths, Some(timespans), None)
        }
        None => model.forward_timed(input.clone(), timespans, None),
    };
    let mut loss = output.clone().powf_scalar(2.0).sum() + state.hidden.clone().sin().sum();
    if let Some(memory) = &state.memory {
        loss = loss + memory.clone().cos().sum();
    }
    let gradients = loss.backward();
    Run {
        output: values(output),
        hidden: values(state.hidden),
        memory: state.memory.map(values).unwrap_or_default(),
        input_grad: values(input.grad(&gradients).unwrap()),
        grads: StateDict::gradients(model, &gradients),
    }
}

/// A tensor of numbers uniform in `[low, high)` from a small generator.
pub fn numbers<Bk: Backend, const D: usize>(
    seed: u64,
    shape: [usize; D],
    low: f32,
    high: f32,
) -> Tensor<Bk, D> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            low + (high - low) * unit
        })
        .collect();
    Tensor::from_data(
        TensorData::new(values, shape).convert::<Bk::FloatElem>(),
        &Default::default(),
    )
}

/// Runs the padded batch and every sample alone; compares within
/// `tolerance`.
pub fn check<Bk: AutodiffBackend, C>(
    model: &Rnn<Bk, C>,
    lengths: &[usize],
    steps: usize,
    seed: u64,
    tolerance: f64,
) -> Result<(), TestCaseError>
where
    C: RecurrentCell<Bk> + Module<Bk> + Clone,
    Rnn<Bk, C>: UpstreamParams<Bk> + Clone,
{
    let batch = lengths.len();
    // Drawn here, not from Burn's process-wide RNG (which tests running in
    // parallel share), so that a failing case replays exactly.
    let input = numbers::<Bk, 3>(seed, [batch, steps, INPUTS], -2.0, 2.0);
    let timespans = numbers::<Bk, 2>(seed + 1, [batch, steps], 0.1, 2.0);
    let padded = run_model(
        model,
        input.clone(),
        timespans.clone(),
        Some(lengths.iter().map(|&l| l as i64).collect()),
    );
    let out = model.output_size();
    let state = model.state_size();
    let sequences = model.return_sequences;
    let out_steps = if sequences { steps } else { 1 };
    let mut param_sums: Vec<(String, Vec<f32>)> = Vec::new();
    for (b, &len) in lengths.iter().enumerate() {
        let alone = run_model(
            model,
            input.clone().slice([b..b + 1, 0..len]),
            timespans.clone().slice([b..b + 1, 0..len]),
            None,
        );
        // Outputs: the sample's own, then zeros over its padding.
        let ours = &padded.output[b * out_steps * out..(b + 1) * out_steps * out];
        let valid = if sequences { len * out } else { out };
        let err = worst_error(&ours[..valid], &alone.output);
        prop_assert!(
            err <= tolerance,
            "sample {} (length {}): output differs by {:.2e}",
            b,
            len,
            err
        );
        prop_assert!(
            ours[valid..].iter().all(|&v| v == 0.0),
            "sample {}: padding output not zero",
            b
        );
        let err = worst_error(&padded.hidden[b * state..(b + 1) * state], &alone.hidden);
        prop_assert!(
            err <= tolerance,
            "sample {}: final state differs by {:.2e}",
            b,
            err
        );
        if !alone.memory.is_empty() {
            let err = worst_error(&padded.memory[b * state..(b + 1) * state], &alone.memory);
            prop_assert!(
                err <= tolerance,
                "sample {}: final memory differs by {:.2e}",
                b,
                err
            );
        }
        let grad = &padded.input_grad[b * steps * INPUTS..(b + 1) * steps * INPUTS];
        let err = worst_error(&grad[..len * INPUTS], &alone.input_grad);
        prop_assert!(
            err <= tolerance,
            "sample {}: input gradient differs by {:.2e}",
            b,
            err
        );
        prop_assert!(
            grad[len * INPUTS..].iter().all(|&g| g == 0.0),
            "sample {}: padding has a gradient",
            b
        );
        // The batch's weight gradients are the sum of the samples'.
        for name in alone.grads.names() {
            let g = alone.grads.values(name).unwrap();
            match param_sums.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => sum.iter_mut().zip(&g).for_each(|(s, v)| *s += v),
                None => param_sums.push((name.to_string(), g)),
            }
        }
    }
    // Sums over samples and steps, added up in another order: normwise
    // (an entry of a large gradient is held to the rounding of the
    // gradient's size, as tests/fused_cfc.rs holds them; elementwise, a
    // NoGate case's bias gradient missed 1e-5 by 1.6e-6, kernels of
    // 0c3d6bd and since).
    for (name, sum) in &param_sums {
        let err = worst_normwise_error(&padded.grads.values(name).unwrap(), sum);
        prop_assert!(
            err <= tolerance,
            "gradient of {} differs by {:.2e}",
            name,
            err
        );
    }
    Ok(())
}

pub fn lengths(steps: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=steps, 1..6).prop_map(move |mut l| {
        // Always one sample at full length and, when there are two, one of 1.
        l[0] = steps;
        if l.len() > 1 {
            l[1] = 1;
        }
        l
    })
}
