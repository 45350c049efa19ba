//! Tasks and data, as upstream's `ncps.datasets`.
//!
//! | module | contents |
//! |---|---|
//! | [`sine`] | the quickstart's sinusoid task and its full-batch training loop |

pub mod sine;
#[cfg(feature = "atari")]
pub mod atari;
