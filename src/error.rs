//! The error of model configurations.

use crate::wirings::WiringError;

/// Why a model or cell configuration cannot be initialised.
///
/// Returned by the `init` of every config in [`crate::cells`] and
/// [`crate::rnn`]; the message names the argument at fault.
///
/// ```
/// use burn::backend::NdArray;
/// use ncps::{ConfigError, cells::CfCCellOptions, rnn::{CfCConfig, Units}, wirings::AutoNCP};
///
/// let wiring = AutoNCP::new(12, 2)?;
/// let err = CfCConfig::new(3, Units::from(wiring))
///     .with_cell(CfCCellOptions::new().with_backbone_units(64))
///     .init::<NdArray>(&Default::default())
///     .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "backbone_units cannot be used with a wiring (a wired CfC has no backbone and keeps upstream's tanh heads)"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An argument outside its valid range.
    #[error("invalid {argument} = {value}: must be {expected}")]
    InvalidArgument {
        /// The argument's name, as in the config.
        argument: &'static str,
        /// The value given.
        value: String,
        /// The valid range, in words.
        expected: String,
    },
    /// A cell needs the wiring's input size, but the wiring is not built.
    #[error("the wiring is not built: call wiring.build(input_size) or pass input_size")]
    WiringNotBuilt,
    /// A dense-only CfC option given together with a wiring.
    #[error(
        "{argument} cannot be used with a wiring (a wired CfC has no backbone and keeps upstream's tanh heads)"
    )]
    BackboneWithWiring {
        /// `backbone_units`, `backbone_layers`, `backbone_dropout`,
        /// `dropout_placement`, `dropout_masks`, `head_activation` or
        /// `activation`.
        argument: &'static str,
    },
    /// The wiring rejected the input size (e.g. it was built with another).
    #[error(transparent)]
    Wiring(#[from] WiringError),
}

impl ConfigError {
    pub(crate) fn invalid(
        argument: &'static str,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::InvalidArgument {
            argument,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}
