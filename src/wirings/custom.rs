//! `Custom`: a wiring given by its matrices.

use super::{
    NeuronType, Polarity, SynapseMatrix, Wiring, WiringError, WiringMatrices, check_units,
    plain_neuron_type,
};

/// A wiring given synapse by synapse, or by whole matrices: upstream's base
/// `Wiring(units)` with `add_synapse`, and the form any other wiring can be
/// frozen into ([`Custom::from_wiring`]), e.g. to load upstream's matrices.
///
/// Neuron types and layers default to the plain wiring's (motor below
/// `output_dim`, else inter; one layer) and can be set with
/// [`with_layers`](Self::with_layers).
///
/// ```
/// use ncps::wirings::{Custom, Polarity, Wiring};
///
/// let mut wiring = Custom::new(3, 1)?;
/// wiring.add_synapse(2, 0, Polarity::Excitatory)?;
/// wiring.add_synapse(1, 0, Polarity::Inhibitory)?;
/// wiring.build(2)?;
/// wiring.add_sensory_synapse(0, 2, Polarity::Excitatory)?;
/// wiring.add_sensory_synapse(1, 1, Polarity::Excitatory)?;
/// assert_eq!((wiring.synapse_count(), wiring.sensory_synapse_count()), (2, 2));
/// assert!(wiring.add_synapse(3, 0, Polarity::Excitatory).is_err());
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Custom {
    output_dim: usize,
    layers: Vec<Vec<usize>>,
    neuron_types: Vec<NeuronType>,
    pub(crate) synapses: WiringMatrices,
}

impl Custom {
    /// `units` neurons without synapses, the first `output_dim` motor.
    ///
    /// Fails unless `units >= 1` and `1 <= output_dim <= units`.
    pub fn new(units: usize, output_dim: usize) -> Result<Self, WiringError> {
        check_units(units, output_dim)?;
        Ok(Self {
            output_dim,
            layers: vec![(0..units).collect()],
            neuron_types: (0..units)
                .map(|id| plain_neuron_type(id, units, output_dim))
                .collect(),
            synapses: WiringMatrices::new(units),
        })
    }

    /// A wiring with the given `[units, units]` neuron synapses and, when
    /// `sensory` is given, `[input_dim, units]` sensory synapses (it is then
    /// built).
    pub fn from_matrices(
        adjacency: SynapseMatrix,
        sensory: Option<SynapseMatrix>,
        output_dim: usize,
    ) -> Result<Self, WiringError> {
        let units = adjacency.rows();
        if adjacency.cols() != units {
            return Err(WiringError::MatrixShape {
                matrix: "adjacency_matrix".into(),
                expected: [units, units],
                found: format!("it is {}x{}", units, adjacency.cols()),
            });
        }
        let mut wiring = Self::new(units, output_dim)?;
        if let Some(sensory) = &sensory {
            check_sensory_shape(sensory, units)?;
        }
        wiring.synapses = WiringMatrices { adjacency, sensory };
        Ok(wiring)
    }

    /// A frozen copy of any wiring: its matrices, neuron types and layers.
    ///
    /// ```
    /// use ncps::wirings::{AutoNCP, Custom, Wiring};
    ///
    /// let mut ncp = AutoNCP::new(10, 2)?;
    /// ncp.build(3)?;
    /// let copy = Custom::from_wiring(&ncp);
    /// assert_eq!(copy.layers(), ncp.layers());
    /// assert_eq!(copy.neuron_types(), ncp.neuron_types());
    /// assert_eq!(copy.adjacency_matrix(), ncp.adjacency_matrix());
    /// # Ok::<(), ncps::wirings::WiringError>(())
    /// ```
    pub fn from_wiring<W: Wiring + ?Sized>(wiring: &W) -> Self {
        Self {
            output_dim: wiring.output_dim(),
            layers: wiring.layers(),
            neuron_types: wiring.neuron_types(),
            synapses: WiringMatrices {
                adjacency: wiring.adjacency_matrix().clone(),
                sensory: wiring.sensory_adjacency_matrix().cloned(),
            },
        }
    }

