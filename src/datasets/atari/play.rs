//! Closed-loop returns: the expert and uniformly random play.

use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ACTIONS, Breakout, EnvConfig, Expert};

/// Returns of a set of games.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Returns {
    /// Who played.
    pub player: String,
    /// The score of each game.
    pub scores: Vec<f32>,
    /// Steps played in all games.
    pub steps: usize,
    /// Seconds the games took.
    pub seconds: f64,
}

impl Returns {
    /// Mean score.
    pub fn mean(&self) -> f32 {
        self.scores.iter().sum::<f32>() / self.scores.len().max(1) as f32
    }

    /// Population standard deviation (numpy's default).
    pub fn std(&self) -> f32 {
        let m = self.mean();
        (self.scores.iter().map(|s| (s - m).powi(2)).sum::<f32>() / self.scores.len().max(1) as f32)
            .sqrt()
    }
}

/// The expert or uniformly random actions, one game after another.
///
/// # Errors
/// When the emulator cannot start.
pub fn play_baseline(expert: bool, games: usize, config: &EnvConfig) -> std::io::Result<Returns> {
    let start = Instant::now();
    let mut env = Breakout::new(config.clone())?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut scores = Vec::with_capacity(games);
    let mut steps = 0;
    for _ in 0..games {
        let mut player = Expert::new();
        env.reset();
        loop {
            let action = if expert {
                player.act(&env.ram())
            } else {
                rng.random_range(0..ACTIONS.len())
            };
            steps += 1;
            if env.step(action).done {
                break;
            }
        }
        scores.push(env.score());
    }
    Ok(Returns {
        player: if expert { "RAM expert" } else { "random" }.into(),
        scores,
        steps,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Returns as one Markdown table, a row per set of games.
pub fn returns_table(rows: &[&Returns]) -> String {
    let mut out = String::from(
        "| player | games | mean return | std | min | max | steps/game |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let min = r.scores.iter().copied().fold(f32::INFINITY, f32::min);
        let max = r.scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        out += &format!(
            "| {} | {} | {:.1} | {:.1} | {} | {} | {} |\n",
            r.player,
            r.scores.len(),
            r.mean(),
            r.std(),
            min,
            max,
            r.steps / r.scores.len().max(1)
        );
    }
    out
}
