//! `draw_graph`: the circuit rendered to SVG with plotters.

use std::path::Path;
use std::str::FromStr;

use plotters::prelude::*;
use plotters::style::Color as _;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::graph::to_graph;
use super::{DrawError, Layout, NodeKind};
use crate::wirings::{NeuronType, Polarity, Wiring};

/// An RGB color; parses `#rrggbb`, matplotlib's `tab:` palette (`tab:blue`,
/// `tab:orange`, `tab:green`, `tab:red`, `tab:purple`, `tab:brown`,
/// `tab:pink`, `tab:gray`, `tab:olive`, `tab:cyan`) and the basic names
/// `black`, `white`, `gray`, `red`, `green`, `blue`, `cyan`, `magenta`,
/// `yellow`, `orange`, `olive`, `purple`.
///
/// ```
/// use ncps::wirings::Color;
///
/// assert_eq!("tab:blue".parse::<Color>()?, Color(0x1f, 0x77, 0xb4));
/// assert_eq!("#00ff80".parse::<Color>()?.to_hex(), "#00ff80");
/// assert!("blurple".parse::<Color>().is_err());
/// # Ok::<(), ncps::wirings::DrawError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    /// `#rrggbb`.
    pub fn to_hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    fn rgb(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }

    fn darker(self) -> RGBColor {
        let d = |c: u8| (f32::from(c) * 0.6) as u8;
        RGBColor(d(self.0), d(self.1), d(self.2))
    }
}

impl FromStr for Color {
    type Err = DrawError;

    fn from_str(name: &str) -> Result<Self, DrawError> {
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let rgb = match name {
            "tab:blue" => 0x1f77b4,
            "tab:orange" => 0xff7f0e,
            "tab:green" => 0x2ca02c,
            "tab:red" => 0xd62728,
            "tab:purple" => 0x9467bd,
            "tab:brown" => 0x8c564b,
            "tab:pink" => 0xe377c2,
            "tab:gray" | "tab:grey" => 0x7f7f7f,
            "tab:olive" => 0xbcbd22,
            "tab:cyan" => 0x17becf,
            "black" => 0x000000,
            "white" => 0xffffff,
            "gray" | "grey" => 0x808080,
            "red" => 0xff0000,
            "green" => 0x008000,
            "blue" => 0x0000ff,
            "cyan" => 0x00ffff,
            "magenta" => 0xff00ff,
            "yellow" => 0xffff00,
            "orange" => 0xffa500,
            "olive" => 0x808000,
            "purple" => 0x800080,
            s if s.len() == 7 && s.starts_with('#') => {
                hex(&s[1..]).ok_or_else(|| DrawError::UnknownColor(name.to_string()))?
            }
            _ => return Err(DrawError::UnknownColor(name.to_string())),
        };
        Ok(Color((rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8))
    }
}

fn named(name: &str) -> Color {
    name.parse().expect("built-in color names parse")
}

/// The fill color of each kind of node. Defaults: sensory `tab:olive`, inter
/// `tab:blue`, command `tab:cyan`, motor `tab:orange` (upstream's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeuronColors {
    /// Sensory inputs.
    pub sensory: Color,
    /// Inter neurons.
    pub inter: Color,
    /// Command neurons.
    pub command: Color,
    /// Motor neurons.
    pub motor: Color,
}

impl Default for NeuronColors {
    fn default() -> Self {
        Self {
            sensory: named("tab:olive"),
            inter: named("tab:blue"),
            command: named("tab:cyan"),
            motor: named("tab:orange"),
        }
    }
}

impl NeuronColors {
    /// The color of a node kind.
    pub fn of(&self, kind: NodeKind) -> Color {
        match kind {
            NodeKind::Sensory => self.sensory,
            NodeKind::Neuron(NeuronType::Inter) => self.inter,
            NodeKind::Neuron(NeuronType::Command) => self.command,
            NodeKind::Neuron(NeuronType::Motor) => self.motor,
        }
    }
}

/// The color of each polarity of synapse. Defaults: excitatory `tab:green`,
/// inhibitory `tab:red`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynapseColors {
    /// Excitatory synapses.
    pub excitatory: Color,
    /// Inhibitory synapses.
    pub inhibitory: Color,
}

impl Default for SynapseColors {
    fn default() -> Self {
        Self {
            excitatory: named("tab:green"),
            inhibitory: named("tab:red"),
        }
    }
}

impl SynapseColors {
    /// One color for both polarities (upstream's `synapse_colors="black"`).
    pub fn uniform(color: Color) -> Self {
        Self {
            excitatory: color,
            inhibitory: color,
        }
    }

    /// The color of a polarity.
    pub fn of(&self, polarity: Polarity) -> Color {
        match polarity {
            Polarity::Excitatory => self.excitatory,
            Polarity::Inhibitory => self.inhibitory,
        }
    }
}

