//! `AnyWiring`: the closed set of wirings, and their lossless JSON form.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::custom::check_sensory_shape;
use super::{
    AutoNCP, Custom, FullyConnected, NCP, NCPArgs, NeuronType, Random, SynapseMatrix, Wiring,
    WiringError, WiringMatrices,
};

/// Any wiring of this crate, as one serializable value.
///
/// Models store their wiring as an `AnyWiring` (every wiring converts into
/// it with `.into()`); it implements [`Wiring`] by delegating to the wiring
/// inside. Its JSON form is lossless (kind, constructor arguments, seed,
/// input size and both matrices) and is the same form as the `wiring`
/// objects of upstream-generated fixtures, so those load too:
///
/// ```json
/// {"kind": "AutoNCP", "constructor": {"units": 16, "output_size": 1, "sparsity_level": 0.5, "seed": 22222},
///  "units": 16, "input_dim": 2, "output_dim": 1,
///  "adjacency_matrix": [[0, 1, ...], ...], "sensory_adjacency_matrix": [[...], ...],
///  "layers": [[...], [...], [0]], "neuron_types": ["motor", ...],
///  "synapse_count": 33, "sensory_synapse_count": 14}
/// ```
///
/// Loading trusts the stored matrices (they are what a trained model was
/// trained with) after checking their shapes and entries against the
/// constructor arguments; `layers`, `neuron_types` and the counts, when
/// present, must agree with them.
///
/// ```
/// use ncps::wirings::{AnyWiring, AutoNCP, Wiring};
///
/// let mut wiring = AutoNCP::new(16, 1)?.with_seed(5);
/// wiring.build(2)?;
/// let json = AnyWiring::from(wiring.clone()).to_json();
/// let loaded = AnyWiring::from_json(&json)?;
/// assert_eq!(loaded, AnyWiring::AutoNCP(wiring));
/// assert_eq!(loaded.to_json(), json);
/// # Ok::<(), ncps::wirings::WiringError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "WiringRecord", try_from = "WiringRecord")]
pub enum AnyWiring {
    /// See [`FullyConnected`].
    FullyConnected(FullyConnected),
    /// See [`Random`].
    Random(Random),
    /// See [`NCP`].
    NCP(NCP),
    /// See [`AutoNCP`].
    AutoNCP(AutoNCP),
    /// See [`Custom`].
    Custom(Custom),
}

macro_rules! delegate {
    ($self:expr, $w:ident => $body:expr) => {
        match $self {
            AnyWiring::FullyConnected($w) => $body,
            AnyWiring::Random($w) => $body,
            AnyWiring::NCP($w) => $body,
            AnyWiring::AutoNCP($w) => $body,
            AnyWiring::Custom($w) => $body,
        }
    };
}

impl AnyWiring {
    /// The kind as upstream names the class: `"FullyConnected"`, `"Random"`,
    /// `"NCP"`, `"AutoNCP"` or `"Custom"`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyWiring::FullyConnected(_) => "FullyConnected",
            AnyWiring::Random(_) => "Random",
            AnyWiring::NCP(_) => "NCP",
            AnyWiring::AutoNCP(_) => "AutoNCP",
            AnyWiring::Custom(_) => "Custom",
        }
    }

    /// The wiring as a trait object.
    pub fn as_dyn(&self) -> &dyn Wiring {
        delegate!(self, w => w)
    }

    /// The lossless JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a wiring record always serializes")
    }

    /// Parses the JSON form written by [`to_json`](Self::to_json), or a
    /// fixture's `wiring` object. Every inconsistency is an error naming the
    /// field.
    pub fn from_json(json: &str) -> Result<Self, WiringError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Writes the JSON form to `path` (through a temporary file and a
    /// rename: a failed write leaves any previous file as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WiringError> {
        let path = path.as_ref();
        crate::fs::write_atomically(path, self.to_json().as_bytes()).map_err(|source| {
            WiringError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Reads a wiring written by [`save`](Self::save).
    ///
    /// ```
    /// use ncps::wirings::{AnyWiring, Random};
    ///
    /// let path = std::env::temp_dir().join("ncps-doc-random-wiring.json");
    /// let wiring = AnyWiring::from(Random::new(6, 2, 0.5)?);
    /// wiring.save(&path)?;
    /// assert_eq!(AnyWiring::load(&path)?, wiring);
    /// # Ok::<(), ncps::wirings::WiringError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WiringError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| WiringError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&json)
    }

    fn synapses_mut(&mut self) -> &mut WiringMatrices {
        match self {
            AnyWiring::FullyConnected(w) => &mut w.synapses,
            AnyWiring::Random(w) => &mut w.synapses,
            AnyWiring::NCP(w) => &mut w.synapses,
            AnyWiring::AutoNCP(w) => &mut w.ncp.synapses,
            AnyWiring::Custom(w) => &mut w.synapses,
        }
    }
}

impl Wiring for AnyWiring {
    fn adjacency_matrix(&self) -> &SynapseMatrix {
        delegate!(self, w => w.adjacency_matrix())
    }

    fn sensory_adjacency_matrix(&self) -> Option<&SynapseMatrix> {
        delegate!(self, w => w.sensory_adjacency_matrix())
    }

    fn output_dim(&self) -> usize {
        delegate!(self, w => w.output_dim())
    }

    fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        delegate!(self, w => w.build(input_dim))
    }

    fn neuron_type(&self, id: usize) -> NeuronType {
        delegate!(self, w => w.neuron_type(id))
    }

    fn layers(&self) -> Vec<Vec<usize>> {
        delegate!(self, w => w.layers())
    }
}

