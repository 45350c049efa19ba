//! How the cost of LTC and CfC grows with batch size, sequence length and
//! units, on Burn's ndarray backend (inference: `NdArray<f32>`; training
//! step: `Autodiff<NdArray<f32>>`, forward + `mean(y^2)` + backward + Adam
//! 1e-3), optionally drawn against upstream Python ncps (torch), which
//! `benches/scaling.py` times on the same grid.
//!
//! ```sh
//! cargo bench --bench scaling                          # all three sweeps
//! cargo bench --bench scaling -- --quick               # a reduced grid
//! cargo bench --bench scaling -- --sweep batch         # one sweep (repeatable)
//! /tmp/ncps-ref/bin/python benches/scaling.py          # torch: torch-<sweep>.csv
//! cargo bench --bench scaling -- --replot --torch target/ncps/scaling
//! cargo bench --bench scaling -- --peak ltc_train_b32_l64   # for benches/peak_memory.sh
//! cargo bench --bench scaling -- --help                # every option
//! ```
//!
//! The sweeps (models: `LTC(32, AutoNCP(u, 8))`, `CfC(32, u)`, u = 64 unless
//! swept; 32 input features):
//!
//! - `batch`: batch 1, 4, 16, 64, 256 at length 64;
//! - `length`: length 8, 32, 128, 512 at batch 32;
//! - `units`: u = 16, 32, 64, 128, 256 at batch 32, length 64.
//!
//! Each point is the median of at least 5 runs and 1 s (`--min-s`; at most
//! 200 runs), after 1 warm-up run. A training point whose warm-up run takes
//! longer than `--max-train-s` (default 5 s) is skipped and recorded as
//! `skipped`. `--only NAME[,NAME]` times just those points and updates
//! their rows in the CSV already there. The CPU time other processes took meanwhile is recorded too
//! (column `others`, in cores, from `/proc`); `--idle CORES` (e.g. 0.1) waits
//! before each point until other processes use less than that, and times a
//! point again (3 tries at most) when they used more meanwhile: for a
//! shared machine.
//!
//! Output, under `--out` (default `target/ncps/scaling`): one markdown table
//! per sweep on stdout, `<sweep>.csv` and `<sweep>.png` (log-log). The CSV
//! columns are `sweep,model,mode,batch,length,units,median_ms,runs,others`,
//! the same as `scaling.py` writes. `--torch PATH` (a CSV file or a directory
//! holding `torch-<sweep>.csv`) adds torch's points as dashed lines and
//! prints a torch/ncps comparison table; `--replot` reads `<sweep>.csv`
//! back instead of timing.
//!
//! `--peak NAME` (`{ltc,cfc}_{infer,train}_b<B>_l<L>[_u<U>]`) builds that
//! workload, runs it `--steps` times (default 5, no warm-up), prints the
//! process's peak resident set (`VmHWM`) and exits.

mod common;
// The examples' charts: font and palette.
#[path = "../examples/common/plot.rs"]
mod plot;

use std::collections::BTreeMap;
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use ncps::cells::RecurrentCell;
use ncps::rnn::{CfC, CfCConfig, LTC, LTCConfig, Rnn, Units};
use ncps::wirings::AutoNCP;
use plotters::prelude::*;

type Infer = NdArray<f32>;
type Train = Autodiff<NdArray<f32>>;

const FEATURES: usize = 32;

// ---------------------------------------------------------------- workloads

fn ltc<B: Backend>(units: usize, device: &B::Device) -> LTC<B> {
    LTCConfig::new(
        FEATURES,
        Units::from(AutoNCP::new(units, 8).expect("valid wiring")),
    )
    .init(device)
    .expect("valid config")
}

fn cfc<B: Backend>(units: usize, device: &B::Device) -> CfC<B> {
    CfCConfig::new(FEATURES, Units::from(units))
        .init(device)
        .expect("valid config")
}

fn input<B: Backend>(batch: usize, length: usize, device: &B::Device) -> Tensor<B, 3> {
    Tensor::random(
        [batch, length, FEATURES],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

fn infer<B: Backend, C: RecurrentCell<B> + 'static>(
    model: Rnn<B, C>,
    x: Tensor<B, 3>,
) -> Box<dyn FnMut()> {
    Box::new(move || {
        let (y, _) = model.forward(x.clone(), None);
        black_box(y.into_data());
    })
}

fn train<B, C>(model: Rnn<B, C>, x: Tensor<B, 3>) -> Box<dyn FnMut()>
where
    B: AutodiffBackend,
    C: RecurrentCell<B> + AutodiffModule<B> + 'static,
    Rnn<B, C>: AutodiffModule<B>,
{
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut model = Some(model);
    Box::new(move || {
        let m = model.take().expect("put back every run");
        let (y, _) = m.forward(x.clone(), None);
        let loss = y.square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optimizer.step(1e-3, m, grads));
    })
}

