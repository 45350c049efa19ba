//! Upstream's own wiring configs: what `wiring.get_config()` returns in
//! Python ncps 1.0.1, read as upstream's `from_config` reads them.

use serde::Deserialize;
use serde_json::Value;

use super::{
    AnyWiring, AutoNCP, Custom, FullyConnected, NCP, NCPArgs, Random, SynapseMatrix, Wiring,
    WiringError, check_size,
};

/// NCP's layer sizes: upstream's `get_config` writes the neuron id lists
/// (its own `from_config` then fails on them); a count is read too.
#[derive(Deserialize)]
#[serde(untagged)]
enum LayerSize {
    Count(usize),
    Ids(Vec<usize>),
}

impl LayerSize {
    fn count(&self) -> usize {
        match self {
            LayerSize::Count(n) => *n,
            LayerSize::Ids(ids) => ids.len(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaseConfig {
    units: usize,
    adjacency_matrix: Option<Vec<Vec<i8>>>,
    sensory_adjacency_matrix: Option<Vec<Vec<i8>>>,
    input_dim: Option<usize>,
    output_dim: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullyConnectedConfig {
    units: usize,
    output_dim: Option<usize>,
    erev_init_seed: Option<u64>,
    self_connections: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomConfig {
    units: usize,
    output_dim: Option<usize>,
    sparsity_level: Option<f64>,
    random_seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NcpConfig {
    inter_neurons: LayerSize,
    command_neurons: LayerSize,
    motor_neurons: LayerSize,
    sensory_fanout: usize,
    inter_fanout: usize,
    recurrent_command_synapses: usize,
    motor_fanin: usize,
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoNcpConfig {
    units: usize,
    output_size: usize,
    sparsity_level: Option<f64>,
    seed: Option<u64>,
}

impl AnyWiring {
    /// Reads the JSON of upstream's `wiring.get_config()` (Python ncps
    /// 1.0.1), telling the class by its keys, as upstream's `from_config`
    /// of that class does:
    ///
    /// | class | keys | result |
    /// |---|---|---|
    /// | `Wiring` | `units`, `adjacency_matrix`, `sensory_adjacency_matrix`, `input_dim`, `output_dim` | [`Custom`] with exactly these matrices |
    /// | `FullyConnected` | `units`, `output_dim`, `erev_init_seed`, `self_connections` | [`FullyConnected`] |
    /// | `Random` | `units`, `output_dim`, `sparsity_level`, `random_seed` | [`Random`] |
    /// | `NCP` | layer sizes (or upstream's id lists), fanouts, `seed` | [`NCP`] |
    /// | `AutoNCP` | `units`, `output_size`, `sparsity_level`, `seed` | [`AutoNCP`] |
    ///
    /// Only the base `Wiring` config holds matrices. The others hold seeds,
    /// which this crate draws with its own generator, not numpy's: the
    /// structure (counts, layers, fan-outs) is upstream's, the individual
    /// synapses are not. For a trained upstream model's exact synapses use
    /// [`StateDict::wiring`](crate::import::StateDict::wiring) on its
    /// checkpoint. Upstream's NCP config lists neuron ids where counts
    /// belong and a `null` seed (its own `from_config` fails on it): the
    /// counts are read from the lists and a `null` seed is the default one.
    ///
    /// ```
    /// use ncps::wirings::{AnyWiring, Wiring};
    ///
    /// let config = r#"{"units": 3, "adjacency_matrix": [[0, -1, 0], [0, 0, 1], [1, 0, 0]],
    ///     "sensory_adjacency_matrix": [[1, 0, 0]], "input_dim": 1, "output_dim": 1}"#;
    /// let wiring = AnyWiring::from_upstream_config(config)?;
    /// assert_eq!((wiring.synapse_count(), wiring.input_dim()), (3, Some(1)));
    ///
    /// let auto = AnyWiring::from_upstream_config(r#"{"units": 10, "output_size": 2, "sparsity_level": 0.5, "seed": 22222}"#)?;
    /// assert_eq!(auto.kind(), "AutoNCP");
    /// # Ok::<(), ncps::wirings::WiringError>(())
    /// ```
    pub fn from_upstream_config(json: &str) -> Result<Self, WiringError> {
        let value: Value = serde_json::from_str(json)?;
        let Some(object) = value.as_object() else {
            return Err(WiringError::Inconsistent {
                field: "config",
                expected: "a JSON object (upstream's get_config())".into(),
                found: kind_of(&value).into(),
            });
        };
        let has = |key: &str| object.contains_key(key);
        if has("adjacency_matrix") {
            base(serde_json::from_value(value)?)
        } else if has("inter_neurons") {
            let c: NcpConfig = serde_json::from_value(value)?;
            let ncp = NCP::new(NCPArgs {
                inter_neurons: c.inter_neurons.count(),
                command_neurons: c.command_neurons.count(),
                motor_neurons: c.motor_neurons.count(),
                sensory_fanout: c.sensory_fanout,
                inter_fanout: c.inter_fanout,
                recurrent_command_synapses: c.recurrent_command_synapses,
                motor_fanin: c.motor_fanin,
            })?;
            Ok(ncp.with_seed(c.seed.unwrap_or(NCP::DEFAULT_SEED)).into())
        } else if has("output_size") {
            let c: AutoNcpConfig = serde_json::from_value(value)?;
            let auto = AutoNCP::new(c.units, c.output_size)?
                .with_sparsity_level(c.sparsity_level.unwrap_or(AutoNCP::DEFAULT_SPARSITY))?;
            Ok(auto.with_seed(c.seed.unwrap_or(NCP::DEFAULT_SEED)).into())
        } else if has("random_seed") || has("sparsity_level") {
            let c: RandomConfig = serde_json::from_value(value)?;
            let random = Random::new(
                c.units,
                c.output_dim.unwrap_or(c.units),
                c.sparsity_level.unwrap_or(0.0),
            )?;
            Ok(random
                .with_random_seed(c.random_seed.unwrap_or(Random::DEFAULT_SEED))
                .into())
        } else {
            let c: FullyConnectedConfig = serde_json::from_value(value)?;
            let wiring = FullyConnected::new(c.units, c.output_dim.unwrap_or(c.units))?
                .with_erev_init_seed(c.erev_init_seed.unwrap_or(FullyConnected::DEFAULT_SEED))
                .with_self_connections(c.self_connections.unwrap_or(true));
            Ok(wiring.into())
        }
    }
}

impl AnyWiring {
    /// The JSON upstream's base `Wiring.get_config()` returns for these
    /// matrices (Python ncps 1.0.1): `units`, `adjacency_matrix`,
    /// `sensory_adjacency_matrix`, `input_dim`, `output_dim`. Upstream's
    /// `Wiring.from_config` rebuilds the exact synapses from it (the seeded
    /// configs of its subclasses cannot: numpy draws other synapses), and
    /// so does [`from_upstream_config`](Self::from_upstream_config). Layers
    /// and neuron types are not part of it (a base `Wiring` has one layer).
    ///
    /// ```
    /// use ncps::wirings::{AnyWiring, AutoNCP, Wiring};
    ///
    /// let mut wiring = AutoNCP::new(10, 2)?;
    /// wiring.build(3)?;
    /// let json = AnyWiring::from(wiring.clone()).to_upstream_config();
    /// let back = AnyWiring::from_upstream_config(&json)?;
    /// assert_eq!(back.adjacency_matrix(), wiring.adjacency_matrix());
    /// assert_eq!(back.sensory_adjacency_matrix(), wiring.sensory_adjacency_matrix());
    /// # Ok::<(), ncps::wirings::WiringError>(())
    /// ```
    pub fn to_upstream_config(&self) -> String {
        upstream_config(self).to_string()
    }
}

/// Upstream's base `Wiring.get_config()` of any wiring, as a JSON value.
pub(crate) fn upstream_config(wiring: &dyn Wiring) -> Value {
    serde_json::json!({
        "units": wiring.units(),
        "adjacency_matrix": wiring.adjacency_matrix().to_rows(),
        "sensory_adjacency_matrix": wiring.sensory_adjacency_matrix().map(SynapseMatrix::to_rows),
        "input_dim": wiring.input_dim(),
        "output_dim": wiring.output_dim(),
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Upstream's base `Wiring`: its matrices as they are.
fn base(c: BaseConfig) -> Result<AnyWiring, WiringError> {
    let Some(output_dim) = c.output_dim else {
        return Err(WiringError::Inconsistent {
            field: "output_dim",
            expected: "a motor neuron count (upstream's set_output_dim)".into(),
            found: "null".into(),
        });
    };
    let units = c.units;
    check_size("units", units)?;
    let adjacency = match &c.adjacency_matrix {
        Some(rows) => SynapseMatrix::from_rows("adjacency_matrix", rows, units)?,
        None => SynapseMatrix::zeros(units, units),
    };
    if adjacency.rows() != units {
        return Err(WiringError::MatrixShape {
            matrix: "adjacency_matrix".into(),
            expected: [units, units],
            found: format!("it has {} rows", adjacency.rows()),
        });
    }
    let sensory = match (&c.sensory_adjacency_matrix, c.input_dim) {
        (Some(rows), input_dim) => {
            let sensory = SynapseMatrix::from_rows("sensory_adjacency_matrix", rows, units)?;
            if input_dim.is_some_and(|d| d != sensory.rows()) {
                return Err(WiringError::Inconsistent {
                    field: "input_dim",
                    expected: format!("{} (the sensory matrix's rows)", sensory.rows()),
                    found: format!("{input_dim:?}"),
                });
            }
            Some(sensory)
        }
        (None, None) => None,
        (None, Some(input_dim)) => {
            return Err(WiringError::Inconsistent {
                field: "sensory_adjacency_matrix",
                expected: format!("an {input_dim}x{units} matrix (input_dim is {input_dim})"),
                found: "null".into(),
            });
        }
    };
    Ok(Custom::from_matrices(adjacency, sensory, output_dim)?.into())
}
