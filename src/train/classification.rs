//! Sequence classification: a whole sequence to one class, the objective
//! of the UEA tasks.

use burn::module::{AutodiffModule, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use super::{Evaluation, Objective};
use crate::cells::RecurrentCell;
use crate::datasets::uea::UeaBatch;
use crate::rnn::{Bidirectional, Rnn};

/// What reads a padded batch of sequences into one vector per sequence:
/// each sample's last valid output of an [`Rnn`], or both directions'
/// of a [`Bidirectional`] (the forward one's last valid output beside the
/// backward one's output after reading the first step).
pub trait SequenceEncoder<B: Backend> {
    /// Features of the encoding.
    fn encoding_size(&self) -> usize;

    /// `[batch, encoding_size]` for inputs `[batch, time, inputs]` padded
    /// after each sample's length (`lengths [batch]`).
    fn encode(&self, input: Tensor<B, 3>, lengths: Tensor<B, 1, Int>) -> Tensor<B, 2>;
}

impl<B: Backend, C: RecurrentCell<B>> SequenceEncoder<B> for Rnn<B, C> {
    fn encoding_size(&self) -> usize {
        self.output_size()
    }

    fn encode(&self, input: Tensor<B, 3>, lengths: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        self.forward_last(input, None, Some(lengths), None).0
    }
}

impl<B, F, G> SequenceEncoder<B> for Bidirectional<B, F, G>
where
    B: Backend,
    F: RecurrentCell<B>,
    G: RecurrentCell<B>,
{
    fn encoding_size(&self) -> usize {
        self.output_size()
    }

    /// # Panics
    /// When the pair returns sequences (build both with
    /// `return_sequences = false`).
    fn encode(&self, input: Tensor<B, 3>, lengths: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        assert!(
            !self.forward.return_sequences,
            "a Bidirectional encoder needs return_sequences = false in both directions"
        );
        let [batch, ..] = input.dims();
        let (output, _) = self.forward_padded(input, lengths, None, None);
        output.reshape([batch, self.output_size()])
    }
}

/// A sequence encoder and a linear readout to class scores (logits).
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::rnn::{CfCConfig, Units};
/// use ncps::train::SequenceClassifier;
///
/// let device = Default::default();
/// let encoder = CfCConfig::new(12, Units::from(16)).init::<NdArray>(&device)?;
/// let model = SequenceClassifier::new(encoder, 9, &device);
/// let lengths = Tensor::<NdArray, 1, Int>::from_ints([7, 20], &device);
/// let logits = model.logits(Tensor::zeros([2, 20, 12], &device), lengths);
/// assert_eq!(logits.dims(), [2, 9]);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
#[derive(Module, Debug)]
pub struct SequenceClassifier<B: Backend, E> {
    /// The sequence model.
    pub encoder: E,
    /// `[encoding_size → classes]`.
    pub readout: Linear<B>,
}

impl<B: Backend, E: SequenceEncoder<B>> SequenceClassifier<B, E> {
    /// The encoder with a readout to `classes` scores (PyTorch's default
    /// `Linear` initialisation).
    pub fn new(encoder: E, classes: usize, device: &B::Device) -> Self {
        let readout = LinearConfig::new(encoder.encoding_size(), classes).init(device);
        Self { encoder, readout }
    }

    /// Class scores `[batch, classes]` of inputs `[batch, time, inputs]`
    /// padded after each sample's length (`lengths [batch]`).
    pub fn logits(&self, input: Tensor<B, 3>, lengths: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        self.readout.forward(self.encoder.encode(input, lengths))
    }
}

/// Cross-entropy of the class scores (softmax, PyTorch's
/// `cross_entropy`); validation reports it with the accuracy (metric
/// `accuracy`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CrossEntropy;

/// The mean cross-entropy of class scores `[batch, classes]` against target
/// classes `[batch]` (PyTorch's `cross_entropy`).
fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets)
}

/// Fraction of rows whose highest score is the target class.
pub fn accuracy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> f64 {
    let [items, _] = logits.dims();
    let predicted = logits.argmax(1).reshape([items]);
    let correct: i64 = predicted.equal(targets).int().sum().into_scalar().elem();
    correct as f64 / items.max(1) as f64
}

impl<B, E> Objective<B, SequenceClassifier<B, E>> for CrossEntropy
where
    B: AutodiffBackend,
    E: SequenceEncoder<B> + AutodiffModule<B> + ModuleDisplay,
    E::InnerModule: SequenceEncoder<B::InnerBackend> + ModuleDisplay,
{
    type TrainBatch = UeaBatch<B>;
    type ValidBatch = UeaBatch<B::InnerBackend>;

    fn loss(&self, model: &SequenceClassifier<B, E>, batch: UeaBatch<B>) -> Tensor<B, 1> {
        cross_entropy(model.logits(batch.inputs, batch.lengths), batch.targets)
    }

    fn evaluate(
        &self,
        model: &SequenceClassifier<B::InnerBackend, E::InnerModule>,
        batch: UeaBatch<B::InnerBackend>,
    ) -> Evaluation {
        let items = batch.targets.dims()[0];
        let logits = model.logits(batch.inputs, batch.lengths);
        let loss = cross_entropy(logits.clone(), batch.targets.clone());
        Evaluation::new(loss.into_scalar().elem(), items)
            .with_metric("accuracy", accuracy(logits, batch.targets))
    }
}
