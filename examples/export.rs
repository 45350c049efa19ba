//! Export a trained model for deployment: a standalone `#![no_std]` Rust
//! step function, a C99 source and header, and the files Python ncps loads.
//!
//! The checkpoint is an upstream `state_dict` (`.safetensors` or `.pt`:
//! what `examples/sinusoid` writes, or `torch.save(model.state_dict())`).
//! What a `state_dict` does not hold (a CfC's mode and activation, an LTC's
//! ODE unfolds, ...) comes from `--config`, the JSON `ncps::export` writes
//! beside the weights; without it upstream's defaults are used.
//!
//! ```sh
//! cargo run --release --example sinusoid
//! cargo run --release --example export -- target/ncps/sinusoid/model.safetensors \
//!     --config target/ncps/sinusoid/model.json --rust policy.rs --c policy.c
//! ```
//!
//! `--python-cases DIR` writes the models `tests/fixtures/export/check_upstream.py`
//! checks against Python ncps instead (one folder per model: `model.safetensors`,
//! `model.json`, and `io.safetensors` with inputs, elapsed times and this
//! crate's outputs).

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::Parser;
use ncps::cells::{Activation, CfCCellOptions, CfCMode, LTCCellOptions, Mapping, RecurrentCell};
use ncps::export::{Export, StepFunction, UpstreamConfig};
use ncps::import::{LoadStateDict, StateDict};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, Units};
use ncps::wirings::{AutoNCP, FullyConnected};

type B = NdArray<f32>;

#[derive(Parser, Debug)]
#[command(about = "Export a trained NCP to Rust, C and Python ncps")]
struct Args {
    /// The model's weights: an upstream state_dict (.safetensors or .pt).
    checkpoint: Option<PathBuf>,
    /// The upstream config written beside the weights (model.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write the Rust step function here.
    #[arg(long)]
    rust: Option<PathBuf>,
    /// Write the C source here (and its header beside it, .h).
    #[arg(long)]
    c: Option<PathBuf>,
    /// The C functions' prefix: <prefix>_step, <prefix>_reset.
    #[arg(long, default_value = "ncps")]
    prefix: String,
    /// Write model.safetensors and model.json for Python ncps into this folder.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Instead of a checkpoint: write the check cases of
    /// tests/fixtures/export/check_upstream.py into this folder.
    #[arg(long, conflicts_with = "checkpoint")]
    python_cases: Option<PathBuf>,
}

/// `Export` without the generic `save_upstream`, as a trait object.
trait ExportDyn {
    fn step_function(&self) -> Result<StepFunction, ncps::export::ExportError>;
    fn save_python(&self, dir: &Path) -> Result<(), ncps::export::ExportError>;
}

impl<T: Export> ExportDyn for T {
    fn step_function(&self) -> Result<StepFunction, ncps::export::ExportError> {
        Export::step_function(self)
    }

    fn save_python(&self, dir: &Path) -> Result<(), ncps::export::ExportError> {
        self.save_upstream(dir.join("model.safetensors"), dir.join("model.json"))
    }
}

/// Reads a checkpoint, with its config when given, else trying an LTC and
/// then a CfC with upstream's defaults.
fn load(
    checkpoint: &Path,
    config: Option<&Path>,
) -> Result<Box<dyn ExportDyn>, Box<dyn std::error::Error>> {
    let device = Default::default();
    let dict = StateDict::read(checkpoint)?;
    if let Some(path) = config {
        let config = UpstreamConfig::from_json(&std::fs::read_to_string(path)?)?;
        return Ok(match config.model.as_str() {
            "LTC" => Box::new(
                config
                    .ltc_config()?
                    .init::<B>(&device)?
                    .load_state_dict(&dict)?,
            ),
            _ => Box::new(
                config
                    .cfc_config()?
                    .init::<B>(&device)?
                    .load_state_dict(&dict)?,
            ),
        });
    }
    let ltc = LTCConfig::from_state_dict(&dict)
        .map_err(Box::<dyn std::error::Error>::from)
        .and_then(|c| Ok(c.init::<B>(&device)?.load_state_dict(&dict)?));
    match ltc {
        Ok(model) => Ok(Box::new(model)),
        Err(_) => Ok(Box::new(
            CfCConfig::from_state_dict(&dict)?
                .init::<B>(&device)?
                .load_state_dict(&dict)?,
        )),
    }
}

/// Steps of each Python check case.
const CASE_STEPS: usize = 50;

