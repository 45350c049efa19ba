//! The bad-input table of docs/troubleshooting.md: one test per row, each
//! asserting the error variant or the panic message that names the
//! argument. Nothing here may panic inside Burn with a shape message.

use burn::module::Module;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::Distribution;
use ncps::ConfigError;
use ncps::cells::{CfCCellOptions, LTCCellOptions};
use ncps::import::{ImportError, LoadStateDict, PtError, StateDict};
use ncps::rnn::{CfC, CfCConfig, LTC, LTCConfig, RnnState, Units};
use ncps::wirings::{
    AnyWiring, AutoNCP, FullyConnected, NCP, NCPArgs, Random, Wiring, WiringError,
};

use crate::common::{B, device, small_ncp_args as ncp_args};

fn ltc(input_size: usize) -> LTC<B> {
    LTCConfig::new(input_size, Units::from(8))
        .init(&device())
        .unwrap()
}

fn ltc_ncp(seed: u64) -> LTC<B> {
    let wiring = NCP::new(ncp_args()).unwrap().with_seed(seed);
    LTCConfig::new(3, Units::from(wiring))
        .with_mixed_memory(true)
        .init(&device())
        .unwrap()
}

fn cfc(input_size: usize) -> CfC<B> {
    CfCConfig::new(input_size, Units::from(8))
        .with_cell(CfCCellOptions::new().with_backbone_units(16))
        .init(&device())
        .unwrap()
}

