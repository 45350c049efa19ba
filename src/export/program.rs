//! A model lowered for code generation: its structure and its weights as
//! plain arrays, read under upstream's names (the name table
//! `import::names`) from [`StateDict::from_model`], in the layout the
//! generated runtime reads. Both emitters (Rust and C) print this.

use burn::prelude::*;

use super::ExportError;
use crate::cells::{
    Activation, CfCCell, CfCMode, HeadActivation, LTCCell, LstmOutput, RecurrentCell, WiredCfCCell,
};
use crate::import::StateDict;
use crate::import::names::{self, cfc, linear, lstm, ltc};
use crate::kernels::ltc::SynapseRows;
use crate::kernels::softplus;
use crate::rnn::{AnyCfCCell, Rnn};

/// A named array of the generated file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Array {
    /// Its name in the generated code (`SCREAMING_CASE`).
    pub name: String,
    /// One line saying what it holds.
    pub doc: String,
    /// The values.
    pub values: Values,
}

/// What an array holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Values {
    /// Weights.
    F32(Vec<f32>),
    /// Synapse offsets, sources or output positions (of the program's
    /// index type).
    Index(Vec<usize>),
}

impl Values {
    pub(crate) fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::Index(v) => v.len(),
        }
    }
}

/// `nn.Linear`: the names of its arrays (the bias may be absent).
#[derive(Clone, Debug)]
pub(crate) struct Linear {
    pub weight: String,
    pub bias: Option<String>,
    pub inputs: usize,
    pub outputs: usize,
}

/// The synapses of an LTC, grouped by destination: array names.
#[derive(Clone, Debug)]
pub(crate) struct SynapseArrays {
    pub offsets: String,
    pub sources: String,
    pub w: String,
    pub mu: String,
    pub sigma: String,
    pub erev: String,
    pub count: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Ltc {
    pub neurons: usize,
    pub motor: usize,
    pub input_w: Option<String>,
    pub input_b: Option<String>,
    pub output_w: Option<String>,
    pub output_b: Option<String>,
    pub sensory: SynapseArrays,
    pub recurrent: SynapseArrays,
    pub cm: String,
    pub gleak: String,
    pub vleak: String,
    pub unfolds: usize,
    pub epsilon: f32,
}

/// The runtime's activations (GELU has no export).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    LecunTanh,
    Silu,
    Relu,
    Tanh,
}

