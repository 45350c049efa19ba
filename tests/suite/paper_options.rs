//! The options the CfC paper's runs need beyond upstream ncps 1.0.1: the
//! mixed-memory LSTM's forget-gate bias and its output as the cell's input,
//! LeCun-tanh heads, dropout after every backbone layer, and Keras'
//! initialisation. Each default is
//! upstream's; each option computes what its documentation says.

use crate::common::{AD, B, assert_close, device, values};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;
use ncps::cells::{
    AnyCfCCell, CfCCell, CfCCellConfig, CfCCellOptions, CfCMode, DropoutPlacement, HeadActivation,
    Initialization, LSTMCellConfig, RecurrentCell,
};
use ncps::datasets::walker2d::Walker2dModel;
use ncps::export::Export;
use ncps::rnn::{CfCConfig, LTCConfig, LstmOutput, Rnn, Units};
use ncps::wirings::AutoNCP;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn the_forget_gate_bias_shifts_the_forget_gate() {
    let device = device();
    let (input, hidden) = (3, 4);
    for bias in [1.0, 2.1] {
        let lstm = LSTMCellConfig::new(input, hidden)
            .with_forget_bias(bias)
            .init::<B>(&device)
            .unwrap();
        let x = Tensor::<B, 2>::from_floats([[0.3, -0.2, 0.5]], &device);
        let h = Tensor::<B, 2>::from_floats([[0.1, 0.0, -0.4, 0.2]], &device);
        let c = Tensor::<B, 2>::from_floats([[0.5, -1.0, 0.25, 2.0]], &device);
        let (_, c_next) = lstm.forward(x.clone(), h.clone(), c.clone());
        let z = values(lstm.input_map.forward(x) + lstm.recurrent_map.forward(h));
        let c = values(c);
        for (j, ours) in values(c_next).into_iter().enumerate() {
            let (i, ig, fg) = (z[j], z[hidden + j], z[2 * hidden + j]);
            let expected = c[j] * sigmoid(fg + bias as f32) + i.tanh() * sigmoid(ig);
            assert!(
                (ours - expected).abs() < 1e-5,
                "bias {bias}: {ours} vs {expected}"
            );
        }
    }
    assert_eq!(
        LSTMCellConfig::new(1, 1).forget_bias,
        1.0,
        "upstream's default"
    );
    assert!(
        LSTMCellConfig::new(1, 1)
            .with_forget_bias(f64::NAN)
            .init::<B>(&device)
            .is_err()
    );
    // The sequence configs hand it to their LSTM.
    let cfc = CfCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .with_forget_bias(2.1)
        .init::<B>(&device)
        .unwrap();
    assert_eq!(cfc.lstm.unwrap().forget_bias, 2.1);
    let ltc = LTCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .with_forget_bias(2.4)
        .init::<B>(&device)
        .unwrap();
    assert_eq!(ltc.lstm.unwrap().forget_bias, 2.4);
}

#[test]
fn lecun_heads_squash_ff1_and_ff2_with_lecun_tanh() {
    let device = device();
    let lecun = |x: f32| 1.7159 * (0.666 * x).tanh();
    for mode in [CfCMode::Default, CfCMode::NoGate] {
        let cell = CfCCellConfig::new(3, 4)
            .with_options(
                CfCCellOptions::new()
                    .with_mode(mode)
                    .with_backbone_units(8)
                    .with_head_activation(HeadActivation::LecunTanh),
            )
            .init::<B>(&device)
            .unwrap();
        let input = Tensor::<B, 2>::from_floats([[0.3, -0.2, 0.5], [1.0, 2.0, -1.5]], &device);
        let state = Tensor::<B, 2>::from_floats([[0.1, 0.0, -0.4, 0.2], [0.0; 4]], &device);
        let elapsed = Tensor::<B, 1>::from_floats([0.7, 2.0], &device);
        let (ours, _) = cell.forward(input.clone(), state.clone(), elapsed);
        // The same step by hand from the cell's layers.
        let x = cell
            .activation
            .apply(cell.backbone[0].forward(Tensor::cat(vec![input, state], 1)));
        let head = |layer: &burn::nn::Linear<B>| values(layer.forward(x.clone()));
        let (ff1, ff2) = (head(&cell.ff1), head(cell.ff2.as_ref().unwrap()));
        let (ta, tb) = (
            head(cell.time_a.as_ref().unwrap()),
            head(cell.time_b.as_ref().unwrap()),
        );
        for (k, ours) in values(ours).into_iter().enumerate() {
            let t = sigmoid(ta[k] * [0.7, 2.0][k / 4] + tb[k]);
            let expected = match mode {
                CfCMode::NoGate => lecun(ff1[k]) + t * lecun(ff2[k]),
                _ => lecun(ff1[k]) * (1.0 - t) + t * lecun(ff2[k]),
            };
            assert!(
                (ours - expected).abs() < 1e-5,
                "{mode:?}: {ours} vs {expected}"
            );
        }
    }
    // The pure mode's head is linear; wired cells keep upstream's heads.
    let pure = CfCCellConfig::new(3, 4)
        .with_options(
            CfCCellOptions::new()
                .with_mode(CfCMode::Pure)
                .with_head_activation(HeadActivation::LecunTanh),
        )
        .init::<B>(&device);
    assert!(pure.unwrap_err().to_string().contains("head_activation"));
    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(8, 1).unwrap()))
        .with_cell(CfCCellOptions::new().with_head_activation(HeadActivation::LecunTanh))
        .init::<B>(&device);
    assert!(wired.unwrap_err().to_string().contains("head_activation"));
    assert_eq!(
        CfCConfig::new(3, Units::from(4)).cell.head_activation,
        HeadActivation::Tanh
    );
}

