//! UEA/UCR time-series classification files (the sktime/aeon `.ts`
//! format) as a `burn::data` dataset.
//!
//! The archive at timeseriesclassification.com serves each problem as
//! `<Name>_TRAIN.ts` and `<Name>_TEST.ts`: `#` comment lines, `@key value`
//! header lines, `@data`, then one case per line, its dimensions separated
//! by `:`, the values of a dimension by `,`, the class label last:
//!
//! ```text
//! # two dimensions, lengths 3 and 2
//! @problemName Toy
//! @timeStamps false
//! @missing false
//! @univariate false
//! @dimensions 2
//! @equalLength false
//! @classLabel true up down
//! @data
//! 0.1,0.2,0.3:1.0,1.1,1.2:up
//! 0.5,0.4:1.5,1.4:down
//! ```
//!
//! - [`UeaDataset`] reads a file ([`UeaDataset::from_file`], or text with
//!   [`UeaDataset::parse`]) and serves each case as a [`UeaItem`]: its
//!   series `[time, dims]`, its length and its class index (the position of
//!   its label in `@classLabel`, whose order [`UeaDataset::class_names`]
//!   keeps).
//! - [`UeaBatcher`] pads a batch to its longest series with zeros: a
//!   [`UeaBatch`] of `inputs [batch, time, dims]`, `lengths [batch]` and
//!   `targets [batch]`.
//! - [`Standardization`] holds per-dimension means and standard deviations
//!   fitted on the training split (over the valid steps only: a dataset
//!   holds no padding) and applies them to any split.
//!
//! Every malformed input is a [`UeaError::Parse`] naming the file, line and
//! column, with a [`TsProblem`] saying what is wrong: a missing value `?`, a
//! non-number, an unknown header, a label not declared in `@classLabel`, a
//! case with the wrong number of dimensions, dimensions of different
//! lengths, a series of length 0. Missing values, timestamped series
//! (`@timeStamps true`) and regression files (`@targetLabel`) are refused,
//! not guessed at.
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::data::dataloader::batcher::Batcher;
//! use burn::data::dataset::Dataset;
//! use ncps::datasets::uea::{Standardization, UeaBatch, UeaBatcher, UeaDataset};
//!
//! // Header and 10 cases of the archive's JapaneseVowels training file.
//! let mut train = UeaDataset::from_file("tests/fixtures/uea/JapaneseVowels_TRAIN.ts")?;
//! assert_eq!(train.len(), 10);
//! assert_eq!(train.dims(), 12);
//! assert_eq!(train.class_names().len(), 9);
//!
//! // Fit on the training split; apply to it (and to the test split alike).
//! let standardization = Standardization::fit(&train);
//! standardization.apply(&mut train);
//!
//! let items = (0..4).map(|i| train.get(i).unwrap()).collect::<Vec<_>>();
//! let longest = items.iter().map(|item| item.length).max().unwrap();
//! let batch: UeaBatch<NdArray> = UeaBatcher.batch(items, &Default::default());
//! assert_eq!(batch.inputs.dims(), [4, longest, 12]);
//! assert_eq!(batch.lengths.dims(), [4]);
//! assert_eq!(batch.targets.dims(), [4]);
//! # Ok::<(), ncps::datasets::uea::UeaError>(())
//! ```
//!
//! The reader is plain `std` and reads the full JapaneseVowels files
//! (270 + 370 cases) in milliseconds (`cargo bench --bench uea -- DIR`
//! prints each file's parse time; docs/uea.md has the figures).

use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::TensorData;

/// Why a `.ts` file cannot be loaded.
///
/// ```
/// use ncps::datasets::uea::{TsProblem, UeaDataset, UeaError};
///
/// let text = "@classLabel true a b\n@data\n1.0,?,3.0:a\n";
/// let err = UeaDataset::parse("toy.ts", text).unwrap_err();
/// assert!(matches!(
///     err,
///     UeaError::Parse { line: 3, column: 5, problem: TsProblem::MissingValue, .. }
/// ));
/// assert_eq!(
///     err.to_string(),
///     "toy.ts:3:5: missing value `?`: missing values are not supported (impute or drop them first)"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UeaError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid `.ts` classification file.
    #[error("{}:{line}:{column}: {problem}", file.display())]
    Parse {
        /// The file (or the name given to [`UeaDataset::parse`]).
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, in characters from 1.
        column: usize,
        /// What is wrong there.
        problem: TsProblem,
    },
}

