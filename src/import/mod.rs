//! Upstream PyTorch weights: load a `state_dict` of Python `ncps` into the
//! matching model.
//!
//! A `.safetensors` file is read with burn-store's `SafetensorsStore`; the
//! `.pt`/`.pth` files `torch.save(model.state_dict(), path)` writes are read
//! by this module's own zip and pickle reader, which honours strides and
//! storage offsets (burn-store 0.21's `PytorchStore` ignores them and reads
//! transposed or sliced tensors in the wrong order). Each tensor is then matched by upstream's name
//! (`rnn_cell.w`, `rnn_cell.backbone.0.weight`, `rnn_cell.layer_0.ff1.weight`,
//! `lstm.input_map.weight`, `fc.weight`, ...), its shape checked in PyTorch's
//! `(out, in)` layout, and `nn.Linear` weights transposed into Burn's
//! `[in, out]`. The sparsity masks in the file must equal the wiring's. A
//! missing, unexpected or misshapen tensor is an [`ImportError`] naming it.
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use ncps::import::{LoadStateDict, StateDict};
//! use ncps::rnn::{CfCConfig, Units};
//!
//! let device = Default::default();
//! let model = CfCConfig::new(3, Units::from(8)).init::<NdArray>(&device)?;
//! let model = model.load_state_dict(&StateDict::read("cfc.safetensors")?)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};

use crate::cells::{CfCCell, LSTMCell, LTCCell, WiredCfCCell};

mod infer;
mod pt;

use crate::rnn::{AnyCfCCell, Rnn};
pub use infer::{load_cfc, load_ltc};

/// Why weights could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read or parsed.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// The model has a parameter the file lacks.
    #[error("tensor {name} is missing (expected shape {expected:?})")]
    Missing {
        /// Upstream's name of the tensor.
        name: String,
        /// Its shape in PyTorch layout.
        expected: Vec<usize>,
    },
    /// The file has tensors the model has no place for.
    #[error("unexpected tensors {names:?}: the model has no parameter of these names")]
    Unexpected {
        /// Upstream's names of the tensors.
        names: Vec<String>,
    },
    /// A tensor of the wrong shape.
    #[error("tensor {name} has shape {found:?}, but the model expects {expected:?}")]
    Shape {
        /// Upstream's name of the tensor.
        name: String,
        /// The shape the model needs, in PyTorch layout.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor whose element type is not a float (e.g. integers where a
    /// weight is expected). Floats of any precision are converted to the
    /// model's.
    #[error(
        "tensor {name} has dtype {found}, but a float tensor (f16, bf16, f32 or f64) is expected"
    )]
    Dtype {
        /// Upstream's name of the tensor.
        name: String,
        /// The element type in the file.
        found: String,
    },
    /// A tensor whose values cannot be what its name says (e.g. a sparsity
    /// mask with entries other than 0 and 1).
    #[error("tensor {name} is invalid: {reason}")]
    Invalid {
        /// Upstream's name of the tensor.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Something a checkpoint does not record, needed to rebuild its model.
    #[error("cannot tell {what} from the checkpoint: {hint}")]
    Undetermined {
        /// What could not be read.
        what: String,
        /// Why, and what to do instead.
        hint: String,
    },
    /// The model described by a checkpoint could not be configured.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// A wiring read from a checkpoint is not valid.
    #[error(transparent)]
    Wiring(#[from] crate::wirings::WiringError),
    /// A stored sparsity mask that differs from the model's wiring.
    #[error(
        "tensor {name} differs from the model's wiring: build the model with the wiring these weights were trained with"
    )]
    MaskMismatch {
        /// Upstream's name of the mask.
        name: String,
    },
}

/// The tensors of an upstream `state_dict`, by name, as read from a file.
///
/// ```
/// use ncps::import::StateDict;
///
/// let dict = StateDict::read("tests/fixtures/reference/cfc_default.safetensors")?
///     .strip_prefix("param.");
/// assert_eq!(dict.shape("rnn_cell.ff1.weight"), Some(&[8, 128][..]));
/// # Ok::<(), ncps::import::ImportError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StateDict {
    tensors: BTreeMap<String, (Vec<usize>, TensorData)>,
}

