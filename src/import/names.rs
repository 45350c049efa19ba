//! Upstream's names: where each tensor of a Python ncps 1.0.1 `state_dict`
//! lives in this crate's models, and how upstream spells the options a
//! `state_dict` does not hold. The one place that knows them: loading
//! ([`LoadStateDict`](super::LoadStateDict)), reading a checkpoint's model
//! (`infer.rs`) and writing one ([`crate::export`]) all go through it.
//!
//! | module | upstream name | tensors |
//! |---|---|---|
//! | the cell | `rnn_cell` | LTC: `gleak`, `vleak`, `cm`, `sigma`, `mu`, `w`, `erev`, `sensory_*`, `input_w`/`input_b`, `output_w`/`output_b`, `sparsity_mask`, `sensory_sparsity_mask`; CfC: `backbone.<i>.*`, `ff1`, `ff2`, `time_a`, `time_b` (each `weight`, `bias`), `w_tau`, `A`, `sparsity_mask`; wired CfC: `layer_<l>.*` |
//! | mixed memory | `lstm` | `input_map.weight`, `input_map.bias`, `recurrent_map.weight` |
//! | projection | `fc` | `weight`, `bias` |

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;

use crate::cells::{Activation, CfCCell, CfCMode, LSTMCell, LTCCell, Mapping, WiredCfCCell};
use crate::rnn::{AnyCfCCell, Rnn};

/// Upstream's name of the cell module.
pub(crate) const CELL: &str = "rnn_cell";
/// Upstream's name of the mixed-memory LSTM module.
pub(crate) const LSTM: &str = "lstm";
/// Upstream's name of the projection.
pub(crate) const PROJECTION: &str = "fc";

/// The tensors of upstream's `LTCCell`.
pub(crate) mod ltc {
    pub(crate) const GLEAK: &str = "gleak";
    pub(crate) const VLEAK: &str = "vleak";
    pub(crate) const CM: &str = "cm";
    pub(crate) const SIGMA: &str = "sigma";
    pub(crate) const MU: &str = "mu";
    pub(crate) const W: &str = "w";
    pub(crate) const EREV: &str = "erev";
    pub(crate) const SENSORY_SIGMA: &str = "sensory_sigma";
    pub(crate) const SENSORY_MU: &str = "sensory_mu";
    pub(crate) const SENSORY_W: &str = "sensory_w";
    pub(crate) const SENSORY_EREV: &str = "sensory_erev";
    pub(crate) const INPUT_W: &str = "input_w";
    pub(crate) const INPUT_B: &str = "input_b";
    pub(crate) const OUTPUT_W: &str = "output_w";
    pub(crate) const OUTPUT_B: &str = "output_b";
    pub(crate) const SPARSITY_MASK: &str = "sparsity_mask";
    pub(crate) const SENSORY_SPARSITY_MASK: &str = "sensory_sparsity_mask";
}

/// The tensors of upstream's `CfCCell`.
pub(crate) mod cfc {
    pub(crate) const BACKBONE: &str = "backbone";
    pub(crate) const FF1: &str = "ff1";
    pub(crate) const FF2: &str = "ff2";
    pub(crate) const TIME_A: &str = "time_a";
    pub(crate) const TIME_B: &str = "time_b";
    pub(crate) const W_TAU: &str = "w_tau";
    pub(crate) const A: &str = "A";
    pub(crate) const SPARSITY_MASK: &str = "sparsity_mask";
}

/// The linear maps of upstream's `LSTMCell`.
pub(crate) mod lstm {
    pub(crate) const INPUT_MAP: &str = "input_map";
    pub(crate) const RECURRENT_MAP: &str = "recurrent_map";
}

/// The tensors of an `nn.Linear`.
pub(crate) mod linear {
    pub(crate) const WEIGHT: &str = "weight";
    pub(crate) const BIAS: &str = "bias";
}

/// `rnn_cell.<name>`: a tensor of the cell.
pub(crate) fn cell(name: &str) -> String {
    format!("{CELL}.{name}")
}

/// `lstm.<name>`: a tensor of the mixed-memory LSTM.
pub(crate) fn lstm(name: &str) -> String {
    format!("{LSTM}.{name}")
}

/// `layer_<l>`: upstream's name of a wired CfC's layer `l` in its cell.
pub(crate) fn wired_layer(l: usize) -> String {
    format!("layer_{l}")
}

