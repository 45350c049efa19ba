//! `FullyConnected`: every neuron talks to every neuron.

use super::{SynapseMatrix, Wiring, WiringError, WiringMatrices, check_units, rng};

/// Every neuron is connected to every neuron (and, once built, every input to
/// every neuron), each synapse excitatory with probability 2/3.
///
/// Upstream: `FullyConnected(units, output_dim=units, erev_init_seed=1111,
/// self_connections=True)`. An `LTC` or `CfC` given a plain unit count uses
/// `FullyConnected::new(units, units)`.
///
/// ```
/// use ncps::wirings::{FullyConnected, Wiring};
///
/// let mut wiring = FullyConnected::new(8, 1)?;
/// assert_eq!(wiring.synapse_count(), 64);
/// wiring.build(2)?;
/// assert_eq!(wiring.sensory_synapse_count(), 16);
///
/// let no_self = FullyConnected::new(8, 1)?.with_self_connections(false);
/// assert_eq!(no_self.synapse_count(), 56);
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FullyConnected {
    output_dim: usize,
    erev_init_seed: u64,
    self_connections: bool,
    pub(crate) synapses: WiringMatrices,
}

impl FullyConnected {
    /// Upstream's default `erev_init_seed`.
    pub const DEFAULT_SEED: u64 = 1111;

    /// `units` neurons of which the first `output_dim` are motor neurons,
    /// with self connections and seed [`Self::DEFAULT_SEED`].
    ///
    /// Fails unless `units >= 1` and `1 <= output_dim <= units`.
    pub fn new(units: usize, output_dim: usize) -> Result<Self, WiringError> {
        check_units(units, output_dim)?;
        let mut wiring = Self {
            output_dim,
            erev_init_seed: Self::DEFAULT_SEED,
            self_connections: true,
            synapses: WiringMatrices::new(units),
        };
        wiring.draw();
        Ok(wiring)
    }

    /// The same wiring with the polarities drawn from `seed`.
    pub fn with_erev_init_seed(mut self, seed: u64) -> Self {
        self.erev_init_seed = seed;
        self.draw();
        self
    }

    /// The same wiring with (default) or without `i -> i` synapses.
    pub fn with_self_connections(mut self, self_connections: bool) -> Self {
        self.self_connections = self_connections;
        self.draw();
        self
    }

    /// The seed of the polarities.
    pub fn erev_init_seed(&self) -> u64 {
        self.erev_init_seed
    }

    /// Whether neurons synapse onto themselves.
    pub fn self_connections(&self) -> bool {
        self.self_connections
    }

    /// Draws the neuron synapses and, when built, the sensory ones again
    /// (after a change of seed or of self connections).
    fn draw(&mut self) {
        let units = self.synapses.units();
        let mut internal = rng::seeded(self.erev_init_seed, rng::INTERNAL_STREAM);
        let mut adjacency = SynapseMatrix::zeros(units, units);
        for src in 0..units {
            for dest in 0..units {
                if src != dest || self.self_connections {
                    adjacency.set(src, dest, Some(rng::mostly_excitatory(&mut internal)));
                }
            }
        }
        self.synapses.adjacency = adjacency;
        self.draw_sensory();
    }

    /// Draws the sensory synapses of a built wiring; the neuron synapses
    /// stay as they are (a wiring loaded from JSON keeps its stored ones).
    fn draw_sensory(&mut self) {
        let units = self.synapses.units();
        if let Some(sensory) = &mut self.synapses.sensory {
            let mut draws = rng::seeded(self.erev_init_seed, rng::SENSORY_STREAM);
            for src in 0..sensory.rows() {
                for dest in 0..units {
                    sensory.set(src, dest, Some(rng::mostly_excitatory(&mut draws)));
                }
            }
        }
    }
}

impl Wiring for FullyConnected {
    synapse_accessors!(synapses);

    fn output_dim(&self) -> usize {
        self.output_dim
    }

    fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        if self.synapses.start_build(input_dim)? {
            self.draw_sensory();
        }
        Ok(())
    }
}
