//! # ncps: Neural Circuit Policies for Burn
//!
//! Liquid time-constant (LTC) and closed-form continuous-time (CfC) recurrent
//! networks with sparse, C. elegans-inspired wirings: a port of the Python
//! package [`ncps`](https://github.com/mlech26l/ncps) 1.0.1 to the
//! [Burn](https://burn.dev) deep-learning framework, generic over Burn's
//! `Backend`.
//!
//! - [`wirings`]: which neuron talks to which ([`wirings::FullyConnected`],
//!   [`wirings::Random`], [`wirings::NCP`], [`wirings::AutoNCP`]), their
//!   graphs and drawings.
//! - [`cells`]: one time step ([`cells::LTCCell`], [`cells::CfCCell`],
//!   [`cells::WiredCfCCell`], and the [`cells::LSTMCell`] of mixed memory).
//! - [`rnn`]: the sequence models [`rnn::LTC`] and [`rnn::CfC`].
//! - [`datasets`]: tasks and data, as upstream's `ncps.datasets` (the
//!   quickstart's sinusoid task in [`datasets::sine`], the CfC paper's
//!   Walker2d benchmark in [`datasets::walker2d`]; UEA/UCR `.ts`
//!   classification files in [`datasets::uea`]; with the `atari`
//!   feature, Breakout on the real emulator in `datasets::atari`).
//! - [`train`]: the one training loop ([`train::Trainer`]: Adam, decay,
//!   clipping, validation, best weights, checkpoints and resume) and its
//!   helpers.
//! - [`fs`]: the atomic file writer every saver uses.
//! - [`import`]: upstream PyTorch weights (`state_dict` as safetensors or
//!   `.pt`).
//! - [`export`]: deployment: a trained model as a standalone `#![no_std]`
//!   Rust or C99 step function, or as upstream's `state_dict` and config
//!   for Python ncps.
#![warn(missing_docs)]
// Type names follow upstream ncps (`NCP`, `LTC`, `CfC`) so Python users find them.
#![allow(clippy::upper_case_acronyms)]

pub mod cells;
pub mod datasets;
mod error;
pub mod export;
pub mod fs;
pub mod import;
mod kernels;
pub mod rnn;
pub mod train;
pub mod wirings;

pub use error::ConfigError;

/// The names most programs need: `use ncps::prelude::*;`.
pub mod prelude {
    pub use crate::ConfigError;
    pub use crate::cells::{CfCCellOptions, LTCCellOptions, RecurrentCell};
    pub use crate::import::{LoadStateDict, StateDict};
    pub use crate::rnn::{Bidirectional, CfC, CfCConfig, LTC, LTCConfig, Merge, RnnState, Units};
    pub use crate::wirings::{AutoNCP, FullyConnected, NCP, NCPArgs, Random, Wiring};
}

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's code blocks in `docs/`, compiled and run as doc tests.
#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../docs/quickstart.md")]
    pub struct Quickstart;
    #[doc = include_str!("../docs/wirings.md")]
    pub struct Wirings;
    #[doc = include_str!("../docs/models.md")]
    pub struct Models;
    #[doc = include_str!("../docs/pytorch.md")]
    pub struct Pytorch;
    #[doc = include_str!("../docs/deploy.md")]
    pub struct Deploy;
    #[doc = include_str!("../docs/gpu.md")]
    pub struct Gpu;
    #[doc = include_str!("../docs/uea.md")]
    pub struct Uea;
}
