//! The fused sparse LTC step against the dense reference path, on generated
//! wirings and settings: values within 1e-5 and every gradient within 1e-4
//! (absolute below 1, relative above). And the inference over whole
//! sequences (no autodiff) against the fused steps: the same bits.

mod common;

use burn::backend::NdArray;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{LTCCell, LTCCellOptions, Mapping};
use ncps::import::StateDict;
use ncps::rnn::{LTCConfig, Rnn, RnnState, Units};
use ncps::wirings::{AnyWiring, AutoNCP};
use proptest::prelude::*;

use common::{AD as B, values, wiring, worst_error};

struct Case {
    wiring: AnyWiring,
    inputs: usize,
    batch: usize,
    steps: usize,
    mapping: Mapping,
    implicit: bool,
    timed: bool,
    mixed: bool,
    unfolds: usize,
}

/// The case's model, its weights drawn from Burn's generator.
fn model(case: &Case, device: &Device<B>) -> Rnn<B, LTCCell<B>> {
    LTCConfig::new(case.inputs, Units::from(case.wiring.clone()))
        .with_cell(
            LTCCellOptions::new()
                .with_input_mapping(case.mapping)
                .with_output_mapping(case.mapping)
                .with_ode_unfolds(case.unfolds),
        )
        .with_implicit_param_constraints(case.implicit)
        .with_mixed_memory(case.mixed)
        .init(device)
        .unwrap()
}

fn check(case: Case) -> Result<(), TestCaseError> {
    assert!(ncps::cells::fused_available::<B>());
    let device = Default::default();
    B::seed(&device, case.batch as u64);
    let fused = model(&case, &device);
    let mut reference = fused.clone();
    reference.cell.fused = false;
    let input = Tensor::<B, 3>::random(
        [case.batch, case.steps, case.inputs],
        Distribution::Normal(0.0, 1.5),
        &device,
    );
    let timespans: Vec<f32> = (0..case.batch * case.steps)
        // Includes elapsed times of 0 (i = 0, 23, ..): no time passes.
        .map(|i| (i * 37 % 23) as f32 / 7.0)
        .collect();
    let timespans = Tensor::<B, 2>::from_data(
        TensorData::new(timespans, [case.batch, case.steps]),
        &device,
    );
    let run = |model: &Rnn<B, LTCCell<B>>| {
        let (output, state) = if case.timed {
            model.forward_timed(input.clone(), timespans.clone(), None)
        } else {
            model.forward(input.clone(), None)
        };
        let loss = output.clone().powf_scalar(2.0).sum() + state.hidden.clone().sum();
        let grads = StateDict::gradients(model, &loss.backward());
        (values(output), values(state.hidden), grads)
    };
    let (out_f, hx_f, grads_f) = run(&fused);
    let (out_r, hx_r, grads_r) = run(&reference);
    prop_assert!(worst_error(&out_f, &out_r) <= 1e-5, "output differs");
    prop_assert!(worst_error(&hx_f, &hx_r) <= 1e-5, "state differs");
    let names: Vec<&str> = grads_r.names().collect();
    prop_assert_eq!(grads_f.names().collect::<Vec<_>>(), names.clone());
    for name in names {
        let err = worst_error(
            &grads_f.values(name).unwrap(),
            &grads_r.values(name).unwrap(),
        );
        prop_assert!(err <= 1e-4, "gradient of {} differs by {:.2e}", name, err);
    }
    Ok(())
}

