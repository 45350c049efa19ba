//! Parity with upstream Python ncps 1.0.1 on the fixtures it produced.
//!
//! Two fixture sets, each read case by case: the model is rebuilt from the
//! case's arguments and wiring matrices, upstream's weights are loaded, and
//! the forward pass and every gradient of `sum(output²) + sum(hx_out²)` are
//! compared with the expected numbers, and the trainable parameter count
//! with upstream's:
//! - `tests/fixtures/reference`: upstream's float32 run; outputs within
//!   1e-5, gradients within 1e-4.
//! - `tests/fixtures/reference-long`: longer sequences whose expected values
//!   upstream computed in float64; a float32 port lands within 1e-5 for
//!   outputs AND gradients (upstream's own float32 run: 6.7e-6).
//!
//! `cargo test --release --test parity -- --nocapture` prints every case's
//! worst errors.

mod common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use ncps::cells::{Activation, CfCCellOptions, CfCMode, LTCCellOptions, Mapping, RecurrentCell};
use ncps::import::{LoadStateDict, StateDict, UpstreamParams};
use ncps::rnn::{AnyCfCCell, CfCConfig, LTCConfig, Rnn, RnnState, Units};
use ncps::wirings::AnyWiring;
use serde_json::Value;

use common::{AD as B, device, values, worst_error};

/// How close one fixture set must be matched.
#[derive(Clone, Copy)]
struct Tolerance {
    forward: f64,
    gradient: f64,
}

/// Upstream's float32 numbers: two float32 programs agree to this.
const FLOAT32_REFERENCE: Tolerance = Tolerance {
    forward: 1e-5,
    gradient: 1e-4,
};

/// Float64 truth: a float32 program lands within 1e-5 of it.
const FLOAT64_TRUTH: Tolerance = Tolerance {
    forward: 1e-5,
    gradient: 1e-5,
};

struct Case {
    name: String,
    meta: Value,
    tensors: StateDict,
}

impl Case {
    fn arg(&self, key: &str) -> Option<&Value> {
        self.meta["args"].get(key)
    }

    fn tensor<const D: usize>(
        &self,
        name: &str,
        device: &burn::tensor::Device<B>,
    ) -> Option<Tensor<B, D>> {
        let shape = self.tensors.shape(name)?;
        let shape: [usize; D] = shape
            .try_into()
            .unwrap_or_else(|_| panic!("{name} is not {D}-D"));
        let data = burn::tensor::TensorData::new(self.tensors.values(name)?, shape);
        Some(Tensor::from_data(data, device))
    }

    fn expected(&self, name: &str) -> Option<Vec<f32>> {
        self.tensors.values(name)
    }
}

fn mapping(value: Option<&Value>) -> Mapping {
    match value {
        None => Mapping::Affine,
        Some(Value::Null) => Mapping::Identity,
        Some(v) => match v.as_str().unwrap() {
            "affine" => Mapping::Affine,
            "linear" => Mapping::Linear,
            other => panic!("unknown mapping {other}"),
        },
    }
}

fn units(case: &Case) -> Units {
    match &case.meta["wiring"] {
        Value::Null => Units::Count(case.arg("units").unwrap().as_u64().unwrap() as usize),
        wiring => {
            Units::Wiring(AnyWiring::from_json(&wiring.to_string()).expect("fixture wiring loads"))
        }
    }
}

fn flag(case: &Case, key: &str, default: bool) -> bool {
    case.arg(key).map_or(default, |v| v.as_bool().unwrap())
}

fn size(case: &Case, key: &str) -> Option<usize> {
    case.arg(key).and_then(Value::as_u64).map(|v| v as usize)
}

fn ltc(
    case: &Case,
    device: &burn::tensor::Device<B>,
    path: LtcPath,
) -> Rnn<B, ncps::cells::LTCCell<B>> {
    let mut cell = LTCCellOptions::new()
        .with_fused(path == LtcPath::Fused)
        .with_input_mapping(mapping(case.arg("input_mapping")))
        .with_output_mapping(mapping(case.arg("output_mapping")));
    if let Some(unfolds) = size(case, "ode_unfolds") {
        cell = cell.with_ode_unfolds(unfolds);
    }
    if let Some(epsilon) = case.arg("epsilon").and_then(Value::as_f64) {
        cell = cell.with_epsilon(epsilon);
    }
    let config = LTCConfig::new(size(case, "input_size").unwrap(), units(case))
        .with_cell(cell)
        .with_return_sequences(flag(case, "return_sequences", true))
        .with_batch_first(flag(case, "batch_first", true))
        .with_mixed_memory(flag(case, "mixed_memory", false))
        .with_implicit_param_constraints(flag(case, "implicit_param_constraints", true));
    config.init(device).expect("valid LTC config")
}