/// `<module>.weight`.
pub(crate) fn weight(module: &str) -> String {
    format!("{module}.{}", linear::WEIGHT)
}

/// The index in upstream's backbone `nn.Sequential` of backbone layer
/// `layer`'s `Linear`: Linear, activation, then (Linear, activation[,
/// Dropout]) per further layer, so 0, 2, 4, ... or 0, 2, 5, 8, ... with
/// dropout.
pub(crate) fn backbone_index(layer: usize, dropout: bool) -> usize {
    let per_layer = if dropout { 3 } else { 2 };
    if layer == 0 {
        0
    } else {
        2 + (layer - 1) * per_layer
    }
}

/// `rnn_cell.backbone.<index>`: a backbone `Linear` by its `nn.Sequential`
/// index.
pub(crate) fn backbone(index: usize) -> String {
    cell(&format!("{}.{index}", cfc::BACKBONE))
}

/// Upstream's spelling of a CfC mode (`CfC(mode=...)`).
pub(crate) fn mode(mode: CfCMode) -> &'static str {
    match mode {
        CfCMode::Default => "default",
        CfCMode::Pure => "pure",
        CfCMode::NoGate => "no_gate",
    }
}

/// Upstream's spelling of a backbone activation (`CfC(activation=...)`).
pub(crate) fn activation(activation: Activation) -> &'static str {
    match activation {
        Activation::LecunTanh => "lecun_tanh",
        Activation::Silu => "silu",
        Activation::Relu => "relu",
        Activation::Tanh => "tanh",
        Activation::Gelu => "gelu",
    }
}

/// Upstream's spelling of an LTC mapping (`LTC(input_mapping=...)`);
/// `None` is Python's `None`.
pub(crate) fn mapping(mapping: Mapping) -> Option<&'static str> {
    match mapping {
        Mapping::Affine => Some("affine"),
        Mapping::Linear => Some("linear"),
        Mapping::Identity => None,
    }
}

/// Where one upstream tensor lives in a model.
pub enum Slot<'a, B: Backend> {
    /// A parameter stored as upstream stores it.
    Vector(&'a mut Param<Tensor<B, 1>>),
    /// A 2-D parameter stored as upstream stores it.
    Matrix(&'a mut Param<Tensor<B, 2>>),
    /// An `nn.Linear` weight: Burn's `[in, out]`, upstream's `(out, in)`.
    LinearWeight(&'a mut Param<Tensor<B, 2>>),
    /// A constant sparsity mask (upstream saves it; it must match), in
    /// upstream's layout when `transposed` is false.
    Mask {
        /// The model's mask.
        mask: &'a Tensor<B, 2>,
        /// Whether upstream stores the transpose of the model's layout.
        transposed: bool,
    },
}

impl<B: Backend> Slot<'_, B> {
    /// The tensor's shape in upstream's (PyTorch) layout.
    pub fn upstream_shape(&self) -> Vec<usize> {
        match self {
            Slot::Vector(p) => p.dims().to_vec(),
            Slot::Matrix(p) => p.dims().to_vec(),
            Slot::LinearWeight(p) => {
                let [d_input, d_output] = p.dims();
                vec![d_output, d_input]
            }
            Slot::Mask { mask, transposed } => {
                let [rows, cols] = mask.dims();
                if *transposed {
                    vec![cols, rows]
                } else {
                    vec![rows, cols]
                }
            }
        }
    }
}

/// A module whose parameters have upstream names.
pub trait UpstreamParams<B: Backend> {
    /// Lists every upstream tensor of the module, named `prefix<name>`.
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>);
}

fn push_linear<'a, B: Backend>(
    prefix: &str,
    layer: &'a mut Linear<B>,
    slots: &mut Vec<(String, Slot<'a, B>)>,
) {
    slots.push((
        format!("{prefix}{}", linear::WEIGHT),
        Slot::LinearWeight(&mut layer.weight),
    ));
    if let Some(bias) = &mut layer.bias {
        slots.push((format!("{prefix}{}", linear::BIAS), Slot::Vector(bias)));
    }
}

