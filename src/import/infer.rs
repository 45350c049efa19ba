//! What a `state_dict` says about the model that wrote it: the wiring (from
//! the sparsity masks), the sizes and the options, so that an upstream
//! checkpoint loads without re-stating them (upstream draws its wirings with
//! numpy, which no Rust program can replay).

use std::path::Path;

use burn::prelude::*;

use super::names::{self, cfc, lstm, ltc};
use super::{ImportError, LoadStateDict, StateDict};
use crate::cells::{CfCCellOptions, CfCMode, LTCCellOptions, Mapping};
use crate::rnn::{CfC, CfCConfig, LTC, LTCConfig, Units};
use crate::wirings::{Custom, NeuronType, Polarity, SynapseMatrix};

impl StateDict {
    /// The wiring an upstream checkpoint was trained with, read from its
    /// sparsity masks, as a [`Custom`] wiring built with the input size.
    ///
    /// - LTC (`rnn_cell.sparsity_mask`, `rnn_cell.sensory_sparsity_mask`):
    ///   the exact synapses, polarities from the sign of `erev` /
    ///   `sensory_erev`, the motor count from `rnn_cell.output_w`. When the
    ///   synapses have an NCP's shape (sensory → inter → command → motor,
    ///   ids motor first) the layers and neuron types are an NCP's.
    /// - Wired CfC (`rnn_cell.layer_<l>.sparsity_mask`): one layer per
    ///   mask, ids from the last (motor) layer backwards as upstream
    ///   numbers an NCP; the synapses between consecutive layers, all
    ///   excitatory (a CfC has no polarity). Synapses within a layer do not
    ///   reach a wired CfC (it connects each layer to itself fully) and are
    ///   left out. Every neuron of the last layer is an output, as upstream
    ///   computes.
    ///
    /// The result reproduces the checkpoint's model exactly; for an LTC it
    /// is the original wiring.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use ncps::import::StateDict;
    /// use ncps::rnn::{LTCConfig, Units};
    /// use ncps::wirings::{AutoNCP, Wiring};
    ///
    /// let mut wiring = AutoNCP::new(12, 2)?;
    /// let model = LTCConfig::new(3, Units::from(wiring.clone())).init::<NdArray>(&Default::default())?;
    /// let recovered = StateDict::from_model(&model).wiring()?;
    /// wiring.build(3)?;
    /// assert_eq!(recovered.adjacency_matrix(), wiring.adjacency_matrix());
    /// assert_eq!(recovered.layers(), wiring.layers());
    /// assert_eq!(recovered.neuron_types(), wiring.neuron_types());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wiring(&self) -> Result<Custom, ImportError> {
        if self.shape(&names::cell(ltc::SPARSITY_MASK)).is_some() {
            let output_dim = match self.shape(&names::cell(ltc::OUTPUT_W)) {
                Some(&[motor]) => motor,
                _ => {
                    return Err(ImportError::Undetermined {
                        what: "the motor neuron count".into(),
                        hint: "the LTC has no output mapping (rnn_cell.output_w): \
                               use StateDict::wiring_with_output_dim"
                            .into(),
                    });
                }
            };
            self.ltc_wiring(output_dim)
        } else if self.shape(&wired_mask(0)).is_some() {
            self.wired_cfc_wiring()
        } else {
            Err(ImportError::Undetermined {
                what: "the wiring".into(),
                hint: "no rnn_cell.sparsity_mask (LTC) or rnn_cell.layer_0.sparsity_mask \
                       (wired CfC): a dense CfC has no wiring"
                    .into(),
            })
        }
    }

    /// As [`wiring`](Self::wiring) for an LTC checkpoint, with the motor
    /// neuron count given (needed when the LTC has no output mapping).
    pub fn wiring_with_output_dim(&self, output_dim: usize) -> Result<Custom, ImportError> {
        self.ltc_wiring(output_dim)
    }

    /// A 2-D tensor's values as rows, or `Missing`/`Shape` errors.
    fn matrix(&self, name: &str) -> Result<(usize, usize, Vec<f32>), ImportError> {
        let missing = || ImportError::Missing {
            name: name.into(),
            expected: vec![],
        };
        match (self.shape(name), self.values(name)) {
            (Some(&[rows, cols]), Some(values)) => Ok((rows, cols, values)),
            (Some(shape), _) => Err(ImportError::Shape {
                name: name.into(),
                expected: vec![],
                found: shape.to_vec(),
            }),
            _ => Err(missing()),
        }
    }

    fn ltc_wiring(&self, output_dim: usize) -> Result<Custom, ImportError> {
        let mask_name = names::cell(ltc::SPARSITY_MASK);
        let (units, cols, mask) = self.matrix(&mask_name)?;
        if units != cols {
            return Err(ImportError::Shape {
                name: mask_name,
                expected: vec![units, units],
                found: vec![units, cols],
            });
        }
        let sensory_name = names::cell(ltc::SENSORY_SPARSITY_MASK);
        let (inputs, sensory_cols, sensory_mask) = self.matrix(&sensory_name)?;
        if sensory_cols != units {
            return Err(ImportError::Shape {
                name: sensory_name,
                expected: vec![inputs, units],
                found: vec![inputs, sensory_cols],
            });
        }
        let erev = self.values(&names::cell(ltc::EREV));
        let sensory_erev = self.values(&names::cell(ltc::SENSORY_EREV));
        let adjacency = synapses(units, units, &mask, erev.as_deref())?;
        let sensory = synapses(inputs, units, &sensory_mask, sensory_erev.as_deref())?;
        let wiring = Custom::from_matrices(adjacency, Some(sensory), output_dim)?;
        Ok(match ncp_layers(&wiring, output_dim) {
            Some((layers, types)) => wiring.with_layers(layers, types)?,
            None => wiring,
        })
    }

    fn wired_cfc_wiring(&self) -> Result<Custom, ImportError> {
        // Upstream stores each layer's mask as [layer, inputs + layer]:
        // (layer size, its inputs, name, values) per layer.
        let mut masks: Vec<(usize, usize, String, Vec<f32>)> = Vec::new();
        loop {
            let name = wired_mask(masks.len());
            if self.shape(&name).is_none() {
                break;
            }
            let (size, cols, values) = self.matrix(&name)?;
            let inputs = match masks.last() {
                None => cols.saturating_sub(size),
                Some(previous) => previous.0,
            };
            if inputs == 0 || inputs + size != cols {
                return Err(ImportError::Shape {
                    name,
                    expected: vec![size, inputs.max(1) + size],
                    found: vec![size, cols],
                });
            }
            masks.push((size, inputs, name, values));
        }
        let units: usize = masks.iter().map(|m| m.0).sum();
        let input_dim = masks[0].1;
        // Ids from the last layer backwards: motor 0.., then the layer before...
        let mut first_id = units;
        let layers: Vec<Vec<usize>> = masks
            .iter()
            .map(|&(size, ..)| {
                first_id -= size;
                (first_id..first_id + size).collect()
            })
            .collect();
        let mut adjacency = SynapseMatrix::zeros(units, units);
        let mut sensory = SynapseMatrix::zeros(input_dim, units);
        for (l, (size, inputs, name, values)) in masks.iter().enumerate() {
            let cols = inputs + size;
            for (k, &dest) in layers[l].iter().enumerate() {
                for j in 0..*inputs {
                    let entry = values[k * cols + j];
                    if entry != 0.0 && entry != 1.0 {
                        return Err(not_a_mask(name, entry));
                    }
                    let polarity = (entry == 1.0).then_some(Polarity::Excitatory);
                    match l {
                        0 => sensory.set(j, dest, polarity),
                        _ => adjacency.set(layers[l - 1][j], dest, polarity),
                    }
                }
            }
        }
        let last = masks.len() - 1;
        let types = (0..units)
            .map(|id| {
                let layer = layers.iter().position(|l| l.contains(&id)).unwrap_or(0);
                match layer {
                    l if l == last => NeuronType::Motor,
                    0 => NeuronType::Inter,
                    _ => NeuronType::Command,
                }
            })
            .collect();
        let output_dim = masks[last].0;
        Ok(Custom::from_matrices(adjacency, Some(sensory), output_dim)?
            .with_layers(layers, types)?)
    }
}

