//! The benchmark workloads of upstream's reference script
//! (`shared/bench/reference.py` in the project's steering repo), timed the
//! same way: median of at least 5 runs and 2 seconds (at most 200 runs),
//! after 2 warm-up runs. One line per workload: `<name> <median ms> ms`.
//!
//! ```sh
//! cargo bench --bench workloads
//! cargo bench --bench workloads -- --only ltc_step_b1
//! cargo bench --bench workloads -- --path reference      # without the fused kernels
//! cargo bench --features wgpu --bench workloads -- --backend wgpu
//! ```
//!
//! Options: `--only NAME[,NAME..]` (those workloads, in the bench's
//! order, in one process), `--path fused|reference` (the LTC step and
//! the CfC sequence; default fused), `--backend ndarray|wgpu` (default ndarray; wgpu needs the
//! feature). `benches/compare.sh` runs upstream's reference script and this
//! bench in one go and prints the ratios. `--peak NAME [--steps N]` builds
//! one workload, runs it N times (default 5) untimed and prints the
//! process's peak resident set (`VmHWM`), for `benches/peak_memory.sh`.
//!
//! On Linux with glibc the bench first tells `malloc` to keep freed memory
//! for reuse (`common::hold_freed_memory`), as docs/quickstart.md
//! recommends for training; `NCPS_BENCH_MALLOC=default` runs it on glibc's
//! defaults. docs/performance.md gives both. The setting is printed to
//! stderr.

mod common;

use std::hint::black_box;

#[cfg(feature = "wgpu")]
use burn::backend::Wgpu;
use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use ncps::cells::{Activation, CfCCellOptions, CfCMode, LTCCellOptions, RecurrentCell};
use ncps::datasets::sine::{SineBatcher, SineData};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, Units};
use ncps::train::{Clipping, SequenceMse, Stepper, TrainConfig};
use ncps::wirings::{AutoNCP, FullyConnected};

/// Two warm-up runs, then upstream's protocol with at least 2 seconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    common::median_ms(f, 2.0).0
}

fn cfc<B: Backend>(device: &B::Device, fused: bool) -> Rnn<B, ncps::rnn::AnyCfCCell<B>> {
    CfCConfig::new(32, Units::from(64))
        .with_cell(CfCCellOptions::new().with_fused(fused))
        .init(device)
        .expect("valid config")
}

/// A CfC on an NCP wiring, `CfC(32, AutoNCP(64, 8))`: always the tensor
/// ops (the fused CfC is dense only).
fn wired_cfc<B: Backend>(device: &B::Device) -> Rnn<B, ncps::rnn::AnyCfCCell<B>> {
    CfCConfig::new(32, Units::from(AutoNCP::new(64, 8).expect("valid wiring")))
        .init(device)
        .expect("valid config")
}

fn ltc<B: Backend>(device: &B::Device, fused: bool) -> Rnn<B, ncps::cells::LTCCell<B>> {
    LTCConfig::new(32, Units::from(AutoNCP::new(64, 8).expect("valid wiring")))
        .with_cell(LTCCellOptions::new().with_fused(fused))
        .init(device)
        .expect("valid config")
}

fn input<B: Backend>(shape: [usize; 3], device: &B::Device) -> Tensor<B, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn infer<B: Backend, C: RecurrentCell<B>>(model: Rnn<B, C>) -> impl FnMut() {
    let x = input::<B>([32, 64, 32], &Default::default());
    move || {
        let (y, _) = model.forward(x.clone(), None);
        black_box(y.into_data());
    }
}

/// One training step (forward, `mean(y²)`, backward, Adam) on batch 32
/// of `steps` steps.
fn train<B, C>(model: Rnn<B, C>, steps: usize) -> impl FnMut()
where
    B: AutodiffBackend,
    C: RecurrentCell<B> + AutodiffModule<B>,
    Rnn<B, C>: AutodiffModule<B>,
{
    let x = input::<B>([32, steps, 32], &Default::default());
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut model = Some(model);
    move || {
        let m = model.take().expect("put back every run");
        let (y, _) = m.forward(x.clone(), None);
        let loss = y.square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optimizer.step(1e-3, m, grads));
    }
}

