//! The wiring as a petgraph graph.

use std::fmt;

use petgraph::graph::DiGraph;

use super::DrawError;
use crate::wirings::{NeuronType, Polarity, Wiring};

/// What a graph node is: an input (sensory neuron) or a neuron of the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// An input feature.
    Sensory,
    /// A neuron of the wiring, with its type.
    Neuron(NeuronType),
}

impl NodeKind {
    /// The legend entry, e.g. `"Sensory neurons"` or `"Motor neurons"`.
    pub fn legend_label(self) -> &'static str {
        match self {
            NodeKind::Sensory => "Sensory neurons",
            NodeKind::Neuron(t) => t.legend_label(),
        }
    }
}

/// A node of a [`WiringGraph`]: its kind and its index (input index for
/// sensory nodes, neuron id otherwise).
///
/// ```
/// use ncps::wirings::{GraphNode, NeuronType, NodeKind};
///
/// let node = GraphNode { kind: NodeKind::Neuron(NeuronType::Motor), id: 0 };
/// assert_eq!(node.to_string(), "neuron_0");
/// assert_eq!(GraphNode { kind: NodeKind::Sensory, id: 1 }.to_string(), "sensory_1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GraphNode {
    /// Sensory input or neuron (with type).
    pub kind: NodeKind,
    /// Input index or neuron id.
    pub id: usize,
}

impl fmt::Display for GraphNode {
    /// Upstream's node names: `sensory_<i>` and `neuron_<i>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            NodeKind::Sensory => write!(f, "sensory_{}", self.id),
            NodeKind::Neuron(_) => write!(f, "neuron_{}", self.id),
        }
    }
}

/// The circuit as a directed graph: one node per neuron (node index = neuron
/// id), then one per input (node index = `units + input`), and one edge per
/// synapse weighted with its polarity.
pub type WiringGraph = DiGraph<GraphNode, Polarity>;

/// Builds the [`WiringGraph`] of a built wiring; see [`Draw::to_graph`](super::Draw::to_graph).
pub(crate) fn to_graph<W: Wiring + ?Sized>(wiring: &W) -> Result<WiringGraph, DrawError> {
    let sensory = wiring
        .sensory_adjacency_matrix()
        .ok_or(DrawError::NotBuilt)?;
    let adjacency = wiring.adjacency_matrix();
    let units = wiring.units();
    let mut graph = WiringGraph::with_capacity(
        units + sensory.rows(),
        adjacency.synapse_count() + sensory.synapse_count(),
    );
    let neurons: Vec<_> = (0..units)
        .map(|id| {
            graph.add_node(GraphNode {
                kind: NodeKind::Neuron(wiring.neuron_type(id)),
                id,
            })
        })
        .collect();
    let inputs: Vec<_> = (0..sensory.rows())
        .map(|id| {
            graph.add_node(GraphNode {
                kind: NodeKind::Sensory,
                id,
            })
        })
        .collect();
    for (src, dest, polarity) in sensory.synapses() {
        graph.add_edge(inputs[src], neurons[dest], polarity);
    }
    for (src, dest, polarity) in adjacency.synapses() {
        graph.add_edge(neurons[src], neurons[dest], polarity);
    }
    Ok(graph)
}
