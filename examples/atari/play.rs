//! `play`: closed-loop games of the trained policy (through the stateful
//! step API, its state reset at each new game); the expert's and random
//! play are `ncps::datasets::atari::play_baseline`.

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::TensorData;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbImage, RgbaImage};
use ncps::datasets::atari::{Breakout, EnvConfig, FRAME, Returns, STACK, observations_chw};
use ncps::rnn::RnnState;

use crate::model::ConvCfC;

/// Frames of game 0 written as PNGs and an animated GIF.
struct FrameSaver<'a> {
    dir: &'a Path,
    frames: Vec<RgbImage>,
}

/// At most this many frames go into the GIF (the PNGs have them all).
const GIF_FRAMES: usize = 3000;

impl<'a> FrameSaver<'a> {
    fn new(dir: &'a Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir,
            frames: Vec::new(),
        })
    }

    fn push(&mut self, env: &mut Breakout) -> Result<(), Box<dyn std::error::Error>> {
        let image = RgbImage::from_raw(160, 210, env.screen_rgb()).expect("210x160 RGB");
        image.save(self.dir.join(format!("frame_{:05}.png", self.frames.len())))?;
        if self.frames.len() < GIF_FRAMES {
            self.frames.push(image);
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Box<dyn std::error::Error>> {
        let file = std::fs::File::create(self.dir.join("game.gif"))?;
        let mut gif = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 20);
        gif.set_repeat(Repeat::Infinite)?;
        // Frame skip 4 at 60 Hz: 15 steps per second.
        let delay = Delay::from_numer_denom_ms(200, 3);
        gif.encode_frames(self.frames.into_iter().map(|rgb| {
            let rgba = RgbaImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                let p = rgb.get_pixel(x, y).0;
                image::Rgba([p[0], p[1], p[2], 255])
            });
            Frame::from_parts(rgba, 0, 0, delay)
        }))?;
        println!(
            "wrote the frames of game 1 and game.gif to {}",
            self.dir.display()
        );
        Ok(())
    }
}

/// Plays `games` games with the policy, all at once as one batch: every
/// step runs the trunk on the frame stacks of the games still going and
/// advances the CfC's state through [`ncps::rnn::Stateful`]; a finished
/// game's row leaves the state (each game starts from the zero state).
pub fn play_policy<B: Backend>(
    model: &ConvCfC<B>,
    games: usize,
    config: &EnvConfig,
    save_frames: Option<&Path>,
    device: &B::Device,
) -> Result<Returns, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut envs = (0..games)
        .map(|g| {
            Breakout::new(EnvConfig {
                seed: config.seed + g as u64,
                ..config.clone()
            })
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut saver = save_frames.map(FrameSaver::new).transpose()?;
    for env in &mut envs {
        env.reset();
    }
    if let Some(saver) = &mut saver {
        saver.push(&mut envs[0])?;
    }
    let mut scores = vec![0.0; games];
    let mut active: Vec<usize> = (0..games).collect();
    let mut policy = model.rnn.stateful();
    let mut steps = 0;
    while !active.is_empty() {
        let obs: Vec<u8> = active
            .iter()
            .flat_map(|&g| envs[g].observation().iter().copied())
            .collect();
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(observations_chw(&obs), [active.len(), STACK, FRAME, FRAME]),
            device,
        );
        let logits = policy.step(model.trunk.forward(x));
        let actions = logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()?;
        let mut keep = Vec::with_capacity(active.len());
        for (row, (&g, &action)) in active.iter().zip(&actions).enumerate() {
            let step = envs[g].step(action as usize);
            steps += 1;
            if g == 0
                && let Some(saver) = &mut saver
            {
                saver.push(&mut envs[0])?;
            }
            if step.done {
                scores[g] = envs[g].score();
            } else {
                keep.push(row);
            }
        }
        if keep.len() < active.len() && !keep.is_empty() {
            let state = policy.state().expect("stepped").clone();
            let rows = Tensor::<B, 1, Int>::from_data(
                TensorData::new(keep.iter().map(|&r| r as i64).collect(), [keep.len()]),
                device,
            );
            policy.set_state(RnnState {
                hidden: state.hidden.select(0, rows.clone()),
                memory: state.memory.map(|m| m.select(0, rows)),
            });
        }
        active = keep.iter().map(|&row| active[row]).collect();
    }
    if let Some(saver) = saver {
        saver.finish()?;
    }
    Ok(Returns {
        player: "CfC policy".into(),
        scores,
        steps,
        seconds: start.elapsed().as_secs_f64(),
    })
}
