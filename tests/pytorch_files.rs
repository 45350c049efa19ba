//! Loading the `.pt` files `torch.save(model.state_dict(), path)` writes
//! (made by `tests/fixtures/pt/generate.py` with upstream ncps 1.0.1).

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use ncps::import::{LoadStateDict, StateDict};
use ncps::rnn::{CfCConfig, LTCConfig, RnnState, Units};
use serde_json::Value;

type B = NdArray<f32>;

fn fixture(name: &str) -> (StateDict, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt");
    let dict = StateDict::read(dir.join(format!("{name}.pt"))).expect("the .pt file reads");
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    (dict, meta)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn input(meta: &Value) -> Tensor<B, 3> {
    let shape: Vec<usize> = meta["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    Tensor::from_data(
        TensorData::new(floats(&meta["input"]), [shape[0], shape[1], shape[2]]),
        &Default::default(),
    )
}

fn assert_close(ours: Tensor<B, 3>, theirs: &Value) {
    let ours: Vec<f32> = ours.into_data().to_vec().unwrap();
    let theirs = floats(theirs);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_pt_state_dict_of_a_mixed_memory_cfc_loads_and_reproduces_upstream() {
    let (dict, meta) = fixture("cfc_mixed_proj");
    assert_eq!(dict.shape("lstm.recurrent_map.weight"), Some(&[32, 8][..]));
    let model = CfCConfig::new(3, Units::from(8))
        .with_proj_size(Some(2))
        .with_mixed_memory(true)
        .with_backbone_units(Some(16))
        .init::<B>(&Default::default())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap();
    let (output, state) = model.forward(input(&meta), None);
    assert_close(output, &meta["output"]);
    let RnnState { hidden, memory } = state;
    assert_close(hidden.unsqueeze_dim(0), &meta["hx_out"]);
    assert_close(memory.unwrap().unsqueeze_dim(0), &meta["cx_out"]);
}

#[test]
fn a_pt_state_dict_of_an_ltc_loads_and_reproduces_upstream() {
    let (dict, meta) = fixture("ltc_fully_connected");
    let model = LTCConfig::new(3, Units::from(6))
        .init::<B>(&Default::default())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap();
    let (output, state) = model.forward(input(&meta), None);
    assert_close(output, &meta["output"]);
    assert_close(state.hidden.unsqueeze_dim(0), &meta["hx_out"]);
}

#[test]
fn a_pt_file_for_another_model_is_rejected_by_name() {
    let (dict, _) = fixture("cfc_mixed_proj");
    let err = CfCConfig::new(3, Units::from(8))
        .init::<B>(&Default::default())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap_err();
    // The model has no backbone of 16 units and no LSTM or projection.
    assert!(
        err.to_string().contains("rnn_cell.backbone.0.weight"),
        "{err}"
    );
}
