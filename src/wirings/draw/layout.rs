//! Graph layouts for [`draw_graph`](super::Draw::draw_graph): where each
//! node of a [`WiringGraph`] goes.
//!
//! No maintained Rust crate offers networkx's layouts, so they are written
//! here, each after the networkx algorithm of the same name. Every layout
//! returns one `(x, y)` per node index, centred and scaled so that the
//! largest coordinate is 1 in absolute value.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::str::FromStr;

use rand::RngExt;

use super::{DrawError, NodeKind, WiringGraph};
use crate::wirings::{NeuronType, rng};

/// How [`draw_graph`](super::Draw::draw_graph) places the nodes; upstream's
/// `layout=` names parse with [`str::parse`].
///
/// ```
/// use ncps::wirings::Layout;
///
/// assert_eq!("shell".parse::<Layout>()?, Layout::Shell);
/// assert_eq!("kamada".parse::<Layout>()?, Layout::KamadaKawai);
/// assert_eq!(Layout::default(), Layout::Shell);
/// assert!("grid".parse::<Layout>().is_err());
/// # Ok::<(), ncps::wirings::DrawError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Concentric circles by neuron type: motor innermost, then command,
    /// inter, and the sensory inputs outermost.
    #[default]
    Shell,
    /// All nodes on one circle, neurons first, then inputs.
    Circular,
    /// An Archimedean spiral with equidistant nodes.
    Spiral,
    /// Uniformly random positions from a seed.
    Random {
        /// Seed of the positions.
        seed: u64,
    },
    /// Fruchterman-Reingold force-directed placement from a seeded start.
    Spring {
        /// Seed of the initial positions.
        seed: u64,
    },
    /// Kamada-Kawai: Euclidean distances match graph distances (stress
    /// majorization from a circular start).
    KamadaKawai,
    /// The Laplacian's eigenvectors of the two smallest non-zero eigenvalues.
    Spectral,
}

impl FromStr for Layout {
    type Err = DrawError;

    /// `shell`, `circular`, `spiral`, `random` (seed 0), `spring` (seed 0),
    /// `kamada_kawai` (or upstream's `kamada`), `spectral`.
    fn from_str(name: &str) -> Result<Self, DrawError> {
        Ok(match name {
            "shell" => Layout::Shell,
            "circular" => Layout::Circular,
            "spiral" => Layout::Spiral,
            "random" => Layout::Random { seed: 0 },
            "spring" => Layout::Spring { seed: 0 },
            "kamada_kawai" | "kamada" => Layout::KamadaKawai,
            "spectral" => Layout::Spectral,
            other => return Err(DrawError::UnknownLayout(other.to_string())),
        })
    }
}

impl Layout {
    /// The position of every node of `graph`, by node index, in `[-1, 1]²`.
    pub fn positions(self, graph: &WiringGraph) -> Vec<[f64; 2]> {
        let n = graph.node_count();
        let positions = match self {
            Layout::Shell => shell(graph),
            Layout::Circular => circle(n, 0.0),
            Layout::Spiral => spiral(n),
            Layout::Random { seed } => random_positions(n, seed),
            Layout::Spring { seed } => spring(graph, seed),
            Layout::KamadaKawai => kamada_kawai(graph),
            Layout::Spectral => spectral(graph),
        };
        rescale(positions)
    }
}

/// Centres the points and scales the largest coordinate to 1.
fn rescale(mut positions: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    let n = positions.len().max(1) as f64;
    let mean = positions
        .iter()
        .fold([0.0, 0.0], |m, p| [m[0] + p[0] / n, m[1] + p[1] / n]);
    let mut largest: f64 = 0.0;
    for p in &mut positions {
        *p = [p[0] - mean[0], p[1] - mean[1]];
        largest = largest.max(p[0].abs()).max(p[1].abs());
    }
    if largest > 0.0 {
        for p in &mut positions {
            *p = [p[0] / largest, p[1] / largest];
        }
    }
    positions
}

