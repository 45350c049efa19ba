//! The fused CfC sequence operation against the tensor-op path every
//! backend runs, over generated settings: every mode, backbone depth and
//! activation, LeCun heads, mixed memory (its LSTM output as the cell's
//! state or as its input), projection, timespans, initial
//! state, time-major layout, last output only, and dropout drawn from the
//! same seed. Values within 1e-5 (absolute below 1, relative above), every
//! gradient (weights, inputs, elapsed times, initial state) within 1e-4 of
//! the larger of 1 and the gradient tensor's largest magnitude: gradients
//! are sums, rounded in proportion to their terms. A generated case with
//! heavy dropout (saved in the regressions file) had a bias gradient off
//! by 1.12e-4 by the entrywise measure, on the code before and after the
//! steps' parameters were joined to one graph alike: entries near 1.6 of
//! gradients reaching 70 to 120 off by 1.5e-4, about 2e-6 of their
//! scale.

mod common;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{
    Activation, CfCCellOptions, CfCMode, DropoutMasks, DropoutPlacement, HeadActivation,
    RecurrentCell, SequenceInputs,
};
use ncps::import::StateDict;
use ncps::rnn::{AnyCfCCell, CfC, CfCConfig, LstmOutput, RnnState, Units};
use proptest::prelude::*;

use common::{AD as B, rng_turn, values, worst_error, worst_normwise_error};

#[derive(Clone, Debug)]
struct Case {
    inputs: usize,
    hidden: usize,
    mode: CfCMode,
    activation: Activation,
    heads: HeadActivation,
    layers: usize,
    units: usize,
    dropout: f64,
    placement: DropoutPlacement,
    mixed: bool,
    lstm_output: LstmOutput,
    proj: Option<usize>,
    batch: usize,
    steps: usize,
    timed: bool,
    initial: bool,
    batch_first: bool,
    sequences: bool,
}

fn model(case: &Case, device: &Device<B>) -> CfC<B> {
    CfCConfig::new(case.inputs, Units::from(case.hidden))
        .with_cell(
            CfCCellOptions::new()
                .with_mode(case.mode)
                .with_activation(case.activation)
                .with_head_activation(case.heads)
                .with_backbone_layers(case.layers)
                .with_backbone_units(case.units)
                .with_backbone_dropout(case.dropout)
                .with_dropout_placement(case.placement)
                // The fused path draws the tensor path's masks.
                .with_dropout_masks(DropoutMasks::Stepwise),
        )
        .with_mixed_memory(case.mixed)
        .with_lstm_output(case.lstm_output)
        .with_proj_size(case.proj)
        .with_batch_first(case.batch_first)
        .with_return_sequences(case.sequences)
        .init(device)
        .unwrap()
}

/// Output, final state (and memory) and every gradient of one run.
struct Run {
    output: Vec<f32>,
    hidden: Vec<f32>,
    memory: Vec<f32>,
    grads: StateDict,
    inputs: Vec<Vec<f32>>,
}

/// `nudge`: each input value moved by this much, relative (0: none).
fn run(case: &Case, model: &CfC<B>, nudge: f32) -> Run {
    let device = Default::default();
    B::seed(&device, 7);
    let [a, b] = if case.batch_first {
        [case.batch, case.steps]
    } else {
        [case.steps, case.batch]
    };
    let shape = [a, b, case.inputs];
    let mut input = Tensor::<B, 3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    if nudge > 0.0 {
        let noise = Tensor::<B, 3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        input = input.clone() + input * noise * nudge;
    }
    let input = input.require_grad();
    // Includes elapsed times of 0: the gate takes its bias.
    let spans: Vec<f32> = (0..a * b).map(|i| (i * 37 % 23) as f32 / 9.0).collect();
    let timespans =
        Tensor::<B, 2>::from_data(TensorData::new(spans, [a, b]), &device).require_grad();
    let h = case.hidden;
    let state = |seed| {
        Tensor::<B, 2>::random([case.batch, h], Distribution::Normal(0.0, seed), &device)
            .require_grad()
    };
    let initial = case.initial.then(|| {
        let hidden = state(0.5);
        match case.mixed {
            true => RnnState::with_memory(hidden, state(0.7)),
            false => RnnState::new(hidden),
        }
    });
    // The same dropout masks on both paths: the same seed before the run.
    B::seed(&device, 11);
    let (output, last) = if case.timed {
        model.forward_timed(input.clone(), timespans.clone(), initial.clone())
    } else {
        model.forward(input.clone(), initial.clone())
    };
    let mut loss = output.clone().powf_scalar(2.0).sum() + last.hidden.clone().sin().sum();
    if let Some(memory) = &last.memory {
        loss = loss + memory.clone().cos().sum();
    }
    let gradients = loss.backward();
    let grads = StateDict::gradients(model, &gradients);
    let mut inputs = vec![values(input.grad(&gradients).unwrap())];
    if case.timed {
        inputs.push(values(timespans.grad(&gradients).unwrap()));
    }
    if let Some(initial) = initial {
        inputs.push(values(initial.hidden.grad(&gradients).unwrap()));
        if let Some(memory) = initial.memory {
            inputs.push(values(memory.grad(&gradients).unwrap()));
        }
    }
    Run {
        output: values(output),
        hidden: values(last.hidden),
        memory: last.memory.map(values).unwrap_or_default(),
        grads,
        inputs,
    }
}

