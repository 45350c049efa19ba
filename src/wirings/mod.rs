//! Wirings: which neuron talks to which, and with what polarity.
//!
//! A wiring fixes the sparse connectivity of an LTC or CfC cell: a
//! neuron-to-neuron [`SynapseMatrix`] of `units x units` entries and, once
//! [built](Wiring::build) with the input size, a sensory matrix of
//! `input_dim x units` entries, each `-1` (inhibitory), `0` (none) or `+1`
//! (excitatory), indexed `[src][dest]`. The first `output_dim` neurons are
//! the motor neurons whose states are the cell's output.
//!
//! | wiring | upstream | connectivity |
//! |---|---|---|
//! | [`FullyConnected`] | `FullyConnected(units, output_dim, erev_init_seed=1111, self_connections=True)` | every synapse |
//! | [`Random`] | `Random(units, output_dim, sparsity_level=0.0, random_seed=1111)` | a random fraction |
//! | [`NCP`] | `NCP(inter_neurons, command_neurons, motor_neurons, sensory_fanout, inter_fanout, recurrent_command_synapses, motor_fanin, seed=22222)`, arguments in [`NCPArgs`] | sensory → inter → command → motor layers |
//! | [`AutoNCP`] | `AutoNCP(units, output_size, sparsity_level=0.5, seed=22222)` | an NCP sized from two numbers |
//! | [`Custom`] | `Wiring(units)` with `add_synapse` | any matrices you give |
//!
//! All random draws come from a seeded ChaCha8 stream: the same arguments give
//! the same matrices on every platform and every run. (Upstream draws with
//! numpy, so the matrices differ from upstream's for the same seed; import
//! upstream's matrices with [`Custom`] or [`AnyWiring::from_json`].)
//!
//! # Trait and enum
//! [`Wiring`] is an object-safe trait: every wiring answers the same
//! questions (`units`, matrices, neuron types, layers, masks), and a user can
//! write a wiring of their own. A trait object cannot be serialized or stored
//! in a Burn `Config`, so [`AnyWiring`] closes the set: an enum of the
//! built-in wirings (and [`Custom`] for anything else) that implements
//! `Wiring` by delegation and has the lossless JSON form. Models take a
//! [`Units`](crate::rnn::Units), which every built-in wiring (and
//! `AnyWiring`) converts into: `Units::from(AutoNCP::new(16, 1)?)`.
//!
//! ```
//! use ncps::wirings::{AutoNCP, NeuronType, Wiring};
//!
//! let mut wiring = AutoNCP::new(16, 1)?;
//! wiring.build(2)?;
//! assert_eq!(wiring.units(), 16);
//! assert_eq!(wiring.input_dim(), Some(2));
//! assert_eq!(wiring.neuron_type(0), NeuronType::Motor);
//! assert_eq!(wiring.layers().len(), 3); // inter, command, motor
//! println!("{} synapses, {} sensory synapses", wiring.synapse_count(), wiring.sensory_synapse_count());
//! # Ok::<(), ncps::wirings::WiringError>(())
//! ```

/// The two matrix accessors of [`Wiring`], answered from a `WiringMatrices` field.
macro_rules! synapse_accessors {
    ($field:ident) => {
        fn adjacency_matrix(&self) -> &SynapseMatrix {
            &self.$field.adjacency
        }

        fn sensory_adjacency_matrix(&self) -> Option<&SynapseMatrix> {
            self.$field.sensory.as_ref()
        }
    };
}

mod any;
mod auto_ncp;
mod custom;
#[cfg(feature = "draw")]
pub mod draw;
mod error;
mod fully_connected;
mod matrix;
mod ncp;
mod random;
mod rng;
mod upstream;
pub(crate) use upstream::upstream_config;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use any::AnyWiring;
pub use auto_ncp::AutoNCP;
pub use custom::Custom;
#[cfg(feature = "draw")]
pub use draw::{
    Color, Draw, DrawError, DrawOptions, GraphNode, Layout, NeuronColors, NodeKind, SynapseColors,
    WiringGraph,
};
pub use error::WiringError;
pub use fully_connected::FullyConnected;
pub use matrix::{Polarity, SynapseMatrix};
pub use ncp::{NCP, NCPArgs};
pub use random::Random;