#[derive(Clone, Debug)]
pub(crate) enum Head {
    Gated {
        ff2: Linear,
        time_a: Linear,
        time_b: Linear,
        gated: bool,
        /// `ff1`, `ff2` squashed by LeCun's tanh (else `tanh`).
        lecun: bool,
    },
    Pure {
        w_tau: String,
        a: String,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct CfcLayer {
    /// Prefix of its arrays and name of its descriptor (`CELL`, `LAYER_0`).
    pub name: String,
    pub inputs: usize,
    pub hidden: usize,
    pub backbone: Vec<Linear>,
    pub backbone_units: usize,
    pub activation: Act,
    pub ff1: Linear,
    pub head: Head,
}

#[derive(Clone, Debug)]
pub(crate) enum Cell {
    Ltc(Box<Ltc>),
    Cfc {
        layers: Vec<CfcLayer>,
        /// Array of output positions in the last layer, when not all of it.
        outputs: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Lstm {
    pub input_map: Linear,
    pub recurrent_map: Linear,
    pub forget_bias: f32,
    /// The LSTM's output is the cell's input (`LstmOutput::Input`).
    pub output_is_input: bool,
}

/// Everything a generated file holds.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    /// Lines of the file's doc comment: model, wiring, options.
    pub description: Vec<String>,
    /// What the state holds, in words.
    pub state_layout: String,
    pub inputs: usize,
    pub outputs: usize,
    /// The cell's state size.
    pub units: usize,
    /// The caller's state (`units`, twice with mixed memory).
    pub state: usize,
    pub cell_outputs: usize,
    /// Floats of scratch one step uses.
    pub scratch: usize,
    /// Bytes of the synapse index type (1, 2 or 4).
    pub index_bytes: usize,
    pub arrays: Vec<Array>,
    pub lstm: Option<Lstm>,
    pub cell: Cell,
    pub projection: Option<Linear>,
}

/// Collects arrays while a model is lowered, reading the weights of a
/// [`StateDict`] under upstream's names.
struct Builder {
    dict: StateDict,
    arrays: Vec<Array>,
}

impl Builder {
    /// The values of `name`; an error when the model lacks it (an exporter
    /// bug) or a value is not finite.
    fn values(&self, name: &str) -> Result<Vec<f32>, ExportError> {
        let values = self.dict.values(name).ok_or_else(|| {
            ExportError::unsupported(
                format!("the model without tensor {name}"),
                "the exporter reads every weight under upstream's name",
            )
        })?;
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(ExportError::NonFinite {
                tensor: name.into(),
                index,
                value,
            });
        }
        Ok(values)
    }

    fn push(&mut self, name: String, doc: String, values: Values) -> String {
        self.arrays.push(Array {
            name: name.clone(),
            doc,
            values,
        });
        name
    }

    /// Adds the tensor `tensor` as array `name`.
    fn tensor(&mut self, name: &str, tensor: &str, doc: &str) -> Result<String, ExportError> {
        let values = self.values(tensor)?;
        Ok(self.push(
            name.into(),
            format!("{doc} (`{tensor}`)"),
            Values::F32(values),
        ))
    }

    /// Adds an `nn.Linear` (`module.weight`, `module.bias`), its weight
    /// multiplied by `mask` (upstream's `(out, in)` layout) when given.
    fn linear(
        &mut self,
        name: &str,
        module: &str,
        doc: &str,
        mask: Option<&[f32]>,
    ) -> Result<Linear, ExportError> {
        let weight_name = format!("{module}.{}", linear::WEIGHT);
        let bias_name = format!("{module}.{}", linear::BIAS);
        let Some(&[outputs, inputs]) = self.dict.shape(&weight_name) else {
            return Err(ExportError::unsupported(
                format!("the model without tensor {weight_name}"),
                "the exporter reads every weight under upstream's name",
            ));
        };
        let mut weight = self.values(&weight_name)?;
        let mut weight_doc = format!("{doc}: weight `[{outputs}][{inputs}]` (`{weight_name}`)");
        if let Some(mask) = mask {
            for (w, m) in weight.iter_mut().zip(mask) {
                *w *= m;
            }
            weight_doc.push_str(", multiplied by its sparsity mask");
        }
        let weight = self.push(format!("{name}_WEIGHT"), weight_doc, Values::F32(weight));
        let bias = match self.dict.shape(&bias_name) {
            Some(_) => {
                let values = self.values(&bias_name)?;
                Some(self.push(
                    format!("{name}_BIAS"),
                    format!("{doc}: bias (`{bias_name}`)"),
                    Values::F32(values),
                ))
            }
            None => None,
        };
        Ok(Linear {
            weight,
            bias,
            inputs,
            outputs,
        })
    }
}

/// What a sequence model adds around its cell.
fn frame<B: Backend, C>(
    model: &Rnn<B, C>,
    builder: &mut Builder,
) -> Result<(Option<Lstm>, Option<Linear>), ExportError> {
    let lstm = match &model.lstm {
        Some(lstm) => Some(Lstm {
            input_map: builder.linear(
                "LSTM_INPUT_MAP",
                &names::lstm(lstm::INPUT_MAP),
                "Mixed-memory LSTM, input map",
                None,
            )?,
            recurrent_map: builder.linear(
                "LSTM_RECURRENT_MAP",
                &names::lstm(lstm::RECURRENT_MAP),
                "Mixed-memory LSTM, recurrent map",
                None,
            )?,
            forget_bias: finite("forget_bias", lstm.forget_bias as f32)?,
            output_is_input: model.lstm_output == LstmOutput::Input,
        }),
        None => None,
    };
    let projection = match model.fc {
        Some(_) => Some(builder.linear("PROJECTION", names::PROJECTION, "Projection", None)?),
        None => None,
    };
    Ok((lstm, projection))
}

/// A setting of the model as a finite `f32`.
fn finite(name: &str, value: f32) -> Result<f32, ExportError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ExportError::NonFinite {
            tensor: name.into(),
            index: 0,
            value,
        })
    }
}