/// One point of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Workload {
    model: &'static str, // "ltc" | "cfc"
    mode: &'static str,  // "infer" | "train"
    batch: usize,
    length: usize,
    units: usize,
}

impl Workload {
    /// The closure one run calls; the model and input are built (seeded) here.
    fn build(&self) -> Box<dyn FnMut()> {
        let (b, l, u) = (self.batch, self.length, self.units);
        match (self.model, self.mode) {
            ("ltc", "infer") => {
                let d = Default::default();
                Infer::seed(&d, 0);
                infer(ltc::<Infer>(u, &d), input::<Infer>(b, l, &d))
            }
            ("cfc", "infer") => {
                let d = Default::default();
                Infer::seed(&d, 0);
                infer(cfc::<Infer>(u, &d), input::<Infer>(b, l, &d))
            }
            ("ltc", "train") => {
                let d = Default::default();
                Train::seed(&d, 0);
                train(ltc::<Train>(u, &d), input::<Train>(b, l, &d))
            }
            ("cfc", "train") => {
                let d = Default::default();
                Train::seed(&d, 0);
                train(cfc::<Train>(u, &d), input::<Train>(b, l, &d))
            }
            other => panic!("unknown workload {other:?}"),
        }
    }

    /// `ltc_train_b32_l64` (units 64) or `ltc_train_b32_l64_u128`.
    fn name(&self) -> String {
        let mut s = format!(
            "{}_{}_b{}_l{}",
            self.model, self.mode, self.batch, self.length
        );
        if self.units != 64 {
            s += &format!("_u{}", self.units);
        }
        s
    }

    fn parse(name: &str) -> Option<Workload> {
        let parts: Vec<&str> = name.split('_').collect();
        if !(4..=5).contains(&parts.len()) {
            return None;
        }
        let model = match parts[0] {
            "ltc" => "ltc",
            "cfc" => "cfc",
            _ => return None,
        };
        let mode = match parts[1] {
            "infer" => "infer",
            "train" => "train",
            _ => return None,
        };
        let num = |p: &str, prefix: char| p.strip_prefix(prefix)?.parse::<usize>().ok();
        Some(Workload {
            model,
            mode,
            batch: num(parts[2], 'b')?,
            length: num(parts[3], 'l')?,
            units: match parts.get(4) {
                Some(p) => num(p, 'u')?,
                None => 64,
            },
        })
    }
}

// ------------------------------------------------------------------- sweeps

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Sweep {
    Batch,
    Length,
    Units,
}

impl Sweep {
    const ALL: [Sweep; 3] = [Sweep::Batch, Sweep::Length, Sweep::Units];

    fn name(self) -> &'static str {
        match self {
            Sweep::Batch => "batch",
            Sweep::Length => "length",
            Sweep::Units => "units",
        }
    }

    fn values(self, quick: bool) -> &'static [usize] {
        match (self, quick) {
            (Sweep::Batch, false) => &[1, 4, 16, 64, 256],
            (Sweep::Batch, true) => &[1, 16, 64],
            (Sweep::Length, false) => &[8, 32, 128, 512],
            (Sweep::Length, true) => &[8, 32, 128],
            (Sweep::Units, false) => &[16, 32, 64, 128, 256],
            (Sweep::Units, true) => &[16, 64, 128],
        }
    }

    fn x(self, w: &Workload) -> usize {
        match self {
            Sweep::Batch => w.batch,
            Sweep::Length => w.length,
            Sweep::Units => w.units,
        }
    }

    fn x_label(self) -> &'static str {
        match self {
            Sweep::Batch => "batch size",
            Sweep::Length => "sequence length",
            Sweep::Units => "units (LTC: AutoNCP(u, 8); CfC: u hidden)",
        }
    }

    fn fixed(self) -> &'static str {
        match self {
            Sweep::Batch => "sequence length 64",
            Sweep::Length => "batch 32",
            Sweep::Units => "batch 32, length 64",
        }
    }

    /// Every point, in the order they are timed.
    fn workloads(self, quick: bool) -> Vec<Workload> {
        let mut out = Vec::new();
        for model in ["ltc", "cfc"] {
            for mode in ["infer", "train"] {
                for &v in self.values(quick) {
                    let (batch, length, units) = match self {
                        Sweep::Batch => (v, 64, 64),
                        Sweep::Length => (32, v, 64),
                        Sweep::Units => (32, 64, v),
                    };
                    out.push(Workload {
                        model,
                        mode,
                        batch,
                        length,
                        units,
                    });
                }
            }
        }
        out
    }
}

