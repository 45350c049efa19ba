//! The training loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, RunDir, State};
use super::progress::{EpochLog, Progress, resident_bytes};
use super::{Clipping, TrainConfig, TrainError, clip_grad_norm};

/// What a model learns: the loss of a training batch, and what validation
/// measures on a batch. The loop makes the batches from a dataset's items
/// with a `burn::data` [`Batcher`] for the autodiff backend (training) and
/// for its inner backend (validation, no graph built).
///
/// ```
/// use burn::prelude::*;
/// use burn::tensor::backend::AutodiffBackend;
/// use ncps::rnn::CfC;
/// use ncps::train::{Evaluation, Objective};
///
/// /// Mean squared error of a CfC's outputs against targets.
/// struct Mse;
///
/// impl<B: AutodiffBackend> Objective<B, CfC<B>> for Mse {
///     type TrainBatch = (Tensor<B, 3>, Tensor<B, 3>);
///     type ValidBatch = (Tensor<B::InnerBackend, 3>, Tensor<B::InnerBackend, 3>);
///
///     fn loss(&self, model: &CfC<B>, (x, y): Self::TrainBatch) -> Tensor<B, 1> {
///         (model.forward(x, None).0 - y).square().mean()
///     }
///
///     fn evaluate(&self, model: &CfC<B::InnerBackend>, (x, y): Self::ValidBatch) -> Evaluation {
///         let items = x.dims()[0];
///         let mse = (model.forward(x, None).0 - y).square().mean().into_scalar().elem();
///         Evaluation::new(mse, items)
///     }
/// }
/// ```
pub trait Objective<B: AutodiffBackend, M: AutodiffModule<B>> {
    /// A batch of items on the autodiff backend.
    type TrainBatch: Send;
    /// A batch of items on the inner backend.
    type ValidBatch: Send;

    /// The loss to minimise on a batch (a scalar, `[1]`).
    fn loss(&self, model: &M, batch: Self::TrainBatch) -> Tensor<B, 1>;

    /// Validation figures of a batch.
    fn evaluate(&self, model: &M::InnerModule, batch: Self::ValidBatch) -> Evaluation;
}

/// The validation figures of one batch: the loss (the mean over its items)
/// and any other metrics (means too); the loop averages them over batches
/// weighted by their item counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the batch.
    pub loss: f64,
    /// Items in the batch (the weight of its means).
    pub items: usize,
    /// Other means, by name (e.g. `accuracy`).
    pub metrics: BTreeMap<String, f64>,
}

impl Evaluation {
    /// A batch of `items` items with mean loss `loss`.
    pub fn new(loss: f64, items: usize) -> Self {
        Self {
            loss,
            items,
            metrics: BTreeMap::new(),
        }
    }

    /// Adds a metric (a mean over the batch).
    pub fn with_metric(mut self, name: &str, value: f64) -> Self {
        self.metrics.insert(name.to_string(), value);
        self
    }
}

/// The outcome of [`Trainer::fit`].
#[derive(Debug)]
pub struct Trained<M> {
    /// The weights of the best validation loss (the last weights when no
    /// validation loss was finite).
    pub model: M,
    /// The weights after the last epoch.
    pub last: M,
    /// One entry per epoch, resumed epochs included.
    pub log: Vec<EpochLog>,
    /// The epoch whose weights `model` holds.
    pub best_epoch: Option<usize>,
}

/// The training loop every example uses: Adam over shuffled batches of a
/// `burn::data` dataset, the learning-rate schedule, weight decay and
/// clipping of a [`TrainConfig`], validation after every epoch, and the
/// best-validation weights kept.
///
/// With a run directory ([`with_dir`](Self::with_dir)) every epoch is
/// checkpointed (model, optimizer state, best weights, metrics log; see
/// the files below), and a run started again with the same directory and
/// settings continues after its last completed epoch and ends with the
/// weights an uninterrupted run ends with: the data order and the
/// backend's random draws (dropout) of each epoch derive from the seed and
/// the epoch number only. Files written: `train_state.json`,
/// `metrics.json`, `best.mpk` (the best weights, a Burn `NamedMpk`
/// full-precision record), `model-epoch<k>.mpk` and `optimizer-epoch<k>.mpk`
/// for the last and the best epoch.
///
/// Nothing accumulates between batches or epochs: each batch's graph is
/// consumed by its backward pass, validation runs on the inner backend
/// (`model.valid()`, no graph), at most [`TrainConfig::prefetch`] batches
/// wait in memory, and the log holds a few numbers per epoch.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use ncps::datasets::sine::{SineBatcher, SineData};
/// use ncps::rnn::{LTCConfig, Units};
/// use ncps::train::{SequenceMse, TrainConfig, Trainer};
/// use ncps::wirings::AutoNCP;
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<B>(&device)?;
/// let data = SineData::new(48);
/// let config = TrainConfig::new(20, 1).with_learning_rate(0.01);
/// let trained = Trainer::new(config, device)
///     .fit(model, &SequenceMse::default(), &data, &data, &SineBatcher, &mut ())?;
/// assert!(trained.log[19].valid_loss < trained.log[0].valid_loss);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer<B: AutodiffBackend> {
    config: TrainConfig,
    device: B::Device,
    dir: Option<PathBuf>,
}

