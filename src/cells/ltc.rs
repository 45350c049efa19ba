//! The liquid time-constant cell.

use burn::module::{Content, DisplaySettings, Initializer, ModuleDisplay, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Mask, MixedMemory, RecurrentCell, SequenceInputs, SequenceOutputs, WiringSummary, mask_tensor,
    materialize, one_line, polarity_tensor,
};
use crate::ConfigError;
use crate::kernels::ltc::{GatheredParams, LtcPlan, Solver};
use crate::kernels::tensor::{div, ltc_gather, ltc_sequence, ltc_step, sigmoid, softplus};
use crate::kernels::{LtcSequenceInputs, LtcStepInputs};
use crate::wirings::{AnyWiring, Wiring};
use std::sync::Arc;

/// An elementwise affine map on the inputs or outputs of an [`LTCCell`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mapping {
    /// `x * w + b`, with `w` initialised to ones and `b` to zeros (default).
    #[default]
    Affine,
    /// `x * w`.
    Linear,
    /// No map (upstream's `None`).
    Identity,
}

impl Mapping {
    fn has_weight(self) -> bool {
        self != Mapping::Identity
    }

    fn has_bias(self) -> bool {
        self == Mapping::Affine
    }
}

/// The options of an [`LTCCell`] besides its wiring and constraints: held
/// as one value by [`LTCCellConfig::options`] and by the sequence model's
/// [`LTCConfig::cell`](crate::rnn::LTCConfig::cell). Defaults are upstream's.
///
/// ```
/// use ncps::cells::{LTCCellOptions, Mapping};
///
/// let options = LTCCellOptions::new().with_ode_unfolds(3).with_output_mapping(Mapping::Identity);
/// assert_eq!(options.ode_unfolds, 3);
/// assert_eq!(options.input_mapping, Mapping::Affine); // upstream's default
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct LTCCellOptions {
    /// Map applied to the inputs. Default: [`Mapping::Affine`].
    #[config(default = "Mapping::Affine")]
    pub input_mapping: Mapping,
    /// Map applied to the motor neurons' states. Default: [`Mapping::Affine`].
    #[config(default = "Mapping::Affine")]
    pub output_mapping: Mapping,
    /// Steps of the fused ODE solver per time step. Default: 6.
    #[config(default = "LTCCellOptions::DEFAULT_ODE_UNFOLDS")]
    pub ode_unfolds: usize,
    /// Added to the solver's denominator. Default: 1e-8.
    #[config(default = "LTCCellOptions::DEFAULT_EPSILON")]
    pub epsilon: f64,
    /// Run each step as one fused kernel over the existing synapses where
    /// the backend has one (`NdArray<f32>`, with or without autodiff);
    /// `false` always takes the dense tensor-op reference path, which every
    /// backend runs. Both compute the same numbers (to float32 rounding).
    /// Default: true.
    #[config(default = true)]
    pub fused: bool,
}

impl LTCCellOptions {
    /// Upstream's `ode_unfolds`.
    pub const DEFAULT_ODE_UNFOLDS: usize = 6;
    /// Upstream's `epsilon`.
    pub const DEFAULT_EPSILON: f64 = 1e-8;

    /// Fails when `ode_unfolds` is 0 or `epsilon` negative or NaN.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.ode_unfolds == 0 {
            return Err(ConfigError::invalid("ode_unfolds", 0, "at least 1"));
        }
        if self.epsilon.is_nan() || self.epsilon < 0.0 {
            return Err(ConfigError::invalid("epsilon", self.epsilon, "at least 0"));
        }
        Ok(())
    }
}