#[test]
fn dropout_can_follow_the_first_backbone_layer() {
    let device = device();
    // A one-layer backbone: upstream drops nothing, the paper's code drops
    // after that layer. Training-mode dropout (autodiff backend) shows as
    // two calls differing.
    let differs = |placement: DropoutPlacement| {
        let cell = CfCCellConfig::new(3, 4)
            .with_options(
                CfCCellOptions::new()
                    .with_backbone_dropout(0.5)
                    .with_dropout_placement(placement),
            )
            .init::<AD>(&device)
            .unwrap();
        let run = || {
            let input = Tensor::<AD, 2>::ones([2, 3], &device);
            values(
                cell.forward(
                    input,
                    Tensor::zeros([2, 4], &device),
                    Tensor::ones([2], &device),
                )
                .0,
            )
        };
        run() != run()
    };
    assert!(!differs(DropoutPlacement::LaterLayers));
    assert!(differs(DropoutPlacement::EveryLayer));
    assert_eq!(
        CfCConfig::new(3, Units::from(4)).cell.dropout_placement,
        DropoutPlacement::LaterLayers
    );
    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(8, 1).unwrap()))
        .with_cell(CfCCellOptions::new().with_dropout_placement(DropoutPlacement::EveryLayer))
        .init::<B>(&device);
    assert!(wired.unwrap_err().to_string().contains("dropout_placement"));
}

