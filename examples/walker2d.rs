//! Walker2d kinematic modelling, the CfC paper's irregularly sampled
//! benchmark: predict the next state of a MuJoCo walker from the states so
//! far, with the elapsed time of every step.
//!
//! Each model starts from the paper's hyperparameters (docs/walker2d.md has
//! the table) and trains with the shared loop (`ncps::train`): Adam,
//! exponential learning-rate decay, gradient clipping, the best-validation
//! weights kept; the test MSE of those weights is reported, mean and
//! standard deviation over the runs.
//!
//! ```sh
//! cargo run --release --example walker2d -- --data DIR            # one CfC run, 50 epochs
//! cargo run --release --example walker2d -- --data DIR --model mixed --init keras --runs 5
//! cargo run --release --example walker2d -- --data DIR --recipe torch   # upstream ncps' torch setup
//! ```
//!
//! `DIR` holds upstream's `rollout_000.npy` .. `rollout_399.npy` (unzip
//! upstream's `walker.zip`). Everything goes to `--out`
//! (`target/ncps/walker2d/<model>-<recipe>/`, `<model>-<recipe>-keras/`
//! with `--init keras`): each run's checkpoints in
//! `run<k>/` (an interrupted command, run again, resumes each run where it
//! stopped), `results.json`, `learning_curves.png` and `prediction.png`
//! (predicted and true trajectories of three joints over a test window).

mod common;

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::prelude::*;
use clap::{Parser, ValueEnum};
use common::{BLUE_, Bars, GREEN_, ORANGE_, RED_, Series, line_chart, register_font};
use ncps::cells::{
    Activation, CfCCellOptions, CfCMode, DropoutPlacement, HeadActivation, RecurrentCell,
};
use ncps::datasets::walker2d::{FEATURES, Walker2d, Walker2dBatcher, Walker2dModel};
use ncps::rnn::{CfCConfig, Initialization, LTCConfig, LstmOutput, Rnn, Units};
use ncps::train::{Clipping, EpochLog, SequenceModel, SequenceMse, TrainConfig, Trainer, evaluate};
use serde_json::json;

