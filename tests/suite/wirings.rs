//! The `wirings` module: worked numbers, errors, digests, serde, fixture
//! import and the NCP guarantees (graphs and drawings: tests/suite/drawing.rs).

use std::path::Path;

use ncps::wirings::{
    AnyWiring, AutoNCP, Custom, FullyConnected, NCP, NCPArgs, NeuronType, Polarity, Random,
    SynapseMatrix, Wiring, WiringError,
};
use proptest::prelude::*;

fn built<W: Wiring>(mut wiring: W, input_dim: usize) -> W {
    wiring.build(input_dim).expect("valid input_dim");
    wiring
}

// ---------------------------------------------------------------- worked numbers

#[test]
fn auto_ncp_8_1_worked_numbers() {
    let wiring = built(AutoNCP::new(8, 1).unwrap(), 2);
    let ncp = wiring.ncp();
    assert_eq!(ncp.args().inter_neurons, 5);
    assert_eq!(ncp.args().command_neurons, 2);
    assert_eq!(ncp.args().motor_neurons, 1);
    assert_eq!(ncp.args().sensory_fanout, 2);
    assert_eq!(ncp.args().inter_fanout, 1);
    assert_eq!(ncp.args().recurrent_command_synapses, 2);
    assert_eq!(ncp.args().motor_fanin, 1);
    assert_eq!(wiring.sparsity_level(), 0.5);
    assert_eq!(wiring.seed(), 22222);
    assert_eq!(
        wiring.layers(),
        vec![vec![3, 4, 5, 6, 7], vec![1, 2], vec![0]]
    );
    let types = wiring.neuron_types();
    assert_eq!(types.iter().filter(|t| **t == NeuronType::Inter).count(), 5);
    assert_eq!(
        types.iter().filter(|t| **t == NeuronType::Command).count(),
        2
    );
    assert_eq!(types.iter().filter(|t| **t == NeuronType::Motor).count(), 1);
    check_ncp_guarantees(ncp, 2).unwrap();
}

#[test]
fn random_8_1_075_worked_numbers() {
    let wiring = Random::new(8, 1, 0.75).unwrap();
    assert_eq!(wiring.synapse_count(), 16);
    assert_eq!(wiring.sensory_synapse_count(), 0);
    let wiring = built(wiring, 2);
    assert_eq!(wiring.synapse_count(), 16);
    assert_eq!(wiring.sensory_synapse_count(), 4);
    assert_eq!(wiring.layers(), vec![(0..8).collect::<Vec<_>>()]);
    assert_eq!(wiring.neuron_type(0), NeuronType::Motor);
    assert_eq!(wiring.neuron_type(1), NeuronType::Inter);
}

#[test]
fn random_rounds_half_to_even_like_numpy() {
    // 3 * 3 * 0.5 = 4.5 rounds to 4 (numpy), not 5.
    assert_eq!(Random::new(3, 1, 0.5).unwrap().synapse_count(), 4);
    // 5 * 5 * 0.5 = 12.5 rounds to 12.
    assert_eq!(Random::new(5, 1, 0.5).unwrap().synapse_count(), 12);
    assert_eq!(Random::new(5, 1, 0.0).unwrap().synapse_count(), 25);
}

#[test]
fn fully_connected_8_1_worked_numbers() {
    let wiring = built(FullyConnected::new(8, 1).unwrap(), 2);
    assert_eq!(wiring.synapse_count(), 64);
    assert_eq!(wiring.sensory_synapse_count(), 16);
    let no_self = built(
        FullyConnected::new(8, 1)
            .unwrap()
            .with_self_connections(false),
        2,
    );
    assert_eq!(no_self.synapse_count(), 56);
    for i in 0..8 {
        assert_eq!(no_self.adjacency_matrix().get(i, i), 0);
    }
    assert_eq!(no_self.sensory_synapse_count(), 16);
}

#[test]
fn polarities_are_mostly_excitatory_for_plain_wirings_and_fair_for_ncp() {
    let fc = FullyConnected::new(60, 1).unwrap();
    let excitatory = fc
        .adjacency_matrix()
        .entries()
        .iter()
        .filter(|&&e| e == 1)
        .count();
    let share = excitatory as f64 / 3600.0;
    assert!((share - 2.0 / 3.0).abs() < 0.03, "excitatory share {share}");

    let ncp = built(
        AutoNCP::new(200, 10)
            .unwrap()
            .with_sparsity_level(0.1)
            .unwrap(),
        20,
    );
    let m = ncp.adjacency_matrix();
    let excitatory = m.entries().iter().filter(|&&e| e == 1).count();
    let share = excitatory as f64 / m.synapse_count() as f64;
    assert!((share - 0.5).abs() < 0.05, "excitatory share {share}");
}