impl StateDict {
    /// Reads a safetensors file (`.safetensors`) or a PyTorch pickle
    /// (`.pt`, `.pth`, `.bin`, or anything else) written by
    /// `torch.save(model.state_dict(), path)`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, ImportError> {
        let path = path.as_ref();
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        let failed = |message: String| ImportError::Read {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(failed("no such file".into()));
        }
        if is_safetensors {
            Self::from_store(&mut SafetensorsStore::from_file(path)).map_err(failed)
        } else {
            let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
            Self::read_pt(&bytes).map_err(failed)
        }
    }

    /// Reads safetensors bytes.
    pub fn from_safetensors_bytes(bytes: Vec<u8>) -> Result<Self, ImportError> {
        Self::from_store(&mut SafetensorsStore::from_bytes(Some(bytes))).map_err(|message| {
            ImportError::Read {
                path: PathBuf::from("<bytes>"),
                message,
            }
        })
    }

    /// Reads the bytes of a `.pt` file written by `torch.save(state_dict,
    /// path)` (the zip format of PyTorch 1.6 and later). Views
    /// (transposed, sliced, offset tensors, as upstream saves the wired
    /// CfC's masks) are read with their strides; every tensor keeps its
    /// element type until it is loaded into a model.
    pub fn from_pt_bytes(bytes: &[u8]) -> Result<Self, ImportError> {
        Self::read_pt(bytes).map_err(|message| ImportError::Read {
            path: PathBuf::from("<bytes>"),
            message,
        })
    }

    fn read_pt(bytes: &[u8]) -> Result<Self, String> {
        let tensors = pt::read_pt(bytes)?
            .into_iter()
            .map(|t| (t.name, (t.data.shape.to_vec(), t.data)))
            .collect();
        Ok(Self { tensors })
    }

    fn from_store<S: ModuleStore>(store: &mut S) -> Result<Self, String> {
        let snapshots = store.get_all_snapshots().map_err(|e| e.to_string())?;
        let mut tensors = BTreeMap::new();
        for (name, snapshot) in snapshots {
            let data = snapshot
                .to_data()
                .map_err(|e| format!("tensor {name}: {e:?}"))?;
            tensors.insert(name.clone(), (snapshot.shape.to_vec(), data));
        }
        Ok(Self { tensors })
    }

    /// Keeps the tensors whose name starts with `prefix`, without it (the
    /// fixtures store parameters as `param.<name>`).
    pub fn strip_prefix(self, prefix: &str) -> Self {
        let tensors = self
            .tensors
            .into_iter()
            .filter_map(|(name, t)| name.strip_prefix(prefix).map(|n| (n.to_string(), t)))
            .collect();
        Self { tensors }
    }

    /// The tensors of a model under upstream's names (masks included, Linear
    /// weights in PyTorch's `(out, in)` layout): what upstream's
    /// `state_dict()` would hold.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use ncps::import::{LoadStateDict, StateDict};
    /// use ncps::rnn::{LTCConfig, Units};
    ///
    /// let device = Default::default();
    /// let a = LTCConfig::new(2, Units::from(4)).init::<NdArray>(&device)?;
    /// let dict = StateDict::from_model(&a);
    /// assert_eq!(dict.shape("rnn_cell.sensory_w"), Some(&[2, 4][..]));
    /// let b = LTCConfig::new(2, Units::from(4)).init::<NdArray>(&device)?.load_state_dict(&dict)?;
    /// assert_eq!(dict.values("rnn_cell.w"), StateDict::from_model(&b).values("rnn_cell.w"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_model<B: Backend, M: UpstreamParams<B> + Clone>(model: &M) -> Self {
        Self::collect(model, |slot| match slot {
            Slot::Vector(p) => Some(p.val().into_data()),
            Slot::Matrix(p) => Some(p.val().into_data()),
            Slot::LinearWeight(p) => Some(p.val().transpose().into_data()),
            Slot::Mask { mask, transposed } => {
                let mask: Tensor<B, 2> = (*mask).clone();
                Some(if *transposed { mask.transpose() } else { mask }.into_data())
            }
        })
    }

    /// The gradients of a model's trainable parameters under upstream's
    /// names, in upstream's layout (what `param.grad` holds in PyTorch after
    /// `loss.backward()`); parameters without a gradient are left out.
    pub fn gradients<B: AutodiffBackend, M: UpstreamParams<B> + Clone>(
        model: &M,
        grads: &B::Gradients,
    ) -> Self {
        Self::collect(model, |slot| match slot {
            Slot::Vector(p) => p.val().grad(grads).map(Tensor::into_data),
            Slot::Matrix(p) => p.val().grad(grads).map(Tensor::into_data),
            Slot::LinearWeight(p) => p.val().grad(grads).map(|g| g.transpose().into_data()),
            Slot::Mask { .. } => None,
        })
    }

    fn collect<B: Backend, M: UpstreamParams<B> + Clone>(
        model: &M,
        mut read: impl FnMut(&Slot<'_, B>) -> Option<TensorData>,
    ) -> Self {
        let mut model = model.clone();
        let mut slots = Vec::new();
        model.upstream_slots("", &mut slots);
        let tensors = slots
            .iter()
            .filter_map(|(name, slot)| {
                read(slot).map(|data| (name.clone(), (data.shape.to_vec(), data)))
            })
            .collect();
        Self { tensors }
    }

    /// Removes a tensor, returning its shape and values.
    pub fn remove(&mut self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        self.tensors.remove(name).map(|(shape, data)| {
            let values = data.convert::<f32>().to_vec::<f32>();
            (shape, values.expect("converted to f32"))
        })
    }

    /// Adds (or replaces) a tensor, e.g. to rename a key of a model saved
    /// with another wrapper around the upstream module.
    ///
    /// # Panics
    /// When `values` does not hold `shape`'s element count.
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "values do not fill shape {shape:?}"
        );
        let data = TensorData::new(values, shape.clone());
        self.tensors.insert(name.into(), (shape, data));
    }

    /// The names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(shape, _)| shape.as_slice())
    }

    /// The values of a tensor (row-major, converted to `f32`), if present.
    pub fn values(&self, name: &str) -> Option<Vec<f32>> {
        self.tensors.get(name).map(|(_, data)| {
            let values = data.clone().convert::<f32>().to_vec::<f32>();
            values.expect("converted to f32")
        })
    }

    /// The element type of a tensor as stored in the file (or the model),
    /// if present. Loading converts it to the model's float type.
    pub fn dtype(&self, name: &str) -> Option<burn::tensor::DType> {
        self.tensors.get(name).map(|(_, data)| data.dtype)
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

/// Loading a whole `state_dict` into a model.
pub trait LoadStateDict<B: Backend>: UpstreamParams<B> + Sized {
    /// The model with every parameter taken from `dict`; fails on a missing,
    /// unexpected or misshapen tensor, or a mask that differs from the
    /// model's wiring.
    fn load_state_dict(self, dict: &StateDict) -> Result<Self, ImportError>;
}

impl<B: Backend, M: UpstreamParams<B> + Module<B>> LoadStateDict<B> for M {
    fn load_state_dict(mut self, dict: &StateDict) -> Result<Self, ImportError> {
        let device = self.devices().into_iter().next().unwrap_or_default();
        let mut slots = Vec::new();
        self.upstream_slots("", &mut slots);
        let mut used = BTreeSet::new();
        for (name, slot) in slots {
            let expected = slot.upstream_shape();
            let (shape, data) = dict
                .tensors
                .get(&name)
                .ok_or_else(|| ImportError::Missing {
                    name: name.clone(),
                    expected: expected.clone(),
                })?;
            if *shape != expected {
                return Err(ImportError::Shape {
                    name,
                    expected,
                    found: shape.clone(),
                });
            }
            if !matches!(
                data.dtype,
                DType::F64 | DType::F32 | DType::Flex32 | DType::F16 | DType::BF16
            ) {
                return Err(ImportError::Dtype {
                    name,
                    found: format!("{:?}", data.dtype),
                });
            }
            let data = data.clone();
            match slot {
                Slot::Vector(p) => *p = Param::from_tensor(Tensor::from_data(data, &device)),
                Slot::Matrix(p) => *p = Param::from_tensor(Tensor::from_data(data, &device)),
                Slot::LinearWeight(p) => {
                    *p = Param::from_tensor(Tensor::<B, 2>::from_data(data, &device).transpose())
                }
                Slot::Mask { mask, transposed } => {
                    let mask = if transposed {
                        mask.clone().transpose()
                    } else {
                        mask.clone()
                    };
                    // Compared as f32 whatever the model's float type: a
                    // mask holds 0 and 1 only.
                    let ours = mask.into_data().convert::<f32>().to_vec::<f32>().ok();
                    if ours.is_none() || ours != data.convert::<f32>().to_vec::<f32>().ok() {
                        return Err(ImportError::MaskMismatch { name });
                    }
                }
            }
            used.insert(name);
        }
        let names: Vec<String> = dict
            .names()
            .filter(|n| !used.contains(*n))
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            Ok(self)
        } else {
            Err(ImportError::Unexpected { names })
        }
    }
}

