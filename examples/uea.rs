//! Sequence classification on the UEA archive: a whole multivariate series
//! to one class (JapaneseVowels: a speaker from 7 to 29 steps of LPC
//! cepstra; BasicMotions: an activity from 100 steps of a smartwatch).
//!
//! Series of different lengths are batched padded, with their lengths
//! (`ncps::datasets::uea`); the classifier reads each series' last valid
//! output (`Rnn::forward_last`, or both directions of a `Bidirectional`)
//! into a linear readout, trained by cross-entropy in the crate's one
//! training loop (`ncps::train`). A fifth of the training split, drawn
//! per run, is held out to pick the best epoch; the test split is read
//! once, at the end.
//!
//! ```sh
//! cargo run --release --example uea -- --data DIR --dataset JapaneseVowels --model cfc
//! cargo run --release --example uea -- --data DIR --dataset BasicMotions --model ltc --bidirectional --runs 5
//! ```
//!
//! `DIR` holds `<Name>_TRAIN.ts` and `<Name>_TEST.ts` (from
//! timeseriesclassification.com). Writes `results.json` (every epoch of
//! every run, test accuracies) and `confusion.png` (the first run's test
//! confusion matrix) to `--out` (`target/ncps/uea/<dataset>-<model>/`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::{PartialDataset, ShuffledDataset};
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::prelude::*;
use clap::{Parser, ValueEnum};
use common::{Bars, register_font};
use ncps::cells::{CfCCellOptions, RecurrentCell};
use ncps::datasets::uea::{Standardization, UeaBatcher, UeaDataset, UeaItem};
use ncps::rnn::{Bidirectional, CfCConfig, LTCConfig, Merge, Rnn, Units};
use ncps::train::{
    Clipping, CrossEntropy, SequenceClassifier, SequenceEncoder, TrainConfig, Trainer, accuracy,
};
use ncps::wirings::AutoNCP;
use plotters::prelude::*;
use serde_json::json;

type B = Autodiff<NdArray>;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    /// CfC, `--units` hidden units, backbone 1 x 2·units.
    Cfc,
    /// LTC on AutoNCP(`--units`, units / 2).
    Ltc,
}

#[derive(Parser, Debug)]
#[command(about = "UEA multivariate time-series classification")]
struct Args {
    /// Folder with <dataset>_TRAIN.ts and <dataset>_TEST.ts.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The problem's name (the files' prefix).
    #[arg(long, default_value = "JapaneseVowels")]
    dataset: String,
    #[arg(long, value_enum, default_value = "cfc")]
    model: Model,
    /// Hidden units (CfC) or neurons (LTC).
    #[arg(long, default_value_t = 32)]
    units: usize,
    /// A forward and a backward model, outputs concatenated.
    #[arg(long)]
    bidirectional: bool,
    /// Independent runs (run k uses seed + k).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 0.005)]
    lr: f64,
    /// Test the last epoch's weights instead of the best validation
    /// epoch's (the held-out fifth then only reports).
    #[arg(long)]
    last: bool,
    /// Global-norm gradient clipping (0: none).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "target/ncps/uea")]
    out: PathBuf,
}

fn main() {
    if let Err(error) = run(&Args::parse()) {
        eprintln!("uea: {error}");
        std::process::exit(1);
    }
}

