//! Dropout factors from a counter-based generator: unit `i` of stream
//! `s` under seed `k` is kept when SplitMix64's output for counter
//! `(s, i)` falls below `keep · 2^64`, so any element is drawn on its own
//! (in parallel, in any order, the same on every split) and a whole
//! sequence's masks cost one seed from the backend's RNG.

use super::parallel;

/// SplitMix64's increment (2^64 / golden ratio) and output function.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Elements below this many are filled on one thread.
const PER_THREAD: usize = 1 << 16;

/// Fills `factors` with the dropout factors of stream `stream` under
/// `seed`: `1 / keep` for a kept unit, 0 for a dropped one, unit `i` kept
/// with probability `keep` (`0 < keep <= 1`), independently of every other
/// unit, stream and seed. Streams hold up to 2^48 units each.
pub(crate) fn counter_factors(seed: u64, stream: u64, keep: f64, factors: &mut [f32]) {
    assert!(
        keep > 0.0 && keep <= 1.0,
        "keep must be in (0, 1], got {keep}"
    );
    assert!(
        stream < 1 << 16 && factors.len() <= 1 << 48,
        "dropout stream {stream} of {} units is out of the counter's range",
        factors.len()
    );
    // `keep · 2^64` as an integer; 1.0 saturates to u64::MAX (one miss in
    // 2^64 draws).
    let threshold = (keep * 18_446_744_073_709_551_616.0) as u64;
    let scale = (1.0 / keep) as f32;
    let base = seed.wrapping_add((stream << 48).wrapping_mul(GOLDEN));
    parallel::fill(factors, PER_THREAD, |first, chunk| {
        for (i, factor) in (first as u64..).zip(chunk) {
            let draw = splitmix64(base.wrapping_add(i.wrapping_mul(GOLDEN)));
            *factor = if draw < threshold { scale } else { 0.0 };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors(seed: u64, stream: u64, keep: f64, n: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; n];
        counter_factors(seed, stream, keep, &mut out);
        out
    }

    /// SplitMix64's first three outputs from seed 0, as published with
    /// Vigna's reference `splitmix64.c` (and Java's `SplittableRandom`):
    /// the generator is the real one.
    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        let outputs: Vec<u64> = (1..=3u64)
            .map(|n| splitmix64(n.wrapping_mul(GOLDEN)))
            .collect();
        assert_eq!(
            outputs,
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
    }

    #[test]
    fn factors_are_zero_or_the_inverse_keep_at_the_keep_rate() {
        let n = 1 << 20;
        for keep in [0.1, 0.5, 0.9] {
            let out = factors(7, 0, keep, n);
            let scale = (1.0 / keep) as f32;
            assert!(out.iter().all(|&f| f == 0.0 || f == scale), "keep {keep}");
            let kept = out.iter().filter(|&&f| f != 0.0).count() as f64 / n as f64;
            // Five standard deviations of a binomial proportion.
            let sigma = (keep * (1.0 - keep) / n as f64).sqrt();
            assert!((kept - keep).abs() < 5.0 * sigma, "keep {keep}: {kept}");
            // Neighbours are independent: P(both kept) = keep².
            let pairs = out.windows(2).filter(|w| w[0] != 0.0 && w[1] != 0.0);
            let both = pairs.count() as f64 / (n - 1) as f64;
            assert!(
                (both - keep * keep).abs() < 5.0 * sigma,
                "keep {keep}: {both}"
            );
        }
        assert!(factors(7, 0, 1.0, 4096).iter().all(|&f| f == 1.0));
    }

    #[test]
    fn seeds_and_streams_draw_their_own_masks_the_same_on_every_split() {
        let n = 3 * PER_THREAD + 17;
        let a = factors(1, 0, 0.5, n);
        assert_eq!(a, factors(1, 0, 0.5, n), "the same seed and stream");
        for other in [factors(2, 0, 0.5, n), factors(1, 1, 0.5, n)] {
            let same = a.iter().zip(&other).filter(|(x, y)| x == y).count();
            // Independent masks agree on about half the units at keep 0.5.
            let agree = same as f64 / n as f64;
            assert!((agree - 0.5).abs() < 0.01, "{agree}");
        }
        // A prefix is the same units whatever the length (and the split).
        assert_eq!(factors(1, 0, 0.5, 1000), a[..1000]);
    }
}
