//! Graphs and SVG drawings of wirings (feature `draw`): nodes and edges,
//! the drawing's circles, arrows and legend, layouts, colors, files.

use std::path::Path;

use ncps::wirings::{
    AnyWiring, AutoNCP, Color, Draw, DrawError, DrawOptions, FullyConnected, Layout, NeuronColors,
    NodeKind, Polarity, Random, SynapseColors, Wiring,
};

fn built<W: Wiring>(mut wiring: W, input_dim: usize) -> W {
    wiring.build(input_dim).expect("valid input_dim");
    wiring
}

struct SvgSummary {
    circles: Vec<(f64, f64, f64, String)>,
    texts: Vec<String>,
    polygons: usize,
    lines: usize,
}

#[test]
fn graph_and_drawing_need_a_built_wiring() {
    let wiring = AutoNCP::new(10, 2).unwrap();
    assert!(matches!(wiring.to_graph(), Err(DrawError::NotBuilt)));
    assert!(matches!(
        wiring.draw_graph(&DrawOptions::default()),
        Err(DrawError::NotBuilt)
    ));
}

#[test]
fn unknown_layout_and_color_are_errors() {
    let err = "hexagonal".parse::<Layout>().unwrap_err();
    assert!(err.to_string().contains("hexagonal"), "{err}");
    for name in [
        "shell",
        "circular",
        "spiral",
        "random",
        "spring",
        "kamada_kawai",
        "kamada",
        "spectral",
    ] {
        assert!(name.parse::<Layout>().is_ok(), "{name}");
    }
    assert!(matches!(
        "tab:mauve".parse::<Color>(),
        Err(DrawError::UnknownColor(_))
    ));
    assert!("#12345".parse::<Color>().is_err());
    assert!("#zzzzzz".parse::<Color>().is_err());
}

#[test]
fn graph_has_a_node_per_neuron_and_input_and_an_edge_per_synapse() {
    let wirings: Vec<AnyWiring> = vec![
        built(FullyConnected::new(5, 2).unwrap(), 3).into(),
        built(Random::new(9, 1, 0.6).unwrap(), 4).into(),
        built(AutoNCP::new(16, 1).unwrap(), 2).into(),
    ];
    for wiring in &wirings {
        let graph = wiring.to_graph().unwrap();
        let inputs = wiring.input_dim().unwrap();
        assert_eq!(graph.node_count(), wiring.units() + inputs);
        assert_eq!(
            graph.edge_count(),
            wiring.synapse_count() + wiring.sensory_synapse_count()
        );
        for idx in graph.node_indices() {
            let node = graph[idx];
            if idx.index() < wiring.units() {
                assert_eq!(node.kind, NodeKind::Neuron(wiring.neuron_type(idx.index())));
                assert_eq!(node.id, idx.index());
                assert_eq!(node.to_string(), format!("neuron_{}", idx.index()));
            } else {
                assert_eq!(node.kind, NodeKind::Sensory);
                assert_eq!(node.id, idx.index() - wiring.units());
            }
        }
        for edge in graph.raw_edges() {
            let (src, dest) = (graph[edge.source()], graph[edge.target()]);
            let entry = match src.kind {
                NodeKind::Sensory => wiring
                    .sensory_adjacency_matrix()
                    .unwrap()
                    .get(src.id, dest.id),
                NodeKind::Neuron(_) => wiring.adjacency_matrix().get(src.id, dest.id),
            };
            assert_eq!(Polarity::from_entry(entry), Some(edge.weight));
        }
    }
}

fn parse_svg(svg: &str) -> SvgSummary {
    let doc = roxmltree::Document::parse(svg).expect("draw_graph writes well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let num = |n: &roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    let mut summary = SvgSummary {
        circles: Vec::new(),
        texts: Vec::new(),
        polygons: 0,
        lines: 0,
    };
    for node in root.descendants().filter(|n| n.is_element()) {
        match node.tag_name().name() {
            "circle" => summary.circles.push((
                num(&node, "cx"),
                num(&node, "cy"),
                num(&node, "r"),
                node.attribute("fill").unwrap_or("none").to_lowercase(),
            )),
            "text" => summary
                .texts
                .push(node.text().unwrap_or_default().trim().to_string()),
            "polygon" => summary.polygons += 1,
            "polyline" | "path" | "line" => summary.lines += 1,
            _ => {}
        }
    }
    summary
}

