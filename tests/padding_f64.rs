//! Variable-length sequences in float64: a padded batch equals running
//! each sample alone at its own length (outputs, final states, every
//! gradient) within 1e-6, for LTC and CfC (every mode, mixed memory),
//! reading forward and backward. The tensor-op paths: the fused kernels
//! are float32.
//!
//! A test binary of its own: Burn 0.21 fixes one default float type per
//! device for the whole process, chosen by the first backend that creates
//! a tensor there, and `NdArray<f32>` and `NdArray<f64>` share the CPU
//! device (docs/troubleshooting.md).

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use ncps::cells::{CfCCellOptions, CfCMode, LTCCellOptions};
use ncps::rnn::{CfCConfig, LTCConfig, Units};
use ncps::wirings::AutoNCP;
use proptest::prelude::*;

use common::padded::{INPUTS, check, lengths};

type B64 = Autodiff<NdArray<f64>>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

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
        let device = Default::default();
        B64::seed(&device, seed);
        if ltc {
            let model = LTCConfig::new(INPUTS, Units::from(AutoNCP::new(8, 2).unwrap()))
                .with_mixed_memory(mixed)
                .with_go_backwards(backwards)
                .with_return_sequences(sequences)
                .with_cell(LTCCellOptions::new().with_ode_unfolds(3))
                .init::<B64>(&device)
                .unwrap();
            check(&model, &lengths, steps, seed, 1e-6)?;
        } else {
            let model = CfCConfig::new(INPUTS, Units::from(6))
                .with_cell(CfCCellOptions::new().with_mode(mode).with_backbone_units(10))
                .with_mixed_memory(mixed)
                .with_go_backwards(backwards)
                .with_return_sequences(sequences)
                .init::<B64>(&device)
                .unwrap();
            check(&model, &lengths, steps, seed, 1e-6)?;
        }
    }
}
