//! One test binary for the integration tests that can share a process:
//! none seeds Burn's random generator or expects its draws to repeat, and
//! none creates float64 tensors (Burn 0.21 fixes one float type per device
//! per process). Each integration test binary links Burn and instantiates
//! its generic code afresh, so one binary instead of nine saves minutes of
//! every `cargo test` build.
//!
//! Run one file's tests with its module name: `cargo test --test suite
//! export::`. The tests that seed the generator (`models`, `train`,
//! `padding`, ...) or run float64 (`gradients`, `padding_f64`,
//! `pytorch_files`) keep their own binaries, and so does `parity`, the
//! fixture check docs name by itself.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
#[cfg(feature = "draw")]
mod drawing;
mod exact_arithmetic;
mod export;
mod fuzz_regressions;
mod paper_options;
mod properties;
mod uea;
mod wirings;