/// One timed point: `None` when skipped.
#[derive(Clone, Copy, Debug)]
struct Row {
    work: Workload,
    ms: Option<f64>,
    runs: usize,
    /// Cores other processes kept busy meanwhile, on average.
    others: Option<f64>,
    /// When skipped: how long the warm-up run took (s).
    skipped_s: Option<f64>,
}

/// Median milliseconds of at least 5 runs and `min_s` seconds (at most 200
/// runs) after one warm-up run, and the number of runs; `Err(seconds of the
/// warm-up run)` when that took longer than `skip_above_s`.
fn median_ms(mut f: impl FnMut(), min_s: f64, skip_above_s: f64) -> Result<(f64, usize), f64> {
    let t0 = Instant::now();
    f();
    let warm_up = t0.elapsed().as_secs_f64();
    if warm_up > skip_above_s {
        return Err(warm_up);
    }
    Ok(common::median_ms(f, min_s))
}

/// Busy CPU time of the whole machine and of this process (all threads),
/// from `/proc` (Linux; `None` elsewhere): how much of the machine other
/// processes used while a point was timed.
#[derive(Clone, Copy)]
struct CpuClock {
    at: Instant,
    busy_s: f64,
    mine_s: f64,
}

impl CpuClock {
    fn now() -> Option<CpuClock> {
        // USER_HZ: 100 on every Linux platform.
        const TICK: f64 = 0.01;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal: all but idle and iowait.
        let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| cpu.get(i)).sum();
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After "(command) ": state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = me[me.rfind(')')? + 2..].split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(CpuClock {
            at: Instant::now(),
            busy_s: busy as f64 * TICK,
            mine_s: (utime + stime) as f64 * TICK,
        })
    }

    /// Cores that other processes kept busy, on average, since `self`.
    fn others(&self) -> Option<f64> {
        let now = CpuClock::now()?;
        let wall = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let others = (now.busy_s - self.busy_s) - (now.mine_s - self.mine_s);
        Some((others / wall).max(0.0))
    }
}

/// Waits until other processes use less than `limit` cores over a second
/// (20 minutes at most).
fn wait_idle(limit: f64) {
    let start = Instant::now();
    let mut told = false;
    loop {
        let Some(clock) = CpuClock::now() else { return };
        std::thread::sleep(std::time::Duration::from_secs(1));
        let others = clock.others().unwrap_or(0.0);
        if others < limit {
            return;
        }
        if start.elapsed().as_secs() > 20 * 60 {
            eprintln!("  still busy after 20 minutes ({others:.2} cores): timing anyway");
            return;
        }
        if !told {
            eprintln!("  waiting for the machine: other processes use {others:.2} cores");
            told = true;
        }
    }
}

/// Times one point. With `idle`, waits for the machine first, and times the
/// point again (3 tries at most, the least perturbed kept) when other
/// processes used `idle` cores or more meanwhile.
fn measure(work: &Workload, min_s: f64, skip_above_s: f64, idle: Option<f64>) -> Row {
    let mut best: Option<Row> = None;
    for attempt in 0..3 {
        if let Some(limit) = idle {
            wait_idle(limit);
        }
        let clock = CpuClock::now();
        let timed = median_ms(work.build(), min_s, skip_above_s);
        let others = clock.and_then(|c| c.others());
        let row = Row {
            work: *work,
            ms: timed.ok().map(|t| t.0),
            runs: timed.map_or(0, |t| t.1),
            others,
            skipped_s: timed.err(),
        };
        let load = |r: &Row| r.others.unwrap_or(0.0);
        if best.is_none_or(|b| load(&row) < load(&b)) {
            best = Some(row);
        }
        let quiet = match (idle, others) {
            (Some(limit), Some(o)) => o < limit,
            _ => true,
        };
        if quiet {
            break;
        }
        eprintln!(
            "  {}: other processes used {:.2} cores; {}",
            work.name(),
            load(&row),
            if attempt < 2 {
                "again"
            } else {
                "keeping the least perturbed try"
            }
        );
    }
    best.expect("one try at least")
}

