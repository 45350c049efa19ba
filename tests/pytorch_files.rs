//! Loading the `.pt` files `torch.save(model.state_dict(), path)` writes
//! (made by `tests/fixtures/pt/generate.py` with upstream ncps 1.0.1).

mod common;

use std::path::Path;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use ncps::cells::CfCCellOptions;
use ncps::import::{LoadStateDict, StateDict};
use ncps::rnn::{CfCConfig, LTCConfig, RnnState, Units};
use ncps::wirings::Wiring;
use serde_json::Value;

use common::{B, assert_close, device, floats, values};

fn fixture(name: &str) -> (StateDict, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt");
    let dict = StateDict::read(dir.join(format!("{name}.pt"))).expect("the .pt file reads");
    let meta =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    (dict, meta)
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
        &device(),
    )
}

/// `ours` matches the numbers upstream stored under `meta[key]`.
#[track_caller]
fn matches_upstream(ours: Tensor<B, 3>, meta: &Value, key: &str) {
    assert_close(&values(ours), &floats(&meta[key]), 1e-5, key);
}

#[test]
fn a_pt_state_dict_of_a_mixed_memory_cfc_loads_and_reproduces_upstream() {
    let (dict, meta) = fixture("cfc_mixed_proj");
    assert_eq!(dict.shape("lstm.recurrent_map.weight"), Some(&[32, 8][..]));
    let model = CfCConfig::new(3, Units::from(8))
        .with_proj_size(Some(2))
        .with_mixed_memory(true)
        .with_cell(CfCCellOptions::new().with_backbone_units(16))
        .init::<B>(&device())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap();
    let (output, state) = model.forward(input(&meta), None);
    matches_upstream(output, &meta, "output");
    let RnnState { hidden, memory } = state;
    matches_upstream(hidden.unsqueeze_dim(0), &meta, "hx_out");
    matches_upstream(memory.unwrap().unsqueeze_dim(0), &meta, "cx_out");
}

#[test]
fn a_pt_state_dict_of_an_ltc_loads_and_reproduces_upstream() {
    let (dict, meta) = fixture("ltc_fully_connected");
    let model = LTCConfig::new(3, Units::from(6))
        .init::<B>(&device())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap();
    let (output, state) = model.forward(input(&meta), None);
    matches_upstream(output, &meta, "output");
    matches_upstream(state.hidden.unsqueeze_dim(0), &meta, "hx_out");
}

#[test]
fn a_pt_file_for_another_model_is_rejected_by_name() {
    let (dict, _) = fixture("cfc_mixed_proj");
    let err = CfCConfig::new(3, Units::from(8))
        .init::<B>(&device())
        .unwrap()
        .load_state_dict(&dict)
        .unwrap_err();
    // The model has no backbone of 16 units and no LSTM or projection.
    assert!(
        err.to_string().contains("rnn_cell.backbone.0.weight"),
        "{err}"
    );
}

#[test]
fn weights_load_into_a_float64_model_and_compute_the_same_numbers() {
    type B64 = NdArray<f64>;
    let device = device();
    let (dict, meta) = fixture("ltc_fully_connected");
    let model = LTCConfig::new(3, Units::from(6))
        .init::<B64>(&device)
        .unwrap()
        .load_state_dict(&dict)
        .expect("an f64 model loads f32 weights");
    let input = Tensor::<B64, 3>::from_data(input(&meta).into_data().convert::<f64>(), &device);
    let (output, _) = model.forward(input, None);
    let output = Tensor::<B, 3>::from_data(output.into_data().convert::<f32>(), &device);
    matches_upstream(output, &meta, "output");

    // Wired models check their sparsity masks against the file: the check
    // must not depend on the float type either.
    let wiring = ncps::wirings::AutoNCP::new(10, 2).unwrap();
    for dict in [
        StateDict::from_model(
            &LTCConfig::new(3, Units::from(wiring.clone()))
                .init::<B>(&device)
                .unwrap(),
        ),
        StateDict::from_model(
            &CfCConfig::new(3, Units::from(wiring.clone()))
                .init::<B>(&device)
                .unwrap(),
        ),
    ] {
        if dict.names().any(|n| n == "rnn_cell.w") {
            LTCConfig::new(3, Units::from(wiring.clone()))
                .init::<B64>(&device)
                .unwrap()
                .load_state_dict(&dict)
                .expect("wired LTC masks match in f64");
        } else {
            CfCConfig::new(3, Units::from(wiring.clone()))
                .init::<B64>(&device)
                .unwrap()
                .load_state_dict(&dict)
                .expect("wired CfC masks match in f64");
        }
    }
}

// ------------------------------------------------ views, dtypes, whole models

/// Every tensor of `views/<name>.pt` against the values torch wrote beside it.
fn check_views(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt/views");
    let dict = StateDict::read(dir.join(format!("{name}.pt"))).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let expected = expected.as_object().unwrap();
    assert_eq!(dict.names().count(), expected.len(), "{name}: tensor count");
    for (tensor, meta) in expected {
        let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone()).unwrap();
        assert_eq!(dict.shape(tensor), Some(&shape[..]), "{name}.{tensor}");
        let values = dict.values(tensor).unwrap();
        let want = floats(&meta["values"]);
        assert_eq!(values, want, "{name}.{tensor}: strides or offset misread");
    }
}