fn cfc(case: &Case, device: &burn::tensor::Device<B>, path: LtcPath) -> Rnn<B, AnyCfCCell<B>> {
    let mode = match case.arg("mode").and_then(Value::as_str) {
        None | Some("default") => CfCMode::Default,
        Some("pure") => CfCMode::Pure,
        Some("no_gate") => CfCMode::NoGate,
        Some(other) => panic!("unknown mode {other}"),
    };
    let activation = match case.arg("activation").and_then(Value::as_str) {
        None | Some("lecun_tanh") => Activation::LecunTanh,
        Some("silu") => Activation::Silu,
        Some("relu") => Activation::Relu,
        Some("tanh") => Activation::Tanh,
        Some("gelu") => Activation::Gelu,
        Some(other) => panic!("unknown activation {other}"),
    };
    let mut cell = CfCCellOptions::new()
        .with_mode(mode)
        .with_activation(activation)
        .with_fused(path == LtcPath::Fused);
    if let Some(units) = size(case, "backbone_units") {
        cell = cell.with_backbone_units(units);
    }
    if let Some(layers) = size(case, "backbone_layers") {
        cell = cell.with_backbone_layers(layers);
    }
    if let Some(dropout) = case.arg("backbone_dropout").and_then(Value::as_f64) {
        cell = cell.with_backbone_dropout(dropout);
    }
    let mut model = CfCConfig::new(size(case, "input_size").unwrap(), units(case))
        .with_proj_size(size(case, "proj_size"))
        .with_return_sequences(flag(case, "return_sequences", true))
        .with_batch_first(flag(case, "batch_first", true))
        .with_mixed_memory(flag(case, "mixed_memory", false))
        .with_cell(cell)
        .init(device)
        .expect("valid CfC config");
    // Upstream ran in eval mode: no dropout.
    if let AnyCfCCell::Dense(cell) = &mut model.cell {
        cell.dropout.prob = 0.0;
    }
    model
}

/// Worst errors of one case, or why it could not run.
struct Outcome {
    line: String,
    passed: bool,
}

