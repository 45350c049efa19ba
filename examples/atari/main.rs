//! Behavior cloning on Atari Breakout, upstream's flagship example, on the
//! real Arcade Learning Environment: a RAM expert plays and is recorded in
//! upstream's dataset layout, a conv trunk + `CfC(256, 64, proj_size = 4)`
//! learns to imitate it, and the policy then plays closed-loop.
//!
//! ```sh
//! # record + train + play with the default (2-core) preset
//! cargo run --release --features atari --example atari
//! # the longer preset, or one stage at a time
//! cargo run --release --features atari --example atari -- --full
//! cargo run --release --features atari --example atari -- record --games 20
//! cargo run --release --features atari --example atari -- train --model upstream --lr 1e-4
//! cargo run --release --features atari --example atari -- play --games 10 --save-frames target/ncps/atari/frames
//! ```
//!
//! Everything goes to `--root` (default `target/ncps/atari`): the data in
//! `data_atari_seq/breakout/`, checkpoints in `policy/`, the learning
//! curves (`loss.png`, `accuracy.png`) and `results.json`.
//!
//! The binary links the GPL-2.0 emulator: it is GPL-2.0 (the `ncps`
//! library without the `atari` feature stays Apache-2.0).

#[path = "../common/mod.rs"]
mod common;
mod model;
mod play;
#[cfg(test)]
mod tests;
mod train;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Parser, Subcommand};
use common::Backend;
use ncps::datasets::atari::{ACTIONS, EnvConfig, Returns, play_baseline, record, returns_table};

use model::Trunk;
use play::play_policy;
use train::TrainSettings;

#[derive(Parser, Debug)]
#[command(about = "Atari Breakout behavior cloning with a conv + CfC policy")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    common: Common,
    /// The longer preset: more expert games and epochs.
    #[arg(long, global = true)]
    full: bool,
    #[command(flatten)]
    record: RecordArgs,
    #[command(flatten)]
    train: TrainArgs,
    #[command(flatten)]
    play: PlayArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The expert plays; its games are written as npz sequences.
    Record,
    /// Trains the policy on the recorded sequences.
    Train,
    /// The trained policy, the expert and random play, closed-loop.
    Play,
}

#[derive(Args, Debug)]
struct Common {
    /// Data (`data_atari_seq/breakout/`), checkpoints and plots go here.
    #[arg(long, global = true, default_value = "target/ncps/atari")]
    root: PathBuf,
    /// Burn backend.
    #[arg(long, global = true, value_enum, default_value = "ndarray")]
    backend: Backend,
    /// Seed of the weights, the data order and the environments' NOOP starts.
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
}

#[derive(Args, Debug)]
struct RecordArgs {
    /// Expert games to record [preset: 40, --full: 100].
    #[arg(long, global = true)]
    games: Option<usize>,
    /// Of those, games for the validation split [preset: 4, --full: 10].
    #[arg(long, global = true)]
    val_games: Option<usize>,
    /// Probability that a recorded step executes a random movement instead
    /// of the expert's action (which is still the label); 0 records the
    /// pure expert, as upstream's data.
    #[arg(long, global = true, default_value_t = 0.25)]
    noise: f64,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Convolutional trunk: `small` or `upstream` (upstream's ConvBlock).
    #[arg(long, global = true, value_enum)]
    model: Option<Trunk>,
    /// Epochs at most [preset: 10, --full: 30].
    #[arg(long, global = true)]
    epochs: Option<usize>,
    /// Adam learning rate [preset: 1e-3; upstream's 1e-4 with --model upstream].
    #[arg(long, global = true)]
    lr: Option<f64>,
    /// Sequences per batch [preset: 8, --full: 16].
    #[arg(long, global = true)]
    batch_size: Option<usize>,
    /// Train on at most this many sequences per epoch (a random subset
    /// each epoch) [default: all].
    #[arg(long, global = true)]
    sequences_per_epoch: Option<usize>,
    /// No new epoch starts unless it is expected to end within this many
    /// minutes of training [preset: 20, --full: none].
    #[arg(long, global = true)]
    train_minutes: Option<f64>,
}

#[derive(Args, Debug)]
struct PlayArgs {
    /// Closed-loop games of each player [default: 20].
    #[arg(long, global = true)]
    play_games: Option<usize>,
    /// Write the frames of the policy's first game (PNG) and a GIF here.
    #[arg(long, global = true)]
    save_frames: Option<PathBuf>,
    /// Steps after which a game is cut off [preset: 27000, gym's v5 limit].
    #[arg(long, global = true)]
    max_steps: Option<usize>,
}

/// All settings, presets filled in.
struct Settings {
    games: usize,
    val_games: usize,
    train: TrainSettings,
    play_games: usize,
    env: EnvConfig,
}

impl Settings {
    fn new(cli: &Cli) -> Self {
        let full = cli.full;
        let trunk = cli.train.model.unwrap_or(Trunk::Small);
        let default_lr = match trunk {
            Trunk::Small => 1e-3,
            Trunk::Upstream => 1e-4,
        };
        Self {
            games: cli.record.games.unwrap_or(if full { 100 } else { 40 }),
            val_games: cli.record.val_games.unwrap_or(if full { 10 } else { 4 }),
            train: TrainSettings {
                trunk,
                epochs: cli.train.epochs.unwrap_or(if full { 30 } else { 10 }),
                batch_size: cli.train.batch_size.unwrap_or(if full { 16 } else { 8 }),
                lr: cli.train.lr.unwrap_or(default_lr),
                seed: cli.common.seed,
                sequences_per_epoch: cli.train.sequences_per_epoch,
                time_budget: cli
                    .train
                    .train_minutes
                    .or(if full { None } else { Some(20.0) })
                    .map(|m| Duration::from_secs_f64(m * 60.0)),
            },
            play_games: cli.play.play_games.unwrap_or(20),
            env: EnvConfig {
                max_steps: cli.play.max_steps.unwrap_or(27_000),
                seed: cli.common.seed * 1000,
                ..EnvConfig::default()
            },
        }
    }
}

/// Upstream's sequence length.
const SEQ_LEN: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.common.backend {
        Backend::Ndarray => run::<Autodiff<NdArray>>(&cli, &Default::default()),
        #[cfg(feature = "wgpu")]
        Backend::Wgpu => run::<Autodiff<burn::backend::Wgpu>>(&cli, &Default::default()),
        #[cfg(not(feature = "wgpu"))]
        Backend::Wgpu => Err("the wgpu backend needs `--features wgpu`".into()),
    }
}