/// Scratch of the sequence frame: the cell's outputs, the LSTM's output
/// when it is the cell's input, then the larger of the LSTM's and the
/// cell's.
fn scratch(cell_outputs: usize, lstm: Option<&Lstm>, units: usize, cell: usize) -> usize {
    let (apart, lstm) = match lstm {
        Some(lstm) if lstm.output_is_input => (units, 8 * units),
        Some(_) => (0, 8 * units),
        None => (0, 0),
    };
    cell_outputs + apart + lstm.max(cell)
}

/// The smallest index type holding `max`: bytes.
fn index_bytes(max: usize) -> usize {
    if max <= u8::MAX as usize {
        1
    } else if max <= u16::MAX as usize {
        2
    } else {
        4
    }
}

fn state_layout(units: usize, lstm: bool, cell: &str) -> String {
    if lstm {
        format!("{cell} ({units} floats), then the mixed-memory LSTM's memory cell ({units})")
    } else {
        format!("{cell} ({units} floats)")
    }
}

impl Program {
    /// Whether the mixed-memory LSTM's output is the cell's input (the
    /// runtime `Model`'s `lstm_input`).
    pub(crate) fn lstm_input(&self) -> bool {
        self.lstm.as_ref().is_some_and(|l| l.output_is_input)
    }

    fn assemble(
        builder: Builder,
        description: Vec<String>,
        cell_layout: &str,
        sizes: [usize; 4],
        cell: Cell,
        frame: (Option<Lstm>, Option<Linear>),
    ) -> Self {
        let [inputs, units, cell_outputs, cell_scratch] = sizes;
        let (lstm, projection) = frame;
        let outputs = projection.as_ref().map_or(cell_outputs, |p| p.outputs);
        let max_index = builder
            .arrays
            .iter()
            .filter_map(|a| match &a.values {
                Values::Index(v) => v.iter().copied().max(),
                Values::F32(_) => None,
            })
            .max()
            .unwrap_or(0);
        Program {
            description,
            state_layout: state_layout(units, lstm.is_some(), cell_layout),
            inputs,
            outputs,
            units,
            state: if lstm.is_some() { 2 * units } else { units },
            cell_outputs,
            scratch: scratch(cell_outputs, lstm.as_ref(), units, cell_scratch),
            index_bytes: index_bytes(max_index),
            arrays: builder.arrays,
            lstm,
            cell,
            projection,
        }
    }

