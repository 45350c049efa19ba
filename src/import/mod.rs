//! Upstream PyTorch weights: load a `state_dict` of Python `ncps` into the
//! matching model.
//!
//! A `.safetensors` file is read with burn-store's `SafetensorsStore`; the
//! `.pt`/`.pth` files `torch.save(model.state_dict(), path)` writes are read
//! by this module's own zip and pickle reader, which honours strides and
//! storage offsets (burn-store 0.21's `PytorchStore` ignores them and reads
//! transposed or sliced tensors in the wrong order). Each tensor is then
//! matched by upstream's name
//! (`rnn_cell.w`, `rnn_cell.backbone.0.weight`, `rnn_cell.layer_0.ff1.weight`,
//! `lstm.input_map.weight`, `fc.weight`, ...), its shape checked in PyTorch's
//! `(out, in)` layout, and `nn.Linear` weights transposed into Burn's
//! `[in, out]`. The sparsity masks in the file must equal the wiring's. A
//! missing, unexpected or misshapen tensor is an [`ImportError`] naming it.
//!
//! Where things are: [`StateDict`] (`state_dict.rs`); upstream's name table,
//! which the exporter shares (`names.rs`: [`UpstreamParams`], [`Slot`]);
//! the pickle interpreter (`pickle.rs`, [`PickleError`]) and torch's
//! archive, storages and strides (`pt.rs`, [`PtError`]); what a checkpoint
//! says about its model (`infer.rs`: [`load_ltc`], [`load_cfc`]).
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

use std::collections::BTreeSet;
use std::path::PathBuf;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;

mod infer;
pub(crate) mod names;
mod pickle;
mod pt;
mod state_dict;

pub use infer::{load_cfc, load_ltc};
pub use names::{Slot, UpstreamParams};
pub use pickle::PickleError;
pub use pt::PtError;
pub use state_dict::StateDict;

/// Why weights could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read, or is no safetensors file.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the reader reported.
        message: String,
    },
    /// A `.pt` file that is not a state_dict `torch.save` wrote.
    #[error("cannot read {path}: {source}")]
    Pt {
        /// The file (`<bytes>` when read from memory).
        path: PathBuf,
        /// What is wrong with it.
        source: PtError,
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
