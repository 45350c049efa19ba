//! Deployment: a trained model as a standalone step function in Rust or C,
//! or as the files Python ncps 1.0.1 loads.
//!
//! - [`Export::step_function`] lowers an [`LTC`] (any wiring, both
//!   mappings, implicit constraints applied) or a [`CfC`] (dense in every
//!   mode, backbone and head activation, or wired; with or without mixed
//!   memory in either arrangement, any forget-gate bias, and projection)
//!   to a [`StepFunction`]: the weights as arrays (an LTC's
//!   synapses sparse, grouped by destination as the fused kernel stores
//!   them) and `step(state, input, elapsed, output)` plus `reset`.
//!   [`StepFunction::to_rust`] prints one self-contained file with no
//!   dependency that compiles as a module of a `#![no_std]` crate;
//!   [`StepFunction::to_c`] a C99 source and header that use nothing from
//!   the C library (not even `<math.h>`). Neither allocates
//!   nor has global mutable state: the caller owns the state, a step's
//!   working memory is on the stack.
//! - [`Export::upstream_config`] and [`Export::save_upstream`]: the
//!   weights as upstream's `state_dict` (safetensors, upstream's names and
//!   layouts, masks included, through the name table `import` uses) and the
//!   constructor arguments and wiring (upstream's `get_config()`) as JSON,
//!   so that `ncps.torch` rebuilds the model and computes its outputs.
//!
//! The generated code computes what the Burn model computes: the Rust
//! step is the fused kernels' arithmetic with the crate's own `exp` and
//! `tanh` (`src/kernels/scalar.rs`, copied in as it is), an LTC's step
//! bit for bit; the C step is its line-by-line translation and gives the
//! Rust step's numbers bit for bit. `tests/suite/export.rs` compiles both and
//! compares 1,000 steps with the Burn model and its float64 copy.
//!
//! ```
//! use burn::backend::NdArray;
//! use ncps::export::Export;
//! use ncps::rnn::{LTCConfig, Units};
//! use ncps::wirings::AutoNCP;
//!
//! let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<NdArray>(&Default::default())?;
//! let step = model.step_function()?;
//! assert_eq!((step.inputs(), step.outputs(), step.state_size()), (2, 1, 16));
//! let rust = step.to_rust();
//! assert!(rust.contains("pub fn step(") && rust.contains("pub const STATE: usize = 16;"));
//! let c = step.to_c("policy", "policy.h")?;
//! assert!(c.header.contains("void policy_step(") && c.source.contains("#include \"policy.h\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::fs::write_atomically;
use crate::import::{ImportError, StateDict};
use crate::rnn::{CfC, LTC};

mod c;
mod program;
mod python;
mod rust;

pub use python::UpstreamConfig;

/// The runtime of generated Rust: `runtime.rs`, copied in as it is.
const RUNTIME_RS: &str = include_str!("runtime.rs");
/// Its C translation.
const RUNTIME_C: &str = include_str!("runtime.c");
/// The crate's `exp`, `sigmoid` and `tanh`, copied into generated Rust.
const MATH_RS: &str = include_str!("../kernels/scalar.rs");

// The runtime is part of the crate only for its tests (which run it on
// the ndarray backend's models), with what generated files put beside it:
// `Index` and `math`.
#[cfg(all(test, feature = "ndarray"))]
mod runtime;
#[cfg(all(test, feature = "ndarray"))]
type Index = u32;
#[cfg(all(test, feature = "ndarray"))]
mod math {
    pub(crate) use crate::kernels::scalar::{exp, lecun_tanh, sigmoid, tanh};
}
#[cfg(all(test, feature = "ndarray"))]
mod tests;

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Something the generated code or upstream cannot represent.
    #[error("cannot export {what}: {reason}")]
    Unsupported {
        /// What the model has.
        what: String,
        /// Why it cannot be exported.
        reason: String,
    },
    /// A weight (or setting) that is NaN or infinite: generated code holds
    /// finite literals only.
    #[error("{tensor} holds {value} at index {index}: only finite weights can be exported")]
    NonFinite {
        /// Upstream's name of the tensor (or the setting).
        tensor: String,
        /// Row-major index of the value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// An [`UpstreamConfig`] argument that cannot be read back.
    #[error("upstream config argument {argument}: {reason}")]
    Config {
        /// The argument (`model`, `wiring`, `mode`, ...).
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A C name prefix that is not a C identifier.
    #[error("invalid C prefix {prefix:?}: use letters, digits and _, not starting with a digit")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
    },
    /// The wiring read from the model could not be rebuilt.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
}

