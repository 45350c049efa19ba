//! Properties of every model over random valid configurations, and long
//! rollouts under extreme elapsed times and inputs.
//!
//! Each generated LTC or CfC (wiring, sizes, modes, mappings, mixed
//! memory, projection, layout, timespans with zeros) builds, runs forward
//! and backward, and gives finite outputs, states and gradients of the
//! documented shapes. With the wiring properties of tests/suite/wirings.rs
//! (6000 cases) and the fused-kernel cases of tests/fused_ltc.rs, the
//! suite generates over 10,000 cases per `cargo test`.

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{Activation, CfCCellOptions, CfCMode, LTCCellOptions, Mapping, RecurrentCell};
use ncps::import::{StateDict, UpstreamParams};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, RnnState, Units};
use proptest::prelude::*;

use crate::common::{AD, B, device, values, wiring};

/// How a generated model is run.
#[derive(Clone, Copy, Debug)]
struct Run {
    inputs: usize,
    batch: usize,
    steps: usize,
    batch_first: bool,
    return_sequences: bool,
    timed: bool,
    with_state: bool,
}

fn run_strategy() -> impl Strategy<Value = Run> {
    (
        1usize..5,
        1usize..4,
        1usize..5,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(inputs, batch, steps, batch_first, return_sequences, timed, with_state)| Run {
                inputs,
                batch,
                steps,
                batch_first,
                return_sequences,
                timed,
                with_state,
            },
        )
}

/// Runs `model` forward and backward as `run` says and checks the shapes
/// and finiteness of everything that comes out.
fn check<C>(model: &Rnn<AD, C>, run: Run) -> Result<(), TestCaseError>
where
    C: RecurrentCell<AD>,
    Rnn<AD, C>: UpstreamParams<AD> + Clone,
{
    let Run {
        batch,
        steps,
        inputs,
        ..
    } = run;
    let device = device();
    let layout = |b: usize, t: usize| if run.batch_first { [b, t] } else { [t, b] };
    let [first, second] = layout(batch, steps);
    let input = Tensor::<AD, 3>::random(
        [first, second, inputs],
        Distribution::Normal(0.0, 2.0),
        &device,
    );
    let state = run.with_state.then(|| {
        let hidden = Tensor::random(
            [batch, model.state_size()],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        match model.has_memory() {
            true => RnnState::with_memory(hidden.clone(), hidden.tanh()),
            false => RnnState::new(hidden),
        }
    });
    let (output, state) = if run.timed {
        // Elapsed times from 0 (no time passes) to 3.
        let times: Vec<f32> = (0..batch * steps).map(|i| (i % 4) as f32).collect();
        let timespans =
            Tensor::<AD, 2>::from_data(TensorData::new(times, [first, second]), &device);
        model.forward_timed(input, timespans, state)
    } else {
        model.forward(input, state)
    };
    let kept = if run.return_sequences { steps } else { 1 };
    let [o1, o2] = layout(batch, kept);
    prop_assert_eq!(output.dims(), [o1, o2, model.output_size()]);
    prop_assert_eq!(state.hidden.dims(), [batch, model.state_size()]);
    prop_assert_eq!(state.memory.is_some(), model.has_memory());
    let out = values(output.clone());
    prop_assert!(out.iter().all(|v| v.is_finite()), "output {:?}", out);
    prop_assert!(values(state.hidden.clone()).iter().all(|v| v.is_finite()));

    let loss = output.powf_scalar(2.0).mean() + state.hidden.sum();
    let grads = StateDict::gradients(model, &loss.backward());
    for name in grads.names() {
        let g = grads.values(name).unwrap();
        prop_assert!(
            g.iter().all(|v| v.is_finite()),
            "gradient of {} {:?}",
            name,
            g
        );
    }
    Ok(())
}

fn mapping() -> impl Strategy<Value = Mapping> {
    prop_oneof![
        Just(Mapping::Affine),
        Just(Mapping::Linear),
        Just(Mapping::Identity)
    ]
}

fn mode() -> impl Strategy<Value = CfCMode> {
    prop_oneof![
        Just(CfCMode::Default),
        Just(CfCMode::Pure),
        Just(CfCMode::NoGate)
    ]
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::LecunTanh),
        Just(Activation::Silu),
        Just(Activation::Relu),
        Just(Activation::Tanh),
        Just(Activation::Gelu)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_valid_ltc_runs_forward_and_backward_finitely(
        (kind, units, output, sparsity, seed) in (0u8..4, 1usize..10, 1usize..4, 0.0f64..0.9, 0u64..1000),
        (input_mapping, output_mapping) in (mapping(), mapping()),
        unfolds in 1usize..4,
        implicit in any::<bool>(),
        fused in any::<bool>(),
        mixed in any::<bool>(),
        run in run_strategy(),
    ) {
        let model = LTCConfig::new(run.inputs, Units::from(wiring(kind, units, output, sparsity, seed)))
            .with_cell(LTCCellOptions::new().with_input_mapping(input_mapping).with_output_mapping(output_mapping).with_ode_unfolds(unfolds).with_fused(fused))
            .with_implicit_param_constraints(implicit)
            .with_mixed_memory(mixed)
            .with_batch_first(run.batch_first)
            .with_return_sequences(run.return_sequences)
            .init::<AD>(&device())
            .unwrap();
        check(&model, run)?;
    }

    #[test]
    fn any_valid_cfc_runs_forward_and_backward_finitely(
        wired in prop::option::weighted(0.3, (0u8..4, 1usize..10, 1usize..4, 0.0f64..0.9, 0u64..1000)),
        units in 1usize..10,
        mode in mode(),
        activation in activation(),
        backbone in prop::option::of((0usize..3, 1usize..9, prop_oneof![Just(0.0), Just(0.25)])),
        proj in prop::option::of(1usize..5),
        mixed in any::<bool>(),
        run in run_strategy(),
    ) {
        let mut cell = CfCCellOptions::new().with_mode(mode);
        let units = match wired {
            Some((kind, units, output, sparsity, seed)) => {
                Units::from(wiring(kind, units, output, sparsity, seed))
            }
            None => {
                cell = cell.with_activation(activation);
                if let Some((layers, width, dropout)) = backbone {
                    cell = cell
                        .with_backbone_layers(layers)
                        .with_backbone_units(width)
                        .with_backbone_dropout(dropout);
                }
                Units::from(units)
            }
        };
        let config = CfCConfig::new(run.inputs, units)
            .with_cell(cell)
            .with_proj_size(proj)
            .with_mixed_memory(mixed)
            .with_batch_first(run.batch_first)
            .with_return_sequences(run.return_sequences);
        let model = config.init::<AD>(&device()).unwrap();
        check(&model, run)?;
    }
}