macro_rules! from_wiring {
    ($($kind:ident),*) => {$(
        impl From<$kind> for AnyWiring {
            fn from(wiring: $kind) -> Self {
                AnyWiring::$kind(wiring)
            }
        }
    )*};
}
from_wiring!(FullyConnected, Random, NCP, AutoNCP, Custom);

/// The constructor arguments of each kind, with upstream's names and
/// defaults (a fixture omits arguments left at their default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "constructor")]
enum Constructor {
    FullyConnected {
        units: usize,
        #[serde(default)]
        output_dim: Option<usize>,
        #[serde(default = "fully_connected_seed")]
        erev_init_seed: u64,
        #[serde(default = "yes")]
        self_connections: bool,
    },
    Random {
        units: usize,
        #[serde(default)]
        output_dim: Option<usize>,
        #[serde(default)]
        sparsity_level: f64,
        #[serde(default = "random_seed")]
        random_seed: u64,
    },
    NCP {
        #[serde(flatten)]
        args: NCPArgs,
        #[serde(default = "ncp_seed")]
        seed: u64,
    },
    AutoNCP {
        units: usize,
        output_size: usize,
        #[serde(default = "auto_ncp_sparsity")]
        sparsity_level: f64,
        #[serde(default = "ncp_seed")]
        seed: u64,
    },
    Custom {},
}

fn fully_connected_seed() -> u64 {
    FullyConnected::DEFAULT_SEED
}
fn random_seed() -> u64 {
    Random::DEFAULT_SEED
}
fn ncp_seed() -> u64 {
    NCP::DEFAULT_SEED
}
fn auto_ncp_sparsity() -> f64 {
    AutoNCP::DEFAULT_SPARSITY
}
fn yes() -> bool {
    true
}

/// The stored form of a wiring.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WiringRecord {
    #[serde(flatten)]
    constructor: Constructor,
    units: usize,
    input_dim: Option<usize>,
    output_dim: usize,
    adjacency_matrix: Vec<Vec<i8>>,
    sensory_adjacency_matrix: Option<Vec<Vec<i8>>>,
    #[serde(default)]
    layers: Option<Vec<Vec<usize>>>,
    #[serde(default)]
    neuron_types: Option<Vec<NeuronType>>,
    #[serde(default)]
    synapse_count: Option<usize>,
    #[serde(default)]
    sensory_synapse_count: Option<usize>,
}

impl From<AnyWiring> for WiringRecord {
    fn from(wiring: AnyWiring) -> Self {
        let constructor = match &wiring {
            AnyWiring::FullyConnected(w) => Constructor::FullyConnected {
                units: w.units(),
                output_dim: Some(w.output_dim()),
                erev_init_seed: w.erev_init_seed(),
                self_connections: w.self_connections(),
            },
            AnyWiring::Random(w) => Constructor::Random {
                units: w.units(),
                output_dim: Some(w.output_dim()),
                sparsity_level: w.sparsity_level(),
                random_seed: w.random_seed(),
            },
            AnyWiring::NCP(w) => Constructor::NCP {
                args: *w.args(),
                seed: w.seed(),
            },
            AnyWiring::AutoNCP(w) => Constructor::AutoNCP {
                units: w.units(),
                output_size: w.output_size(),
                sparsity_level: w.sparsity_level(),
                seed: w.seed(),
            },
            AnyWiring::Custom(_) => Constructor::Custom {},
        };
        WiringRecord {
            constructor,
            units: wiring.units(),
            input_dim: wiring.input_dim(),
            output_dim: wiring.output_dim(),
            adjacency_matrix: wiring.adjacency_matrix().to_rows(),
            sensory_adjacency_matrix: wiring
                .sensory_adjacency_matrix()
                .map(SynapseMatrix::to_rows),
            layers: Some(wiring.layers()),
            neuron_types: Some(wiring.neuron_types()),
            synapse_count: Some(wiring.synapse_count()),
            sensory_synapse_count: wiring.is_built().then(|| wiring.sensory_synapse_count()),
        }
    }
}