// ---------------------------------------------------------------------- csv

const HEADER: &str = "sweep,model,mode,batch,length,units,median_ms,runs,others";

fn write_csv(path: &Path, sweep: Sweep, rows: &[Row]) -> std::io::Result<()> {
    let mut s = String::from(HEADER);
    s.push('\n');
    for r in rows {
        let w = r.work;
        let ms = r.ms.map_or("skipped".to_string(), |m| format!("{m:.3}"));
        s += &format!(
            "{},{},{},{},{},{},{},{},{}\n",
            sweep.name(),
            w.model,
            w.mode,
            w.batch,
            w.length,
            w.units,
            ms,
            r.runs,
            r.others.map_or(String::new(), |o| format!("{o:.2}"))
        );
    }
    std::fs::write(path, s)
}

/// The rows of `sweep` in a CSV file of the format above (other sweeps'
/// rows are left out).
fn read_csv(path: &Path, sweep: Sweep) -> Result<Vec<Row>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.trim().split(',').collect();
        if !(8..=9).contains(&f.len()) {
            return Err(format!("{}:{}: expected 8 or 9 fields", path.display(), i + 1).into());
        }
        if f[0] != sweep.name() {
            continue;
        }
        let name = format!("{}_{}_b{}_l{}_u{}", f[1], f[2], f[3], f[4], f[5]);
        let work = Workload::parse(&name)
            .ok_or_else(|| format!("{}:{}: bad workload {name}", path.display(), i + 1))?;
        rows.push(Row {
            work,
            ms: f[6].parse::<f64>().ok(),
            runs: f[7].parse().unwrap_or(0),
            others: f.get(8).and_then(|o| o.parse().ok()),
            skipped_s: None,
        });
    }
    Ok(rows)
}

// ------------------------------------------------------------------- tables

fn fmt_ms(ms: Option<f64>) -> String {
    ms.map_or("skipped".to_string(), |m| format!("{m:.3}"))
}

/// `| batch | ltc infer | ltc train | cfc infer | cfc train |`, in ms.
fn print_table(sweep: Sweep, who: &str, rows: &[Row]) {
    let xs: Vec<usize> = {
        let mut v: Vec<usize> = rows.iter().map(|r| sweep.x(&r.work)).collect();
        v.sort();
        v.dedup();
        v
    };
    let cols = [
        ("ltc", "infer"),
        ("ltc", "train"),
        ("cfc", "infer"),
        ("cfc", "train"),
    ];
    println!(
        "\n### {who}: time vs {} ({}), median ms\n",
        sweep.name(),
        sweep.fixed()
    );
    println!(
        "| {} | {} |",
        sweep.name(),
        cols.map(|(m, d)| format!("{m} {d}")).join(" | ")
    );
    println!("|---:|{}", "---:|".repeat(cols.len()));
    for x in xs {
        let cells = cols.map(|(m, d)| {
            rows.iter()
                .find(|r| r.work.model == m && r.work.mode == d && sweep.x(&r.work) == x)
                .map_or("-".to_string(), |r| fmt_ms(r.ms))
        });
        println!("| {x} | {} |", cells.join(" | "));
    }
}

/// One row per point both sides have: torch ms, ncps ms, speed-up (torch/ncps).
fn print_comparison(sweep: Sweep, ours: &[Row], torch: &[Row]) {
    println!(
        "\n### torch vs ncps: {} sweep ({}), median ms; speed-up = torch / ncps\n",
        sweep.name(),
        sweep.fixed()
    );
    println!(
        "| model | mode | {} | torch ms | ncps ms | speed-up |",
        sweep.name()
    );
    println!("|---|---|---:|---:|---:|---:|");
    for r in ours {
        let t = torch.iter().find(|t| t.work == r.work).and_then(|t| t.ms);
        let ratio = match (t, r.ms) {
            (Some(t), Some(o)) => format!("{:.2}x", t / o),
            _ => "-".to_string(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.work.model,
            r.work.mode,
            sweep.x(&r.work),
            t.map_or("-".to_string(), |t| format!("{t:.3}")),
            fmt_ms(r.ms),
            ratio
        );
    }
}

// --------------------------------------------------------------------- plot

fn color(model: &str, mode: &str) -> RGBColor {
    match (model, mode) {
        ("ltc", "infer") => plot::BLUE_,
        ("ltc", "train") => plot::ORANGE_,
        ("cfc", "infer") => plot::GREEN_,
        _ => plot::RED_,
    }
}

/// A tick label: `16`, `2.5`, `0.12`.
fn tick(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_string()
    } else {
        format!("{v:.2}")
    }
}

