//! Export to Python ncps 1.0.1: the weights as upstream's `state_dict`
//! (safetensors, upstream's names and layouts, masks included) and what a
//! `state_dict` does not hold (the class, its constructor arguments, the
//! wiring as upstream's `get_config()`) as JSON.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ExportError;
use crate::cells::{CfCCell, CfCCellConfig, LTCCell, RecurrentCell};
use crate::fs::write_atomically;
use crate::import::{StateDict, names};
use crate::rnn::{AnyCfCCell, Rnn};
use crate::wirings::{AnyWiring, Wiring};

/// What upstream needs besides the weights to rebuild a model: the
/// `ncps.torch` class, its constructor's keyword arguments and the wiring.
///
/// In Python (`tests/fixtures/export/check_upstream.py` does this and
/// compares the outputs):
///
/// ```python
/// config = json.load(open("model.json"))
/// args = dict(config["args"])
/// if config["wiring"] is not None:
///     args["units"] = Wiring.from_config(config["wiring"])  # + layers, for a wired CfC
/// model = getattr(ncps.torch, config["model"])(**args)
/// model.load_state_dict(safetensors.torch.load_file("model.safetensors"))
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpstreamConfig {
    /// `"LTC"` or `"CfC"`.
    pub model: String,
    /// The constructor's keyword arguments as upstream spells them
    /// (`input_size`, `units` for a dense CfC, `mode`, `activation`,
    /// `input_mapping`, `ode_unfolds`, ...).
    pub args: Map<String, Value>,
    /// Upstream's base `Wiring.get_config()` of the wiring (the exact
    /// synapses), to pass as `units`; `None` for a dense CfC.
    pub wiring: Option<Value>,
    /// The neuron ids of each wiring layer, first layer first: what a base
    /// upstream `Wiring` (one layer) lacks to rebuild a wired CfC.
    pub layers: Option<Vec<Vec<usize>>>,
    /// The crate and version that wrote it.
    pub exported_by: String,
}

impl UpstreamConfig {
    /// The JSON text (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config serializes")
    }

    /// Reads the JSON text [`to_json`](Self::to_json) writes.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn new(model: &str, args: Value, wiring: Option<&AnyWiring>) -> Self {
        let Value::Object(args) = args else {
            unreachable!("args are an object")
        };
        Self {
            model: model.into(),
            args,
            wiring: wiring.map(|w| crate::wirings::upstream_config(w)),
            layers: wiring.map(|w| w.layers()),
            exported_by: format!("ncps {} (Rust)", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl StateDict {
    /// The tensors as a safetensors file's bytes (float32, row-major, no
    /// metadata), which `safetensors.torch.load_file` reads into a
    /// `state_dict` and [`StateDict::from_safetensors_bytes`] reads back.
    pub fn to_safetensors_bytes(&self) -> Vec<u8> {
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .names()
            .map(|name| {
                let values = self.values(name).expect("a listed tensor");
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                let shape = self.shape(name).expect("a listed tensor").to_vec();
                (name.to_string(), shape, bytes)
            })
            .collect();
        let views = tensors.iter().map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("the bytes fill the shape");
            (name.as_str(), view)
        });
        safetensors::serialize(views, None::<HashMap<String, String>>)
            .expect("float32 tensors serialize")
    }

    /// Writes the tensors as a safetensors file (see
    /// [`to_safetensors_bytes`](Self::to_safetensors_bytes)), atomically.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), ExportError> {
        let path = path.as_ref();
        write_atomically(path, &self.to_safetensors_bytes()).map_err(|source| ExportError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The wiring of a model's checkpoint, as [`StateDict::wiring`] reads it.
fn wiring_of(dict: &StateDict, output_dim: Option<usize>) -> Result<AnyWiring, ExportError> {
    let wiring = match output_dim {
        Some(motor) => dict.wiring_with_output_dim(motor)?,
        None => dict.wiring()?,
    };
    Ok(wiring.into())
}

/// The options every sequence model has.
fn sequence_args<B: Backend, C: RecurrentCell<B>>(model: &Rnn<B, C>) -> Value {
    json!({
        "input_size": model.input_size(),
        "return_sequences": model.return_sequences,
        "batch_first": model.batch_first,
        "mixed_memory": model.has_memory(),
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

pub(crate) fn ltc_config<B: Backend>(
    model: &Rnn<B, LTCCell<B>>,
) -> Result<UpstreamConfig, ExportError> {
    let cell = &model.cell;
    let dict = StateDict::from_model(model);
    let wiring = wiring_of(&dict, Some(cell.motor_size))?;
    let mapping = |w: bool, b: bool| {
        use crate::cells::Mapping;
        names::mapping(match (w, b) {
            (true, true) => Mapping::Affine,
            (true, false) => Mapping::Linear,
            _ => Mapping::Identity,
        })
    };
    let args = merge(
        sequence_args(model),
        json!({
            "input_mapping": mapping(cell.input_w.is_some(), cell.input_b.is_some()),
            "output_mapping": mapping(cell.output_w.is_some(), cell.output_b.is_some()),
            "ode_unfolds": cell.ode_unfolds,
            "epsilon": cell.epsilon,
            "implicit_param_constraints": cell.implicit_param_constraints,
        }),
    );
    Ok(UpstreamConfig::new("LTC", args, Some(&wiring)))
}

fn dense_cfc_args<B: Backend>(cell: &CfCCell<B>) -> Value {
    json!({
        "units": cell.hidden_size,
        "mode": names::mode(cell.mode),
        "activation": names::activation(cell.activation),
        // Upstream's default where there is no backbone (it is unused then).
        "backbone_units": cell
            .backbone
            .first()
            .map_or(CfCCellConfig::DEFAULT_BACKBONE_UNITS, |l| l.weight.dims()[1]),
        "backbone_layers": cell.backbone.len(),
        "backbone_dropout": cell.dropout.prob,
    })
}

pub(crate) fn cfc_config<B: Backend>(
    model: &Rnn<B, AnyCfCCell<B>>,
) -> Result<UpstreamConfig, ExportError> {
    let proj = json!({ "proj_size": model.fc.as_ref().map(|fc| fc.weight.dims()[1]) });
    let args = merge(sequence_args(model), proj);
    match &model.cell {
        AnyCfCCell::Dense(cell) => Ok(UpstreamConfig::new(
            "CfC",
            merge(args, dense_cfc_args(cell)),
            None,
        )),
        AnyCfCCell::Wired(cell) => {
            if cell.motor_positions.is_some() {
                return Err(ExportError::Unsupported {
                    what: "a wired CfC whose last layer holds neurons that are not outputs".into(),
                    reason: "upstream's WiredCfCCell returns its whole last layer (more outputs \
                             than the wiring's output_dim), so the Python model would not \
                             compute this one"
                        .into(),
                });
            }
            let mode = cell.layers.first().map_or(Default::default(), |l| l.mode);
            let args = merge(args, json!({ "mode": names::mode(mode) }));
            let wiring = wiring_of(&StateDict::from_model(model), None)?;
            Ok(UpstreamConfig::new("CfC", args, Some(&wiring)))
        }
    }
}

/// Writes `dict` and `config` for Python, atomically.
pub(crate) fn save(
    dict: &StateDict,
    config: &UpstreamConfig,
    weights: &Path,
    config_path: &Path,
) -> Result<(), ExportError> {
    dict.save_safetensors(weights)?;
    write_atomically(config_path, config.to_json().as_bytes()).map_err(|source| {
        ExportError::Write {
            path: config_path.to_path_buf(),
            source,
        }
    })
}
