//! `NCP`: the layered Neural Circuit Policy wiring.

use rand_chacha::ChaCha8Rng;

use super::{NeuronType, SynapseMatrix, Synapses, Wiring, WiringError, rng};

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
/// use ncps::wirings::{NCP, NeuronType, Wiring};
///
/// let mut wiring = NCP::new(6, 4, 2, 4, 2, 3, 2)?.with_seed(7);
/// wiring.build(3)?;
/// assert_eq!(wiring.units(), 12);
/// assert_eq!(wiring.layers(), vec![(6..12).collect::<Vec<_>>(), vec![2, 3, 4, 5], vec![0, 1]]);
/// assert_eq!(wiring.neuron_type(3), NeuronType::Command);
/// assert!(NCP::new(6, 4, 2, 7, 2, 3, 2).is_err()); // sensory_fanout > inter
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NCP {
    inter_neurons: usize,
    command_neurons: usize,
    motor_neurons: usize,
    sensory_fanout: usize,
    inter_fanout: usize,
    recurrent_command_synapses: usize,
    motor_fanin: usize,
    seed: u64,
    pub(crate) synapses: Synapses,
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
    pub fn new(
        inter_neurons: usize,
        command_neurons: usize,
        motor_neurons: usize,
        sensory_fanout: usize,
        inter_fanout: usize,
        recurrent_command_synapses: usize,
        motor_fanin: usize,
    ) -> Result<Self, WiringError> {
        for (argument, value) in [
            ("inter_neurons", inter_neurons),
            ("command_neurons", command_neurons),
            ("motor_neurons", motor_neurons),
        ] {
            if value == 0 {
                return Err(WiringError::invalid(argument, value, "at least 1"));
            }
        }
        for (argument, value, layer, size) in [
            (
                "sensory_fanout",
                sensory_fanout,
                "inter_neurons",
                inter_neurons,
            ),
            (
                "inter_fanout",
                inter_fanout,
                "command_neurons",
                command_neurons,
            ),
            (
                "motor_fanin",
                motor_fanin,
                "command_neurons",
                command_neurons,
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
        Ok(Self {
            inter_neurons,
            command_neurons,
            motor_neurons,
            sensory_fanout,
            inter_fanout,
            recurrent_command_synapses,
            motor_fanin,
            seed: Self::DEFAULT_SEED,
            synapses: Synapses::new(inter_neurons + command_neurons + motor_neurons),
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

    /// Number of inter neurons (first layer).
    pub fn inter_neurons(&self) -> usize {
        self.inter_neurons
    }

    /// Number of command neurons (second layer).
    pub fn command_neurons(&self) -> usize {
        self.command_neurons
    }

    /// Number of motor neurons (last layer, the outputs).
    pub fn motor_neurons(&self) -> usize {
        self.motor_neurons
    }

    /// Inter neurons each input synapses onto.
    pub fn sensory_fanout(&self) -> usize {
        self.sensory_fanout
    }

    /// Command neurons each inter neuron synapses onto.
    pub fn inter_fanout(&self) -> usize {
        self.inter_fanout
    }

    /// Command → command synapses drawn (before duplicates merge).
    pub fn recurrent_command_synapses(&self) -> usize {
        self.recurrent_command_synapses
    }

    /// Command inputs of each motor neuron.
    pub fn motor_fanin(&self) -> usize {
        self.motor_fanin
    }

    /// The seed of the draws.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn motor_ids(&self) -> Vec<usize> {
        (0..self.motor_neurons).collect()
    }

    fn command_ids(&self) -> Vec<usize> {
        (self.motor_neurons..self.motor_neurons + self.command_neurons).collect()
    }

    fn inter_ids(&self) -> Vec<usize> {
        let start = self.motor_neurons + self.command_neurons;
        (start..start + self.inter_neurons).collect()
    }

    /// Draws every synapse for `input_dim` inputs.
    fn draw(&mut self, input_dim: usize) {
        let (inter, command, motor) = (self.inter_ids(), self.command_ids(), self.motor_ids());
        let sensory: Vec<usize> = (0..input_dim).collect();
        let mut draws = rng::seeded(self.seed, rng::INTERNAL_STREAM);
        let units = self.synapses.units();

        let mut sensory_matrix = SynapseMatrix::zeros(input_dim, units);
        let fanin = (input_dim * self.sensory_fanout / self.inter_neurons).clamp(1, input_dim);
        connect_layers(
            &mut draws,
            &mut sensory_matrix,
            &sensory,
            &inter,
            self.sensory_fanout,
            fanin,
        );

        let mut adjacency = SynapseMatrix::zeros(units, units);
        let fanin = (self.inter_neurons * self.inter_fanout / self.command_neurons)
            .clamp(1, self.inter_neurons);
        connect_layers(
            &mut draws,
            &mut adjacency,
            &inter,
            &command,
            self.inter_fanout,
            fanin,
        );

        for _ in 0..self.recurrent_command_synapses {
            let src = rng::choose_one(&mut draws, &command);
            let dest = rng::choose_one(&mut draws, &command);
            adjacency.set(src, dest, Some(rng::fair(&mut draws)));
        }

        // Motor neurons draw their inputs; forgotten command neurons their outputs.
        let mut silent: Vec<usize> = command.clone();
        for &dest in &motor {
            for src in rng::choose_distinct(&mut draws, &command, self.motor_fanin) {
                silent.retain(|&c| c != src);
                adjacency.set(src, dest, Some(rng::fair(&mut draws)));
            }
        }
        let fanout = (self.motor_neurons * self.motor_fanin / self.command_neurons)
            .clamp(1, self.motor_neurons);
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
        self.motor_neurons
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
        if id < self.motor_neurons {
            NeuronType::Motor
        } else if id < self.motor_neurons + self.command_neurons {
            NeuronType::Command
        } else {
            NeuronType::Inter
        }
    }

    fn layers(&self) -> Vec<Vec<usize>> {
        vec![self.inter_ids(), self.command_ids(), self.motor_ids()]
    }
}
