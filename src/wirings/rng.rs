//! The random draws of the wirings, on a portable seeded stream.
//!
//! `ChaCha8Rng` gives the same numbers on every platform; the draws below use
//! only `random_range` on `u32`-sized ranges, so a seed maps to the same
//! matrices everywhere (the digest test in `tests/suite/wirings.rs` pins them).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Polarity;

/// Stream of the neuron-to-neuron synapses drawn at construction.
pub(crate) const INTERNAL_STREAM: u64 = 0;
/// Stream of the sensory synapses drawn at `build`.
pub(crate) const SENSORY_STREAM: u64 = 1;

pub(crate) fn seeded(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// `amount` distinct elements of `pool`, in draw order (partial Fisher-Yates).
pub(crate) fn choose_distinct(rng: &mut ChaCha8Rng, pool: &[usize], amount: usize) -> Vec<usize> {
    debug_assert!(
        amount <= pool.len(),
        "cannot draw {amount} of {}",
        pool.len()
    );
    let mut pool = pool.to_vec();
    for i in 0..amount {
        let j = rng.random_range(i as u32..pool.len() as u32) as usize;
        pool.swap(i, j);
    }
    pool.truncate(amount);
    pool
}

/// One element of `pool`.
pub(crate) fn choose_one(rng: &mut ChaCha8Rng, pool: &[usize]) -> usize {
    pool[rng.random_range(0..pool.len() as u32) as usize]
}

/// A polarity from `{-1, +1, +1}`: two thirds excitatory, as upstream's
/// `FullyConnected` and `Random` draw them.
pub(crate) fn mostly_excitatory(rng: &mut ChaCha8Rng) -> Polarity {
    if rng.random_range(0..3u32) == 0 {
        Polarity::Inhibitory
    } else {
        Polarity::Excitatory
    }
}

/// A polarity from `{-1, +1}`, as upstream's `NCP` draws them.
pub(crate) fn fair(rng: &mut ChaCha8Rng) -> Polarity {
    if rng.random_range(0..2u32) == 0 {
        Polarity::Inhibitory
    } else {
        Polarity::Excitatory
    }
}