    /// Lowers an LTC.
    pub(crate) fn ltc<B: Backend>(model: &Rnn<B, LTCCell<B>>) -> Result<Self, ExportError> {
        let cell = &model.cell;
        let mut b = Builder {
            dict: StateDict::from_model(model),
            arrays: Vec::new(),
        };
        let (neurons, inputs, motor) = (cell.state_size(), cell.input_size(), cell.motor_size);
        let implicit = cell.implicit_param_constraints;
        let positive = |values: Vec<f32>| -> Vec<f32> {
            if implicit {
                values.into_iter().map(softplus).collect()
            } else {
                values
            }
        };
        let constrained = if implicit { ", softplus applied" } else { "" };
        let maps = [
            ("INPUT_W", ltc::INPUT_W, "Input map weight"),
            ("INPUT_B", ltc::INPUT_B, "Input map bias"),
            ("OUTPUT_W", ltc::OUTPUT_W, "Output map weight"),
            ("OUTPUT_B", ltc::OUTPUT_B, "Output map bias"),
        ];
        let mut mapped = Vec::new();
        for (name, key, doc) in maps {
            let tensor = names::cell(key);
            mapped.push(match b.dict.shape(&tensor) {
                Some(_) => Some(b.tensor(name, &tensor, doc)?),
                None => None,
            });
        }
        let [input_w, input_b, output_w, output_b]: [Option<String>; 4] =
            mapped.try_into().expect("four maps");
        let mut synapses = |prefix: &str,
                            mask: &str,
                            params: [&str; 4],
                            rows: usize,
                            what: &str|
         -> Result<SynapseArrays, ExportError> {
            let mask = b.values(&names::cell(mask))?;
            let (plan, flat) = SynapseRows::from_mask(&mask, rows, neurons);
            let [w, mu, sigma, erev] = params;
            let gather = |b: &Builder, key: &str| -> Result<Vec<f32>, ExportError> {
                let values = b.values(&names::cell(key))?;
                Ok(flat.iter().map(|&f| values[f]).collect())
            };
            let values = [
                positive(gather(&b, w)?),
                gather(&b, mu)?,
                gather(&b, sigma)?,
                gather(&b, erev)?,
            ];
            let count = plan.len();
            let offsets = b.push(
                format!("{prefix}OFFSETS"),
                format!(
                    "The {what} synapses into neuron `d` are `{prefix}OFFSETS[d]..{prefix}OFFSETS[d + 1]`"
                ),
                Values::Index(plan.offsets),
            );
            let source = if what == "sensory" { "input" } else { "neuron" };
            let sources = b.push(
                format!("{prefix}SOURCES"),
                format!("The presynaptic {source} of each {what} synapse"),
                Values::Index(plan.sources),
            );
            let [w_v, mu_v, sigma_v, erev_v] = values;
            let mut named = |suffix: &str, key: &str, doc: &str, note: &str, v: Vec<f32>| {
                b.push(
                    format!("{prefix}{suffix}"),
                    format!(
                        "{doc} of each {what} synapse{note} (`{}`)",
                        names::cell(key)
                    ),
                    Values::F32(v),
                )
            };
            Ok(SynapseArrays {
                w: named("W", w, "Conductance", constrained, w_v),
                mu: named("MU", mu, "Sigmoid centre", "", mu_v),
                sigma: named("SIGMA", sigma, "Sigmoid slope", "", sigma_v),
                erev: named("EREV", erev, "Reversal potential", "", erev_v),
                offsets,
                sources,
                count,
            })
        };
        let sensory = synapses(
            "SENSORY_",
            ltc::SENSORY_SPARSITY_MASK,
            [
                ltc::SENSORY_W,
                ltc::SENSORY_MU,
                ltc::SENSORY_SIGMA,
                ltc::SENSORY_EREV,
            ],
            inputs,
            "sensory",
        )?;
        let recurrent = synapses(
            "SYNAPSE_",
            ltc::SPARSITY_MASK,
            [ltc::W, ltc::MU, ltc::SIGMA, ltc::EREV],
            neurons,
            "recurrent",
        )?;
        let mut neuron = |name: &str, key: &str, doc: &str, constrain: bool| {
            let tensor = names::cell(key);
            let values = b.values(&tensor)?;
            let (values, note) = if constrain {
                (positive(values), constrained)
            } else {
                (values, "")
            };
            Ok::<_, ExportError>(b.push(
                name.into(),
                format!("{doc} of each neuron{note} (`{tensor}`)"),
                Values::F32(values),
            ))
        };
        let cm = neuron("CM", ltc::CM, "Membrane capacitance", true)?;
        let gleak = neuron("GLEAK", ltc::GLEAK, "Leak conductance", true)?;
        let vleak = neuron("VLEAK", ltc::VLEAK, "Leak potential", false)?;
        let frame = frame(model, &mut b)?;
        let epsilon = finite("epsilon", cell.epsilon as f32)?;
        let ltc = Ltc {
            neurons,
            motor,
            input_w,
            input_b,
            output_w,
            output_b,
            sensory: sensory.clone(),
            recurrent: recurrent.clone(),
            cm,
            gleak,
            vleak,
            unfolds: cell.ode_unfolds,
            epsilon,
        };
        let summary = &cell.summary;
        let description = vec![
            format!(
                "Model: LTC, {} inputs, {neurons} neurons, {motor} motor (outputs of the cell).",
                model.input_size()
            ),
            format!(
                "Wiring: {}, {} synapses, {} sensory synapses (stored sparse, grouped by destination).",
                summary.kind, recurrent.count, sensory.count
            ),
            format!(
                "Solver: {} unfolds, epsilon {:e}; implicit parameter constraints {} (softplus applied at export).",
                cell.ode_unfolds,
                cell.epsilon,
                if implicit { "on" } else { "off" }
            ),
        ];
        let layout = "the membrane potential of every neuron, motor neurons first";
        let scratch = inputs + 3 * neurons + sensory.count.max(recurrent.count);
        Ok(Self::assemble(
            b,
            description,
            layout,
            [model.input_size(), neurons, motor, scratch],
            Cell::Ltc(Box::new(ltc)),
            frame,
        ))
    }

