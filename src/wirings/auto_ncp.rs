//! `AutoNCP`: an NCP sized from a unit count and an output size.

use super::{NCP, NCPArgs, NeuronType, SynapseMatrix, Wiring, WiringError};

/// An [`NCP`] whose layers and fanouts follow from the total number of
/// neurons, the number of outputs and a sparsity level.
///
/// With `density = 1 - sparsity_level`:
/// `command = max(⌊0.4 · (units - output_size)⌋, 1)`,
/// `inter = units - output_size - command`,
/// `sensory_fanout = max(⌊inter · density⌋, 1)`,
/// `inter_fanout = max(⌊command · density⌋, 1)`,
/// `recurrent_command_synapses = max(⌊2 · command · density⌋, 1)`,
/// `motor_fanin = max(⌊command · density⌋, 1)`.
///
/// Upstream: `AutoNCP(units, output_size, sparsity_level=0.5, seed=22222)`.
/// The valid sparsity range is `0.1..=1.0` (upstream's error message says
/// 0.0 to 0.9, but checks 0.1 to 1.0).
///
/// ```
/// use ncps::wirings::{AutoNCP, Wiring};
///
/// let wiring = AutoNCP::new(8, 1)?;
/// let ncp = wiring.ncp();
/// assert_eq!((ncp.args().inter_neurons, ncp.args().command_neurons, ncp.args().motor_neurons), (5, 2, 1));
/// assert_eq!((ncp.args().sensory_fanout, ncp.args().inter_fanout), (2, 1));
/// assert_eq!((ncp.args().recurrent_command_synapses, ncp.args().motor_fanin), (2, 1));
///
/// let sparse = AutoNCP::new(32, 4)?.with_sparsity_level(0.8)?.with_seed(3);
/// assert_eq!(sparse.units(), 32);
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AutoNCP {
    units: usize,
    output_size: usize,
    sparsity_level: f64,
    seed: u64,
    pub(crate) ncp: NCP,
}

impl AutoNCP {
    /// Upstream's default `sparsity_level`.
    pub const DEFAULT_SPARSITY: f64 = 0.5;

    /// `units` neurons of which `output_size` are motor neurons, sparsity
    /// [`Self::DEFAULT_SPARSITY`], seed [`NCP::DEFAULT_SEED`].
    ///
    /// Fails unless `1 <= output_size < units - 2`.
    pub fn new(units: usize, output_size: usize) -> Result<Self, WiringError> {
        Self::with_all(
            units,
            output_size,
            Self::DEFAULT_SPARSITY,
            NCP::DEFAULT_SEED,
        )
    }

    /// The same sizes with another sparsity level, in `0.1..=1.0`.
    pub fn with_sparsity_level(self, sparsity_level: f64) -> Result<Self, WiringError> {
        let built = self.input_dim();
        let mut wiring = Self::with_all(self.units, self.output_size, sparsity_level, self.seed)?;
        if let Some(input_dim) = built {
            wiring.build(input_dim)?;
        }
        Ok(wiring)
    }

    /// The same wiring drawn from `seed` (redrawn at once if already built).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.ncp = self.ncp.with_seed(seed);
        self
    }

    fn with_all(
        units: usize,
        output_size: usize,
        sparsity_level: f64,
        seed: u64,
    ) -> Result<Self, WiringError> {
        if output_size == 0 || output_size + 2 >= units {
            return Err(WiringError::invalid(
                "output_size",
                output_size,
                format!("between 1 and units - 3 = {}", units.saturating_sub(3)),
            ));
        }
        if !(0.1..=1.0).contains(&sparsity_level) {
            return Err(WiringError::invalid(
                "sparsity_level",
                sparsity_level,
                "in [0.1, 1.0]",
            ));
        }
        let density = 1.0 - sparsity_level;
        let inter_and_command = units - output_size;
        let command = ((0.4 * inter_and_command as f64) as usize).max(1);
        let inter = inter_and_command - command;
        let at_least_one = |x: f64| (x as usize).max(1);
        let ncp = NCP::new(NCPArgs {
            inter_neurons: inter,
            command_neurons: command,
            motor_neurons: output_size,
            sensory_fanout: at_least_one(inter as f64 * density),
            inter_fanout: at_least_one(command as f64 * density),
            recurrent_command_synapses: at_least_one(command as f64 * density * 2.0),
            motor_fanin: at_least_one(command as f64 * density),
        })?
        .with_seed(seed);
        Ok(Self {
            units,
            output_size,
            sparsity_level,
            seed,
            ncp,
        })
    }

    /// Number of motor neurons.
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// The sparsity level the fanouts were derived from.
    pub fn sparsity_level(&self) -> f64 {
        self.sparsity_level
    }

    /// The seed of the draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The NCP these numbers describe, with its derived layer sizes and
    /// fanouts.
    pub fn ncp(&self) -> &NCP {
        &self.ncp
    }
}

impl Wiring for AutoNCP {
    fn adjacency_matrix(&self) -> &SynapseMatrix {
        self.ncp.adjacency_matrix()
    }

    fn sensory_adjacency_matrix(&self) -> Option<&SynapseMatrix> {
        self.ncp.sensory_adjacency_matrix()
    }

    fn output_dim(&self) -> usize {
        self.output_size
    }

    fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        self.ncp.build(input_dim)
    }

    fn neuron_type(&self, id: usize) -> NeuronType {
        self.ncp.neuron_type(id)
    }

    fn layers(&self) -> Vec<Vec<usize>> {
        self.ncp.layers()
    }
}
