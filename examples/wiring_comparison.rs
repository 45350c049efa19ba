//! Fully connected, random and NCP wirings on the same task (upstream's
//! Colab notebook, done again): parameter and synapse counts, the NCP's
//! sparsity, one loss plot with every model's curve, an SVG per wiring, and
//! a summary table.
//!
//! ```sh
//! cargo run --release --example wiring_comparison
//! cargo run --release --example wiring_comparison -- --epochs 100 --no-cfc
//! ```

mod common;

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::Backend as _;
use clap::Parser;
use common::{BLUE_, GREEN_, ORANGE_, Run, Series, TrainArgs, line_chart, register_font, train};
use ncps::rnn::{CfCConfig, LTCConfig, Units};
use ncps::wirings::{AnyWiring, AutoNCP, Draw, DrawOptions, FullyConnected, Random, Wiring};
use plotters::style::RGBColor;

type B = Autodiff<NdArray>;

#[derive(Parser, Debug)]
#[command(about = "Compare wirings on the sine task")]
struct Args {
    /// Epochs per model, learning rate, seed.
    #[command(flatten)]
    train: TrainArgs,
    /// Leave out the CfC rows.
    #[arg(long)]
    no_cfc: bool,
    /// Where the plots go.
    #[arg(long, default_value = "target/ncps/wiring_comparison")]
    out: PathBuf,
}

struct Row {
    model: &'static str,
    wiring: &'static str,
    synapses: usize,
    sensory: usize,
    run: Run,
    color: RGBColor,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let device = Default::default();
    let wirings: Vec<(&'static str, &'static str, AnyWiring, RGBColor)> = vec![
        (
            "FullyConnected(8, 1)",
            "fully_connected",
            FullyConnected::new(8, 1)?.into(),
            BLUE_,
        ),
        (
            "Random(8, 1, 0.75)",
            "random",
            Random::new(8, 1, 0.75)?.into(),
            ORANGE_,
        ),
        (
            "AutoNCP(8, 1)",
            "autoncp",
            AutoNCP::new(8, 1)?.into(),
            GREEN_,
        ),
    ];

    let mut rows = Vec::new();
    for (name, file, wiring, color) in &wirings {
        let mut built = wiring.clone();
        built.build(2)?;
        let path = args.out.join(format!("{file}.svg"));
        built.save_svg(&path, &DrawOptions::default().with_labels(true))?;
        println!(
            "{name:<22} {:>3} synapses, {:>2} sensory synapses  -> {}",
            built.synapse_count(),
            built.sensory_synapse_count(),
            path.display()
        );
        let models: &[&'static str] = if args.no_cfc {
            &["LTC"]
        } else {
            &["LTC", "CfC"]
        };
        for &model in models {
            B::seed(&device, args.train.seed);
            let units = Units::from(wiring.clone());
            let label = format!("{model} {name}");
            let run = match model {
                "LTC" => {
                    train(
                        &label,
                        LTCConfig::new(2, units).init::<B>(&device)?,
                        args.train.epochs,
                        args.train.lr,
                        &device,
                    )
                    .0
                }
                _ => {
                    train(
                        &label,
                        CfCConfig::new(2, units).init::<B>(&device)?,
                        args.train.epochs,
                        args.train.lr,
                        &device,
                    )
                    .0
                }
            };
            println!(
                "  {model}: {} trainable parameters, final MSE {:.3e}",
                run.params, run.final_mse
            );
            rows.push(Row {
                model,
                wiring: name,
                synapses: built.synapse_count(),
                sensory: built.sensory_synapse_count(),
                run,
                color: *color,
            });
        }
    }

    let full = rows
        .iter()
        .find(|r| r.wiring.starts_with("Fully"))
        .map_or(64, |r| r.synapses);
    let ncp = rows
        .iter()
        .find(|r| r.wiring.starts_with("AutoNCP"))
        .map_or(0, |r| r.synapses);
    println!(
        "NCP sparsity against the fully connected wiring: {:.2}% ({ncp} of {full} synapses)",
        100.0 * (1.0 - ncp as f64 / full as f64)
    );

    register_font();
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.model, r.wiring))
        .collect();
    let series: Vec<Series<'_>> = rows
        .iter()
        .zip(&labels)
        .map(|(r, label)| Series {
            label,
            values: &r.run.losses,
            color: r.color,
            dashed: r.model == "CfC",
        })
        .collect();
    let losses = args.out.join("losses.png");
    line_chart(
        &losses,
        "Training loss by wiring",
        "epoch",
        "MSE (log scale)",
        &series,
        true,
    )?;
    println!("wrote {}", losses.display());

    println!();
    println!(
        "| model | wiring | synapses | sensory synapses | trainable parameters | final MSE | ms/epoch |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.3e} | {:.1} |",
            r.model,
            r.wiring,
            r.synapses,
            r.sensory,
            r.run.params,
            r.run.final_mse,
            r.run.elapsed.as_secs_f64() * 1e3 / args.train.epochs.max(1) as f64
        );
    }
    Ok(())
}