impl<B: Backend> UpstreamParams<B> for LTCCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        let name = |p: &str| format!("{prefix}{p}");
        for (key, p) in [
            (ltc::GLEAK, &mut self.gleak),
            (ltc::VLEAK, &mut self.vleak),
            (ltc::CM, &mut self.cm),
        ] {
            slots.push((name(key), Slot::Vector(p)));
        }
        for (key, p) in [
            (ltc::SIGMA, &mut self.sigma),
            (ltc::MU, &mut self.mu),
            (ltc::W, &mut self.w),
            (ltc::EREV, &mut self.erev),
            (ltc::SENSORY_SIGMA, &mut self.sensory_sigma),
            (ltc::SENSORY_MU, &mut self.sensory_mu),
            (ltc::SENSORY_W, &mut self.sensory_w),
            (ltc::SENSORY_EREV, &mut self.sensory_erev),
        ] {
            slots.push((name(key), Slot::Matrix(p)));
        }
        for (key, p) in [
            (ltc::INPUT_W, &mut self.input_w),
            (ltc::INPUT_B, &mut self.input_b),
            (ltc::OUTPUT_W, &mut self.output_w),
            (ltc::OUTPUT_B, &mut self.output_b),
        ] {
            if let Some(p) = p {
                slots.push((name(key), Slot::Vector(p)));
            }
        }
        for (key, mask) in [
            (ltc::SPARSITY_MASK, &self.sparsity_mask),
            (ltc::SENSORY_SPARSITY_MASK, &self.sensory_sparsity_mask),
        ] {
            slots.push((
                name(key),
                Slot::Mask {
                    mask: mask.get().expect("an LTC cell has masks"),
                    transposed: false,
                },
            ));
        }
    }
}

impl<B: Backend> UpstreamParams<B> for CfCCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        let dropout = self.dropout.prob > 0.0;
        for (i, layer) in self.backbone.iter_mut().enumerate() {
            let index = backbone_index(i, dropout);
            push_linear(&format!("{prefix}{}.{index}.", cfc::BACKBONE), layer, slots);
        }
        push_linear(&format!("{prefix}{}.", cfc::FF1), &mut self.ff1, slots);
        for (key, layer) in [
            (cfc::FF2, &mut self.ff2),
            (cfc::TIME_A, &mut self.time_a),
            (cfc::TIME_B, &mut self.time_b),
        ] {
            if let Some(layer) = layer {
                push_linear(&format!("{prefix}{key}."), layer, slots);
            }
        }
        if let Some(w_tau) = &mut self.w_tau {
            slots.push((format!("{prefix}{}", cfc::W_TAU), Slot::Matrix(w_tau)));
        }
        if let Some(a) = &mut self.a {
            slots.push((format!("{prefix}{}", cfc::A), Slot::Matrix(a)));
        }
        if let Some(mask) = self.sparsity_mask.get() {
            slots.push((
                format!("{prefix}{}", cfc::SPARSITY_MASK),
                Slot::Mask {
                    mask,
                    transposed: true,
                },
            ));
        }
    }
}

impl<B: Backend> UpstreamParams<B> for WiredCfCCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        for (l, cell) in self.layers.iter_mut().enumerate() {
            cell.upstream_slots(&format!("{prefix}{}.", wired_layer(l)), slots);
        }
    }
}

impl<B: Backend> UpstreamParams<B> for AnyCfCCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        match self {
            AnyCfCCell::Dense(cell) => cell.upstream_slots(prefix, slots),
            AnyCfCCell::Wired(cell) => cell.upstream_slots(prefix, slots),
        }
    }
}

impl<B: Backend> UpstreamParams<B> for LSTMCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        push_linear(
            &format!("{prefix}{}.", lstm::INPUT_MAP),
            &mut self.input_map,
            slots,
        );
        push_linear(
            &format!("{prefix}{}.", lstm::RECURRENT_MAP),
            &mut self.recurrent_map,
            slots,
        );
    }
}

impl<B: Backend, C: UpstreamParams<B>> UpstreamParams<B> for Rnn<B, C> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        self.cell.upstream_slots(&format!("{prefix}{CELL}."), slots);
        if let Some(lstm) = &mut self.lstm {
            lstm.upstream_slots(&format!("{prefix}{LSTM}."), slots);
        }
        if let Some(fc) = &mut self.fc {
            push_linear(&format!("{prefix}{PROJECTION}."), fc, slots);
        }
    }
}
