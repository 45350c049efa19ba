//! Atari Breakout on the Arcade Learning Environment, for behavior cloning
//! (upstream's `AtariCloningDataset` and the environment of its
//! `atari_torch.py` example). Only with the cargo feature `atari`.
//!
//! - [`Breakout`]: the emulator (ALE 0.6 through the `ale` crate, ROM
//!   bundled) with the preprocessing of gym's `ALE/Breakout-v5` and
//!   DeepMind's wrappers: sticky actions (0.25), frame skip 4 with the
//!   maximum over the last two frames, grayscale, 84x84, a stack of the last
//!   4 frames, FIRE on reset and after a lost life, the minimal action set
//!   ([`ACTIONS`]), episode end on game over.
//! - [`Expert`]: a policy reading the console's RAM that moves the paddle
//!   to where the ball will land; it provides the demonstrations.
//! - [`write_sequence`], [`AtariCloningDataset`], [`AtariBatcher`]: the
//!   demonstrations in upstream's layout,
//!   `data_atari_seq/<game>/{train,val}_<k>.npz`, each file one sequence with
//!   `obs` uint8 `(T, 84, 84, 4)` and `actions` int64 `(T,)`, read back as a
//!   `burn::data` dataset and batched as `[batch, T, 4, 84, 84]` floats in
//!   `[0, 1]` (channels first, as upstream's loader).
//!
//! Files by concern: `env.rs` (the emulator and its preprocessing),
//! `expert.rs` (the RAM expert), `npz.rs` (sequences in upstream's npz
//! layout), `dataset.rs` (the `burn::data` dataset and batcher),
//! `record.rs` (expert games recorded as sequences) and `play.rs`
//! (closed-loop returns of the expert and of random play).
//!
//! The emulator is GPL-2.0 C++ code compiled into every binary built with
//! this feature; such binaries are therefore GPL-2.0. The library without
//! the feature stays Apache-2.0.
//!
//! ```
//! use ncps::datasets::atari::{Breakout, EnvConfig, Expert, OBS_LEN};
//!
//! // A game cut off after 300 steps (a whole game: `EnvConfig::default()`).
//! let config = EnvConfig { max_steps: 300, ..EnvConfig::default() };
//! let mut env = Breakout::new(config)?;
//! let mut expert = Expert::new();
//! let mut total = 0.0;
//! env.reset();
//! loop {
//!     assert_eq!(env.observation().len(), OBS_LEN); // (84, 84, 4), row-major
//!     let action = expert.act(&env.ram());
//!     let step = env.step(action);
//!     total += step.reward;
//!     if step.done {
//!         break;
//!     }
//! }
//! assert_eq!(total, env.score());
//! assert!(total > 0.0, "the expert scores within 300 steps");
//! # Ok::<(), std::io::Error>(())
//! ```

mod dataset;
mod env;
mod expert;
mod npz;
mod play;
mod record;

pub use dataset::{AtariBatch, AtariBatcher, AtariCloningDataset, observations_chw};
pub use env::{Breakout, EnvConfig, Step};
pub use expert::Expert;
pub use npz::{Sequence, read_sequence, sequence_path, write_sequence};
pub use play::{Returns, play_baseline, returns_table};
pub use record::{Game, Recorded, expert_game, record};

// ALE is C++: its static library needs the C++ runtime in the final binary.
#[link(name = "stdc++")]
unsafe extern "C" {}

/// Side of the square frames the policy sees.
pub const FRAME: usize = 84;
/// Frames in one observation (the current one and the 3 before it).
pub const STACK: usize = 4;
/// Values in one observation: `(84, 84, 4)`.
pub const OBS_LEN: usize = FRAME * FRAME * STACK;
/// The minimal action set of Breakout, in ALE's (and gym's) order; an
/// action is an index into it.
pub const ACTIONS: [&str; 4] = ["NOOP", "FIRE", "RIGHT", "LEFT"];
/// Index of NOOP in [`ACTIONS`].
pub const NOOP: usize = 0;
/// Index of FIRE in [`ACTIONS`].
pub const FIRE: usize = 1;
/// Index of RIGHT in [`ACTIONS`].
pub const RIGHT: usize = 2;
/// Index of LEFT in [`ACTIONS`].
pub const LEFT: usize = 3;

/// Height and width of the Atari screen.
pub(crate) const SCREEN_H: usize = 210;
pub(crate) const SCREEN_W: usize = 160;

/// Breakout's RAM addresses the [`Expert`] reads.
pub mod ram {
    /// Paddle x.
    pub const PADDLE_X: usize = 72;
    /// Ball x.
    pub const BALL_X: usize = 99;
    /// Ball y.
    pub const BALL_Y: usize = 101;
    /// Lives left.
    pub const LIVES: usize = 57;
}