/// What is wrong at the line and column of a [`UeaError::Parse`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsProblem {
    /// Bytes that are not UTF-8.
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    /// A header the format does not have.
    #[error(
        "unknown header `@{key}` (the format's are @problemName, @timeStamps, @missing, \
         @univariate, @dimensions, @equalLength, @seriesLength, @classLabel, @targetLabel, @data)"
    )]
    UnknownHeader {
        /// The header's key, without `@`.
        key: String,
    },
    /// A header given twice.
    #[error("`@{key}` is given twice")]
    DuplicateHeader {
        /// The header's key, without `@`.
        key: String,
    },
    /// A header whose value is not what the header takes.
    #[error("`@{key}` has value `{value}`, but {expected} was expected")]
    HeaderValue {
        /// The header's key, without `@`.
        key: String,
        /// The value found.
        value: String,
        /// The valid values, in words.
        expected: &'static str,
    },
    /// Two headers that contradict each other.
    #[error("`{header}` contradicts `{earlier}` above")]
    HeaderConflict {
        /// The header line at fault.
        header: String,
        /// The earlier header it contradicts.
        earlier: String,
    },
    /// A valid `.ts` feature this classification reader does not load.
    #[error("{what} are not supported: this reader loads labelled classification series")]
    Unsupported {
        /// What, e.g. "timestamped series (`@timeStamps true`)".
        what: &'static str,
    },
    /// `@data` before a header a classification file needs.
    #[error("`@data` before `@{key}`: a classification file declares its classes first")]
    MissingHeader {
        /// The missing header's key, without `@`.
        key: &'static str,
    },
    /// A class declared twice in `@classLabel`.
    #[error("class label `{label}` is declared twice")]
    DuplicateLabel {
        /// The label.
        label: String,
    },
    /// A data line before `@data`.
    #[error("a data line before `@data`")]
    DataBeforeHeader,
    /// A header line after `@data`.
    #[error("header `@{key}` after `@data`")]
    HeaderAfterData {
        /// The header's key, without `@`.
        key: String,
    },
    /// The file ends without `@data`.
    #[error("the file ends without an `@data` line")]
    NoData,
    /// `@data` with no case after it.
    #[error("no cases after `@data`")]
    NoCases,
    /// A missing value `?`.
    #[error("missing value `?`: missing values are not supported (impute or drop them first)")]
    MissingValue,
    /// A value that is not a number.
    #[error("expected a number, found `{text}`")]
    NotANumber {
        /// The text found.
        text: String,
    },
    /// A value that is a number but not a finite `f32` (NaN, infinite, or
    /// beyond `f32::MAX`).
    #[error("`{text}` is not a finite f32")]
    NonFinite {
        /// The text found.
        text: String,
    },
    /// A case line without a class label after a last `:`.
    #[error("no class label: a case ends with `:` and its label")]
    NoLabel,
    /// A class label not declared in `@classLabel`.
    #[error("class label `{label}` is not declared in @classLabel ({declared})")]
    UnknownLabel {
        /// The label found.
        label: String,
        /// The declared labels, space-separated.
        declared: String,
    },
    /// A case with another number of dimensions than the file's.
    #[error("the case has {found} dimensions, but {declared_by} says {expected}")]
    DimensionCount {
        /// The file's number of dimensions.
        expected: usize,
        /// The case's.
        found: usize,
        /// Where `expected` comes from: `@dimensions`, `@univariate true`
        /// or the first case.
        declared_by: &'static str,
    },
    /// A dimension with no values.
    #[error("dimension {dimension} has no values (a series of length 0)")]
    EmptySeries {
        /// The dimension, from 1.
        dimension: usize,
    },
    /// Dimensions of one case with different lengths.
    #[error(
        "dimension {dimension} has {found} values, but dimension 1 has {expected}: \
         the dimensions of a case must have the same length"
    )]
    UnequalDimensions {
        /// The dimension, from 1.
        dimension: usize,
        /// The first dimension's length.
        expected: usize,
        /// This dimension's length.
        found: usize,
    },
    /// A series whose length differs from the one the header fixes.
    #[error("the series has {found} steps, but {declared_by} says {expected}")]
    SeriesLength {
        /// The length every series must have.
        expected: usize,
        /// This series' length.
        found: usize,
        /// Where `expected` comes from: `@seriesLength`, or
        /// `@equalLength true` and the first case.
        declared_by: &'static str,
    },
}