/// The optimizer every run uses.
type Adaptor<M, B> = OptimizerAdaptor<Adam, M, B>;

impl<B: AutodiffBackend> Trainer<B> {
    /// A trainer on `device` that keeps everything in memory.
    pub fn new(config: TrainConfig, device: B::Device) -> Self {
        Self {
            config,
            device,
            dir: None,
        }
    }

    /// Checkpoints every epoch to `dir` and resumes the run found there.
    pub fn with_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains `model` (freshly initialised; a resumed run replaces its
    /// weights with the checkpoint's) on `train`, validating on `valid`
    /// after every epoch, and returns the best-validation weights.
    ///
    /// # Errors
    /// An invalid setting, an empty dataset, a run directory that cannot be
    /// written or read back, or one that holds a run with other settings.
    pub fn fit<M, O, I, Bt>(
        &self,
        model: M,
        objective: &O,
        train: &dyn Dataset<I>,
        valid: &dyn Dataset<I>,
        batcher: &Bt,
        progress: &mut dyn Progress,
    ) -> Result<Trained<M>, TrainError>
    where
        M: AutodiffModule<B>,
        O: Objective<B, M>,
        Bt: Batcher<B, I, O::TrainBatch> + Batcher<B::InnerBackend, I, O::ValidBatch>,
    {
        let config = &self.config;
        config.check().map_err(TrainError::InvalidSetting)?;
        if train.is_empty() {
            return Err(TrainError::EmptyDataset("training"));
        }
        if valid.is_empty() {
            return Err(TrainError::EmptyDataset("validation"));
        }
        let run = self.dir.as_deref().map(RunDir::open).transpose()?;
        let mut stepper = Stepper::new(config);
        let mut model = model;
        let mut best = None;
        let mut state = State::new(config);
        if let Some(run) = &run
            && let Some(saved) = run.load_state(config)?
        {
            if saved.epoch > 0 {
                let record =
                    run.load::<B, M::Record>(&checkpoint::model_file(saved.epoch), &self.device)?;
                model = model.load_record(record);
                let record =
                    run.load::<B, _>(&checkpoint::optimizer_file(saved.epoch), &self.device)?;
                stepper.optimizer = stepper.optimizer.load_record(record);
            }
            if let Some(epoch) = saved.best_epoch {
                let record =
                    run.load::<B, M::Record>(&checkpoint::model_file(epoch), &self.device)?;
                let weights = model.clone().load_record(record);
                run.save::<B, _>(checkpoint::BEST_FILE, weights.clone().into_record())?;
                best = Some(weights);
            }
            state = saved;
        }

        let items = config
            .items_per_epoch
            .unwrap_or(train.len())
            .min(train.len());
        let batches = items.div_ceil(config.batch_size);
        progress.start(state.epoch + 1, config.epochs);
        for epoch in state.epoch + 1..=config.epochs {
            if let (Some(budget), Some(last)) = (config.time_budget_s, state.log.last())
                && state.seconds + last.train_seconds + last.valid_seconds > budget
            {
                break;
            }
            B::seed(
                &self.device,
                derive_seed(config.seed, epoch, Stream::Backend),
            );
            let mut order: Vec<usize> = (0..train.len()).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, epoch, Stream::Order));
            order.shuffle(&mut rng);
            order.truncate(items);

            progress.epoch_start(epoch, batches);
            let start = Instant::now();
            let mut loss_sum = 0.0;
            let mut slot = Some(model);
            batches_of(
                train,
                batcher,
                &order,
                config.batch_size,
                config.prefetch,
                &self.device,
                |step, batch: O::TrainBatch| {
                    let current = slot.take().expect("the model is put back after every step");
                    let learning_rate = config.learning_rate_at(epoch, step, batches);
                    let (next, value) = stepper.step(current, objective, batch, learning_rate);
                    slot = Some(next);
                    loss_sum += value;
                    progress.batch_end(step + 1, value);
                },
            );
            model = slot.expect("the model is put back after every step");
            let train_seconds = start.elapsed().as_secs_f64();

            let start = Instant::now();
            let valid_batch = config.valid_batch_size.unwrap_or(config.batch_size);
            let evaluation = evaluate(
                &model.valid(),
                objective,
                valid,
                batcher,
                valid_batch,
                &self.device,
            );
            let valid_loss = evaluation.loss;
            let improved =
                valid_loss.is_finite() && state.best_valid.is_none_or(|best| valid_loss < best);
            let log = EpochLog {
                epoch,
                train_loss: loss_sum / batches as f64,
                valid_loss,
                valid_metrics: evaluation.metrics,
                learning_rate: config.learning_rate_at(epoch, 0, batches),
                train_seconds,
                valid_seconds: start.elapsed().as_secs_f64(),
                resident_bytes: resident_bytes(),
                best: improved,
            };
            if improved {
                state.best_epoch = Some(epoch);
                state.best_valid = Some(valid_loss);
                best = Some(model.clone());
            }
            state.epoch = epoch;
            state.seconds += log.train_seconds + log.valid_seconds;
            state.log.push(log);
            if let Some(run) = &run {
                run.save::<B, _>(&checkpoint::model_file(epoch), model.clone().into_record())?;
                run.save::<B, _>(
                    &checkpoint::optimizer_file(epoch),
                    stepper.optimizer.to_record(),
                )?;
                run.commit(&state)?;
                if improved {
                    run.save::<B, _>(checkpoint::BEST_FILE, model.clone().into_record())?;
                }
            }
            progress.epoch_end(state.log.last().expect("just pushed"));
        }
        Ok(Trained {
            model: best.unwrap_or_else(|| model.clone()),
            last: model,
            log: state.log,
            best_epoch: state.best_epoch,
        })
    }
}

