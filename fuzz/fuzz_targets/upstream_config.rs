//! `AnyWiring::from_upstream_config` (upstream's `get_config()` JSON) on
//! arbitrary text: an error or a wiring, never a panic; what it accepts
//! saves and loads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ncps::wirings::AnyWiring;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(wiring) = AnyWiring::from_upstream_config(text) {
        // A wiring's JSON grows with units²: round-trip the small ones.
        if wiring.as_dyn().units() > 256 {
            return;
        }
        let again = AnyWiring::from_json(&wiring.to_json()).expect("a read wiring saves and loads");
        assert_eq!(again, wiring);
    }
});