fn not_a_mask(name: &str, entry: f32) -> ImportError {
    ImportError::Invalid {
        name: name.into(),
        reason: format!("a sparsity mask holds 0 and 1 only, found {entry}"),
    }
}

/// A synapse matrix from a 0/1 mask and, when given, the signs of `erev`.
fn synapses(
    rows: usize,
    cols: usize,
    mask: &[f32],
    erev: Option<&[f32]>,
) -> Result<SynapseMatrix, ImportError> {
    let mut matrix = SynapseMatrix::zeros(rows, cols);
    for (flat, &entry) in mask.iter().enumerate() {
        if entry != 0.0 && entry != 1.0 {
            return Err(not_a_mask("sparsity_mask", entry));
        }
        if entry == 1.0 {
            let negative = erev.and_then(|e| e.get(flat)).is_some_and(|&e| e < 0.0);
            let polarity = if negative {
                Polarity::Inhibitory
            } else {
                Polarity::Excitatory
            };
            matrix.set(flat / cols, flat % cols, Some(polarity));
        }
    }
    Ok(matrix)
}

/// NCP layers `[inter, command, motor]` and types when the synapses have an
/// NCP's shape: ids motor, command, inter in that order; sensory inputs
/// reach inter neurons only, inter neurons command neurons only, command
/// neurons command and motor neurons only, and motor neurons nothing.
fn ncp_layers(wiring: &Custom, output_dim: usize) -> Option<(Vec<Vec<usize>>, Vec<NeuronType>)> {
    use crate::wirings::Wiring;
    let units = wiring.units();
    let sensory = wiring.sensory_adjacency_matrix()?;
    let has_sensory = |id: usize| (0..sensory.rows()).any(|s| sensory.get(s, id) != 0);
    let first_inter = (output_dim..units).find(|&id| has_sensory(id))?;
    let (motor, command, inter) = (0..output_dim, output_dim..first_inter, first_inter..units);
    if command.is_empty() {
        return None;
    }
    let allowed = |src: usize, dest: usize| {
        (inter.contains(&src) && command.contains(&dest))
            || (command.contains(&src) && (command.contains(&dest) || motor.contains(&dest)))
    };
    let adjacency = wiring.adjacency_matrix();
    let shaped = adjacency
        .synapses()
        .all(|(src, dest, _)| allowed(src, dest))
        && sensory.synapses().all(|(_, dest, _)| inter.contains(&dest))
        && inter.clone().all(has_sensory);
    shaped.then(|| {
        let types = (0..units)
            .map(|id| match id {
                id if motor.contains(&id) => NeuronType::Motor,
                id if command.contains(&id) => NeuronType::Command,
                _ => NeuronType::Inter,
            })
            .collect();
        (
            vec![inter.collect(), command.collect(), motor.collect()],
            types,
        )
    })
}