// ------------------------------------------------------------ rollouts

/// 10,000 steps of batch 4 with elapsed times spread log-uniformly over
/// 1e-3 to 1e3 and inputs of magnitude up to 1e4: every output finite.
fn rollout<C: RecurrentCell<B>>(model: &Rnn<B, C>, inputs: usize) {
    const STEPS: usize = 10_000;
    let device = device();
    let mut policy = model.stateful();
    // A fixed pseudo-random sequence (no RNG dependency for the data).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for step in 0..STEPS {
        let x: Vec<f32> = (0..4 * inputs)
            .map(|_| ((next() * 2.0 - 1.0) * 1e4) as f32)
            .collect();
        let elapsed: Vec<f32> = (0..4)
            .map(|_| 10f64.powf(next() * 6.0 - 3.0) as f32)
            .collect();
        let output = policy.step_elapsed(
            Tensor::from_data(TensorData::new(x, [4, inputs]), &device),
            Tensor::from_data(TensorData::new(elapsed, [4]), &device),
        );
        let out = values(output);
        assert!(
            out.iter().all(|v| v.is_finite()),
            "step {step}: output {out:?}"
        );
    }
    let state = policy.state().unwrap();
    assert!(values(state.hidden.clone()).iter().all(|v| v.is_finite()));
}

#[test]
fn ltc_rollouts_of_10000_steps_stay_finite() {
    for fused in [true, false] {
        let model = LTCConfig::new(3, Units::from(ncps::wirings::AutoNCP::new(12, 2).unwrap()))
            .with_cell(LTCCellOptions::new().with_fused(fused))
            .with_mixed_memory(true)
            .init::<B>(&device())
            .unwrap();
        rollout(&model, 3);
    }
}

#[test]
fn cfc_rollouts_of_10000_steps_stay_finite() {
    for mode in [CfCMode::Default, CfCMode::Pure, CfCMode::NoGate] {
        let dense = CfCConfig::new(3, Units::from(16))
            .with_cell(CfCCellOptions::new().with_mode(mode))
            .with_mixed_memory(true)
            .init::<B>(&device())
            .unwrap();
        rollout(&dense, 3);
    }
    let wired = CfCConfig::new(3, Units::from(ncps::wirings::AutoNCP::new(12, 2).unwrap()))
        .init::<B>(&device())
        .unwrap();
    rollout(&wired, 3);
}