fn check(case: Case) -> Result<(), TestCaseError> {
    check_within(case, None)
}

/// As [`check`], the tolerances of values and of gradients raised to three
/// times the most the tensor path itself moves any of them when every
/// input value is moved by `nudge` (relative): for models whose rounding
/// grows over a long sequence.
fn check_within(case: Case, nudge: Option<f32>) -> Result<(), TestCaseError> {
    let _turn = rng_turn();
    assert!(ncps::cells::fused_available::<B>());
    let device = Default::default();
    let fused = model(&case, &device);
    let mut reference = fused.clone();
    let AnyCfCCell::Dense(cell) = &mut reference.cell else {
        unreachable!("a dense CfC")
    };
    cell.fused = false;
    let (f, r) = (run(&case, &fused, 0.0), run(&case, &reference, 0.0));
    let names: Vec<&str> = r.grads.names().collect();
    let (mut value_tol, mut grad_tol) = (1e-5f64, 1e-4f64);
    if let Some(nudge) = nudge {
        let n = run(&case, &reference, nudge);
        let moved = [
            worst_error(&n.output, &r.output),
            worst_error(&n.hidden, &r.hidden),
            worst_error(&n.memory, &r.memory),
        ];
        value_tol = value_tol.max(3.0 * moved.into_iter().fold(0.0, f64::max));
        let moved = names.iter().map(|name| {
            worst_normwise_error(
                &n.grads.values(name).unwrap(),
                &r.grads.values(name).unwrap(),
            )
        });
        grad_tol = grad_tol.max(3.0 * moved.fold(0.0, f64::max));
    }
    for (a, b, what) in [
        (&f.output, &r.output, "output"),
        (&f.hidden, &r.hidden, "state"),
        (&f.memory, &r.memory, "memory"),
    ] {
        let err = worst_error(a, b);
        prop_assert!(
            err <= value_tol,
            "{} differs by {:.2e} (tolerance {:.2e})",
            what,
            err,
            value_tol
        );
    }
    prop_assert_eq!(f.grads.names().collect::<Vec<_>>(), names.clone());
    for name in names {
        let theirs = r.grads.values(name).unwrap();
        let err = worst_normwise_error(&f.grads.values(name).unwrap(), &theirs);
        prop_assert!(
            err <= grad_tol,
            "gradient of {} differs by {:.2e} (tolerance {:.2e})",
            name,
            err,
            grad_tol
        );
    }
    let which = [
        "input",
        "timespans or initial state",
        "initial state",
        "initial memory",
    ];
    for ((a, b), what) in f.inputs.iter().zip(&r.inputs).zip(which) {
        let err = worst_normwise_error(a, b);
        prop_assert!(
            err <= 1e-4,
            "gradient of the {} differs by {:.2e}",
            what,
            err
        );
    }
    Ok(())
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::LecunTanh),
        Just(Activation::Silu),
        Just(Activation::Relu),
        Just(Activation::Tanh),
        Just(Activation::Gelu),
    ]
}