prop_compose! {
    /// A generated wiring ([`common::wiring`]: any kind, 3-23 units, 1-3
    /// motor neurons) and its number of inputs.
    fn wiring_and_inputs()(
        kind in 0u8..4,
        units in 3usize..24,
        output in 1usize..4,
        sparsity in 0.0f64..0.9,
        seed in 0u64..1000,
        inputs in 1usize..5,
    ) -> (AnyWiring, usize) {
        (wiring(kind, units, output, sparsity, seed), inputs)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fused_step_matches_the_reference_path(
        (wiring, inputs) in wiring_and_inputs(),
        batch in prop_oneof![Just(1usize), 2usize..8, 16usize..20, Just(64)],
        steps in 1usize..5,
        mapping in prop_oneof![Just(Mapping::Affine), Just(Mapping::Linear), Just(Mapping::Identity)],
        implicit in any::<bool>(),
        timed in any::<bool>(),
        mixed in prop::bool::weighted(0.25),
        unfolds in 1usize..8,
    ) {
        check(Case {
            wiring,
            inputs,
            batch,
            steps,
            mapping,
            implicit,
            timed,
            mixed,
            unfolds,
        })?;
    }
}

/// A batch (padded when `padded`) from an initial state, through the
/// sequence op (the plain backend) and through the fused steps (under
/// autodiff, which keeps the steps): outputs and final states equal bit for
/// bit.
fn sequence_matches_the_steps(case: Case, padded: bool) -> Result<(), TestCaseError> {
    let device = Default::default();
    let _turn = common::rng_turn();
    let (batch, steps) = (case.batch, case.steps);
    B::seed(&device, (batch * 31 + steps) as u64);
    let stepped = model(&case, &device);
    let sequence = stepped.valid();
    let input = Tensor::<B, 3>::random(
        [batch, steps, case.inputs],
        Distribution::Normal(0.0, 1.5),
        &device,
    );
    let elapsed: Vec<f32> = (0..batch * steps)
        .map(|i| (i * 37 % 23) as f32 / 7.0)
        .collect();
    let elapsed = case
        .timed
        .then(|| Tensor::<B, 2>::from_data(TensorData::new(elapsed, [batch, steps]), &device));
    let lengths: Vec<i64> = (0..batch)
        .map(|b| {
            if padded {
                (1 + (b * 7) % steps) as i64
            } else {
                steps as i64
            }
        })
        .collect();
    let lengths = Tensor::<B, 1, Int>::from_data(TensorData::new(lengths, [batch]), &device);
    let units = stepped.state_size();
    let random = || Tensor::<B, 2>::random([batch, units], Distribution::Normal(0.0, 0.5), &device);
    let initial = match case.mixed {
        true => RnnState::with_memory(random(), random()),
        false => RnnState::new(random()),
    };
    let plain = RnnState {
        hidden: initial.hidden.clone().inner(),
        memory: initial.memory.clone().map(|m| m.inner()),
    };
    let (out_seq, state_seq) = sequence.forward_padded(
        input.clone().inner(),
        lengths.clone().inner(),
        elapsed.clone().map(|e| e.inner()),
        Some(plain),
    );
    let (out_steps, state_steps) = stepped.forward_padded(input, lengths, elapsed, Some(initial));
    prop_assert_eq!(values(out_seq), values(out_steps), "outputs differ");
    prop_assert_eq!(
        values(state_seq.hidden),
        values(state_steps.hidden),
        "final states differ"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sequence_inference_is_the_fused_steps_bit_for_bit(
        (wiring, inputs) in wiring_and_inputs(),
        batch in prop_oneof![Just(1usize), 2usize..8, 8usize..24, 30usize..40, Just(64)],
        steps in 1usize..10,
        mapping in prop_oneof![Just(Mapping::Affine), Just(Mapping::Linear), Just(Mapping::Identity)],
        implicit in any::<bool>(),
        timed in any::<bool>(),
        padded in any::<bool>(),
        mixed in prop::bool::weighted(0.2),
        unfolds in 1usize..8,
    ) {
        let case = Case { wiring, inputs, batch, steps, mapping, implicit, timed, mixed, unfolds };
        sequence_matches_the_steps(case, padded)?;
    }
}

#[test]
fn inference_without_autodiff_takes_the_fused_path_and_agrees() {
    type Plain = NdArray<f32>;
    let device = Default::default();
    let model = LTCConfig::new(3, Units::from(AutoNCP::new(12, 2).unwrap()))
        .init::<Plain>(&device)
        .unwrap();
    let mut reference = model.clone();
    reference.cell.fused = false;
    let input = Tensor::<Plain, 3>::random([20, 6, 3], Distribution::Normal(0.0, 1.0), &device);
    let (a, _) = model.forward(input.clone(), None);
    let (b, _) = reference.forward(input, None);
    let (a, b): (Vec<f32>, Vec<f32>) = (
        a.into_data().to_vec().unwrap(),
        b.into_data().to_vec().unwrap(),
    );
    assert!(worst_error(&a, &b) <= 1e-5);
}