fn circle(n: usize, phase: f64) -> Vec<[f64; 2]> {
    (0..n)
        .map(|i| {
            let angle = phase + TAU * i as f64 / n as f64;
            [angle.cos(), angle.sin()]
        })
        .collect()
}

fn shell(graph: &WiringGraph) -> Vec<[f64; 2]> {
    let order = [
        NodeKind::Neuron(NeuronType::Motor),
        NodeKind::Neuron(NeuronType::Command),
        NodeKind::Neuron(NeuronType::Inter),
        NodeKind::Sensory,
    ];
    let shells: Vec<Vec<usize>> = order
        .iter()
        .map(|&kind| {
            graph
                .node_indices()
                .filter(|&i| graph[i].kind == kind)
                .map(|i| i.index())
                .collect::<Vec<_>>()
        })
        .filter(|shell| !shell.is_empty())
        .collect();
    let mut positions = vec![[0.0, 0.0]; graph.node_count()];
    // A lone innermost node sits in the centre, as in networkx.
    let centred = usize::from(shells.first().is_some_and(|s| s.len() == 1));
    for (ring, nodes) in shells.iter().enumerate() {
        let radius = (ring + 1 - centred) as f64;
        // Offset alternate rings by half a step so edges between rings fan out.
        let phase = if ring % 2 == 1 {
            TAU / (2 * nodes.len()) as f64
        } else {
            0.0
        };
        for (&node, p) in nodes.iter().zip(circle(nodes.len(), phase)) {
            positions[node] = [radius * p[0], radius * p[1]];
        }
    }
    positions
}

/// networkx's `spiral_layout(equidistant=True)`.
fn spiral(n: usize) -> Vec<[f64; 2]> {
    let (chord, step) = (1.0, 0.5);
    let mut theta: f64 = 0.35;
    theta += chord / (step * theta);
    (0..n)
        .map(|_| {
            let r = step * theta;
            theta += chord / r;
            [theta.cos() * r, theta.sin() * r]
        })
        .collect()
}

fn random_positions(n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut draws = rng::seeded(seed, rng::INTERNAL_STREAM);
    (0..n)
        .map(|_| [draws.random::<f64>(), draws.random::<f64>()])
        .collect()
}

/// The undirected neighbours of every node, without self loops or repeats.
fn neighbours(graph: &WiringGraph) -> Vec<Vec<usize>> {
    let mut adjacent = vec![Vec::new(); graph.node_count()];
    for edge in graph.raw_edges() {
        let (a, b) = (edge.source().index(), edge.target().index());
        if a != b {
            adjacent[a].push(b);
            adjacent[b].push(a);
        }
    }
    for list in &mut adjacent {
        list.sort_unstable();
        list.dedup();
    }
    adjacent
}

/// networkx's `spring_layout`: Fruchterman-Reingold with linear cooling.
fn spring(graph: &WiringGraph, seed: u64) -> Vec<[f64; 2]> {
    let n = graph.node_count();
    let adjacent = neighbours(graph);
    let mut pos = random_positions(n, seed);
    if n < 2 {
        return pos;
    }
    let k = (1.0 / n as f64).sqrt();
    let iterations = 50;
    let mut temperature = 0.1;
    let cooling = temperature / (iterations + 1) as f64;
    for _ in 0..iterations {
        let mut shift = vec![[0.0f64; 2]; n];
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let d = [pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]];
                let dist = (d[0] * d[0] + d[1] * d[1]).sqrt().max(0.01);
                let attract = if adjacent[i].binary_search(&j).is_ok() {
                    dist * dist / k
                } else {
                    0.0
                };
                let force = k * k / dist - attract;
                shift[i][0] += d[0] / dist * force;
                shift[i][1] += d[1] / dist * force;
            }
        }
        for (p, s) in pos.iter_mut().zip(&shift) {
            let length = (s[0] * s[0] + s[1] * s[1]).sqrt().max(0.01);
            let step = length.min(temperature);
            p[0] += s[0] / length * step;
            p[1] += s[1] / length * step;
        }
        temperature -= cooling;
    }
    pos
}

