//! `ncps::export`: the generated Rust (compiled with `rustc` as a
//! `#![no_std]` library and as a host harness) and C (compiled with the
//! system `cc`, sanitizers on) run 1,000 steps of random inputs and
//! irregular elapsed times and must give the Burn model's outputs and final
//! state within 1e-5 (or, where a rollout amplifies rounding, be as close to
//! the float64 truth as Burn's float32 is), and each other's bit for bit;
//! neither may allocate, call into the C library or hold global mutable
//! state.
//! Then the export to Python ncps: its files read back through
//! `ncps::import` into a model that computes bit-identical outputs, and the
//! errors of what cannot be exported.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{B, assert_close, device, values, worst_error};
use burn::backend::NdArray;
use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use ncps::cells::{
    Activation, CfCCellOptions, CfCMode, HeadActivation, LTCCellOptions, Mapping, RecurrentCell,
};
use ncps::export::{Export, ExportError, StepFunction, UpstreamConfig};
use ncps::import::{LoadStateDict, StateDict};
use ncps::rnn::{CfC, CfCConfig, LTC, LTCConfig, LstmOutput, Rnn, Units};
use ncps::wirings::{AnyWiring, AutoNCP, FullyConnected, Wiring};

/// The float64 truth.
type B64 = NdArray<f64>;

const STEPS: usize = 1000;
const TOLERANCE: f64 = 1e-5;

/// A fresh folder for one test's files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ncps-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a command, panicking with its output when it fails.
fn run(command: &mut Command, stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Random inputs in [-2, 2] and elapsed times in [0.001, 2.5] (reproducible),
/// as the harnesses read them: per step the inputs, then the elapsed time.
fn data(features: usize) -> (Vec<f32>, Vec<f32>) {
    let mut seed = 0x9e37_79b9_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as f32 / u32::MAX as f32
    };
    let inputs = (0..STEPS * features).map(|_| 4.0 * next() - 2.0).collect();
    let elapsed = (0..STEPS).map(|_| 0.001 + 2.499 * next()).collect();
    (inputs, elapsed)
}

fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The harness's stdin: per step the inputs, then the elapsed time.
fn interleave(inputs: &[f32], elapsed: &[f32], features: usize) -> Vec<u8> {
    let records: Vec<f32> = inputs
        .chunks(features)
        .zip(elapsed)
        .flat_map(|(x, &t)| x.iter().copied().chain([t]))
        .collect();
    to_bytes(&records)
}

const RUST_HARNESS: &str = r#"
#[path = "model.rs"]
mod model;
use std::io::{Read, Write};

fn main() {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes).unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut state = [1.0f32; model::STATE];
    model::reset(&mut state);
    let mut out = Vec::new();
    for record in floats.chunks_exact(model::INPUTS + 1) {
        let input: [f32; model::INPUTS] = record[..model::INPUTS].try_into().unwrap();
        let mut output = [0.0f32; model::OUTPUTS];
        model::step(&mut state, &input, record[model::INPUTS], &mut output);
        out.extend(output.iter().flat_map(|v| v.to_le_bytes()));
    }
    out.extend(state.iter().flat_map(|v| v.to_le_bytes()));
    std::io::stdout().write_all(&out).unwrap();
}
"#;

const C_HARNESS: &str = r#"
#include <stdio.h>
#include "model.h"

int main(void)
{
    float record[MODEL_INPUTS + 1];
    float state[MODEL_STATE];
    float output[MODEL_OUTPUTS];
    int i;
    for (i = 0; i < MODEL_STATE; i++) {
        state[i] = 1.0f;
    }
    model_reset(state);
    while (fread(record, sizeof(float), MODEL_INPUTS + 1, stdin) == MODEL_INPUTS + 1) {
        model_step(state, record, record[MODEL_INPUTS], output);
        fwrite(output, sizeof(float), MODEL_OUTPUTS, stdout);
    }
    fwrite(state, sizeof(float), MODEL_STATE, stdout);
    return 0;
}
"#;

