//! Variable-length sequences: a padded batch equals running each sample
//! alone at its own length (outputs, final states, every gradient), for
//! LTC (fused and tensor-op paths) and CfC (every mode, mixed memory, fused
//! and tensor-op paths), reading forward and backward (`go_backwards`),
//! within 1e-5 in float32 and 1e-6 in float64;
//! and a bidirectional model's backward half equals a `go_backwards` model
//! on each unpadded sample.

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{CfCMode, RecurrentCell};
use ncps::import::{StateDict, UpstreamParams};
use ncps::rnn::{Bidirectional, CfCConfig, LTCConfig, Merge, Rnn, Units};
use ncps::wirings::AutoNCP;
use proptest::prelude::*;

use common::{AD as B, rng_turn, values, worst_error};

const INPUTS: usize = 3;

/// The float64 backend of the float64 checks (the tensor-op paths: the
/// fused kernels are float32).
type B64 = Autodiff<NdArray<f64>>;

/// Everything one run gives: outputs, final state, input and weight
/// gradients.
struct Run {
    output: Vec<f32>,
    hidden: Vec<f32>,
    memory: Vec<f32>,
    input_grad: Vec<f32>,
    grads: StateDict,
}

/// The loss every run backpropagates: squared outputs plus a function of
/// the final state, so that both reach every gradient.
fn run_model<Bk: AutodiffBackend, C>(
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
fn numbers<Bk: Backend, const D: usize>(
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
fn check<Bk: AutodiffBackend, C>(
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
    for (name, sum) in &param_sums {
        let err = worst_error(&padded.grads.values(name).unwrap(), sum);
        prop_assert!(err <= tolerance, "gradient of {} differs by {:.2e}", name, err);
    }
    Ok(())
}

fn lengths(steps: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=steps, 1..6).prop_map(move |mut l| {
        // Always one sample at full length and, when there are two, one of 1.
        l[0] = steps;
        if l.len() > 1 {
            l[1] = 1;
        }
        l
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_padded_cfc_batch_equals_each_sample_alone(
        (steps, lengths) in (1usize..7).prop_flat_map(|s| (Just(s), lengths(s))),
        mode in prop_oneof![Just(CfCMode::Default), Just(CfCMode::NoGate), Just(CfCMode::Pure)],
        mixed in any::<bool>(),
        proj in prop::option::of(1usize..4),
        fused in any::<bool>(),
        backwards in any::<bool>(),
        sequences in prop::bool::weighted(0.7),
        seed in 0u64..1000,
    ) {
        let model = {
            let _turn = rng_turn();
            B::seed(&Default::default(), seed);
            CfCConfig::new(INPUTS, Units::from(6))
            .with_mode(mode)
            .with_mixed_memory(mixed)
            .with_proj_size(proj)
            .with_backbone_units(Some(10))
            .with_fused(fused && std::env::var("NOFUSE").is_err())
            .with_go_backwards(backwards)
            .with_return_sequences(sequences)
            .init::<B>(&Default::default())
            .unwrap()
        };
        check(&model, &lengths, steps, seed, 1e-5)?;
    }

    #[test]
    fn a_padded_ltc_batch_equals_each_sample_alone(
        (steps, lengths) in (1usize..7).prop_flat_map(|s| (Just(s), lengths(s))),
        mixed in any::<bool>(),
        fused in any::<bool>(),
        backwards in any::<bool>(),
        sequences in prop::bool::weighted(0.7),
        seed in 0u64..1000,
    ) {
        let model = {
            let _turn = rng_turn();
            B::seed(&Default::default(), seed);
            LTCConfig::new(INPUTS, Units::from(AutoNCP::new(8, 2).unwrap()))
            .with_mixed_memory(mixed)
            .with_fused(fused)
            .with_go_backwards(backwards)
            .with_return_sequences(sequences)
            .with_ode_unfolds(3)
            .init::<B>(&Default::default())
            .unwrap()
        };
        check(&model, &lengths, steps, seed, 1e-5)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The same in float64, where rounding leaves room for 1e-6: LTC and
    /// CfC (every mode, mixed memory), forward and backward.
    #[test]
    fn a_padded_float64_batch_equals_each_sample_alone(
        (steps, lengths) in (1usize..7).prop_flat_map(|s| (Just(s), lengths(s))),
        ltc in any::<bool>(),
        mode in prop_oneof![Just(CfCMode::Default), Just(CfCMode::NoGate), Just(CfCMode::Pure)],
        mixed in any::<bool>(),
        backwards in any::<bool>(),
        sequences in prop::bool::weighted(0.7),
        seed in 0u64..1000,
    ) {
        let _turn = rng_turn();
        let device = Default::default();
        B64::seed(&device, seed);
        if ltc {
            let model = LTCConfig::new(INPUTS, Units::from(AutoNCP::new(8, 2).unwrap()))
                .with_mixed_memory(mixed)
                .with_go_backwards(backwards)
                .with_return_sequences(sequences)
                .with_ode_unfolds(3)
                .init::<B64>(&device)
                .unwrap();
            check(&model, &lengths, steps, seed, 1e-6)?;
        } else {
            let model = CfCConfig::new(INPUTS, Units::from(6))
                .with_mode(mode)
                .with_mixed_memory(mixed)
                .with_backbone_units(Some(10))
                .with_go_backwards(backwards)
                .with_return_sequences(sequences)
                .init::<B64>(&device)
                .unwrap();
            check(&model, &lengths, steps, seed, 1e-6)?;
        }
    }
}

/// A `[1, len, ..]` slice of sample `b`.
fn sample<const D: usize>(x: &Tensor<B, D>, b: usize, len: usize) -> Tensor<B, D> {
    let mut ranges = x.dims().map(|d| 0..d);
    ranges[0] = b..b + 1;
    ranges[1] = 0..len;
    x.clone().slice(ranges)
}

#[test]
fn the_backward_half_of_a_bidirectional_model_is_a_go_backwards_model_on_each_sample() {
    let _turn = rng_turn();
    let device = Default::default();
    let (steps, lengths) = (7, [7i64, 3, 1, 5]);
    let forward = CfCConfig::new(INPUTS, Units::from(5))
        .with_mixed_memory(true)
        .init::<B>(&device)
        .unwrap();
    let backward = LTCConfig::new(INPUTS, Units::from(AutoNCP::new(9, 3).unwrap()))
        .init::<B>(&device)
        .unwrap();
    let model = Bidirectional::new(forward.clone(), backward.clone(), Merge::Concat).unwrap();
    let mut reversed = backward.clone();
    reversed.go_backwards = true;
    let input = Tensor::<B, 3>::random([4, steps, INPUTS], Distribution::Normal(0.0, 1.0), &device);
    let timespans = Tensor::<B, 2>::random([4, steps], Distribution::Uniform(0.1, 2.0), &device);
    let (output, (state_f, state_b)) = model.forward_padded(
        input.clone(),
        Tensor::from_data(TensorData::new(lengths.to_vec(), [4]), &device),
        Some(timespans.clone()),
        None,
    );
    assert_eq!(output.dims(), [4, steps, 5 + 3]);
    for (b, &len) in lengths.iter().enumerate() {
        let len = len as usize;
        let (x, t) = (sample(&input, b, len), sample(&timespans, b, len));
        // Forward half: the forward model alone.
        let (alone_f, last_f) = forward.forward_timed(x.clone(), t.clone(), None);
        let ours_f = output.clone().slice([b..b + 1, 0..len, 0..5]);
        assert!(worst_error(&values(ours_f), &values(alone_f)) <= 1e-5);
        let ours = values(state_f.hidden.clone().slice([b..b + 1, 0..5]));
        assert!(worst_error(&ours, &values(last_f.hidden)) <= 1e-5);
        // Backward half: a go_backwards model, its outputs put back at the
        // steps they read.
        let (alone_b, last_b) = reversed.forward_timed(x, t, None);
        let ours_b = output.clone().slice([b..b + 1, 0..len, 5..8]).flip([1]);
        let err = worst_error(&values(ours_b), &values(alone_b));
        assert!(
            err <= 1e-5,
            "sample {b}: backward half differs by {err:.2e}"
        );
        let ours = values(state_b.hidden.clone().slice([b..b + 1, 0..9]));
        assert!(worst_error(&ours, &values(last_b.hidden)) <= 1e-5);
        // Padding: zeros in both halves.
        let pad = values(output.clone().slice([b..b + 1, len..steps]));
        assert!(
            pad.iter().all(|&v| v == 0.0),
            "sample {b}: padding not zero"
        );
    }
    // Sum merges the same halves.
    let backward_cfc = CfCConfig::new(INPUTS, Units::from(5))
        .init::<B>(&device)
        .unwrap();
    let concat = Bidirectional::new(forward.clone(), backward_cfc.clone(), Merge::Concat).unwrap();
    let sum = Bidirectional::new(forward, backward_cfc, Merge::Sum).unwrap();
    let (c, _) = concat.forward(input.clone(), None);
    let (s, _) = sum.forward(input, None);
    let halves = c.clone().slice([0..4, 0..steps, 0..5]) + c.slice([0..4, 0..steps, 5..10]);
    assert!(worst_error(&values(s), &values(halves)) <= 1e-6);
}

#[test]
fn go_backwards_reads_the_sequence_reversed() {
    let _turn = rng_turn();
    let device = Default::default();
    let model = CfCConfig::new(INPUTS, Units::from(6))
        .init::<B>(&device)
        .unwrap();
    let mut backwards = model.clone();
    backwards.go_backwards = true;
    let input = Tensor::<B, 3>::random([2, 5, INPUTS], Distribution::Normal(0.0, 1.0), &device);
    let (a, state_a) = backwards.forward(input.clone(), None);
    let (b, state_b) = model.forward(input.flip([1]), None);
    assert!(worst_error(&values(a), &values(b)) <= 1e-6);
    assert!(worst_error(&values(state_a.hidden), &values(state_b.hidden)) <= 1e-6);
}

#[test]
fn forward_last_with_lengths_is_each_samples_last_valid_output() {
    let _turn = rng_turn();
    let device = Default::default();
    let model = CfCConfig::new(INPUTS, Units::from(6))
        .with_proj_size(Some(2))
        .init::<B>(&device)
        .unwrap();
    let input = Tensor::<B, 3>::random([3, 6, INPUTS], Distribution::Normal(0.0, 1.0), &device);
    let lengths = [6i64, 2, 4];
    let (last, _) = model.forward_last(
        input.clone(),
        None,
        Some(Tensor::from_data(
            TensorData::new(lengths.to_vec(), [3]),
            &device,
        )),
        None,
    );
    assert_eq!(last.dims(), [3, 2]);
    for (b, &len) in lengths.iter().enumerate() {
        let (alone, _) = model.forward_last(sample(&input, b, len as usize), None, None, None);
        let ours = values(last.clone().slice([b..b + 1, 0..2]));
        assert!(worst_error(&ours, &values(alone)) <= 1e-5, "sample {b}");
    }
}