/// One step of a control loop: the state carried between calls.
/// One step of a control loop through the deployment API, `Stateful`
/// (state and per-sequence constants kept between calls).
fn single_step<B: Backend, C: RecurrentCell<B> + 'static>(model: Rnn<B, C>) -> impl FnMut() {
    let x = input::<B>([1, 1, 32], &Default::default()).squeeze_dim::<2>(1);
    // The policy borrows its model for as long as the bench runs.
    let mut policy = Box::leak(Box::new(model)).stateful();
    move || {
        black_box(policy.step(x.clone()).into_data());
    }
}

/// The same through `Rnn::step`, which derives the constants at every call.
fn single_call<B: Backend, C: RecurrentCell<B>>(model: Rnn<B, C>) -> impl FnMut() {
    let x = input::<B>([1, 1, 32], &Default::default()).squeeze_dim::<2>(1);
    let mut state = None;
    move || {
        let (y, next) = model.step(x.clone(), state.take(), None);
        state = Some(next);
        black_box(y.into_data());
    }
}

/// One training step at the sizes of the CfC paper's Walker2d runs, as
/// upstream's script: 64 steps of 17 features, elapsed times of 1, MSE
/// against random targets, Adam (lr 1e-3), no clipping.
fn walker<B, C>(model: Rnn<B, C>, batch: usize) -> impl FnMut()
where
    B: AutodiffBackend,
    C: RecurrentCell<B> + AutodiffModule<B>,
    Rnn<B, C>: AutodiffModule<B>,
{
    let device = Default::default();
    let x = input::<B>([batch, 64, 17], &device);
    let y = input::<B>([batch, 64, 17], &device);
    let t = Tensor::<B, 2>::ones([batch, 64], &device);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut model = Some(model);
    move || {
        let m = model.take().expect("put back every run");
        let (out, _) = m.forward_timed(x.clone(), t.clone(), None);
        let loss = (out - y.clone()).square().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optimizer.step(1e-3, m, grads));
    }
}

/// The Walker2d-sized CfC of upstream's script (projection to 17).
fn walker_cfc<B: Backend>(mut config: CfCConfig, fused: bool) -> Rnn<B, ncps::rnn::AnyCfCCell<B>> {
    config.cell.fused = fused;
    config
        .with_proj_size(Some(17))
        .init(&Default::default())
        .expect("valid config")
}

fn sine_epoch<B: AutodiffBackend>(fused: bool) -> impl FnMut() {
    let device = Default::default();
    let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).expect("valid wiring")))
        .with_cell(LTCCellOptions::new().with_fused(fused))
        .init::<B>(&device)
        .expect("valid config");
    // One full-batch step of the shared loop (forward, MSE, backward,
    // global-norm clipping at 1, Adam).
    let config = TrainConfig::new(1, 1).with_clipping(Clipping::GlobalNorm(1.0));
    let mut stepper = Stepper::new(&config);
    let batch = Batcher::<B, _, _>::batch(&SineBatcher, vec![SineData::new(48)], &device);
    let mut model = Some(model);
    move || {
        let (next, loss) = stepper.step(
            model.take().expect("put back"),
            &SequenceMse::default(),
            batch.clone(),
            0.01,
        );
        model = Some(next);
        black_box(loss);
    }
}

