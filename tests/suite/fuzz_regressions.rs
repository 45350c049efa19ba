//! Inputs the fuzz targets in fuzz/ found (and their neighbours), kept as
//! regression tests: each must be an error or a valid result, never a
//! panic, an overflow or a huge allocation.

use ncps::import::StateDict;
use ncps::wirings::{AnyWiring, MAX_UNITS, NCP, NCPArgs, Wiring, WiringError};

fn argument(err: WiringError) -> &'static str {
    match err {
        WiringError::InvalidArgument { argument, .. } => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// `fuzz/artifacts/upstream_config/slow-unit-*`: `{"units":8667}` built a
/// fully connected wiring of 75 million synapses (slow, but valid). A
/// larger count in a few bytes asked for terabytes: sizes are bounded.
#[test]
fn a_few_bytes_cannot_ask_for_a_huge_wiring() {
    let err = AnyWiring::from_upstream_config(r#"{"units":1000000000}"#).unwrap_err();
    assert_eq!(argument(err), "units");
    let err =
        AnyWiring::from_upstream_config(&format!(r#"{{"units":{}}}"#, MAX_UNITS + 1)).unwrap_err();
    assert!(
        err.to_string().contains("at most MAX_UNITS = 16384"),
        "{err}"
    );
    let err = AnyWiring::from_upstream_config(
        r#"{"units":1000000000,"adjacency_matrix":null,"output_dim":1}"#,
    )
    .unwrap_err();
    assert_eq!(argument(err), "units");
    let small = AnyWiring::from_upstream_config(r#"{"units":64}"#).unwrap();
    assert_eq!(small.as_dyn().units(), 64);
}

#[test]
fn huge_ncp_layers_are_errors_not_overflows() {
    let err = AnyWiring::from_upstream_config(
        r#"{"inter_neurons":18446744073709551615,"command_neurons":18446744073709551615,
            "motor_neurons":2,"sensory_fanout":1,"inter_fanout":1,
            "recurrent_command_synapses":1,"motor_fanin":1,"seed":1}"#,
    )
    .unwrap_err();
    assert_eq!(argument(err), "inter_neurons");
    let layers = |inter| NCPArgs {
        inter_neurons: inter,
        command_neurons: MAX_UNITS,
        motor_neurons: 1,
        sensory_fanout: 1,
        inter_fanout: 1,
        recurrent_command_synapses: 1,
        motor_fanin: 1,
    };
    // Each layer within the bound, all together over it.
    assert_eq!(argument(NCP::new(layers(1)).unwrap_err()), "units");
}

#[test]
fn endless_recurrent_command_draws_are_refused() {
    let args = NCPArgs {
        inter_neurons: 3,
        command_neurons: 3,
        motor_neurons: 1,
        sensory_fanout: 1,
        inter_fanout: 1,
        recurrent_command_synapses: usize::MAX,
        motor_fanin: 1,
    };
    assert_eq!(
        argument(NCP::new(args).unwrap_err()),
        "recurrent_command_synapses"
    );
}

#[test]
fn a_huge_input_dim_is_an_error() {
    let err = AnyWiring::from_upstream_config(
        r#"{"units":3,"adjacency_matrix":[[0,0,0],[0,0,0],[0,0,0]],"output_dim":1,"input_dim":100000000000}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("input_dim"), "{err}");
    let mut wiring = AnyWiring::from_upstream_config(r#"{"units":4}"#).unwrap();
    assert_eq!(argument(wiring.build(usize::MAX).unwrap_err()), "input_dim");
}

#[test]
fn safetensors_headers_that_lie_about_sizes() {
    for header in [
        // A shape whose element count overflows.
        r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#,
        // Offsets past the end of the data.
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800000000]}}"#,
        // Offsets backwards.
        r#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#,
    ] {
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[0; 8]);
        assert!(StateDict::from_safetensors_bytes(file).is_err(), "{header}");
    }
}