/// Configuration of an [`LTCCell`]. Defaults are upstream's `LTCCell`'s.
#[derive(Config, Debug)]
pub struct LTCCellConfig {
    /// The wiring; it must be built with the input size (`wiring.build(n)`).
    pub wiring: AnyWiring,
    /// Mappings, solver steps, epsilon and the fused kernel. Default:
    /// [`LTCCellOptions::new()`], upstream's.
    #[config(default = "LTCCellOptions::new()")]
    pub options: LTCCellOptions,
    /// Keep `w`, `sensory_w`, `cm` and `gleak` positive with a softplus
    /// (`true`), or use them as they are and clamp them with
    /// [`LTCCell::apply_weight_constraints`] after each optimizer step
    /// (`false`, the cell's default; the [`LTC`](crate::rnn::LTC) sequence
    /// module defaults to `true`, as upstream's two do).
    #[config(default = false)]
    pub implicit_param_constraints: bool,
}

/// A liquid time-constant cell (Hasani et al., AAAI 2021): each neuron is a
/// leaky membrane whose synapses (conductance `w`, sigmoid `mu`, `sigma`,
/// reversal potential `erev`) follow the wiring's sparsity mask; a step
/// solves the ODE with `ode_unfolds` fused semi-implicit Euler steps.
///
/// Parameters, for `N` neurons, `S` inputs and `M` motor neurons, initialised
/// as upstream: `gleak [N]` U(0.001, 1), `vleak [N]` U(-0.2, 0.2), `cm [N]`
/// U(0.4, 0.6), `sigma [N, N]` U(3, 8), `mu [N, N]` U(0.3, 0.8), `w [N, N]`
/// U(0.001, 1), `erev [N, N]` = the wiring's polarities, and the same for the
/// sensory synapses `[S, N]`; `input_w [S]` = 1, `input_b [S]` = 0,
/// `output_w [M]` = 1, `output_b [M]` = 0. The sparsity masks come from the
/// wiring and are constants (not trained, not counted as parameters), but
/// part of the record ([`Mask`]): a record saved with one
/// wiring does not load into a model of another.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::prelude::*;
/// use ncps::cells::{LTCCellConfig, RecurrentCell};
/// use ncps::wirings::{AutoNCP, Wiring};
///
/// let device = Default::default();
/// let mut wiring = AutoNCP::new(12, 2)?;
/// wiring.build(3)?;
/// let cell = LTCCellConfig::new(wiring.into()).init::<NdArray>(&device)?;
/// let (output, state) = cell.forward(
///     Tensor::zeros([4, 3], &device), // input [batch, inputs]
///     Tensor::zeros([4, 12], &device), // state [batch, units]
///     Tensor::ones([4], &device),      // elapsed time [batch]
/// );
/// assert_eq!(output.dims(), [4, 2]); // the 2 motor neurons
/// assert_eq!(state.dims(), [4, 12]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct LTCCell<B: Backend> {
    /// Leak conductance `[N]`.
    pub gleak: Param<Tensor<B, 1>>,
    /// Leak (resting) potential `[N]`.
    pub vleak: Param<Tensor<B, 1>>,
    /// Membrane capacitance `[N]`.
    pub cm: Param<Tensor<B, 1>>,
    /// Synapse sigmoid slopes `[N, N]`, `[src, dest]`.
    pub sigma: Param<Tensor<B, 2>>,
    /// Synapse sigmoid centres `[N, N]`.
    pub mu: Param<Tensor<B, 2>>,
    /// Synapse conductances `[N, N]`.
    pub w: Param<Tensor<B, 2>>,
    /// Synapse reversal potentials `[N, N]`.
    pub erev: Param<Tensor<B, 2>>,
    /// Sensory synapse sigmoid slopes `[S, N]`.
    pub sensory_sigma: Param<Tensor<B, 2>>,
    /// Sensory synapse sigmoid centres `[S, N]`.
    pub sensory_mu: Param<Tensor<B, 2>>,
    /// Sensory synapse conductances `[S, N]`.
    pub sensory_w: Param<Tensor<B, 2>>,
    /// Sensory synapse reversal potentials `[S, N]`.
    pub sensory_erev: Param<Tensor<B, 2>>,
    /// Input map weight `[S]` (absent with [`Mapping::Identity`]).
    pub input_w: Option<Param<Tensor<B, 1>>>,
    /// Input map bias `[S]` (only with [`Mapping::Affine`]).
    pub input_b: Option<Param<Tensor<B, 1>>>,
    /// Output map weight `[M]`.
    pub output_w: Option<Param<Tensor<B, 1>>>,
    /// Output map bias `[M]`.
    pub output_b: Option<Param<Tensor<B, 1>>>,
    /// `|adjacency|` `[N, N]`: 1 where a synapse exists (constant).
    pub sparsity_mask: Mask<B>,
    /// `|sensory adjacency|` `[S, N]` (constant).
    pub sensory_sparsity_mask: Mask<B>,
    /// ODE solver steps per time step.
    pub ode_unfolds: usize,
    /// Added to the solver's denominator.
    pub epsilon: f64,
    /// Softplus on the positive parameters.
    pub implicit_param_constraints: bool,
    /// Number of motor neurons (the output size).
    pub motor_size: usize,
    /// Use the fused kernel where the backend has one.
    pub fused: bool,
    /// The synapses grouped by destination, for the fused kernel.
    #[module(skip)]
    pub(crate) plan: SynapsePlan,
    /// What `println!("{cell}")` shows of the wiring.
    #[module(skip)]
    pub(crate) summary: WiringSummary,
}