/// `rnn_cell.layer_<l>.sparsity_mask`: a wired CfC layer's mask.
fn wired_mask(l: usize) -> String {
    names::cell(&format!("{}.{}", names::wired_layer(l), cfc::SPARSITY_MASK))
}

/// The mapping whose weight and bias (upstream's names) a checkpoint holds.
fn mapping(dict: &StateDict, weight: &str, bias: &str) -> Mapping {
    let has = |p: &str| dict.shape(&names::cell(p)).is_some();
    match (has(weight), has(bias)) {
        (true, true) => Mapping::Affine,
        (true, false) => Mapping::Linear,
        _ => Mapping::Identity,
    }
}

/// Whether a checkpoint has a mixed-memory LSTM.
fn has_lstm(dict: &StateDict) -> bool {
    dict.shape(&names::weight(&names::lstm(lstm::INPUT_MAP)))
        .is_some()
}

fn rows_of(dict: &StateDict, name: &str) -> Option<usize> {
    dict.shape(name).and_then(|s| s.first().copied())
}

impl LTCConfig {
    /// The configuration of the LTC that wrote an upstream checkpoint: the
    /// input size and wiring ([`StateDict::wiring`]), `mixed_memory`, and the
    /// input and output mappings. What a `state_dict` cannot hold keeps
    /// upstream's defaults: `ode_unfolds` 6, `epsilon` 1e-8,
    /// `implicit_param_constraints` true, `return_sequences` and
    /// `batch_first` true; change them with the `with_` methods.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use ncps::import::{LoadStateDict, StateDict};
    /// use ncps::rnn::{LTC, LTCConfig};
    ///
    /// let dict = StateDict::read("tests/fixtures/pt/ltc_fully_connected.pt")?;
    /// let config = LTCConfig::from_state_dict(&dict)?;
    /// assert_eq!(config.input_size, 3);
    /// let model: LTC<NdArray> = config.init(&Default::default())?.load_state_dict(&dict)?;
    /// assert_eq!(model.state_size(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_state_dict(dict: &StateDict) -> Result<Self, ImportError> {
        let wiring = dict.wiring()?;
        let input_size = crate::wirings::Wiring::input_dim(&wiring).unwrap_or_default();
        Ok(LTCConfig::new(input_size, Units::from(wiring))
            .with_mixed_memory(has_lstm(dict))
            .with_cell(
                LTCCellOptions::new()
                    .with_input_mapping(mapping(dict, ltc::INPUT_W, ltc::INPUT_B))
                    .with_output_mapping(mapping(dict, ltc::OUTPUT_W, ltc::OUTPUT_B)),
            ))
    }
}