/// The role of a neuron in a wiring.
///
/// Plain wirings have motor neurons (the outputs, ids `0..output_dim`) and
/// inter neurons; [`NCP`] adds command neurons between them.
///
/// ```
/// use ncps::wirings::NeuronType;
///
/// assert_eq!(NeuronType::Command.name(), "command");
/// assert_eq!(NeuronType::Motor.legend_label(), "Motor neurons");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NeuronType {
    /// Receives sensory input (first NCP layer), or any non-motor neuron of
    /// a plain wiring.
    Inter,
    /// The recurrent middle layer of an NCP.
    Command,
    /// An output neuron.
    Motor,
}

impl NeuronType {
    /// `"inter"`, `"command"` or `"motor"`, upstream's names.
    pub fn name(self) -> &'static str {
        match self {
            NeuronType::Inter => "inter",
            NeuronType::Command => "command",
            NeuronType::Motor => "motor",
        }
    }

    /// The legend entry upstream's `draw_graph` returns, e.g. `"Inter neurons"`.
    pub fn legend_label(self) -> &'static str {
        match self {
            NeuronType::Inter => "Inter neurons",
            NeuronType::Command => "Command neurons",
            NeuronType::Motor => "Motor neurons",
        }
    }
}

impl fmt::Display for NeuronType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The connectivity of a neural circuit: what every wiring answers.
///
/// Required are the matrices, `output_dim` and `build`; neuron types and
/// layers default to upstream's plain wiring (motor below `output_dim`, else
/// inter; one layer of all neurons). Everything else is derived.
///
/// ```
/// use ncps::wirings::{Random, Wiring};
///
/// let mut wiring = Random::new(8, 1, 0.75)?;
/// assert_eq!(wiring.synapse_count(), 16); // round(64 * 0.25)
/// assert!(!wiring.is_built());
/// wiring.build(2)?;
/// assert_eq!(wiring.sensory_synapse_count(), 4); // round(2 * 8 * 0.25)
/// assert_eq!(wiring.sparsity_mask().len(), 64);
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
pub trait Wiring: fmt::Debug + Send + Sync {
    /// The neuron-to-neuron synapses, `[units, units]`, indexed `[src][dest]`.
    fn adjacency_matrix(&self) -> &SynapseMatrix;

    /// The input-to-neuron synapses, `[input_dim, units]`, once built.
    fn sensory_adjacency_matrix(&self) -> Option<&SynapseMatrix>;

    /// Number of motor (output) neurons; they are neurons `0..output_dim`.
    fn output_dim(&self) -> usize;

    /// Draws the sensory synapses for `input_dim` inputs.
    ///
    /// Building again with the same size does nothing; with another size it
    /// fails with [`WiringError::InputDimConflict`]. `input_dim` must be at
    /// least 1.
    fn build(&mut self, input_dim: usize) -> Result<(), WiringError>;

    /// Number of neurons: the state size of a cell using this wiring.
    fn units(&self) -> usize {
        self.adjacency_matrix().rows()
    }

    /// The input size the wiring was built with; `None` before `build`.
    fn input_dim(&self) -> Option<usize> {
        self.sensory_adjacency_matrix().map(SynapseMatrix::rows)
    }

    /// Whether `build` has drawn the sensory synapses.
    fn is_built(&self) -> bool {
        self.input_dim().is_some()
    }

    /// The role of neuron `id` (motor below `output_dim`, else inter).
    ///
    /// # Panics
    /// When `id >= units`.
    fn neuron_type(&self, id: usize) -> NeuronType {
        plain_neuron_type(id, self.units(), self.output_dim())
    }

    /// The neuron ids of each layer, first layer first (one layer of all
    /// neurons unless the wiring is layered).
    fn layers(&self) -> Vec<Vec<usize>> {
        vec![(0..self.units()).collect()]
    }

    /// Number of layers.
    fn num_layers(&self) -> usize {
        self.layers().len()
    }

    /// `neuron_type` of every neuron, by id.
    fn neuron_types(&self) -> Vec<NeuronType> {
        (0..self.units()).map(|id| self.neuron_type(id)).collect()
    }

    /// Number of neuron-to-neuron synapses.
    fn synapse_count(&self) -> usize {
        self.adjacency_matrix().synapse_count()
    }

