//! `NCP`: the layered Neural Circuit Policy wiring.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{NeuronType, SynapseMatrix, Wiring, WiringError, WiringMatrices, check_size, rng};

/// The sizes and connectivity of an [`NCP`]: upstream's constructor
/// arguments, by their upstream names (the seed aside).
///
/// ```
/// use ncps::wirings::{NCP, NCPArgs, Wiring};
///
/// let args = NCPArgs {
///     inter_neurons: 6,
///     command_neurons: 4,
///     motor_neurons: 2,
///     sensory_fanout: 4,
///     inter_fanout: 2,
///     recurrent_command_synapses: 3,
///     motor_fanin: 2,
/// };
/// assert_eq!(NCP::new(args)?.units(), 12);
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NCPArgs {
    /// Number of inter neurons (first layer, fed by the inputs).
    pub inter_neurons: usize,
    /// Number of command neurons (second layer, recurrent).
    pub command_neurons: usize,
    /// Number of motor neurons (last layer, the outputs).
    pub motor_neurons: usize,
    /// Inter neurons each input synapses onto.
    pub sensory_fanout: usize,
    /// Command neurons each inter neuron synapses onto.
    pub inter_fanout: usize,
    /// Command → command synapses drawn (before duplicates merge).
    pub recurrent_command_synapses: usize,
    /// Command inputs of each motor neuron.
    pub motor_fanin: usize,
}

impl NCPArgs {
    /// The most recurrent command synapses drawn: each is a random draw,
    /// so the bound keeps a malformed file from asking for years of them.
    pub const MAX_RECURRENT_COMMAND_SYNAPSES: usize = 10_000_000;

    /// Fails unless every layer has at least one neuron (and all together
    /// at most [`MAX_UNITS`](super::MAX_UNITS)),
    /// `1 <= sensory_fanout <= inter_neurons`,
    /// `1 <= inter_fanout <= command_neurons` and
    /// `1 <= motor_fanin <= command_neurons`.
    fn check(&self) -> Result<(), WiringError> {
        for (argument, value) in [
            ("inter_neurons", self.inter_neurons),
            ("command_neurons", self.command_neurons),
            ("motor_neurons", self.motor_neurons),
        ] {
            check_size(argument, value)?;
        }
        check_size("units", self.units())?;
        if self.recurrent_command_synapses > Self::MAX_RECURRENT_COMMAND_SYNAPSES {
            return Err(WiringError::invalid(
                "recurrent_command_synapses",
                self.recurrent_command_synapses,
                format!(
                    "at most {} (draws beyond command_neurons² pairs only merge)",
                    Self::MAX_RECURRENT_COMMAND_SYNAPSES
                ),
            ));
        }
        for (argument, value, layer, size) in [
            (
                "sensory_fanout",
                self.sensory_fanout,
                "inter_neurons",
                self.inter_neurons,
            ),
            (
                "inter_fanout",
                self.inter_fanout,
                "command_neurons",
                self.command_neurons,
            ),
            (
                "motor_fanin",
                self.motor_fanin,
                "command_neurons",
                self.command_neurons,
            ),
        ] {
            if value == 0 || value > size {
                return Err(WiringError::invalid(
                    argument,
                    value,
                    format!("between 1 and {layer} = {size}"),
                ));
            }
        }
        Ok(())
    }

    /// All neurons.
    pub fn units(&self) -> usize {
        self.inter_neurons + self.command_neurons + self.motor_neurons
    }
}