/// How [`Draw::draw_graph`](super::Draw::draw_graph) renders: upstream's `draw_graph(layout,
/// neuron_colors, synapse_colors, draw_labels)` plus the picture size.
///
/// ```
/// use ncps::wirings::{DrawOptions, Layout};
///
/// let options = DrawOptions::default()
///     .with_layout(Layout::Spiral)
///     .with_labels(true)
///     .with_size(1000, 700);
/// assert_eq!(options.layout, Layout::Spiral);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DrawOptions {
    /// Node placement; default [`Layout::Shell`].
    pub layout: Layout,
    /// Node colors.
    pub neuron_colors: NeuronColors,
    /// Edge colors.
    pub synapse_colors: SynapseColors,
    /// Write `neuron_<i>` / `sensory_<i>` under each node; default `false`.
    pub draw_labels: bool,
    /// Picture width in pixels; default 900.
    pub width: u32,
    /// Picture height in pixels; default 640.
    pub height: u32,
}

impl Default for DrawOptions {
    fn default() -> Self {
        Self {
            layout: Layout::Shell,
            neuron_colors: NeuronColors::default(),
            synapse_colors: SynapseColors::default(),
            draw_labels: false,
            width: 900,
            height: 640,
        }
    }
}

impl DrawOptions {
    /// With another layout.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// With or without node labels.
    pub fn with_labels(mut self, draw_labels: bool) -> Self {
        self.draw_labels = draw_labels;
        self
    }

    /// With other node colors.
    pub fn with_neuron_colors(mut self, colors: NeuronColors) -> Self {
        self.neuron_colors = colors;
        self
    }

    /// With other edge colors.
    pub fn with_synapse_colors(mut self, colors: SynapseColors) -> Self {
        self.synapse_colors = colors;
        self
    }

    /// With another picture size (at least 300 x 200 pixels).
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width.max(300);
        self.height = height.max(200);
        self
    }
}

const LEGEND_WIDTH: i32 = 200;
const MARGIN: i32 = 36;
const ARROW_LENGTH: f64 = 9.0;
const ARROW_HALF_WIDTH: f64 = 4.5;

fn draw_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> DrawError {
    DrawError::Render(error.to_string())
}

