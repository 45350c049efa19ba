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

impl<B: Backend> RecurrentCell<B> for AnyCfCCell<B> {
    type Prepared = CfCPrepared<B>;

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

    fn prepare(&self) -> CfCPrepared<B> {
        match self {
            AnyCfCCell::Dense(cell) => cell.prepare(),
            AnyCfCCell::Wired(_) => CfCPrepared::tensor_ops(),
        }
    }

    fn prepare_single_step(&self) -> CfCPrepared<B> {
        match self {
            AnyCfCCell::Dense(cell) => cell.prepare_single_step(),
            AnyCfCCell::Wired(_) => CfCPrepared::tensor_ops(),
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
        prepared: &CfCPrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match self {
            AnyCfCCell::Dense(cell) => cell.step_unchecked(prepared, input, state, elapsed),
            AnyCfCCell::Wired(cell) => cell.step_unchecked(&(), input, state, elapsed),
        }
    }
}
