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

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use ale::{Ale, BundledRom};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use burn::tensor::TensorData;
use ndarray::{Array1, Array4, ArrayD, Ix1, Ix4, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
const SCREEN_H: usize = 210;
const SCREEN_W: usize = 160;

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

/// Settings of a [`Breakout`] environment. The defaults are upstream's.
#[derive(Clone, Debug)]
pub struct EnvConfig {
    /// Emulator frames per agent step (the action is repeated). Default 4.
    pub frame_skip: usize,
    /// Steps after which a game is cut off (gym's v5 limit is 108 000
    /// frames, 27 000 steps at frame skip 4). Default 27 000.
    pub max_steps: usize,
    /// At most this many NOOP steps after a reset, drawn uniformly
    /// (DeepMind's `NoopResetEnv`): games differ even where ALE's own
    /// generator, seeded from the clock in seconds, repeats. Default 30.
    pub noop_max: usize,
    /// Seed of the NOOP draws.
    pub seed: u64,
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            frame_skip: 4,
            max_steps: 27_000,
            noop_max: 30,
            seed: 0,
        }
    }
}

/// The outcome of one [`Breakout::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Points scored during the step (the FIRE after a lost life included).
    pub reward: f32,
    /// The game is over (no lives left, or `max_steps` reached).
    pub done: bool,
    /// A life was lost during the step.
    pub life_lost: bool,
}

/// Breakout with upstream's preprocessing (see the [module](self) docs).
///
/// Observations are `(84, 84, 4)` uint8, row-major (height, width, frame;
/// frame 3 is the newest): upstream's `obs` layout. The emulator's sticky
/// actions (probability 0.25) draw from ALE's own generator, which ALE 0.6
/// seeds from the clock, so games differ from run to run.
pub struct Breakout {
    ale: Ale,
    config: EnvConfig,
    actions: Vec<i32>,
    /// The last 4 preprocessed frames, oldest first, `[84 * 84]` each.
    frames: [Vec<u8>; STACK],
    observation: Vec<u8>,
    rgb: Vec<u8>,
    gray: [Vec<u8>; 2],
    resize: AreaResize,
    lives: i32,
    steps: usize,
    score: f32,
    rng: ChaCha8Rng,
}

/// FIRE presses (one step each) after a reset or a lost life until the
/// ball is in play; the console ignores the button for a moment after a
/// lost life, and sticky actions may swallow a press.
const MAX_SERVES: usize = 8;

