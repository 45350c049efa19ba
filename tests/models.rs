//! LTC and CfC behaviour beyond the fixtures: entry points that must agree,
//! errors, records, training.

mod common;

use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::Distribution;
use ncps::ConfigError;
use ncps::cells::{
    Activation, AnyCfCCell, CfCCellConfig, CfCCellOptions, CfCMode, DropoutMasks, HeadActivation,
    LTCCellConfig, LTCCellOptions, RecurrentCell, WiredCfCCellConfig,
};
use ncps::import::{ImportError, LoadStateDict, StateDict};
use ncps::rnn::{CfC, CfCConfig, LTC, LTCConfig, RnnState, Units};
use ncps::wirings::{AutoNCP, FullyConnected, NCP, SynapseMatrix, Wiring, WiringError};

use common::{AD, B, assert_tensors_close, device, small_ncp_args};

/// Two computations of the same numbers agree to float32 rounding.
#[track_caller]
fn close(a: Tensor<B, 2>, b: Tensor<B, 2>) {
    assert_tensors_close(a, b, 1e-6, "tensor");
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<B, D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &device())
}

fn ltc_mixed() -> LTC<B> {
    LTCConfig::new(3, Units::from(NCP::new(small_ncp_args()).unwrap()))
        .with_mixed_memory(true)
        .init(&device())
        .unwrap()
}

fn cfc_mixed_proj() -> CfC<B> {
    CfCConfig::new(3, Units::from(8))
        .with_mixed_memory(true)
        .with_proj_size(Some(2))
        .with_cell(CfCCellOptions::new().with_backbone_units(16))
        .init(&device())
        .unwrap()
}

// ------------------------------------------------ entry points agree

fn step_by_step_equals_sequence<C: RecurrentCell<B>>(model: &ncps::rnn::Rnn<B, C>) {
    let (batch, steps) = (2, 5);
    let input = random([batch, steps, 3]);
    let timespans = random([batch, steps]).abs() + 0.1;
    let (outputs, final_state) = model.forward_timed(input.clone(), timespans.clone(), None);

    let mut state: Option<RnnState<B, 2>> = None;
    let mut policy = model.stateful();
    for t in 0..steps {
        let x = input.clone().slice([0..batch, t..t + 1]).squeeze_dim(1);
        let elapsed = timespans.clone().slice([0..batch, t..t + 1]).squeeze_dim(1);
        let (out, next) = model.step(x.clone(), state, Some(elapsed.clone()));
        let expected = outputs.clone().slice([0..batch, t..t + 1]).squeeze_dim(1);
        close(out, expected.clone());
        close(policy.step_elapsed(x, elapsed), expected);
        state = Some(next);
    }
    let state = state.unwrap();
    close(state.hidden.clone(), final_state.hidden.clone());
    close(policy.state().unwrap().hidden.clone(), final_state.hidden);
    assert_eq!(state.memory.is_some(), model.has_memory());
    if let (Some(a), Some(b)) = (state.memory, final_state.memory) {
        close(a, b);
    }
}

#[test]
fn stepping_one_observation_at_a_time_equals_the_sequence_forward() {
    step_by_step_equals_sequence(&ltc_mixed());
    step_by_step_equals_sequence(&cfc_mixed_proj());
    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(10, 2).unwrap()))
        .init::<B>(&device())
        .unwrap();
    step_by_step_equals_sequence(&wired);
    // A dense CfC's stateful steps are fused steps on this backend: every
    // mode, heads and backbone shape.
    let heads = [HeadActivation::Tanh, HeadActivation::LecunTanh];
    for (mode, layers, head) in [
        (CfCMode::Default, 2, heads[1]),
        (CfCMode::NoGate, 1, heads[0]),
        (CfCMode::Pure, 1, heads[0]),
        (CfCMode::Default, 0, heads[0]),
    ] {
        let options = CfCCellOptions::new()
            .with_mode(mode)
            .with_backbone_layers(layers)
            .with_backbone_units(12)
            .with_activation(Activation::Silu)
            .with_head_activation(head);
        let model = CfCConfig::new(3, Units::from(6))
            .with_cell(options)
            .init::<B>(&device())
            .unwrap();
        step_by_step_equals_sequence(&model);
    }
}

/// A control loop's owner: the model and its stepping state in one struct,
/// no lifetime.
struct Controller<C: RecurrentCell<B> + 'static> {
    policy: ncps::rnn::Stateful<'static, B, C>,
}

impl<C: RecurrentCell<B> + 'static> Controller<C> {
    fn act(&mut self, observation: Tensor<B, 2>, elapsed: Tensor<B, 1>) -> Tensor<B, 2> {
        self.policy.step_elapsed(observation, elapsed)
    }
}

