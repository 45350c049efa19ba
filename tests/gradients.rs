//! Autodiff gradients against central finite differences in float64
//! (`NdArray<f64>`), on small random configurations other than the
//! fixtures: every LTC mapping with and without implicit constraints,
//! every CfC mode and backbone activation, wired CfCs, mixed memory and
//! projections, with irregular elapsed times (zeros included).

mod common;

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, TensorData};
use ncps::cells::{Activation, CfCCellOptions, CfCMode, LTCCellOptions, Mapping, RecurrentCell};
use ncps::rnn::{CfCConfig, LTCConfig, Rnn, RnnState, Units};
use ncps::wirings::{AutoNCP, FullyConnected, NCP, NCPArgs};

use common::small_ncp_args;

type F = NdArray<f64>;
type AF = Autodiff<F>;

/// Every float parameter's gradient, in visiting order.
struct CollectGrads<'a> {
    grads: &'a <AF as AutodiffBackend>::Gradients,
    found: Vec<Vec<f64>>,
}

impl ModuleVisitor<AF> for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AF, D>>) {
        let tensor = param.val();
        let count = tensor.shape().num_elements();
        let grad = tensor
            .grad(self.grads)
            .map(|g| g.into_data().to_vec::<f64>().unwrap())
            .unwrap_or_else(|| vec![0.0; count]);
        self.found.push(grad);
    }
}

/// Adds `delta` to entry `index` of the `target`-th float parameter.
struct Perturb {
    target: usize,
    index: usize,
    delta: f64,
    seen: usize,
}

impl ModuleMapper<F> for Perturb {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<F, D>>) -> Param<Tensor<F, D>> {
        let here = self.seen;
        self.seen += 1;
        if here != self.target {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        let mut values = tensor.to_data().to_vec::<f64>().unwrap();
        values[self.index] += self.delta;
        let perturbed =
            Tensor::from_data(TensorData::new(values, tensor.shape()), &tensor.device());
        Param::from_mapped_value(id, perturbed, mapper)
    }
}

/// The data of one check: input, elapsed times, initial state, and the
/// weights of the scalar loss `Σ output·r + Σ hidden·q`.
struct Probe {
    input: TensorData,
    timespans: TensorData,
    hidden: TensorData,
    memory: TensorData,
    r: TensorData,
    q: TensorData,
}

fn loss<Bk: Backend, C: RecurrentCell<Bk>>(model: &Rnn<Bk, C>, probe: &Probe) -> Tensor<Bk, 1> {
    let device = Default::default();
    let t = |data: &TensorData| data.clone();
    let hidden = Tensor::<Bk, 2>::from_data(t(&probe.hidden), &device);
    let state = if model.has_memory() {
        RnnState::with_memory(hidden, Tensor::from_data(t(&probe.memory), &device))
    } else {
        RnnState::new(hidden)
    };
    let (output, state) = model.forward_timed(
        Tensor::<Bk, 3>::from_data(t(&probe.input), &device),
        Tensor::<Bk, 2>::from_data(t(&probe.timespans), &device),
        Some(state),
    );
    (output * Tensor::from_data(t(&probe.r), &device)).sum()
        + (state.hidden * Tensor::from_data(t(&probe.q), &device)).sum()
}

