//! The synapse matrix: a dense `[src][dest]` table of polarities.

use std::fmt;

use super::WiringError;

/// The polarity of a synapse: what the presynaptic neuron does to the
/// postsynaptic one.
///
/// In an LTC cell the polarity initialises the synapse's reversal potential
/// (`erev`): excitatory synapses pull the membrane potential up, inhibitory
/// ones pull it down.
///
/// ```
/// use ncps::wirings::Polarity;
///
/// assert_eq!(Polarity::from_entry(-1), Some(Polarity::Inhibitory));
/// assert_eq!(Polarity::Excitatory.sign(), 1);
/// assert_eq!(Polarity::from_entry(0), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// `+1`: the synapse excites its target.
    Excitatory,
    /// `-1`: the synapse inhibits its target.
    Inhibitory,
}

impl Polarity {
    /// The matrix entry of this polarity: `+1` or `-1`.
    pub fn sign(self) -> i8 {
        match self {
            Polarity::Excitatory => 1,
            Polarity::Inhibitory => -1,
        }
    }

    /// The polarity of a matrix entry; `None` for `0` (no synapse) and for
    /// any value other than `-1`, `0`, `+1`.
    pub fn from_entry(entry: i8) -> Option<Self> {
        match entry {
            1 => Some(Polarity::Excitatory),
            -1 => Some(Polarity::Inhibitory),
            _ => None,
        }
    }

    /// `"excitatory"` or `"inhibitory"`, as upstream's graph labels edges.
    pub fn name(self) -> &'static str {
        match self {
            Polarity::Excitatory => "excitatory",
            Polarity::Inhibitory => "inhibitory",
        }
    }
}

impl fmt::Display for Polarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense synapse matrix of shape `[rows, cols]`, indexed `[src][dest]`,
/// with entries `-1` (inhibitory synapse), `0` (no synapse) or `+1`
/// (excitatory synapse).
///
/// The neuron-to-neuron matrix of a wiring is `[units, units]`; the sensory
/// matrix is `[input_dim, units]`.
///
/// ```
/// use ncps::wirings::{Polarity, SynapseMatrix};
///
/// let mut m = SynapseMatrix::zeros(2, 3);
/// m.set(0, 2, Some(Polarity::Inhibitory));
/// m.set(1, 0, Some(Polarity::Excitatory));
/// assert_eq!(m.synapse_count(), 2);
/// assert_eq!(m.get(0, 2), -1);
/// assert_eq!(m.to_rows(), vec![vec![0, 0, -1], vec![1, 0, 0]]);
/// assert_eq!(m.mask_f32(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "Vec<Vec<i8>>", try_from = "Vec<Vec<i8>>")]
pub struct SynapseMatrix {
    rows: usize,
    cols: usize,
    entries: Vec<i8>,
}