fn controller_equals_sequence<C: RecurrentCell<B> + 'static>(model: ncps::rnn::Rnn<B, C>) {
    let steps = 1000;
    let input = random([1, steps, 3]);
    let timespans = random([1, steps]).abs() + 0.05;
    let (outputs, last) = model.forward_timed(input.clone(), timespans.clone(), None);
    let mut controller = Controller {
        policy: model.into_stateful(),
    };
    for t in 0..steps {
        let x = input.clone().slice([0..1, t..t + 1]).squeeze_dim(1);
        let elapsed = timespans.clone().slice([0..1, t..t + 1]).reshape([1]);
        let action = controller.act(x, elapsed);
        let expected = outputs.clone().slice([0..1, t..t + 1]).squeeze_dim(1);
        assert_tensors_close(action, expected, 1e-5, &format!("step {t}"));
    }
    let state = controller.policy.state().unwrap().hidden.clone();
    assert_tensors_close(state, last.hidden, 1e-5, "final state");
}

#[test]
fn a_controller_owning_its_model_steps_1000_times_as_the_sequence_forward() {
    controller_equals_sequence(ltc_mixed());
    controller_equals_sequence(cfc_mixed_proj());
}

#[test]
fn forward_last_is_the_last_step_as_a_matrix() {
    let input = random([4, 6, 3]);
    let timespans = random([4, 6]).abs() + 0.1;
    let check = |every: Tensor<B, 3>, last: Tensor<B, 2>, out: usize| {
        let expected = every.slice([0..4, 5..6]).reshape([4, out]);
        close(last, expected);
    };
    let cfc = cfc_mixed_proj();
    let (every, state) = cfc.forward_timed(input.clone(), timespans.clone(), None);
    let (last, last_state) = cfc.forward_last(input.clone(), Some(timespans.clone()), None, None);
    assert_eq!(last.dims(), [4, 2]);
    check(every, last, 2);
    close(state.hidden, last_state.hidden);
    let ltc = ltc_mixed();
    let (every, _) = ltc.forward(input.clone(), None);
    let (last, _) = ltc.forward_last(input.clone(), None, None, None);
    check(every, last, ltc.output_size());
    // Time-major input, and a model built with return_sequences = false.
    let time_major = CfCConfig::new(3, Units::from(8))
        .with_batch_first(false)
        .with_return_sequences(false)
        .init::<B>(&device())
        .unwrap();
    let (one, _) = time_major.forward(input.clone().swap_dims(0, 1), None);
    assert_eq!(one.dims(), [1, 4, 8]);
    let (last, _) = time_major.forward_last(
        input.swap_dims(0, 1),
        Some(Tensor::ones([6, 4], &device())),
        None,
        None,
    );
    close(last, one.reshape([4, 8]));
}

#[test]
fn stateful_wrapper_resets_and_defaults_to_unit_time() {
    let model = ltc_mixed();
    let input = random([1, 4, 3]);
    let (outputs, _) = model.forward(input.clone(), None);
    let mut policy = model.stateful();
    for _ in 0..2 {
        for t in 0..4 {
            let out = policy.step(input.clone().slice([0..1, t..t + 1]).squeeze_dim(1));
            close(out, outputs.clone().slice([0..1, t..t + 1]).squeeze_dim(1));
        }
        policy.reset();
        assert!(policy.state().is_none());
    }
}

#[test]
fn time_major_input_equals_transposed_batch_first_input() {
    let input = random([2, 6, 3]);
    let batch_first = CfCConfig::new(3, Units::from(5))
        .init::<B>(&device())
        .unwrap();
    let time_major = CfCConfig::new(3, Units::from(5))
        .with_batch_first(false)
        .init::<B>(&device())
        .unwrap();
    let time_major = time_major.load_record(batch_first.clone().into_record());
    let (a, sa) = batch_first.forward(input.clone(), None);
    let (b, sb) = time_major.forward(input.swap_dims(0, 1), None);
    assert_eq!(b.dims(), [6, 2, 5]);
    close(a.swap_dims(0, 1).reshape([12, 5]), b.reshape([12, 5]));
    close(sa.hidden, sb.hidden);
}

#[test]
fn timespans_follow_the_input_layout() {
    let input = random([2, 6, 3]);
    let timespans = random([2, 6]).abs() + 0.1;
    let batch_first = LTCConfig::new(3, Units::from(4))
        .init::<B>(&device())
        .unwrap();
    let time_major = LTCConfig::new(3, Units::from(4))
        .with_batch_first(false)
        .init::<B>(&device())
        .unwrap()
        .load_record(batch_first.clone().into_record());
    let (a, sa) = batch_first.forward_timed(input.clone(), timespans.clone(), None);
    let (b, sb) = time_major.forward_timed(
        input.clone().swap_dims(0, 1),
        timespans.clone().swap_dims(0, 1),
        None,
    );
    close(
        a.clone().swap_dims(0, 1).reshape([12, 4]),
        b.reshape([12, 4]),
    );
    close(sa.hidden.clone(), sb.hidden);
    // A trailing axis of 1 is the same timespans.
    let (c, sc) = batch_first.forward_timed(input, timespans.unsqueeze_dim::<3>(2), None);
    close(a.reshape([12, 4]), c.reshape([12, 4]));
    close(sa.hidden, sc.hidden);
}