#[test]
fn svg_has_a_circle_per_node_an_arrow_per_synapse_and_a_legend() {
    let wiring = built(AutoNCP::new(16, 1).unwrap(), 2);
    let options = DrawOptions::default().with_labels(true);
    let svg = parse_svg(&wiring.draw_graph(&options).unwrap());
    let colors = NeuronColors::default();
    let count_fill = |c: Color| svg.circles.iter().filter(|x| x.3 == c.to_hex()).count();
    // One filled circle per node plus one legend marker per type.
    assert_eq!(count_fill(colors.sensory), 2 + 1);
    assert_eq!(count_fill(colors.inter), 9 + 1);
    assert_eq!(count_fill(colors.command), 6 + 1);
    assert_eq!(count_fill(colors.motor), 1 + 1);
    for label in [
        "Sensory neurons",
        "Inter neurons",
        "Command neurons",
        "Motor neurons",
    ] {
        assert!(svg.texts.iter().any(|t| t == label), "legend lacks {label}");
    }
    for id in 0..16 {
        assert!(svg.texts.contains(&format!("neuron_{id}")));
    }
    assert!(svg.texts.contains(&"sensory_1".to_string()));
    // Every non-self synapse has an arrowhead; legend adds one per polarity.
    let self_loops = (0..16)
        .filter(|&i| wiring.adjacency_matrix().get(i, i) != 0)
        .count();
    let synapses = wiring.synapse_count() + wiring.sensory_synapse_count();
    assert_eq!(svg.polygons, synapses - self_loops + 2);
    assert!(svg.lines >= synapses - self_loops);

    // Node circles do not overlap.
    let nodes: Vec<_> = svg
        .circles
        .iter()
        .filter(|c| c.3 != "none" && c.2 > 7.5)
        .collect();
    assert_eq!(nodes.len(), 18);
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
            assert!(d > a.2 + b.2, "nodes overlap: {a:?} {b:?}");
        }
    }
}

#[test]
fn legend_names_only_the_types_present_and_colors_are_configurable() {
    let wiring = built(FullyConnected::new(4, 1).unwrap(), 1);
    let colors = NeuronColors {
        motor: "#123456".parse().unwrap(),
        ..NeuronColors::default()
    };
    let options = DrawOptions::default()
        .with_neuron_colors(colors)
        .with_synapse_colors(SynapseColors::uniform("black".parse().unwrap()));
    let raw = wiring.draw_graph(&options).unwrap();
    let svg = parse_svg(&raw);
    assert!(svg.texts.iter().any(|t| t == "Motor neurons"));
    assert!(!svg.texts.iter().any(|t| t == "Command neurons"));
    assert!(svg.circles.iter().any(|c| c.3 == "#123456"));
    assert!(
        !svg.texts.iter().any(|t| t.starts_with("neuron_")),
        "labels are off by default"
    );
    assert!(!raw.contains(&SynapseColors::default().excitatory.to_hex()));
}

#[test]
fn every_layout_draws_inside_the_canvas() {
    let wiring = built(AutoNCP::new(24, 3).unwrap(), 4);
    for layout in [
        Layout::Shell,
        Layout::Circular,
        Layout::Spiral,
        Layout::Random { seed: 3 },
        Layout::Spring { seed: 3 },
        Layout::KamadaKawai,
        Layout::Spectral,
    ] {
        let options = DrawOptions::default()
            .with_layout(layout)
            .with_size(800, 600);
        let svg = parse_svg(&wiring.draw_graph(&options).unwrap());
        let nodes: Vec<_> = svg.circles.iter().filter(|c| c.3 != "none").collect();
        assert_eq!(nodes.len(), 24 + 4 + 4, "{layout:?}");
        for c in nodes {
            assert!(
                c.0 >= 0.0 && c.0 <= 800.0 && c.1 >= 0.0 && c.1 <= 600.0,
                "{layout:?}: {c:?}"
            );
            assert!(c.0.is_finite() && c.1.is_finite());
        }
        let positions = layout.positions(&wiring.to_graph().unwrap());
        let distinct = positions.iter().enumerate().all(|(i, a)| {
            positions[i + 1..]
                .iter()
                .all(|b| (a[0] - b[0]).abs() + (a[1] - b[1]).abs() > 1e-6)
        });
        assert!(distinct, "{layout:?} put two nodes on the same spot");
    }
}

#[test]
fn save_svg_writes_the_drawing() {
    let wiring = built(Random::new(6, 2, 0.5).unwrap(), 2);
    let path = std::env::temp_dir().join(format!("ncps-draw-{}.svg", std::process::id()));
    wiring.save_svg(&path, &DrawOptions::default()).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, wiring.draw_graph(&DrawOptions::default()).unwrap());
    std::fs::remove_file(&path).unwrap();
    let err = wiring
        .save_svg(Path::new("/nonexistent/dir/w.svg"), &DrawOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/dir/w.svg"), "{err}");
}
