//! The RAM expert that provides the demonstrations.

#[cfg(doc)]
use super::{ACTIONS, Breakout};
use super::{LEFT, NOOP, RIGHT, ram};

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