#[test]
#[should_panic(expected = "timespans has shape [2, 6], but [time, batch] = [6, 2]")]
fn time_major_timespans_in_batch_first_layout_panic_with_a_clear_message() {
    let model = CfCConfig::new(3, Units::from(4))
        .with_batch_first(false)
        .init::<B>(&device())
        .unwrap();
    model.forward_timed(random([6, 2, 3]), random([2, 6]), None);
}

#[test]
#[should_panic(expected = "timespans has shape [2, 5, 2], but [batch, time] = [2, 5]")]
fn timespans_with_a_trailing_axis_other_than_one_panic_with_a_clear_message() {
    ltc_mixed().forward_timed(random([2, 5, 3]), random([2, 5, 2]), None);
}

#[test]
fn pure_cfc_time_parameters_start_xavier_uniform_as_upstream_torch() {
    let hidden = 64;
    let cell = CfCCellConfig::new(3, hidden)
        .with_options(CfCCellOptions::new().with_mode(CfCMode::Pure))
        .init::<B>(&device())
        .unwrap();
    let bound = (6.0 / (hidden as f32 + 1.0)).sqrt();
    for (name, p) in [("w_tau", cell.w_tau.unwrap()), ("a", cell.a.unwrap())] {
        assert_eq!(p.dims(), [1, hidden], "{name}");
        let values: Vec<f32> = p.val().into_data().to_vec().unwrap();
        assert!(
            values.iter().all(|v| v.abs() <= bound),
            "{name} outside ±{bound}"
        );
        // Uniform on ±bound: standard deviation bound/√3, not a constant.
        let mean = values.iter().sum::<f32>() / hidden as f32;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / hidden as f32).sqrt();
        let expected = bound / 3f32.sqrt();
        assert!(
            (std - expected).abs() < 0.3 * expected,
            "{name}: standard deviation {std}, Xavier-uniform gives {expected}"
        );
    }
}

#[test]
fn last_step_only_is_the_last_step_of_the_sequence() {
    let input = random([3, 4, 3]);
    let all = LTCConfig::new(3, Units::from(6))
        .init::<B>(&device())
        .unwrap();
    let last = LTCConfig::new(3, Units::from(6))
        .with_return_sequences(false)
        .init::<B>(&device())
        .unwrap()
        .load_record(all.clone().into_record());
    let (every, _) = all.forward(input.clone(), None);
    let (only, _) = last.forward(input, None);
    assert_eq!(only.dims(), [3, 1, 6]);
    close(
        only.squeeze_dim(1),
        every.slice([0..3, 3..4]).squeeze_dim(1),
    );
}

#[test]
fn unbatched_input_equals_a_batch_of_one() {
    let model = cfc_mixed_proj();
    let input = random([7, 3]);
    let timespans = random([7]).abs() + 0.5;
    let (a, sa) = model.forward_unbatched(input.clone(), Some(timespans.clone()), None);
    let (b, sb) = model.forward_timed(
        input.unsqueeze_dim(0),
        timespans.unsqueeze_dim::<2>(0),
        None,
    );
    assert_eq!(a.dims(), [7, 2]);
    assert_eq!(sa.hidden.dims(), [8]);
    close(a, b.squeeze_dim(0));
    close(sa.hidden.unsqueeze_dim(0), sb.hidden);
    close(sa.memory.unwrap().unsqueeze_dim(0), sb.memory.unwrap());
}

#[test]
fn per_sample_timespans_are_per_sample() {
    // Upstream broadcasts a (B,) slice wrongly for B > 1: each sample must get its own time.
    let model = LTCConfig::new(3, Units::from(4))
        .init::<B>(&device())
        .unwrap();
    let input = random([2, 3, 3]);
    let timespans = Tensor::<B, 2>::from_floats([[0.5, 1.0, 2.0], [3.0, 0.1, 0.7]], &device());
    let (both, _) = model.forward_timed(input.clone(), timespans.clone(), None);
    for sample in 0..2 {
        let (alone, _) = model.forward_timed(
            input.clone().narrow(0, sample, 1),
            timespans.clone().narrow(0, sample, 1),
            None,
        );
        close(
            alone.reshape([3, 4]),
            both.clone().narrow(0, sample, 1).reshape([3, 4]),
        );
    }
}

#[test]
fn initial_state_is_used() {
    let model = cfc_mixed_proj();
    let input = random([2, 3, 3]);
    let zero = RnnState::with_memory(
        Tensor::zeros([2, 8], &device()),
        Tensor::zeros([2, 8], &device()),
    );
    let (a, _) = model.forward(input.clone(), None);
    let (b, _) = model.forward(input.clone(), Some(zero));
    close(a.clone().reshape([6, 2]), b.reshape([6, 2]));
    let other = RnnState::with_memory(random([2, 8]), random([2, 8]));
    let (c, _) = model.forward(input, Some(other));
    let diff: f32 = (a - c).abs().sum().into_scalar();
    assert!(diff > 1e-4, "the initial state changed nothing");
}

