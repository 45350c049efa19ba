//! The wired CfC: one CfC cell per wiring layer.

use burn::module::{Content, DisplaySettings, ModuleDisplay};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::cfc::CfCPrepared;
use super::{
    CfCCell, CfCCellConfig, CfCCellOptions, CfCMode, Initialization, RecurrentCell, WiringSummary,
    one_line,
};
use crate::ConfigError;
use crate::wirings::{AnyWiring, NeuronType, SynapseMatrix, Wiring};

/// Configuration of a [`WiredCfCCell`].
#[derive(Config, Debug)]
pub struct WiredCfCCellConfig {
    /// The wiring; it must be built with the input size.
    pub wiring: AnyWiring,
    /// Default: [`CfCMode::Default`].
    #[config(default = "CfCMode::Default")]
    pub mode: CfCMode,
    /// How each layer's weights start. Default: [`Initialization::Upstream`].
    #[config(default = "Initialization::Upstream")]
    pub initialization: Initialization,
}

/// A CfC shaped by a wiring (upstream's `WiredCfCCell`): one backbone-free
/// [`CfCCell`] per wiring layer, layer `l` reading the outputs of layer
/// `l - 1` (layer 0 reads the input) through a sparsity mask made of the
/// wiring's synapses into its neurons, plus all-to-all recurrence within the
/// layer. The output is the motor neurons' part of the last layer's state:
/// the whole last layer for an NCP, the first `output_dim` neurons for a
/// one-layer wiring such as `FullyConnected` (upstream returns the whole
/// layer there, more outputs than its `output_size` says).
///
/// The state is the layers' states concatenated in layer order (`layers()[0]`
/// first), not in neuron-id order, as upstream.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::cells::{RecurrentCell, WiredCfCCellConfig};
/// use ncps::wirings::{AutoNCP, Wiring};
///
/// let device = Default::default();
/// let mut wiring = AutoNCP::new(12, 2)?;
/// wiring.build(3)?;
/// let cell = WiredCfCCellConfig::new(wiring.into()).init::<NdArray>(&device)?;
/// assert_eq!(cell.layer_sizes, vec![6, 4, 2]);
/// let (output, state) = cell.forward(Tensor::zeros([1, 3], &device), Tensor::zeros([1, 12], &device), Tensor::ones([1], &device));
/// assert_eq!((output.dims(), state.dims()), ([1, 2], [1, 12]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct WiredCfCCell<B: Backend> {
    /// One cell per wiring layer, first layer first.
    pub layers: Vec<CfCCell<B>>,
    /// Neurons of each layer.
    pub layer_sizes: Vec<usize>,
    /// Positions of the motor neurons within the last layer, when they are
    /// not the whole layer (constant).
    pub motor_positions: Option<Tensor<B, 1, Int>>,
    /// What `println!("{cell}")` shows of the wiring.
    #[module(skip)]
    pub(crate) summary: WiringSummary,
}

impl<B: Backend> ModuleDisplay for WiredCfCCell<B> {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        one_line()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let content = content
            .add("units", &self.state_size())
            .add("input_size", &self.input_size())
            .add("layer_sizes", format!("{:?}", self.layer_sizes).as_str())
            .add("motor", &self.output_size());
        self.summary.describe(content).optional()
    }
}

/// The `[inputs + layer, layer]` mask of one wiring layer: the synapses from
/// `sources` (rows of `synapses`) into `layer`, then all-to-all recurrence.
fn layer_mask(synapses: &SynapseMatrix, sources: &[usize], layer: &[usize]) -> SynapseMatrix {
    let mut rows: Vec<Vec<i8>> = sources
        .iter()
        .map(|&src| {
            layer
                .iter()
                .map(|&dest| synapses.get(src, dest).abs())
                .collect()
        })
        .collect();
    rows.extend(std::iter::repeat_n(vec![1; layer.len()], layer.len()));
    SynapseMatrix::from_rows("layer mask", &rows, layer.len()).expect("entries are 0 or 1")
}

