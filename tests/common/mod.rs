//! Helpers shared by the integration tests: the backends, the device, value
//! extraction and the one approximate comparison.
//!
//! Every test file that says `mod common;` compiles its own copy of this
//! module and uses only some of it, hence the `allow(dead_code)`.
#![allow(dead_code)]

pub mod padded;

use burn::backend::{Autodiff, NdArray};
use burn::prelude::*;
use ncps::wirings::{AnyWiring, AutoNCP, FullyConnected, NCP, NCPArgs, Random};
use serde_json::Value;

/// The CPU backend of the tests.
pub type B = NdArray<f32>;
/// The same backend with autodiff, for gradients and training.
pub type AD = Autodiff<NdArray<f32>>;

/// Burn's random generator is one per process: a test that seeds it and
/// expects the same draws (weights, inputs, dropout masks) holds this turn,
/// and so does every test in its file that draws from it.
pub fn rng_turn() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// The CPU device (the same for [`B`] and [`AD`]).
pub fn device() -> Device<B> {
    Default::default()
}

/// A tensor's values in row-major order, as `f32` whatever its float type.
pub fn values<Bk: Backend, const D: usize>(tensor: Tensor<Bk, D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().to_vec().unwrap()
}

/// The numbers of a JSON array, as `f32`.
pub fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array of numbers, got {value}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("{x} is not a number")) as f32)
        .collect()
}

/// How far `ours` is from `theirs`: absolute where `|theirs| <= 1`, relative
/// above. Equal values (infinities included) are 0 apart; a NaN is infinitely
/// far from anything.
pub fn error(ours: f32, theirs: f32) -> f64 {
    if ours == theirs {
        return 0.0;
    }
    let error = (f64::from(ours) - f64::from(theirs)).abs() / f64::from(theirs.abs()).max(1.0);
    if error.is_nan() { f64::INFINITY } else { error }
}

/// The largest [`error`] between two equally long slices.
#[track_caller]
pub fn worst_error(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "element counts differ");
    ours.iter()
        .zip(theirs)
        .map(|(&a, &b)| error(a, b))
        .fold(0.0, f64::max)
}

/// The largest difference between two equally long slices relative to
/// the larger of 1 and `theirs`' largest magnitude (normwise): for
/// gradients, sums whose rounding follows the size of their terms, so
/// that a small entry of a large gradient is not held to a relative bound
/// its own size cannot give.
pub fn worst_normwise_error(ours: &[f32], theirs: &[f32]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "element counts differ");
    let scale = theirs
        .iter()
        .fold(1.0f64, |m, &v| m.max(f64::from(v.abs())));
    ours.iter()
        .zip(theirs)
        .map(|(&a, &b)| {
            if a == b {
                return 0.0;
            }
            let d = (f64::from(a) - f64::from(b)).abs() / scale;
            if d.is_nan() { f64::INFINITY } else { d }
        })
        .fold(0.0, f64::max)
}

/// Panics unless every value of `ours` is within `tolerance` of `theirs`
/// (see [`error`]); the message names `what`, where it differs most and how
/// many values are off.
#[track_caller]
pub fn assert_close(ours: &[f32], theirs: &[f32], tolerance: f64, what: &str) {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {} values, expected {}",
        ours.len(),
        theirs.len()
    );
    let errors: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(&a, &b)| error(a, b))
        .collect();
    let off = errors.iter().filter(|&&e| e > tolerance).count();
    if off > 0 {
        let (at, worst) =
            errors.iter().enumerate().fold(
                (0, 0.0),
                |(i, w), (j, &e)| if e > w { (j, e) } else { (i, w) },
            );
        panic!(
            "{what}: {off} of {} values differ by more than {tolerance:.0e} \
             (absolute below 1, relative above); worst at index {at}: {} vs {} (error {worst:.2e})",
            ours.len(),
            ours[at],
            theirs[at],
        );
    }
}

/// [`assert_close`] for two tensors, which must also have the same shape.
#[track_caller]
pub fn assert_tensors_close<Bk: Backend, const D: usize>(
    ours: Tensor<Bk, D>,
    theirs: Tensor<Bk, D>,
    tolerance: f64,
    what: &str,
) {
    assert_eq!(ours.dims(), theirs.dims(), "{what}: shapes differ");
    assert_close(&values(ours), &values(theirs), tolerance, what);
}

/// A valid wiring of each kind drawn from a property test's numbers:
/// `kind` 0 FullyConnected, 1 Random, 2 AutoNCP, 3 NCP.
pub fn wiring(kind: u8, units: usize, output: usize, sparsity: f64, seed: u64) -> AnyWiring {
    let output = output.clamp(1, units);
    match kind {
        0 => FullyConnected::new(units, output)
            .unwrap()
            .with_erev_init_seed(seed)
            .with_self_connections(seed.is_multiple_of(2))
            .into(),
        1 => Random::new(units, output, sparsity.min(0.9))
            .unwrap()
            .with_random_seed(seed)
            .into(),
        2 => {
            let units = units.max(5);
            AutoNCP::new(units, output.min(units - 3))
                .unwrap()
                .with_seed(seed)
                .into()
        }
        _ => {
            let (inter, command, motor) = (units.div_ceil(2), units / 3 + 1, output.min(3));
            NCP::new(NCPArgs {
                inter_neurons: inter,
                command_neurons: command,
                motor_neurons: motor,
                sensory_fanout: 1 + seed as usize % inter,
                inter_fanout: 1 + seed as usize % command,
                recurrent_command_synapses: seed as usize % 5,
                motor_fanin: 1 + (seed as usize / 7) % command,
            })
            .unwrap()
            .with_seed(seed)
            .into()
        }
    }
}

/// A small NCP: 4 inter, 3 command, 2 motor neurons (fanouts 2, 2, 3
/// recurrent command synapses, motor fanin 2).
pub fn small_ncp_args() -> NCPArgs {
    NCPArgs {
        inter_neurons: 4,
        command_neurons: 3,
        motor_neurons: 2,
        sensory_fanout: 2,
        inter_fanout: 2,
        recurrent_command_synapses: 3,
        motor_fanin: 2,
    }
}

/// The four Walker2d rollouts of `tests/fixtures/walker2d` and a split of
/// them: two training files, one validation, one test.
pub fn walker2d_fixtures() -> (std::path::PathBuf, ncps::datasets::walker2d::Split) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/walker2d");
    let split = ncps::datasets::walker2d::Split {
        train: vec!["rollout_012.npy".into(), "rollout_144.npy".into()],
        valid: vec!["rollout_279.npy".into()],
        test: vec!["rollout_184.npy".into()],
    };
    (dir, split)
}

/// An empty scratch directory for a test, under the system's temporary
/// directory (removed first if an earlier run left it).
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ncps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