/// Shortest undirected path lengths (breadth-first); unreachable pairs get
/// one more than the longest finite distance.
fn graph_distances(graph: &WiringGraph) -> Vec<Vec<f64>> {
    let n = graph.node_count();
    let adjacent = neighbours(graph);
    let mut dist = vec![vec![f64::INFINITY; n]; n];
    for (source, row) in dist.iter_mut().enumerate() {
        row[source] = 0.0;
        let mut queue = VecDeque::from([source]);
        while let Some(u) = queue.pop_front() {
            for &v in &adjacent[u] {
                if row[v].is_infinite() {
                    row[v] = row[u] + 1.0;
                    queue.push_back(v);
                }
            }
        }
    }
    let longest = dist
        .iter()
        .flatten()
        .copied()
        .filter(|d| d.is_finite())
        .fold(1.0, f64::max);
    for d in dist.iter_mut().flatten() {
        if d.is_infinite() {
            *d = longest + 1.0;
        }
    }
    dist
}

/// Kamada-Kawai's energy (stress with weights `d⁻²`) minimised by
/// localized stress majorization (Gansner, Koren, North 2004).
fn kamada_kawai(graph: &WiringGraph) -> Vec<[f64; 2]> {
    let n = graph.node_count();
    let dist = graph_distances(graph);
    let scale = dist.iter().flatten().copied().fold(1.0, f64::max);
    let mut pos: Vec<[f64; 2]> = circle(n, 0.0)
        .into_iter()
        .map(|p| [p[0] * scale, p[1] * scale])
        .collect();
    for _ in 0..300 {
        for i in 0..n {
            let (mut sum, mut weights) = ([0.0, 0.0], 0.0);
            for j in (0..n).filter(|&j| j != i) {
                let w = dist[i][j].powi(-2);
                let d = [pos[i][0] - pos[j][0], pos[i][1] - pos[j][1]];
                let norm = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-9);
                sum[0] += w * (pos[j][0] + dist[i][j] * d[0] / norm);
                sum[1] += w * (pos[j][1] + dist[i][j] * d[1] / norm);
                weights += w;
            }
            if weights > 0.0 {
                pos[i] = [sum[0] / weights, sum[1] / weights];
            }
        }
    }
    pos
}

/// The eigenvectors of the graph Laplacian `D - A` (undirected) for the
/// second and third smallest eigenvalues.
fn spectral(graph: &WiringGraph) -> Vec<[f64; 2]> {
    let n = graph.node_count();
    if n < 3 {
        return circle(n, 0.0);
    }
    let adjacent = neighbours(graph);
    let mut laplacian = vec![vec![0.0; n]; n];
    for (i, list) in adjacent.iter().enumerate() {
        laplacian[i][i] = list.len() as f64;
        for &j in list {
            laplacian[i][j] = -1.0;
        }
    }
    let (values, vectors) = symmetric_eigen(laplacian);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let (u, v) = (order[1], order[2]);
    (0..n).map(|i| [vectors[i][u], vectors[i][v]]).collect()
}

/// Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic
/// Jacobi rotations.
fn symmetric_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = a.len();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (upper, lower) = a.split_at_mut(q);
                for (apk, aqk) in upper[p].iter_mut().zip(lower[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i][i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_laplacian() {
        // Path graph 0-1-2: eigenvalues 0, 1, 3.
        let l = vec![
            vec![1.0, -1.0, 0.0],
            vec![-1.0, 2.0, -1.0],
            vec![0.0, -1.0, 1.0],
        ];
        let (mut values, vectors) = symmetric_eigen(l.clone());
        // A v = lambda v for every column.
        for (k, &lambda) in values.iter().enumerate() {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| l[i][j] * vectors[j][k]).sum();
                assert!((av - lambda * vectors[i][k]).abs() < 1e-9);
            }
        }
        values.sort_by(f64::total_cmp);
        for (got, want) in values.iter().zip([0.0, 1.0, 3.0]) {
            assert!((got - want).abs() < 1e-9, "{values:?}");
        }
    }

    /// Checks `A v = λ v` for every (value, column) pair and that the
    /// columns are orthonormal.
    fn check_eigen(a: &[Vec<f64>], values: &[f64], vectors: &[Vec<f64>]) {
        let n = a.len();
        assert_eq!((values.len(), vectors.len()), (n, n));
        for (k, &lambda) in values.iter().enumerate() {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i][j] * vectors[j][k]).sum();
                let lv = lambda * vectors[i][k];
                assert!(
                    (av - lv).abs() < 1e-9,
                    "(A v)[{i}] = {av}, λ v = {lv} for λ = {lambda}"
                );
            }
        }
        for k in 0..n {
            for l in 0..n {
                let dot: f64 = (0..n).map(|i| vectors[i][k] * vectors[i][l]).sum();
                let want = f64::from(u8::from(k == l));
                assert!((dot - want).abs() < 1e-9, "columns {k} and {l}: dot {dot}");
            }
        }
    }

    fn sorted(mut values: Vec<f64>) -> Vec<f64> {
        values.sort_by(f64::total_cmp);
        values
    }

    #[test]
    fn jacobi_gives_orthonormal_eigenvectors_of_a_tridiagonal_matrix() {
        // Eigenvalues 2 - √2, 2, 2 + √2.
        let a = vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 1.0],
            vec![0.0, 1.0, 2.0],
        ];
        let (values, vectors) = symmetric_eigen(a.clone());
        check_eigen(&a, &values, &vectors);
        let want = [2.0 - 2f64.sqrt(), 2.0, 2.0 + 2f64.sqrt()];
        for (got, want) in sorted(values).iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn jacobi_handles_a_repeated_eigenvalue() {
        // All-ones plus the identity: eigenvalues 1, 1 and 4.
        let a = vec![
            vec![2.0, 1.0, 1.0],
            vec![1.0, 2.0, 1.0],
            vec![1.0, 1.0, 2.0],
        ];
        let (values, vectors) = symmetric_eigen(a.clone());
        check_eigen(&a, &values, &vectors);
        for (got, want) in sorted(values).iter().zip([1.0, 1.0, 4.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn jacobi_leaves_a_diagonal_matrix_as_it_is() {
        // Eigenvalues in diagonal order, not sorted: callers sort.
        let a = vec![
            vec![3.0, 0.0, 0.0],
            vec![0.0, -1.0, 0.0],
            vec![0.0, 0.0, 2.0],
        ];
        let (values, vectors) = symmetric_eigen(a.clone());
        assert_eq!(values, vec![3.0, -1.0, 2.0]);
        assert_eq!(
            vectors,
            vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 1.0, 0.0],
                vec![0.0, 0.0, 1.0],
            ]
        );
        assert_eq!(
            symmetric_eigen(vec![vec![5.0]]),
            (vec![5.0], vec![vec![1.0]])
        );
    }

    #[test]
    fn jacobi_diagonalises_a_larger_dense_matrix() {
        // A fixed dense symmetric 7x7 matrix; the eigenvalues sum to its trace.
        let n = 7;
        let a: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| {
                        let (lo, hi) = (i.min(j) as f64, i.max(j) as f64);
                        (lo * 1.3 + hi * 0.7).sin() + if i == j { 2.0 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let (values, vectors) = symmetric_eigen(a.clone());
        check_eigen(&a, &values, &vectors);
        let trace: f64 = (0..n).map(|i| a[i][i]).sum();
        assert!((values.iter().sum::<f64>() - trace).abs() < 1e-9);
    }

    #[test]
    fn rescale_centres_and_bounds() {
        let p = rescale(vec![[2.0, 2.0], [4.0, 2.0], [3.0, 6.0]]);
        let max = p.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!((max - 1.0).abs() < 1e-12);
        let mean: f64 = p.iter().map(|q| q[0] + q[1]).sum();
        assert!(mean.abs() < 1e-12);
    }

    #[test]
    fn spiral_nodes_do_not_collide() {
        let p = spiral(40);
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                let d = ((p[i][0] - p[j][0]).powi(2) + (p[i][1] - p[j][1]).powi(2)).sqrt();
                assert!(d > 0.5, "nodes {i} and {j} at distance {d}");
            }
        }
    }
}
