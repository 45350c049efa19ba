//! `StateDict::from_pt_bytes` (`torch.save` zip + pickle) on arbitrary
//! bytes, then everything that reads a model description from a state
//! dict: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ncps::import::StateDict;
use ncps::rnn::{CfCConfig, LTCConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(dict) = StateDict::from_pt_bytes(data) {
        for name in dict.names() {
            let _ = (dict.shape(name), dict.values(name), dict.dtype(name));
        }
        let _ = dict.wiring();
        let _ = LTCConfig::from_state_dict(&dict);
        let _ = CfCConfig::from_state_dict(&dict);
    }
});