/// Log-log chart of every (model, mode) line: ours solid with dots, torch's
/// dashed with triangles.
fn plot(path: &Path, sweep: Sweep, ours: &[Row], torch: &[Row]) -> Result<(), Box<dyn Error>> {
    type Line = (String, Vec<(f64, f64)>, RGBColor, bool);
    let mut lines: Vec<Line> = Vec::new();
    for (who, rows, dashed) in [("ncps", ours, false), ("torch", torch, true)] {
        let mut by: BTreeMap<(&str, &str), Vec<(f64, f64)>> = BTreeMap::new();
        for r in rows {
            if let Some(ms) = r.ms {
                by.entry((r.work.model, r.work.mode))
                    .or_default()
                    .push((sweep.x(&r.work) as f64, ms));
            }
        }
        // Legend order: ltc infer, ltc train, cfc infer, cfc train.
        for key in [
            ("ltc", "infer"),
            ("ltc", "train"),
            ("cfc", "infer"),
            ("cfc", "train"),
        ] {
            if let Some(mut pts) = by.remove(&key) {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let model = if key.0 == "ltc" { "LTC" } else { "CfC" };
                // Skipped points are named in the legend.
                let skipped: Vec<String> = rows
                    .iter()
                    .filter(|r| (r.work.model, r.work.mode) == key && r.ms.is_none())
                    .map(|r| sweep.x(&r.work).to_string())
                    .collect();
                let mut label = format!("{who} {model} {}", key.1);
                if !skipped.is_empty() {
                    label += &format!(" ({} skipped)", skipped.join(", "));
                }
                lines.push((label, pts, color(key.0, key.1), dashed));
            }
        }
    }
    let all = lines.iter().flat_map(|l| l.1.iter().copied());
    let (x0, x1, y0, y1) = all.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), (x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if !x0.is_finite() {
        return Err("nothing to plot".into());
    }

    // Ticks: the swept values on x, 1-2-5 steps on y.
    let mut xs: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.0)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (y_lo, y_hi) = (y0 / 1.5, y1 * 8.0);
    let mut ys = Vec::new();
    let mut decade = 10f64.powf(y_lo.log10().floor());
    while decade <= y_hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if (y_lo..=y_hi).contains(&v) {
                ys.push(v);
            }
        }
        decade *= 10.0;
    }

    let (xs_len, ys_len) = (xs.len(), ys.len());
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("Time vs {} ({})", sweep.name(), sweep.fixed());
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            LogCoord::from((x0 / 1.3..x1 * 1.3).log_scale()).with_key_points(xs),
            // Headroom above for the legend in the upper left.
            LogCoord::from((y_lo..y_hi).log_scale()).with_key_points(ys),
        )?;
    chart
        .configure_mesh()
        .x_desc(sweep.x_label())
        .y_desc("median time per call (ms)")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .x_labels(xs_len)
        .y_labels(ys_len)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (label, pts, c, dashed) in &lines {
        let c = *c;
        let style = c.stroke_width(2);
        let drawn = if *dashed {
            chart.draw_series(DashedLineSeries::new(pts.clone(), 7, 5, style))?
        } else {
            chart.draw_series(LineSeries::new(pts.clone(), style))?
        };
        if *dashed {
            drawn.label(label).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], c.stroke_width(2))
                    + PathElement::new(vec![(13, 0), (20, 0)], c.stroke_width(2))
            });
            chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 4, c.filled())))?;
        } else {
            drawn.label(label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    root.present()?;
    Ok(())
}

// --------------------------------------------------------------------- main

/// The command line (the module docs say what each option does).
#[derive(clap::Parser, Debug)]
#[command(about = "How the cost of LTC and CfC grows with batch, length and units")]
struct Args {
    /// Build workload NAME ({ltc,cfc}_{infer,train}_b<B>_l<L>[_u<U>]), run
    /// it --steps times, print the peak resident set and exit.
    #[arg(long, value_name = "NAME")]
    peak: Option<String>,
    /// Runs of the --peak workload.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// A reduced grid.
    #[arg(long)]
    quick: bool,
    /// Read <sweep>.csv back instead of timing.
    #[arg(long)]
    replot: bool,
    /// Minimum seconds of runs per point.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    min_s: f64,
    /// Skip a training point whose warm-up run takes longer.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    max_train_s: f64,
    /// Wait until other processes use fewer cores than this.
    #[arg(long, value_name = "CORES")]
    idle: Option<f64>,
    /// Where the CSV files and plots go.
    #[arg(long, default_value = "target/ncps/scaling")]
    out: PathBuf,
    /// torch's points: a CSV file or a directory with torch-<sweep>.csv.
    #[arg(long)]
    torch: Option<PathBuf>,
    /// Time only these points (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    only: Vec<String>,
    /// The sweeps to run (comma-separated or repeated; default all).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<Sweep>,
    /// What `cargo bench` passes to a bench without the test harness.
    #[arg(long, hide = true)]
    bench: bool,
}

fn peak(name: &str, steps: usize) {
    let work = Workload::parse(name).unwrap_or_else(|| {
        panic!("--peak {name}: expected {{ltc,cfc}}_{{infer,train}}_b<B>_l<L>[_u<U>]")
    });
    let mut run = work.build();
    for _ in 0..steps {
        run();
    }
    common::print_peak(name, steps);
}

/// The torch rows of `sweep`: `path` is a CSV file or a directory with
/// `torch-<sweep>.csv`.
fn torch_rows(path: &Path, sweep: Sweep) -> Result<Vec<Row>, Box<dyn Error>> {
    if path.is_dir() {
        let file = path.join(format!("torch-{}.csv", sweep.name()));
        if file.exists() {
            read_csv(&file, sweep)
        } else {
            Ok(Vec::new())
        }
    } else {
        read_csv(path, sweep)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let Args {
        peak: peak_name,
        steps,
        quick,
        replot,
        min_s,
        max_train_s,
        idle,
        out,
        torch,
        only,
        sweep,
        bench: _,
    } = clap::Parser::parse();
    if let Some(name) = peak_name {
        peak(&name, steps);
        return Ok(());
    }
    let sweeps = match sweep {
        v if v.is_empty() => Sweep::ALL.to_vec(),
        v => v,
    };
    std::fs::create_dir_all(&out)?;
    plot::register_font();

    for sweep in sweeps {
        let csv = out.join(format!("{}.csv", sweep.name()));
        let rows = if replot {
            read_csv(&csv, sweep)?
        } else {
            let grid = sweep.workloads(quick);
            if !only.is_empty() && !grid.iter().any(|w| only.contains(&w.name())) {
                continue;
            }
            // With --only, the other points come from the CSV already there.
            let before = if only.is_empty() || !csv.exists() {
                Vec::new()
            } else {
                read_csv(&csv, sweep)?
            };
            let mut rows = Vec::new();
            for work in grid {
                if !only.is_empty() && !only.contains(&work.name()) {
                    rows.extend(before.iter().find(|r| r.work == work).copied());
                    continue;
                }
                let skip = if work.mode == "train" {
                    max_train_s
                } else {
                    f64::INFINITY
                };
                let row = measure(&work, min_s, skip, idle);
                eprintln!(
                    "{:<24} {:>12} ms ({} runs; others {} cores)",
                    work.name(),
                    fmt_ms(row.ms),
                    row.runs,
                    row.others.map_or("?".to_string(), |o| format!("{o:.2}"))
                );
                if let Some(s) = row.skipped_s {
                    eprintln!("  skipped: the warm-up run took {s:.1} s (> {max_train_s} s)");
                }
                rows.push(row);
            }
            write_csv(&csv, sweep, &rows)?;
            rows
        };
        print_table(sweep, "ncps (Burn NdArray<f32>)", &rows);
        let theirs = match &torch {
            Some(p) => torch_rows(p, sweep)?,
            None => Vec::new(),
        };
        if !theirs.is_empty() {
            print_table(sweep, "torch (upstream ncps 1.0.1)", &theirs);
            print_comparison(sweep, &rows, &theirs);
        }
        let png = out.join(format!("{}.png", sweep.name()));
        plot(&png, sweep, &rows, &theirs)?;
        if replot {
            eprintln!("wrote {}", png.display());
        } else {
            eprintln!("wrote {} and {}", csv.display(), png.display());
        }
    }
    Ok(())
}
