//! The options the CfC paper's runs need beyond upstream ncps 1.0.1: the
//! mixed-memory LSTM's forget-gate bias, LeCun-tanh heads, and dropout after
//! every backbone layer. Each default is upstream's; each option computes
//! what its documentation says.

use crate::common::{AD, B, device, values};
use burn::prelude::*;
use ncps::cells::{
    CfCCellConfig, CfCCellOptions, CfCMode, DropoutPlacement, HeadActivation, LSTMCellConfig,
    RecurrentCell,
};
use ncps::rnn::{CfCConfig, LTCConfig, Units};
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