    /// The same wiring with explicit layers (neuron ids per layer, first
    /// layer first) and the type of every neuron.
    ///
    /// Fails unless the layers hold every neuron id exactly once and
    /// `neuron_types` has one entry per neuron.
    pub fn with_layers(
        mut self,
        layers: Vec<Vec<usize>>,
        neuron_types: Vec<NeuronType>,
    ) -> Result<Self, WiringError> {
        let units = self.units();
        let mut seen = vec![false; units];
        for &id in layers.iter().flatten() {
            if id >= units || std::mem::replace(&mut seen[id], true) {
                return Err(WiringError::invalid(
                    "layers",
                    format!("{layers:?}"),
                    format!("a partition of the neuron ids 0..{units}"),
                ));
            }
        }
        if seen.contains(&false) {
            return Err(WiringError::invalid(
                "layers",
                format!("{layers:?}"),
                format!("a partition of the neuron ids 0..{units}"),
            ));
        }
        if neuron_types.len() != units {
            return Err(WiringError::invalid(
                "neuron_types",
                format!("{} entries", neuron_types.len()),
                format!("one per neuron ({units})"),
            ));
        }
        self.layers = layers;
        self.neuron_types = neuron_types;
        Ok(self)
    }

    /// Adds (or replaces) the synapse `src -> dest`.
    pub fn add_synapse(
        &mut self,
        src: usize,
        dest: usize,
        polarity: Polarity,
    ) -> Result<(), WiringError> {
        let units = self.units();
        check_index("src", src, units, "units")?;
        check_index("dest", dest, units, "units")?;
        self.synapses.adjacency.set(src, dest, Some(polarity));
        Ok(())
    }

    /// Adds (or replaces) the synapse from input `src` to neuron `dest`.
    /// Fails before [`build`](Wiring::build).
    pub fn add_sensory_synapse(
        &mut self,
        src: usize,
        dest: usize,
        polarity: Polarity,
    ) -> Result<(), WiringError> {
        let units = self.units();
        let sensory = self
            .synapses
            .sensory
            .as_mut()
            .ok_or(WiringError::NotBuilt {
                operation: "add_sensory_synapse",
            })?;
        check_index("src", src, sensory.rows(), "input_dim")?;
        check_index("dest", dest, units, "units")?;
        sensory.set(src, dest, Some(polarity));
        Ok(())
    }
}

fn check_index(
    argument: &'static str,
    value: usize,
    bound: usize,
    name: &str,
) -> Result<(), WiringError> {
    if value >= bound {
        return Err(WiringError::invalid(
            argument,
            value,
            format!("less than {name} = {bound}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_sensory_shape(
    sensory: &SynapseMatrix,
    units: usize,
) -> Result<(), WiringError> {
    if sensory.cols() != units || sensory.rows() == 0 {
        return Err(WiringError::MatrixShape {
            matrix: "sensory_adjacency_matrix".into(),
            expected: [sensory.rows().max(1), units],
            found: format!("it is {}x{}", sensory.rows(), sensory.cols()),
        });
    }
    Ok(())
}

impl Wiring for Custom {
    synapse_accessors!(synapses);

    fn output_dim(&self) -> usize {
        self.output_dim
    }

    /// Places an empty `[input_dim, units]` sensory matrix, to be filled with
    /// [`Custom::add_sensory_synapse`] (upstream's behaviour).
    fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        self.synapses.start_build(input_dim).map(|_| ())
    }

    fn neuron_type(&self, id: usize) -> NeuronType {
        assert!(
            id < self.units(),
            "neuron id {id} out of range for {} units",
            self.units()
        );
        self.neuron_types[id]
    }

    fn layers(&self) -> Vec<Vec<usize>> {
        self.layers.clone()
    }
}
