//! `Bidirectional`: two sequence models over the same input, one reading
//! it forward, one backward (keras' `Bidirectional`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Pass, Rnn, RnnState};
use crate::ConfigError;
use crate::cells::RecurrentCell;

/// How a [`Bidirectional`] merges the outputs of its two directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Merge {
    /// `[forward, backward]` along the feature axis (default; keras'
    /// `merge_mode="concat"`).
    #[default]
    Concat,
    /// Elementwise sum (both directions must have the same output size).
    Sum,
}

/// Two sequence models over the same input: `forward` reads each sequence
/// from its first step, `backward` from its last valid step to its first
/// (as a `go_backwards` model would), and their outputs are merged step by
/// step, the backward one put back at the step it read. Either direction
/// may be an [`LTC`](super::LTC) or a [`CfC`](super::CfC).
///
/// Mask-aware: with [`forward_padded`](Self::forward_padded), the backward
/// direction starts at each sample's last valid step, not at the padding.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::rnn::{Bidirectional, CfCConfig, LTCConfig, Merge, Units};
/// use ncps::wirings::AutoNCP;
///
/// let device = Default::default();
/// let forward = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?;
/// let backward = LTCConfig::new(3, Units::from(AutoNCP::new(10, 4)?)).init(&device)?;
/// let model = Bidirectional::new(forward, backward, Merge::Concat)?;
/// let (output, (_, _)) = model.forward(Tensor::zeros([2, 5, 3], &device), None);
/// assert_eq!(output.dims(), [2, 5, 8 + 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Module, Debug)]
pub struct Bidirectional<B: Backend, F, G> {
    /// The direction that reads each sequence forward.
    pub forward: Rnn<B, F>,
    /// The direction that reads each sequence backward.
    pub backward: Rnn<B, G>,
    /// How the two outputs are merged.
    #[module(skip)]
    pub merge: Merge,
}

/// The final states of a [`Bidirectional`]: forward, backward.
pub type BiState<B> = (RnnState<B, 2>, RnnState<B, 2>);

impl<B: Backend, F: RecurrentCell<B>, G: RecurrentCell<B>> Bidirectional<B, F, G> {
    /// Pairs two models. Fails, naming the setting, when their input
    /// sizes, layouts (`batch_first`) or `return_sequences` differ, when
    /// either is a `go_backwards` model (the backward direction is this
    /// wrapper's), or with [`Merge::Sum`] when their output sizes differ.
    pub fn new(forward: Rnn<B, F>, backward: Rnn<B, G>, merge: Merge) -> Result<Self, ConfigError> {
        let differ = |name: &'static str, a: String, b: String| {
            ConfigError::invalid(
                name,
                format!("{a} (forward) and {b} (backward)"),
                "the same in both directions",
            )
        };
        if forward.input_size() != backward.input_size() {
            return Err(differ(
                "input_size",
                forward.input_size().to_string(),
                backward.input_size().to_string(),
            ));
        }
        if forward.batch_first != backward.batch_first {
            return Err(differ(
                "batch_first",
                forward.batch_first.to_string(),
                backward.batch_first.to_string(),
            ));
        }
        if forward.return_sequences != backward.return_sequences {
            return Err(differ(
                "return_sequences",
                forward.return_sequences.to_string(),
                backward.return_sequences.to_string(),
            ));
        }
        if forward.go_backwards || backward.go_backwards {
            return Err(ConfigError::invalid(
                "go_backwards",
                "true",
                "false in both models (Bidirectional runs the backward direction itself)",
            ));
        }
        if merge == Merge::Sum && forward.output_size() != backward.output_size() {
            return Err(differ(
                "output_size",
                forward.output_size().to_string(),
                backward.output_size().to_string(),
            ));
        }
        Ok(Self {
            forward,
            backward,
            merge,
        })
    }

    /// Features of one output step: the sum of both directions' with
    /// [`Merge::Concat`], their common size with [`Merge::Sum`].
    pub fn output_size(&self) -> usize {
        match self.merge {
            Merge::Concat => self.forward.output_size() + self.backward.output_size(),
            Merge::Sum => self.forward.output_size(),
        }
    }

    /// Runs both directions over a sequence.
    ///
    /// # Shapes
    /// - input: `[batch, time, input_size]` (`[time, batch, input_size]`
    ///   when not `batch_first`)
    /// - state: the initial states of both directions (zeros when `None`)
    /// - returns: the merged outputs `[batch, time, output_size]` (a time
    ///   axis of 1 when not `return_sequences`: the forward direction's
    ///   last output beside the backward one's, which read the first step
    ///   last) and both final states
    ///
    /// # Panics
    /// As [`Rnn::forward`].
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<BiState<B>>,
    ) -> (Tensor<B, 3>, BiState<B>) {
        self.run(input, None, None, state)
    }

    /// Runs both directions over a padded batch: see
    /// [`Rnn::forward_padded`] (shapes, panics). The backward direction
    /// reads each sample from its last valid step.
    pub fn forward_padded(
        &self,
        input: Tensor<B, 3>,
        lengths: Tensor<B, 1, Int>,
        timespans: Option<Tensor<B, 2>>,
        state: Option<BiState<B>>,
    ) -> (Tensor<B, 3>, BiState<B>) {
        self.run(input, timespans, Some(lengths), state)
    }

    fn run(
        &self,
        input: Tensor<B, 3>,
        timespans: Option<Tensor<B, 2>>,
        lengths: Option<Tensor<B, 1, Int>>,
        state: Option<BiState<B>>,
    ) -> (Tensor<B, 3>, BiState<B>) {
        let timespans = timespans.map(|t| self.forward.timespans_2d(&input, t));
        let (state_f, state_b) = match state {
            Some((f, b)) => (Some(f), Some(b)),
            None => (None, None),
        };
        let pass = |backward_half| Pass {
            timespans: timespans.clone(),
            lengths: lengths.clone(),
            sequences: self.forward.return_sequences,
            backward_half,
        };
        let (out_f, state_f) = self.forward.run(input.clone(), state_f, pass(false));
        let (out_b, state_b) = self.backward.run(input, state_b, pass(true));
        let output = match self.merge {
            Merge::Concat => Tensor::cat(vec![out_f, out_b], 2),
            Merge::Sum => out_f + out_b,
        };
        (output, (state_f, state_b))
    }
}