/// One case of a [`UeaDataset`].
#[derive(Clone, Debug, PartialEq)]
pub struct UeaItem {
    /// The series `[length, dims]`, row-major: step `t` of dimension `d` is
    /// `series[t * dims + d]`.
    pub series: Vec<f32>,
    /// Number of time steps (at least 1).
    pub length: usize,
    /// Number of dimensions.
    pub dims: usize,
    /// The class index: the label's position in `@classLabel`.
    pub class: usize,
}

/// A `.ts` classification file: every case's series, length and class.
///
/// Cases keep the file's order; [`UeaDataset::class_names`] keeps the order
/// of `@classLabel` (class `i` is `class_names()[i]`). Train and test files
/// of one problem declare the same labels in the same order; compare their
/// `class_names()` when the files come from elsewhere.
///
/// ```
/// use burn::data::dataset::Dataset;
/// use ncps::datasets::uea::UeaDataset;
///
/// let text = "\
/// @problemName Toy
/// @dimensions 2
/// @equalLength false
/// @classLabel true up down
/// @data
/// 0.1,0.2,0.3:1.0,1.1,1.2:up
/// 0.5,0.4:1.5,1.4:down
/// ";
/// let data = UeaDataset::parse("toy.ts", text)?;
/// assert_eq!(data.problem_name(), Some("Toy"));
/// assert_eq!(data.class_names(), ["up", "down"]);
/// let second = data.get(1).unwrap();
/// assert_eq!((second.length, second.dims, second.class), (2, 2, 1));
/// // [time, dims]: step 0 holds both dimensions' first values.
/// assert_eq!(second.series, [0.5, 1.5, 0.4, 1.4]);
/// # Ok::<(), ncps::datasets::uea::UeaError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct UeaDataset {
    problem_name: Option<String>,
    class_names: Vec<String>,
    dims: usize,
    /// Every case's `[length, dims]` series, one after the other.
    values: Vec<f32>,
    /// Case `i` holds steps `starts[i]..starts[i + 1]` of `values`.
    starts: Vec<usize>,
    classes: Vec<usize>,
}

impl UeaDataset {
    /// Reads a `.ts` file.
    ///
    /// # Errors
    /// [`UeaError::Io`] when the file cannot be read, [`UeaError::Parse`]
    /// (file, line, column, [`TsProblem`]) when it is not a valid labelled
    /// classification file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, UeaError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| UeaError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|error| {
            let valid = std::str::from_utf8(&bytes[..error.valid_up_to()])
                .expect("the prefix up to valid_up_to is UTF-8");
            let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
            UeaError::Parse {
                file: path.to_path_buf(),
                line: valid.matches('\n').count() + 1,
                column: valid[line_start..].chars().count() + 1,
                problem: TsProblem::NotUtf8,
            }
        })?;
        Self::parse(path, text)
    }

    /// Parses the text of a `.ts` file; `file` names it in errors.
    ///
    /// # Errors
    /// [`UeaError::Parse`] (file, line, column, [`TsProblem`]) when the text
    /// is not a valid labelled classification file.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Self, UeaError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = Reader::default();
        let mut lines = 0;
        for (index, raw) in text.split('\n').enumerate() {
            lines = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            reader
                .line(raw)
                .map_err(|(offset, problem)| UeaError::Parse {
                    file: file.as_ref().to_path_buf(),
                    line: index + 1,
                    column: raw[..offset].chars().count() + 1,
                    problem,
                })?;
        }
        reader.finish().map_err(|problem| UeaError::Parse {
            file: file.as_ref().to_path_buf(),
            line: lines,
            column: 1,
            problem,
        })
    }

    /// `@problemName`, when the file gives it.
    pub fn problem_name(&self) -> Option<&str> {
        self.problem_name.as_deref()
    }

    /// The class labels in `@classLabel`'s order: class `i` is
    /// `class_names()[i]`.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of dimensions (features per time step).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Each case's number of time steps, in file order.
    pub fn lengths(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.starts.windows(2).map(|w| w[1] - w[0])
    }

    /// Each case's class index, in file order.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// Case `index`'s series `[length, dims]`, row-major; `None` past the
    /// end.
    pub fn series(&self, index: usize) -> Option<&[f32]> {
        let (start, end) = (*self.starts.get(index)?, *self.starts.get(index + 1)?);
        Some(&self.values[start * self.dims..end * self.dims])
    }
}