/// One run's figures.
struct RunResult {
    seed: u64,
    test_accuracy: f64,
    best_epoch: Option<usize>,
    seconds: f64,
    confusion: Vec<Vec<usize>>,
    epochs: Vec<ncps::train::EpochLog>,
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = &args.data else {
        return Err(
            "no --data: give the folder of <dataset>_TRAIN.ts and <dataset>_TEST.ts \
             (download them from timeseriesclassification.com)"
                .into(),
        );
    };
    let mut train = UeaDataset::from_file(dir.join(format!("{}_TRAIN.ts", args.dataset)))?;
    let mut test = UeaDataset::from_file(dir.join(format!("{}_TEST.ts", args.dataset)))?;
    if train.class_names() != test.class_names() {
        return Err("the TRAIN and TEST files list different classes".into());
    }
    let standardization = Standardization::fit(&train);
    standardization.apply(&mut train);
    standardization.apply(&mut test);
    let (dims, classes) = (train.dims(), train.class_names().len());
    println!(
        "{}: {} training and {} test cases, {dims} dims, {classes} classes; {:?}{}",
        args.dataset,
        train.len(),
        test.len(),
        args.model,
        if args.bidirectional {
            ", bidirectional"
        } else {
            ""
        }
    );
    let device = Default::default();
    let train = Arc::new(train);
    let mut results = Vec::new();
    for run in 0..args.runs {
        let seed = args.seed + run as u64;
        B::seed(&device, seed);
        let label = format!("run {}/{}", run + 1, args.runs);
        let result = match (args.model, args.bidirectional) {
            (Model::Cfc, false) => fit(args, &train, &test, cfc(dims, args.units)?, seed, &label)?,
            (Model::Ltc, false) => fit(args, &train, &test, ltc(dims, args.units)?, seed, &label)?,
            (Model::Cfc, true) => {
                let pair = both_ways(|| cfc(dims, args.units))?;
                fit(args, &train, &test, pair, seed, &label)?
            }
            (Model::Ltc, true) => {
                let pair = both_ways(|| ltc(dims, args.units))?;
                fit(args, &train, &test, pair, seed, &label)?
            }
        };
        println!(
            "{label}: test accuracy {:.4} (best epoch {:?}, {:.1} s)",
            result.test_accuracy, result.best_epoch, result.seconds
        );
        results.push(result);
    }
    let accuracies: Vec<f64> = results.iter().map(|r| r.test_accuracy).collect();
    let (mean, std) = common::mean_std(&accuracies);
    let seconds: Vec<f64> = results.iter().map(|r| r.seconds).collect();
    println!(
        "uea dataset={} model={:?} bidirectional={} runs={} test_accuracy={mean:.4} +- {std:.4} \
         seconds_per_run={:.1}",
        args.dataset,
        args.model,
        args.bidirectional,
        results.len(),
        seconds.iter().sum::<f64>() / seconds.len() as f64
    );
    let model = format!("{:?}", args.model).to_lowercase();
    let out = args.out.join(format!(
        "{}-{model}{}",
        args.dataset,
        if args.bidirectional { "-bi" } else { "" }
    ));
    std::fs::create_dir_all(&out)?;
    plot_confusion(
        &out.join("confusion.png"),
        &results[0].confusion,
        test.class_names(),
    )?;
    let runs: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "seed": r.seed,
                "test_accuracy": r.test_accuracy,
                "best_epoch": r.best_epoch,
                "seconds": r.seconds,
                "confusion": r.confusion,
                "epochs": r.epochs.iter().map(|l| json!({
                    "epoch": l.epoch,
                    "train_loss": l.train_loss,
                    "valid_loss": l.valid_loss,
                    "valid_accuracy": l.valid_metrics.get("accuracy"),
                    "train_seconds": l.train_seconds,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let summary = json!({
        "dataset": args.dataset,
        "model": model,
        "bidirectional": args.bidirectional,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "units": args.units,
        "clip": args.clip,
        "weights": if args.last { "last epoch" } else { "best validation epoch" },
        "test_accuracy_mean": mean,
        "test_accuracy_std": std,
        "runs": runs,
    });
    ncps::fs::write_atomically(
        &out.join("results.json"),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}

fn cfc(dims: usize, units: usize) -> Result<ncps::rnn::CfC<B>, ncps::ConfigError> {
    CfCConfig::new(dims, Units::from(units))
        .with_cell(CfCCellOptions::new().with_backbone_units(2 * units))
        .with_return_sequences(false)
        .init(&Default::default())
}

fn ltc(dims: usize, units: usize) -> Result<ncps::rnn::LTC<B>, Box<dyn std::error::Error>> {
    Ok(
        LTCConfig::new(dims, Units::from(AutoNCP::new(units, units / 2)?))
            .with_return_sequences(false)
            .init(&Default::default())?,
    )
}

/// A bidirectional pair of two models `make` builds, outputs concatenated.
fn both_ways<C, E>(
    make: impl Fn() -> Result<Rnn<B, C>, E>,
) -> Result<Bidirectional<B, C, C>, Box<dyn std::error::Error>>
where
    C: RecurrentCell<B>,
    E: Into<Box<dyn std::error::Error>>,
{
    let (forward, backward) = (make().map_err(Into::into)?, make().map_err(Into::into)?);
    Ok(Bidirectional::new(forward, backward, Merge::Concat)?)
}

/// Trains one classifier over `encoder`; its test accuracy and confusion.
fn fit<E>(
    args: &Args,
    train: &Arc<UeaDataset>,
    test: &UeaDataset,
    encoder: E,
    seed: u64,
    label: &str,
) -> Result<RunResult, Box<dyn std::error::Error>>
where
    E: SequenceEncoder<B> + AutodiffModule<B> + ModuleDisplay + Send + 'static,
    E::InnerModule: SequenceEncoder<NdArray> + ModuleDisplay,
{
    let device = Default::default();
    let classes = train.class_names().len();
    let model = SequenceClassifier::new(encoder, classes, &device);
    // A fifth of the training cases, drawn per run, picks the best epoch.
    let shuffled = Arc::new(ShuffledDataset::<_, UeaItem>::new(train.clone(), seed));
    let held_out = train.len() / 5;
    let fitting = PartialDataset::new(shuffled.clone(), held_out, train.len());
    let valid = PartialDataset::new(shuffled, 0, held_out);
    let config = TrainConfig::new(args.epochs, args.batch_size)
        .with_learning_rate(args.lr)
        .with_clipping(if args.clip > 0.0 {
            Clipping::GlobalNorm(args.clip)
        } else {
            Clipping::None
        })
        .with_seed(seed);
    let started = std::time::Instant::now();
    let trained = Trainer::new(config, device).fit(
        model,
        &CrossEntropy,
        &fitting,
        &valid,
        &UeaBatcher,
        &mut Bars::epochs(label),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let best = if args.last {
        trained.last.valid()
    } else {
        trained.model.valid()
    };
    let items: Vec<UeaItem> = (0..test.len()).filter_map(|i| test.get(i)).collect();
    let targets: Vec<usize> = items.iter().map(|item| item.class).collect();
    let batch = Batcher::<NdArray, _, _>::batch(&UeaBatcher, items, &device);
    let logits = best.logits(batch.inputs, batch.lengths);
    let test_accuracy = accuracy(logits.clone(), batch.targets);
    let predicted: Vec<i64> = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .map_err(|e| format!("{e:?}"))?;
    let mut confusion = vec![vec![0; classes]; classes];
    for (&truth, &guess) in targets.iter().zip(&predicted) {
        confusion[truth][guess as usize] += 1;
    }
    Ok(RunResult {
        seed,
        test_accuracy,
        best_epoch: trained.best_epoch,
        seconds,
        confusion,
        epochs: trained.log,
    })
}

/// The confusion matrix as a heat map: rows true classes, columns
/// predicted, each cell's count written in it.
fn plot_confusion(
    path: &Path,
    confusion: &[Vec<usize>],
    names: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    register_font();
    let n = confusion.len();
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "test confusion matrix (rows: true class)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((0..n).into_segmented(), (0..n).into_segmented())?;
    // Labels at the centres of the cells; rows top to bottom in class order.
    let class = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(i) if *i < n => names[if flip { n - 1 - i } else { *i }].clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&|v| class(v, false))
        .y_label_formatter(&|v| class(v, true))
        .x_desc("predicted")
        .y_desc("true")
        .label_style(("sans-serif", 15))
        .draw()?;
    let most = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (truth, row) in confusion.iter().enumerate() {
        for (guess, &count) in row.iter().enumerate() {
            let y = n - 1 - truth;
            let shade = 1.0 - count as f64 / most;
            let color = RGBColor((255.0 * shade) as u8, (255.0 * shade) as u8, 255);
            chart.draw_series(std::iter::once(Rectangle::new(
                [
                    (SegmentValue::Exact(guess), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(guess + 1), SegmentValue::Exact(y + 1)),
                ],
                color.filled(),
            )))?;
            let ink = if shade < 0.5 { WHITE } else { BLACK };
            chart.draw_series(std::iter::once(Text::new(
                count.to_string(),
                (SegmentValue::CenterOf(guess), SegmentValue::CenterOf(y)),
                ("sans-serif", 16).into_font().color(&ink),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}
