//! Tasks and data, as upstream's `ncps.datasets`.
//!
//! | module | contents |
//! |---|---|
//! | [`sine`] | the quickstart's sinusoid task and its full-batch training loop |
//! | [`uea`] | UEA/UCR time-series classification files (`.ts`): a reader, a `burn::data` dataset, a padding batcher, standardization |
//! | `atari` | Breakout on the Arcade Learning Environment, a RAM expert, upstream's `AtariCloningDataset` (feature `atari`; GPL-2.0 emulator) |

#[cfg(feature = "atari")]
pub mod atari;
pub mod sine;
pub mod uea;