#[test]
fn the_cell_options_are_one_value_for_the_bare_cell_and_the_sequence_model() {
    let options = CfCCellOptions::new()
        .with_mode(CfCMode::NoGate)
        .with_activation(Activation::Relu)
        .with_backbone_units(6)
        .with_backbone_layers(2)
        .with_backbone_dropout(0.25);
    let sequence = CfCConfig::new(3, Units::from(5))
        .with_cell(options.clone())
        .init::<B>(&device())
        .unwrap();
    let bare = CfCCellConfig::new(3, 5)
        .with_options(options)
        .init::<B>(&device())
        .unwrap();
    let AnyCfCCell::Dense(cell) = &sequence.cell else {
        panic!("a count of units builds a dense CfC");
    };
    for cell in [cell, &bare] {
        assert_eq!(
            (cell.mode, cell.activation),
            (CfCMode::NoGate, Activation::Relu)
        );
        assert_eq!(cell.backbone.len(), 2);
        assert_eq!(cell.backbone[1].weight.dims(), [6, 6]);
        assert_eq!(cell.dropout.prob, 0.25);
    }
    // The LTC's options reach its cell; only the constraints' default
    // differs between the two levels, as upstream's LTC and LTCCell.
    let mut wiring = AutoNCP::new(8, 2).unwrap();
    wiring.build(3).unwrap();
    let options = LTCCellOptions::new().with_ode_unfolds(2).with_epsilon(1e-3);
    let sequence = LTCConfig::new(3, Units::from(wiring.clone()))
        .with_cell(options.clone())
        .init::<B>(&device())
        .unwrap();
    let bare = LTCCellConfig::new(wiring.into())
        .with_options(options)
        .init::<B>(&device())
        .unwrap();
    assert_eq!((sequence.cell.ode_unfolds, bare.ode_unfolds), (2, 2));
    assert_eq!((sequence.cell.epsilon, bare.epsilon), (1e-3, 1e-3));
    assert!(sequence.cell.implicit_param_constraints);
    assert!(!bare.implicit_param_constraints);
}

// ------------------------------------------------ errors

/// The variant and the argument of an error that names one.
fn named_argument(err: &ConfigError) -> Option<(&'static str, &'static str)> {
    match *err {
        ConfigError::InvalidArgument { argument, .. } => Some(("InvalidArgument", argument)),
        ConfigError::BackboneWithWiring { argument } => Some(("BackboneWithWiring", argument)),
        _ => None,
    }
}