impl TryFrom<WiringRecord> for AnyWiring {
    type Error = WiringError;

    fn try_from(record: WiringRecord) -> Result<Self, WiringError> {
        let units = record.units;
        if record.adjacency_matrix.len() != units {
            return Err(WiringError::MatrixShape {
                matrix: "adjacency_matrix".into(),
                expected: [units, units],
                found: format!("it has {} rows", record.adjacency_matrix.len()),
            });
        }
        let adjacency =
            SynapseMatrix::from_rows("adjacency_matrix", &record.adjacency_matrix, units)?;
        if adjacency.rows() != units {
            return Err(WiringError::MatrixShape {
                matrix: "adjacency_matrix".into(),
                expected: [units, units],
                found: format!("it has {} rows", adjacency.rows()),
            });
        }
        let sensory = match (&record.sensory_adjacency_matrix, record.input_dim) {
            (Some(rows), Some(input_dim)) => {
                let sensory = SynapseMatrix::from_rows("sensory_adjacency_matrix", rows, units)?;
                check_sensory_shape(&sensory, units)?;
                if sensory.rows() != input_dim {
                    return Err(WiringError::MatrixShape {
                        matrix: "sensory_adjacency_matrix".into(),
                        expected: [input_dim, units],
                        found: format!("it has {} rows", sensory.rows()),
                    });
                }
                Some(sensory)
            }
            (None, None) => None,
            (rows, input_dim) => {
                return Err(WiringError::Inconsistent {
                    field: "sensory_adjacency_matrix",
                    expected: format!(
                        "a matrix exactly when input_dim is set (input_dim = {input_dim:?})"
                    ),
                    found: if rows.is_some() {
                        "a matrix".into()
                    } else {
                        "null".into()
                    },
                });
            }
        };

        let mut wiring: AnyWiring = match record.constructor {
            Constructor::FullyConnected {
                units,
                output_dim,
                erev_init_seed,
                self_connections,
            } => FullyConnected::new(units, output_dim.unwrap_or(units))?
                .with_erev_init_seed(erev_init_seed)
                .with_self_connections(self_connections)
                .into(),
            Constructor::Random {
                units,
                output_dim,
                sparsity_level,
                random_seed,
            } => Random::new(units, output_dim.unwrap_or(units), sparsity_level)?
                .with_random_seed(random_seed)
                .into(),
            Constructor::NCP { args, seed } => NCP::new(args)?.with_seed(seed).into(),
            Constructor::AutoNCP {
                units,
                output_size,
                sparsity_level,
                seed,
            } => AutoNCP::new(units, output_size)?
                .with_sparsity_level(sparsity_level)?
                .with_seed(seed)
                .into(),
            Constructor::Custom {} => {
                let custom =
                    Custom::from_matrices(adjacency.clone(), sensory.clone(), record.output_dim)?;
                match (record.layers.clone(), record.neuron_types.clone()) {
                    (Some(layers), Some(types)) => custom.with_layers(layers, types)?,
                    _ => custom,
                }
                .into()
            }
        };

        check_field("units", wiring.units(), units)?;
        check_field("output_dim", wiring.output_dim(), record.output_dim)?;
        *wiring.synapses_mut() = WiringMatrices { adjacency, sensory };
        if let Some(layers) = record.layers {
            check_field("layers", wiring.layers(), layers)?;
        }
        if let Some(types) = record.neuron_types {
            check_field("neuron_types", wiring.neuron_types(), types)?;
        }
        if let Some(count) = record.synapse_count {
            check_field("synapse_count", wiring.synapse_count(), count)?;
        }
        if let Some(count) = record.sensory_synapse_count {
            check_field(
                "sensory_synapse_count",
                wiring.sensory_synapse_count(),
                count,
            )?;
        }
        Ok(wiring)
    }
}

fn check_field<T: PartialEq + std::fmt::Debug>(
    field: &'static str,
    expected: T,
    found: T,
) -> Result<(), WiringError> {
    if expected == found {
        Ok(())
    } else {
        Err(WiringError::Inconsistent {
            field,
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        })
    }
}