/// One training step, as the loop runs it for every batch: the
/// objective's loss, its gradients, clipping, and the Adam step with the
/// configured epsilon and weight decay (the optimizer's state carries from
/// step to step). Usable alone for a loop of one's own, or to time a step.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::data::dataloader::batcher::Batcher;
/// use ncps::datasets::sine::{SineBatcher, SineData};
/// use ncps::rnn::{LTCConfig, Units};
/// use ncps::train::{SequenceMse, Stepper, TrainConfig};
/// use ncps::wirings::AutoNCP;
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let mut model = LTCConfig::new(2, Units::from(AutoNCP::new(16, 1)?)).init::<B>(&device)?;
/// let mut stepper = Stepper::new(&TrainConfig::new(1, 1));
/// let batch = Batcher::<B, _, _>::batch(&SineBatcher, vec![SineData::new(48)], &device);
/// let mut losses = Vec::new();
/// for _ in 0..10 {
///     let (next, loss) = stepper.step(model, &SequenceMse::default(), batch.clone(), 0.01);
///     model = next;
///     losses.push(loss);
/// }
/// assert!(losses[9] < losses[0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Stepper<B: AutodiffBackend, M: AutodiffModule<B>> {
    optimizer: Adaptor<M, B>,
    clipping: Clipping,
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> Stepper<B, M> {
    /// Adam with `config`'s epsilon, weight decay and clipping (a fresh
    /// optimizer state).
    pub fn new(config: &TrainConfig) -> Self {
        let weight_decay =
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
        let per_tensor = match config.clipping {
            Clipping::PerTensorNorm(max_norm) => {
                Some(GradientClippingConfig::Norm(max_norm as f32))
            }
            Clipping::GlobalNorm(_) | Clipping::None => None,
        };
        let optimizer = AdamConfig::new()
            .with_epsilon(config.adam_epsilon as f32)
            .with_weight_decay(weight_decay)
            .with_grad_clipping(per_tensor)
            .init();
        Self {
            optimizer,
            clipping: config.clipping,
        }
    }

    /// One step on `batch` at `learning_rate`; returns the updated model and
    /// the batch's loss before the step.
    pub fn step<O: Objective<B, M>>(
        &mut self,
        model: M,
        objective: &O,
        batch: O::TrainBatch,
        learning_rate: f64,
    ) -> (M, f64) {
        let loss = objective.loss(&model, batch);
        let value = loss.clone().into_scalar().elem::<f64>();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        if let Clipping::GlobalNorm(max_norm) = self.clipping {
            clip_grad_norm(&model, &mut grads, max_norm);
        }
        (self.optimizer.step(learning_rate, model, grads), value)
    }
}

