//! Drawing a wiring: its petgraph graph, graph layouts and an SVG rendering
//! (upstream's `get_graph` and `draw_graph`), behind the default cargo
//! feature `draw`, which owns the `petgraph` and `plotters` dependencies.
//!
//! The [`Draw`] extension trait gives every [`Wiring`] these methods
//! (`use ncps::wirings::Draw;`), so the core trait stays free of rendering.
//!
//! ```
//! use ncps::wirings::{AutoNCP, Draw, DrawOptions, Layout, Wiring};
//!
//! let mut wiring = AutoNCP::new(16, 1)?;
//! wiring.build(2)?;
//! let svg = wiring.draw_graph(&DrawOptions::default().with_layout(Layout::KamadaKawai))?;
//! assert!(svg.contains("Command neurons"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod graph;
mod layout;
mod svg;

use std::path::{Path, PathBuf};

pub use graph::{GraphNode, NodeKind, WiringGraph};
pub use layout::Layout;
pub use svg::{Color, DrawOptions, NeuronColors, SynapseColors};

use super::Wiring;

/// Why a wiring could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrawError {
    /// The wiring has no sensory synapses yet.
    #[error("the wiring is not built yet: call build(input_dim) before drawing it")]
    NotBuilt,
    /// A layout name [`Layout`]'s `FromStr` does not know.
    #[error(
        "unknown layout {0:?}: expected one of shell, circular, spiral, random, spring, kamada_kawai, spectral"
    )]
    UnknownLayout(String),
    /// A color name [`Color`]'s `FromStr` does not know.
    #[error("unknown color {0:?}: use #rrggbb or a name such as tab:blue, cyan, red")]
    UnknownColor(String),
    /// The SVG backend failed.
    #[error("drawing failed: {0}")]
    Render(String),
    /// Writing the SVG file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Graph and drawing methods for every [`Wiring`] (a blanket
/// implementation): `use ncps::wirings::Draw;`.
pub trait Draw: Wiring {
    /// The circuit as a petgraph [`WiringGraph`]: one node per neuron (node
    /// index = neuron id), then one per input, one edge per synapse weighted
    /// with its [`Polarity`](super::Polarity) (upstream's `get_graph`).
    /// Fails before `build`.
    ///
    /// ```
    /// use ncps::wirings::{Draw, FullyConnected, Wiring};
    ///
    /// let mut wiring = FullyConnected::new(4, 1)?;
    /// wiring.build(2)?;
    /// let graph = wiring.to_graph()?;
    /// assert_eq!(graph.node_count(), 4 + 2);
    /// assert_eq!(graph.edge_count(), 16 + 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn to_graph(&self) -> Result<WiringGraph, DrawError> {
        graph::to_graph(self)
    }

    /// Renders the circuit as an SVG document: one circle per neuron and
    /// input colored by type, one arrow per synapse colored by polarity, and
    /// a legend naming each neuron type present. Fails before `build`.
    fn draw_graph(&self, options: &DrawOptions) -> Result<String, DrawError> {
        svg::draw_svg(self, options)
    }

    /// [`draw_graph`](Self::draw_graph) written to an SVG file.
    fn save_svg(&self, path: &Path, options: &DrawOptions) -> Result<(), DrawError> {
        svg::write_svg(path, &self.draw_graph(options)?)
    }
}

impl<W: Wiring + ?Sized> Draw for W {}