/// A Neural Circuit Policy: four layers modelled on the nervous system of
/// C. elegans, sensory → inter → command → motor, with recurrent synapses
/// among the command neurons.
///
/// Neuron ids: motor `0..motor`, then command, then inter. [`Wiring::layers`]
/// is `[inter, command, motor]`. All synapses are drawn at
/// [`build`](Wiring::build), each polarity `±1` with probability 1/2:
/// 1. every input synapses onto `sensory_fanout` distinct inter neurons; an
///    inter neuron left without input then receives
///    `clamp(inputs · sensory_fanout / inter, 1, inputs)` distinct inputs;
/// 2. every inter neuron synapses onto `inter_fanout` distinct command
///    neurons; a command neuron left without input receives
///    `clamp(inter · inter_fanout / command, 1, inter)` distinct inter inputs
///    (upstream clamps by the command count, a bug);
/// 3. `recurrent_command_synapses` draws of a random command → command synapse
///    (a repeated pair overwrites, so fewer may exist);
/// 4. every motor neuron receives `motor_fanin` distinct command inputs; a
///    command neuron left without output synapses onto
///    `clamp(motor · motor_fanin / command, 1, motor)` distinct motor neurons.
///
/// Divisions are integer divisions, as upstream's `int(...)`.
///
/// ```
/// use ncps::wirings::{NCP, NCPArgs, NeuronType, Wiring};
///
/// let args = NCPArgs {
///     inter_neurons: 6,
///     command_neurons: 4,
///     motor_neurons: 2,
///     sensory_fanout: 4,
///     inter_fanout: 2,
///     recurrent_command_synapses: 3,
///     motor_fanin: 2,
/// };
/// let mut wiring = NCP::new(args)?.with_seed(7);
/// wiring.build(3)?;
/// assert_eq!(wiring.units(), 12);
/// assert_eq!(wiring.layers(), vec![(6..12).collect::<Vec<_>>(), vec![2, 3, 4, 5], vec![0, 1]]);
/// assert_eq!(wiring.neuron_type(3), NeuronType::Command);
/// assert!(NCP::new(NCPArgs { sensory_fanout: 7, ..args }).is_err()); // > inter_neurons
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NCP {
    args: NCPArgs,
    seed: u64,
    pub(crate) synapses: WiringMatrices,
}

impl NCP {
    /// Upstream's default `seed`.
    pub const DEFAULT_SEED: u64 = 22222;

    /// An NCP with the given layer sizes and connectivity, seed
    /// [`Self::DEFAULT_SEED`].
    ///
    /// Fails unless every layer has at least one neuron,
    /// `1 <= sensory_fanout <= inter_neurons`,
    /// `1 <= inter_fanout <= command_neurons` and
    /// `1 <= motor_fanin <= command_neurons`.
    pub fn new(args: NCPArgs) -> Result<Self, WiringError> {
        args.check()?;
        Ok(Self {
            args,
            seed: Self::DEFAULT_SEED,
            synapses: WiringMatrices::new(args.units()),
        })
    }