impl CfCConfig {
    /// The configuration of the CfC that wrote an upstream checkpoint: dense
    /// or wired ([`StateDict::wiring`]), the input size, hidden units,
    /// backbone width and depth, `proj_size`, `mixed_memory`, and the mode
    /// (`pure` when the checkpoint has `w_tau`, else `default`: a `no_gate`
    /// CfC has the same tensors: set `cell.mode`). What a
    /// `state_dict` cannot hold keeps upstream's defaults: the activation
    /// `lecun_tanh`, `return_sequences` and `batch_first` true.
    ///
    /// Fails when the backbone has dropout layers (their probability is not
    /// in a `state_dict`: build that config by hand).
    pub fn from_state_dict(dict: &StateDict) -> Result<Self, ImportError> {
        let wired = dict.shape(&wired_mask(0)).is_some();
        let w_tau = if wired {
            format!("{}.{}", names::wired_layer(0), cfc::W_TAU)
        } else {
            cfc::W_TAU.to_string()
        };
        let pure = dict.shape(&names::cell(&w_tau)).is_some();
        let mode = if pure {
            CfCMode::Pure
        } else {
            CfCMode::Default
        };
        let mut cell = CfCCellOptions::new().with_mode(mode);
        let mut config = if wired {
            let wiring = dict.wiring()?;
            let input_size = crate::wirings::Wiring::input_dim(&wiring).unwrap_or_default();
            CfCConfig::new(input_size, Units::from(wiring))
        } else {
            let ff1 = names::weight(&names::cell(cfc::FF1));
            let (hidden, ff1_in) = match dict.shape(&ff1) {
                Some(&[hidden, ff1_in]) => (hidden, ff1_in),
                _ => {
                    return Err(ImportError::Missing {
                        name: ff1,
                        expected: vec![],
                    });
                }
            };
            let backbone = |layer: usize, dropout: bool| {
                names::weight(&names::backbone(names::backbone_index(layer, dropout)))
            };
            // The layers found at upstream's nn.Sequential indices without
            // and with Dropout layers in between.
            let layers = |dropout: bool| {
                (0..)
                    .take_while(|&layer| dict.shape(&backbone(layer, dropout)).is_some())
                    .count()
            };
            let backbone_layers = layers(false);
            if layers(true) > backbone_layers {
                return Err(ImportError::Undetermined {
                    what: "backbone_dropout".into(),
                    hint: "the backbone has Dropout layers, whose probability a state_dict \
                           does not store: build the CfCConfig by hand"
                        .into(),
                });
            }
            let input_size = match dict.shape(&backbone(0, false)) {
                Some(&[_, cat]) => cat.saturating_sub(hidden),
                _ => ff1_in.saturating_sub(hidden),
            };
            cell = cell.with_backbone_layers(backbone_layers);
            if let Some(units) = rows_of(dict, &backbone(0, false)) {
                cell = cell.with_backbone_units(units);
            }
            CfCConfig::new(input_size, Units::from(hidden))
        };
        config = config
            .with_cell(cell)
            .with_proj_size(rows_of(dict, &names::weight(names::PROJECTION)))
            .with_mixed_memory(has_lstm(dict));
        Ok(config)
    }
}

/// Reads an upstream LTC checkpoint (`.pt` or `.safetensors`) and builds the
/// model it describes with its weights: [`LTCConfig::from_state_dict`], then
/// `init` and [`LoadStateDict::load_state_dict`].
///
/// ```
/// use burn::backend::NdArray;
/// use ncps::import::load_ltc;
///
/// let model = load_ltc::<NdArray>("tests/fixtures/pt/ltc_fully_connected.pt", &Default::default())?;
/// assert_eq!((model.input_size(), model.output_size()), (3, 6));
/// # Ok::<(), ncps::import::ImportError>(())
/// ```
pub fn load_ltc<B: Backend>(
    path: impl AsRef<Path>,
    device: &B::Device,
) -> Result<LTC<B>, ImportError> {
    let dict = StateDict::read(path)?;
    LTCConfig::from_state_dict(&dict)?
        .init(device)?
        .load_state_dict(&dict)
}

/// Reads an upstream CfC checkpoint (`.pt` or `.safetensors`) and builds the
/// model it describes with its weights: [`CfCConfig::from_state_dict`], then
/// `init` and [`LoadStateDict::load_state_dict`].
///
/// ```
/// use burn::backend::NdArray;
/// use ncps::import::load_cfc;
///
/// let model = load_cfc::<NdArray>("tests/fixtures/pt/cfc_mixed_proj.pt", &Default::default())?;
/// assert_eq!((model.input_size(), model.output_size(), model.has_memory()), (3, 2, true));
/// # Ok::<(), ncps::import::ImportError>(())
/// ```
pub fn load_cfc<B: Backend>(
    path: impl AsRef<Path>,
    device: &B::Device,
) -> Result<CfC<B>, ImportError> {
    let dict = StateDict::read(path)?;
    CfCConfig::from_state_dict(&dict)?
        .init(device)?
        .load_state_dict(&dict)
}
