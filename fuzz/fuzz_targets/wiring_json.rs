//! `AnyWiring::from_json` on arbitrary text: an error or a wiring, never a
//! panic; a wiring it accepts round-trips through `to_json` unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ncps::wirings::{AnyWiring, Wiring};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(wiring) = AnyWiring::from_json(text) {
        // A wiring's JSON grows with units²: round-trip the small ones
        // (the parser, not the size, is under test).
        if wiring.as_dyn().units() > 256 {
            return;
        }
        let again = AnyWiring::from_json(&wiring.to_json()).expect("a saved wiring loads");
        assert_eq!(again, wiring);
        let w = wiring.as_dyn();
        let _ = (w.synapse_count(), w.sensory_synapse_count(), w.layers());
        let mut built = wiring.clone();
        let _ = built.build(1 + data.len() % 4);
    }
});
