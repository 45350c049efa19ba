//! `AnyCfCCell`: the cell of a `CfC`, dense or wired.

use burn::prelude::*;

use super::cfc::CfCPrepared;
use super::{CfCCell, MixedMemory, RecurrentCell, SequenceInputs, SequenceOutputs, WiredCfCCell};

/// The cell of a [`CfC`](crate::rnn::CfC): a dense [`CfCCell`] (with a
/// backbone) or a [`WiredCfCCell`] (one per wiring layer), chosen by the
/// `Units` the model is built with.
// One value per model: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyCfCCell<B: Backend> {
    /// A [`CfCCell`] with a backbone.
    Dense(CfCCell<B>),
    /// A [`WiredCfCCell`].
    Wired(WiredCfCCell<B>),
}

/// What an [`AnyCfCCell`] derives once per sequence: its cell's.
#[derive(Clone, Debug)]
pub enum AnyCfCPrepared<B: Backend> {
    /// A dense cell's.
    Dense(CfCPrepared<B>),
    /// A wired cell's, one per layer.
    Wired(Vec<CfCPrepared<B>>),
}

impl<B: Backend> RecurrentCell<B> for AnyCfCCell<B> {
    type Prepared = AnyCfCPrepared<B>;

    fn input_size(&self) -> usize {
        match self {
            AnyCfCCell::Dense(cell) => cell.input_size(),
            AnyCfCCell::Wired(cell) => cell.input_size(),
        }
    }

    fn state_size(&self) -> usize {
        match self {
            AnyCfCCell::Dense(cell) => cell.state_size(),
            AnyCfCCell::Wired(cell) => cell.state_size(),
        }
    }

    fn output_size(&self) -> usize {
        match self {
            AnyCfCCell::Dense(cell) => cell.output_size(),
            AnyCfCCell::Wired(cell) => cell.output_size(),
        }
    }

    fn prepare(&self) -> AnyCfCPrepared<B> {
        match self {
            AnyCfCCell::Dense(cell) => AnyCfCPrepared::Dense(cell.prepare()),
            AnyCfCCell::Wired(cell) => AnyCfCPrepared::Wired(cell.prepare()),
        }
    }

    fn prepare_single_step(&self) -> AnyCfCPrepared<B> {
        match self {
            AnyCfCCell::Dense(cell) => AnyCfCPrepared::Dense(cell.prepare_single_step()),
            AnyCfCCell::Wired(cell) => AnyCfCPrepared::Wired(cell.prepare_single_step()),
        }
    }

    fn fused_sequence(
        &self,
        memory: Option<MixedMemory<'_, B>>,
        inputs: &SequenceInputs<B>,
    ) -> Option<SequenceOutputs<B>> {
        match self {
            AnyCfCCell::Dense(cell) => cell.fused_sequence(memory, inputs),
            AnyCfCCell::Wired(cell) => cell.fused_sequence(memory, inputs),
        }
    }

    fn step_unchecked(
        &self,
        prepared: &AnyCfCPrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match (self, prepared) {
            (AnyCfCCell::Dense(cell), AnyCfCPrepared::Dense(p)) => {
                cell.step_unchecked(p, input, state, elapsed)
            }
            (AnyCfCCell::Wired(cell), AnyCfCPrepared::Wired(p)) => {
                cell.step_unchecked(p, input, state, elapsed)
            }
            _ => panic!("prepared is not this cell's (AnyCfCCell::prepare)"),
        }
    }
}