fn invalid_argument(err: &WiringError) -> &'static str {
    match err {
        WiringError::InvalidArgument { argument, .. } => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn config_argument(err: &ConfigError) -> &'static str {
    match err {
        ConfigError::InvalidArgument { argument, .. } => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

// ------------------------------------------------------------- wirings

#[test]
fn zero_units() {
    let err = FullyConnected::new(0, 0).unwrap_err();
    assert_eq!(invalid_argument(&err), "units", "{err}");
    let err = Random::new(0, 0, 0.5).unwrap_err();
    assert_eq!(invalid_argument(&err), "units", "{err}");
    let err = CfCConfig::new(3, Units::from(0))
        .init::<B>(&device())
        .unwrap_err();
    assert!(err.to_string().contains("units"), "{err}");
}

#[test]
fn output_dim_larger_than_units() {
    let err = FullyConnected::new(4, 5).unwrap_err();
    assert_eq!(invalid_argument(&err), "output_dim", "{err}");
}

#[test]
fn auto_ncp_output_size_of_units_minus_2_or_more() {
    let err = AutoNCP::new(8, 6).unwrap_err();
    assert_eq!(invalid_argument(&err), "output_size", "{err}");
    assert!(err.to_string().contains("units - 3 = 5"), "{err}");
}

#[test]
fn sparsity_out_of_range() {
    let err = Random::new(8, 2, 1.0).unwrap_err();
    assert_eq!(invalid_argument(&err), "sparsity_level", "{err}");
    let err = Random::new(8, 2, -0.1).unwrap_err();
    assert_eq!(invalid_argument(&err), "sparsity_level", "{err}");
    let err = AutoNCP::new(16, 2)
        .unwrap()
        .with_sparsity_level(0.05)
        .unwrap_err();
    assert_eq!(invalid_argument(&err), "sparsity_level", "{err}");
    let err = Random::new(8, 2, f64::NAN).unwrap_err();
    assert_eq!(invalid_argument(&err), "sparsity_level", "{err}");
}

#[test]
fn ncp_fanout_larger_than_the_layer_it_draws_from() {
    for (args, argument) in [
        (
            NCPArgs {
                sensory_fanout: 5,
                ..ncp_args()
            },
            "sensory_fanout",
        ),
        (
            NCPArgs {
                inter_fanout: 4,
                ..ncp_args()
            },
            "inter_fanout",
        ),
        (
            NCPArgs {
                motor_fanin: 4,
                ..ncp_args()
            },
            "motor_fanin",
        ),
    ] {
        let err = NCP::new(args).unwrap_err();
        assert_eq!(invalid_argument(&err), argument, "{err}");
    }
}

#[test]
fn a_wiring_used_with_another_input_size() {
    let mut wiring = AutoNCP::new(10, 2).unwrap();
    wiring.build(2).unwrap();
    let err = LTCConfig::new(3, Units::from(wiring))
        .init::<B>(&device())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Wiring(WiringError::InputDimConflict { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("built with 2 inputs"), "{err}");
}

// ------------------------------------------------------- model inputs

/// Inputs of rank 1 or 4 do not compile (`forward` takes `Tensor<B, 3>`;
/// the `compile_fail` example on `ncps::rnn::Rnn` proves it); a rank that
/// can only be known at run time, a timespans tensor's, panics by name.
#[test]
#[should_panic(expected = "timespans has shape [2, 5, 1, 1], but [batch, time] = [2, 5]")]
fn timespans_of_rank_4() {
    let timespans = Tensor::<B, 4>::ones([2, 5, 1, 1], &device());
    cfc(3).forward_timed(Tensor::zeros([2, 5, 3], &device()), timespans, None);
}

#[test]
#[should_panic(expected = "timespans has shape [10], but [batch, time] = [2, 5]")]
fn timespans_of_rank_1() {
    let timespans = Tensor::<B, 1>::ones([10], &device());
    cfc(3).forward_timed(Tensor::zeros([2, 5, 3], &device()), timespans, None);
}

#[test]
#[should_panic(expected = "input has 4 features, but the model expects 3 (its input_size)")]
fn feature_size_mismatch() {
    ltc(3).forward(Tensor::zeros([2, 5, 4], &device()), None);
}

#[test]
#[should_panic(expected = "input has no time steps")]
fn an_empty_sequence() {
    cfc(3).forward(Tensor::zeros([2, 0, 3], &device()), None);
}

#[test]
#[should_panic(expected = "state.hidden has shape [2, 7], but [2, 8] was expected")]
fn initial_state_of_the_wrong_shape() {
    let state = RnnState::new(Tensor::zeros([2, 7], &device()));
    ltc(3).forward(Tensor::zeros([2, 5, 3], &device()), Some(state));
}

#[test]
#[should_panic(expected = "state.memory is missing: a mixed-memory model needs (hidden, memory)")]
fn mixed_memory_state_missing_its_memory() {
    let state = RnnState::new(Tensor::zeros([2, 9], &device()));
    ltc_ncp(1).forward(Tensor::zeros([2, 5, 3], &device()), Some(state));
}

#[test]
#[should_panic(expected = "timespans has shape [5, 2], but [batch, time] = [2, 5]")]
fn timespans_of_the_wrong_shape() {
    let timespans = Tensor::<B, 2>::ones([5, 2], &device());
    ltc(3).forward_timed(Tensor::zeros([2, 5, 3], &device()), timespans, None);
}

/// An elapsed time of 0 is valid: no time passes, and the ODE's answer is
/// the state itself (upstream divides by it and gives NaN).
#[test]
fn zero_timespans_leave_the_ltc_state_unchanged() {
    let input = Tensor::<B, 3>::random([2, 4, 3], Distribution::Default, &device());
    let start = Tensor::<B, 2>::random([2, 8], Distribution::Uniform(-1.0, 1.0), &device());
    for fused in [true, false] {
        let model = LTCConfig::new(3, Units::from(8))
            .with_cell(LTCCellOptions::new().with_fused(fused))
            .init::<B>(&device())
            .unwrap();
        let (_, end) = model.forward_timed(
            input.clone(),
            Tensor::<B, 2>::zeros([2, 4], &device()),
            Some(RnnState::new(start.clone())),
        );
        end.hidden
            .into_data()
            .assert_approx_eq::<f32>(&start.to_data(), burn::tensor::Tolerance::absolute(1e-6));
    }
    // A CfC's time gate at t = 0 is its bias: finite, not an error.
    let (output, _) = cfc(3).forward_timed(input, Tensor::<B, 2>::zeros([2, 4], &device()), None);
    assert!(output.into_data().iter::<f32>().all(f32::is_finite));
}

#[test]
#[should_panic(expected = "timespans must be finite and >= 0")]
fn negative_timespans() {
    let timespans = Tensor::<B, 2>::from_floats([[1.0, 1.0], [1.0, -0.5]], &device());
    ltc(3).forward_timed(Tensor::zeros([2, 2, 3], &device()), timespans, None);
}

#[test]
#[should_panic(
    expected = "timespans must be finite and >= 0 (elapsed times; 0 means no time passes), but element 1 (flat index) is NaN"
)]
fn nan_timespans() {
    let timespans = Tensor::<B, 2>::from_floats([[1.0, f32::NAN]], &device());
    cfc(3).forward_timed(Tensor::zeros([1, 2, 3], &device()), timespans, None);
}

#[test]
#[should_panic(expected = "timespans must be finite and >= 0")]
fn infinite_timespans() {
    let timespans = Tensor::<B, 2>::from_floats([[f32::INFINITY, 1.0]], &device());
    ltc(3).forward_timed(Tensor::zeros([1, 2, 3], &device()), timespans, None);
}

#[test]
#[should_panic(expected = "elapsed must be finite and >= 0")]
fn a_negative_elapsed_time_in_a_control_loop() {
    let model = cfc(3);
    let mut policy = model.stateful();
    policy.step_elapsed(
        Tensor::zeros([1, 3], &device()),
        Tensor::from_floats([-1.0], &device()),
    );
}

/// NaN inputs are data, not a shape error: they propagate as in torch,
/// but only into the samples that hold them.
#[test]
fn nan_inputs_stay_in_their_own_sample() {
    for model in [ltc(3), ltc_ncp(3)] {
        let mut input = Tensor::<B, 3>::ones([2, 3, 3], &device());
        input = input.slice_assign(
            [0..1, 1..2, 0..1],
            Tensor::full([1, 1, 1], f32::NAN, &device()),
        );
        let (output, _) = model.forward(input, None);
        let rows: Vec<f32> = output.into_data().iter::<f32>().collect();
        let (first, second) = rows.split_at(rows.len() / 2);
        assert!(first.iter().any(|v| v.is_nan()));
        assert!(second.iter().all(|v| v.is_finite()), "{second:?}");
    }
}

// -------------------------------------------------------------- configs

#[test]
fn cfc_backbone_arguments_with_a_wiring() {
    let wiring = || Units::from(AutoNCP::new(10, 2).unwrap());
    for (config, argument) in [
        (
            CfCConfig::new(3, wiring()).with_cell(CfCCellOptions::new().with_backbone_units(16)),
            "backbone_units",
        ),
        (
            CfCConfig::new(3, wiring()).with_cell(CfCCellOptions::new().with_backbone_layers(2)),
            "backbone_layers",
        ),
        (
            CfCConfig::new(3, wiring()).with_cell(CfCCellOptions::new().with_backbone_dropout(0.1)),
            "backbone_dropout",
        ),
    ] {
        let err = config.init::<B>(&device()).unwrap_err();
        assert!(
            matches!(err, ConfigError::BackboneWithWiring { argument: a } if a == argument),
            "{err:?}"
        );
    }
}

#[test]
fn proj_size_0() {
    let err = CfCConfig::new(3, Units::from(8))
        .with_proj_size(Some(0))
        .init::<B>(&device())
        .unwrap_err();
    assert_eq!(config_argument(&err), "proj_size", "{err}");
}

#[test]
fn ode_unfolds_0() {
    let err = LTCConfig::new(3, Units::from(8))
        .with_cell(LTCCellOptions::new().with_ode_unfolds(0))
        .init::<B>(&device())
        .unwrap_err();
    assert_eq!(config_argument(&err), "ode_unfolds", "{err}");
}

// --------------------------------------------------------- weight files

/// One tensor of a safetensors file: name, dtype, shape, little-endian bytes.
type Entry = (String, &'static str, Vec<usize>, Vec<u8>);

/// A safetensors file of `model`'s upstream state dict, with `edit`
/// applied to its tensors.
fn safetensors_of(model: &LTC<B>, edit: impl FnOnce(&mut Vec<Entry>)) -> Vec<u8> {
    let dict = StateDict::from_model(model);
    let mut tensors: Vec<Entry> = dict
        .names()
        .map(|name| {
            let bytes = dict
                .values(name)
                .unwrap()
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (
                name.to_string(),
                "F32",
                dict.shape(name).unwrap().to_vec(),
                bytes,
            )
        })
        .collect();
    edit(&mut tensors);
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(&bytes);
        header.insert(
            name,
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    file
}

/// The same with only `rnn_cell.gleak` edited.
fn with_gleak(model: &LTC<B>, edit: impl FnOnce(&mut Entry)) -> Vec<u8> {
    safetensors_of(model, |tensors| {
        edit(
            tensors
                .iter_mut()
                .find(|(name, ..)| name == "rnn_cell.gleak")
                .unwrap(),
        )
    })
}

fn load(model: LTC<B>, bytes: Vec<u8>) -> ImportError {
    let dict = StateDict::from_safetensors_bytes(bytes).expect("the file parses");
    model.load_state_dict(&dict).unwrap_err()
}

#[test]
fn a_pytorch_file_with_a_missing_tensor() {
    let model = ltc(3);
    let bytes = safetensors_of(&model, |t| t.retain(|(name, ..)| name != "rnn_cell.gleak"));
    let err = load(model, bytes);
    assert!(
        matches!(&err, ImportError::Missing { name, .. } if name == "rnn_cell.gleak"),
        "{err:?}"
    );
}

#[test]
fn a_pytorch_file_with_an_extra_tensor() {
    let model = ltc(3);
    let bytes = safetensors_of(&model, |t| {
        t.push(("rnn_cell.extra".into(), "F32", vec![2], vec![0; 8]))
    });
    let err = load(model, bytes);
    assert!(
        matches!(&err, ImportError::Unexpected { names } if names == &["rnn_cell.extra"]),
        "{err:?}"
    );
}

#[test]
fn a_pytorch_file_with_a_wrong_shape() {
    let model = ltc(3);
    let bytes = with_gleak(&model, |gleak| gleak.2 = vec![4, 2]);
    let err = load(model, bytes);
    assert!(
        matches!(&err, ImportError::Shape { name, found, .. } if name == "rnn_cell.gleak" && found == &[4, 2]),
        "{err:?}"
    );
}

#[test]
fn a_pytorch_file_with_a_wrong_dtype() {
    let model = ltc(3);
    let bytes = with_gleak(&model, |gleak| gleak.1 = "I32");
    let err = load(model, bytes);
    assert!(
        matches!(&err, ImportError::Dtype { name, .. } if name == "rnn_cell.gleak"),
        "{err:?}"
    );
    assert!(err.to_string().contains("a float tensor"), "{err}");
}

#[test]
fn junk_weight_files() {
    let err = StateDict::from_safetensors_bytes(b"not a safetensors file".to_vec()).unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err:?}");
    let err = StateDict::from_pt_bytes(b"PK\x03\x04 junk").unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Pt {
                source: PtError::NotAnArchive { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

// ------------------------------------------------------- wiring files

fn wiring_json() -> serde_json::Value {
    let mut wiring = FullyConnected::new(4, 2).unwrap();
    wiring.build(3).unwrap();
    serde_json::from_str(&AnyWiring::from(wiring).to_json()).unwrap()
}

#[test]
fn a_wiring_json_with_a_non_square_matrix() {
    let mut json = wiring_json();
    json["adjacency_matrix"][2].as_array_mut().unwrap().pop();
    let err = AnyWiring::from_json(&json.to_string()).unwrap_err();
    assert!(
        err.to_string().contains("adjacency_matrix must be 4x4"),
        "{err}"
    );
}

#[test]
fn a_wiring_json_with_entries_outside_minus_1_0_1() {
    let mut json = wiring_json();
    json["adjacency_matrix"][1][3] = 3.into();
    let err = AnyWiring::from_json(&json.to_string()).unwrap_err();
    assert!(
        err.to_string().contains("adjacency_matrix[1][3] = 3"),
        "{err}"
    );
}

#[test]
fn a_wiring_json_with_motor_neurons_out_of_range() {
    let mut json = wiring_json();
    json["output_dim"] = 9.into();
    let err = AnyWiring::from_json(&json.to_string()).unwrap_err();
    assert!(err.to_string().contains("output_dim"), "{err}");
}

// ------------------------------------------------------------- records

/// A model saved as a Burn record with its wiring beside it loads back
/// bit for bit; a record loaded into a model with other synapses is
/// refused.
#[test]
fn a_saved_model_and_wiring_load_back_bit_identical() {
    let dir = std::env::temp_dir().join(format!("ncps-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = ltc_ncp(11);
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    model
        .clone()
        .save_file(dir.join("model"), &recorder)
        .unwrap();
    AnyWiring::from(NCP::new(ncp_args()).unwrap().with_seed(11))
        .save(dir.join("wiring.json"))
        .unwrap();

    let wiring = AnyWiring::load(dir.join("wiring.json")).unwrap();
    let restored = LTCConfig::new(3, Units::Wiring(wiring))
        .with_mixed_memory(true)
        .init::<B>(&device())
        .unwrap()
        .load_file(dir.join("model"), &recorder, &device())
        .unwrap();
    let input = Tensor::<B, 3>::random([2, 5, 3], Distribution::Default, &device());
    let (a, _) = model.forward(input.clone(), None);
    let (b, _) = restored.forward(input, None);
    assert_eq!(a.into_data(), b.into_data());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
#[should_panic(
    expected = "the record was saved from a model with another wiring (the same shape, other synapses)"
)]
fn a_record_loaded_into_a_model_with_another_wiring() {
    let record = ltc_ncp(11).into_record();
    ltc_ncp(12).load_record(record);
}

#[test]
#[should_panic(expected = "the record was saved from a model with another wiring")]
fn a_cfc_record_loaded_into_a_model_with_another_wiring() {
    let wired = |seed| {
        CfCConfig::new(
            3,
            Units::from(NCP::new(ncp_args()).unwrap().with_seed(seed)),
        )
        .init::<B>(&device())
        .unwrap()
    };
    wired(11).load_record(wired(12).into_record());
}

// ------------------------------------------------ padded batches

fn lengths(values: &[i64]) -> Tensor<B, 1, Int> {
    Tensor::from_data(
        burn::tensor::TensorData::new(values.to_vec(), [values.len()]),
        &device(),
    )
}

#[test]
#[should_panic(expected = "lengths[1] is 0, but a sample's length must be in 1..=5")]
fn a_length_of_zero() {
    cfc(3).forward_padded(
        Tensor::zeros([2, 5, 3], &device()),
        lengths(&[5, 0]),
        None,
        None,
    );
}

#[test]
#[should_panic(expected = "lengths[0] is 6, but a sample's length must be in 1..=5")]
fn a_length_beyond_the_time_axis() {
    ltc(3).forward_padded(
        Tensor::zeros([2, 5, 3], &device()),
        lengths(&[6, 2]),
        None,
        None,
    );
}

#[test]
#[should_panic(expected = "lengths has shape [3], but [2] was expected")]
fn lengths_of_the_wrong_shape() {
    cfc(3).forward_padded(
        Tensor::zeros([2, 5, 3], &device()),
        lengths(&[5, 2, 1]),
        None,
        None,
    );
}

#[test]
#[should_panic(expected = "lengths[0] is 9, but a sample's length must be in 1..=4")]
fn lengths_are_checked_in_the_time_major_layout_too() {
    let model = CfCConfig::new(3, Units::from(8))
        .with_batch_first(false)
        .init::<B>(&device())
        .unwrap();
    // [time 4, batch 2, features 3]
    model.forward_last(
        Tensor::zeros([4, 2, 3], &device()),
        None,
        Some(lengths(&[9, 1])),
        None,
    );
}

#[test]
#[should_panic(expected = "valid has shape [3], but [2] was expected")]
fn a_step_mask_of_the_wrong_shape() {
    let mut policy = cfc(3).into_stateful();
    let valid = Tensor::<B, 1, Bool>::from_bool([true, false, true].into(), &device());
    policy.step_masked(
        Tensor::zeros([2, 3], &device()),
        Tensor::ones([2], &device()),
        valid,
    );
}

#[test]
fn bidirectional_pairs_that_do_not_fit_are_errors_naming_the_setting() {
    use ncps::rnn::{Bidirectional, Merge};
    fn error<T>(result: Result<T, ConfigError>) -> String {
        result.err().expect("an error").to_string()
    }
    let message = error(Bidirectional::new(cfc(3), cfc(4), Merge::Concat));
    assert!(message.contains("input_size"), "{message}");
    let time_major = CfCConfig::new(3, Units::from(8))
        .with_batch_first(false)
        .init::<B>(&device())
        .unwrap();
    let message = error(Bidirectional::new(cfc(3), time_major, Merge::Concat));
    assert!(message.contains("batch_first"), "{message}");
    let reversed = CfCConfig::new(3, Units::from(8))
        .with_go_backwards(true)
        .init::<B>(&device())
        .unwrap();
    let message = error(Bidirectional::new(cfc(3), reversed, Merge::Concat));
    assert!(message.contains("go_backwards"), "{message}");
    let narrow = CfCConfig::new(3, Units::from(5))
        .init::<B>(&device())
        .unwrap();
    let message = error(Bidirectional::new(cfc(3), narrow, Merge::Sum));
    assert!(message.contains("output_size"), "{message}");
}