    /// The same wiring drawn from `seed` (redrawn at once if already built).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        if let Some(input_dim) = self.input_dim() {
            self.draw(input_dim);
        }
        self
    }

    /// The sizes and connectivity.
    pub fn args(&self) -> &NCPArgs {
        &self.args
    }

    /// The seed of the draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn motor_ids(&self) -> Vec<usize> {
        (0..self.args.motor_neurons).collect()
    }

    fn command_ids(&self) -> Vec<usize> {
        (self.args.motor_neurons..self.args.motor_neurons + self.args.command_neurons).collect()
    }

    fn inter_ids(&self) -> Vec<usize> {
        let start = self.args.motor_neurons + self.args.command_neurons;
        (start..start + self.args.inter_neurons).collect()
    }

    /// Draws every synapse for `input_dim` inputs.
    fn draw(&mut self, input_dim: usize) {
        let (inter, command, motor) = (self.inter_ids(), self.command_ids(), self.motor_ids());
        let sensory: Vec<usize> = (0..input_dim).collect();
        let mut draws = rng::seeded(self.seed, rng::INTERNAL_STREAM);
        let units = self.synapses.units();

        let mut sensory_matrix = SynapseMatrix::zeros(input_dim, units);
        let fanin =
            (input_dim * self.args.sensory_fanout / self.args.inter_neurons).clamp(1, input_dim);
        connect_layers(
            &mut draws,
            &mut sensory_matrix,
            &sensory,
            &inter,
            self.args.sensory_fanout,
            fanin,
        );

        let mut adjacency = SynapseMatrix::zeros(units, units);
        let fanin = (self.args.inter_neurons * self.args.inter_fanout / self.args.command_neurons)
            .clamp(1, self.args.inter_neurons);
        connect_layers(
            &mut draws,
            &mut adjacency,
            &inter,
            &command,
            self.args.inter_fanout,
            fanin,
        );

        for _ in 0..self.args.recurrent_command_synapses {
            let src = rng::choose_one(&mut draws, &command);
            let dest = rng::choose_one(&mut draws, &command);
            adjacency.set(src, dest, Some(rng::fair(&mut draws)));
        }

        // Motor neurons draw their inputs; forgotten command neurons their outputs.
        let mut silent: Vec<usize> = command.clone();
        for &dest in &motor {
            for src in rng::choose_distinct(&mut draws, &command, self.args.motor_fanin) {
                silent.retain(|&c| c != src);
                adjacency.set(src, dest, Some(rng::fair(&mut draws)));
            }
        }
        let fanout = (self.args.motor_neurons * self.args.motor_fanin / self.args.command_neurons)
            .clamp(1, self.args.motor_neurons);
        for src in silent {
            for dest in rng::choose_distinct(&mut draws, &motor, fanout) {
                adjacency.set(src, dest, Some(rng::fair(&mut draws)));
            }
        }

        self.synapses.adjacency = adjacency;
        self.synapses.sensory = Some(sensory_matrix);
    }
}

/// Every `src` synapses onto `fanout` distinct `dest` neurons; then every
/// `dest` left without input receives `fanin` distinct `src` inputs.
fn connect_layers(
    draws: &mut ChaCha8Rng,
    matrix: &mut SynapseMatrix,
    src_layer: &[usize],
    dest_layer: &[usize],
    fanout: usize,
    fanin: usize,
) {
    let mut unreached: Vec<usize> = dest_layer.to_vec();
    for &src in src_layer {
        for dest in rng::choose_distinct(draws, dest_layer, fanout) {
            unreached.retain(|&d| d != dest);
            matrix.set(src, dest, Some(rng::fair(draws)));
        }
    }
    for dest in unreached {
        for src in rng::choose_distinct(draws, src_layer, fanin) {
            matrix.set(src, dest, Some(rng::fair(draws)));
        }
    }
}

impl Wiring for NCP {
    synapse_accessors!(synapses);

    fn output_dim(&self) -> usize {
        self.args.motor_neurons
    }

    fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        if self.synapses.start_build(input_dim)? {
            self.draw(input_dim);
        }
        Ok(())
    }

    fn neuron_type(&self, id: usize) -> NeuronType {
        assert!(
            id < self.units(),
            "neuron id {id} out of range for {} units",
            self.units()
        );
        if id < self.args.motor_neurons {
            NeuronType::Motor
        } else if id < self.args.motor_neurons + self.args.command_neurons {
            NeuronType::Command
        } else {
            NeuronType::Inter
        }
    }

    fn layers(&self) -> Vec<Vec<usize>> {
        vec![self.inter_ids(), self.command_ids(), self.motor_ids()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column of `dest`: its input from every row.
    fn column(matrix: &SynapseMatrix, dest: usize) -> Vec<i8> {
        (0..matrix.rows())
            .map(|src| matrix.get(src, dest))
            .collect()
    }

    /// `connect_layers` from `seed` on a `rows x cols` matrix.
    fn connect(
        [rows, cols]: [usize; 2],
        src_layer: &[usize],
        dest_layer: &[usize],
        fanout: usize,
        fanin: usize,
        seed: u64,
    ) -> SynapseMatrix {
        let mut matrix = SynapseMatrix::zeros(rows, cols);
        let mut draws = rng::seeded(seed, rng::INTERNAL_STREAM);
        connect_layers(
            &mut draws,
            &mut matrix,
            src_layer,
            dest_layer,
            fanout,
            fanin,
        );
        matrix
    }

    #[test]
    fn every_src_reaches_fanout_dests_and_every_unreached_dest_gets_fanin_srcs() {
        // (matrix shape, src layer, dest layer), as `draw` passes them.
        let layouts: [([usize; 2], Vec<usize>, Vec<usize>); 4] = [
            // 3 inputs onto inter neurons 6..11 of 11.
            ([3, 11], (0..3).collect(), (6..11).collect()),
            // Inter neurons 6..11 onto command neurons 2..6.
            ([11, 11], (6..11).collect(), (2..6).collect()),
            // Many sources onto few destinations.
            ([12, 12], (4..12).collect(), (0..4).collect()),
            // A single source.
            ([5, 5], vec![4], vec![0, 1, 2, 3]),
        ];
        for (shape, src_layer, dest_layer) in &layouts {
            for fanout in 1..=dest_layer.len() {
                for fanin in 1..=src_layer.len() {
                    for seed in 0..20 {
                        let case = format!(
                            "{src_layer:?} -> {dest_layer:?}, fanout {fanout}, fanin {fanin}, seed {seed}"
                        );
                        // With fanin 0 only the fanout draws run, and they
                        // draw the same as with any fanin.
                        let fanout_only = connect(*shape, src_layer, dest_layer, fanout, 0, seed);
                        let matrix = connect(*shape, src_layer, dest_layer, fanout, fanin, seed);
                        for (src, dest, _) in matrix.synapses() {
                            assert!(
                                src_layer.contains(&src) && dest_layer.contains(&dest),
                                "{case}: synapse {src} -> {dest} outside the layers"
                            );
                        }
                        for &src in src_layer {
                            let reached = dest_layer
                                .iter()
                                .filter(|&&dest| fanout_only.get(src, dest) != 0)
                                .count();
                            assert_eq!(reached, fanout, "{case}: src {src}");
                        }
                        for &dest in dest_layer {
                            let before = column(&fanout_only, dest);
                            let after = column(&matrix, dest);
                            let inputs = after.iter().filter(|&&e| e != 0).count();
                            if before.iter().all(|&e| e == 0) {
                                assert_eq!(inputs, fanin, "{case}: unreached dest {dest}");
                            } else {
                                assert_eq!(after, before, "{case}: reached dest {dest} changed");
                            }
                            assert!(inputs >= 1, "{case}: dest {dest} has no input");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fanout_over_the_whole_dest_layer_connects_everything_once() {
        let (src_layer, dest_layer) = ((3..6).collect::<Vec<_>>(), vec![0, 1, 2]);
        let matrix = connect([6, 6], &src_layer, &dest_layer, 3, 3, 1);
        assert_eq!(matrix.synapse_count(), 9);
        for &src in &src_layer {
            for &dest in &dest_layer {
                assert_ne!(matrix.get(src, dest), 0, "{src} -> {dest}");
            }
        }
    }

    #[test]
    fn draws_are_seeded_and_polarities_fair() {
        let (src_layer, dest_layer): (Vec<usize>, Vec<usize>) =
            ((0..100).collect(), (100..200).collect());
        let draw = |seed| connect([200, 200], &src_layer, &dest_layer, 50, 1, seed);
        let matrix = draw(5);
        assert_eq!(matrix, draw(5));
        assert_ne!(matrix, draw(6));
        // 100 sources x 50 distinct destinations reach every destination:
        // exactly the fanout synapses, half of them excitatory.
        assert_eq!(matrix.synapse_count(), 5000);
        let excitatory = matrix.entries().iter().filter(|&&e| e == 1).count();
        let share = excitatory as f64 / 5000.0;
        assert!((share - 0.5).abs() < 0.03, "excitatory share {share}");
    }
}
