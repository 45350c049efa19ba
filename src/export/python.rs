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
use crate::cells::{
    Activation, CfCCell, CfCCellOptions, CfCMode, HeadActivation, LSTMCellConfig, LTCCell,
    LTCCellOptions, LstmOutput, Mapping, RecurrentCell,
};
use crate::fs::write_atomically;
use crate::import::{StateDict, names};
use crate::rnn::{AnyCfCCell, CfCConfig, LTCConfig, Rnn, Units};
use crate::wirings::{AnyWiring, NeuronType, Wiring};

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
    /// The type of every neuron (`"motor"`, `"command"`, `"inter"`: what
    /// upstream's `get_type_of_neuron` returns).
    pub neuron_types: Option<Vec<NeuronType>>,
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
            neuron_types: wiring.map(|w| (0..w.units()).map(|id| w.neuron_type(id)).collect()),
            exported_by: format!("ncps {} (Rust)", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl UpstreamConfig {
    /// The wiring: the exact synapses of `wiring`, with `layers` and
    /// `neuron_types` when given; `None` for a dense CfC.
    pub fn wiring(&self) -> Result<Option<AnyWiring>, ExportError> {
        let Some(config) = &self.wiring else {
            return Ok(None);
        };
        let invalid = |e: &dyn std::fmt::Display| ExportError::Config {
            argument: "wiring".into(),
            reason: e.to_string(),
        };
        let wiring =
            AnyWiring::from_upstream_config(&config.to_string()).map_err(|e| invalid(&e))?;
        let AnyWiring::Custom(custom) = wiring else {
            return Err(invalid(&"not a base Wiring config (units and matrices)"));
        };
        Ok(Some(match (&self.layers, &self.neuron_types) {
            (Some(layers), Some(types)) => custom
                .with_layers(layers.clone(), types.clone())
                .map_err(|e| invalid(&e))?
                .into(),
            _ => custom.into(),
        }))
    }

    /// An argument, `None` when absent (or `null`).
    fn arg<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ExportError> {
        match self.args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| ExportError::Config {
                    argument: name.into(),
                    reason: e.to_string(),
                }),
        }
    }

    /// An argument spelled as upstream spells one of `choices`.
    fn choice<T: Copy>(
        &self,
        name: &str,
        choices: &[T],
        spell: impl Fn(T) -> Option<&'static str>,
    ) -> Result<Option<T>, ExportError> {
        let Some(value) = self.args.get(name) else {
            return Ok(None);
        };
        let found = choices.iter().copied().find(|&c| match spell(c) {
            Some(s) => value.as_str() == Some(s),
            None => value.is_null(),
        });
        match found {
            Some(choice) => Ok(Some(choice)),
            None => Err(ExportError::Config {
                argument: name.into(),
                reason: format!(
                    "{value} is none of {:?}",
                    choices.iter().map(|&c| spell(c)).collect::<Vec<_>>()
                ),
            }),
        }
    }

    fn expect_model(&self, model: &str) -> Result<usize, ExportError> {
        if self.model != model {
            return Err(ExportError::Config {
                argument: "model".into(),
                reason: format!("{} where {model} was expected", self.model),
            });
        }
        self.arg("input_size")?.ok_or_else(|| ExportError::Config {
            argument: "input_size".into(),
            reason: "missing".into(),
        })
    }

    /// The [`LTCConfig`] these arguments describe; what they do not name
    /// keeps upstream's defaults (as [`LTCConfig::new`]'s).
    pub fn ltc_config(&self) -> Result<LTCConfig, ExportError> {
        let input_size = self.expect_model("LTC")?;
        let units = match self.wiring()? {
            Some(wiring) => Units::from(wiring),
            None => Units::from(self.arg::<usize>("units")?.unwrap_or_default()),
        };
        let mappings = [Mapping::Affine, Mapping::Linear, Mapping::Identity];
        let mut config = LTCConfig::new(input_size, units);
        let mut cell = LTCCellOptions::new();
        if let Some(v) = self.arg("return_sequences")? {
            config = config.with_return_sequences(v);
        }
        if let Some(v) = self.arg("batch_first")? {
            config = config.with_batch_first(v);
        }
        if let Some(v) = self.arg("mixed_memory")? {
            config = config.with_mixed_memory(v);
        }
        if let Some(v) = self.choice("input_mapping", &mappings, names::mapping)? {
            cell = cell.with_input_mapping(v);
        }
        if let Some(v) = self.choice("output_mapping", &mappings, names::mapping)? {
            cell = cell.with_output_mapping(v);
        }
        if let Some(v) = self.arg("ode_unfolds")? {
            cell = cell.with_ode_unfolds(v);
        }
        if let Some(v) = self.arg("epsilon")? {
            cell = cell.with_epsilon(v);
        }
        if let Some(v) = self.arg("implicit_param_constraints")? {
            config = config.with_implicit_param_constraints(v);
        }
        Ok(config.with_cell(cell))
    }

    /// The [`CfCConfig`] these arguments describe; what they do not name
    /// keeps upstream's defaults (as [`CfCConfig::new`]'s).
    pub fn cfc_config(&self) -> Result<CfCConfig, ExportError> {
        let input_size = self.expect_model("CfC")?;
        let wiring = self.wiring()?;
        let wired = wiring.is_some();
        let units = match wiring {
            Some(wiring) => Units::from(wiring),
            None => Units::from(self.arg::<usize>("units")?.unwrap_or_default()),
        };
        let modes = [CfCMode::Default, CfCMode::Pure, CfCMode::NoGate];
        let activations = [
            Activation::LecunTanh,
            Activation::Silu,
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
        ];
        let mut config = CfCConfig::new(input_size, units).with_proj_size(self.arg("proj_size")?);
        if let Some(v) = self.arg("return_sequences")? {
            config = config.with_return_sequences(v);
        }
        if let Some(v) = self.arg("batch_first")? {
            config = config.with_batch_first(v);
        }
        if let Some(v) = self.arg("mixed_memory")? {
            config = config.with_mixed_memory(v);
        }
        let mut cell = CfCCellOptions::new();
        if let Some(v) = self.choice("mode", &modes, |m| Some(names::mode(m)))? {
            cell = cell.with_mode(v);
        }
        // Upstream ignores the backbone's arguments (and keeps them in its
        // config) when the CfC is wired.
        if !wired {
            if let Some(v) =
                self.choice("activation", &activations, |a| Some(names::activation(a)))?
            {
                cell = cell.with_activation(v);
            }
            if let Some(v) = self.arg("backbone_units")? {
                cell = cell.with_backbone_units(v);
            }
            if let Some(v) = self.arg("backbone_layers")? {
                cell = cell.with_backbone_layers(v);
            }
            if let Some(v) = self.arg("backbone_dropout")? {
                cell = cell.with_backbone_dropout(v);
            }
        }
        Ok(config.with_cell(cell))
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

/// Refuses mixed memory upstream's LSTM cannot run: its output as the
/// cell's input ([`LstmOutput::Input`]), or a forget-gate bias other than
/// its fixed 1.
fn check_upstream_memory<B: Backend, C>(model: &Rnn<B, C>) -> Result<(), ExportError> {
    let Some(lstm) = &model.lstm else {
        return Ok(());
    };
    if model.lstm_output == LstmOutput::Input {
        return Err(ExportError::unsupported(
            "a mixed-memory model whose LSTM output is the cell's input (LstmOutput::Input)",
            "Python ncps runs upstream's arrangement only (the LSTM output as the cell's state)",
        ));
    }
    if lstm.forget_bias != LSTMCellConfig::DEFAULT_FORGET_BIAS {
        return Err(ExportError::unsupported(
            format!("a mixed-memory LSTM with forget_bias {}", lstm.forget_bias),
            "Python ncps' LSTMCell fixes the forget-gate bias at 1.0",
        ));
    }
    Ok(())
}

/// The options every sequence model has.
fn sequence_args<B: Backend, C: RecurrentCell<B>>(model: &Rnn<B, C>) -> Result<Value, ExportError> {
    check_upstream_memory(model)?;
    Ok(json!({
        "input_size": model.input_size(),
        "return_sequences": model.return_sequences,
        "batch_first": model.batch_first,
        "mixed_memory": model.has_memory(),
    }))
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
        sequence_args(model)?,
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

fn dense_cfc_args<B: Backend>(cell: &CfCCell<B>) -> Result<Value, ExportError> {
    if cell.head_activation != HeadActivation::Tanh {
        return Err(ExportError::unsupported(
            format!("a CfC with head_activation {:?}", cell.head_activation),
            "Python ncps' CfCCell squashes its heads with tanh",
        ));
    }
    Ok(json!({
        "units": cell.hidden_size,
        "mode": names::mode(cell.mode),
        "activation": names::activation(cell.activation),
        // Upstream's default where there is no backbone (it is unused then).
        "backbone_units": cell
            .backbone
            .first()
            .map_or(CfCCellOptions::DEFAULT_BACKBONE_UNITS, |l| l.weight.dims()[1]),
        "backbone_layers": cell.backbone.len(),
        "backbone_dropout": cell.dropout.prob,
    }))
}

pub(crate) fn cfc_config<B: Backend>(
    model: &Rnn<B, AnyCfCCell<B>>,
) -> Result<UpstreamConfig, ExportError> {
    let proj = json!({ "proj_size": model.fc.as_ref().map(|fc| fc.weight.dims()[1]) });
    let args = merge(sequence_args(model)?, proj);
    match &model.cell {
        AnyCfCCell::Dense(cell) => Ok(UpstreamConfig::new(
            "CfC",
            merge(args, dense_cfc_args(cell)?),
            None,
        )),
        AnyCfCCell::Wired(cell) => {
            if cell.motor_positions.is_some() {
                return Err(ExportError::unsupported(
                    "a wired CfC whose last layer holds neurons that are not outputs",
                    "upstream's WiredCfCCell returns its whole last layer (more outputs \
                     than the wiring's output_dim), so the Python model would not \
                     compute this one",
                ));
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