#[test]
fn masks_and_erev_follow_the_matrices() {
    let wiring = built(Random::new(5, 2, 0.4).unwrap(), 3);
    let adjacency = wiring.adjacency_matrix();
    let erev = wiring.erev_init();
    let mask = wiring.sparsity_mask();
    assert_eq!(erev.len(), 25);
    for (i, &e) in adjacency.entries().iter().enumerate() {
        assert_eq!(erev[i], f32::from(e));
        assert_eq!(mask[i], f32::from(e.abs()));
    }
    let sensory = wiring.sensory_adjacency_matrix().unwrap();
    assert_eq!(sensory.shape(), [3, 5]);
    assert_eq!(wiring.sensory_erev_init().unwrap(), sensory.to_f32());
    assert_eq!(wiring.sensory_sparsity_mask().unwrap(), sensory.mask_f32());
    let unbuilt = Random::new(5, 2, 0.4).unwrap();
    assert!(unbuilt.sensory_erev_init().is_none());
    assert!(unbuilt.sensory_sparsity_mask().is_none());
}

// ---------------------------------------------------------------- errors

fn invalid_argument(err: WiringError) -> &'static str {
    match err {
        WiringError::InvalidArgument { argument, .. } => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// One row of an error table: the case, what it returned, the argument the
/// error must name and a part of its message.
type ArgumentRow = (String, Result<(), WiringError>, &'static str, &'static str);

/// Checks every row of an error table, naming the row that fails.
fn check_argument_errors(table: Vec<ArgumentRow>) {
    for (case, result, argument, in_message) in table {
        let err = result.expect_err(&case);
        let message = err.to_string();
        assert!(
            message.contains(argument) && message.contains(in_message),
            "{case}: the message {message:?} lacks {argument:?} or {in_message:?}"
        );
        match err {
            WiringError::InvalidArgument {
                argument: named, ..
            } => {
                assert_eq!(named, argument, "{case}")
            }
            other => panic!("{case}: expected InvalidArgument, got {other:?}"),
        }
    }
}

/// A row of an error table, labelled by the call that gives its result.
macro_rules! row {
    ($call:expr, $argument:expr, $in_message:expr) => {
        (
            // On one line, however rustfmt lays the call out.
            stringify!($call)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            $call.map(drop),
            $argument,
            $in_message,
        )
    };
}

#[test]
fn constructor_errors_name_the_argument_and_range() {
    let valid = NCPArgs {
        inter_neurons: 4,
        command_neurons: 3,
        motor_neurons: 2,
        sensory_fanout: 2,
        inter_fanout: 2,
        recurrent_command_synapses: 1,
        motor_fanin: 2,
    };
    assert!(NCP::new(valid).is_ok());
    let mut table = vec![
        row!(FullyConnected::new(0, 0), "units", "at least 1"),
        row!(
            FullyConnected::new(4, 5),
            "output_dim",
            "between 1 and units = 4"
        ),
        row!(
            FullyConnected::new(4, 0),
            "output_dim",
            "between 1 and units = 4"
        ),
        row!(Random::new(0, 1, 0.5), "units", "at least 1"),
        row!(
            Random::new(4, 9, 0.5),
            "output_dim",
            "between 1 and units = 4"
        ),
        row!(Custom::new(0, 1), "units", "at least 1"),
        row!(
            AutoNCP::new(8, 6),
            "output_size",
            "between 1 and units - 3 = 5"
        ),
        row!(
            AutoNCP::new(2, 1),
            "output_size",
            "between 1 and units - 3 = 0"
        ),
        row!(AutoNCP::new(8, 0), "output_size", "output_size = 0"),
        // One NCP argument at a time outside its range, the others valid.
        row!(
            NCP::new(NCPArgs {
                inter_neurons: 0,
                sensory_fanout: 0,
                ..valid
            }),
            "inter_neurons",
            "at least 1"
        ),
        row!(
            NCP::new(NCPArgs {
                command_neurons: 0,
                ..valid
            }),
            "command_neurons",
            "at least 1"
        ),
        row!(
            NCP::new(NCPArgs {
                motor_neurons: 0,
                ..valid
            }),
            "motor_neurons",
            "at least 1"
        ),
        row!(
            NCP::new(NCPArgs {
                sensory_fanout: 5,
                ..valid
            }),
            "sensory_fanout",
            "between 1 and inter_neurons = 4"
        ),
        row!(
            NCP::new(NCPArgs {
                sensory_fanout: 0,
                ..valid
            }),
            "sensory_fanout",
            "between 1 and inter_neurons = 4"
        ),
        row!(
            NCP::new(NCPArgs {
                inter_fanout: 4,
                ..valid
            }),
            "inter_fanout",
            "between 1 and command_neurons = 3"
        ),
        row!(
            NCP::new(NCPArgs {
                inter_fanout: 0,
                ..valid
            }),
            "inter_fanout",
            "between 1 and command_neurons = 3"
        ),
        row!(
            NCP::new(NCPArgs {
                motor_fanin: 4,
                ..valid
            }),
            "motor_fanin",
            "between 1 and command_neurons = 3"
        ),
        row!(
            NCP::new(NCPArgs {
                motor_fanin: 0,
                ..valid
            }),
            "motor_fanin",
            "between 1 and command_neurons = 3"
        ),
    ];
    for bad in [-0.1, 1.0, 1.5, f64::NAN] {
        table.push((
            format!("Random::new(4, 1, {bad})"),
            Random::new(4, 1, bad).map(drop),
            "sparsity_level",
            "in [0, 1)",
        ));
    }
    for bad in [0.0, 0.09, 1.01, f64::NAN] {
        table.push((
            format!("AutoNCP::new(16, 2)?.with_sparsity_level({bad})"),
            AutoNCP::new(16, 2)
                .unwrap()
                .with_sparsity_level(bad)
                .map(drop),
            "sparsity_level",
            "in [0.1, 1.0]",
        ));
    }
    check_argument_errors(table);

    // Whole messages.
    assert_eq!(
        AutoNCP::new(8, 6).unwrap_err().to_string(),
        "invalid output_size = 6: must be between 1 and units - 3 = 5"
    );
    let err = NCP::new(NCPArgs {
        sensory_fanout: 5,
        ..valid
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid sensory_fanout = 5: must be between 1 and inter_neurons = 4"
    );
    // The ends of AutoNCP's sparsity range are valid.
    for sparsity_level in [0.1, 1.0] {
        assert!(
            AutoNCP::new(16, 2)
                .unwrap()
                .with_sparsity_level(sparsity_level)
                .is_ok(),
            "{sparsity_level}"
        );
    }
}

#[test]
fn building_twice_with_another_size_fails_and_same_size_is_a_no_op() {
    let mut wirings: Vec<AnyWiring> = vec![
        FullyConnected::new(6, 2).unwrap().into(),
        Random::new(6, 2, 0.3).unwrap().into(),
        NCP::new(NCPArgs {
            inter_neurons: 3,
            command_neurons: 2,
            motor_neurons: 1,
            sensory_fanout: 2,
            inter_fanout: 1,
            recurrent_command_synapses: 2,
            motor_fanin: 1,
        })
        .unwrap()
        .into(),
        AutoNCP::new(10, 2).unwrap().into(),
        Custom::new(6, 2).unwrap().into(),
    ];
    for wiring in &mut wirings {
        wiring.build(3).unwrap();
        let before = wiring.clone();
        wiring.build(3).unwrap();
        assert_eq!(
            *wiring,
            before,
            "{}: rebuilding with the same size changed it",
            wiring.kind()
        );
        match wiring.build(4).unwrap_err() {
            WiringError::InputDimConflict { built, requested } => {
                assert_eq!((built, requested), (3, 4))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(wiring.input_dim(), Some(3));
    }
    let mut fresh = FullyConnected::new(3, 1).unwrap();
    assert_eq!(invalid_argument(fresh.build(0).unwrap_err()), "input_dim");
    assert!(!fresh.is_built());
}

#[test]
fn custom_wiring_errors() {
    let excitatory = Polarity::Excitatory;
    check_argument_errors(vec![
        row!(
            Custom::new(3, 1).unwrap().add_synapse(3, 0, excitatory),
            "src",
            "less than units = 3"
        ),
        row!(
            Custom::new(3, 1).unwrap().add_synapse(0, 7, excitatory),
            "dest",
            "less than units = 3"
        ),
        row!(
            built(Custom::new(3, 1).unwrap(), 2).add_sensory_synapse(2, 0, excitatory),
            "src",
            "less than input_dim = 2"
        ),
        row!(
            Custom::new(3, 1)
                .unwrap()
                .with_layers(vec![vec![0, 1]], vec![NeuronType::Inter; 3]),
            "layers",
            "partition of the neuron ids 0..3"
        ),
        row!(
            Custom::new(3, 1)
                .unwrap()
                .with_layers(vec![vec![0, 1, 1, 2]], vec![NeuronType::Inter; 3]),
            "layers",
            "partition of the neuron ids 0..3"
        ),
        row!(
            Custom::new(3, 1)
                .unwrap()
                .with_layers(vec![vec![2, 0], vec![1]], vec![NeuronType::Inter; 2]),
            "neuron_types",
            "one per neuron (3)"
        ),
    ]);
    assert!(matches!(
        Custom::new(3, 1)
            .unwrap()
            .add_sensory_synapse(0, 0, excitatory),
        Err(WiringError::NotBuilt {
            operation: "add_sensory_synapse"
        })
    ));
    let layered = Custom::new(3, 1)
        .unwrap()
        .with_layers(
            vec![vec![2, 1], vec![0]],
            vec![NeuronType::Motor, NeuronType::Command, NeuronType::Inter],
        )
        .unwrap();
    assert_eq!(layered.layers(), vec![vec![2, 1], vec![0]]);
    assert_eq!(layered.neuron_type(1), NeuronType::Command);

    let square = SynapseMatrix::zeros(3, 3);
    let err = Custom::from_matrices(SynapseMatrix::zeros(3, 2), None, 1).unwrap_err();
    assert!(matches!(err, WiringError::MatrixShape { .. }), "{err:?}");
    let err = Custom::from_matrices(square, Some(SynapseMatrix::zeros(2, 4)), 1).unwrap_err();
    assert!(
        err.to_string().contains("sensory_adjacency_matrix"),
        "{err}"
    );
}

#[test]
fn malformed_json_errors_name_the_field() {
    let mut wiring = AutoNCP::new(10, 2).unwrap();
    wiring.build(3).unwrap();
    let good: serde_json::Value = serde_json::from_str(&AnyWiring::from(wiring).to_json()).unwrap();

    type Edit = dyn Fn(&mut serde_json::Value);
    let edit = |f: &Edit| {
        let mut v = good.clone();
        f(&mut v);
        AnyWiring::from_json(&v.to_string())
            .unwrap_err()
            .to_string()
    };
    // (what the edit does, the edit, a part of the message)
    let table: [(&str, &Edit, &str); 12] = [
        (
            "an adjacency entry of 2",
            &|v| v["adjacency_matrix"][0][1] = 2.into(),
            "adjacency_matrix[0][1] = 2",
        ),
        (
            "an adjacency row less",
            &|v| {
                v["adjacency_matrix"].as_array_mut().unwrap().pop();
            },
            "adjacency_matrix must be 10x10",
        ),
        (
            "a sensory entry less",
            &|v| {
                v["sensory_adjacency_matrix"][1]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            "sensory_adjacency_matrix",
        ),
        (
            "another input_dim",
            &|v| v["input_dim"] = 4.into(),
            "sensory_adjacency_matrix must be 4x10",
        ),
        (
            "no input_dim but a sensory matrix",
            &|v| v["input_dim"] = serde_json::Value::Null,
            "sensory_adjacency_matrix",
        ),
        (
            "layers of another wiring",
            &|v| v["layers"] = serde_json::json!([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]),
            "layers",
        ),
        (
            "another neuron type",
            &|v| v["neuron_types"][0] = "inter".into(),
            "neuron_types",
        ),
        (
            "a wrong synapse_count",
            &|v| v["synapse_count"] = 1.into(),
            "synapse_count",
        ),
        (
            "more units than rows",
            &|v| v["units"] = 11.into(),
            "adjacency_matrix must be 11x11, but it has 10 rows",
        ),
        (
            "an invalid constructor argument",
            &|v| v["constructor"]["output_size"] = 9.into(),
            "output_size",
        ),
        (
            "an unknown kind",
            &|v| v["kind"] = "Hexagonal".into(),
            "Hexagonal",
        ),
        (
            "an unknown neuron type",
            &|v| v["neuron_types"][0] = "glial".into(),
            "glial",
        ),
    ];
    for (case, change, in_message) in table {
        let message = edit(change);
        assert!(message.contains(in_message), "{case}: {message}");
    }
    assert!(matches!(
        AnyWiring::from_json("{ not json"),
        Err(WiringError::Json(_))
    ));
    assert!(matches!(
        AnyWiring::load("/nonexistent/wiring.json"),
        Err(WiringError::Io { .. })
    ));
}

// ---------------------------------------------------------------- digests

/// FNV-1a over the matrices: stable across platforms and Rust versions.
fn digest(wiring: &dyn Wiring) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&(wiring.units() as u64).to_le_bytes());
    for &e in wiring.adjacency_matrix().entries() {
        eat(&[e as u8]);
    }
    if let Some(s) = wiring.sensory_adjacency_matrix() {
        eat(&(s.rows() as u64).to_le_bytes());
        for &e in s.entries() {
            eat(&[e as u8]);
        }
    }
    hash
}

#[test]
fn seeded_matrices_are_pinned_by_digest() {
    let cases: Vec<(&str, AnyWiring, u64)> = vec![
        (
            "FullyConnected(8, 1)",
            built(FullyConnected::new(8, 1).unwrap(), 2).into(),
            0x26d5_16d3_ff10_e1e3,
        ),
        (
            "FullyConnected(8, 2, seed 18, no self)",
            built(
                FullyConnected::new(8, 2)
                    .unwrap()
                    .with_erev_init_seed(18)
                    .with_self_connections(false),
                3,
            )
            .into(),
            0xccb2_84a8_8df6_0e80,
        ),
        (
            "Random(8, 1, 0.75)",
            built(Random::new(8, 1, 0.75).unwrap(), 2).into(),
            0x5dba_cd79_49d6_8de7,
        ),
        (
            "Random(12, 3, 0.5, seed 9)",
            built(Random::new(12, 3, 0.5).unwrap().with_random_seed(9), 4).into(),
            0x4c3d_f063_2bfc_bd2f,
        ),
        (
            "NCP(4, 3, 2, 2, 2, 3, 2)",
            built(
                NCP::new(NCPArgs {
                    inter_neurons: 4,
                    command_neurons: 3,
                    motor_neurons: 2,
                    sensory_fanout: 2,
                    inter_fanout: 2,
                    recurrent_command_synapses: 3,
                    motor_fanin: 2,
                })
                .unwrap(),
                3,
            )
            .into(),
            0x062c_538e_746f_fc33,
        ),
        (
            "AutoNCP(16, 1)",
            built(AutoNCP::new(16, 1).unwrap(), 2).into(),
            0x9af9_b124_dcbd_2ae9,
        ),
        (
            "AutoNCP(64, 8, seed 3)",
            built(AutoNCP::new(64, 8).unwrap().with_seed(3), 32).into(),
            0x8f56_a8a4_ed4d_8a09,
        ),
    ];
    let mut report = String::new();
    for (name, wiring, expected) in &cases {
        let got = digest(wiring.as_dyn());
        // Same arguments, same matrices, every run.
        let again: AnyWiring = AnyWiring::from_json(&wiring.to_json()).unwrap();
        assert_eq!(digest(again.as_dyn()), got);
        if got != *expected {
            report.push_str(&format!("{name}: expected {expected:#x}, got {got:#x}\n"));
        }
    }
    assert!(report.is_empty(), "wiring digests changed:\n{report}");
}

#[test]
fn same_seed_same_matrices_other_seed_other_matrices() {
    let a = built(AutoNCP::new(20, 3).unwrap().with_seed(1), 4);
    let b = built(AutoNCP::new(20, 3).unwrap().with_seed(1), 4);
    let c = built(AutoNCP::new(20, 3).unwrap().with_seed(2), 4);
    assert_eq!(a, b);
    assert_ne!(a.adjacency_matrix(), c.adjacency_matrix());
    // Seeding after building redraws.
    let d = built(AutoNCP::new(20, 3).unwrap(), 4).with_seed(1);
    assert_eq!(d, a);
    let r1 = Random::new(10, 2, 0.5).unwrap().with_random_seed(4);
    let r2 = Random::new(10, 2, 0.5).unwrap().with_random_seed(5);
    assert_ne!(r1.adjacency_matrix(), r2.adjacency_matrix());
    assert_eq!(r1.synapse_count(), r2.synapse_count());
}

// ---------------------------------------------------------------- serde

#[test]
fn every_wiring_round_trips_through_json_exactly() {
    let mut custom = Custom::new(4, 2).unwrap();
    custom.add_synapse(3, 0, Polarity::Inhibitory).unwrap();
    custom.add_synapse(2, 2, Polarity::Excitatory).unwrap();
    let unbuilt: Vec<AnyWiring> = vec![
        FullyConnected::new(6, 2)
            .unwrap()
            .with_erev_init_seed(77)
            .with_self_connections(false)
            .into(),
        Random::new(7, 3, 0.35).unwrap().with_random_seed(12).into(),
        NCP::new(NCPArgs {
            inter_neurons: 5,
            command_neurons: 4,
            motor_neurons: 2,
            sensory_fanout: 3,
            inter_fanout: 2,
            recurrent_command_synapses: 4,
            motor_fanin: 3,
        })
        .unwrap()
        .with_seed(99)
        .into(),
        AutoNCP::new(20, 4)
            .unwrap()
            .with_sparsity_level(0.7)
            .unwrap()
            .with_seed(5)
            .into(),
        custom.into(),
        Custom::from_wiring(&built(AutoNCP::new(12, 2).unwrap(), 3)).into(),
    ];
    for mut wiring in unbuilt {
        for _ in 0..2 {
            let json = wiring.to_json();
            let loaded = AnyWiring::from_json(&json).unwrap();
            assert_eq!(loaded, wiring, "{} did not round-trip", wiring.kind());
            assert_eq!(loaded.to_json(), json);
            assert_eq!(loaded.kind(), wiring.kind());
            assert_eq!(loaded.layers(), wiring.layers());
            assert_eq!(loaded.neuron_types(), wiring.neuron_types());
            if !wiring.is_built() {
                wiring.build(3).unwrap();
            }
        }
    }
}

#[test]
fn loading_keeps_stored_matrices_even_if_the_seed_would_draw_others() {
    // A saved model's wiring is what it was trained with: loading must not
    // redraw it (a future rand release could draw differently).
    let mut wiring = AnyWiring::from(built(Random::new(6, 2, 0.5).unwrap(), 2));
    let mut v: serde_json::Value = serde_json::from_str(&wiring.to_json()).unwrap();
    let flipped = -v["adjacency_matrix"][0][0].as_i64().unwrap();
    v["adjacency_matrix"][0][0] = flipped.into();
    v["synapse_count"] = serde_json::Value::Null;
    let loaded = AnyWiring::from_json(&v.to_string()).unwrap();
    assert_eq!(i64::from(loaded.adjacency_matrix().get(0, 0)), flipped);
    // And building the loaded wiring again with its size keeps it.
    wiring = loaded.clone();
    wiring.build(2).unwrap();
    assert_eq!(wiring, loaded);
}

#[test]
fn building_an_unbuilt_wiring_loaded_from_json_keeps_its_stored_neuron_synapses() {
    for wiring in [
        AnyWiring::from(FullyConnected::new(5, 2).unwrap()),
        AnyWiring::from(Random::new(6, 2, 0.5).unwrap()),
    ] {
        assert!(!wiring.is_built());
        let mut v: serde_json::Value = serde_json::from_str(&wiring.to_json()).unwrap();
        // Flip one stored synapse so that the seed alone would draw another matrix.
        let (src, dest) = (0..wiring.units())
            .flat_map(|s| (0..wiring.units()).map(move |d| (s, d)))
            .find(|&(s, d)| wiring.adjacency_matrix().get(s, d) != 0)
            .unwrap();
        let flipped = -v["adjacency_matrix"][src][dest].as_i64().unwrap();
        v["adjacency_matrix"][src][dest] = flipped.into();
        let mut loaded = AnyWiring::from_json(&v.to_string()).unwrap();
        let stored = loaded.adjacency_matrix().clone();
        loaded.build(3).unwrap();
        assert_eq!(
            loaded.adjacency_matrix(),
            &stored,
            "{}: build redrew the stored neuron synapses",
            loaded.kind()
        );
        assert_eq!(i64::from(loaded.adjacency_matrix().get(src, dest)), flipped);
        assert_eq!(loaded.input_dim(), Some(3));
    }
}

#[test]
fn a_failed_save_leaves_the_previous_file_and_no_temporary() {
    let dir = std::env::temp_dir().join(format!("ncps-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wiring.json");
    let first = AnyWiring::from(built(AutoNCP::new(10, 2).unwrap(), 2));
    first.save(&path).unwrap();
    // A directory where the temporary file should go makes the write fail.
    let blocker = dir.join(format!("wiring.json.{}.tmp", std::process::id()));
    std::fs::create_dir_all(&blocker).unwrap();
    let second = AnyWiring::from(built(AutoNCP::new(12, 2).unwrap(), 2));
    assert!(second.save(&path).is_err());
    assert_eq!(
        AnyWiring::load(&path).unwrap(),
        first,
        "the saved wiring was lost"
    );
    std::fs::remove_dir(&blocker).unwrap();
    second.save(&path).unwrap();
    assert_eq!(AnyWiring::load(&path).unwrap(), second);
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only wiring.json remains");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn save_and_load_files() {
    let dir = std::env::temp_dir().join(format!("ncps-wirings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ncp.json");
    let wiring = AnyWiring::from(built(AutoNCP::new(16, 1).unwrap(), 2));
    wiring.save(&path).unwrap();
    assert_eq!(AnyWiring::load(&path).unwrap(), wiring);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- fixtures

#[test]
fn upstream_fixture_wirings_import_with_the_same_structure() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference");
    let mut imported = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let stored = &case["wiring"];
        if stored.is_null() {
            continue;
        }
        let wiring = AnyWiring::from_json(&stored.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.display();
        assert_eq!(wiring.kind(), stored["kind"].as_str().unwrap(), "{name}");
        assert_eq!(
            wiring.units() as u64,
            stored["units"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            wiring.input_dim().map(|d| d as u64),
            stored["input_dim"].as_u64(),
            "{name}"
        );
        assert_eq!(
            wiring.output_dim() as u64,
            stored["output_dim"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            wiring.synapse_count() as u64,
            stored["synapse_count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            wiring.sensory_synapse_count() as u64,
            stored["sensory_synapse_count"].as_u64().unwrap(),
            "{name}"
        );
        let layers: Vec<Vec<usize>> = serde_json::from_value(stored["layers"].clone()).unwrap();
        assert_eq!(wiring.layers(), layers, "{name}");
        let types: Vec<NeuronType> =
            serde_json::from_value(stored["neuron_types"].clone()).unwrap();
        assert_eq!(wiring.neuron_types(), types, "{name}");
        let rows: Vec<Vec<i8>> =
            serde_json::from_value(stored["adjacency_matrix"].clone()).unwrap();
        assert_eq!(wiring.adjacency_matrix().to_rows(), rows, "{name}");
        // Upstream's own NCP matrices satisfy the NCP guarantees too.
        if let AnyWiring::NCP(ncp) = &wiring {
            check_ncp_guarantees(ncp, wiring.input_dim().unwrap()).unwrap();
        }
        if let AnyWiring::AutoNCP(auto) = &wiring {
            check_ncp_guarantees(auto.ncp(), wiring.input_dim().unwrap()).unwrap();
        }
        imported += 1;
    }
    assert!(
        imported >= 17,
        "only {imported} fixture wirings found in {}",
        dir.display()
    );
}

// ---------------------------------------------------------------- graph

// ---------------------------------------------------------------- drawing

// ---------------------------------------------------------------- NCP guarantees

/// Checks the structure an NCP promises; returns the first violation.
fn check_ncp_guarantees(ncp: &NCP, inputs: usize) -> Result<(), String> {
    let adjacency = ncp.adjacency_matrix();
    let sensory = ncp.sensory_adjacency_matrix().ok_or("not built")?;
    let [inter, command, motor] = [
        ncp.layers()[0].clone(),
        ncp.layers()[1].clone(),
        ncp.layers()[2].clone(),
    ];
    let kind = |id: usize| ncp.neuron_type(id);

    // Sensory synapses only reach inter neurons; every input has its fanout.
    for (src, dest, _) in sensory.synapses() {
        if kind(dest) != NeuronType::Inter {
            return Err(format!("sensory {src} -> {:?} neuron {dest}", kind(dest)));
        }
    }
    for src in 0..inputs {
        let out = (0..ncp.units())
            .filter(|&d| sensory.get(src, d) != 0)
            .count();
        if out < ncp.args().sensory_fanout {
            return Err(format!("input {src} has {out} < sensory_fanout synapses"));
        }
    }
    // Only inter -> command, command -> command and command -> motor.
    for (src, dest, _) in adjacency.synapses() {
        let ok = matches!(
            (kind(src), kind(dest)),
            (NeuronType::Inter, NeuronType::Command)
                | (NeuronType::Command, NeuronType::Command)
                | (NeuronType::Command, NeuronType::Motor)
        );
        if !ok {
            return Err(format!(
                "synapse {src} ({:?}) -> {dest} ({:?}) against layer order",
                kind(src),
                kind(dest)
            ));
        }
    }
    let fanin = |dest: usize, from: &[usize], m: &SynapseMatrix| {
        from.iter().filter(|&&s| m.get(s, dest) != 0).count()
    };
    let all_inputs: Vec<usize> = (0..inputs).collect();
    for &i in &inter {
        if fanin(i, &all_inputs, sensory) == 0 {
            return Err(format!("inter neuron {i} has no sensory input"));
        }
    }
    for &c in &command {
        if fanin(c, &inter, adjacency) == 0 {
            return Err(format!("command neuron {c} has no inter input"));
        }
        if !motor.iter().any(|&m| adjacency.get(c, m) != 0) {
            return Err(format!("command neuron {c} reaches no motor neuron"));
        }
    }
    for &m in &motor {
        if fanin(m, &command, adjacency) < ncp.args().motor_fanin {
            return Err(format!(
                "motor neuron {m} has fewer than motor_fanin command inputs"
            ));
        }
    }
    for &i in &inter {
        let out = command
            .iter()
            .filter(|&&c| adjacency.get(i, c) != 0)
            .count();
        if out < ncp.args().inter_fanout {
            return Err(format!("inter neuron {i} has {out} < inter_fanout outputs"));
        }
    }

    // Counts: the fanout synapses plus a whole number of fill-ins of the
    // documented size (clamped by the layer drawn from, not upstream's bug).
    let count_between = |from: &[usize], to: &[usize], m: &SynapseMatrix| {
        from.iter()
            .map(|&s| to.iter().filter(|&&d| m.get(s, d) != 0).count())
            .sum::<usize>()
    };
    let (n_i, n_c, n_m) = (inter.len(), command.len(), motor.len());
    let checks = [
        (
            "sensory",
            count_between(&all_inputs, &inter, sensory),
            inputs * ncp.args().sensory_fanout,
            (inputs * ncp.args().sensory_fanout / n_i).clamp(1, inputs),
            n_i,
        ),
        (
            "inter->command",
            count_between(&inter, &command, adjacency),
            n_i * ncp.args().inter_fanout,
            (n_i * ncp.args().inter_fanout / n_c).clamp(1, n_i),
            n_c,
        ),
        (
            "command->motor",
            count_between(&command, &motor, adjacency),
            n_m * ncp.args().motor_fanin,
            (n_m * ncp.args().motor_fanin / n_c).clamp(1, n_m),
            n_c,
        ),
    ];
    for (what, count, base, fill, most) in checks {
        let extra = count
            .checked_sub(base)
            .ok_or(format!("{what}: {count} < {base}"))?;
        if extra % fill != 0 || extra / fill > most {
            return Err(format!(
                "{what}: {count} synapses is not {base} + k * {fill} (k <= {most})"
            ));
        }
    }
    let recurrent = count_between(&command, &command, adjacency);
    if recurrent > ncp.args().recurrent_command_synapses
        || (ncp.args().recurrent_command_synapses > 0 && recurrent == 0)
    {
        return Err(format!(
            "{recurrent} recurrent synapses for {} draws",
            ncp.args().recurrent_command_synapses
        ));
    }
    Ok(())
}

fn ncp_strategy() -> impl Strategy<Value = (NCP, usize)> {
    (
        1usize..16,
        1usize..12,
        1usize..8,
        1usize..10,
        0usize..20,
        any::<u64>(),
    )
        .prop_flat_map(|(inter, command, motor, inputs, recurrent, seed)| {
            (1..=inter, 1..=command, 1..=command).prop_map(move |(sf, if_, mf)| {
                let ncp = NCP::new(NCPArgs {
                    inter_neurons: inter,
                    command_neurons: command,
                    motor_neurons: motor,
                    sensory_fanout: sf,
                    inter_fanout: if_,
                    recurrent_command_synapses: recurrent,
                    motor_fanin: mf,
                })
                .unwrap()
                .with_seed(seed);
                (ncp, inputs)
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn ncp_guarantees_hold_for_any_sizes_and_seed((ncp, inputs) in ncp_strategy()) {
        let ncp = built(ncp, inputs);
        if let Err(violation) = check_ncp_guarantees(&ncp, inputs) {
            prop_assert!(false, "{}", violation);
        }
    }

    #[test]
    fn auto_ncp_is_valid_for_every_valid_argument(
        units in 4usize..80,
        output_fraction in 0.0f64..1.0,
        sparsity in 0.1f64..=1.0,
        inputs in 1usize..12,
        seed in any::<u64>(),
    ) {
        let output = 1 + ((units - 3) as f64 * output_fraction) as usize;
        prop_assume!(output + 2 < units);
        let wiring = built(AutoNCP::new(units, output).unwrap().with_sparsity_level(sparsity).unwrap().with_seed(seed), inputs);
        prop_assert_eq!(wiring.units(), units);
        prop_assert_eq!(wiring.output_dim(), output);
        let layer_sizes: usize = wiring.layers().iter().map(Vec::len).sum();
        prop_assert_eq!(layer_sizes, units);
        if let Err(violation) = check_ncp_guarantees(wiring.ncp(), inputs) {
            prop_assert!(false, "{}", violation);
        }
    }
}

// ------------------------------------------------ upstream get_config()

fn upstream_config(name: &str) -> (String, serde_json::Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream_config");
    let config = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let expected = std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap();
    (config, serde_json::from_str(&expected).unwrap())
}

fn rows(v: &serde_json::Value) -> Vec<Vec<i8>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn upstream_get_config_json_loads_as_upstream_from_config_does() {
    // (file, kind, whether the synapse counts are fixed by the arguments)
    for (name, kind, counts_fixed) in [
        ("fully_connected", "FullyConnected", true),
        ("random", "Random", true),
        ("ncp", "NCP", false),
        ("auto_ncp", "AutoNCP", false),
        ("wiring", "Custom", true),
    ] {
        let (config, expected) = upstream_config(name);
        let mut wiring =
            AnyWiring::from_upstream_config(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(wiring.kind(), kind, "{name}");
        wiring.build(3 - usize::from(name == "wiring")).unwrap();
        let number = |key: &str| expected[key].as_u64().unwrap() as usize;
        assert_eq!(wiring.units(), number("units"), "{name}");
        assert_eq!(wiring.output_dim(), number("output_dim"), "{name}");
        assert_eq!(wiring.input_dim(), Some(number("input_dim")), "{name}");
        let layers: Vec<Vec<usize>> = serde_json::from_value(expected["layers"].clone()).unwrap();
        assert_eq!(wiring.layers(), layers, "{name}");
        let types: Vec<NeuronType> =
            serde_json::from_value(expected["neuron_types"].clone()).unwrap();
        assert_eq!(wiring.neuron_types(), types, "{name}");
        if counts_fixed {
            assert_eq!(wiring.synapse_count(), number("synapse_count"), "{name}");
            assert_eq!(
                wiring.sensory_synapse_count(),
                number("sensory_synapse_count"),
                "{name}"
            );
        }
    }
    // The base Wiring's config carries its matrices: they load exactly.
    let (config, expected) = upstream_config("wiring");
    let wiring = AnyWiring::from_upstream_config(&config).unwrap();
    assert_eq!(
        wiring.adjacency_matrix().to_rows(),
        rows(&expected["adjacency_matrix"])
    );
    assert_eq!(
        wiring.sensory_adjacency_matrix().unwrap().to_rows(),
        rows(&expected["sensory_adjacency_matrix"])
    );
}

#[test]
fn malformed_upstream_configs_are_errors_naming_the_problem() {
    let (unbuilt_without_output_dim, _) = upstream_config("wiring_unbuilt");
    for (config, message) in [
        (unbuilt_without_output_dim.as_str(), "output_dim is null"),
        ("[1, 2]", "config is an array"),
        ("{\"units\": 3, \"bogus\": 1}", "unknown field `bogus`"),
        ("{\"units\": 0}", "invalid units = 0"),
        (
            "{\"units\": 2, \"adjacency_matrix\": [[0, 2], [0, 0]], \"sensory_adjacency_matrix\": null, \"input_dim\": null, \"output_dim\": 1}",
            "adjacency_matrix[0][1] = 2",
        ),
        (
            "{\"units\": 2, \"adjacency_matrix\": [[0, 1]], \"sensory_adjacency_matrix\": null, \"input_dim\": null, \"output_dim\": 1}",
            "adjacency_matrix must be 2x2",
        ),
        (
            "{\"units\": 2, \"adjacency_matrix\": [[0, 1], [0, 0]], \"sensory_adjacency_matrix\": null, \"input_dim\": 3, \"output_dim\": 1}",
            "sensory_adjacency_matrix is null",
        ),
        (
            "{\"inter_neurons\": [5, 6], \"command_neurons\": [2, 3, 4], \"motor_neurons\": [0, 1], \"sensory_fanout\": 3, \"inter_fanout\": 2, \"recurrent_command_synapses\": 2, \"motor_fanin\": 2, \"seed\": null}",
            "sensory_fanout = 3",
        ),
        ("{\"units\": 10, \"output_size\": 9}", "output_size"),
    ] {
        let err = AnyWiring::from_upstream_config(config)
            .expect_err(config)
            .to_string();
        assert!(err.contains(message), "{config}: {err}");
    }
}
