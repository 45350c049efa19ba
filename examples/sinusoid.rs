//! Fit a sine wave with a Neural Circuit Policy: upstream's quickstart.
//!
//! An `LTC(2, AutoNCP(16, 1))` (or the same wiring as a CfC) learns to map
//! `sin(t), cos(t)` to `sin(2t)` over 48 steps, with Adam (lr 0.01) on the
//! MSE for 400 epochs. Writes the data, the loss curve, the prediction
//! before and after training (PNG), the wiring (SVG) and the trained model
//! (`model.safetensors`, upstream's `state_dict`, and `model.json`, its
//! upstream config: what `examples/export` and Python ncps read) to `--out`;
//! the last line printed is `final_mse=<value>`.
//!
//! ```sh
//! cargo run --release --example sinusoid
//! cargo run --release --example sinusoid -- --model cfc --epochs 200
//! cargo run --release --features wgpu --example sinusoid -- --backend wgpu
//! ```

mod common;

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, ValueEnum};
use common::{
    BLUE_, Backend, GRAY_, GREEN_, ORANGE_, RED_, Run, Series, TrainArgs, line_chart,
    register_font, train,
};
use ncps::datasets::sine::SineData;
use ncps::export::Export;
use ncps::rnn::{CfCConfig, LTCConfig, Units};
use ncps::wirings::{AutoNCP, Draw, DrawOptions, Wiring};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    /// Liquid time-constant network.
    Ltc,
    /// Closed-form continuous-time network.
    Cfc,
}

#[derive(Parser, Debug)]
#[command(about = "Fit a sine wave with an NCP (upstream's quickstart)")]
struct Args {
    /// The recurrent model on the AutoNCP(16, 1) wiring.
    #[arg(long, value_enum, default_value = "ltc")]
    model: Model,
    /// Epochs, learning rate, seed (the wiring keeps upstream's seed 22222).
    #[command(flatten)]
    train: TrainArgs,
    /// Burn backend.
    #[arg(long, value_enum, default_value = "ndarray")]
    backend: Backend,
    /// Where the plots go.
    #[arg(long, default_value = "target/ncps/sinusoid")]
    out: PathBuf,
}

fn run<B: AutodiffBackend>(
    args: &Args,
    device: &B::Device,
) -> Result<Run, Box<dyn std::error::Error>> {
    B::seed(device, args.train.seed);
    let wiring = AutoNCP::new(16, 1)?;
    let mut drawn = wiring.clone();
    drawn.build(2)?;
    drawn.save_svg(&args.out.join("wiring.svg"), &DrawOptions::default())?;
    let units = Units::from(wiring);
    let (weights, config) = (
        args.out.join("model.safetensors"),
        args.out.join("model.json"),
    );
    Ok(match args.model {
        Model::Ltc => {
            let (run, model) = train(
                "LTC",
                LTCConfig::new(2, units).init::<B>(device)?,
                args.train.epochs,
                args.train.lr,
                device,
            );
            model.save_upstream(&weights, &config)?;
            run
        }
        Model::Cfc => {
            let (run, model) = train(
                "CfC",
                CfCConfig::new(2, units).init::<B>(device)?,
                args.train.epochs,
                args.train.lr,
                device,
            );
            model.save_upstream(&weights, &config)?;
            run
        }
    })
}

fn plots(out: &Path, run: &Run) -> Result<(), Box<dyn std::error::Error>> {
    register_font();
    let data = SineData::new(48);
    let sin: Vec<f32> = data.inputs.iter().step_by(2).copied().collect();
    let cos: Vec<f32> = data.inputs.iter().skip(1).step_by(2).copied().collect();
    let series = |label, values, color, dashed| Series {
        label,
        values,
        color,
        dashed,
    };
    line_chart(
        &out.join("data.png"),
        "Training data",
        "time step",
        "value",
        &[
            series("input: sin(t)", &sin, BLUE_, false),
            series("input: cos(t)", &cos, ORANGE_, false),
            series("target: sin(2t)", &data.targets, GRAY_, true),
        ],
        false,
    )?;
    line_chart(
        &out.join("loss.png"),
        "Training loss",
        "epoch",
        "MSE (log scale)",
        &[series("training MSE", &run.losses, RED_, false)],
        true,
    )?;
    line_chart(
        &out.join("prediction.png"),
        "Prediction before and after training",
        "time step",
        "output",
        &[
            series("before training", &run.before, ORANGE_, false),
            series("after training", &run.after, GREEN_, false),
            series("target", &data.targets, GRAY_, true),
        ],
        false,
    )?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let run = match args.backend {
        Backend::Ndarray => run::<Autodiff<NdArray>>(&args, &Default::default())?,
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => run::<Autodiff<burn::backend::Wgpu>>(&args, &Default::default())?,
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => return Err("the wgpu backend needs `--features wgpu`".into()),
    };
    println!(
        "{:?} on AutoNCP(16, 1): {} trainable parameters, {} epochs in {:.1} s ({:.1} ms/epoch)",
        args.model,
        run.params,
        args.train.epochs,
        run.elapsed.as_secs_f64(),
        run.elapsed.as_secs_f64() * 1e3 / args.train.epochs.max(1) as f64
    );
    plots(&args.out, &run)?;
    for file in [
        "data.png",
        "loss.png",
        "prediction.png",
        "wiring.svg",
        "model.safetensors",
        "model.json",
    ] {
        println!("wrote {}", args.out.join(file).display());
    }
    println!("final_mse={:.6e}", run.final_mse);
    Ok(())
}