/// Sections an object file keeps writable data in (`.data.rel.ro` is
/// read-only once relocated).
fn writable_sections(object: &Path) -> Vec<String> {
    let listing = run(Command::new("readelf").args(["-S", "-W"]).arg(object), &[]);
    String::from_utf8_lossy(&listing)
        .lines()
        .filter_map(|line| {
            let name = line.split(']').nth(1)?.split_whitespace().next()?;
            let writable = (name.starts_with(".data") && !name.starts_with(".data.rel.ro"))
                || name.starts_with(".bss");
            let size = line.split(']').nth(1)?.split_whitespace().nth(4)?;
            (writable && u64::from_str_radix(size, 16).ok()? > 0).then(|| name.to_string())
        })
        .collect()
}

/// Symbols an object file needs from elsewhere.
fn undefined_symbols(object: &Path) -> Vec<String> {
    let listing = run(Command::new("nm").args(["-u"]).arg(object), &[]);
    String::from_utf8_lossy(&listing)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// Compiles the generated Rust as a `#![no_std]` library (no `alloc`, so
/// no allocation can compile) and checks its object file.
fn check_no_std(dir: &Path) {
    std::fs::write(
        dir.join("lib.rs"),
        "#![no_std]\n#![forbid(unsafe_code)]\n#[path = \"model.rs\"]\npub mod model;\n",
    )
    .unwrap();
    let object = dir.join("model_no_std.o");
    run(
        Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "lib",
                "-C",
                "panic=abort",
            ])
            .args(["-C", "opt-level=2", "-D", "warnings", "--emit", "obj", "-o"])
            .arg(&object)
            .arg(dir.join("lib.rs")),
        &[],
    );
    assert_eq!(
        writable_sections(&object),
        Vec::<String>::new(),
        "Rust: global mutable state"
    );
    let undefined = undefined_symbols(&object);
    assert!(
        !undefined.iter().any(|s| s.contains("alloc")),
        "Rust: the step allocates: {undefined:?}"
    );
}

/// Compiles the generated Rust with the harness and runs it.
fn run_rust(step: &StepFunction, dir: &Path, stdin: &[u8]) -> Vec<f32> {
    let source = step.to_rust();
    // `check_no_std` proves it (no `alloc` crate, `unsafe` forbidden); this
    // names the culprit.
    for token in [
        "alloc::",
        "extern crate",
        "Vec<",
        "vec!",
        "Box<",
        "static mut",
        "std::",
    ] {
        assert!(!source.contains(token), "generated Rust holds `{token}`");
    }
    step.save_rust(dir.join("model.rs")).unwrap();
    check_no_std(dir);
    std::fs::write(dir.join("harness.rs"), RUST_HARNESS).unwrap();
    let binary = dir.join("harness_rs");
    run(
        Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "-C",
                "opt-level=2",
                "-D",
                "warnings",
                "-o",
            ])
            .arg(&binary)
            .arg(dir.join("harness.rs")),
        &[],
    );
    from_bytes(&run(&mut Command::new(&binary), stdin))
}

/// Compiles the generated C (strict C99, warnings as errors, address and
/// undefined-behaviour sanitizers) with the harness and runs it.
fn run_c(step: &StepFunction, dir: &Path, stdin: &[u8]) -> Vec<f32> {
    step.save_c(dir.join("model.c"), "model").unwrap();
    let source = std::fs::read_to_string(dir.join("model.c")).unwrap();
    for token in ["malloc", "calloc", "realloc", "free("] {
        assert!(!source.contains(token), "generated C holds `{token}`");
    }
    let object = dir.join("model_c.o");
    let strict = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"];
    run(
        Command::new("cc")
            .args(strict)
            .args(["-O2", "-c", "-o"])
            .arg(&object)
            .arg(dir.join("model.c")),
        &[],
    );
    assert_eq!(
        writable_sections(&object),
        Vec::<String>::new(),
        "C: global mutable state"
    );
    // What a freestanding GCC may call on its own (copy loops) is allowed.
    let allowed = ["memcpy", "memset", "memmove"];
    let undefined = undefined_symbols(&object);
    assert!(
        undefined.iter().all(|s| allowed.contains(&s.as_str())),
        "C: calls into the C library: {undefined:?}"
    );
    std::fs::write(dir.join("harness.c"), C_HARNESS).unwrap();
    let binary = dir.join("harness_c");
    run(
        Command::new("cc")
            .args(strict)
            .args([
                "-O2",
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
            ])
            .arg("-o")
            .arg(&binary)
            .arg(dir.join("harness.c"))
            .arg(dir.join("model.c"))
            .arg("-lm"),
        &[],
    );
    from_bytes(&run(&mut Command::new(&binary), stdin))
}

