//! Variable-length sequences: a padded batch equals running each sample
//! alone at its own length (outputs, final states, every gradient), for
//! LTC and CfC (fused and tensor-op paths; every CfC mode; mixed memory in
//! both arrangements), reading forward and backward (`go_backwards`),
//! within 1e-5 (tests/padding_f64.rs: the same in float64);
//! a bidirectional model's backward half equals a `go_backwards` model
//! on each unpadded sample; and masked stepping computes what the padded
//! sequence forward computes.

mod common;

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{CfCCellOptions, CfCMode, LTCCellOptions, RecurrentCell};
use ncps::rnn::{Bidirectional, CfCConfig, LTCConfig, LstmOutput, Merge, Rnn, Units};
use ncps::wirings::AutoNCP;
use proptest::prelude::*;

use common::padded::{INPUTS, check, lengths, numbers};
use common::{AD as B, rng_turn, values, worst_error};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_padded_cfc_batch_equals_each_sample_alone(
        (steps, lengths) in (1usize..7).prop_flat_map(|s| (Just(s), lengths(s))),
        mode in prop_oneof![Just(CfCMode::Default), Just(CfCMode::NoGate), Just(CfCMode::Pure)],
        // No memory, the LSTM output as the cell's state, as its input.
        mixed in 0u8..3,
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
            .with_cell(CfCCellOptions::new().with_mode(mode).with_backbone_units(10).with_fused(fused && std::env::var("NOFUSE").is_err()))
            .with_mixed_memory(mixed > 0)
            .with_lstm_output(arrangement(mixed))
            .with_proj_size(proj)
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
        // No memory, the LSTM output as the cell's state, as its input.
        mixed in 0u8..3,
        fused in any::<bool>(),
        backwards in any::<bool>(),
        sequences in prop::bool::weighted(0.7),
        seed in 0u64..1000,
    ) {
        let model = {
            let _turn = rng_turn();
            B::seed(&Default::default(), seed);
            LTCConfig::new(INPUTS, Units::from(AutoNCP::new(8, 2).unwrap()))
            .with_mixed_memory(mixed > 0)
            .with_lstm_output(arrangement(mixed))
            .with_cell(LTCCellOptions::new().with_fused(fused).with_ode_unfolds(3))
            .with_go_backwards(backwards)
            .with_return_sequences(sequences)
            .init::<B>(&Default::default())
            .unwrap()
        };
        check(&model, &lengths, steps, seed, 1e-5)?;
    }
}

/// Where the LSTM's output goes for a generated `mixed`.
fn arrangement(mixed: u8) -> LstmOutput {
    if mixed == 2 {
        LstmOutput::Input
    } else {
        LstmOutput::State
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

/// A padded batch stepped through `Stateful::step_masked` with
/// `valid = t < length`: every step's output and the final state are what
/// `forward_padded` computes (LTC and CfC, mixed memory, projection).
#[test]
fn masked_steps_compute_the_padded_forward() {
    let _turn = rng_turn();
    let device = Default::default();
    fn compare<C: RecurrentCell<B> + 'static>(model: Rnn<B, C>, device: &Device<B>) {
        let (batch, steps) = (3, 6);
        let lengths = [6usize, 1, 4];
        let input = numbers::<B, 3>(5, [batch, steps, INPUTS], -2.0, 2.0);
        let timespans = numbers::<B, 2>(6, [batch, steps], 0.1, 2.0);
        let as_tensor = Tensor::from_data(
            TensorData::new(lengths.map(|l| l as i64).to_vec(), [batch]),
            device,
        );
        let (output, state) =
            model.forward_padded(input.clone(), as_tensor, Some(timespans.clone()), None);
        let out = model.output_size();
        let mut policy = model.into_stateful();
        for t in 0..steps {
            let valid: Vec<bool> = lengths.iter().map(|&l| t < l).collect();
            let valid = Tensor::<B, 1, Bool>::from_bool(TensorData::new(valid, [batch]), device);
            let stepped = policy.step_masked(
                input.clone().slice([0..batch, t..t + 1]).squeeze_dim(1),
                timespans.clone().slice([0..batch, t..t + 1]).squeeze_dim(1),
                valid,
            );
            let expected = output
                .clone()
                .slice([0..batch, t..t + 1])
                .reshape([batch, out]);
            let err = worst_error(&values(stepped), &values(expected));
            assert!(err <= 1e-5, "step {t}: output differs by {err:.2e}");
        }
        let last = policy.state().unwrap();
        assert!(worst_error(&values(last.hidden.clone()), &values(state.hidden)) <= 1e-5);
        if let (Some(a), Some(b)) = (&last.memory, state.memory) {
            assert!(worst_error(&values(a.clone()), &values(b)) <= 1e-5);
        }
    }
    let ltc = LTCConfig::new(INPUTS, Units::from(AutoNCP::new(8, 2).unwrap()))
        .with_mixed_memory(true)
        .init::<B>(&device)
        .unwrap();
    compare(ltc, &device);
    let cfc = CfCConfig::new(INPUTS, Units::from(6))
        .with_mixed_memory(true)
        .with_proj_size(Some(2))
        .init::<B>(&device)
        .unwrap();
    compare(cfc, &device);
}