/// A workload: builds its model and returns the closure to time.
type Workload = (&'static str, Box<dyn Fn() -> Box<dyn FnMut()>>);

/// The eleven workloads of upstream's script on inference backend `I` and
/// training backend `T`, the two single steps through `Rnn::step`
/// (`*_call`), and a wired CfC's training at 64 and 512 steps (ours only).
/// `fused: false` runs both models' tensor-op paths.
fn workloads<I: Backend, T: AutodiffBackend>(fused: bool) -> Vec<Workload> {
    I::seed(&Default::default(), 0);
    T::seed(&Default::default(), 0);
    vec![
        (
            "cfc_infer_b32_l64",
            Box::new(move || Box::new(infer(cfc::<I>(&Default::default(), fused)))),
        ),
        (
            "cfc_train_b32_l64",
            Box::new(move || Box::new(train(cfc::<T>(&Default::default(), fused), 64))),
        ),
        (
            "ltc_infer_b32_l64",
            Box::new(move || Box::new(infer(ltc::<I>(&Default::default(), fused)))),
        ),
        (
            "ltc_train_b32_l64",
            Box::new(move || Box::new(train(ltc::<T>(&Default::default(), fused), 64))),
        ),
        (
            "cfc_step_b1",
            Box::new(move || Box::new(single_step(cfc::<I>(&Default::default(), fused)))),
        ),
        (
            "ltc_step_b1",
            Box::new(move || Box::new(single_step(ltc::<I>(&Default::default(), fused)))),
        ),
        (
            "sine_ltc_epoch",
            Box::new(move || Box::new(sine_epoch::<T>(fused))),
        ),
        (
            "walker_cfc_train_b256",
            Box::new(move || {
                let config = CfCConfig::new(17, Units::from(64)).with_cell(
                    CfCCellOptions::new()
                        .with_activation(Activation::Silu)
                        .with_backbone_units(256)
                        .with_backbone_layers(1)
                        .with_backbone_dropout(0.1),
                );
                Box::new(walker(walker_cfc::<T>(config, fused), 256))
            }),
        ),
        (
            "walker_mixed_train_b128",
            Box::new(move || {
                let config = CfCConfig::new(17, Units::from(128))
                    .with_mixed_memory(true)
                    .with_cell(
                        CfCCellOptions::new()
                            .with_backbone_units(128)
                            .with_backbone_layers(2)
                            .with_backbone_dropout(0.2),
                    );
                Box::new(walker(walker_cfc::<T>(config, fused), 128))
            }),
        ),
        (
            "walker_nogate_train_b128",
            Box::new(move || {
                let config = CfCConfig::new(17, Units::from(256)).with_cell(
                    CfCCellOptions::new()
                        .with_mode(CfCMode::NoGate)
                        .with_backbone_units(128)
                        .with_backbone_layers(1)
                        .with_backbone_dropout(0.1),
                );
                Box::new(walker(walker_cfc::<T>(config, fused), 128))
            }),
        ),
        (
            "walker_ltc_train_b128",
            Box::new(move || {
                let wiring = FullyConnected::new(128, 17).expect("valid wiring");
                let model = LTCConfig::new(17, Units::from(wiring))
                    .with_cell(LTCCellOptions::new().with_fused(fused))
                    .init::<T>(&Default::default())
                    .expect("valid config");
                Box::new(walker(model, 128))
            }),
        ),
        (
            "cfc_step_b1_call",
            Box::new(move || Box::new(single_call(cfc::<I>(&Default::default(), fused)))),
        ),
        (
            "ltc_step_b1_call",
            Box::new(move || Box::new(single_call(ltc::<I>(&Default::default(), fused)))),
        ),
        // Training cost should grow linearly with the length: the wired
        // CfC's once grew with its square (Burn's graph merges, see
        // `CfCPrepared`).
        (
            "wired_cfc_train_b32_l64",
            Box::new(move || Box::new(train(wired_cfc::<T>(&Default::default()), 64))),
        ),
        (
            "wired_cfc_train_b32_l512",
            Box::new(move || Box::new(train(wired_cfc::<T>(&Default::default()), 512))),
        ),
    ]
}

/// The value after `flag` on the command line, if any.
fn option(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn main() {
    let allocator = common::hold_freed_memory();
    let only = option("--only");
    let fused = match option("--path").as_deref() {
        None | Some("fused") => true,
        Some("reference") => false,
        Some(other) => panic!("--path {other}: expected fused or reference"),
    };
    let workloads = match option("--backend").as_deref() {
        None | Some("ndarray") => workloads::<NdArray<f32>, Autodiff<NdArray<f32>>>(fused),
        #[cfg(feature = "wgpu")]
        Some("wgpu") => workloads::<Wgpu, Autodiff<Wgpu>>(fused),
        Some(other) => panic!(
            "--backend {other}: expected ndarray{}",
            if cfg!(feature = "wgpu") {
                " or wgpu"
            } else {
                " (wgpu needs --features wgpu)"
            }
        ),
    };
    if let Some(name) = option("--peak") {
        let steps = option("--steps").map_or(5, |n| n.parse().expect("--steps: a count"));
        let (_, make) = workloads
            .into_iter()
            .find(|(w, _)| *w == name)
            .unwrap_or_else(|| panic!("--peak {name}: no such workload"));
        let mut run = make();
        for _ in 0..steps {
            run();
        }
        common::print_peak(&name, steps);
        return;
    }
    eprintln!("allocator: {allocator}");
    for (name, make) in workloads {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|o| o == name))
        {
            continue;
        }
        let mut run = make();
        println!("{name} {:.3} ms", median_ms(&mut run));
    }
}