/// Runs a model on random inputs and elapsed times and writes the case.
fn write_case<C: RecurrentCell<B>>(
    dir: &Path,
    name: &str,
    model: &Rnn<B, C>,
) -> Result<(), Box<dyn std::error::Error>>
where
    Rnn<B, C>: Export,
{
    let device = Default::default();
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir)?;
    model.save_upstream(dir.join("model.safetensors"), dir.join("model.json"))?;
    let features = model.input_size();
    let input = Tensor::<B, 3>::random(
        [1, CASE_STEPS, features],
        Distribution::Uniform(-2.0, 2.0),
        &device,
    );
    let timespans =
        Tensor::<B, 2>::random([1, CASE_STEPS], Distribution::Uniform(0.05, 2.0), &device);
    let (output, state) = model.forward_timed(input.clone(), timespans.clone(), None);
    let mut io = StateDict::default();
    let mut insert =
        |name: &str, tensor: Vec<usize>, values: Vec<f32>| io.insert(name, tensor, values);
    let values = |t: Tensor<B, 3>| t.into_data().to_vec::<f32>().expect("f32");
    insert("input", vec![1, CASE_STEPS, features], values(input));
    insert(
        "timespans",
        vec![1, CASE_STEPS],
        timespans.into_data().to_vec::<f32>()?,
    );
    let outputs = model.output_size();
    insert("output", vec![1, CASE_STEPS, outputs], values(output));
    let units = model.state_size();
    insert(
        "hx_out",
        vec![1, units],
        state.hidden.into_data().to_vec::<f32>()?,
    );
    if let Some(memory) = state.memory {
        insert(
            "cx_out",
            vec![1, units],
            memory.into_data().to_vec::<f32>()?,
        );
    }
    io.save_safetensors(dir.join("io.safetensors"))?;
    println!("wrote {}", dir.display());
    Ok(())
}

/// The models the Python check covers: both LTC mappings and constraint
/// kinds, every CfC mode with mixed memory and projection, a wired CfC.
fn python_cases(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    B::seed(&device, 7);
    let ltc = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<B>(&device)?;
    write_case(dir, "ltc_autoncp", &ltc)?;
    let ltc = LTCConfig::new(3, Units::from(FullyConnected::new(6, 2)?))
        .with_cell(
            LTCCellOptions::new()
                .with_input_mapping(Mapping::Linear)
                .with_output_mapping(Mapping::Identity),
        )
        .with_implicit_param_constraints(false)
        .with_mixed_memory(true)
        .init::<B>(&device)?;
    write_case(dir, "ltc_fully_connected_mixed", &ltc)?;
    for (name, mode, activation) in [
        ("cfc_default", CfCMode::Default, Activation::LecunTanh),
        ("cfc_pure", CfCMode::Pure, Activation::Silu),
        ("cfc_no_gate", CfCMode::NoGate, Activation::Relu),
    ] {
        let cfc = CfCConfig::new(4, Units::from(16))
            .with_cell(
                CfCCellOptions::new()
                    .with_mode(mode)
                    .with_activation(activation)
                    .with_backbone_units(24)
                    .with_backbone_layers(2),
            )
            .with_mixed_memory(true)
            .with_proj_size(Some(3))
            .init::<B>(&device)?;
        write_case(dir, name, &cfc)?;
    }
    let wired = CfCConfig::new(3, Units::from(AutoNCP::new(14, 3)?))
        .with_proj_size(Some(2))
        .init::<B>(&device)?;
    write_case(dir, "cfc_wired", &wired)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(dir) = &args.python_cases {
        return python_cases(dir);
    }
    let checkpoint = args
        .checkpoint
        .as_ref()
        .ok_or("give a checkpoint (or --python-cases DIR)")?;
    let export = load(checkpoint, args.config.as_deref())?;
    let step = export.step_function()?;
    println!(
        "{}: {} inputs, {} outputs, {} floats of state; weights {} bytes, {} bytes of stack a step",
        checkpoint.display(),
        step.inputs(),
        step.outputs(),
        step.state_size(),
        step.weight_bytes(),
        step.stack_bytes()
    );
    if let Some(path) = &args.rust {
        step.save_rust(path)?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.c {
        step.save_c(path, &args.prefix)?;
        println!(
            "wrote {} and {}",
            path.display(),
            path.with_extension("h").display()
        );
    }
    if let Some(dir) = &args.python {
        std::fs::create_dir_all(dir)?;
        export.save_python(dir)?;
        println!("wrote {}/model.safetensors and model.json", dir.display());
    }
    Ok(())
}