/// The same model in float64: `model`'s weights loaded into `fresh` (built
/// from the same configuration) through a full-precision record.
fn widen<M: Module<B>, W: Module<B64>>(model: &M, fresh: W) -> W {
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = recorder.record(model.clone().into_record(), ()).unwrap();
    fresh.load_record(recorder.load(bytes, &Default::default()).unwrap())
}

/// Exports a model to Rust and C, runs both 1,000 steps and compares them
/// with the Burn model, its float64 copy `wide` and each other; returns the
/// worst error against the Burn model.
///
/// A rollout of a random recurrent model can amplify rounding: two float32
/// computations of the same steps (Burn's and the generated one) may drift
/// apart by more than 1e-5 after hundreds of steps although each is as close
/// to the exact result as the other. So the generated step must be within
/// 1e-5 of the Burn model, or, where Burn's own float32 is further than that
/// from the float64 truth, no further from the truth than four times Burn's
/// (in 60 runs of the paper's mixed model the ratio reached 2.45).
fn check<C: RecurrentCell<B>, W: RecurrentCell<B64>>(
    name: &str,
    model: &Rnn<B, C>,
    wide: &Rnn<B64, W>,
    step: StepFunction,
) -> f64 {
    let dir = scratch_dir(name);
    let features = model.input_size();
    assert_eq!(step.inputs(), features);
    assert_eq!(step.outputs(), model.output_size());
    let (inputs, elapsed) = data(features);
    let expected = run_case(model, &inputs, &elapsed);
    let truth = run_case(wide, &inputs, &elapsed);
    let stdin = interleave(&inputs, &elapsed, features);
    let rust = run_rust(&step, &dir, &stdin);
    let c = run_c(&step, &dir, &stdin);
    // The C is the Rust runtime's line-by-line translation.
    if let Some(at) = (0..c.len()).find(|&i| c[i].to_bits() != rust[i].to_bits()) {
        panic!(
            "{name}: the generated C and Rust differ first at value {at}: {} vs {}",
            c[at], rust[at]
        );
    }
    let error = worst_error(&rust, &expected);
    let (ours, burns) = (worst_error(&rust, &truth), worst_error(&expected, &truth));
    println!(
        "{name}: generated Rust and C {error:.1e} from Burn; from float64 {ours:.1e}, Burn {burns:.1e}"
    );
    if burns <= TOLERANCE {
        assert_close(
            &rust,
            &expected,
            TOLERANCE,
            &format!("{name}: generated Rust"),
        );
    } else {
        assert_close(
            &rust,
            &truth,
            4.0 * burns,
            &format!("{name}: generated Rust against float64 (Burn's float32 is {burns:.1e} off)"),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    error
}

/// An LTC and its float64 copy.
fn ltc(config: LTCConfig) -> (LTC<B>, LTC<B64>) {
    let model = config.init(&device()).unwrap();
    let wide = widen(&model, config.init(&Default::default()).unwrap());
    (model, wide)
}

/// A CfC and its float64 copy.
fn cfc(config: CfCConfig) -> (CfC<B>, CfC<B64>) {
    let model = config.init(&device()).unwrap();
    let wide = widen(&model, config.init(&Default::default()).unwrap());
    (model, wide)
}

#[test]
fn ltc_autoncp_16_1() {
    let (model, wide) = ltc(LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap())));
    let error = check("ltc_autoncp", &model, &wide, model.step_function().unwrap());
    // The generated step runs the fused kernel's arithmetic with its exp.
    assert_eq!(
        error, 0.0,
        "the generated step is the fused kernel, bit for bit"
    );
}

#[test]
fn ltc_fully_connected_and_both_mappings() {
    let (model, wide) = ltc(LTCConfig::new(3, Units::from(8)));
    check("ltc_fc", &model, &wide, model.step_function().unwrap());
    // Linear input map, no output map, explicit constraints, mixed memory.
    let config = LTCConfig::new(3, Units::from(FullyConnected::new(6, 2).unwrap()))
        .with_cell(
            LTCCellOptions::new()
                .with_input_mapping(Mapping::Linear)
                .with_output_mapping(Mapping::Identity),
        )
        .with_implicit_param_constraints(false)
        .with_mixed_memory(true);
    let model = config.init(&device()).unwrap().apply_weight_constraints();
    let wide = widen(&model, config.init(&Default::default()).unwrap());
    check(
        "ltc_fc_linear_mixed",
        &model,
        &wide,
        model.step_function().unwrap(),
    );
}