impl Breakout {
    /// Starts the emulator with the bundled Breakout ROM; call
    /// [`reset`](Self::reset) before the first step.
    ///
    /// Fails when the ROM cannot be written to a temporary file.
    pub fn new(config: EnvConfig) -> io::Result<Self> {
        assert!(config.frame_skip >= 1, "frame_skip must be at least 1");
        let seed = config.seed;
        Ale::set_logger_mode(ale::LoggerMode::Error);
        let mut ale = Ale::new();
        ale.load_rom(BundledRom::Breakout)?;
        let actions = ale.minimal_action_set().to_vec();
        assert_eq!(actions, [0, 1, 3, 4], "Breakout's minimal action set");
        let (w, h) = (ale.screen_width(), ale.screen_height());
        assert_eq!((h, w), (SCREEN_H, SCREEN_W), "Atari screen size");
        Ok(Self {
            ale,
            config,
            actions,
            frames: std::array::from_fn(|_| vec![0; FRAME * FRAME]),
            observation: vec![0; OBS_LEN],
            rgb: vec![0; SCREEN_H * SCREEN_W * 3],
            gray: [vec![0; SCREEN_H * SCREEN_W], vec![0; SCREEN_H * SCREEN_W]],
            resize: AreaResize::new(),
            lives: 0,
            steps: 0,
            score: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Starts a new game: resets the console, plays 0 to `noop_max` NOOP
    /// steps, presses FIRE to serve the ball, and fills the frame stack with
    /// the first frame. Returns the observation, `(84, 84, 4)`.
    pub fn reset(&mut self) -> &[u8] {
        self.ale.reset_game();
        self.steps = 0;
        self.score = 0.0;
        let noops = self.rng.random_range(0..=self.config.noop_max);
        for _ in 0..noops {
            self.score += self.repeat(NOOP);
        }
        self.score += self.serve();
        self.lives = self.ale.lives();
        let frame = self.frame();
        for slot in &mut self.frames {
            slot.copy_from_slice(&frame);
        }
        self.stack();
        &self.observation
    }

    /// Plays `action` (an index into [`ACTIONS`]) for `frame_skip` frames;
    /// presses FIRE after a lost life so that the game goes on.
    ///
    /// # Panics
    /// When `action` is not below 4.
    pub fn step(&mut self, action: usize) -> Step {
        assert!(action < ACTIONS.len(), "action {action} is not in 0..4");
        let mut reward = self.repeat(action);
        let lives = self.ale.lives();
        let life_lost = lives < self.lives;
        self.lives = lives;
        if life_lost && !self.ale.is_game_over() {
            reward += self.serve();
        }
        self.steps += 1;
        self.score += reward;
        let frame = self.frame();
        self.frames.rotate_left(1);
        self.frames[STACK - 1] = frame;
        self.stack();
        Step {
            reward,
            done: self.ale.is_game_over() || self.steps >= self.config.max_steps,
            life_lost,
        }
    }

    /// The current observation, `(84, 84, 4)` row-major, newest frame last.
    pub fn observation(&self) -> &[u8] {
        &self.observation
    }

    /// The console's 128 bytes of RAM (see [`ram`]).
    pub fn ram(&mut self) -> [u8; 128] {
        let mut ram = [0; 128];
        self.ale.get_ram(&mut ram);
        ram
    }

    /// Lives left.
    pub fn lives(&self) -> i32 {
        self.lives
    }

    /// Steps since the last reset.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Points scored since the last reset.
    pub fn score(&self) -> f32 {
        self.score
    }

    /// The screen in colour, `(210, 160, 3)` RGB row-major.
    pub fn screen_rgb(&mut self) -> Vec<u8> {
        let mut rgb = vec![0; SCREEN_H * SCREEN_W * 3];
        self.ale.get_screen_rgb(&mut rgb);
        rgb
    }

    /// FIRE until the ball is in play (at most [`MAX_SERVES`] steps).
    fn serve(&mut self) -> f32 {
        let mut reward = 0.0;
        for _ in 0..MAX_SERVES {
            reward += self.repeat(FIRE);
            if self.ale.is_game_over() || self.ram()[ram::BALL_Y] != 0 {
                break;
            }
        }
        reward
    }

    /// Emulator frames; the last two screens in grayscale (older in
    /// `gray[0]`) are kept. Returns the reward.
    fn repeat(&mut self, action: usize) -> f32 {
        let code = self.actions[action];
        let mut reward = 0;
        let skip = self.config.frame_skip;
        for i in 0..skip {
            reward += self.ale.act(code);
            let over = self.ale.is_game_over();
            if i + 2 >= skip || over {
                self.gray.swap(0, 1);
                self.ale.get_screen_rgb(&mut self.rgb);
                to_gray(&self.rgb, &mut self.gray[1]);
            }
            if over {
                break;
            }
        }
        reward as f32
    }

    /// The maximum of the last two grayscale screens, resized to 84x84.
    fn frame(&self) -> Vec<u8> {
        let max: Vec<u8> = self.gray[0]
            .iter()
            .zip(&self.gray[1])
            .map(|(&a, &b)| a.max(b))
            .collect();
        self.resize.apply(&max)
    }

    /// Interleaves the 4 frames into the `(84, 84, 4)` observation.
    fn stack(&mut self) {
        for (p, chunk) in self.observation.chunks_exact_mut(STACK).enumerate() {
            for (k, value) in chunk.iter_mut().enumerate() {
                *value = self.frames[k][p];
            }
        }
    }
}

/// ITU-R 601 luma, as OpenCV's `RGB2GRAY` that DeepMind's wrapper uses.
fn to_gray(rgb: &[u8], gray: &mut [u8]) {
    for (g, px) in gray.iter_mut().zip(rgb.chunks_exact(3)) {
        let y = 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32;
        *g = y.round().min(255.0) as u8;
    }
}

/// Area-averaging resize from 210x160 to 84x84 (OpenCV's `INTER_AREA`):
/// every output pixel is the mean of the source area it covers, with
/// fractional weights at the edges.
struct AreaResize {
    rows: Vec<Vec<(usize, f32)>>,
    cols: Vec<Vec<(usize, f32)>>,
}

impl AreaResize {
    fn new() -> Self {
        Self {
            rows: Self::weights(SCREEN_H, FRAME),
            cols: Self::weights(SCREEN_W, FRAME),
        }
    }

    /// For each output index, the source indices and their weights (summing to 1).
    fn weights(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
        let scale = from as f64 / to as f64;
        (0..to)
            .map(|o| {
                let (start, end) = (o as f64 * scale, (o + 1) as f64 * scale);
                let mut taps = Vec::new();
                let mut i = start.floor() as usize;
                while (i as f64) < end && i < from {
                    let overlap = (end.min(i as f64 + 1.0) - start.max(i as f64)).max(0.0);
                    if overlap > 1e-9 {
                        taps.push((i, (overlap / scale) as f32));
                    }
                    i += 1;
                }
                taps
            })
            .collect()
    }

    fn apply(&self, gray: &[u8]) -> Vec<u8> {
        // Columns first: [210, 84], then rows: [84, 84].
        let mut narrow = vec![0f32; SCREEN_H * FRAME];
        for y in 0..SCREEN_H {
            let row = &gray[y * SCREEN_W..(y + 1) * SCREEN_W];
            for (x, taps) in self.cols.iter().enumerate() {
                narrow[y * FRAME + x] = taps.iter().map(|&(i, w)| row[i] as f32 * w).sum();
            }
        }
        let mut out = vec![0u8; FRAME * FRAME];
        for (y, taps) in self.rows.iter().enumerate() {
            for x in 0..FRAME {
                let v: f32 = taps.iter().map(|&(i, w)| narrow[i * FRAME + x] * w).sum();
                out[y * FRAME + x] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

/// A Breakout player reading the console's RAM: it follows the ball and,
/// while the ball falls, moves the paddle to where the ball will be level
/// with the paddle (unfolding bounces off the side walls). Tuned for frame
/// skip 4, where one step moves the paddle by several pixels: it waits
/// within a dead band around its target rather than chasing it.
#[derive(Clone, Debug, Default)]
pub struct Expert {
    /// The ball's position at the previous step, while in play.
    previous: Option<(f32, f32)>,
    lives: u8,
}

/// The expert's geometry, in RAM coordinates (measured on ALE 0.6).
mod geometry {
    /// Ball y when the ball is level with the paddle.
    pub const PADDLE_Y: f32 = 180.0;
    /// Side walls the ball bounces off (ball x range).
    pub const LEFT_WALL: f32 = 55.0;
    pub const RIGHT_WALL: f32 = 201.0;
    /// Paddle x minus ball x aimed at (a grid search over 6-game means at
    /// frame skip 4 picked it with the dead band).
    pub const PADDLE_OFFSET: f32 = -9.0;
    /// No move when the paddle is this close to the target.
    pub const DEAD_BAND: f32 = 8.0;
    /// Larger jumps between steps are a new serve, not motion.
    pub const MAX_SPEED: f32 = 40.0;
}

impl Expert {
    /// A new expert.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where a falling ball at `ball` (x, y) will be level with the paddle
    /// (ball x, RAM coordinates), from its motion since the previous step;
    /// `None` while it rises or without a previous position.
    pub fn landing(&self, ball: (f32, f32)) -> Option<f32> {
        use geometry::*;
        let (x, y) = ball;
        let (px, py) = self.previous?;
        let (vx, vy) = (x - px, y - py);
        if vy <= 0.0 || vy >= MAX_SPEED || vx.abs() >= MAX_SPEED {
            return None;
        }
        let straight = x + vx * (PADDLE_Y - y) / vy;
        // Unfold the reflections off the side walls.
        let width = RIGHT_WALL - LEFT_WALL;
        let mut t = (straight - LEFT_WALL).rem_euclid(2.0 * width);
        if t > width {
            t = 2.0 * width - t;
        }
        Some(LEFT_WALL + t)
    }

    /// The action (an index into [`ACTIONS`]) for the console's RAM (see
    /// [`Breakout::ram`]).
    pub fn act(&mut self, ram: &[u8; 128]) -> usize {
        use geometry::*;
        let lives = ram[ram::LIVES];
        if lives != self.lives {
            self.lives = lives;
            self.previous = None;
        }
        let paddle = ram[ram::PADDLE_X] as f32;
        let ball = (ram[ram::BALL_X] as f32, ram[ram::BALL_Y] as f32);
        let in_play = ball.1 > 0.0;
        let target = if in_play {
            self.landing(ball).unwrap_or(ball.0)
        } else {
            (LEFT_WALL + RIGHT_WALL) / 2.0
        };
        self.previous = in_play.then_some(ball);
        let error = target + PADDLE_OFFSET - paddle;
        if error > DEAD_BAND {
            RIGHT
        } else if error < -DEAD_BAND {
            LEFT
        } else {
            NOOP
        }
    }
}

/// One demonstration sequence: `obs` `(T, 84, 84, 4)` and `actions` `(T,)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Observations, `T * 84 * 84 * 4` bytes, each as [`Breakout::observation`].
    pub obs: Vec<u8>,
    /// The action taken at each step, indices into [`ACTIONS`].
    pub actions: Vec<u8>,
}

impl Sequence {
    /// Steps in the sequence.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether the sequence has no steps.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// The path of sequence `k` of a split in upstream's layout:
/// `<root>/data_atari_seq/<game>/<split>_<k>.npz`.
pub fn sequence_path(root: &Path, game: &str, split: &str, k: usize) -> PathBuf {
    root.join("data_atari_seq")
        .join(game)
        .join(format!("{split}_{k}.npz"))
}

/// Writes one sequence as upstream's npz: `obs` uint8 `(T, 84, 84, 4)`,
/// `actions` int64 `(T,)` (compressed), through a temporary file and a
/// rename, so that a failed write leaves no half-written file.
pub fn write_sequence(path: &Path, sequence: &Sequence) -> io::Result<()> {
    let t = sequence.len();
    assert_eq!(
        sequence.obs.len(),
        t * OBS_LEN,
        "obs must be T * 84 * 84 * 4"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let obs = Array4::from_shape_vec((t, FRAME, FRAME, STACK), sequence.obs.clone())
        .map_err(io::Error::other)?;
    let actions: Array1<i64> = sequence.actions.iter().map(|&a| a as i64).collect();
    // Built in memory, then written through a temporary file and a rename:
    // an interrupted recording never leaves a half-written file that loads.
    let mut npz = NpzWriter::new_compressed(io::Cursor::new(Vec::new()));
    npz.add_array("obs", &obs).map_err(io::Error::other)?;
    npz.add_array("actions", &actions)
        .map_err(io::Error::other)?;
    let bytes = npz.finish().map_err(io::Error::other)?.into_inner();
    crate::fs::write_atomically(path, &bytes)
}

/// Reads one sequence from an npz file in upstream's layout (`obs` uint8
/// `(T, 84, 84, 4)`; `actions` `(T,)` of any integer type).
pub fn read_sequence(path: &Path) -> io::Result<Sequence> {
    let mut npz = NpzReader::new(BufReader::new(File::open(path)?)).map_err(io::Error::other)?;
    let obs: Array4<u8> = npz.by_name("obs").map_err(io::Error::other)?;
    let t = obs.shape()[0];
    if obs.shape() != [t, FRAME, FRAME, STACK] {
        return Err(io::Error::other(format!(
            "{}: obs has shape {:?}, expected (T, 84, 84, 4)",
            path.display(),
            obs.shape()
        )));
    }
    let actions = read_actions(&mut npz).map_err(io::Error::other)?;
    if actions.len() != t || actions.iter().any(|&a| a < 0 || a >= ACTIONS.len() as i64) {
        return Err(io::Error::other(format!(
            "{}: actions must be T = {t} indices below 4",
            path.display()
        )));
    }
    Ok(Sequence {
        obs: obs.as_standard_layout().iter().copied().collect(),
        actions: actions.iter().map(|&a| a as u8).collect(),
    })
}

/// `actions` as i64 whatever integer type the file stores.
fn read_actions<R: io::Read + io::Seek>(npz: &mut NpzReader<R>) -> Result<Vec<i64>, ReadNpzError> {
    macro_rules! try_type {
        ($($t:ty),*) => {$(
            if let Ok(a) = npz.by_name::<OwnedRepr<$t>, Ix1>("actions") {
                return Ok(a.iter().map(|&v| v as i64).collect());
            }
        )*};
    }
    try_type!(i64, i32, u8, i16, u16, u32, u64, i8);
    // Report the error of the expected type.
    npz.by_name::<OwnedRepr<i64>, Ix1>("actions")
        .map(|a| a.to_vec())
}

/// The demonstration files of one split (upstream's `AtariCloningDataset`):
/// every `<root>/data_atari_seq/<game>/<split>_<k>.npz`, ordered by `k`,
/// one [`Sequence`] per file, read when asked for.
#[derive(Clone, Debug)]
pub struct AtariCloningDataset {
    files: Vec<PathBuf>,
}

impl AtariCloningDataset {
    /// Lists the files of `split` (`"train"` or `"val"`); an error when there
    /// are none.
    pub fn new(root: &Path, game: &str, split: &str) -> io::Result<Self> {
        let dir = root.join("data_atari_seq").join(game);
        let prefix = format!("{split}_");
        let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)?
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                let k = name.strip_prefix(&prefix)?.strip_suffix(".npz")?;
                Some((k.parse().ok()?, path))
            })
            .collect();
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no {split}_<k>.npz files in {}", dir.display()),
            ));
        }
        files.sort();
        Ok(Self {
            files: files.into_iter().map(|(_, path)| path).collect(),
        })
    }

    /// The files, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Dataset<Sequence> for AtariCloningDataset {
    /// Reads file `index`; `None` past the end.
    ///
    /// # Panics
    /// When the file cannot be read.
    fn get(&self, index: usize) -> Option<Sequence> {
        let path = self.files.get(index)?;
        Some(read_sequence(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    fn len(&self) -> usize {
        self.files.len()
    }
}

/// A batch of sequences as tensors.
#[derive(Clone, Debug)]
pub struct AtariBatch<B: Backend> {
    /// Observations `[batch, T, 4, 84, 84]`, values in `[0, 1]`.
    pub obs: Tensor<B, 5>,
    /// Actions `[batch, T]`.
    pub actions: Tensor<B, 2, Int>,
}

/// Stacks [`Sequence`]s of equal length into an [`AtariBatch`] (channels
/// first and scaled to `[0, 1]`, as upstream's loader does).
#[derive(Clone, Copy, Debug, Default)]
pub struct AtariBatcher;

impl<B: Backend> Batcher<B, Sequence, AtariBatch<B>> for AtariBatcher {
    fn batch(&self, items: Vec<Sequence>, device: &B::Device) -> AtariBatch<B> {
        let batch = items.len();
        let t = items.first().map_or(0, Sequence::len);
        assert!(
            items.iter().all(|s| s.len() == t),
            "sequences of one batch must have the same length"
        );
        let mut obs = Vec::with_capacity(batch * t * OBS_LEN);
        let mut actions = Vec::with_capacity(batch * t);
        for item in &items {
            obs.extend(observations_chw(&item.obs));
            actions.extend(item.actions.iter().map(|&a| a as i64));
        }
        AtariBatch {
            obs: Tensor::from_data(
                TensorData::new(obs, [batch, t, STACK, FRAME, FRAME]),
                device,
            ),
            actions: Tensor::from_data(TensorData::new(actions, [batch, t]), device),
        }
    }
}

/// Observations `(n, 84, 84, 4)` uint8 as `(n, 4, 84, 84)` floats in
/// `[0, 1]`: the input layout of a convolution.
pub fn observations_chw(obs: &[u8]) -> Vec<f32> {
    let n = obs.len() / OBS_LEN;
    let array = ArrayD::from_shape_vec(vec![n, FRAME, FRAME, STACK], obs.to_vec())
        .expect("whole observations")
        .into_dimensionality::<Ix4>()
        .expect("4 axes");
    let chw = array.permuted_axes([0, 3, 1, 2]);
    chw.as_standard_layout()
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect()
}
