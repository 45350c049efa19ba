//! Sequence regression: the objective of the sinusoid and Walker2d tasks.

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::{Evaluation, Objective, linear_kernels_l2};
use crate::cells::RecurrentCell;
use crate::rnn::Rnn;

/// A model that maps a sequence to a sequence of predictions: what
/// [`SequenceMse`] trains. Implemented by every [`Rnn`] (`LTC`, `CfC`).
pub trait SequenceModel<B: Backend> {
    /// Predictions `[batch, time, outputs]` for inputs `[batch, time,
    /// inputs]` and elapsed times `[batch, time]` (one time unit per step
    /// when `None`).
    fn predict(&self, input: Tensor<B, 3>, timespans: Option<Tensor<B, 2>>) -> Tensor<B, 3>;

    /// The sum of squares of the recurrent cell's `Linear` kernels (see
    /// [`linear_kernels_l2`]): what the CfC paper's TensorFlow code
    /// regularizes. `None` for a cell without `Linear` layers (LTC).
    fn cell_kernels_l2(&self) -> Option<Tensor<B, 1>>;
}

impl<B: Backend, C: RecurrentCell<B> + Module<B>> SequenceModel<B> for Rnn<B, C> {
    fn predict(&self, input: Tensor<B, 3>, timespans: Option<Tensor<B, 2>>) -> Tensor<B, 3> {
        match timespans {
            Some(timespans) => self.forward_timed(input, timespans, None).0,
            None => self.forward(input, None).0,
        }
    }

    fn cell_kernels_l2(&self) -> Option<Tensor<B, 1>> {
        linear_kernels_l2(&self.cell)
    }
}

/// A batch of sequences with their targets.
#[derive(Clone, Debug)]
pub struct SequenceBatch<B: Backend> {
    /// Inputs `[batch, time, inputs]`.
    pub input: Tensor<B, 3>,
    /// Elapsed times `[batch, time]`; one time unit per step when `None`.
    pub timespans: Option<Tensor<B, 2>>,
    /// Targets `[batch, time, outputs]`.
    pub target: Tensor<B, 3>,
}

/// The mean squared error over every output of every step (PyTorch's
/// `mse_loss`, Keras' `MeanSquaredError`), plus `kernel_l2` times
/// [`SequenceModel::cell_kernels_l2`] in the training loss (Keras'
/// `kernel_regularizer=L2(kernel_l2)` on the cell's `Dense` layers, as the
/// CfC paper's TensorFlow runs; 0 by default). Validation reports the MSE
/// alone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SequenceMse {
    /// The L2 penalty on the cell's kernels. Default: 0.
    pub kernel_l2: f64,
}

impl<B, M> Objective<B, M> for SequenceMse
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + SequenceModel<B>,
    M::InnerModule: SequenceModel<B::InnerBackend>,
{
    type TrainBatch = SequenceBatch<B>;
    type ValidBatch = SequenceBatch<B::InnerBackend>;

    fn loss(&self, model: &M, batch: SequenceBatch<B>) -> Tensor<B, 1> {
        let prediction = model.predict(batch.input, batch.timespans);
        let mse = (prediction - batch.target).square().mean();
        match model.cell_kernels_l2() {
            Some(l2) if self.kernel_l2 > 0.0 => mse + l2 * self.kernel_l2,
            _ => mse,
        }
    }

    fn evaluate(
        &self,
        model: &M::InnerModule,
        batch: SequenceBatch<B::InnerBackend>,
    ) -> Evaluation {
        let items = batch.input.dims()[0];
        let prediction = model.predict(batch.input, batch.timespans);
        let mse = (prediction - batch.target).square().mean();
        Evaluation::new(mse.into_scalar().elem(), items)
    }
}