    /// Number of input-to-neuron synapses (0 before `build`).
    fn sensory_synapse_count(&self) -> usize {
        self.sensory_adjacency_matrix()
            .map_or(0, SynapseMatrix::synapse_count)
    }

    /// The polarities as floats, `[units, units]` row-major: the initial
    /// reversal potentials `erev` of an LTC cell.
    fn erev_init(&self) -> Vec<f32> {
        self.adjacency_matrix().to_f32()
    }

    /// The sensory polarities as floats, `[input_dim, units]` row-major
    /// (`sensory_erev`); `None` before `build`.
    fn sensory_erev_init(&self) -> Option<Vec<f32>> {
        self.sensory_adjacency_matrix().map(SynapseMatrix::to_f32)
    }

    /// `1.0` where a synapse exists, `[units, units]` row-major.
    fn sparsity_mask(&self) -> Vec<f32> {
        self.adjacency_matrix().mask_f32()
    }

    /// `1.0` where a sensory synapse exists, `[input_dim, units]` row-major;
    /// `None` before `build`.
    fn sensory_sparsity_mask(&self) -> Option<Vec<f32>> {
        self.sensory_adjacency_matrix().map(SynapseMatrix::mask_f32)
    }
}

/// The synapses every wiring holds: the matrices and the build step shared
/// by all of them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WiringMatrices {
    pub(crate) adjacency: SynapseMatrix,
    pub(crate) sensory: Option<SynapseMatrix>,
}

impl WiringMatrices {
    pub(crate) fn new(units: usize) -> Self {
        Self {
            adjacency: SynapseMatrix::zeros(units, units),
            sensory: None,
        }
    }

    pub(crate) fn units(&self) -> usize {
        self.adjacency.rows()
    }

    /// Checks `input_dim` against a previous build. `Ok(true)` when the
    /// sensory synapses still have to be drawn (and an empty sensory matrix
    /// is in place), `Ok(false)` when the wiring was already built with this
    /// size.
    pub(crate) fn start_build(&mut self, input_dim: usize) -> Result<bool, WiringError> {
        check_size("input_dim", input_dim)?;
        match &self.sensory {
            Some(s) if s.rows() == input_dim => Ok(false),
            Some(s) => Err(WiringError::InputDimConflict {
                built: s.rows(),
                requested: input_dim,
            }),
            None => {
                self.sensory = Some(SynapseMatrix::zeros(input_dim, self.units()));
                Ok(true)
            }
        }
    }
}

/// Upstream's plain neuron types: motor below `output_dim`, else inter.
pub(crate) fn plain_neuron_type(id: usize, units: usize, output_dim: usize) -> NeuronType {
    assert!(id < units, "neuron id {id} out of range for {units} units");
    if id < output_dim {
        NeuronType::Motor
    } else {
        NeuronType::Inter
    }
}

/// The most neurons a wiring may have, and the most inputs it may be built
/// with. A wiring holds dense `units x units` and `inputs x units`
/// matrices, and a model's parameters have the same shapes: 16,384 neurons
/// are 256 MiB of synapse entries and several GiB of LTC parameters. The
/// bound also keeps a few bytes of a malformed file from asking for
/// terabytes.
pub const MAX_UNITS: usize = 16_384;

/// Checks `1 <= value <= MAX_UNITS` for a neuron or input count.
pub(crate) fn check_size(argument: &'static str, value: usize) -> Result<(), WiringError> {
    if value == 0 {
        return Err(WiringError::invalid(argument, 0, "at least 1"));
    }
    if value > MAX_UNITS {
        return Err(WiringError::invalid(
            argument,
            value,
            format!("at most MAX_UNITS = {MAX_UNITS}"),
        ));
    }
    Ok(())
}

/// Checks `1 <= units <= MAX_UNITS` and `1 <= output_dim <= units`, the
/// arguments every plain wiring shares.
pub(crate) fn check_units(units: usize, output_dim: usize) -> Result<(), WiringError> {
    check_size("units", units)?;
    if output_dim == 0 || output_dim > units {
        return Err(WiringError::invalid(
            "output_dim",
            output_dim,
            format!("between 1 and units = {units}"),
        ));
    }
    Ok(())
}