fn cfc_mixed_proj(mode: CfCMode, activation: Activation) -> CfCConfig {
    CfCConfig::new(4, Units::from(16))
        .with_cell(
            CfCCellOptions::new()
                .with_mode(mode)
                .with_activation(activation)
                .with_backbone_units(24)
                .with_backbone_layers(2),
        )
        .with_mixed_memory(true)
        .with_proj_size(Some(3))
}

#[test]
fn cfc_dense_modes_with_mixed_memory_and_projection() {
    for (name, mode, activation) in [
        ("cfc_default", CfCMode::Default, Activation::LecunTanh),
        ("cfc_pure", CfCMode::Pure, Activation::Silu),
        ("cfc_no_gate", CfCMode::NoGate, Activation::Relu),
    ] {
        let (model, wide) = cfc(cfc_mixed_proj(mode, activation));
        check(name, &model, &wide, model.step_function().unwrap());
    }
}

/// The CfC paper's Walker2d mixed model, scaled down: LeCun-tanh heads and
/// backbone, the LSTM's forget bias 2.1 and its output as the cell's input.
#[test]
fn cfc_with_the_papers_options() {
    let (model, wide) = cfc(CfCConfig::new(5, Units::from(12))
        .with_cell(
            CfCCellOptions::new()
                .with_backbone_units(16)
                .with_backbone_layers(2)
                .with_head_activation(HeadActivation::LecunTanh),
        )
        .with_mixed_memory(true)
        .with_forget_bias(2.1)
        .with_lstm_output(LstmOutput::Input)
        .with_proj_size(Some(5)));
    let step = model.step_function().unwrap();
    assert!(step.to_rust().contains("lstm_input: true"));
    check("cfc_paper_mixed", &model, &wide, step);
    // An LTC whose wiring reads the LSTM's outputs.
    let (model, wide) = ltc(LTCConfig::new(3, Units::from(AutoNCP::new(10, 2).unwrap()))
        .with_mixed_memory(true)
        .with_lstm_output(LstmOutput::Input));
    check(
        "ltc_lstm_input",
        &model,
        &wide,
        model.step_function().unwrap(),
    );
}

#[test]
fn cfc_64_default_backbone() {
    let (model, wide) = cfc(CfCConfig::new(8, Units::from(64))
        .with_cell(CfCCellOptions::new().with_activation(Activation::Tanh)));
    check("cfc_64", &model, &wide, model.step_function().unwrap());
}

#[test]
fn wired_cfc() {
    let (model, wide) = cfc(CfCConfig::new(3, Units::from(AutoNCP::new(14, 3).unwrap())));
    check("cfc_wired", &model, &wide, model.step_function().unwrap());
    // One layer whose last neurons are not outputs: the outputs are picked.
    let (model, wide) = cfc(
        CfCConfig::new(3, Units::from(FullyConnected::new(6, 2).unwrap()))
            .with_cell(CfCCellOptions::new().with_mode(CfCMode::NoGate))
            .with_mixed_memory(true),
    );
    check(
        "cfc_wired_fc",
        &model,
        &wide,
        model.step_function().unwrap(),
    );
}

