//! The policy: a convolutional trunk on every frame stack, then
//! `CfC(256, 64, batch_first, proj_size = 4)` over time (upstream's
//! `ConvCfC`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use ncps::rnn::{CfC, CfCConfig, RnnState, Units};

/// Features the trunk hands the CfC per frame.
pub const FEATURES: usize = 256;
/// CfC hidden units.
pub const UNITS: usize = 64;

/// Which convolutional trunk.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum Trunk {
    /// [`PatchTrunk`]: DQN's first convolution (8x8/4: 32) and a dense
    /// layer to 256: about 13 MFLOP per frame.
    Small,
    /// Upstream's ConvBlock (5x5/2 convolutions: 64, 128 + batch norm,
    /// 128, 256 + batch norm, ReLU, global average pool): about 360 MFLOP
    /// per frame.
    Upstream,
}

/// Side of the first layer's output map: 8x8 windows at stride 4 on 84x84.
const MAP: usize = 20;
/// Values in one 8x8 window of the 4 stacked frames.
const PATCH: usize = 4 * 8 * 8;
/// Channels of the first layer.
const CHANNELS: usize = 32;

/// A small trunk: DQN's first convolution (8x8, stride 4, 32 channels,
/// ReLU), computed as one matrix product over 8x8 patches that are cut from
/// the observations on the host (im2col: observations are data, nothing
/// flows back into them), then a dense layer from the 20x20x32 map to
/// [`FEATURES`] with ReLU. Burn's ndarray `conv2d` is a direct loop whose
/// backward pass takes seconds per batch on 2 cores, and copying strided
/// views is slow too; this trunk runs on matrix products only.
#[derive(Module, Debug)]
pub struct PatchTrunk<B: Backend> {
    /// The convolution's kernel as `[4 * 8 * 8, 32]` with bias.
    conv: Linear<B>,
    /// `[20 * 20 * 32, 256]` with bias.
    fc: Linear<B>,
}

/// The 8x8 patches of observations `[n, 4, 84, 84]` (row-major values) at
/// stride 4: `[n * 400, 256]`, each patch ordered (channel, row, column) as
/// a convolution kernel.
pub fn patches(obs: &[f32], n: usize) -> Vec<f32> {
    const SIDE: usize = 84;
    let mut out = Vec::with_capacity(n * MAP * MAP * PATCH);
    for frame in obs.chunks_exact(4 * SIDE * SIDE).take(n) {
        for oy in 0..MAP {
            for ox in 0..MAP {
                for c in 0..4 {
                    for ky in 0..8 {
                        let row = c * SIDE * SIDE + (oy * 4 + ky) * SIDE + ox * 4;
                        out.extend_from_slice(&frame[row..row + 8]);
                    }
                }
            }
        }
    }
    out
}

/// Upstream's `ConvBlock`.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv1: Conv2d<B>,
    conv2: Conv2d<B>,
    bn2: BatchNorm<B>,
    conv3: Conv2d<B>,
    conv4: Conv2d<B>,
    bn4: BatchNorm<B>,
}

/// One of the two trunks.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyTrunk<B: Backend> {
    /// [`Trunk::Small`].
    Small(PatchTrunk<B>),
    /// [`Trunk::Upstream`].
    Upstream(ConvBlock<B>),
}

impl<B: Backend> AnyTrunk<B> {
    fn new(trunk: Trunk, device: &B::Device) -> Self {
        let conv = |i, o, k, s, p| {
            Conv2dConfig::new([i, o], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(device)
        };
        match trunk {
            Trunk::Small => AnyTrunk::Small(PatchTrunk {
                // Kaiming-uniform on fan_in = 4 * 8 * 8, as Conv2d's default.
                conv: LinearConfig::new(PATCH, CHANNELS).init(device),
                fc: LinearConfig::new(MAP * MAP * CHANNELS, FEATURES).init(device),
            }),
            Trunk::Upstream => AnyTrunk::Upstream(ConvBlock {
                conv1: conv(4, 64, 5, 2, 2),
                conv2: conv(64, 128, 5, 2, 2),
                bn2: BatchNormConfig::new(128).init(device),
                conv3: conv(128, 128, 5, 2, 2),
                conv4: conv(128, 256, 5, 2, 2),
                bn4: BatchNormConfig::new(256).init(device),
            }),
        }
    }

    /// `[n, 4, 84, 84]` to `[n, 256]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            AnyTrunk::Small(t) => {
                let [n, c, h, w] = x.dims();
                assert_eq!(
                    [c, h, w],
                    [4, 84, 84],
                    "observations must be [n, 4, 84, 84]"
                );
                let device = x.device();
                let values = x
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("float data");
                let p = Tensor::<B, 2>::from_data(
                    TensorData::new(patches(&values, n), [n * MAP * MAP, PATCH]),
                    &device,
                );
                // [n * 400, 32] is row-major [n, 20, 20, 32]: flattening per frame is free.
                let map = relu(t.conv.forward(p)).reshape([n, MAP * MAP * CHANNELS]);
                relu(t.fc.forward(map))
            }
            AnyTrunk::Upstream(t) => {
                let x = relu(t.conv1.forward(x));
                let x = relu(t.bn2.forward(t.conv2.forward(x)));
                let x = relu(t.conv3.forward(x));
                let x = relu(t.bn4.forward(t.conv4.forward(x)));
                // Global average pooling.
                x.mean_dim(3).mean_dim(2).flatten(1, 3)
            }
        }
    }
}

/// A conv trunk applied to every frame stack, then a CfC over time
/// (upstream's `ConvCfC`).
#[derive(Module, Debug)]
pub struct ConvCfC<B: Backend> {
    pub trunk: AnyTrunk<B>,
    pub rnn: CfC<B>,
}

impl<B: Backend> ConvCfC<B> {
    /// A freshly initialised policy with `actions` outputs.
    pub fn new(trunk: Trunk, actions: usize, device: &B::Device) -> Self {
        let rnn = CfCConfig::new(FEATURES, Units::from(UNITS))
            .with_batch_first(true)
            .with_proj_size(Some(actions))
            .init(device)
            .expect("valid CfC");
        Self {
            trunk: AnyTrunk::new(trunk, device),
            rnn,
        }
    }

    /// Observations `[batch, time, 4, 84, 84]` to action logits
    /// `[batch, time, actions]` and the final state.
    pub fn forward(
        &self,
        x: Tensor<B, 5>,
        state: Option<RnnState<B, 2>>,
    ) -> (Tensor<B, 3>, RnnState<B, 2>) {
        let [batch, time, c, h, w] = x.dims();
        let features = self.trunk.forward(x.reshape([batch * time, c, h, w]));
        self.rnn
            .forward(features.reshape([batch, time, FEATURES]), state)
    }
}
