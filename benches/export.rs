//! One control step of an exported model next to Burn's `Stateful` step:
//! an `LTC(2, AutoNCP(16, 1))` (the sinusoid policy) and a `CfC(32, 64)`
//! (default backbone, upstream's step workload), batch 1, elapsed 1.
//!
//! The generated Rust is compiled with `rustc -C opt-level=3` and the
//! generated C with `cc -std=c99 -O2` (each with a small timing harness, in
//! the bench's target folder), for the baseline x86-64 and for this CPU
//! (`-C target-cpu=native`, `-march=native`: the same numbers, no operation
//! is contracted), then run; each prints the median nanoseconds of a step
//! over 7 runs of 20,000 steps. Burn's step is timed here with the benches'
//! protocol (`benches/common`). One line per measurement:
//! `<model> <path> <ns> ns/step (<speed-up>x faster)`.
//!
//! ```sh
//! cargo bench --bench export
//! ```

mod common;

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::Distribution;
use ncps::cells::RecurrentCell;
use ncps::export::{Export, StepFunction};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, Units};
use ncps::wirings::AutoNCP;

type B = NdArray<f32>;

/// Steps of one timed run of the generated code.
const STEPS: usize = 20_000;

const RUST_TIMER: &str = r#"
#[path = "model.rs"]
mod model;
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let steps: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let mut state = [0.0f32; model::STATE];
    let mut output = [0.0f32; model::OUTPUTS];
    let mut input = [0.0f32; model::INPUTS];
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        for i in 0..steps {
            input[i % model::INPUTS] = (i as f32 * 0.01).sin();
            model::step(&mut state, black_box(&input), 1.0, &mut output);
            black_box(&output);
        }
        times.push(start.elapsed().as_nanos() as f64 / steps as f64);
    }
    times.sort_by(f64::total_cmp);
    println!("{}", times[3]);
}
"#;

const C_TIMER: &str = r#"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1000, i;
    float state[MODEL_STATE] = {0}, output[MODEL_OUTPUTS], input[MODEL_INPUTS] = {0};
    volatile float sink = 0.0f;
    double times[7];
    int run;
    for (run = 0; run < 7; run++) {
        double start = now();
        for (i = 0; i < steps; i++) {
            input[i % MODEL_INPUTS] = sinf(i * 0.01f);
            model_step(state, input, 1.0f, output);
            sink += output[0];
        }
        times[run] = (now() - start) / steps;
    }
    qsort(times, 7, sizeof(double), compare);
    printf("%f\n", times[3]);
    return 0;
}
"#;

/// Runs a command, returning its standard output; panics with its errors.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Compiles and runs the generated Rust and C of `step`, for the baseline
/// x86-64 (SSE2) and for this CPU (`-C target-cpu=native`, `-march=native`):
/// ns per step, `[rust, c, rust native, c native]`.
fn generated(step: &StepFunction, dir: &Path) -> [f64; 4] {
    std::fs::create_dir_all(dir).expect("a bench folder");
    step.save_rust(dir.join("model.rs")).expect("written");
    step.save_c(dir.join("model.c"), "model").expect("written");
    std::fs::write(dir.join("timer.rs"), RUST_TIMER).expect("written");
    std::fs::write(dir.join("timer.c"), C_TIMER).expect("written");
    let rust = |name: &str, flags: &[&str]| {
        let binary = dir.join(name);
        run(Command::new("rustc")
            .args(["--edition", "2021", "-C", "opt-level=3"])
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(dir.join("timer.rs")));
        binary
    };
    let c = |name: &str, flags: &[&str]| {
        let binary = dir.join(name);
        run(Command::new("cc")
            .args(["-std=c99", "-O2", "-D_POSIX_C_SOURCE=199309L"])
            .args(flags)
            .arg("-o")
            .arg(&binary)
            .arg(dir.join("timer.c"))
            .arg(dir.join("model.c"))
            .arg("-lm"));
        binary
    };
    let binaries = [
        rust("timer_rs", &[]),
        c("timer_c", &[]),
        rust("timer_rs_native", &["-C", "target-cpu=native"]),
        c("timer_c_native", &["-march=native"]),
    ];
    binaries.map(|binary| {
        run(Command::new(binary).arg(STEPS.to_string()))
            .trim()
            .parse()
            .expect("ns per step")
    })
}

/// Burn's `Stateful` step at batch 1 (median of the benches' protocol, in
/// blocks of 100 steps): ns per step.
fn stateful<C: RecurrentCell<B>>(model: &Rnn<B, C>) -> f64 {
    let device = Default::default();
    let x = Tensor::<B, 2>::random(
        [1, model.input_size()],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let mut policy = model.stateful();
    let mut block = || {
        for _ in 0..100 {
            black_box(policy.step(x.clone()).into_data());
        }
    };
    block();
    let (ms, _) = common::median_ms(block, 2.0);
    ms * 1e6 / 100.0
}

fn report<C: RecurrentCell<B>>(name: &str, model: &Rnn<B, C>, step: &StepFunction) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("export-bench")
        .join(name);
    let burn = stateful(model);
    let [rust, c, rust_native, c_native] = generated(step, &dir);
    println!("{name} burn_stateful {burn:.0} ns/step");
    for (path, ns) in [
        ("generated_rust", rust),
        ("generated_c", c),
        ("generated_rust_native", rust_native),
        ("generated_c_native", c_native),
    ] {
        println!("{name} {path} {ns:.0} ns/step ({:.1}x faster)", burn / ns);
    }
    println!(
        "{name} weights {} bytes, stack {} bytes a step",
        step.weight_bytes(),
        step.stack_bytes()
    );
}

fn main() {
    let device = Default::default();
    B::seed(&device, 0);
    let ltc = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1).expect("valid wiring")))
        .init::<B>(&device)
        .expect("valid config");
    report(
        "ltc_autoncp16",
        &ltc,
        &ltc.step_function().expect("exports"),
    );
    let cfc = CfCConfig::new(32, Units::from(64))
        .init::<B>(&device)
        .expect("valid config");
    report("cfc_64", &cfc, &cfc.step_function().expect("exports"));
}
