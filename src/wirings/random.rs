//! `Random`: a given fraction of all possible synapses.

use rand_chacha::ChaCha8Rng;

use super::{SynapseMatrix, Wiring, WiringError, WiringMatrices, check_units, rng};

/// A random subset of all synapses: `round(units² · (1 - sparsity_level))`
/// distinct neuron synapses and, once built, `round(input_dim · units · (1 -
/// sparsity_level))` sensory ones, each excitatory with probability 2/3.
/// Rounding is half-to-even, as numpy's `round`.
///
/// Upstream: `Random(units, output_dim=units, sparsity_level=0.0,
/// random_seed=1111)`.
///
/// ```
/// use ncps::wirings::{Random, Wiring};
///
/// let mut wiring = Random::new(8, 1, 0.75)?;
/// assert_eq!(wiring.synapse_count(), 16);
/// wiring.build(2)?;
/// assert_eq!(wiring.sensory_synapse_count(), 4);
/// assert!(Random::new(8, 1, 1.0).is_err());
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Random {
    output_dim: usize,
    sparsity_level: f64,
    random_seed: u64,
    pub(crate) synapses: WiringMatrices,
}

impl Random {
    /// Upstream's default `random_seed`.
    pub const DEFAULT_SEED: u64 = 1111;

    /// `units` neurons, the first `output_dim` motor, with a fraction
    /// `sparsity_level` of the synapses left out, seed [`Self::DEFAULT_SEED`].
    ///
    /// Fails unless `units >= 1`, `1 <= output_dim <= units` and
    /// `0 <= sparsity_level < 1`.
    pub fn new(units: usize, output_dim: usize, sparsity_level: f64) -> Result<Self, WiringError> {
        check_units(units, output_dim)?;
        if !(0.0..1.0).contains(&sparsity_level) {
            return Err(WiringError::invalid(
                "sparsity_level",
                sparsity_level,
                "in [0, 1)",
            ));
        }
        let mut wiring = Self {
            output_dim,
            sparsity_level,
            random_seed: Self::DEFAULT_SEED,
            synapses: WiringMatrices::new(units),
        };
        wiring.draw();
        Ok(wiring)
    }

    /// The same wiring drawn from `seed`.
    pub fn with_random_seed(mut self, seed: u64) -> Self {
        self.random_seed = seed;
        self.draw();
        self
    }

    /// The fraction of synapses left out.
    pub fn sparsity_level(&self) -> f64 {
        self.sparsity_level
    }

    /// The seed of the draws.
    pub fn random_seed(&self) -> u64 {
        self.random_seed
    }

    /// Draws the neuron synapses and, when built, the sensory ones again
    /// (after a change of seed).
    fn draw(&mut self) {
        let units = self.synapses.units();
        let mut internal = rng::seeded(self.random_seed, rng::INTERNAL_STREAM);
        self.synapses.adjacency = self.draw_matrix(&mut internal, units, units);
        self.draw_sensory();
    }

    /// Draws the sensory synapses of a built wiring; the neuron synapses
    /// stay as they are (a wiring loaded from JSON keeps its stored ones).
    fn draw_sensory(&mut self) {
        let units = self.synapses.units();
        if let Some(rows) = self.synapses.sensory.as_ref().map(SynapseMatrix::rows) {
            let mut draws = rng::seeded(self.random_seed, rng::SENSORY_STREAM);
            self.synapses.sensory = Some(self.draw_matrix(&mut draws, rows, units));
        }
    }

    fn draw_matrix(&self, draws: &mut ChaCha8Rng, rows: usize, cols: usize) -> SynapseMatrix {
        let count = ((rows * cols) as f64 * (1.0 - self.sparsity_level)).round_ties_even() as usize;
        let all: Vec<usize> = (0..rows * cols).collect();
        let mut matrix = SynapseMatrix::zeros(rows, cols);
        for flat in rng::choose_distinct(draws, &all, count) {
            matrix.set(
                flat / cols,
                flat % cols,
                Some(rng::mostly_excitatory(draws)),
            );
        }
        matrix
    }
}

impl Wiring for Random {
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