impl<B: Backend> ModuleDisplay for LTCCell<B> {
    fn custom_settings(&self) -> Option<DisplaySettings> {
        one_line()
    }

    fn custom_content(&self, content: Content) -> Option<Content> {
        let content = content
            .add("units", &self.state_size())
            .add("input_size", &self.input_size())
            .add("motor", &self.motor_size);
        self.summary
            .describe(content)
            .add("ode_unfolds", &self.ode_unfolds)
            .add(
                "implicit_param_constraints",
                &self.implicit_param_constraints,
            )
            .add("fused", &self.fused)
            .optional()
    }
}

/// The cell's synapse plan (built from its wiring at `init`); the fused
/// kernel reads it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SynapsePlan(Option<Arc<LtcPlan>>);

/// What an [`LTCCell`] derives once per sequence: the input and output
/// mappings' weights as `[1, n]` rows, and the dense reference path's
/// broadcastable tensors or the fused kernel's synapse vectors.
///
/// Shaping the mappings' weights once per sequence rather than at every
/// step matters under autodiff: Burn 0.21 starts a new graph for an
/// operation whose only tracked parent is a parameter (that `unsqueeze`),
/// and when the step joins it to the sequence's graph it merges the two
/// by moving one into the other, about half the time the large one. Done
/// at every step, that made LTC training time grow with the square of the
/// sequence length (`cargo bench --bench scaling`).
#[derive(Clone, Debug)]
pub struct LTCPrepared<B: Backend> {
    input: Affine<B>,
    output: Affine<B>,
    path: PreparedPath<B>,
}

/// The tensors of the path a step takes.
#[derive(Clone, Debug)]
enum PreparedPath<B: Backend> {
    /// The dense tensor-op path.
    Dense(DensePrepared<B>),
    /// The fused kernel's inputs.
    Fused(FusedPrepared<B>),
}

/// The elementwise map of a [`Mapping`], `x * w + b` (either part
/// optional), its parameters as `[1, n]` rows that broadcast over the
/// batch.
#[derive(Clone, Debug)]
struct Affine<B: Backend> {
    weight: Option<Tensor<B, 2>>,
    bias: Option<Tensor<B, 2>>,
}

impl<B: Backend> Affine<B> {
    fn new(weight: &Option<Param<Tensor<B, 1>>>, bias: &Option<Param<Tensor<B, 1>>>) -> Self {
        let row = |p: &Option<Param<Tensor<B, 1>>>| p.as_ref().map(|p| p.val().unsqueeze_dim(0));
        Self {
            weight: row(weight),
            bias: row(bias),
        }
    }

