//! The runtime, as compiled into the crate, driven by a lowered program:
//! the generated code's arithmetic without a compiler in the loop.
//! `tests/suite/export.rs` compiles the generated files themselves.

use std::collections::HashMap;

use burn::backend::NdArray;
use burn::prelude::*;

use super::program::{Act, Cell, CfcLayer, Head, Linear, Program, SynapseArrays, Values};
use super::{Export, Index, runtime};
use crate::cells::{Activation, CfCCellOptions, CfCMode, HeadActivation};
use crate::rnn::{CfCConfig, LTCConfig, LstmOutput, Units};
use crate::wirings::{AutoNCP, FullyConnected};

type B = NdArray<f32>;

/// The program's arrays by name.
struct Arrays {
    floats: HashMap<String, Vec<f32>>,
    indices: HashMap<String, Vec<Index>>,
}

impl Arrays {
    fn new(p: &Program) -> Self {
        let mut floats = HashMap::new();
        let mut indices = HashMap::new();
        for a in &p.arrays {
            match &a.values {
                Values::F32(v) => {
                    floats.insert(a.name.clone(), v.clone());
                }
                Values::Index(v) => {
                    indices.insert(a.name.clone(), v.iter().map(|&i| i as Index).collect());
                }
            }
        }
        Self { floats, indices }
    }

    fn f(&self, name: &str) -> &[f32] {
        &self.floats[name]
    }

    fn opt(&self, name: &Option<String>) -> &[f32] {
        name.as_ref().map_or(&[], |n| self.f(n))
    }

    fn linear(&self, l: &Linear) -> runtime::Linear<'_> {
        runtime::Linear {
            weight: self.f(&l.weight),
            bias: self.opt(&l.bias),
        }
    }

    fn synapses(&self, s: &SynapseArrays) -> runtime::Synapses<'_> {
        runtime::Synapses {
            offsets: &self.indices[&s.offsets],
            sources: &self.indices[&s.sources],
            w: self.f(&s.w),
            mu: self.f(&s.mu),
            sigma: self.f(&s.sigma),
            erev: self.f(&s.erev),
        }
    }
}

/// Runs `steps` of the runtime on the program; returns every output.
fn run(p: &Program, inputs: &[Vec<f32>], elapsed: &[f32]) -> Vec<f32> {
    let arrays = Arrays::new(p);
    let backbones: Vec<Vec<runtime::Linear<'_>>> = match &p.cell {
        Cell::Cfc { layers, .. } => layers
            .iter()
            .map(|l| l.backbone.iter().map(|b| arrays.linear(b)).collect())
            .collect(),
        Cell::Ltc(_) => Vec::new(),
    };
    fn layer<'a>(
        arrays: &'a Arrays,
        l: &CfcLayer,
        backbone: &'a [runtime::Linear<'a>],
    ) -> runtime::CfcLayer<'a> {
        runtime::CfcLayer {
            inputs: l.inputs,
            hidden: l.hidden,
            backbone,
            backbone_units: l.backbone_units,
            activation: match l.activation {
                Act::LecunTanh => runtime::Activation::LecunTanh,
                Act::Silu => runtime::Activation::Silu,
                Act::Relu => runtime::Activation::Relu,
                Act::Tanh => runtime::Activation::Tanh,
            },
            ff1: arrays.linear(&l.ff1),
            head: match &l.head {
                Head::Gated {
                    ff2,
                    time_a,
                    time_b,
                    gated,
                    lecun,
                } => runtime::Head::Gated {
                    ff2: arrays.linear(ff2),
                    time_a: arrays.linear(time_a),
                    time_b: arrays.linear(time_b),
                    gated: *gated,
                    lecun: *lecun,
                },
                Head::Pure { w_tau, a } => runtime::Head::Pure {
                    w_tau: arrays.f(w_tau),
                    a: arrays.f(a),
                },
            },
        }
    }
    let layers: Vec<runtime::CfcLayer<'_>> = match &p.cell {
        Cell::Cfc { layers, .. } => layers
            .iter()
            .zip(&backbones)
            .map(|(l, b)| layer(&arrays, l, b))
            .collect(),
        Cell::Ltc(_) => Vec::new(),
    };
    let ltc = match &p.cell {
        Cell::Ltc(l) => Some(runtime::Ltc {
            neurons: l.neurons,
            motor: l.motor,
            input_w: arrays.opt(&l.input_w),
            input_b: arrays.opt(&l.input_b),
            output_w: arrays.opt(&l.output_w),
            output_b: arrays.opt(&l.output_b),
            sensory: arrays.synapses(&l.sensory),
            recurrent: arrays.synapses(&l.recurrent),
            cm: arrays.f(&l.cm),
            gleak: arrays.f(&l.gleak),
            vleak: arrays.f(&l.vleak),
            unfolds: l.unfolds,
            epsilon: l.epsilon,
        }),
        Cell::Cfc { .. } => None,
    };
    let cell = match &p.cell {
        Cell::Ltc(_) => runtime::Cell::Ltc(ltc.as_ref().expect("an LTC")),
        Cell::Cfc { outputs, .. } => runtime::Cell::Cfc {
            layers: &layers,
            outputs: outputs.as_ref().map_or(&[], |n| &arrays.indices[n]),
        },
    };
    let model = runtime::Model {
        units: p.units,
        cell_outputs: p.cell_outputs,
        lstm: p.lstm.as_ref().map(|l| runtime::Lstm {
            input_map: arrays.linear(&l.input_map),
            recurrent_map: arrays.linear(&l.recurrent_map),
            forget_bias: l.forget_bias,
        }),
        lstm_input: p.lstm_input(),
        cell,
        projection: p.projection.as_ref().map(|l| arrays.linear(l)),
    };
    let mut state = vec![0.0f32; p.state];
    let mut scratch = vec![0.0f32; p.scratch];
    let mut outputs = Vec::new();
    for (x, &dt) in inputs.iter().zip(elapsed) {
        let mut output = vec![0.0f32; p.outputs];
        model.step(&mut state, x, dt, &mut output, &mut scratch);
        outputs.extend(output);
    }
    outputs
}