/// Runs `model` (mixed memory, the LSTM output as the cell's input) over a
/// sequence and step by step by hand: `(y, c') = lstm(x, h, c)`, `h' =
/// cell(y, h)`. Outputs, state and memory agree.
fn check_lstm_output_as_input<C: RecurrentCell<B>>(model: &Rnn<B, C>, outputs: usize) {
    let device = device();
    let (batch, steps, features) = (2, 4, 3);
    let n = model.state_size();
    let input = Tensor::<B, 3>::random(
        [batch, steps, features],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let spans = Tensor::<B, 2>::from_floats([[0.5, 1.0, 2.0, 0.1], [1.0, 1.0, 0.3, 0.0]], &device);
    let (ours, state) = model.forward_timed(input.clone(), spans.clone(), None);
    let lstm = model.lstm.as_ref().expect("mixed memory");
    let (mut h, mut c) = (
        Tensor::<B, 2>::zeros([batch, n], &device),
        Tensor::<B, 2>::zeros([batch, n], &device),
    );
    for t in 0..steps {
        let x = input
            .clone()
            .slice([0..batch, t..t + 1])
            .reshape([batch, features]);
        let (y, c_next) = lstm.forward(x, h.clone(), c);
        let elapsed = spans.clone().slice([0..batch, t..t + 1]).reshape([batch]);
        let (output, h_next) = model.cell.forward(y, h, elapsed);
        let at_t = ours
            .clone()
            .slice([0..batch, t..t + 1])
            .reshape([batch, outputs]);
        assert_close(&values(at_t), &values(output), 1e-5, "output");
        (h, c) = (h_next, c_next);
    }
    assert_close(&values(state.hidden), &values(h), 1e-5, "state");
    assert_close(&values(state.memory.unwrap()), &values(c), 1e-5, "memory");
}

#[test]
fn the_lstm_output_can_be_the_cells_input() {
    let device = device();
    // Dense CfC (the fused sequence on NdArray), and an LTC on a wiring
    // (built with the LSTM's outputs as its sensory neurons).
    let cfc = CfCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .with_lstm_output(LstmOutput::Input)
        .with_cell(CfCCellOptions::new().with_backbone_units(7))
        .init::<B>(&device)
        .unwrap();
    assert_eq!((cfc.input_size(), cfc.cell.input_size()), (3, 5));
    check_lstm_output_as_input(&cfc, 5);
    let ltc = LTCConfig::new(3, Units::from(AutoNCP::new(8, 2).unwrap()))
        .with_mixed_memory(true)
        .with_lstm_output(LstmOutput::Input)
        .init::<B>(&device)
        .unwrap();
    assert_eq!((ltc.input_size(), ltc.cell.input_size()), (3, 8));
    check_lstm_output_as_input(&ltc, 2);
    // The step API takes the same path.
    let x = Tensor::<B, 2>::ones([1, 3], &device);
    let (once, _) = cfc.step(x.clone(), None, None);
    let (whole, _) = cfc.forward(x.unsqueeze_dim(1), None);
    assert_close(&values(once), &values(whole), 1e-6, "step");
}

#[test]
fn the_lstm_output_as_input_needs_mixed_memory_and_stays_out_of_python() {
    let device = device();
    let err = CfCConfig::new(3, Units::from(5))
        .with_lstm_output(LstmOutput::Input)
        .init::<B>(&device)
        .unwrap_err();
    assert!(err.to_string().contains("lstm_output"), "{err}");
    assert!(
        LTCConfig::new(3, Units::from(5))
            .with_lstm_output(LstmOutput::Input)
            .init::<B>(&device)
            .is_err()
    );
    assert_eq!(
        CfCConfig::new(3, Units::from(5)).lstm_output,
        LstmOutput::State
    );
    let paper = CfCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .with_lstm_output(LstmOutput::Input)
        .init::<B>(&device)
        .unwrap();
    let err = paper.upstream_config().unwrap_err();
    assert!(err.to_string().contains("LstmOutput::Input"), "{err}");
    // The generated step functions run it (tests/suite/export.rs checks
    // their numbers).
    assert!(paper.step_function().is_ok());
    // Upstream's arrangement still exports.
    let upstream = CfCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .init::<B>(&device)
        .unwrap();
    assert!(upstream.upstream_config().is_ok() && upstream.step_function().is_ok());
}

#[test]
fn the_lstm_output_as_input_trains_through_autodiff() {
    // Gradients reach every weight, the LSTM's input map included, on the
    // fused path (dense CfC under autodiff).
    let device = Default::default();
    let model = CfCConfig::new(3, Units::from(4))
        .with_mixed_memory(true)
        .with_lstm_output(LstmOutput::Input)
        .init::<AD>(&device)
        .unwrap();
    let input = Tensor::<AD, 3>::ones([2, 3, 3], &device).require_grad();
    let (output, _) = model.forward(input.clone(), None);
    let grads = output.powf_scalar(2.0).sum().backward();
    let lstm = model.lstm.as_ref().unwrap();
    for (name, grad) in [
        ("input", input.grad(&grads).map(values)),
        (
            "lstm input map",
            lstm.input_map.weight.grad(&grads).map(values),
        ),
        (
            "lstm recurrent map",
            lstm.recurrent_map.weight.grad(&grads).map(values),
        ),
    ] {
        let grad = grad.unwrap_or_else(|| panic!("no gradient of the {name}"));
        assert!(grad.iter().any(|g| *g != 0.0), "{name}: zero gradient");
    }
}

/// The largest |weight| of a layer and its bias's values.
fn layer(linear: &Linear<B>) -> (f32, Vec<f32>) {
    let weight = values(linear.weight.val());
    let bias = linear
        .bias
        .as_ref()
        .map(|b| values(b.val()))
        .unwrap_or_default();
    (weight.iter().fold(0.0, |m, w| m.max(w.abs())), bias)
}

/// The cell's layers with their fan in and fan out.
fn cell_layers(cell: &CfCCell<B>) -> Vec<(&Linear<B>, usize, usize)> {
    let heads = [
        Some(&cell.ff1),
        cell.ff2.as_ref(),
        cell.time_a.as_ref(),
        cell.time_b.as_ref(),
    ];
    cell.backbone
        .iter()
        .chain(heads.into_iter().flatten())
        .map(|l| {
            let [fan_in, fan_out] = l.weight.dims();
            (l, fan_in, fan_out)
        })
        .collect()
}

#[test]
fn keras_initialisation_zeroes_every_bias_and_draws_glorot_kernels() {
    let device = device();
    let config = |init| {
        CfCConfig::new(17, Units::from(64))
            .with_mixed_memory(true)
            .with_proj_size(Some(17))
            .with_cell(CfCCellOptions::new().with_backbone_layers(2))
            .with_initialization(init)
    };
    assert_eq!(
        CfCConfig::new(17, Units::from(64)).initialization,
        Initialization::Upstream,
        "the default is upstream's"
    );
    for init in [Initialization::Upstream, Initialization::Keras] {
        let model = config(init).init::<B>(&device).unwrap();
        let AnyCfCCell::Dense(cell) = &model.cell else {
            panic!("a dense CfC")
        };
        // Kernels: Xavier/Glorot-uniform, U(±√(6 / (fan_in + fan_out))),
        // in both; a bias: U(±1/√fan_in) upstream, 0 in Keras.
        for (linear, fan_in, fan_out) in cell_layers(cell) {
            let (weight, bias) = layer(linear);
            assert!(weight <= (6.0 / (fan_in + fan_out) as f32).sqrt());
            let bound = 1.0 / (fan_in as f32).sqrt();
            match init {
                Initialization::Upstream => {
                    assert!(bias.iter().all(|b| b.abs() <= bound) && bias.iter().any(|b| *b != 0.0))
                }
                Initialization::Keras => assert!(bias.iter().all(|b| *b == 0.0), "{bias:?}"),
            }
        }
        let lstm_bias = layer(&model.lstm.as_ref().unwrap().input_map).1;
        let (fc_weight, fc_bias) = layer(model.fc.as_ref().unwrap());
        let glorot = (6.0f32 / (64.0 + 17.0)).sqrt();
        let torch = 1.0 / 64f32.sqrt();
        match init {
            Initialization::Upstream => {
                assert!(lstm_bias.iter().all(|b| b.abs() <= 0.1));
                assert!(lstm_bias.iter().any(|b| *b != 0.0));
                assert!(fc_weight <= torch && fc_bias.iter().any(|b| *b != 0.0));
            }
            Initialization::Keras => {
                assert!(lstm_bias.iter().chain(&fc_bias).all(|b| *b == 0.0));
                // 1,088 draws from U(±0.272): some exceed torch's 0.125.
                assert!(fc_weight > torch && fc_weight <= glorot, "{fc_weight}");
            }
        }
    }
}

#[test]
fn keras_initialisation_reaches_pure_mode_wired_cells_ltc_and_the_walker_readout() {
    let device = device();
    let keras = Initialization::Keras;
    let pure = CfCCellConfig::new(3, 6)
        .with_options(CfCCellOptions::new().with_mode(CfCMode::Pure))
        .with_initialization(keras)
        .init::<B>(&device)
        .unwrap();
    assert_eq!(values(pure.w_tau.unwrap().val()), vec![0.0; 6]);
    assert_eq!(values(pure.a.unwrap().val()), vec![1.0; 6]);
    let upstream = CfCCellConfig::new(3, 6)
        .with_options(CfCCellOptions::new().with_mode(CfCMode::Pure))
        .init::<B>(&device)
        .unwrap();
    assert!(values(upstream.a.unwrap().val()).iter().all(|a| *a != 1.0));

    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(8, 2).unwrap()))
        .with_initialization(keras)
        .init::<B>(&device)
        .unwrap();
    let AnyCfCCell::Wired(wired) = &wired.cell else {
        panic!("a wired CfC")
    };
    for cell in &wired.layers {
        for (linear, _, _) in cell_layers(cell) {
            assert!(layer(linear).1.iter().all(|b| *b == 0.0));
        }
    }

    let ltc = LTCConfig::new(3, Units::from(5))
        .with_mixed_memory(true)
        .with_initialization(keras)
        .init::<B>(&device)
        .unwrap();
    assert!(
        layer(&ltc.lstm.unwrap().input_map)
            .1
            .iter()
            .all(|b| *b == 0.0)
    );

    let rnn = CfCConfig::new(17, Units::from(8))
        .init::<B>(&device)
        .unwrap();
    let readout = Walker2dModel::with_initialization(rnn.clone(), keras, &device).readout;
    assert!(layer(&readout).1.iter().all(|b| *b == 0.0));
    let readout = Walker2dModel::new(rnn, &device).readout;
    assert!(layer(&readout).1.iter().any(|b| *b != 0.0));
}

#[test]
fn the_initialization_survives_a_saved_config() {
    let saved = CfCConfig::new(3, Units::from(5)).with_initialization(Initialization::Keras);
    let json = serde_json::to_string(&saved).unwrap();
    assert!(json.contains(r#""initialization":"Keras""#), "{json}");
    let loaded: CfCConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded.initialization, Initialization::Keras);
    let ltc = LTCConfig::new(3, Units::from(5)).with_initialization(Initialization::Keras);
    let loaded: LTCConfig = serde_json::from_str(&serde_json::to_string(&ltc).unwrap()).unwrap();
    assert_eq!(loaded.initialization, Initialization::Keras);
}