impl Dataset<UeaItem> for UeaDataset {
    /// Case `index` (a copy of its series); `None` past the end.
    fn get(&self, index: usize) -> Option<UeaItem> {
        let series = self.series(index)?.to_vec();
        Some(UeaItem {
            length: series.len() / self.dims,
            series,
            dims: self.dims,
            class: self.classes[index],
        })
    }

    fn len(&self) -> usize {
        self.classes.len()
    }
}

/// Per-dimension mean and standard deviation, fitted on a training split.
///
/// [`Standardization::fit`] averages over every valid step of every case (a
/// [`UeaDataset`] holds no padding; [`UeaBatcher`] pads later, with zeros);
/// the standard deviation is the population one (numpy's `std`), and a
/// constant dimension gets 1 (it is centred, not scaled), as scikit-learn's
/// `StandardScaler` does.
///
/// ```
/// use ncps::datasets::uea::{Standardization, UeaDataset};
///
/// let text = "@classLabel true a\n@data\n1,2,3:10,10,10:a\n5:20:a\n";
/// let mut train = UeaDataset::parse("toy.ts", text)?;
/// let standardization = Standardization::fit(&train);
/// // Dimension 1 over its 4 valid steps: 1, 2, 3, 5.
/// assert_eq!(standardization.mean, [2.75, 12.5]);
/// assert!((standardization.std[0] - 1.479_020).abs() < 1e-6);
/// standardization.apply(&mut train);
/// assert!((train.series(1).unwrap()[0] - 1.521_278).abs() < 1e-6);
/// # Ok::<(), ncps::datasets::uea::UeaError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardization {
    /// The mean of each dimension, `[dims]`.
    pub mean: Vec<f32>,
    /// The standard deviation of each dimension (1 where it is 0), `[dims]`.
    pub std: Vec<f32>,
}

impl Standardization {
    /// The statistics of `train`'s valid steps (accumulated in `f64`).
    pub fn fit(train: &UeaDataset) -> Self {
        let dims = train.dims;
        let steps = (train.values.len() / dims) as f64;
        let mut sum = vec![0.0f64; dims];
        for step in train.values.chunks_exact(dims) {
            for (s, &x) in sum.iter_mut().zip(step) {
                *s += f64::from(x);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / steps).collect();
        let mut squares = vec![0.0f64; dims];
        for step in train.values.chunks_exact(dims) {
            for ((s, &x), m) in squares.iter_mut().zip(step).zip(&mean) {
                *s += (f64::from(x) - m).powi(2);
            }
        }
        let std = squares
            .iter()
            .map(|s| (s / steps).sqrt())
            .map(|std| if std > 0.0 { std } else { 1.0 });
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.map(|s| s as f32).collect(),
        }
    }

    /// Replaces every value `x` of dimension `d` with
    /// `(x - mean[d]) / std[d]`.
    ///
    /// # Panics
    /// When `dataset` has another number of dimensions than the split the
    /// statistics were fitted on.
    pub fn apply(&self, dataset: &mut UeaDataset) {
        assert_eq!(
            dataset.dims,
            self.mean.len(),
            "dataset has {} dimensions, but the standardization was fitted on {}",
            dataset.dims,
            self.mean.len()
        );
        for step in dataset.values.chunks_exact_mut(self.mean.len()) {
            for ((x, m), s) in step.iter_mut().zip(&self.mean).zip(&self.std) {
                *x = (*x - m) / s;
            }
        }
    }
}