    /// `x: [batch, n]` mapped.
    fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = match &self.weight {
            Some(w) => x * w.clone(),
            None => x,
        };
        match &self.bias {
            Some(b) => x + b.clone(),
            None => x,
        }
    }
}

/// The fused kernel's inputs: the parameters (unconstrained, for the
/// gradients) and their synapses gathered and constrained once.
#[derive(Clone, Debug)]
pub struct FusedPrepared<B: Backend> {
    sensory: [Tensor<B, 2>; 4],
    recurrent: [Tensor<B, 2>; 4],
    neurons: [Tensor<B, 1>; 3],
    gathered: Arc<GatheredParams>,
}

/// The dense path's tensors, broadcastable over `[batch, src, dest]`.
#[derive(Clone, Debug)]
pub struct DensePrepared<B: Backend> {
    w: Tensor<B, 3>,
    w_erev: Tensor<B, 3>,
    sigma: Tensor<B, 3>,
    mu: Tensor<B, 3>,
    sensory_w: Tensor<B, 3>,
    sensory_w_erev: Tensor<B, 3>,
    sensory_sigma: Tensor<B, 3>,
    sensory_mu: Tensor<B, 3>,
    cm: Tensor<B, 2>,
    gleak: Tensor<B, 2>,
    gleak_vleak: Tensor<B, 2>,
}

impl LTCCellConfig {
    /// Initialises the cell's parameters on `device`.
    ///
    /// Fails when the wiring is not built, or when `ode_unfolds` is 0 or
    /// `epsilon` negative.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<LTCCell<B>, ConfigError> {
        let wiring = &self.wiring;
        let sensory = wiring
            .sensory_adjacency_matrix()
            .ok_or(ConfigError::WiringNotBuilt)?;
        self.options.check()?;
        let options = &self.options;
        let adjacency = wiring.adjacency_matrix();
        let (n, s, m) = (wiring.units(), sensory.rows(), wiring.output_dim());
        let uniform = |min: f64, max: f64| Initializer::Uniform { min, max };
        let ones = |len: usize, used: bool| used.then(|| Initializer::Ones.init([len], device));
        let zeros = |len: usize, used: bool| used.then(|| Initializer::Zeros.init([len], device));
        Ok(materialize(LTCCell {
            gleak: uniform(0.001, 1.0).init([n], device),
            vleak: uniform(-0.2, 0.2).init([n], device),
            cm: uniform(0.4, 0.6).init([n], device),
            sigma: uniform(3.0, 8.0).init([n, n], device),
            mu: uniform(0.3, 0.8).init([n, n], device),
            w: uniform(0.001, 1.0).init([n, n], device),
            erev: Param::from_tensor(polarity_tensor(adjacency, device)),
            sensory_sigma: uniform(3.0, 8.0).init([s, n], device),
            sensory_mu: uniform(0.3, 0.8).init([s, n], device),
            sensory_w: uniform(0.001, 1.0).init([s, n], device),
            sensory_erev: Param::from_tensor(polarity_tensor(sensory, device)),
            input_w: ones(s, options.input_mapping.has_weight()),
            input_b: zeros(s, options.input_mapping.has_bias()),
            output_w: ones(m, options.output_mapping.has_weight()),
            output_b: zeros(m, options.output_mapping.has_bias()),
            sparsity_mask: mask_tensor(adjacency, device),
            sensory_sparsity_mask: mask_tensor(sensory, device),
            ode_unfolds: options.ode_unfolds,
            epsilon: options.epsilon,
            implicit_param_constraints: self.implicit_param_constraints,
            motor_size: m,
            fused: options.fused,
            plan: SynapsePlan(Some(Arc::new(LtcPlan::new(adjacency, sensory)))),
            summary: WiringSummary::of(wiring),
        }))
    }
}

impl<B: Backend> LTCCell<B> {
    /// `softplus(p)` with implicit constraints, else `p`.
    fn positive<const D: usize>(&self, p: &Param<Tensor<B, D>>) -> Tensor<B, D> {
        if self.implicit_param_constraints {
            softplus(p.val())
        } else {
            p.val()
        }
    }