impl ExportError {
    /// [`ExportError::Unsupported`]: `what` the model has, and why it
    /// cannot be exported.
    pub(crate) fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ExportError::Unsupported {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// A model as a standalone step function: its weights and structure, ready
/// to print as Rust ([`to_rust`](Self::to_rust)) or C ([`to_c`](Self::to_c)).
/// Made by [`Export::step_function`].
#[derive(Clone, Debug)]
pub struct StepFunction {
    program: program::Program,
}

/// A generated C99 source file and its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSource {
    /// The `.c` file: runtime, weights, `<prefix>_reset` and `<prefix>_step`.
    pub source: String,
    /// The `.h` file: `<PREFIX>_INPUTS`, `<PREFIX>_OUTPUTS`,
    /// `<PREFIX>_STATE` and the two functions.
    pub header: String,
}

impl StepFunction {
    /// Features of one observation (`INPUTS`).
    pub fn inputs(&self) -> usize {
        self.program.inputs
    }

    /// Values of one output (`OUTPUTS`).
    pub fn outputs(&self) -> usize {
        self.program.outputs
    }

    /// Floats of state the caller keeps (`STATE`): the cell's state, and
    /// the LSTM's memory cell with mixed memory.
    pub fn state_size(&self) -> usize {
        self.program.state
    }

    /// Bytes of stack one step uses for its working memory.
    pub fn stack_bytes(&self) -> usize {
        4 * self.program.scratch
    }

    /// Bytes the weight and index arrays take (read-only data: flash on a
    /// microcontroller), without the code.
    pub fn weight_bytes(&self) -> usize {
        self.program
            .arrays
            .iter()
            .map(|a| match &a.values {
                program::Values::F32(v) => 4 * v.len(),
                program::Values::Index(v) => self.program.index_bytes * v.len(),
            })
            .sum()
    }

    /// The Rust source: one file, no dependency, `core` only.
    pub fn to_rust(&self) -> String {
        rust::emit(&self.program)
    }

    /// The C99 source and header; the functions are `<prefix>_reset` and
    /// `<prefix>_step`, the constants `<PREFIX>_INPUTS` and so on, and the
    /// source includes the header as `header_name`.
    ///
    /// Fails when `prefix` is not a C identifier.
    pub fn to_c(&self, prefix: &str, header_name: &str) -> Result<CSource, ExportError> {
        let valid = prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && prefix.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if !valid {
            return Err(ExportError::InvalidPrefix {
                prefix: prefix.into(),
            });
        }
        Ok(c::emit(&self.program, prefix, header_name))
    }

    /// Writes [`to_rust`](Self::to_rust) to `path`, atomically.
    pub fn save_rust(&self, path: impl AsRef<Path>) -> Result<(), ExportError> {
        write(path.as_ref(), &self.to_rust())
    }