#[test]
fn generated_files_name_the_model_and_sizes() {
    let model: LTC<B> = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .init(&device())
        .unwrap();
    let step = model.step_function().unwrap();
    let rust = step.to_rust();
    assert!(rust.contains(&format!("ncps {}", env!("CARGO_PKG_VERSION"))));
    assert!(rust.contains("Model: LTC, 2 inputs, 16 neurons"));
    assert!(rust.contains("Wiring: AutoNCP"));
    assert!(rust.contains("pub const STATE: usize = 16;"));
    let c = step.to_c("policy", "policy.h").unwrap();
    assert!(c.header.contains("#define POLICY_STATE 16"));
    assert!(
        c.header
            .contains("void policy_step(float state[POLICY_STATE]")
    );
    assert!(c.source.contains("Wiring: AutoNCP"));
    // The weights: 4 bytes a float, one byte an index (16 neurons). The
    // maps (weight and bias) of 2 inputs and 1 motor neuron, cm, gleak and
    // vleak, four parameters a synapse; offsets and sources.
    let (inputs, motor, neurons) = (2, 1, 16);
    let recurrent = model.cell.sparsity_mask.val().sum().into_scalar() as usize;
    let sensory = model.cell.sensory_sparsity_mask.val().sum().into_scalar() as usize;
    let floats = 2 * inputs + 2 * motor + 3 * neurons + 4 * (recurrent + sensory);
    let indices = 2 * (neurons + 1) + recurrent + sensory;
    assert_eq!(step.weight_bytes(), 4 * floats + indices);
    // The cell's output, then the mapped input, three values a neuron and
    // one a synapse of the larger group.
    let scratch = motor + inputs + 3 * neurons + recurrent.max(sensory);
    assert_eq!(step.stack_bytes(), 4 * scratch);
}