fn run_case<C>(case: &Case, model: Rnn<B, C>, tolerance: Tolerance) -> Outcome
where
    C: RecurrentCell<B> + Module<B> + UpstreamParams<B> + Clone,
    Rnn<B, C>: Module<B> + Clone,
{
    let device = device();
    let model = model
        .load_state_dict(&case.tensors.clone().strip_prefix("param."))
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let batchless = case.meta["batchless"].as_bool().unwrap_or(false);

    let (output, hidden, memory, loss) = if batchless {
        let state = case.tensor::<1>("hx", &device).map(|hx| RnnState {
            hidden: hx,
            memory: case.tensor::<1>("cx", &device),
        });
        let (out, state) = model.forward_unbatched(
            case.tensor::<2>("input", &device).unwrap(),
            case.tensor::<1>("timespans", &device),
            state,
        );
        let loss = out.clone().powf_scalar(2.0).sum() + state.hidden.clone().powf_scalar(2.0).sum();
        (
            values(out),
            values(state.hidden),
            state.memory.map(values),
            loss,
        )
    } else {
        let state = case.tensor::<2>("hx", &device).map(|hx| RnnState {
            hidden: hx,
            memory: case.tensor::<2>("cx", &device),
        });
        let input = case.tensor::<3>("input", &device).unwrap();
        let (out, state) = match case.tensor::<2>("timespans", &device) {
            Some(t) => model.forward_timed(input, t, state),
            None => model.forward(input, state),
        };
        let loss = out.clone().powf_scalar(2.0).sum() + state.hidden.clone().powf_scalar(2.0).sum();
        (
            values(out),
            values(state.hidden),
            state.memory.map(values),
            loss,
        )
    };
    let gradients = StateDict::gradients(&model, &loss.backward());

    let mut problems = Vec::new();
    let out_err = worst_error(&output, &case.expected("output").unwrap());
    let hx_err = worst_error(&hidden, &case.expected("hx_out").unwrap());
    let cx_err = match (memory, case.expected("cx_out")) {
        (Some(ours), Some(theirs)) => worst_error(&ours, &theirs),
        (None, None) => 0.0,
        (ours, theirs) => {
            problems.push(format!(
                "cx_out: ours {} / upstream {}",
                ours.is_some(),
                theirs.is_some()
            ));
            f64::INFINITY
        }
    };
    for (what, err) in [("output", out_err), ("hx_out", hx_err), ("cx_out", cx_err)] {
        if err > tolerance.forward {
            problems.push(format!("{what} error {err:.2e}"));
        }
    }

    let expected_grads: Vec<&str> = case
        .tensors
        .names()
        .filter_map(|n| n.strip_prefix("grad."))
        .collect();
    let mut grad_err: f64 = 0.0;
    for name in &expected_grads {
        match gradients.values(name) {
            Some(ours) => {
                let err = worst_error(&ours, &case.expected(&format!("grad.{name}")).unwrap());
                grad_err = grad_err.max(err);
                if err > tolerance.gradient {
                    problems.push(format!("grad.{name} error {err:.2e}"));
                }
            }
            None => problems.push(format!("no gradient for {name}")),
        }
    }
    if gradients.names().count() != expected_grads.len() {
        problems.push(format!(
            "{} gradients, upstream has {}",
            gradients.names().count(),
            expected_grads.len()
        ));
    }
    let params = model.num_params();
    let upstream_params = case.meta["trainable_parameters"].as_u64().unwrap() as usize;
    if params != upstream_params {
        problems.push(format!(
            "{params} trainable parameters, upstream {upstream_params}"
        ));
    }
    let passed = problems.is_empty();
    let line = format!(
        "{:<32} output {out_err:.1e}  hx {hx_err:.1e}  cx {cx_err:.1e}  grads {grad_err:.1e}  params {params}  {}",
        case.name,
        if passed {
            "ok".to_string()
        } else {
            format!("FAIL: {}", problems.join("; "))
        }
    );
    Outcome { line, passed }
}

fn fixtures(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set)
}

/// Which path runs: the fused kernels (the LTC's sparse step, the dense
/// CfC's whole sequence) or the tensor ops every backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LtcPath {
    Fused,
    Reference,
}

/// Runs every case of `dir`, printing one line per case; panics unless all pass.
fn check_set(dir: &Path, tolerance: Tolerance, path: LtcPath) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read fixtures in {}: {e}", dir.display()))
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json")
                .then(|| path.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    let device = device();
    let mut passed = 0;
    for name in &names {
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let tensors = StateDict::read(dir.join(format!("{name}.safetensors"))).unwrap();
        let case = Case {
            name: name.clone(),
            meta,
            tensors,
        };
        let outcome = match case.meta["model"].as_str().unwrap() {
            "LTC" => run_case(&case, ltc(&case, &device, path), tolerance),
            "CfC" => run_case(&case, cfc(&case, &device, path), tolerance),
            other => panic!("{name}: unknown model {other}"),
        };
        println!("{}", outcome.line);
        passed += usize::from(outcome.passed);
    }
    println!(
        "parity {} ({path:?} path): {passed}/{} cases",
        dir.display(),
        names.len()
    );
    assert!(!names.is_empty(), "no fixtures in {}", dir.display());
    assert_eq!(passed, names.len(), "parity failed in {}", dir.display());
}

#[test]
fn parity_with_upstream_float32() {
    check_set(&fixtures("reference"), FLOAT32_REFERENCE, LtcPath::Fused);
}

#[test]
fn parity_with_float64_truth_on_long_sequences() {
    check_set(&fixtures("reference-long"), FLOAT64_TRUTH, LtcPath::Fused);
}

#[test]
fn reference_path_parity_with_upstream_float32() {
    check_set(
        &fixtures("reference"),
        FLOAT32_REFERENCE,
        LtcPath::Reference,
    );
}

#[test]
fn reference_path_parity_with_float64_truth_on_long_sequences() {
    check_set(
        &fixtures("reference-long"),
        FLOAT64_TRUTH,
        LtcPath::Reference,
    );
}