/// The objective's figures of `model` over every item of `dataset`, in
/// order, `batch_size` items at a time: loss and metrics averaged over
/// items. What validation reports after every epoch; also the test figures
/// of a trained model.
///
/// ```
/// use burn::backend::{Autodiff, NdArray};
/// use burn::module::AutodiffModule;
/// use ncps::datasets::sine::{SineBatcher, SineData};
/// use ncps::rnn::{CfC, CfCConfig, Units};
/// use ncps::train::{SequenceMse, evaluate};
///
/// type B = Autodiff<NdArray>;
/// let device = Default::default();
/// let model = CfCConfig::new(2, Units::from(8)).with_proj_size(Some(1)).init::<B>(&device)?;
/// let data = SineData::new(48);
/// let figures = evaluate::<B, CfC<B>, _, _, _>(
///     &model.valid(), &SequenceMse::default(), &data, &SineBatcher, 1, &device,
/// );
/// assert_eq!(figures.items, 1);
/// assert!(figures.loss > 0.0);
/// # Ok::<(), ncps::ConfigError>(())
/// ```
pub fn evaluate<B, M, O, I, Bt>(
    model: &M::InnerModule,
    objective: &O,
    dataset: &dyn Dataset<I>,
    batcher: &Bt,
    batch_size: usize,
    device: &B::Device,
) -> Evaluation
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Objective<B, M>,
    Bt: Batcher<B::InnerBackend, I, O::ValidBatch>,
{
    assert!(batch_size > 0, "batch_size must be at least 1");
    let order: Vec<usize> = (0..dataset.len()).collect();
    let mut totals = Evaluation::new(0.0, 0);
    batches_of(
        dataset,
        batcher,
        &order,
        batch_size,
        0,
        device,
        |_, batch| {
            let evaluation = objective.evaluate(model, batch);
            let weight = evaluation.items as f64;
            totals.loss += evaluation.loss * weight;
            for (name, value) in evaluation.metrics {
                *totals.metrics.entry(name).or_default() += value * weight;
            }
            totals.items += evaluation.items;
        },
    );
    let n = totals.items.max(1) as f64;
    totals.loss /= n;
    for value in totals.metrics.values_mut() {
        *value /= n;
    }
    totals
}

/// The two random streams of an epoch.
#[derive(Clone, Copy)]
enum Stream {
    /// The order of the training items.
    Order = 0,
    /// The seed of the backend's generator (dropout).
    Backend = 1,
}

/// The seed of one stream of one epoch: a function of the run's seed and
/// the epoch only, so a resumed run draws what an uninterrupted one does.
fn derive_seed(seed: u64, epoch: usize, stream: Stream) -> u64 {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2 * epoch as u64 + stream as u64);
    rng.next_u64()
}

/// Batches the items of `order` (`batch_size` at a time, the last batch
/// smaller) and hands them to `train` with their index; with `prefetch >
/// 0` a scoped thread prepares them ahead, at most `prefetch` waiting.
fn batches_of<BB: Backend, I, O: Send>(
    dataset: &dyn Dataset<I>,
    batcher: &(impl Batcher<BB, I, O> + ?Sized),
    order: &[usize],
    batch_size: usize,
    prefetch: usize,
    device: &BB::Device,
    mut train: impl FnMut(usize, O),
) {
    let make = |indices: &[usize]| {
        let items = indices
            .iter()
            .map(|&i| {
                dataset
                    .get(i)
                    .unwrap_or_else(|| panic!("the dataset has no item {i} below its length"))
            })
            .collect();
        batcher.batch(items, device)
    };
    if prefetch == 0 {
        for (step, indices) in order.chunks(batch_size).enumerate() {
            train(step, make(indices));
        }
        return;
    }
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(prefetch);
        scope.spawn(move || {
            for indices in order.chunks(batch_size) {
                if sender.send(make(indices)).is_err() {
                    break;
                }
            }
        });
        for (step, batch) in receiver.iter().enumerate() {
            train(step, batch);
        }
    });
}