    /// Lowers a CfC (dense or wired).
    pub(crate) fn cfc<B: Backend>(model: &Rnn<B, AnyCfCCell<B>>) -> Result<Self, ExportError> {
        let mut b = Builder {
            dict: StateDict::from_model(model),
            arrays: Vec::new(),
        };
        // The model's inputs (the LSTM's, when the cell reads its output).
        let inputs = model.input_size();
        let units = model.cell.state_size();
        let cell_outputs = model.cell.output_size();
        let (layers, outputs, description, layout) = match &model.cell {
            AnyCfCCell::Dense(cell) => {
                let layer = cfc_layer(&mut b, cell, "CELL", "", None)?;
                let description = vec![
                    format!(
                        "Model: CfC, {inputs} inputs, {units} hidden units, mode {}.",
                        names::mode(cell.mode)
                    ),
                    format!(
                        "Backbone: {} layers of {} units, activation {}.",
                        cell.backbone.len(),
                        layer.backbone_units,
                        names::activation(cell.activation)
                    ),
                ];
                (vec![layer], None, description, "the hidden state")
            }
            AnyCfCCell::Wired(wired) => {
                let (layers, outputs) = wired_layers(&mut b, wired)?;
                let mode = wired.layers.first().map_or(CfCMode::Default, |l| l.mode);
                let description = vec![
                    format!(
                        "Model: wired CfC, {inputs} inputs, {units} neurons in {} layers of {:?}, {cell_outputs} outputs, mode {}.",
                        wired.layer_sizes.len(),
                        wired.layer_sizes,
                        names::mode(mode)
                    ),
                    format!(
                        "Wiring: {}, {} synapses, {} sensory synapses (each layer's heads masked by them).",
                        wired.summary.kind, wired.summary.synapses, wired.summary.sensory_synapses
                    ),
                ];
                (
                    layers,
                    outputs,
                    description,
                    "the layers' states in layer order",
                )
            }
        };
        let cell_scratch = layers.iter().map(CfcLayer::scratch).max().unwrap_or(0);
        let frame = frame(model, &mut b)?;
        Ok(Self::assemble(
            b,
            description,
            layout,
            [inputs, units, cell_outputs, cell_scratch],
            Cell::Cfc { layers, outputs },
            frame,
        ))
    }
}

impl CfcLayer {
    fn scratch(&self) -> usize {
        self.inputs + self.hidden + 2 * self.backbone_units + 4 * self.hidden
    }
}