#[test]
fn transposed_sliced_and_offset_views_load_in_their_logical_order() {
    for name in ["transposed", "sliced", "offset"] {
        check_views(name);
    }
}

#[test]
fn float64_float16_and_int64_tensors_keep_their_values_and_type() {
    for name in ["float64", "float16", "int64"] {
        check_views(name);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt/views");
    let dict = StateDict::read(dir.join("float64.pt")).unwrap();
    assert_eq!(dict.dtype("a"), Some(burn::tensor::DType::F64));
    let half = StateDict::read(dir.join("float16.pt")).unwrap();
    assert_eq!(half.dtype("a"), Some(burn::tensor::DType::F16));
}

/// The upstream wiring stored in a fixture's JSON.
fn upstream_matrix(meta: &Value, key: &str) -> Vec<Vec<i8>> {
    serde_json::from_value(meta["wiring"][key].clone()).unwrap()
}

#[test]
fn an_upstream_ltc_ncp_checkpoint_loads_alone_with_its_exact_wiring() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt/ltc_ncp.pt");
    let (dict, meta) = fixture("ltc_ncp");
    let wiring = dict.wiring().unwrap();
    assert_eq!(
        wiring.adjacency_matrix().to_rows(),
        upstream_matrix(&meta, "adjacency_matrix")
    );
    assert_eq!(
        wiring.sensory_adjacency_matrix().unwrap().to_rows(),
        upstream_matrix(&meta, "sensory_adjacency_matrix")
    );
    let layers: Vec<Vec<usize>> = serde_json::from_value(meta["wiring"]["layers"].clone()).unwrap();
    assert_eq!(wiring.layers(), layers);
    let types: Vec<ncps::wirings::NeuronType> =
        serde_json::from_value(meta["wiring"]["neuron_types"].clone()).unwrap();
    assert_eq!(wiring.neuron_types(), types);

    let model = ncps::import::load_ltc::<B>(&path, &device()).unwrap();
    let (output, state) = model.forward(input(&meta), None);
    matches_upstream(output, &meta, "output");
    matches_upstream(state.hidden.unsqueeze_dim(0), &meta, "hx_out");
}

#[test]
fn an_upstream_wired_cfc_checkpoint_with_transposed_masks_loads_alone() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt/cfc_wired_ncp.pt");
    let (dict, meta) = fixture("cfc_wired_ncp");
    // The masks are stored as transposed views: read in storage order they
    // would not match any wiring.
    let wiring = dict.wiring().unwrap();
    let layers: Vec<Vec<usize>> = serde_json::from_value(meta["wiring"]["layers"].clone()).unwrap();
    assert_eq!(wiring.layers(), layers);
    // Between consecutive layers and from the inputs, the synapses are upstream's.
    let upstream = upstream_matrix(&meta, "adjacency_matrix");
    for pair in layers.windows(2) {
        for &src in &pair[0] {
            for &dest in &pair[1] {
                assert_eq!(
                    wiring.adjacency_matrix().get(src, dest) != 0,
                    upstream[src][dest] != 0,
                    "synapse {src} -> {dest}"
                );
            }
        }
    }
    let model = ncps::import::load_cfc::<B>(&path, &device()).unwrap();
    let (output, state) = model.forward(input(&meta), None);
    matches_upstream(output, &meta, "output");
    matches_upstream(state.hidden.unsqueeze_dim(0), &meta, "hx_out");
}

#[test]
fn an_upstream_pure_cfc_checkpoint_loads_alone() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pt/cfc_pure.pt");
    let (_, meta) = fixture("cfc_pure");
    let model = ncps::import::load_cfc::<B>(&path, &device()).unwrap();
    let (output, state) = model.forward(input(&meta), None);
    matches_upstream(output, &meta, "output");
    matches_upstream(state.hidden.unsqueeze_dim(0), &meta, "hx_out");
}

#[test]
fn configs_read_from_checkpoints_match_what_upstream_built() {
    let (dict, _) = fixture("cfc_mixed_proj");
    let config = CfCConfig::from_state_dict(&dict).unwrap();
    assert_eq!(config.input_size, 3);
    assert!(matches!(config.units, Units::Count(8)));
    assert_eq!(config.proj_size, Some(2));
    assert_eq!(config.cell.backbone_units, 16);
    assert_eq!(config.cell.backbone_layers, 1);
    assert!(config.mixed_memory);

    let (dict, _) = fixture("ltc_fully_connected");
    let config = LTCConfig::from_state_dict(&dict).unwrap();
    assert_eq!(config.input_size, 3);
    assert!(!config.mixed_memory);
    assert_eq!(config.cell.input_mapping, ncps::cells::Mapping::Affine);

    // Without an output mapping the motor count is not in the file.
    let mut dict = dict;
    dict.remove("rnn_cell.output_w");
    dict.remove("rnn_cell.output_b");
    let err = dict.wiring().unwrap_err().to_string();
    assert!(err.contains("wiring_with_output_dim"), "{err}");
    assert_eq!(dict.wiring_with_output_dim(2).unwrap().output_dim(), 2);
}