    /// Clamps `w`, `sensory_w`, `cm` and `gleak` at 0 (upstream's
    /// `apply_weight_constraints`): call it after every optimizer step when
    /// `implicit_param_constraints` is `false`. With implicit constraints it
    /// returns the cell unchanged.
    ///
    /// ```
    /// use burn::backend::NdArray;
    /// use burn::module::Param;
    /// use burn::prelude::*;
    /// use ncps::cells::LTCCellConfig;
    /// use ncps::wirings::{FullyConnected, Wiring};
    ///
    /// let device = Default::default();
    /// let mut wiring = FullyConnected::new(4, 1)?;
    /// wiring.build(2)?;
    /// let mut cell = LTCCellConfig::new(wiring.into()).init::<NdArray>(&device)?;
    /// cell.cm = Param::from_tensor(Tensor::from_floats([-1.0, 0.5, -0.1, 2.0], &device));
    /// let cell = cell.apply_weight_constraints();
    /// assert_eq!(cell.cm.val().into_data().to_vec::<f32>()?, vec![0.0, 0.5, 0.0, 2.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_weight_constraints(mut self) -> Self {
        if !self.implicit_param_constraints {
            self.w = clamp_non_negative(self.w);
            self.sensory_w = clamp_non_negative(self.sensory_w);
            self.cm = clamp_non_negative(self.cm);
            self.gleak = clamp_non_negative(self.gleak);
        }
        self
    }

    fn input_map(&self) -> Affine<B> {
        Affine::new(&self.input_w, &self.input_b)
    }

    fn output_map(&self) -> Affine<B> {
        Affine::new(&self.output_w, &self.output_b)
    }

    /// The motor neurons' potentials of `state: [batch, N]`, mapped.
    fn map_outputs(&self, map: &Affine<B>, state: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, _] = state.dims();
        map.apply(state.slice([0..batch, 0..self.motor_size]))
    }
}

/// Clamps a parameter's values at 0 and keeps it the same trainable leaf:
/// same id (the optimizer's state stays attached), same gradient
/// requirement. Mapping it through `relu` instead would leave the result of
/// an operation, which no longer receives gradients.
fn clamp_non_negative<B: Backend, const D: usize>(
    param: Param<Tensor<B, D>>,
) -> Param<Tensor<B, D>> {
    param.map(|value| {
        let require_grad = value.is_require_grad();
        value.clamp_min(0.0).detach().set_require_grad(require_grad)
    })
}

/// `sigmoid(sigma * (v_pre - mu))` for every synapse: `[batch, src, dest]`.
fn synapse_activation<B: Backend>(
    v_pre: Tensor<B, 2>,
    mu: Tensor<B, 3>,
    sigma: Tensor<B, 3>,
) -> Tensor<B, 3> {
    sigmoid((v_pre.unsqueeze_dim::<3>(2) - mu) * sigma)
}

/// Sums `[batch, src, dest]` over the presynaptic axis: `[batch, dest]`.
fn sum_presynaptic<B: Backend>(t: Tensor<B, 3>) -> Tensor<B, 2> {
    t.sum_dim(1).squeeze_dim(1)
}

impl<B: Backend> RecurrentCell<B> for LTCCell<B> {
    type Prepared = LTCPrepared<B>;

    fn input_size(&self) -> usize {
        self.sensory_sparsity_mask.val().dims()[0]
    }

    fn state_size(&self) -> usize {
        self.sparsity_mask.val().dims()[0]
    }

    fn output_size(&self) -> usize {
        self.motor_size
    }

    fn prepare(&self) -> LTCPrepared<B> {
        LTCPrepared {
            input: self.input_map(),
            output: self.output_map(),
            path: match self.fused_plan() {
                Some(plan) => PreparedPath::Fused(self.prepare_fused(plan)),
                None => PreparedPath::Dense(self.prepare_dense()),
            },
        }
    }