impl SynapseMatrix {
    /// A `[rows, cols]` matrix without any synapse.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            entries: vec![0; rows * cols],
        }
    }

    /// Builds a matrix from its rows (`rows[src][dest]`), as upstream's
    /// `adjacency_matrix.tolist()` stores it.
    ///
    /// `what` names the matrix in errors. Fails when the rows are not all
    /// `cols` long or an entry is not `-1`, `0` or `+1`.
    ///
    /// ```
    /// use ncps::wirings::SynapseMatrix;
    ///
    /// let m = SynapseMatrix::from_rows("adjacency_matrix", &[vec![0, 1], vec![-1, 0]], 2).unwrap();
    /// assert_eq!(m.shape(), [2, 2]);
    /// assert!(SynapseMatrix::from_rows("adjacency_matrix", &[vec![0, 2]], 2).is_err());
    /// ```
    pub fn from_rows(what: &str, rows: &[Vec<i8>], cols: usize) -> Result<Self, WiringError> {
        // Sized by the data at hand, not by `cols` (which a file states).
        let mut entries = Vec::with_capacity(rows.iter().map(Vec::len).sum());
        for (src, row) in rows.iter().enumerate() {
            if row.len() != cols {
                return Err(WiringError::MatrixShape {
                    matrix: what.to_string(),
                    expected: [rows.len(), cols],
                    found: format!("row {src} has {} entries", row.len()),
                });
            }
            for (dest, &entry) in row.iter().enumerate() {
                if !(-1..=1).contains(&entry) {
                    return Err(WiringError::MatrixEntry {
                        matrix: what.to_string(),
                        src,
                        dest,
                        value: i64::from(entry),
                    });
                }
            }
            entries.extend_from_slice(row);
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            entries,
        })
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// Number of rows (presynaptic neurons or inputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (postsynaptic neurons).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The entry `[src][dest]`: `-1`, `0` or `+1`.
    ///
    /// # Panics
    /// When `src` or `dest` is out of range.
    pub fn get(&self, src: usize, dest: usize) -> i8 {
        assert!(
            src < self.rows && dest < self.cols,
            "synapse ({src}, {dest}) is outside a {}x{} matrix",
            self.rows,
            self.cols
        );
        self.entries[src * self.cols + dest]
    }

    /// The polarity of the synapse `src -> dest`, `None` without one.
    pub fn polarity(&self, src: usize, dest: usize) -> Option<Polarity> {
        Polarity::from_entry(self.get(src, dest))
    }

    /// Sets (or with `None` removes) the synapse `src -> dest`.
    ///
    /// # Panics
    /// When `src` or `dest` is out of range.
    pub fn set(&mut self, src: usize, dest: usize, polarity: Option<Polarity>) {
        assert!(
            src < self.rows && dest < self.cols,
            "synapse ({src}, {dest}) is outside a {}x{} matrix",
            self.rows,
            self.cols
        );
        self.entries[src * self.cols + dest] = polarity.map_or(0, Polarity::sign);
    }

    /// Number of synapses (non-zero entries).
    pub fn synapse_count(&self) -> usize {
        self.entries.iter().filter(|&&e| e != 0).count()
    }

    /// Every synapse as `(src, dest, polarity)`, row by row.
    pub fn synapses(&self) -> impl Iterator<Item = (usize, usize, Polarity)> + '_ {
        self.entries.iter().enumerate().filter_map(move |(i, &e)| {
            Polarity::from_entry(e).map(|p| (i / self.cols, i % self.cols, p))
        })
    }

    /// The entries row-major, `rows * cols` long.
    pub fn entries(&self) -> &[i8] {
        &self.entries
    }

    /// The entries as nested rows, the layout of upstream's JSON.
    pub fn to_rows(&self) -> Vec<Vec<i8>> {
        if self.cols == 0 {
            return vec![Vec::new(); self.rows];
        }
        self.entries.chunks(self.cols).map(<[i8]>::to_vec).collect()
    }

    /// The entries as floats, row-major: the initial reversal potentials
    /// (`erev`) of an LTC cell.
    pub fn to_f32(&self) -> Vec<f32> {
        self.entries.iter().map(|&e| f32::from(e)).collect()
    }

    /// `|entries|` as floats, row-major: `1.0` where a synapse exists. This is
    /// the sparsity mask the cells multiply their synaptic weights with.
    pub fn mask_f32(&self) -> Vec<f32> {
        self.entries.iter().map(|&e| f32::from(e.abs())).collect()
    }
}

impl fmt::Debug for SynapseMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SynapseMatrix {}x{} ", self.rows, self.cols)?;
        f.debug_list().entries(self.to_rows()).finish()
    }
}

impl From<SynapseMatrix> for Vec<Vec<i8>> {
    fn from(matrix: SynapseMatrix) -> Self {
        matrix.to_rows()
    }
}

impl TryFrom<Vec<Vec<i8>>> for SynapseMatrix {
    type Error = WiringError;

    /// The rows of a matrix; all must be as long as the first.
    fn try_from(rows: Vec<Vec<i8>>) -> Result<Self, WiringError> {
        let cols = rows.first().map_or(0, Vec::len);
        Self::from_rows("synapse matrix", &rows, cols)
    }
}