    /// Writes [`to_c`](Self::to_c) to `path` and its header beside it (the
    /// same name with `.h`), atomically.
    pub fn save_c(&self, path: impl AsRef<Path>, prefix: &str) -> Result<(), ExportError> {
        let path = path.as_ref();
        let header_path = path.with_extension("h");
        let header_name = header_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let c = self.to_c(prefix, &header_name)?;
        write(&header_path, &c.header)?;
        write(path, &c.source)
    }
}

fn write(path: &Path, text: &str) -> Result<(), ExportError> {
    write_atomically(path, text.as_bytes()).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A float as a literal both Rust and C (with an `f` suffix) read back to
/// the same `f32`: the shortest decimal that round-trips.
fn float_literal(x: f32) -> String {
    format!("{x:?}")
}

/// Struct initializers re-indented by bracket depth (four spaces a level);
/// the emitters write them without minding nesting.
fn reindent(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim();
        let closes_first = line.starts_with(['}', ')', ']']);
        let level = if closes_first {
            depth.saturating_sub(1)
        } else {
            depth
        };
        if !line.is_empty() {
            out.push_str(&"    ".repeat(level));
            out.push_str(line);
        }
        out.push('\n');
        // A line opens or closes one level at most (`Some(runtime::Lstm {`
        // and its `}),` are one level).
        let opens = line.matches(['{', '(', '[']).count();
        let closes = line.matches(['}', ')', ']']).count();
        match opens.cmp(&closes) {
            std::cmp::Ordering::Greater => depth += 1,
            std::cmp::Ordering::Less => depth = depth.saturating_sub(1),
            std::cmp::Ordering::Equal => {}
        }
    }
    out
}

/// Array items, eight to a line.
fn wrap(values: &[String], indent: &str) -> String {
    if values.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n");
    for line in values.chunks(8) {
        out.push_str(indent);
        out.push_str(&line.join(", "));
        out.push_str(",\n");
    }
    out
}

/// Exporting a sequence model: implemented for [`LTC`] and [`CfC`] on any
/// backend (the weights are read as `f32`).
pub trait Export {
    /// The model as a standalone step function.
    ///
    /// Fails with [`ExportError::Unsupported`] for what the generated code
    /// cannot compute (a CfC backbone with the `gelu` activation: it needs
    /// `erf`), and [`ExportError::NonFinite`] for a NaN or infinite weight
    /// or setting.
    fn step_function(&self) -> Result<StepFunction, ExportError>;

    /// What upstream needs besides the weights: class, constructor
    /// arguments, wiring.
    ///
    /// Fails with [`ExportError::Unsupported`] for what Python ncps cannot
    /// compute: a wired CfC whose last layer holds neurons that are not
    /// outputs (upstream returns the whole last layer there), mixed memory
    /// whose LSTM output is the cell's input ([`LstmOutput::Input`](crate::rnn::LstmOutput)) or
    /// whose forget-gate bias is not 1, and LeCun-tanh heads
    /// ([`HeadActivation::LecunTanh`](crate::cells::HeadActivation)).
    fn upstream_config(&self) -> Result<UpstreamConfig, ExportError>;

    /// Writes the weights as upstream's `state_dict` in safetensors (see
    /// [`StateDict::from_model`]) to `weights` and the
    /// [`upstream_config`](Self::upstream_config) as JSON to `config`, both
    /// atomically.
    fn save_upstream(
        &self,
        weights: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Result<(), ExportError>;
}

impl<B: Backend> Export for LTC<B> {
    fn step_function(&self) -> Result<StepFunction, ExportError> {
        Ok(StepFunction {
            program: program::Program::ltc(self)?,
        })
    }

    fn upstream_config(&self) -> Result<UpstreamConfig, ExportError> {
        python::ltc_config(self)
    }

    fn save_upstream(
        &self,
        weights: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Result<(), ExportError> {
        let config_value = self.upstream_config()?;
        python::save(
            &StateDict::from_model(self),
            &config_value,
            weights.as_ref(),
            config.as_ref(),
        )
    }
}

impl<B: Backend> Export for CfC<B> {
    fn step_function(&self) -> Result<StepFunction, ExportError> {
        Ok(StepFunction {
            program: program::Program::cfc(self)?,
        })
    }

    fn upstream_config(&self) -> Result<UpstreamConfig, ExportError> {
        python::cfc_config(self)
    }

    fn save_upstream(
        &self,
        weights: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Result<(), ExportError> {
        let config_value = self.upstream_config()?;
        python::save(
            &StateDict::from_model(self),
            &config_value,
            weights.as_ref(),
            config.as_ref(),
        )
    }
}