fn mode() -> impl Strategy<Value = CfCMode> {
    prop_oneof![
        Just(CfCMode::Default),
        Just(CfCMode::NoGate),
        Just(CfCMode::Pure)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fused_sequence_matches_the_tensor_path(
        inputs in 1usize..6,
        hidden in 1usize..12,
        mode in mode(),
        activation in activation(),
        lecun in any::<bool>(),
        layers in 0usize..4,
        units in 1usize..20,
        dropout in prop_oneof![Just(0.0f64), 0.05f64..0.6],
        every_layer in any::<bool>(),
        mixed in any::<bool>(),
        lstm_as_input in any::<bool>(),
        proj in prop::option::of(1usize..5),
        batch in prop_oneof![Just(1usize), 2usize..8, 30usize..40],
        steps in 1usize..6,
        timed in any::<bool>(),
        initial in any::<bool>(),
        batch_first in prop::bool::weighted(0.75),
        sequences in prop::bool::weighted(0.75),
    ) {
        check(Case {
            inputs,
            hidden,
            mode,
            activation,
            heads: if lecun && mode != CfCMode::Pure { HeadActivation::LecunTanh } else { HeadActivation::Tanh },
            layers,
            units,
            dropout,
            placement: if every_layer { DropoutPlacement::EveryLayer } else { DropoutPlacement::LaterLayers },
            mixed,
            lstm_output: if mixed && lstm_as_input { LstmOutput::Input } else { LstmOutput::State },
            proj,
            batch,
            steps,
            timed,
            initial,
            batch_first,
            sequences,
        })?;
    }
}

/// A sequence at Walker2d's sizes (64 steps, batch 40 over both threads),
/// where rounding has the most room to grow.
#[test]
fn a_long_wide_sequence_agrees() {
    check(walker_case()).unwrap();
}

/// The mixed-memory Walker2d model in the CfC paper's arrangement (the LSTM
/// output as the cell's input), at its sizes. This model amplifies rounding
/// over time more than upstream's arrangement: on the tensor path alone,
/// an input moved by 1e-7 (relative) moved a gradient by ~1.6e-4 over 64
/// steps without dropout and by ~4e-4 over 16 steps with dropout 0.2
/// (~4e-5 in upstream's arrangement both times), so the paths are held to
/// three times what that nudge does here, where it is above the usual
/// tolerances.
#[test]
fn a_long_wide_paper_mixed_sequence_agrees() {
    check_within(
        Case {
            hidden: 128,
            activation: Activation::LecunTanh,
            heads: HeadActivation::LecunTanh,
            layers: 2,
            units: 128,
            lstm_output: LstmOutput::Input,
            proj: None,
            ..walker_case()
        },
        Some(1e-7),
    )
    .unwrap();
}

/// Chunks of 64 samples and more a thread (here 70, or 140 on one
/// thread): the backward pass adds the weights' gradients at every step
/// rather than once after the loop, the heads' gradients in their own
/// padded rows; after a two-layer backbone with mixed memory, without a
/// backbone, and in pure mode.
#[test]
fn wide_chunks_add_the_weights_gradients_at_every_step() {
    for (mode, layers, mixed) in [
        (CfCMode::Default, 2, true),
        (CfCMode::NoGate, 0, false),
        (CfCMode::Pure, 1, false),
    ] {
        check(Case {
            hidden: 24,
            mode,
            layers,
            units: 40,
            mixed,
            batch: 140,
            steps: 12,
            ..walker_case()
        })
        .unwrap();
    }
}

/// The fused op computes the inputs' and elapsed times' gradients only
/// for the tensors Burn tracks: each of the four ways to track them gives
/// the tracked ones and the weights' gradients of tracking both, to the
/// bit, and no gradient for an untracked tensor. Gated with mixed memory
/// (the LSTM's share of the inputs' gradient) and 70 samples a thread
/// (the weights' gradients added at every step).
#[test]
fn untracked_inputs_and_times_leave_every_other_gradient_alone() {
    let _turn = rng_turn();
    let device = Default::default();
    let case = Case {
        hidden: 12,
        units: 20,
        batch: 140,
        steps: 9,
        dropout: 0.0,
        ..walker_case()
    };
    let model = model(&case, &device);
    let input = Tensor::<B, 3>::random([140, 9, 17], Distribution::Normal(0.0, 1.0), &device);
    let spans: Vec<f32> = (0..140 * 9).map(|i| (i * 37 % 23) as f32 / 9.0).collect();
    let timespans = Tensor::<B, 2>::from_data(TensorData::new(spans, [140, 9]), &device);
    let grads = |track_input: bool, track_times: bool| {
        let track = |t: Tensor<B, 3>| if track_input { t.require_grad() } else { t };
        let (x, ts) = (track(input.clone()), timespans.clone());
        let ts = if track_times { ts.require_grad() } else { ts };
        let (output, _) = model.forward_timed(x.clone(), ts.clone(), None);
        let gradients = output.powf_scalar(2.0).sum().backward();
        let weights = StateDict::gradients(&model, &gradients);
        let weights: Vec<Vec<f32>> = weights
            .names()
            .map(|name| weights.values(name).unwrap())
            .collect();
        (
            weights,
            x.grad(&gradients).map(values),
            ts.grad(&gradients).map(values),
        )
    };
    let (weights, input_grad, times_grad) = grads(true, true);
    assert!(input_grad.is_some() && times_grad.is_some());
    for (track_input, track_times) in [(true, false), (false, true), (false, false)] {
        let (w, x, ts) = grads(track_input, track_times);
        assert_eq!(
            w, weights,
            "weights, input {track_input}, times {track_times}"
        );
        assert_eq!(x, input_grad.clone().filter(|_| track_input), "input's");
        assert_eq!(ts, times_grad.clone().filter(|_| track_times), "times'");
    }
}

fn walker_case() -> Case {
    Case {
        inputs: 17,
        hidden: 64,
        mode: CfCMode::Default,
        activation: Activation::Silu,
        heads: HeadActivation::Tanh,
        layers: 1,
        units: 256,
        dropout: 0.1,
        placement: DropoutPlacement::EveryLayer,
        mixed: true,
        lstm_output: LstmOutput::State,
        proj: Some(17),
        batch: 40,
        steps: 64,
        timed: true,
        initial: false,
        batch_first: true,
        sequences: true,
    }
}

#[test]
fn dropout_is_off_without_autodiff_and_on_with_it() {
    let _turn = rng_turn();
    let device = Default::default();
    let case = |prob| {
        CfCConfig::new(3, Units::from(8)).with_cell(
            CfCCellOptions::new()
                .with_backbone_dropout(prob)
                .with_dropout_placement(DropoutPlacement::EveryLayer),
        )
    };
    let input = Tensor::<NdArray, 3>::random([4, 5, 3], Distribution::Normal(0.0, 1.0), &device);
    // Inference (no autodiff): the fused path drops nothing.
    let plain = case(0.5).init::<NdArray>(&device).unwrap();
    let mut undropped = plain.clone();
    if let AnyCfCCell::Dense(cell) = &mut undropped.cell {
        cell.dropout.prob = 0.0;
    }
    let (a, _) = plain.forward(input.clone(), None);
    let (b, _) = undropped.forward(input.clone(), None);
    assert_eq!(values(a), values(b));
    // Training (autodiff): it does, differently for two seeds.
    let trained = case(0.5).init::<B>(&device).unwrap();
    let input = Tensor::<B, 3>::from_data(input.into_data(), &device);
    let run = |seed| {
        B::seed(&device, seed);
        values(trained.forward(input.clone(), None).0)
    };
    let (first, second, again) = (run(1), run(2), run(1));
    assert_ne!(first, second, "dropout masks should differ between seeds");
    assert_eq!(first, again, "the same seed should drop the same units");
}

#[test]
fn the_cell_runs_a_sequence_fused_only_where_it_can() {
    let _turn = rng_turn();
    let device = Default::default();
    let model = CfCConfig::new(3, Units::from(8))
        .init::<B>(&device)
        .unwrap();
    let inputs = SequenceInputs {
        input: Tensor::zeros([2, 4, 3], &device),
        elapsed: Tensor::ones([2, 4], &device),
        hidden: Tensor::zeros([2, 8], &device),
        memory: None,
        lengths: None,
    };
    let run = model
        .cell
        .fused_sequence(None, &inputs)
        .expect("dense CfC on NdArray is fused");
    assert_eq!(run.outputs.dims(), [2, 4, 8]);
    assert_eq!(run.hidden.dims(), [2, 8]);
    let wired = CfCConfig::new(3, Units::from(ncps::wirings::AutoNCP::new(8, 2).unwrap()))
        .init::<B>(&device)
        .unwrap();
    assert!(
        wired.cell.fused_sequence(None, &inputs).is_none(),
        "wired cells run their steps"
    );
    let off = CfCConfig::new(3, Units::from(8))
        .with_cell(CfCCellOptions::new().with_fused(false))
        .init::<B>(&device)
        .unwrap();
    assert!(
        off.cell.fused_sequence(None, &inputs).is_none(),
        "fused: false runs the steps"
    );
}

/// The weights' gradients survive backward passes on other threads:
/// burn-autodiff's graph cleanup, which any backward pass runs, once freed
/// the flattened weights on their way into the fused operation, and some
/// weights came back without a gradient.
#[test]
fn weights_keep_their_gradients_while_other_threads_run_backward() {
    let _turn = rng_turn();
    use std::sync::atomic::{AtomicBool, Ordering};
    let device = Default::default();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let model = CfCConfig::new(3, Units::from(4))
                .init::<B>(&Default::default())
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let x = Tensor::<B, 3>::ones([2, 3, 3], &Default::default()).require_grad();
                let _ = model.forward(x, None).0.sum().backward();
            }
        })
    };
    let model = CfCConfig::new(3, Units::from(6))
        .with_cell(CfCCellOptions::new().with_backbone_units(10))
        .init::<B>(&device)
        .unwrap();
    let expected: Vec<String> = {
        let loss = model
            .forward(Tensor::ones([2, 3, 3], &device), None)
            .0
            .sum();
        StateDict::gradients(&model, &loss.backward())
            .names()
            .map(String::from)
            .collect()
    };
    for i in 0..300 {
        let input = Tensor::<B, 3>::ones([2, 3, 3], &device).require_grad();
        let loss = model.forward(input, None).0.sum();
        let grads = StateDict::gradients(&model, &loss.backward());
        let names: Vec<&str> = grads.names().collect();
        assert_eq!(names, expected, "run {i}: gradients missing");
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
}