fn wired_layers<B: Backend>(
    b: &mut Builder,
    wired: &WiredCfCCell<B>,
) -> Result<(Vec<CfcLayer>, Option<String>), ExportError> {
    let mut layers = Vec::with_capacity(wired.layers.len());
    for (l, cell) in wired.layers.iter().enumerate() {
        let module = format!("{}.", names::wired_layer(l));
        let mask = b.values(&names::cell(&format!("{module}{}", cfc::SPARSITY_MASK)))?;
        layers.push(cfc_layer(
            b,
            cell,
            &format!("LAYER_{l}"),
            &module,
            Some(&mask),
        )?);
    }
    let outputs = match &wired.motor_positions {
        Some(positions) => {
            let positions: Vec<usize> = positions
                .to_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .expect("integer positions")
                .into_iter()
                .map(|p| p as usize)
                .collect();
            Some(b.push(
                "OUTPUT_POSITIONS".into(),
                "Positions of the motor neurons (the outputs) in the last layer".into(),
                Values::Index(positions),
            ))
        }
        None => None,
    };
    Ok((layers, outputs))
}

/// One CfC cell: its arrays under `name`, its tensors under
/// `rnn_cell.<module>`.
fn cfc_layer<B: Backend>(
    b: &mut Builder,
    cell: &CfCCell<B>,
    name: &str,
    module: &str,
    mask: Option<&[f32]>,
) -> Result<CfcLayer, ExportError> {
    let activation = match cell.activation {
        Activation::LecunTanh => Act::LecunTanh,
        Activation::Silu => Act::Silu,
        Activation::Relu => Act::Relu,
        Activation::Tanh => Act::Tanh,
        Activation::Gelu if cell.backbone.is_empty() => Act::LecunTanh,
        Activation::Gelu => {
            return Err(ExportError::unsupported(
                "the gelu backbone activation",
                "it needs erf, which the generated code (core Rust, C99 without \
                 the C library) does not have",
            ));
        }
    };
    let dropout = cell.dropout.prob > 0.0;
    let tensor = |key: &str| names::cell(&format!("{module}{key}"));
    let mut backbone = Vec::with_capacity(cell.backbone.len());
    for i in 0..cell.backbone.len() {
        let index = names::backbone_index(i, dropout);
        backbone.push(b.linear(
            &format!("{name}_BACKBONE_{i}"),
            &tensor(&format!("{}.{index}", cfc::BACKBONE)),
            &format!("Backbone layer {i}"),
            None,
        )?);
    }
    let backbone_units = backbone.first().map_or(0, |l| l.outputs);
    let ff1 = b.linear(&format!("{name}_FF1"), &tensor(cfc::FF1), "Head ff1", mask)?;
    let head = match cell.mode {
        CfCMode::Pure => Head::Pure {
            w_tau: b.tensor(
                &format!("{name}_W_TAU"),
                &tensor(cfc::W_TAU),
                "Pure mode's time constants",
            )?,
            a: b.tensor(
                &format!("{name}_A"),
                &tensor(cfc::A),
                "Pure mode's amplitudes",
            )?,
        },
        mode => Head::Gated {
            ff2: b.linear(&format!("{name}_FF2"), &tensor(cfc::FF2), "Head ff2", mask)?,
            time_a: b.linear(
                &format!("{name}_TIME_A"),
                &tensor(cfc::TIME_A),
                "Time-gate slope head",
                None,
            )?,
            time_b: b.linear(
                &format!("{name}_TIME_B"),
                &tensor(cfc::TIME_B),
                "Time-gate offset head",
                None,
            )?,
            gated: mode == CfCMode::Default,
            lecun: cell.head_activation == HeadActivation::LecunTanh,
        },
    };
    Ok(CfcLayer {
        name: name.into(),
        inputs: cell.input_size,
        hidden: cell.hidden_size,
        backbone,
        backbone_units,
        activation,
        ff1,
        head,
    })
}
