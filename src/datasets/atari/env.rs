//! Breakout on the Arcade Learning Environment, with DeepMind's
//! preprocessing.

use std::io;

use ale::{Ale, BundledRom};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ACTIONS, FIRE, FRAME, NOOP, OBS_LEN, SCREEN_H, SCREEN_W, STACK, ram};

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

/// Breakout with upstream's preprocessing (see the [module](super) docs).
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