/// A batch of cases, padded to its longest series.
#[derive(Clone, Debug)]
pub struct UeaBatch<B: Backend> {
    /// The series `[batch, time, dims]`, `time` the longest length in the
    /// batch; zeros after each case's length.
    pub inputs: Tensor<B, 3>,
    /// Each case's number of valid steps, `[batch]`.
    pub lengths: Tensor<B, 1, Int>,
    /// Each case's class index, `[batch]`.
    pub targets: Tensor<B, 1, Int>,
}

/// Stacks [`UeaItem`]s into a [`UeaBatch`], padding each series with zeros
/// up to the longest.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::data::dataloader::batcher::Batcher;
/// use burn::data::dataset::Dataset;
/// use ncps::datasets::uea::{UeaBatch, UeaBatcher, UeaDataset};
///
/// let text = "@classLabel true a b\n@data\n1,2,3:4,5,6:b\n7:8:a\n";
/// let data = UeaDataset::parse("toy.ts", text)?;
/// let items = vec![data.get(0).unwrap(), data.get(1).unwrap()];
/// let batch: UeaBatch<NdArray> = UeaBatcher.batch(items, &Default::default());
/// let inputs = batch.inputs.into_data().to_vec::<f32>().unwrap();
/// assert_eq!(inputs, [1., 4., 2., 5., 3., 6., /* case 2 */ 7., 8., 0., 0., 0., 0.]);
/// assert_eq!(batch.lengths.into_data().to_vec::<i64>().unwrap(), [3, 1]);
/// assert_eq!(batch.targets.into_data().to_vec::<i64>().unwrap(), [1, 0]);
/// # Ok::<(), ncps::datasets::uea::UeaError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct UeaBatcher;

impl<B: Backend> Batcher<B, UeaItem, UeaBatch<B>> for UeaBatcher {
    /// # Panics
    /// When `items` is empty, or its items disagree on `dims`, or an item's
    /// `series` is not `[length, dims]` with `length >= 1`.
    fn batch(&self, items: Vec<UeaItem>, device: &B::Device) -> UeaBatch<B> {
        assert!(
            !items.is_empty(),
            "items is empty: a batch needs at least one case"
        );
        let dims = items[0].dims;
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                item.dims, dims,
                "items[{i}] has {} dims, but items[0] has {dims}",
                item.dims
            );
            assert!(
                item.length >= 1 && item.series.len() == item.length * dims,
                "items[{i}] has {} values, but length {} x dims {dims} (length >= 1) was expected",
                item.series.len(),
                item.length
            );
        }
        let batch = items.len();
        let time = items
            .iter()
            .map(|item| item.length)
            .max()
            .expect("not empty");
        let mut inputs = vec![0.0f32; batch * time * dims];
        for (row, item) in inputs.chunks_exact_mut(time * dims).zip(&items) {
            row[..item.series.len()].copy_from_slice(&item.series);
        }
        let lengths = items.iter().map(|item| item.length as i64).collect();
        let targets = items.iter().map(|item| item.class as i64).collect();
        UeaBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [batch, time, dims]), device),
            lengths: Tensor::from_data(TensorData::new::<i64, _>(lengths, [batch]), device),
            targets: Tensor::from_data(TensorData::new::<i64, _>(targets, [batch]), device),
        }
    }
}

/// A location in a line (byte offset) and what is wrong there.
type LineError = (usize, TsProblem);