    /// Inference (no autodiff) through the fused kernel runs the whole
    /// sequence as one operation, each thread taking its samples through
    /// every step; the states are the fused steps', bit for bit. Training,
    /// mixed memory and the tensor-op path run the steps.
    fn fused_sequence(
        &self,
        memory: Option<MixedMemory<'_, B>>,
        inputs: &SequenceInputs<B>,
    ) -> Option<SequenceOutputs<B>> {
        let device = inputs.input.device();
        if memory.is_some() || B::ad_enabled(&device) {
            return None;
        }
        let plan = self.fused_plan()?;
        let [batch, steps, features] = inputs.input.dims();
        let (n, m) = (self.state_size(), self.motor_size);
        let mapped = self
            .input_map()
            .apply(inputs.input.clone().reshape([batch * steps, features]));
        let prepared = self.prepare_fused(plan);
        let states = ltc_sequence(
            plan,
            self.solver(),
            LtcSequenceInputs {
                input: mapped.reshape([batch, steps, features]),
                elapsed: inputs.elapsed.clone(),
                initial: inputs.hidden.clone(),
                vleak: self.vleak.val(),
                gathered: &prepared.gathered,
                lengths: inputs.lengths.as_deref(),
            },
        )?;
        let outputs = self.map_outputs(
            &self.output_map(),
            states.clone().reshape([batch * steps, n]),
        );
        Some(SequenceOutputs {
            outputs: outputs.reshape([batch, steps, m]),
            hidden: states
                .slice([0..batch, steps - 1..steps])
                .reshape([batch, n]),
            memory: None,
        })
    }

    fn step_unchecked(
        &self,
        prepared: &LTCPrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let input = prepared.input.apply(input);
        let v = match &prepared.path {
            PreparedPath::Dense(p) => self.step_dense(p, input, state, elapsed),
            PreparedPath::Fused(p) => self.step_fused(p, input, state, elapsed),
        };
        (self.map_outputs(&prepared.output, v.clone()), v)
    }
}

impl<B: Backend> LTCCell<B> {
    /// The plan, when the fused kernel runs on this backend and is wanted.
    fn fused_plan(&self) -> Option<&Arc<LtcPlan>> {
        (self.fused && crate::kernels::fused_available::<B>())
            .then_some(self.plan.0.as_ref())
            .flatten()
    }

    /// The parameters as they are (for the gradients), and their synapses
    /// gathered and constrained once for the sequence.
    fn prepare_fused(&self, plan: &LtcPlan) -> FusedPrepared<B> {
        let sensory = [
            self.sensory_w.val(),
            self.sensory_mu.val(),
            self.sensory_sigma.val(),
            self.sensory_erev.val(),
        ];
        let recurrent = [
            self.w.val(),
            self.mu.val(),
            self.sigma.val(),
            self.erev.val(),
        ];
        let neurons = [self.cm.val(), self.gleak.val(), self.vleak.val()];
        let gathered = ltc_gather(
            plan,
            self.implicit_param_constraints,
            &sensory,
            &recurrent,
            &neurons,
        )
        .expect("fused_plan() checked that the backend has the fused kernel");
        FusedPrepared {
            sensory,
            recurrent,
            neurons,
            gathered,
        }
    }

    fn step_fused(
        &self,
        p: &FusedPrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let plan = self.plan.0.as_ref().expect("prepared with a plan");
        let inputs = LtcStepInputs {
            input,
            state,
            elapsed,
            sensory: p.sensory.clone(),
            recurrent: p.recurrent.clone(),
            neurons: p.neurons.clone(),
            gathered: Some(p.gathered.clone()),
        };
        ltc_step(plan, self.solver(), inputs).expect("prepared for the fused kernel")
    }

    /// The fused kernel's solver settings.
    fn solver(&self) -> Solver {
        Solver {
            unfolds: self.ode_unfolds,
            epsilon: self.epsilon as f32,
            implicit_constraints: self.implicit_param_constraints,
        }
    }