/// Renders a built wiring to an SVG document.
pub(crate) fn draw_svg<W: Wiring + ?Sized>(
    wiring: &W,
    options: &DrawOptions,
) -> Result<String, DrawError> {
    let graph = to_graph(wiring)?;
    let (width, height) = (
        options.width.max(300) as i32,
        options.height.max(200) as i32,
    );

    // Fit the layout's [-1, 1]² square into the drawing area left of the legend.
    let area_w = (width - LEGEND_WIDTH - 2 * MARGIN) as f64;
    let area_h = (height - 2 * MARGIN) as f64;
    let half = area_w.min(area_h) / 2.0;
    let centre = [MARGIN as f64 + area_w / 2.0, MARGIN as f64 + area_h / 2.0];
    let points: Vec<[f64; 2]> = options
        .layout
        .positions(&graph)
        .into_iter()
        .map(|p| [centre[0] + half * p[0], centre[1] + half * p[1]])
        .collect();
    let mut closest = f64::INFINITY;
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            closest = closest.min(distance(*a, *b));
        }
    }
    let radius = (0.32 * closest).clamp(3.0, 14.0);

    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;

        for edge in graph.raw_edges() {
            let (src, dest) = (edge.source().index(), edge.target().index());
            let color = options.synapse_colors.of(edge.weight).rgb();
            if src == dest {
                draw_self_loop(&root, points[src], centre, radius, color)?;
                continue;
            }
            // Two synapses between the same pair are drawn side by side.
            let offset = if graph.find_edge(edge.target(), edge.source()).is_some() {
                radius * 0.35
            } else {
                0.0
            };
            draw_arrow(&root, points[src], points[dest], radius, offset, color)?;
        }

        for node in graph.node_indices() {
            let p = pixel(points[node.index()]);
            let color = options.neuron_colors.of(graph[node].kind);
            root.draw(&Circle::new(p, radius as i32, color.rgb().filled()))
                .map_err(draw_error)?;
            root.draw(&Circle::new(
                p,
                radius as i32,
                color.darker().stroke_width(1),
            ))
            .map_err(draw_error)?;
            if options.draw_labels {
                let style = ("sans-serif", 11)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top));
                root.draw(&Text::new(
                    graph[node].to_string(),
                    (p.0, p.1 + radius as i32 + 2),
                    style,
                ))
                .map_err(draw_error)?;
            }
        }

        draw_legend(&root, &graph, options, width)?;
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn pixel(p: [f64; 2]) -> (i32, i32) {
    (p[0].round() as i32, p[1].round() as i32)
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// A line from the rim of `from` to the rim of `to`, shifted sideways by
/// `offset`, ending in an arrowhead.
fn draw_arrow(
    root: &Area<'_>,
    from: [f64; 2],
    to: [f64; 2],
    radius: f64,
    offset: f64,
    color: RGBColor,
) -> Result<(), DrawError> {
    let length = distance(from, to);
    if length <= 2.0 * radius + ARROW_LENGTH {
        return Ok(());
    }
    let dir = [(to[0] - from[0]) / length, (to[1] - from[1]) / length];
    let normal = [-dir[1], dir[0]];
    let at = |p: [f64; 2], along: f64, side: f64| {
        [
            p[0] + dir[0] * along + normal[0] * side,
            p[1] + dir[1] * along + normal[1] * side,
        ]
    };
    let start = at(from, radius, offset);
    let tip = at(to, -radius, offset);
    let base = at(tip, -ARROW_LENGTH, 0.0);
    let style = color.mix(0.75);
    root.draw(&PathElement::new(
        vec![pixel(start), pixel(base)],
        style.stroke_width(2),
    ))
    .map_err(draw_error)?;
    root.draw(&Polygon::new(
        vec![
            pixel(tip),
            pixel(at(base, 0.0, ARROW_HALF_WIDTH)),
            pixel(at(base, 0.0, -ARROW_HALF_WIDTH)),
        ],
        style.filled(),
    ))
    .map_err(draw_error)
}

/// A small loop on the outer side of a node (a synapse onto itself).
fn draw_self_loop(
    root: &Area<'_>,
    node: [f64; 2],
    centre: [f64; 2],
    radius: f64,
    color: RGBColor,
) -> Result<(), DrawError> {
    let away = distance(node, centre);
    let dir = if away > 1e-6 {
        [(node[0] - centre[0]) / away, (node[1] - centre[1]) / away]
    } else {
        [0.0, -1.0]
    };
    let loop_centre = [
        node[0] + dir[0] * radius * 1.4,
        node[1] + dir[1] * radius * 1.4,
    ];
    root.draw(&Circle::new(
        pixel(loop_centre),
        (radius * 0.75) as i32,
        color.mix(0.75).stroke_width(2),
    ))
    .map_err(draw_error)
}

/// The legend: one entry per node kind present, then the synapse colors.
fn draw_legend(
    root: &Area<'_>,
    graph: &super::WiringGraph,
    options: &DrawOptions,
    width: i32,
) -> Result<(), DrawError> {
    let kinds = [
        NodeKind::Sensory,
        NodeKind::Neuron(NeuronType::Inter),
        NodeKind::Neuron(NeuronType::Command),
        NodeKind::Neuron(NeuronType::Motor),
    ];
    let present: Vec<NodeKind> = kinds
        .into_iter()
        .filter(|&k| graph.node_weights().any(|n| n.kind == k))
        .collect();
    let polarities: Vec<Polarity> = [Polarity::Excitatory, Polarity::Inhibitory]
        .into_iter()
        .filter(|&p| graph.edge_weights().any(|&e| e == p))
        .collect();

    let row = 26;
    let left = width - LEGEND_WIDTH + 8;
    let top = MARGIN;
    let rows = (present.len() + polarities.len()) as i32;
    root.draw(&Rectangle::new(
        [(left - 8, top - 14), (width - 10, top + rows * row - 8)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))
    .map_err(draw_error)?;
    let font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, kind) in present.iter().enumerate() {
        let y = top + i as i32 * row;
        let color = options.neuron_colors.of(*kind);
        root.draw(&Circle::new((left + 8, y), 7, color.rgb().filled()))
            .map_err(draw_error)?;
        root.draw(&Text::new(
            kind.legend_label(),
            (left + 24, y),
            font.clone(),
        ))
        .map_err(draw_error)?;
    }
    for (i, polarity) in polarities.iter().enumerate() {
        let y = top + (present.len() + i) as i32 * row;
        let color = options.synapse_colors.of(*polarity).rgb();
        draw_arrow(
            root,
            [left as f64 - 2.0, y as f64],
            [left as f64 + 20.0, y as f64],
            0.0,
            0.0,
            color,
        )?;
        let label = match polarity {
            Polarity::Excitatory => "Excitatory synapses",
            Polarity::Inhibitory => "Inhibitory synapses",
        };
        root.draw(&Text::new(label, (left + 24, y), font.clone()))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// Writes `svg` to `path`.
pub(crate) fn write_svg(path: &Path, svg: &str) -> Result<(), DrawError> {
    crate::fs::write_atomically(path, svg.as_bytes()).map_err(|source| DrawError::Io {
        path: path.to_path_buf(),
        source,
    })
}