#[test]
fn config_errors_name_the_argument() {
    let wired = || Units::from(AutoNCP::new(12, 2).unwrap());
    let cfc = |config: CfCConfig| config.init::<B>(&device()).map(drop);
    let ltc = |config: LTCConfig| config.init::<B>(&device()).map(drop);
    let cell = |config: CfCCellConfig| config.init::<B>(&device()).map(drop);
    // A CfC cell's mask is (input + hidden) x hidden, and only without a backbone.
    let (mask, misshapen_mask) = (SynapseMatrix::zeros(11, 8), SynapseMatrix::zeros(10, 8));
    const BACKBONE: &str = "BackboneWithWiring";
    const INVALID: &str = "InvalidArgument";
    let table = [
        (
            "wired CfC with backbone_units",
            cfc(CfCConfig::new(3, wired()).with_cell(CfCCellOptions::new().with_backbone_units(8))),
            (BACKBONE, "backbone_units"),
        ),
        (
            "wired CfC with backbone_layers",
            cfc(CfCConfig::new(3, wired()).with_cell(CfCCellOptions::new().with_backbone_layers(2))),
            (BACKBONE, "backbone_layers"),
        ),
        (
            "wired CfC with backbone_dropout",
            cfc(CfCConfig::new(3, wired())
                .with_cell(CfCCellOptions::new().with_backbone_dropout(0.1))),
            (BACKBONE, "backbone_dropout"),
        ),
        (
            "wired CfC with dropout_masks",
            cfc(CfCConfig::new(3, wired())
                .with_cell(CfCCellOptions::new().with_dropout_masks(DropoutMasks::Stepwise))),
            (BACKBONE, "dropout_masks"),
        ),
        (
            "wired CfC with a backbone activation",
            cfc(CfCConfig::new(3, wired())
                .with_cell(CfCCellOptions::new().with_activation(Activation::Silu))),
            (BACKBONE, "activation"),
        ),
        (
            "CfC with input_size 0",
            cfc(CfCConfig::new(0, Units::from(8))),
            (INVALID, "input_size"),
        ),
        (
            "LTC with input_size 0",
            ltc(LTCConfig::new(0, Units::from(8))),
            (INVALID, "input_size"),
        ),
        (
            "CfC with proj_size 0",
            cfc(CfCConfig::new(3, Units::from(8)).with_proj_size(Some(0))),
            (INVALID, "proj_size"),
        ),
        (
            "CfC with 0 units",
            cfc(CfCConfig::new(3, Units::from(0))),
            (INVALID, "units"),
        ),
        (
            "CfC with backbone_dropout 1",
            cfc(CfCConfig::new(3, Units::from(8))
                .with_cell(CfCCellOptions::new().with_backbone_dropout(1.0))),
            (INVALID, "backbone_dropout"),
        ),
        (
            "CfC with backbone_units 0",
            cfc(CfCConfig::new(3, Units::from(8))
                .with_cell(CfCCellOptions::new().with_backbone_units(0))),
            (INVALID, "backbone_units"),
        ),
        (
            "LTC with ode_unfolds 0",
            ltc(LTCConfig::new(3, Units::from(8))
                .with_cell(LTCCellOptions::new().with_ode_unfolds(0))),
            (INVALID, "ode_unfolds"),
        ),
        (
            "LTC with epsilon -1",
            ltc(LTCConfig::new(3, Units::from(8))
                .with_cell(LTCCellOptions::new().with_epsilon(-1.0))),
            (INVALID, "epsilon"),
        ),
        (
            "CfC cell with a backbone and a mask",
            cell(CfCCellConfig::new(3, 8).with_sparsity_mask(Some(mask.clone()))),
            (INVALID, "sparsity_mask"),
        ),
        (
            "CfC cell (3 inputs, 8 units) with a 10x8 mask",
            cell(
                CfCCellConfig::new(3, 8)
                    .with_options(CfCCellOptions::new().with_backbone_layers(0))
                    .with_sparsity_mask(Some(misshapen_mask)),
            ),
            (INVALID, "sparsity_mask"),
        ),
    ];
    for (case, result, expected) in table {
        let err = result.expect_err(case);
        assert_eq!(named_argument(&err), Some(expected), "{case}: {err:?}");
    }
    // Without a backbone the 11x8 mask is the right one.
    assert!(
        cell(
            CfCCellConfig::new(3, 8)
                .with_options(CfCCellOptions::new().with_backbone_layers(0))
                .with_sparsity_mask(Some(mask))
        )
        .is_ok()
    );
}

#[test]
fn unbuilt_and_mismatched_wirings_are_errors() {
    let unbuilt = AutoNCP::new(12, 2).unwrap();
    let mut built = unbuilt.clone();
    built.build(5).unwrap();
    let not_built: fn(&ConfigError) -> bool = |err| matches!(err, ConfigError::WiringNotBuilt);
    let conflict: fn(&ConfigError) -> bool = |err| {
        matches!(
            err,
            ConfigError::Wiring(WiringError::InputDimConflict {
                built: 5,
                requested: 3,
            })
        )
    };
    let table = [
        (
            "LTC cell on an unbuilt wiring",
            LTCCellConfig::new(unbuilt.clone().into())
                .init::<B>(&device())
                .map(drop),
            not_built,
        ),
        (
            "wired CfC cell on an unbuilt wiring",
            WiredCfCCellConfig::new(unbuilt.into())
                .init::<B>(&device())
                .map(drop),
            not_built,
        ),
        (
            "LTC with 3 inputs on a wiring built for 5",
            LTCConfig::new(3, Units::from(built.clone()))
                .init::<B>(&device())
                .map(drop),
            conflict,
        ),
        (
            "CfC with 3 inputs on a wiring built for 5",
            CfCConfig::new(3, Units::from(built))
                .init::<B>(&device())
                .map(drop),
            conflict,
        ),
    ];
    for (case, result, expected) in table {
        let err = result.expect_err(case);
        assert!(expected(&err), "{case}: {err:?}");
    }
    // The message says what to do.
    let err = LTCCellConfig::new(AutoNCP::new(12, 2).unwrap().into())
        .init::<B>(&device())
        .unwrap_err();
    assert!(err.to_string().contains("build"), "{err}");
}

#[test]
#[should_panic(expected = "input has 4 features, but the model expects 3 (its input_size)")]
fn wrong_input_size_panics_with_a_clear_message() {
    ltc_mixed().forward(random([2, 5, 4]), None);
}

#[test]
#[should_panic(expected = "state.hidden has shape [2, 7], but [2, 9] was expected")]
fn wrong_state_shape_panics_with_a_clear_message() {
    let state = RnnState::with_memory(random([2, 7]), random([2, 9]));
    ltc_mixed().forward(random([2, 5, 3]), Some(state));
}