type B = Autodiff<NdArray>;
type Device = burn::backend::ndarray::NdArrayDevice;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Model {
    /// CfC, default mode (paper: 0.640 +- 0.006).
    Cfc,
    /// CfC with mixed memory (paper: 0.617 +- 0.006).
    Mixed,
    /// CfC without the time gate's complement (paper: 0.650 +- 0.008).
    NoGate,
    /// The direct closed-form solution, Cf-S (paper: 0.948 +- 0.010).
    Pure,
    /// LTC, fully connected, 128 neurons (paper: 0.662 +- 0.013).
    Ltc,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Recipe {
    /// The CfC paper's TensorFlow setup: LeCun-tanh heads, dropout after
    /// every backbone layer, the L2 penalty on the cell's kernels in the
    /// loss, per-tensor clipping, a learning rate decaying at every step,
    /// Adam's eps 1e-7, the mixed memory's forget bias 2.1 and its LSTM
    /// output as the CfC's input (`LstmOutput::Input`, as `MixedCfcCell`).
    Paper,
    /// Upstream ncps 1.0.1 on torch, as shared/bench/walker2d_reference.py:
    /// upstream's cells, global-norm clipping, per-epoch decay, no weight
    /// decay.
    Torch,
}

/// How the weights start (`ncps::cells::Initialization`).
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Init {
    /// Upstream ncps 1.0.1's torch initialisation.
    Upstream,
    /// Keras' defaults, as the paper's TensorFlow code: zero biases, a
    /// Glorot-uniform readout, Cf-S's w_tau 0 and A 1.
    Keras,
}

impl From<Init> for Initialization {
    fn from(init: Init) -> Self {
        match init {
            Init::Upstream => Initialization::Upstream,
            Init::Keras => Initialization::Keras,
        }
    }
}

#[derive(Parser, Debug)]
#[command(about = "Walker2d kinematic modelling (the CfC paper's benchmark)")]
struct Args {
    /// Folder of upstream's rollout_NNN.npy files (unzipped walker.zip).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The model, with the paper's hyperparameters.
    #[arg(long, value_enum, default_value = "cfc")]
    model: Model,
    /// Training setup.
    #[arg(long, value_enum, default_value = "paper")]
    recipe: Recipe,
    /// How the weights start.
    #[arg(long, value_enum, default_value = "upstream")]
    init: Init,
    /// Independent runs (run k uses seed + k).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Epochs per run.
    #[arg(long, default_value_t = 50)]
    epochs: usize,
    /// Override the preset's learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Override the preset's batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed of the first run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (a subfolder per model and recipe).
    #[arg(long, default_value = "target/ncps/walker2d")]
    out: PathBuf,
}

/// The paper's hyperparameters of one model (`train_walker.py` in
/// raminmh/CfC; docs/walker2d.md).
#[derive(Clone, Copy, Debug, serde::Serialize)]
struct Preset {
    size: usize,
    batch: usize,
    lr: f64,
    clip: f64,
    backbone_units: usize,
    backbone_layers: usize,
    activation: Activation,
    dropout: f64,
    forget_bias: f64,
    weight_decay: f64,
}

fn preset(model: Model) -> Preset {
    let cfc = |size, batch, lr, clip, units, layers, activation, dropout, weight_decay| Preset {
        size,
        batch,
        lr,
        clip,
        backbone_units: units,
        backbone_layers: layers,
        activation,
        dropout,
        forget_bias: 1.0,
        weight_decay,
    };
    use Activation::{LecunTanh, Silu};
    match model {
        Model::Cfc => cfc(64, 256, 0.02, 1.0, 256, 1, Silu, 0.1, 1e-6),
        Model::Mixed => Preset {
            forget_bias: 2.1,
            ..cfc(128, 128, 0.005, 10.0, 128, 2, LecunTanh, 0.2, 6e-6)
        },
        Model::NoGate => cfc(256, 128, 0.008, 1.0, 128, 1, LecunTanh, 0.1, 3e-5),
        Model::Pure => cfc(256, 128, 0.006, 10.0, 192, 1, Silu, 0.0, 1e-6),
        // The TensorFlow LTC cell has no Dense layer: its weight decay
        // reaches nothing, and so it does here.
        Model::Ltc => cfc(128, 128, 0.05, 10.0, 0, 0, LecunTanh, 0.0, 1e-5),
    }
}

/// The loop's settings and the objective for a model and recipe.
fn settings(args: &Args, p: &Preset) -> (TrainConfig, SequenceMse) {
    let paper = args.recipe == Recipe::Paper;
    let config = TrainConfig::new(args.epochs, args.batch_size.unwrap_or(p.batch))
        .with_valid_batch_size(Some(512))
        .with_learning_rate(args.lr.unwrap_or(p.lr))
        .with_lr_decay(0.95)
        .with_smooth_decay(paper)
        .with_adam_epsilon(if paper { 1e-7 } else { 1e-8 })
        .with_clipping(if paper {
            Clipping::PerTensorNorm(p.clip)
        } else {
            Clipping::GlobalNorm(p.clip)
        });
    let objective = SequenceMse {
        kernel_l2: if paper { p.weight_decay } else { 0.0 },
    };
    (config, objective)
}

/// What one run measured.
#[derive(serde::Serialize)]
struct RunResult {
    seed: u64,
    test_mse: f64,
    best_epoch: Option<usize>,
    median_epoch_seconds: f64,
    epochs: Vec<EpochLog>,
}

fn main() -> std::process::ExitCode {
    match run(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The message, not its Debug form: it says what to do.
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let Some(data_dir) = &args.data else {
        return Err(
            "--data DIR is required: DIR holds upstream's Walker2d rollouts \
                    (rollout_000.npy .. rollout_399.npy), from the walker.zip of the CfC \
                    paper's repository (raminmh/CfC, data/walker/); unzip it and pass the folder"
                .into(),
        );
    };
    let data = Walker2d::load(data_dir)?;
    println!(
        "windows: train {}, valid {}, test {}",
        data.train.len(),
        data.valid.len(),
        data.test.len()
    );
    let p = preset(args.model);
    let name = match args.init {
        Init::Upstream => format!("{:?}-{:?}", args.model, args.recipe),
        Init::Keras => format!("{:?}-{:?}-keras", args.model, args.recipe),
    }
    .to_lowercase();
    let out = args.out.join(name);
    std::fs::create_dir_all(&out)?;
    let paper = args.recipe == Recipe::Paper;
    let device = Default::default();
    let build_cfc = |device: &Device| {
        let (mode, mixed) = match args.model {
            Model::Mixed => (CfCMode::Default, true),
            Model::NoGate => (CfCMode::NoGate, false),
            Model::Pure => (CfCMode::Pure, false),
            _ => (CfCMode::Default, false),
        };
        let lecun = paper && mode != CfCMode::Pure;
        CfCConfig::new(FEATURES, Units::from(p.size))
            .with_mixed_memory(mixed)
            .with_lstm_output(if mixed && paper {
                LstmOutput::Input
            } else {
                LstmOutput::State
            })
            .with_cell(
                CfCCellOptions::new()
                    .with_mode(mode)
                    .with_activation(p.activation)
                    .with_backbone_units(p.backbone_units)
                    .with_backbone_layers(p.backbone_layers)
                    .with_backbone_dropout(p.dropout)
                    .with_head_activation(if lecun {
                        HeadActivation::LecunTanh
                    } else {
                        HeadActivation::Tanh
                    })
                    .with_dropout_placement(if paper {
                        DropoutPlacement::EveryLayer
                    } else {
                        DropoutPlacement::LaterLayers
                    }),
            )
            .with_forget_bias(if paper { p.forget_bias } else { 1.0 })
            .with_initialization(args.init.into())
            .init::<B>(device)
    };
    let results = match args.model {
        Model::Ltc => runs(args, &p, &data, &out, &device, |device| {
            LTCConfig::new(FEATURES, Units::from(p.size))
                .with_initialization(args.init.into())
                .init::<B>(device)
        })?,
        _ => runs(args, &p, &data, &out, &device, build_cfc)?,
    };

    let mses: Vec<f64> = results.iter().map(|r| r.test_mse).collect();
    let (mean, std) = common::mean_std(&mses);
    let mut seconds: Vec<f64> = results.iter().map(|r| r.median_epoch_seconds).collect();
    let epoch_seconds = median(&mut seconds);
    write_json(
        &out.join("results.json"),
        &json!({
            "model": format!("{:?}", args.model),
            "recipe": format!("{:?}", args.recipe),
            "init": format!("{:?}", args.init),
            "preset": p,
            "windows": {"train": data.train.len(), "valid": data.valid.len(), "test": data.test.len()},
            "epochs": args.epochs,
            "test_mse_mean": mean,
            "test_mse_std": std,
            "median_epoch_seconds": epoch_seconds,
            "runs": results,
        }),
    )?;
    plot_curves(&out.join("learning_curves.png"), &results)?;
    println!(
        "wrote {}, learning_curves.png and prediction.png",
        out.join("results.json").display()
    );
    println!(
        "walker2d model={:?} recipe={:?} runs={} epochs={} epoch_s={epoch_seconds:.2} \
         test_mse={mean:.4} +- {std:.4}",
        args.model, args.recipe, args.runs, args.epochs
    );
    Ok(())
}

/// Trains `args.runs` runs of the model `build` makes; plots the first
/// run's prediction on a test window.
fn runs<C>(
    args: &Args,
    p: &Preset,
    data: &Walker2d,
    out: &Path,
    device: &Device,
    build: impl Fn(&Device) -> Result<Rnn<B, C>, ncps::ConfigError>,
) -> Result<Vec<RunResult>, Box<dyn std::error::Error>>
where
    C: RecurrentCell<B> + AutodiffModule<B>,
    Walker2dModel<B, C>: AutodiffModule<B>,
    <Walker2dModel<B, C> as AutodiffModule<B>>::InnerModule: SequenceModel<NdArray>,
{
    let (config, objective) = settings(args, p);
    let mut results = Vec::new();
    for run in 0..args.runs {
        let seed = args.seed + run as u64;
        B::seed(device, seed);
        let model = Walker2dModel::with_initialization(build(device)?, args.init.into(), device);
        if run == 0 {
            println!(
                "{:?} ({:?} recipe): {} parameters; {} epochs of batches of {}, lr {}",
                args.model,
                args.recipe,
                burn::module::Module::num_params(&model),
                config.epochs,
                config.batch_size,
                config.learning_rate
            );
        }
        let label = format!("run {}/{}", run + 1, args.runs);
        let trained = Trainer::new(config.clone().with_seed(seed), *device)
            .with_dir(out.join(format!("run{run}")))
            .fit(
                model,
                &objective,
                &data.train,
                &data.valid,
                &Walker2dBatcher,
                &mut Bars::batches(&label),
            )?;
        let best = trained.model.valid();
        let test = evaluate::<B, Walker2dModel<B, C>, _, _, _>(
            &best,
            &objective,
            &data.test,
            &Walker2dBatcher,
            512,
            device,
        );
        println!(
            "{label}: test MSE {:.4} (best epoch {:?})",
            test.loss, trained.best_epoch
        );
        if run == 0 {
            plot_prediction(&out.join("prediction.png"), &best, data, device)?;
        }
        let mut seconds: Vec<f64> = trained.log.iter().map(|l| l.train_seconds).collect();
        results.push(RunResult {
            seed,
            test_mse: test.loss,
            best_epoch: trained.best_epoch,
            median_epoch_seconds: median(&mut seconds),
            epochs: trained.log,
        });
    }
    Ok(results)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    ncps::fs::write_atomically(path, &serde_json::to_vec_pretty(value)?)
}

/// Validation MSE of every run per epoch, and the first run's training loss.
fn plot_curves(path: &Path, results: &[RunResult]) -> Result<(), Box<dyn std::error::Error>> {
    register_font();
    let colors = [BLUE_, ORANGE_, GREEN_, RED_, common::GRAY_];
    let valid: Vec<Vec<f32>> = results
        .iter()
        .map(|r| r.epochs.iter().map(|l| l.valid_loss as f32).collect())
        .collect();
    let train: Vec<f32> = results[0]
        .epochs
        .iter()
        .map(|l| l.train_loss as f32)
        .collect();
    let labels: Vec<String> = (1..=results.len())
        .map(|k| format!("validation, run {k}"))
        .collect();
    let mut series: Vec<Series<'_>> = valid
        .iter()
        .zip(&labels)
        .enumerate()
        .map(|(k, (values, label))| Series {
            label,
            values,
            color: colors[k % colors.len()],
            dashed: false,
        })
        .collect();
    series.push(Series {
        label: "training loss, run 1",
        values: &train,
        color: common::GRAY_,
        dashed: true,
    });
    line_chart(
        path,
        "Walker2d: MSE per epoch",
        "epoch - 1",
        "MSE (log scale)",
        &series,
        true,
    )
}

/// Predicted and true trajectories of three joint angles (features 2, 3,
/// 4: the right thigh, leg and foot) over the first test window.
fn plot_prediction<M: SequenceModel<NdArray>>(
    path: &Path,
    model: &M,
    data: &Walker2d,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    use burn::data::dataloader::batcher::Batcher;
    let window = data.test.get(0).ok_or("the test split has no window")?;
    let batch = Batcher::<NdArray, _, _>::batch(&Walker2dBatcher, vec![window.clone()], device);
    let predicted: Vec<f32> = model
        .predict(batch.input, batch.timespans)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("{e:?}"))?;
    let column = |values: &[f32], j: usize| -> Vec<f32> {
        values.iter().skip(j).step_by(FEATURES).copied().collect()
    };
    let joints = [
        (2, "thigh", BLUE_),
        (3, "leg", ORANGE_),
        (4, "foot", GREEN_),
    ];
    let curves: Vec<(String, Vec<f32>, String, Vec<f32>, _)> = joints
        .iter()
        .map(|&(j, name, color)| {
            (
                format!("{name}: predicted"),
                column(&predicted, j),
                format!("{name}: true"),
                column(&window.y, j),
                color,
            )
        })
        .collect();
    let mut series = Vec::new();
    for (predicted_label, predicted, true_label, truth, color) in &curves {
        series.push(Series {
            label: predicted_label,
            values: predicted,
            color: *color,
            dashed: false,
        });
        series.push(Series {
            label: true_label,
            values: truth,
            color: *color,
            dashed: true,
        });
    }
    register_font();
    line_chart(
        path,
        "Walker2d: next-state prediction on a test window",
        "step",
        "joint angle",
        &series,
        false,
    )
}