fn push_linear<'a, B: Backend>(
    prefix: &str,
    layer: &'a mut Linear<B>,
    slots: &mut Vec<(String, Slot<'a, B>)>,
) {
    slots.push((
        format!("{prefix}weight"),
        Slot::LinearWeight(&mut layer.weight),
    ));
    if let Some(bias) = &mut layer.bias {
        slots.push((format!("{prefix}bias"), Slot::Vector(bias)));
    }
}

impl<B: Backend> UpstreamParams<B> for LTCCell<B> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        let name = |p: &str| format!("{prefix}{p}");
        for (key, p) in [
            ("gleak", &mut self.gleak),
            ("vleak", &mut self.vleak),
            ("cm", &mut self.cm),
        ] {
            slots.push((name(key), Slot::Vector(p)));
        }
        for (key, p) in [
            ("sigma", &mut self.sigma),
            ("mu", &mut self.mu),
            ("w", &mut self.w),
            ("erev", &mut self.erev),
            ("sensory_sigma", &mut self.sensory_sigma),
            ("sensory_mu", &mut self.sensory_mu),
            ("sensory_w", &mut self.sensory_w),
            ("sensory_erev", &mut self.sensory_erev),
        ] {
            slots.push((name(key), Slot::Matrix(p)));
        }
        for (key, p) in [
            ("input_w", &mut self.input_w),
            ("input_b", &mut self.input_b),
            ("output_w", &mut self.output_w),
            ("output_b", &mut self.output_b),
        ] {
            if let Some(p) = p {
                slots.push((name(key), Slot::Vector(p)));
            }
        }
        for (key, mask) in [
            ("sparsity_mask", &self.sparsity_mask),
            ("sensory_sparsity_mask", &self.sensory_sparsity_mask),
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
        // upstream's nn.Sequential: Linear, activation, then (Linear,
        // activation[, Dropout]) per further layer.
        let per_layer = if self.dropout.prob > 0.0 { 3 } else { 2 };
        for (i, layer) in self.backbone.iter_mut().enumerate() {
            let index = if i == 0 { 0 } else { 2 + (i - 1) * per_layer };
            push_linear(&format!("{prefix}backbone.{index}."), layer, slots);
        }
        push_linear(&format!("{prefix}ff1."), &mut self.ff1, slots);
        for (key, layer) in [
            ("ff2", &mut self.ff2),
            ("time_a", &mut self.time_a),
            ("time_b", &mut self.time_b),
        ] {
            if let Some(layer) = layer {
                push_linear(&format!("{prefix}{key}."), layer, slots);
            }
        }
        if let Some(w_tau) = &mut self.w_tau {
            slots.push((format!("{prefix}w_tau"), Slot::Matrix(w_tau)));
        }
        if let Some(a) = &mut self.a {
            slots.push((format!("{prefix}A"), Slot::Matrix(a)));
        }
        if let Some(mask) = self.sparsity_mask.get() {
            slots.push((
                format!("{prefix}sparsity_mask"),
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
            cell.upstream_slots(&format!("{prefix}layer_{l}."), slots);
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
        push_linear(&format!("{prefix}input_map."), &mut self.input_map, slots);
        push_linear(
            &format!("{prefix}recurrent_map."),
            &mut self.recurrent_map,
            slots,
        );
    }
}

impl<B: Backend, C: UpstreamParams<B>> UpstreamParams<B> for Rnn<B, C> {
    fn upstream_slots<'a>(&'a mut self, prefix: &str, slots: &mut Vec<(String, Slot<'a, B>)>) {
        self.cell
            .upstream_slots(&format!("{prefix}rnn_cell."), slots);
        if let Some(lstm) = &mut self.lstm {
            lstm.upstream_slots(&format!("{prefix}lstm."), slots);
        }
        if let Some(fc) = &mut self.fc {
            push_linear(&format!("{prefix}fc."), fc, slots);
        }
    }
}