/// Random inputs and elapsed times in (0, 2], reproducibly.
fn data(steps: usize, features: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as f32 / u32::MAX as f32
    };
    let inputs = (0..steps)
        .map(|_| (0..features).map(|_| 4.0 * next() - 2.0).collect())
        .collect();
    let elapsed = (0..steps).map(|_| 2.0 * next() + 1e-3).collect();
    (inputs, elapsed)
}

/// The Burn model's outputs, one step at a time through `Stateful`.
fn burn_outputs<C: crate::cells::RecurrentCell<B>>(
    model: &crate::rnn::Rnn<B, C>,
    inputs: &[Vec<f32>],
    elapsed: &[f32],
) -> Vec<f32> {
    let device = Default::default();
    let mut policy = model.stateful();
    let mut outputs = Vec::new();
    for (x, &dt) in inputs.iter().zip(elapsed) {
        let x = Tensor::<B, 1>::from_floats(x.as_slice(), &device).unsqueeze_dim(0);
        let dt = Tensor::<B, 1>::from_floats([dt], &device);
        let out = policy.step_elapsed(x, dt);
        outputs.extend(out.into_data().to_vec::<f32>().unwrap());
    }
    outputs
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

#[test]
fn the_ltc_runtime_is_the_fused_kernel_bit_for_bit() {
    let device = Default::default();
    for (mixed, output) in [
        (false, LstmOutput::State),
        (true, LstmOutput::State),
        (true, LstmOutput::Input),
    ] {
        let model = LTCConfig::new(3, Units::from(AutoNCP::new(16, 2).unwrap()))
            .with_mixed_memory(mixed)
            .with_forget_bias(if mixed { 2.1 } else { 1.0 })
            .with_lstm_output(output)
            .init::<B>(&device)
            .unwrap();
        let (inputs, elapsed) = data(200, 3);
        let program = model.step_function().unwrap().program;
        let ours = run(&program, &inputs, &elapsed);
        let theirs = burn_outputs(&model, &inputs, &elapsed);
        if mixed {
            // The LSTM's linear maps sum in another order than Burn's matmul.
            assert!(worst(&ours, &theirs) < 1e-5, "{}", worst(&ours, &theirs));
        } else {
            assert_eq!(ours, theirs, "mixed memory {mixed}");
        }
    }
}

#[test]
fn the_cfc_runtime_computes_the_burn_model() {
    let device = Default::default();
    let dense = |mode: CfCMode, activation: Activation, layers: usize| {
        CfCConfig::new(3, Units::from(12))
            .with_cell(
                CfCCellOptions::new()
                    .with_mode(mode)
                    .with_activation(activation)
                    .with_backbone_layers(layers)
                    .with_backbone_units(10),
            )
            .with_mixed_memory(true)
            .with_proj_size(Some(2))
            .init::<B>(&device)
            .unwrap()
    };
    let paper = |mode: CfCMode, output: LstmOutput| {
        CfCConfig::new(3, Units::from(12))
            .with_cell(
                CfCCellOptions::new()
                    .with_mode(mode)
                    .with_backbone_layers(2)
                    .with_backbone_units(10)
                    .with_head_activation(HeadActivation::LecunTanh),
            )
            .with_mixed_memory(true)
            .with_forget_bias(2.1)
            .with_lstm_output(output)
            .with_proj_size(Some(2))
            .init::<B>(&device)
            .unwrap()
    };
    let models = [
        dense(CfCMode::Default, Activation::LecunTanh, 1),
        dense(CfCMode::Pure, Activation::Silu, 2),
        dense(CfCMode::NoGate, Activation::Relu, 3),
        dense(CfCMode::Default, Activation::Tanh, 0),
        CfCConfig::new(3, Units::from(AutoNCP::new(14, 3).unwrap()))
            .init::<B>(&device)
            .unwrap(),
        CfCConfig::new(3, Units::from(FullyConnected::new(6, 2).unwrap()))
            .with_cell(CfCCellOptions::new().with_mode(CfCMode::Pure))
            .init::<B>(&device)
            .unwrap(),
        // The CfC paper's options: LeCun heads, forget bias 2.1, the
        // LSTM's output as the cell's input (either mode with heads).
        paper(CfCMode::Default, LstmOutput::Input),
        paper(CfCMode::NoGate, LstmOutput::State),
    ];
    let (inputs, elapsed) = data(200, 3);
    for (i, model) in models.iter().enumerate() {
        let program = model.step_function().unwrap().program;
        let ours = run(&program, &inputs, &elapsed);
        let theirs = burn_outputs(model, &inputs, &elapsed);
        let error = worst(&ours, &theirs);
        assert!(error < 1e-5, "model {i}: {error:.2e}");
    }
}