/// Checks entries of every parameter's gradient (first, middle, last)
/// against `(f(p + h) - f(p - h)) / 2h`.
fn check<C>(name: &str, model: Rnn<AF, C>)
where
    C: RecurrentCell<AF> + AutodiffModule<AF>,
    C::InnerModule: RecurrentCell<F> + burn::module::ModuleDisplay,
    Rnn<AF, C>: AutodiffModule<AF, InnerModule = Rnn<F, C::InnerModule>>,
{
    let device = Default::default();
    let (batch, steps) = (2, 4);
    let random = |shape: Vec<usize>| {
        Tensor::<F, 1>::random(
            [shape.iter().product::<usize>()],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map(|v| TensorData::new(v, shape))
        .unwrap()
    };
    let out_dims = model.forward(
        Tensor::zeros([batch, steps, model.input_size()], &device),
        None,
    );
    let probe = Probe {
        input: random(vec![batch, steps, model.input_size()]),
        // Irregular elapsed times, one of them 0.
        timespans: TensorData::new(
            vec![1.0f64, 0.5, 0.0, 2.0, 0.1, 1.5, 1.0, 3.0],
            [batch, steps],
        ),
        hidden: random(vec![batch, model.state_size()]),
        memory: random(vec![batch, model.state_size()]),
        r: random(out_dims.0.dims().to_vec()),
        q: random(vec![batch, model.state_size()]),
    };

    let grads = loss(&model, &probe).backward();
    let mut collect = CollectGrads {
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut collect);
    let inner = model.valid();
    let h = 1e-6;
    let mut checked = 0;
    for (target, grad) in collect.found.iter().enumerate() {
        let mut indices = vec![0, grad.len() / 2, grad.len() - 1];
        indices.dedup();
        for index in indices {
            let at = |delta| {
                let mut perturb = Perturb {
                    target,
                    index,
                    delta,
                    seen: 0,
                };
                let model = inner.clone().map(&mut perturb);
                loss(&model, &probe).into_scalar().elem::<f64>()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let analytic = grad[index];
            assert!(
                (numeric - analytic).abs() <= 1e-6 + 1e-5 * analytic.abs(),
                "{name}: parameter #{target} entry {index}: autodiff {analytic:.9e}, \
                 finite difference {numeric:.9e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * 5, "{name}: only {checked} entries checked");
}

fn ncp() -> NCP {
    NCP::new(NCPArgs {
        inter_neurons: 3,
        ..small_ncp_args()
    })
    .unwrap()
    .with_seed(23)
}

#[test]
fn ltc_gradients_match_finite_differences() {
    let device = Default::default();
    for (input_mapping, output_mapping) in [
        (Mapping::Affine, Mapping::Affine),
        (Mapping::Linear, Mapping::Identity),
        (Mapping::Identity, Mapping::Linear),
    ] {
        for implicit in [true, false] {
            let model = LTCConfig::new(3, Units::from(AutoNCP::new(7, 2).unwrap().with_seed(5)))
                .with_cell(
                    LTCCellOptions::new()
                        .with_input_mapping(input_mapping)
                        .with_output_mapping(output_mapping)
                        .with_ode_unfolds(3),
                )
                .with_implicit_param_constraints(implicit)
                .init::<AF>(&device)
                .unwrap();
            check(
                &format!("LTC {input_mapping:?}/{output_mapping:?} implicit={implicit}"),
                model,
            );
        }
    }
    let mixed = LTCConfig::new(2, Units::from(FullyConnected::new(4, 2).unwrap()))
        .with_mixed_memory(true)
        .with_batch_first(true)
        .init::<AF>(&device)
        .unwrap();
    check("LTC fully connected, mixed memory", mixed);
}

#[test]
fn cfc_gradients_match_finite_differences() {
    let device = Default::default();
    for mode in [CfCMode::Default, CfCMode::Pure, CfCMode::NoGate] {
        for activation in [
            Activation::LecunTanh,
            Activation::Tanh,
            Activation::Silu,
            Activation::Gelu,
            Activation::Relu,
        ] {
            let model = CfCConfig::new(3, Units::from(5))
                .with_cell(
                    CfCCellOptions::new()
                        .with_mode(mode)
                        .with_activation(activation)
                        .with_backbone_units(6)
                        .with_backbone_layers(2),
                )
                .init::<AF>(&device)
                .unwrap();
            check(&format!("CfC {mode:?} {activation:?}"), model);
        }
        let wired = CfCConfig::new(3, Units::from(ncp()))
            .with_cell(CfCCellOptions::new().with_mode(mode))
            .init::<AF>(&device)
            .unwrap();
        check(&format!("wired CfC {mode:?}"), wired);
    }
    let mixed = CfCConfig::new(3, Units::from(4))
        .with_mixed_memory(true)
        .with_proj_size(Some(2))
        .with_cell(CfCCellOptions::new().with_backbone_units(5))
        .init::<AF>(&device)
        .unwrap();
    check("CfC mixed memory with projection", mixed);
}