#[test]
#[should_panic(expected = "state.memory is missing: a mixed-memory model needs (hidden, memory)")]
fn missing_memory_panics_with_a_clear_message() {
    ltc_mixed().forward(random([2, 5, 3]), Some(RnnState::new(random([2, 9]))));
}

#[test]
#[should_panic(expected = "state.memory was given, but the model has no mixed memory")]
fn memory_without_mixed_memory_panics_with_a_clear_message() {
    let model = CfCConfig::new(3, Units::from(4))
        .init::<B>(&device())
        .unwrap();
    model.forward(
        random([2, 5, 3]),
        Some(RnnState::with_memory(random([2, 4]), random([2, 4]))),
    );
}

#[test]
#[should_panic(expected = "timespans has shape [5, 2], but [batch, time] = [2, 5]")]
fn wrong_timespans_shape_panics_with_a_clear_message() {
    ltc_mixed().forward_timed(random([2, 5, 3]), random([5, 2]), None);
}

#[test]
#[should_panic(expected = "elapsed has shape [3], but [2] was expected")]
fn wrong_elapsed_shape_panics_with_a_clear_message() {
    let cell = CfCCellConfig::new(3, 4).init::<B>(&device()).unwrap();
    cell.forward(random([2, 3]), random([2, 4]), random([3]));
}

#[test]
#[should_panic(expected = "state has shape [2, 5], but [2, 4] was expected")]
fn wrong_cell_state_panics_with_a_clear_message() {
    let cell = CfCCellConfig::new(3, 4).init::<B>(&device()).unwrap();
    cell.forward(random([2, 3]), random([2, 5]), random([2]));
}

// ------------------------------------------------ weights

#[test]
fn import_errors_name_the_tensor() {
    let model = ltc_mixed();
    let dict = StateDict::from_model(&model);

    let mut missing = dict.clone();
    missing.remove("rnn_cell.sensory_mu").unwrap();
    match ltc_mixed().load_state_dict(&missing).unwrap_err() {
        ImportError::Missing { name, expected } => {
            assert_eq!(name, "rnn_cell.sensory_mu");
            assert_eq!(expected, vec![3, 9]);
        }
        other => panic!("{other:?}"),
    }

    let mut extra = dict.clone();
    extra.insert("rnn_cell.bogus", vec![1], vec![0.0]);
    let err = ltc_mixed().load_state_dict(&extra).unwrap_err();
    assert!(
        matches!(&err, ImportError::Unexpected { names } if names == &["rnn_cell.bogus"]),
        "{err:?}"
    );

    let mut misshapen = dict.clone();
    misshapen.insert("lstm.input_map.weight", vec![36, 4], vec![0.0; 144]);
    let err = ltc_mixed().load_state_dict(&misshapen).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tensor lstm.input_map.weight has shape [36, 4], but the model expects [36, 3]"
    );

    let mut other_wiring = dict.clone();
    let (shape, mut mask) = other_wiring.remove("rnn_cell.sparsity_mask").unwrap();
    let flipped = mask.iter().position(|&m| m == 0.0).unwrap();
    mask[flipped] = 1.0;
    other_wiring.insert("rnn_cell.sparsity_mask", shape, mask);
    assert!(matches!(
        ltc_mixed().load_state_dict(&other_wiring),
        Err(ImportError::MaskMismatch { name }) if name == "rnn_cell.sparsity_mask"
    ));

    assert!(matches!(
        StateDict::read("/nonexistent/model.pt"),
        Err(ImportError::Read { .. })
    ));
    let garbage =
        std::env::temp_dir().join(format!("ncps-garbage-{}.safetensors", std::process::id()));
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let err = StateDict::read(&garbage).unwrap_err();
    assert!(
        err.to_string().contains(&garbage.display().to_string()),
        "{err}"
    );
    std::fs::remove_file(garbage).unwrap();
    assert!(StateDict::from_safetensors_bytes(vec![1, 2, 3]).is_err());

    // The untouched dict loads and reproduces the model.
    let loaded = ltc_mixed().load_state_dict(&dict).unwrap();
    let input = random([2, 4, 3]);
    close(
        model.forward(input.clone(), None).1.hidden,
        loaded.forward(input, None).1.hidden,
    );
}

#[test]
fn burn_records_round_trip() {
    let model = cfc_mixed_proj();
    let input = random([2, 4, 3]);
    let (expected, _) = model.forward(input.clone(), None);

    let bytes = BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(model.clone().into_record(), ())
        .unwrap();
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes, &device())
        .unwrap();
    let restored = cfc_mixed_proj().load_record(record);
    close(
        restored.forward(input.clone(), None).0.reshape([8, 2]),
        expected.clone().reshape([8, 2]),
    );

    let path = std::env::temp_dir().join(format!("ncps-ltc-record-{}", std::process::id()));
    let ltc = ltc_mixed();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    ltc.clone().save_file(&path, &recorder).unwrap();
    let restored = ltc_mixed().load_file(&path, &recorder, &device()).unwrap();
    let (a, _) = ltc.forward(input.clone(), None);
    let (b, _) = restored.forward(input, None);
    close(a.reshape([8, 2]), b.reshape([8, 2]));
    std::fs::remove_file(path.with_extension("mpk")).unwrap();
}