#[test]
fn what_cannot_be_exported_is_an_error_naming_it() {
    let gelu: CfC<B> = CfCConfig::new(3, Units::from(8))
        .with_cell(CfCCellOptions::new().with_activation(Activation::Gelu))
        .init(&device())
        .unwrap();
    let err = gelu.step_function().unwrap_err();
    assert!(
        matches!(&err, ExportError::Unsupported { what, .. } if what.contains("gelu")),
        "{err}"
    );
    // Without a backbone the activation is unused: it exports.
    let no_backbone: CfC<B> = CfCConfig::new(3, Units::from(8))
        .with_cell(
            CfCCellOptions::new()
                .with_activation(Activation::Gelu)
                .with_backbone_layers(0),
        )
        .init(&device())
        .unwrap();
    assert!(no_backbone.step_function().is_ok());

    let mut broken: LTC<B> = LTCConfig::new(2, Units::from(4)).init(&device()).unwrap();
    let mut mu = values(broken.cell.mu.val());
    mu[5] = f32::NAN;
    broken.cell.mu = burn::module::Param::from_tensor(
        Tensor::<B, 1>::from_floats(mu.as_slice(), &device()).reshape([4, 4]),
    );
    let err = broken.step_function().unwrap_err();
    assert!(
        matches!(&err, ExportError::NonFinite { tensor, index: 5, .. } if tensor == "rnn_cell.mu"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "rnn_cell.mu holds NaN at index 5: only finite weights can be exported"
    );

    let step = LTCConfig::new(2, Units::from(4))
        .init::<B>(&device())
        .unwrap()
        .step_function()
        .unwrap();
    for prefix in ["", "9lives", "my-model", "a b"] {
        assert!(
            matches!(
                step.to_c(prefix, "m.h"),
                Err(ExportError::InvalidPrefix { .. })
            ),
            "{prefix:?}"
        );
    }
    let err = step.save_rust("/nonexistent/folder/model.rs").unwrap_err();
    assert!(matches!(err, ExportError::Write { .. }), "{err}");

    // Upstream returns a wired CfC's whole last layer.
    let wired: CfC<B> = CfCConfig::new(3, Units::from(FullyConnected::new(6, 2).unwrap()))
        .init(&device())
        .unwrap();
    let err = wired.upstream_config().unwrap_err();
    assert!(
        matches!(&err, ExportError::Unsupported { what, .. } if what.contains("wired CfC")),
        "{err}"
    );
    // Upstream's CfCCell squashes its heads with tanh, and its LSTMCell
    // fixes the forget bias at 1: the step functions export these, Python
    // refuses them by name.
    let lecun: CfC<B> = CfCConfig::new(3, Units::from(8))
        .with_cell(CfCCellOptions::new().with_head_activation(HeadActivation::LecunTanh))
        .init(&device())
        .unwrap();
    let forget: LTC<B> = LTCConfig::new(3, Units::from(8))
        .with_mixed_memory(true)
        .with_forget_bias(2.1)
        .init(&device())
        .unwrap();
    for (err, named) in [
        (lecun.upstream_config().unwrap_err(), "head_activation"),
        (forget.upstream_config().unwrap_err(), "forget_bias 2.1"),
    ] {
        assert!(
            matches!(&err, ExportError::Unsupported { what, .. } if what.contains(named)),
            "{err}"
        );
    }
    assert!(lecun.step_function().is_ok() && forget.step_function().is_ok());
}

/// Saves a model for Python, reads the files back through `ncps::import`
/// and checks the outputs are bit-identical.
fn round_trip<C>(
    name: &str,
    model: &Rnn<B, C>,
    rebuild: impl Fn(&StateDict, &UpstreamConfig) -> Rnn<B, C>,
) where
    C: RecurrentCell<B>,
    Rnn<B, C>: Export,
{
    let dir = scratch_dir(name);
    let (weights, config) = (dir.join("model.safetensors"), dir.join("model.json"));
    model.save_upstream(&weights, &config).unwrap();
    let dict = StateDict::read(&weights).unwrap();
    let upstream = UpstreamConfig::from_json(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(upstream, model.upstream_config().unwrap());
    let loaded = rebuild(&dict, &upstream);
    let (inputs, elapsed) = data(model.input_size());
    let (inputs, elapsed) = (&inputs[..50 * model.input_size()], &elapsed[..50]);
    assert_eq!(
        run_case(&loaded, inputs, elapsed),
        run_case(model, inputs, elapsed),
        "{name}: the round trip changed the outputs"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_to_python_round_trips_through_import() {
    let ltc_model: LTC<B> = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).unwrap()))
        .with_mixed_memory(true)
        .with_cell(LTCCellOptions::new().with_ode_unfolds(4))
        .init(&device())
        .unwrap();
    round_trip("rt_ltc", &ltc_model, |dict, config| {
        assert_eq!(config.model, "LTC");
        assert_eq!(config.args["ode_unfolds"], 4);
        assert_eq!(config.layers.as_ref().map(Vec::len), Some(3), "NCP layers");
        // The wiring's upstream config holds the exact synapses.
        let wiring =
            AnyWiring::from_upstream_config(&config.wiring.as_ref().unwrap().to_string()).unwrap();
        let mask = values(ltc_model.cell.sparsity_mask.val());
        let synapses = mask.iter().filter(|&&m| m == 1.0).count();
        assert_eq!(wiring.adjacency_matrix().synapse_count(), synapses);
        let config = config.ltc_config().unwrap();
        assert_eq!(config.cell.ode_unfolds, 4);
        config
            .init::<B>(&device())
            .unwrap()
            .load_state_dict(dict)
            .unwrap()
    });
    // A checkpoint alone rebuilds an LTC with upstream's defaults.
    let plain: LTC<B> = LTCConfig::new(3, Units::from(8)).init(&device()).unwrap();
    round_trip("rt_ltc_fc", &plain, |dict, _| {
        LTCConfig::from_state_dict(dict)
            .unwrap()
            .init::<B>(&device())
            .unwrap()
            .load_state_dict(dict)
            .unwrap()
    });
    for (name, mode) in [
        ("rt_cfc_default", CfCMode::Default),
        ("rt_cfc_pure", CfCMode::Pure),
        ("rt_cfc_no_gate", CfCMode::NoGate),
    ] {
        let model: CfC<B> = cfc_mixed_proj(mode, Activation::Silu)
            .init(&device())
            .unwrap();
        round_trip(name, &model, |dict, config| {
            assert_eq!(config.args["activation"], "silu");
            assert!(config.wiring.is_none());
            let config = config.cfc_config().unwrap();
            assert_eq!(
                (config.cell.mode, config.cell.activation),
                (mode, Activation::Silu)
            );
            config
                .init::<B>(&device())
                .unwrap()
                .load_state_dict(dict)
                .unwrap()
        });
    }
    let wired: CfC<B> = CfCConfig::new(3, Units::from(AutoNCP::new(14, 3).unwrap()))
        .with_cell(CfCCellOptions::new().with_mode(CfCMode::NoGate))
        .with_proj_size(Some(2))
        .init(&device())
        .unwrap();
    round_trip("rt_cfc_wired", &wired, |dict, config| {
        assert_eq!(config.layers.as_ref().map(Vec::len), Some(3));
        let config = config.cfc_config().unwrap();
        config
            .init::<B>(&device())
            .unwrap()
            .load_state_dict(dict)
            .unwrap()
    });
}

#[test]
fn an_upstream_config_names_what_it_cannot_read() {
    let model: CfC<B> = CfCConfig::new(3, Units::from(8)).init(&device()).unwrap();
    let mut config = model.upstream_config().unwrap();
    let err = config.ltc_config().unwrap_err();
    assert!(
        matches!(&err, ExportError::Config { argument, .. } if argument == "model"),
        "{err}"
    );
    config.args.insert("mode".into(), "fast".into());
    let err = config.cfc_config().unwrap_err();
    assert!(
        matches!(&err, ExportError::Config { argument, .. } if argument == "mode"),
        "{err}"
    );
    config.args.insert("mode".into(), "pure".into());
    config.args.insert("backbone_layers".into(), "two".into());
    let err = config.cfc_config().unwrap_err();
    assert!(
        matches!(&err, ExportError::Config { argument, .. } if argument == "backbone_layers"),
        "{err}"
    );
}

/// The cases `tests/fixtures/export/check_upstream.py` checks against
/// Python ncps: the crate still reads them into models that compute the
/// recorded outputs and exports those models to the same files, bit for bit.
///
/// The outputs were recorded by the crate when the cases were written; the
/// fused CfC kernel (a different but equally exact summation order) now
/// computes them, so they are compared within 1e-6, ten times tighter than the
/// 1e-5 the Python check allows against upstream.
#[test]
fn the_python_check_cases_are_the_crates_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export/cases");
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let case = entry.unwrap().path();
        let json = std::fs::read_to_string(case.join("model.json")).unwrap();
        let config = UpstreamConfig::from_json(&json).unwrap();
        let dict = StateDict::read(case.join("model.safetensors")).unwrap();
        let io = StateDict::read(case.join("io.safetensors")).unwrap();
        let recorded: Vec<f32> = ["output", "hx_out", "cx_out"]
            .iter()
            .filter_map(|name| io.values(name))
            .flatten()
            .collect();
        let (input, elapsed) = (io.values("input").unwrap(), io.values("timespans").unwrap());
        let check = |ours: Vec<f32>, config: UpstreamConfig, exported: StateDict| {
            assert_eq!(ours.len(), recorded.len(), "{}: outputs", case.display());
            let worst = ours
                .iter()
                .zip(&recorded)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= 1e-6,
                "{}: outputs differ by {worst}",
                case.display()
            );
            assert_eq!(config.to_json(), json, "{}: config", case.display());
            assert_eq!(
                exported.to_safetensors_bytes(),
                std::fs::read(case.join("model.safetensors")).unwrap(),
                "{}: weights",
                case.display()
            );
        };
        match config.model.as_str() {
            "LTC" => {
                let model: LTC<B> = config
                    .ltc_config()
                    .unwrap()
                    .init(&device())
                    .unwrap()
                    .load_state_dict(&dict)
                    .unwrap();
                let ours = run_case(&model, &input, &elapsed);
                check(
                    ours,
                    model.upstream_config().unwrap(),
                    StateDict::from_model(&model),
                );
            }
            _ => {
                let model: CfC<B> = config
                    .cfc_config()
                    .unwrap()
                    .init(&device())
                    .unwrap()
                    .load_state_dict(&dict)
                    .unwrap();
                let ours = run_case(&model, &input, &elapsed);
                check(
                    ours,
                    model.upstream_config().unwrap(),
                    StateDict::from_model(&model),
                );
            }
        }
        cases += 1;
    }
    assert_eq!(cases, 6, "the six check cases");
}

/// The Burn model on a sequence (batch 1): every output, then the final
/// hidden state and memory.
fn run_case<Bk: Backend, C: RecurrentCell<Bk>>(
    model: &Rnn<Bk, C>,
    input: &[f32],
    elapsed: &[f32],
) -> Vec<f32> {
    let steps = elapsed.len();
    let device = Default::default();
    let x = Tensor::<Bk, 1>::from_floats(input, &device).reshape([1, steps, model.input_size()]);
    let t = Tensor::<Bk, 1>::from_floats(elapsed, &device).reshape([1, steps]);
    let (output, state) = model.forward_timed(x, t, None);
    let mut all = values(output);
    all.extend(values(state.hidden));
    all.extend(state.memory.map(values).unwrap_or_default());
    all
}
