//! The error of everything in [`crate::wirings`].

use std::path::PathBuf;

/// What went wrong when creating, building, loading or drawing a wiring.
///
/// Every variant names the argument, matrix or file at fault, so the message
/// alone tells a user what to change.
///
/// ```
/// use ncps::wirings::{AutoNCP, WiringError};
///
/// let err = AutoNCP::new(8, 6).unwrap_err();
/// assert!(matches!(err, WiringError::InvalidArgument { argument: "output_size", .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid output_size = 6: must be between 1 and units - 3 = 5"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiringError {
    /// A constructor or build argument outside its valid range.
    #[error("invalid {argument} = {value}: must be {expected}")]
    InvalidArgument {
        /// The argument's name, as in the constructor's signature.
        argument: &'static str,
        /// The value that was given.
        value: String,
        /// The valid range, in words.
        expected: String,
    },
    /// `build` was called again with another input size.
    #[error(
        "conflicting input_dim: the wiring was built with {built} inputs, \
         but build() was called again with {requested}"
    )]
    InputDimConflict {
        /// The input size the wiring was built with.
        built: usize,
        /// The input size of the second call.
        requested: usize,
    },
    /// An operation that needs the sensory synapses ran before `build`.
    #[error("the wiring is not built yet: call build(input_dim) before {operation}")]
    NotBuilt {
        /// What was attempted.
        operation: &'static str,
    },
    /// A matrix of the wrong shape.
    #[error("{matrix} must be {}x{}, but {found}", expected[0], expected[1])]
    MatrixShape {
        /// The matrix, e.g. `adjacency_matrix`.
        matrix: String,
        /// Its required `[rows, cols]`.
        expected: [usize; 2],
        /// What was found instead.
        found: String,
    },
    /// A matrix entry other than `-1`, `0`, `+1`.
    #[error("{matrix}[{src}][{dest}] = {value}, but synapse entries must be -1, 0 or +1")]
    MatrixEntry {
        /// The matrix, e.g. `sensory_adjacency_matrix`.
        matrix: String,
        /// Row of the entry.
        src: usize,
        /// Column of the entry.
        dest: usize,
        /// The offending value.
        value: i64,
    },
    /// A stored field that contradicts the rest of a saved wiring.
    #[error("inconsistent saved wiring: {field} is {found}, but {expected} was expected")]
    Inconsistent {
        /// The field, e.g. `layers`.
        field: &'static str,
        /// What the rest of the wiring implies.
        expected: String,
        /// What was stored.
        found: String,
    },
    /// Malformed JSON, or JSON that is not a wiring.
    #[error("malformed wiring JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl WiringError {
    pub(crate) fn invalid(
        argument: &'static str,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        WiringError::InvalidArgument {
            argument,
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}
