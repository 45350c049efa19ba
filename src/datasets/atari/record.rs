//! Recording: the RAM expert plays; its games are cut into sequences and
//! written in upstream's layout.

use std::path::Path;
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    Breakout, EnvConfig, Expert, FRAME, LEFT, NOOP, OBS_LEN, RIGHT, STACK, Sequence, sequence_path,
    write_sequence,
};

/// One game of the expert.
pub struct Game {
    /// The newest frame of each observation, `84 * 84` bytes each.
    pub frames: Vec<u8>,
    /// The expert's action at each step.
    pub actions: Vec<u8>,
    /// The game's score.
    pub score: f32,
}

/// Plays one game with the expert, keeping every frame and the expert's
/// action. With probability `noise` a step executes a random movement
/// (NOOP, RIGHT or LEFT) instead, while the expert's choice is still what is
/// recorded: the demonstrations then show how the expert recovers from
/// small mistakes, states a pure expert never visits but a cloned policy
/// does (noise injection, as in DART, Laskey et al. 2017).
pub fn expert_game(env: &mut Breakout, noise: f64, rng: &mut ChaCha8Rng) -> Game {
    let mut expert = Expert::new();
    let mut frames = Vec::new();
    let mut actions = Vec::new();
    env.reset();
    loop {
        frames.extend(env.observation().iter().skip(STACK - 1).step_by(STACK));
        let action = expert.act(&env.ram());
        actions.push(action as u8);
        let executed = if rng.random_bool(noise) {
            [NOOP, RIGHT, LEFT][rng.random_range(0..3)]
        } else {
            action
        };
        if env.step(executed).done {
            break;
        }
    }
    Game {
        frames,
        actions,
        score: env.score(),
    }
}

/// The observations of `steps`, rebuilt from a game's frames: at step `t`
/// the stack holds frames `t-3..=t` (the first frame repeated at the start,
/// as after a reset).
fn stacked(frames: &[u8], steps: std::ops::Range<usize>) -> Vec<u8> {
    let pixels = FRAME * FRAME;
    let mut obs = Vec::with_capacity(steps.len() * OBS_LEN);
    for t in steps {
        let sources: [&[u8]; STACK] = std::array::from_fn(|k| {
            let f = (t + k).saturating_sub(STACK - 1);
            &frames[f * pixels..(f + 1) * pixels]
        });
        for p in 0..pixels {
            obs.extend(sources.iter().map(|s| s[p]));
        }
    }
    obs
}

/// What [`record`] measured.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The score of each game.
    pub scores: Vec<f32>,
    /// Training sequences written.
    pub train: usize,
    /// Validation sequences written.
    pub val: usize,
    /// How often the expert chose each action in the training sequences.
    pub action_counts: [usize; 4],
    /// Steps played in all games.
    pub steps: usize,
    /// Seconds the recording took.
    pub seconds: f64,
}

/// Plays `games` expert games on two threads, writes every whole
/// `seq_len`-step window as one file in upstream's layout under `root`
/// (the last `val_games` games to the `val` split, the others to
/// `train`; files of an earlier recording are removed first), and returns
/// what it measured. `noise` is [`expert_game`]'s.
///
/// # Errors
/// When the emulator cannot start or a file cannot be written.
pub fn record(
    root: &Path,
    games: usize,
    val_games: usize,
    seq_len: usize,
    noise: f64,
    config: &EnvConfig,
) -> Result<Recorded, Box<dyn std::error::Error>> {
    let dir = root.join("data_atari_seq").join("breakout");
    if dir.exists() {
        // Old files of another run would mix in.
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "npz") {
                std::fs::remove_file(path)?;
            }
        }
    }
    let start = Instant::now();
    let threads = 2.min(games.max(1));
    let results: Vec<(usize, Game)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut env = Breakout::new(EnvConfig {
                        seed: config.seed + t as u64,
                        ..config.clone()
                    })?;
                    let mut rng = ChaCha8Rng::seed_from_u64(config.seed + 100 + t as u64);
                    Ok((t..games)
                        .step_by(threads)
                        .map(|g| (g, expert_game(&mut env, noise, &mut rng)))
                        .collect::<Vec<_>>())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("expert thread"))
            .collect::<std::io::Result<Vec<Vec<_>>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let mut results = results;
    results.sort_by_key(|(g, _)| *g);
    let mut scores = Vec::new();
    let mut counts = [0usize; 4];
    let (mut train, mut val) = (0, 0);
    let mut jobs = Vec::new();
    for (g, game) in &results {
        scores.push(game.score);
        let split_val = *g >= games - val_games.min(games);
        let steps = game.actions.len();
        for w in 0..steps / seq_len {
            let range = w * seq_len..(w + 1) * seq_len;
            let (split, k) = if split_val {
                val += 1;
                ("val", val - 1)
            } else {
                train += 1;
                for &a in &game.actions[range.clone()] {
                    counts[a as usize] += 1;
                }
                ("train", train - 1)
            };
            jobs.push((sequence_path(root, "breakout", split, k), game, range));
        }
    }
    // Stack and compress on two threads.
    std::thread::scope(|scope| {
        let half = jobs.len().div_ceil(2);
        let handles: Vec<_> = jobs
            .chunks(half.max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().try_for_each(|(path, game, range)| {
                        let sequence = Sequence {
                            obs: stacked(&game.frames, range.clone()),
                            actions: game.actions[range.clone()].to_vec(),
                        };
                        write_sequence(path, &sequence)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("writer thread"))
    })?;
    let steps: usize = results.iter().map(|(_, g)| g.actions.len()).sum();
    Ok(Recorded {
        scores,
        train,
        val,
        action_counts: counts,
        steps,
        seconds: start.elapsed().as_secs_f64(),
    })
}
