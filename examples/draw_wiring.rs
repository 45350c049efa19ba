//! Draws the `AutoNCP(16, 1)` wiring built with 2 inputs to SVG and prints
//! its synapse counts.
//!
//! ```sh
//! cargo run --example draw_wiring -- --out target/wiring.svg --layout shell
//! ```

use std::path::PathBuf;

use clap::Parser;
use ncps::wirings::{AutoNCP, Draw, DrawOptions, Layout, Wiring};

#[derive(Parser)]
#[command(about = "Draw an AutoNCP(16, 1) wiring with 2 inputs to SVG")]
struct Args {
    /// Where to write the SVG.
    #[arg(long, default_value = "target/ncps/draw_wiring.svg")]
    out: PathBuf,
    /// shell, circular, spiral, random, spring, kamada_kawai or spectral.
    #[arg(long, default_value = "shell")]
    layout: Layout,
    /// Write each node's name under it.
    #[arg(long)]
    labels: bool,
    /// Seed of the wiring.
    #[arg(long, default_value_t = 22222)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut wiring = AutoNCP::new(16, 1)?.with_seed(args.seed);
    wiring.build(2)?;

    let ncp = wiring.ncp();
    println!(
        "AutoNCP(16, 1) with 2 inputs: {} inter, {} command, {} motor neurons",
        ncp.args().inter_neurons,
        ncp.args().command_neurons,
        ncp.args().motor_neurons
    );
    println!("synapses: {}", wiring.synapse_count());
    println!("sensory synapses: {}", wiring.sensory_synapse_count());

    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let options = DrawOptions::default()
        .with_layout(args.layout)
        .with_labels(args.labels);
    wiring.save_svg(&args.out, &options)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