/// The byte offset of `part`, a sub-slice of `line`, in `line`.
fn offset(line: &str, part: &str) -> usize {
    let at = (part.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
    debug_assert!(at <= line.len(), "part is a sub-slice of line");
    at
}

/// The format's headers, as written in the archive's files.
const HEADERS: [&str; 10] = [
    "problemName",
    "timeStamps",
    "missing",
    "univariate",
    "dimensions",
    "equalLength",
    "seriesLength",
    "classLabel",
    "targetLabel",
    "data",
];

/// The header, then the cases read so far.
#[derive(Default)]
struct Reader {
    in_data: bool,
    /// Each header seen (its key in [`HEADERS`]) and its line, trimmed.
    seen: Vec<(&'static str, String)>,
    problem_name: Option<String>,
    class_names: Option<Vec<String>>,
    /// The number of dimensions and what declared it.
    dims: Option<(usize, &'static str)>,
    univariate: Option<bool>,
    equal_length: Option<bool>,
    /// The length of every series and what declared it.
    length: Option<(usize, &'static str)>,
    values: Vec<f32>,
    starts: Vec<usize>,
    classes: Vec<usize>,
    /// One case's values as the file orders them: dimension after dimension.
    scratch: Vec<f32>,
}

impl Reader {
    /// One line, without its line break.
    fn line(&mut self, raw: &str) -> Result<(), LineError> {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let at = offset(raw, line);
        match (line.strip_prefix('@'), self.in_data) {
            (Some(header), false) => self.header(raw, at, header),
            (Some(header), true) => {
                let key = header.split(char::is_whitespace).next().unwrap_or("");
                let key = key.to_string();
                Err((at, TsProblem::HeaderAfterData { key }))
            }
            (None, false) => Err((at, TsProblem::DataBeforeHeader)),
            (None, true) => self.case(raw, line),
        }
    }

    /// `header` is the text after the `@` at byte `at` of `raw`.
    fn header(&mut self, raw: &str, at: usize, header: &str) -> Result<(), LineError> {
        // The key runs up to the first whitespace (empty in `@ data`).
        let key_text = header.split(char::is_whitespace).next().unwrap_or("");
        let value = header[key_text.len()..].trim();
        let value_at = offset(raw, value);
        let Some(key) = HEADERS
            .into_iter()
            .find(|known| known.eq_ignore_ascii_case(key_text))
        else {
            let key = key_text.to_string();
            return Err((at, TsProblem::UnknownHeader { key }));
        };
        if self.seen.iter().any(|(seen, _)| *seen == key) {
            let key = key.to_string();
            return Err((at, TsProblem::DuplicateHeader { key }));
        }
        self.seen.push((key, raw.trim().to_string()));
        let bad_value = |expected| {
            let problem = TsProblem::HeaderValue {
                key: key.to_string(),
                value: value.to_string(),
                expected,
            };
            (value_at, problem)
        };
        let boolean = || match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad_value("`true` or `false`")),
        };
        let positive = || match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad_value("a positive integer")),
        };
        let unsupported = |what| Err((at, TsProblem::Unsupported { what }));
        match key {
            "problemName" if value.is_empty() => return Err(bad_value("a name")),
            "problemName" => self.problem_name = Some(value.to_string()),
            "timeStamps" if boolean()? => {
                return unsupported("timestamped series (`@timeStamps true`)");
            }
            // `@missing true` announces `?` values: each is refused where it
            // stands.
            "timeStamps" | "missing" => _ = boolean()?,
            "univariate" => {
                let univariate = boolean()?;
                if univariate && self.dims.is_some_and(|(dims, _)| dims != 1) {
                    return Err((at, self.conflict("dimensions")));
                }
                self.univariate = Some(univariate);
            }
            "dimensions" => {
                let dims = positive()?;
                if dims != 1 && self.univariate == Some(true) {
                    return Err((at, self.conflict("univariate")));
                }
                self.dims = Some((dims, "@dimensions"));
            }
            "equalLength" => self.equal_length = Some(boolean()?),
            "seriesLength" => self.length = Some((positive()?, "@seriesLength")),
            "classLabel" => {
                let mut words = value.split_whitespace();
                match words.next().map(str::to_ascii_lowercase).as_deref() {
                    Some("true") => {}
                    Some("false") => return unsupported("unlabelled cases (`@classLabel false`)"),
                    _ => return Err(bad_value("`true` and the class labels")),
                }
                let mut names: Vec<String> = Vec::new();
                for word in words {
                    if names.iter().any(|name| name == word) {
                        let label = word.to_string();
                        return Err((offset(raw, word), TsProblem::DuplicateLabel { label }));
                    }
                    names.push(word.to_string());
                }
                if names.is_empty() {
                    return Err(bad_value("`true` and the class labels"));
                }
                self.class_names = Some(names);
            }
            "targetLabel" => return unsupported("regression targets (`@targetLabel`)"),
            "data" => self.data(at)?,
            _ => unreachable!("every key of HEADERS has its arm"),
        }
        Ok(())
    }

    /// The last header line seen contradicts the one of `earlier`.
    fn conflict(&self, earlier: &str) -> TsProblem {
        let line = |key: &str| {
            let found = self.seen.iter().rev().find(|(seen, _)| *seen == key);
            found.expect("both headers were seen").1.clone()
        };
        let header = self.seen.last().expect("this header was pushed").1.clone();
        TsProblem::HeaderConflict {
            header,
            earlier: line(earlier),
        }
    }

    /// `@data` at byte `at`: the header is complete.
    fn data(&mut self, at: usize) -> Result<(), LineError> {
        if self.class_names.is_none() {
            let key = "classLabel";
            return Err((at, TsProblem::MissingHeader { key }));
        }
        if self.univariate == Some(true) && self.dims.is_none() {
            self.dims = Some((1, "@univariate true"));
        }
        if self.equal_length == Some(false) {
            // Unequal lengths: a @seriesLength (the longest, in some
            // writers) fixes nothing.
            self.length = None;
        }
        self.starts.push(0);
        self.in_data = true;
        Ok(())
    }

    /// One case: `line` is `raw` trimmed.
    fn case(&mut self, raw: &str, line: &str) -> Result<(), LineError> {
        let line_at = offset(raw, line);
        let (body, label) = line.rsplit_once(':').ok_or((line_at, TsProblem::NoLabel))?;
        let label = label.trim();
        if label.is_empty() {
            return Err((offset(raw, label), TsProblem::NoLabel));
        }
        let found = body.split(':').count();
        let (dims, declared_by) = *self.dims.get_or_insert((found, "the first case"));
        if found != dims {
            let problem = TsProblem::DimensionCount {
                expected: dims,
                found,
                declared_by,
            };
            return Err((line_at, problem));
        }
        self.scratch.clear();
        let mut length = 0;
        for (dimension, text) in body.split(':').enumerate() {
            let at = offset(raw, text.trim_start());
            if text.trim().is_empty() {
                let dimension = dimension + 1;
                return Err((at, TsProblem::EmptySeries { dimension }));
            }
            let before = self.scratch.len();
            for value in text.split(',') {
                let value = value.trim();
                let x = number(value).map_err(|problem| (offset(raw, value), problem))?;
                self.scratch.push(x);
            }
            let count = self.scratch.len() - before;
            if dimension == 0 {
                length = count;
            } else if count != length {
                let problem = TsProblem::UnequalDimensions {
                    dimension: dimension + 1,
                    expected: length,
                    found: count,
                };
                return Err((at, problem));
            }
        }
        if self.equal_length == Some(true) && self.length.is_none() {
            self.length = Some((length, "@equalLength true and the first case"));
        }
        if let Some((expected, declared_by)) = self.length
            && length != expected
        {
            let problem = TsProblem::SeriesLength {
                expected,
                found: length,
                declared_by,
            };
            return Err((line_at, problem));
        }
        let names = self.class_names.as_ref().expect("checked at @data");
        let Some(class) = names.iter().position(|name| name == label) else {
            let problem = TsProblem::UnknownLabel {
                label: label.to_string(),
                declared: names.join(" "),
            };
            return Err((offset(raw, label), problem));
        };
        // Dimension-major in the file, time-major here.
        self.values.reserve(self.scratch.len());
        for t in 0..length {
            let step = (0..dims).map(|d| self.scratch[d * length + t]);
            self.values.extend(step);
        }
        let steps = self.starts.last().expect("@data pushed the first start") + length;
        self.starts.push(steps);
        self.classes.push(class);
        Ok(())
    }

    fn finish(self) -> Result<UeaDataset, TsProblem> {
        if !self.in_data {
            return Err(TsProblem::NoData);
        }
        if self.classes.is_empty() {
            return Err(TsProblem::NoCases);
        }
        Ok(UeaDataset {
            problem_name: self.problem_name,
            class_names: self.class_names.expect("checked at @data"),
            dims: self.dims.expect("set by the first case").0,
            values: self.values,
            starts: self.starts,
            classes: self.classes,
        })
    }
}

/// One value: a finite `f32`.
fn number(text: &str) -> Result<f32, TsProblem> {
    if text == "?" {
        return Err(TsProblem::MissingValue);
    }
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(TsProblem::NonFinite {
            text: text.to_string(),
        }),
        Err(_) => Err(TsProblem::NotANumber {
            text: text.to_string(),
        }),
    }
}