#[test]
fn configs_save_and_load_as_json() {
    let config = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .with_mixed_memory(true)
        .with_cell(LTCCellOptions::new().with_ode_unfolds(4));
    let json = serde_json::to_string(&config).unwrap();
    let loaded: LTCConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded.units, config.units);
    assert_eq!(loaded.cell.ode_unfolds, 4);
    let a = config.init::<B>(&device()).unwrap();
    let b = loaded.init::<B>(&device()).unwrap();
    assert_eq!(a.num_params(), b.num_params());
}

// ------------------------------------------------ training

fn sine_data<Bk: Backend>(device: &Bk::Device) -> (Tensor<Bk, 3>, Tensor<Bk, 3>) {
    let n = 24;
    let x: Vec<f32> = (0..n)
        .flat_map(|i| {
            let t = i as f32 / n as f32 * 3.0 * std::f32::consts::PI;
            [t.sin(), t.cos()]
        })
        .collect();
    let y: Vec<f32> = (0..n)
        .map(|i| (i as f32 / n as f32 * 6.0 * std::f32::consts::PI).sin())
        .collect();
    (
        Tensor::from_data(burn::tensor::TensorData::new(x, [1, n, 2]), device),
        Tensor::from_data(burn::tensor::TensorData::new(y, [1, n, 1]), device),
    )
}

fn train<M>(mut model: M, steps: usize, constrain: impl Fn(M) -> M) -> (f32, f32, M)
where
    M: burn::module::AutodiffModule<AD> + SequenceForward,
{
    let device = device();
    let (x, y) = sine_data::<AD>(&device);
    let mut optim = AdamConfig::new().init::<AD, M>();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let output = model.forward_seq(x.clone());
        let loss = (output - y.clone()).powf_scalar(2.0).mean();
        losses.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = constrain(optim.step(0.02, model, grads));
    }
    (losses[0], *losses.last().unwrap(), model)
}

/// The sequence forward of both models, for the generic training loop.
trait SequenceForward {
    fn forward_seq(&self, x: Tensor<AD, 3>) -> Tensor<AD, 3>;
}

impl SequenceForward for LTC<AD> {
    fn forward_seq(&self, x: Tensor<AD, 3>) -> Tensor<AD, 3> {
        self.forward(x, None).0
    }
}

impl SequenceForward for CfC<AD> {
    fn forward_seq(&self, x: Tensor<AD, 3>) -> Tensor<AD, 3> {
        self.forward(x, None).0
    }
}

#[test]
fn ltc_and_cfc_train_with_adam() {
    AD::seed(&device(), 7);
    let ltc = LTCConfig::new(2, Units::from(AutoNCP::new(8, 1).unwrap()))
        .init::<AD>(&device())
        .unwrap();
    let (first, last, _) = train(ltc, 40, |m| m);
    assert!(last < first * 0.7, "LTC loss went from {first} to {last}");

    let cfc = CfCConfig::new(2, Units::from(8))
        .with_proj_size(Some(1))
        .with_cell(CfCCellOptions::new().with_backbone_units(16))
        .init::<AD>(&device())
        .unwrap();
    let (first, last, _) = train(cfc, 40, |m| m);
    assert!(last < first * 0.5, "CfC loss went from {first} to {last}");

    let wired = CfCConfig::new(2, Units::from(AutoNCP::new(8, 1).unwrap()))
        .init::<AD>(&device())
        .unwrap();
    let (first, last, _) = train(wired, 40, |m| m);
    assert!(
        last < first * 0.7,
        "wired CfC loss went from {first} to {last}"
    );
}

#[test]
fn explicit_constraints_keep_positive_parameters_non_negative_while_training() {
    let ltc = LTCConfig::new(2, Units::from(FullyConnected::new(6, 1).unwrap()))
        .with_implicit_param_constraints(false)
        .init::<AD>(&device())
        .unwrap();
    let (first, last, model) = train(ltc, 30, LTC::apply_weight_constraints);
    assert!(last < first, "loss went from {first} to {last}");
    let min = |t: Tensor<AD, 1>| t.min().into_scalar();
    assert!(min(model.cell.w.val().flatten(0, 1)) >= 0.0);
    assert!(min(model.cell.sensory_w.val().flatten(0, 1)) >= 0.0);
    assert!(min(model.cell.cm.val()) >= 0.0);
    assert!(min(model.cell.gleak.val()) >= 0.0);
}

/// Every parameter's values, by its Burn parameter id.
fn parameter_values<M: Module<AD>>(model: &M) -> Vec<(String, Vec<f32>)> {
    struct Collect(Vec<(String, Vec<f32>)>);
    impl burn::module::ModuleVisitor<AD> for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
            let values = param.val().into_data().to_vec().unwrap();
            self.0.push((param.id.to_string(), values));
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    collect.0
}