fn run<B: AutodiffBackend>(
    cli: &Cli,
    device: &B::Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::new(cli);
    let root = &cli.common.root;
    let policy_dir = root.join("policy");
    std::fs::create_dir_all(root)?;
    let start = Instant::now();
    let mut results = serde_json::Map::new();
    let all = cli.command.is_none();
    let mut expert = None;
    if all || matches!(cli.command, Some(Command::Record)) {
        let recorded = record(
            root,
            settings.games,
            settings.val_games,
            SEQ_LEN,
            cli.record.noise,
            &settings.env,
        )?;
        println!(
            "recorded {} expert games ({} steps) in {:.1} s: {} train and {} val sequences of {SEQ_LEN} steps",
            recorded.scores.len(),
            recorded.steps,
            recorded.seconds,
            recorded.train,
            recorded.val
        );
        let total = recorded.action_counts.iter().sum::<usize>().max(1);
        let shares: Vec<String> = ACTIONS
            .iter()
            .zip(recorded.action_counts)
            .map(|(name, c)| format!("{name} {:.1}%", 100.0 * c as f64 / total as f64))
            .collect();
        println!("expert actions (train): {}", shares.join(", "));
        let returns = Returns {
            player: format!("RAM expert recording (noise {})", cli.record.noise),
            scores: recorded.scores,
            steps: (recorded.train + recorded.val) * SEQ_LEN,
            seconds: 0.0,
        };
        println!(
            "recorded expert (noise {}) over {} games: mean {:.1}, std {:.1}",
            cli.record.noise,
            returns.scores.len(),
            returns.mean(),
            returns.std()
        );
        results.insert("expert_recorded".into(), serde_json::to_value(&returns)?);
        results.insert(
            "train_action_counts".into(),
            serde_json::to_value(recorded.action_counts)?,
        );
        expert = Some(returns);
    }
    let mut trained = None;
    if all || matches!(cli.command, Some(Command::Train)) {
        let train::Trained {
            model,
            logs,
            elapsed,
        } = train::train::<B>(root, &policy_dir, &settings.train, device)?;
        train::plot(root, &logs)?;
        println!(
            "trained in {:.0} s; wrote {} and {}",
            elapsed.as_secs_f64(),
            root.join("loss.png").display(),
            root.join("accuracy.png").display()
        );
        results.insert("epochs".into(), serde_json::to_value(&logs)?);
        results.insert("train_seconds".into(), elapsed.as_secs_f64().into());
        trained = Some(model.valid());
    }
    if all || matches!(cli.command, Some(Command::Play)) {
        let inner = device.clone();
        let model = match trained {
            Some(model) => model,
            None => train::load::<B::InnerBackend>(&policy_dir, &inner)?,
        };
        let policy = play_policy(
            &model,
            settings.play_games,
            &settings.env,
            cli.play.save_frames.as_deref(),
            &inner,
        )?;
        let expert_play = play_baseline(true, settings.play_games, &settings.env)?;
        let random = play_baseline(false, settings.play_games, &settings.env)?;
        let mut rows = vec![&policy, &expert_play, &random];
        if let Some(expert) = &expert {
            rows.push(expert);
        }
        let table = returns_table(&rows);
        println!(
            "\nclosed-loop returns (policy: {:.0} s)\n{table}",
            policy.seconds
        );
        println!(
            "policy / random = {:.1}x, policy / expert = {:.0}%",
            policy.mean() / random.mean().max(1e-6),
            100.0 * policy.mean() / expert_play.mean().max(1e-6)
        );
        results.insert("policy".into(), serde_json::to_value(&policy)?);
        results.insert("expert".into(), serde_json::to_value(&expert_play)?);
        results.insert("random".into(), serde_json::to_value(&random)?);
        results.insert("table".into(), table.into());
    }
    let wall = start.elapsed().as_secs_f64();
    results.insert("wall_seconds".into(), wall.into());
    results.insert("full".into(), cli.full.into());
    results.insert("backend".into(), format!("{:?}", cli.common.backend).into());
    let name = match &cli.command {
        None => "results.json",
        Some(Command::Record) => "results-record.json",
        Some(Command::Train) => "results-train.json",
        Some(Command::Play) => "results-play.json",
    };
    write_json(&root.join(name), &results)?;
    println!("total {wall:.0} s; wrote {}", root.join(name).display());
    Ok(())
}

fn write_json(
    path: &Path,
    value: &serde_json::Map<String, serde_json::Value>,
) -> std::io::Result<()> {
    ncps::fs::write_atomically(path, &serde_json::to_vec_pretty(value)?)
}
