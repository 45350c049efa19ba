//! # ncps: Neural Circuit Policies for Burn
//!
//! Liquid time-constant (LTC) and closed-form continuous-time (CfC) recurrent
//! networks with sparse, C. elegans-inspired wirings: a port of the Python
//! package [`ncps`](https://github.com/mlech26l/ncps) to the
//! [Burn](https://burn.dev) deep-learning framework.
//!
//! - [`wirings`]: which neuron talks to which ([`wirings::FullyConnected`],
//!   [`wirings::Random`], [`wirings::NCP`], [`wirings::AutoNCP`]), their
//!   graphs and drawings.
#![warn(missing_docs)]
// Type names follow upstream ncps (`NCP`, `LTC`, `CfC`) so Python users find them.
#![allow(clippy::upper_case_acronyms)]

pub mod wirings;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's code blocks in `docs/`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/wirings.md")]
pub struct WiringsGuideDoctests;