#[test]
fn every_ltc_parameter_keeps_training_with_either_constraint_setting() {
    for implicit in [true, false] {
        AD::seed(&device(), 3);
        let ltc = LTCConfig::new(2, Units::from(FullyConnected::new(5, 1).unwrap()))
            .with_implicit_param_constraints(implicit)
            .init::<AD>(&device())
            .unwrap();
        // Two steps so that explicit constraints have been applied before
        // the steps compared below.
        let (_, _, before) = train(ltc, 2, LTC::apply_weight_constraints);
        let start = parameter_values(&before);
        let (_, _, after) = train(before, 3, LTC::apply_weight_constraints);
        let end = parameter_values(&after);
        assert_eq!(start.len(), end.len());
        for ((id, a), (id_after, b)) in start.iter().zip(&end) {
            assert_eq!(id, id_after, "a parameter changed its id");
            assert!(
                a != b,
                "implicit_param_constraints = {implicit}: parameter {id} stopped training"
            );
        }
    }
}

#[test]
fn apply_weight_constraints_clamps_only_without_implicit_constraints() {
    let negative = |cell: &mut ncps::cells::LTCCell<B>| {
        cell.w = Param::from_tensor(cell.w.val().neg());
        cell.gleak = Param::from_tensor(cell.gleak.val().neg());
        cell.vleak = Param::from_tensor(Tensor::full(cell.vleak.dims(), -0.5, &device()));
    };
    let mut explicit = LTCConfig::new(2, Units::from(4))
        .with_implicit_param_constraints(false)
        .init::<B>(&device())
        .unwrap();
    negative(&mut explicit.cell);
    let clamped = explicit.apply_weight_constraints();
    assert_eq!(clamped.cell.w.val().max().into_scalar(), 0.0);
    assert_eq!(clamped.cell.gleak.val().max().into_scalar(), 0.0);
    // vleak is not a positive parameter.
    assert_eq!(clamped.cell.vleak.val().max().into_scalar(), -0.5);

    let mut implicit = LTCConfig::new(2, Units::from(4))
        .init::<B>(&device())
        .unwrap();
    negative(&mut implicit.cell);
    let unchanged = implicit.apply_weight_constraints();
    assert!(unchanged.cell.w.val().max().into_scalar() < 0.0);
}

#[test]
fn trainable_parameter_counts_leave_the_masks_out() {
    // FullyConnected(8, 1) with 2 inputs: upstream's summary shows 350.
    let model = LTCConfig::new(2, Units::from(FullyConnected::new(8, 1).unwrap()))
        .init::<B>(&device())
        .unwrap();
    assert_eq!(model.num_params(), 350);
    // Pure-mode wired CfC: no ff2/time heads.
    let pure = CfCConfig::new(3, Units::from(AutoNCP::new(12, 2).unwrap()))
        .with_cell(CfCCellOptions::new().with_mode(CfCMode::Pure))
        .init::<B>(&device())
        .unwrap();
    assert_eq!(pure.num_params(), 142);
}

#[test]
fn a_fresh_model_and_its_clone_are_the_same_model() {
    // Burn draws lazily initialised parameters on first use, separately in
    // every clone; `init` materialises them.
    let input = random([1, 3, 3]);
    let ltc = ltc_mixed();
    let (a, _) = ltc.clone().forward(input.clone(), None);
    let (b, _) = ltc.forward(input.clone(), None);
    close(a.reshape([3, 2]), b.reshape([3, 2]));
    let cfc = cfc_mixed_proj();
    let (a, _) = cfc.clone().forward(input.clone(), None);
    let (b, _) = cfc.forward(input, None);
    close(a.reshape([3, 2]), b.reshape([3, 2]));
}

#[test]
fn a_wired_cfc_on_a_one_layer_wiring_outputs_its_motor_neurons() {
    // Upstream returns the whole (only) layer here, more than its output_size.
    let model = CfCConfig::new(2, Units::from(FullyConnected::new(8, 3).unwrap()))
        .with_proj_size(Some(2))
        .init::<B>(&device())
        .unwrap();
    let (output, state) = model.forward(random([2, 4, 2]), None);
    assert_eq!(output.dims(), [2, 4, 2]);
    assert_eq!(state.hidden.dims(), [2, 8]);
    let plain = CfCConfig::new(2, Units::from(FullyConnected::new(8, 3).unwrap()))
        .init::<B>(&device())
        .unwrap();
    let (output, state) = plain.forward(random([1, 4, 2]), None);
    assert_eq!(output.dims(), [1, 4, 3]);
    // The outputs are the first 3 neurons' states.
    close(
        output.slice([0..1, 3..4]).reshape([1, 3]),
        state.hidden.slice([0..1, 0..3]),
    );
}