    fn prepare_dense(&self) -> DensePrepared<B> {
        let w = (self.positive(&self.w) * self.sparsity_mask.val()).unsqueeze_dim::<3>(0);
        let sensory_w = (self.positive(&self.sensory_w) * self.sensory_sparsity_mask.val())
            .unsqueeze_dim::<3>(0);
        let gleak = self.positive(&self.gleak).unsqueeze_dim::<2>(0);
        DensePrepared {
            w_erev: w.clone() * self.erev.val().unsqueeze_dim(0),
            w,
            sigma: self.sigma.val().unsqueeze_dim(0),
            mu: self.mu.val().unsqueeze_dim(0),
            sensory_w_erev: sensory_w.clone() * self.sensory_erev.val().unsqueeze_dim(0),
            sensory_w,
            sensory_sigma: self.sensory_sigma.val().unsqueeze_dim(0),
            sensory_mu: self.sensory_mu.val().unsqueeze_dim(0),
            cm: self.positive(&self.cm).unsqueeze_dim(0),
            gleak_vleak: gleak.clone() * self.vleak.val().unsqueeze_dim(0),
            gleak,
        }
    }

    /// The reference path: every synapse evaluated densely, `[batch, N, N]`.
    fn step_dense(
        &self,
        p: &DensePrepared<B>,
        input: Tensor<B, 2>,
        state: Tensor<B, 2>,
        elapsed: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        // Sensory synapses: constant over the unfolds.
        let a = synapse_activation(input, p.sensory_mu.clone(), p.sensory_sigma.clone());
        let numerator_sensory = sum_presynaptic(a.clone() * p.sensory_w_erev.clone());
        let denominator_sensory = sum_presynaptic(a * p.sensory_w.clone());

        // Upstream's cm / h update with both sides multiplied by the solver
        // step h = elapsed / unfolds, so that h = 0 leaves v unchanged.
        let h = elapsed / self.ode_unfolds as f64; // [batch, 1]
        let numerator_leak = p.gleak_vleak.clone() + numerator_sensory;
        let denominator_leak = p.gleak.clone() + denominator_sensory + self.epsilon;

        let mut v = state;
        for _ in 0..self.ode_unfolds {
            let a = synapse_activation(v.clone(), p.mu.clone(), p.sigma.clone());
            let numerator = p.cm.clone() * v
                + h.clone()
                    * (numerator_leak.clone() + sum_presynaptic(a.clone() * p.w_erev.clone()));
            let denominator = p.cm.clone()
                + h.clone() * (denominator_leak.clone() + sum_presynaptic(a * p.w.clone()));
            v = div(numerator, denominator);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use crate::rnn::{LTC, LTCConfig, Units};
    use burn::backend::{Autodiff, NdArray};
    use burn::module::AutodiffModule;
    use burn::prelude::*;

    /// A training step leaves its group traces in the plan for the next
    /// one (`kernels::ltc::TracePool`); inference frees them.
    #[test]
    fn training_steps_recycle_their_traces_and_inference_frees_them() {
        type AD = Autodiff<NdArray<f32>>;
        let device = Default::default();
        let model: LTC<AD> = LTCConfig::new(3, Units::from(8)).init(&device).unwrap();
        let kept = || model.cell.plan.0.as_ref().unwrap().traces.len();
        // 16 samples: groups of eight whether one or two threads run them.
        let x = Tensor::<AD, 3>::ones([16, 4, 3], &device);
        let (y, _) = model.forward(x.clone(), None);
        assert_eq!(kept(), 0, "the traces are the graph's until backward");
        let _ = y.sum().backward();
        let recycled = kept();
        assert!(recycled > 0, "a backward pass hands its traces back");
        let (y, _) = model.forward(x.clone(), None);
        assert!(kept() < recycled, "the next step takes them");
        let _ = y.sum().backward();
        let _ = model.valid().forward(x.inner(), None);
        assert_eq!(kept(), 0, "inference frees them");
    }
}