impl WiredCfCCellConfig {
    /// Initialises one CfC cell per wiring layer on `device`.
    ///
    /// Fails when the wiring is not built.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<WiredCfCCell<B>, ConfigError> {
        let sensory = self
            .wiring
            .sensory_adjacency_matrix()
            .ok_or(ConfigError::WiringNotBuilt)?;
        let layers = self.wiring.layers();
        let inputs: Vec<usize> = (0..sensory.rows()).collect();
        let mut cells = Vec::with_capacity(layers.len());
        for (l, neurons) in layers.iter().enumerate() {
            let mask = if l == 0 {
                layer_mask(sensory, &inputs, neurons)
            } else {
                layer_mask(self.wiring.adjacency_matrix(), &layers[l - 1], neurons)
            };
            let in_features = mask.rows() - neurons.len();
            cells.push(
                CfCCellConfig::new(in_features, neurons.len())
                    .with_options(
                        CfCCellOptions::new()
                            .with_mode(self.mode)
                            .with_backbone_layers(0),
                    )
                    .with_sparsity_mask(Some(mask))
                    .with_initialization(self.initialization)
                    .init(device)?,
            );
        }
        let last = layers.last().expect("a wiring has a layer");
        let motor: Vec<i64> = last
            .iter()
            .enumerate()
            .filter(|&(_, &id)| self.wiring.neuron_type(id) == NeuronType::Motor)
            .map(|(position, _)| position as i64)
            .collect();
        if motor.is_empty() {
            return Err(ConfigError::invalid(
                "wiring",
                format!("last layer {last:?}"),
                "a wiring whose last layer holds its motor neurons",
            ));
        }
        let count = motor.len();
        let motor_positions = (count != last.len())
            .then(|| Tensor::from_data(TensorData::new(motor, [count]), device));
        Ok(WiredCfCCell {
            layers: cells,
            layer_sizes: layers.iter().map(Vec::len).collect(),
            motor_positions,
            summary: WiringSummary::of(&self.wiring),
        })
    }
}

impl<B: Backend> RecurrentCell<B> for WiredCfCCell<B> {
    type Prepared = Vec<CfCPrepared<B>>;

    fn input_size(&self) -> usize {
        self.layers[0].input_size
    }

    fn state_size(&self) -> usize {
        self.layer_sizes.iter().sum()
    }

    fn output_size(&self) -> usize {
        match &self.motor_positions {
            Some(positions) => positions.dims()[0],
            None => *self.layer_sizes.last().expect("a wiring has a layer"),
        }
    }

    /// Each layer's synapses are a sparsity mask: its tensor-op steps'
    /// masked weights, derived once per sequence.
    fn prepare(&self) -> Vec<CfCPrepared<B>> {
        self.layers
            .iter()
            .map(CfCCell::prepare_tensor_ops)
            .collect()
    }

    fn step_unchecked(
        &self,
        prepared: &Vec<CfCPrepared<B>>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let states = state.split_with_sizes(self.layer_sizes.clone(), 1);
        let mut x = input;
        let mut next = Vec::with_capacity(self.layers.len());
        for ((cell, prepared), h) in self.layers.iter().zip(prepared).zip(states) {
            let (out, _) = cell.step_unchecked(prepared, x, h, elapsed.clone());
            next.push(out.clone());
            x = out;
        }
        let output = match &self.motor_positions {
            Some(positions) => x.select(1, positions.clone()),
            None => x,
        };
        (output, Tensor::cat(next, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wirings::Polarity;

    #[test]
    fn layer_mask_holds_the_synapses_into_the_layer_then_full_recurrence() {
        // 4 neurons: 2 and 3 feed 0 and 1; polarity does not matter to a mask.
        let mut synapses = SynapseMatrix::zeros(4, 4);
        synapses.set(2, 0, Some(Polarity::Inhibitory));
        synapses.set(3, 1, Some(Polarity::Excitatory));
        synapses.set(3, 0, Some(Polarity::Excitatory));
        synapses.set(0, 1, Some(Polarity::Excitatory)); // within the layer: not in the mask
        let mask = layer_mask(&synapses, &[2, 3], &[0, 1]);
        assert_eq!(mask.shape(), [4, 2]);
        assert_eq!(
            mask.to_rows(),
            vec![vec![1, 0], vec![1, 1], vec![1, 1], vec![1, 1]]
        );
        // Layer order follows the given ids, not the matrix order.
        let reversed = layer_mask(&synapses, &[3, 2], &[1, 0]);
        assert_eq!(reversed.to_rows()[..2], [vec![1, 1], vec![0, 1]]);
    }
}
