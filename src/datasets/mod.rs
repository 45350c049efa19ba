//! Tasks and data, as upstream's `ncps.datasets`.
//!
//! | module | contents |
//! |---|---|
//! | [`sine`] | the quickstart's sinusoid task (one sequence, full batch) |
//! | [`uea`] | UEA/UCR time-series classification files (`.ts`): a reader, a `burn::data` dataset, a padding batcher, standardization |
//! | [`walker2d`] | the CfC paper's Walker2d kinematics: upstream's rollouts, split, irregular sampling and windows; the task's model |
//! | `atari` | Breakout on the Arcade Learning Environment, a RAM expert, upstream's `AtariCloningDataset` (feature `atari`; GPL-2.0 emulator) |

#[cfg(feature = "atari")]
pub mod atari;
pub mod sine;
pub mod uea;
pub mod walker2d;
