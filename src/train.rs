//! Mini-batch training: epochs, shuffling, validation, early stopping, dropout, the L2
//! penalty, learning-rate schedules, gradient clipping and a per-epoch history.
//!
//! One step on a batch of `m` examples runs the forward pass with dropout, the backward pass,
//! adds the L2 penalty's gradient `λ W[l]`, clips the global gradient norm, and lets the
//! optimizer update every `W[l]` and `b[l]` at the epoch's learning rate. The examples are
//! reshuffled every epoch from the seeded generator, so the same seed and data give
//! bit-identical weights. On x86-64 with AVX2 and FMA this holds for any thread count, and
//! elsewhere for the same thread count (see [`crate::linalg`]). [`Trainer::save_checkpoint`]
//! and [`Trainer::resume`] (see [`crate::checkpoint`]) stop and continue a run without changing
//! that result.
//!
//! A mini-batch of at least 256 examples is put in an order that places similar inputs side by
//! side ([`TrainConfig::order_by_zeros`]), because the `f32` product skips the steps at which
//! 16 neighbouring columns are all zero. The batch keeps its members, so the gradient is the
//! same sum in another order and only its rounding changes. With dropout, whose masks are
//! drawn by column, the examples also get other masks. Each example gets a signature of up to
//! 128 bits: for `n` features, bit `r` is set when feature `r n / 128` is positive, or
//! feature `r` when `n <= 128`. The batch then becomes a chain in which each next example is
//! the one whose signature differs from the previous one's in the fewest bits. The order is a
//! function of the shuffled batch and its inputs, so it does not depend on the thread count or
//! on a resume. BENCHMARKS.md gives what it saves.
//!
//! ```
//! use feedforward::train::{TrainConfig, TrainData, Trainer};
//! use feedforward::{Activation, Cost, Network, Rng};
//! use ndarray::array;
//!
//! // XOR: two inputs, one sigmoid output.
//! let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let y = array![[0.0f32], [1.0], [1.0], [0.0]];
//! let network = Network::random(&[2, 8, 1], &[Activation::Tanh, Activation::Sigmoid], &mut Rng::new(1))?;
//! let config = TrainConfig { epochs: 500, batch_size: 4, ..TrainConfig::default() }
//!     .with_learning_rate(0.05);
//! let mut trainer = Trainer::new(network, Cost::BinaryCrossEntropy, config)?;
//! trainer.fit(TrainData::new(x.view(), y.view())?, None, &mut ())?;
//! let network = trainer.finish();
//! let output = network.forward(x.t())?;
//! assert!(output[[0, 1]] > 0.5 && output[[0, 0]] < 0.5);
//! # Ok::<(), feedforward::Error>(())
//! ```

use std::time::Instant;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, s};
use serde::{Deserialize, Serialize};

use crate::cost::Cost;
use crate::data::Targets;
use crate::error::{Error, Result};
use crate::inference::InferenceBuffers;
use crate::linalg::{self, rows};
use crate::metrics;
use crate::network::{ForwardCache, Gradients, Network};
use crate::optim::{Optimizer, OptimizerConfig, Schedule, add_l2_penalty, clip_global_norm};
use crate::rng::Rng;

/// Training settings. The defaults are those of the command-line tool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Maximum number of passes over the training set. Default 20.
    pub epochs: usize,
    /// Examples per mini-batch; the last batch of an epoch holds the remainder, and a batch
    /// size larger than the data set gives one batch. Default 32, as in Keras.
    pub batch_size: usize,
    /// The optimizer and its hyper-parameters. Default Adam with PyTorch's defaults (learning
    /// rate 1e-3, betas 0.9 and 0.999, eps 1e-8).
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule over epochs. Default constant.
    pub schedule: Schedule,
    /// L2 penalty `λ`: `(λ/2) Σ ‖W[l]‖²` is added to the cost and `λ W[l]` to each `dW[l]`;
    /// biases are not penalized. Default 0.
    pub l2: f64,
    /// Clip the global gradient norm to this value when set. Default none.
    pub clip_norm: Option<f64>,
    /// Inverted-dropout rate after every hidden layer, in `[0, 1)`; off at inference.
    /// Default 0.
    pub dropout: f64,
    /// Seed for shuffling and dropout. Default 0.
    pub seed: u64,
    /// Early stopping; default none.
    pub early_stopping: Option<EarlyStopping>,
    /// Whether each mini-batch is ordered so that similar inputs are neighbours, which gives the
    /// `f32` product more zero steps to skip (see the module docs). A batch keeps its examples,
    /// so only the rounding of the gradient's sums changes, and with dropout the examples also
    /// get other masks. It applies to batches of at least 256 examples on x86-64 with AVX2 and
    /// FMA, where the product skips steps. Default true. A file written before this setting
    /// existed reads it as false, the order that run was trained in.
    #[serde(default)]
    pub order_by_zeros: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch_size: 32,
            optimizer: OptimizerConfig::adam(),
            schedule: Schedule::Constant,
            l2: 0.0,
            clip_norm: None,
            dropout: 0.0,
            seed: 0,
            early_stopping: None,
            order_by_zeros: true,
        }
    }
}

impl TrainConfig {
    /// Returns the config with the optimizer's learning rate replaced.
    pub fn with_learning_rate(mut self, lr: f64) -> Self {
        self.optimizer = self.optimizer.with_lr(lr);
        self
    }

    /// Checks every setting; see the field docs for the ranges.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the invalid setting.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::Config("epochs must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(Error::Config("the batch size must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "the dropout rate {} is outside [0, 1)",
                self.dropout
            )));
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return Err(Error::Config(format!(
                "the L2 penalty must be finite and at least 0, not {}",
                self.l2
            )));
        }
        if let Some(norm) = self.clip_norm
            && !(norm > 0.0 && norm.is_finite())
        {
            return Err(Error::Config(format!(
                "the gradient-clipping norm must be positive, not {norm}"
            )));
        }
        if let Some(stopping) = &self.early_stopping
            && !(stopping.min_delta >= 0.0 && stopping.min_delta.is_finite())
        {
            return Err(Error::Config(format!(
                "the early-stopping minimum improvement must be at least 0, not {}",
                stopping.min_delta
            )));
        }
        self.schedule.validate()?;
        self.optimizer.validate()
    }
}

/// Early stopping: end training when the monitored loss (validation loss when there is a
/// validation set, training loss otherwise) has not improved by at least `min_delta` for
/// `patience` epochs, and restore the weights of the best epoch. The best weights are restored
/// also when the epoch limit ends training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping. scikit-learn's `n_iter_no_change` default
    /// is 10.
    pub patience: usize,
    /// Smallest decrease of the loss that counts as an improvement; scikit-learn's `tol`
    /// default is 1e-4.
    pub min_delta: f64,
}

/// A training or validation set: features `m x n[0]` and encoded targets `m x n[L]`, one row
/// per example (the layout of the files; the network sees the transposes).
#[derive(Clone, Copy, Debug)]
pub struct TrainData<'a> {
    features: ArrayView2<'a, f32>,
    targets: ArrayView2<'a, f32>,
}

impl<'a> TrainData<'a> {
    /// Pairs features and targets.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the row counts differ; [`Error::Data`] for an empty set.
    pub fn new(features: ArrayView2<'a, f32>, targets: ArrayView2<'a, f32>) -> Result<Self> {
        if features.nrows() != targets.nrows() {
            return Err(Error::Shape(format!(
                "{} feature rows but {} target rows",
                features.nrows(),
                targets.nrows()
            )));
        }
        if features.nrows() == 0 {
            return Err(Error::data(
                "<training data>",
                "the data set has no examples",
            ));
        }
        Ok(TrainData { features, targets })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// True when there are no examples (never, for a value built by [`TrainData::new`]).
    pub fn is_empty(&self) -> bool {
        self.features.nrows() == 0
    }

    /// Features, `m x n[0]`.
    pub fn features(&self) -> ArrayView2<'a, f32> {
        self.features
    }

    /// Encoded targets, `m x n[L]`.
    pub fn targets(&self) -> ArrayView2<'a, f32> {
        self.targets
    }
}

/// One epoch's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Mean training loss over the epoch's batches, weighted by batch size, with the L2
    /// penalty and with dropout active.
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches; `None` for regression.
    pub train_accuracy: Option<f64>,
    /// Validation loss after the epoch, without dropout.
    pub validation_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub validation_accuracy: Option<f64>,
    /// Wall-clock seconds of the epoch's training steps, without validation. Not serialized,
    /// so that a model file records only what the seed determines.
    #[serde(skip, default)]
    pub seconds: f64,
}

/// Per-epoch records and the outcome of early stopping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per completed epoch.
    pub epochs: Vec<EpochRecord>,
    /// The epoch whose weights were kept, when early stopping is on.
    pub best_epoch: Option<usize>,
    /// True when early stopping ended training before the epoch limit.
    pub stopped_early: bool,
}

/// Callbacks for progress display.
pub trait TrainObserver {
    /// Called before an epoch's first batch.
    fn epoch_started(&mut self, _epoch: usize, _batches: usize) {}
    /// Called after each batch with its loss.
    fn batch_finished(&mut self, _batch: usize, _loss: f64) {}
    /// Called after each epoch, validation included.
    fn epoch_finished(&mut self, _record: &EpochRecord) {}
}

/// The observer that does nothing.
impl TrainObserver for () {}

/// The best weights seen so far and the loss they reached.
#[derive(Clone, Debug)]
pub(crate) struct BestState {
    pub(crate) network: Network<f32>,
    pub(crate) epoch: usize,
    pub(crate) loss: f64,
}

/// A training run in progress; see the module documentation.
pub struct Trainer {
    pub(crate) config: TrainConfig,
    pub(crate) cost: Cost,
    pub(crate) network: Network<f32>,
    pub(crate) optimizer: Optimizer<f32>,
    pub(crate) rng: Rng,
    pub(crate) history: History,
    pub(crate) best: Option<BestState>,
    pub(crate) stale_epochs: usize,
    cache: ForwardCache<f32>,
    grads: Gradients<f32>,
    targets: Array2<f32>,
    order: Vec<usize>,
    zero_order: zero_order::ZeroOrder,
    /// The dropout rate of every hidden layer, or empty when dropout is off.
    dropout_rates: Vec<f64>,
    /// Buffers of the validation pass, kept so that later epochs reuse them.
    validation_cache: ForwardCache<f32>,
    validation_outputs: Array2<f32>,
}

impl Trainer {
    /// Starts a run on `network` with `cost`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for invalid settings or a cost that cannot follow the output layer.
    pub fn new(network: Network<f32>, cost: Cost, mut config: TrainConfig) -> Result<Self> {
        config.schedule = config.schedule.with_total_epochs(config.epochs);
        config.validate()?;
        cost.check_output(network.output_activation(), network.outputs())?;
        let optimizer = Optimizer::new(config.optimizer, &network)?;
        let grads = Gradients::new(&network).with_input_gradient(false);
        let dropout_rates = if config.dropout > 0.0 {
            vec![config.dropout; network.layers().len() - 1]
        } else {
            Vec::new()
        };
        Ok(Trainer {
            rng: Rng::new(config.seed),
            config,
            cost,
            optimizer,
            grads,
            history: History::default(),
            best: None,
            stale_epochs: 0,
            cache: ForwardCache::new(),
            targets: Array2::zeros((network.outputs(), 0)),
            order: Vec::new(),
            zero_order: zero_order::ZeroOrder::default(),
            dropout_rates,
            validation_cache: ForwardCache::new(),
            validation_outputs: Array2::zeros((network.outputs(), 0)),
            network,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The network in its current state.
    pub fn network(&self) -> &Network<f32> {
        &self.network
    }

    /// The cost being minimized.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The records of the epochs so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Number of completed epochs.
    pub fn epochs_done(&self) -> usize {
        self.history.epochs.len()
    }

    /// True when the epoch limit is reached or early stopping has ended the run.
    pub fn is_finished(&self) -> bool {
        self.history.stopped_early || self.epochs_done() >= self.config.epochs
    }

    /// Trains until [`Trainer::is_finished`].
    ///
    /// # Errors
    ///
    /// As [`Trainer::run_epoch`].
    pub fn fit(
        &mut self,
        train: TrainData<'_>,
        validation: Option<TrainData<'_>>,
        observer: &mut dyn TrainObserver,
    ) -> Result<()> {
        while !self.is_finished() {
            self.run_epoch(train, validation, observer)?;
        }
        Ok(())
    }

    fn check_data(&self, data: &TrainData<'_>, name: &str) -> Result<()> {
        if data.features.ncols() != self.network.inputs() {
            return Err(Error::Shape(format!(
                "the {name} set has {} features but the network expects {}",
                data.features.ncols(),
                self.network.inputs()
            )));
        }
        if data.targets.ncols() != self.network.outputs() {
            return Err(Error::Shape(format!(
                "the {name} targets have {} columns but the network has {} outputs",
                data.targets.ncols(),
                self.network.outputs()
            )));
        }
        Ok(())
    }

    /// Runs one epoch: shuffles, steps through every mini-batch, evaluates on `validation`,
    /// and updates early stopping.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the data does not fit the network; [`Error::Diverged`] when a
    /// batch's loss is NaN or infinite, naming the epoch and batch. The network then keeps
    /// the weights of the last finite step: the failing update is never applied.
    pub fn run_epoch(
        &mut self,
        train: TrainData<'_>,
        validation: Option<TrainData<'_>>,
        observer: &mut dyn TrainObserver,
    ) -> Result<EpochRecord> {
        self.check_data(&train, "training")?;
        if let Some(validation) = &validation {
            self.check_data(validation, "validation")?;
        }
        let epoch = self.epochs_done() + 1;
        let lr = self
            .config
            .schedule
            .lr_at(self.config.optimizer.lr(), epoch - 1);
        let m = train.len();
        let batch_size = self.config.batch_size.min(m);
        let batches = m.div_ceil(batch_size);
        let dropout = (self.config.dropout > 0.0).then_some(self.dropout_rates.as_slice());
        // Room for every remaining record, so that later epochs do not grow the history. A
        // resumed run replaces the history, so the reservation is made here, not in `new`.
        let remaining = self.config.epochs.saturating_sub(self.history.epochs.len());
        self.history.epochs.reserve(remaining);

        // The order is rebuilt from 0..m before every shuffle, so it depends only on the
        // generator's state, which a checkpoint stores, and on the inputs that order each batch.
        self.order.clear();
        self.order.extend(0..m);
        self.rng.shuffle(&mut self.order);
        if self.targets.ncols() < batch_size {
            self.targets = Array2::zeros((self.network.outputs(), batch_size));
        }

        observer.epoch_started(epoch, batches);
        let start = Instant::now();
        let order_by_zeros = self.config.order_by_zeros && linalg::skips_zero_steps(batch_size);
        if order_by_zeros {
            self.zero_order.sign(train.features);
        }
        let (mut loss_sum, mut correct, mut counted) = (0.0f64, 0.0f64, 0usize);
        for batch in 0..batches {
            let range = batch * batch_size..((batch + 1) * batch_size).min(m);
            if order_by_zeros && linalg::skips_zero_steps(range.len()) {
                self.zero_order.reorder(&mut self.order[range.clone()]);
            }
            let indices = &self.order[range];
            let size = indices.len();
            let input = self.cache.prepare_input(&self.network, size, dropout)?;
            gather_columns(input, train.features, indices);
            let mut targets = self.targets.slice_mut(s![.., ..size]);
            for (j, &example) in indices.iter().enumerate() {
                targets.column_mut(j).assign(&train.targets.row(example));
            }
            let rng = dropout.map(|_| &mut self.rng);
            self.network.forward_prepared(&mut self.cache, rng)?;

            let targets = self.targets.slice(s![.., ..size]);
            let output = self.cache.output();
            let mut loss = self.cost.value(output, targets)? as f64;
            if let Some(accuracy) = metrics::accuracy(output, targets, self.cost)? {
                correct += accuracy * size as f64;
                counted += size;
            }
            self.network
                .backward(&self.cache, targets, self.cost, &mut self.grads)?;
            if self.config.l2 > 0.0 {
                loss += add_l2_penalty(&self.network, &mut self.grads, self.config.l2)? as f64;
            }
            // A non-finite gradient would make the weights non-finite, so it stops training
            // like a non-finite loss does, before the update.
            let norm = match self.config.clip_norm {
                Some(max_norm) => clip_global_norm(&mut self.grads, max_norm)? as f64,
                None => self.grads.global_norm() as f64,
            };
            if !loss.is_finite() || !norm.is_finite() {
                let (quantity, value) = if loss.is_finite() {
                    ("gradient norm", norm)
                } else {
                    ("loss", loss)
                };
                return Err(Error::Diverged {
                    epoch,
                    batch: batch + 1,
                    quantity,
                    value,
                });
            }
            self.optimizer.step(&mut self.network, &self.grads, lr)?;
            loss_sum += loss * size as f64;
            observer.batch_finished(batch + 1, loss);
        }
        let seconds = start.elapsed().as_secs_f64();

        let (validation_loss, validation_accuracy) = match validation {
            Some(data) => {
                let (loss, accuracy) = self.evaluate_validation(data)?;
                (Some(loss), accuracy)
            }
            None => (None, None),
        };
        let record = EpochRecord {
            epoch,
            learning_rate: lr,
            train_loss: loss_sum / m as f64,
            train_accuracy: (counted > 0).then(|| correct / counted as f64),
            validation_loss,
            validation_accuracy,
            seconds,
        };
        self.history.epochs.push(record.clone());
        self.update_early_stopping(&record);
        observer.epoch_finished(&record);
        Ok(record)
    }

    /// Computes what [`evaluate`] does, through buffers that the trainer keeps, so that the
    /// validation pass of later epochs allocates nothing. The chunks, products and sums are
    /// those of [`evaluate`], so the results are the same.
    fn evaluate_validation(&mut self, data: TrainData<'_>) -> Result<(f64, Option<f64>)> {
        let m = data.len();
        if self.validation_outputs.ncols() != m {
            self.validation_outputs = Array2::zeros((self.network.outputs(), m));
        }
        for (chunk, rows) in data
            .features
            .axis_chunks_iter(Axis(0), PREDICT_CHUNK)
            .enumerate()
        {
            let start = chunk * PREDICT_CHUNK;
            let mut input =
                self.validation_cache
                    .prepare_input(&self.network, rows.nrows(), None)?;
            input.assign(&rows.t());
            self.network
                .forward_prepared(&mut self.validation_cache, None)?;
            self.validation_outputs
                .slice_mut(s![.., start..start + rows.nrows()])
                .assign(&self.validation_cache.output());
        }
        let outputs = self.validation_outputs.view();
        let targets = data.targets.t();
        let loss = self.cost.value(outputs, targets)? as f64;
        Ok((loss, metrics::accuracy(outputs, targets, self.cost)?))
    }

    fn update_early_stopping(&mut self, record: &EpochRecord) {
        let Some(stopping) = self.config.early_stopping else {
            return;
        };
        let monitored = record.validation_loss.unwrap_or(record.train_loss);
        let improved = match &self.best {
            None => true,
            Some(best) => monitored < best.loss - stopping.min_delta,
        };
        if improved {
            match &mut self.best {
                // Copies into the existing arrays, so that an improving epoch allocates nothing.
                Some(best) => {
                    best.network.clone_from(&self.network);
                    best.epoch = record.epoch;
                    best.loss = monitored;
                }
                None => {
                    self.best = Some(BestState {
                        network: self.network.clone(),
                        epoch: record.epoch,
                        loss: monitored,
                    });
                }
            }
            self.stale_epochs = 0;
        } else {
            self.stale_epochs += 1;
            if self.stale_epochs >= stopping.patience {
                self.history.stopped_early = true;
            }
        }
        self.history.best_epoch = self.best.as_ref().map(|b| b.epoch);
    }

    /// Ends the run and returns the network: with early stopping, the weights of the best
    /// epoch; otherwise the last weights.
    pub fn finish(self) -> Network<f32> {
        self.finish_with_history().0
    }

    /// As [`Trainer::finish`], also returning the history.
    pub fn finish_with_history(self) -> (Network<f32>, History) {
        let network = match self.best {
            Some(best) => best.network,
            None => self.network,
        };
        (network, self.history)
    }
}

/// Examples per forward pass in [`predict`], [`evaluate`] and the validation pass of training.
const PREDICT_CHUNK: usize = 1024;

/// Computes the mean loss and, for classification, the accuracy of `network` on `data`, in
/// chunks of 1,024 examples so that memory stays bounded.
///
/// # Errors
///
/// [`Error::Shape`] when the data does not fit the network.
pub fn evaluate(
    network: &Network<f32>,
    cost: Cost,
    data: TrainData<'_>,
) -> Result<(f64, Option<f64>)> {
    let outputs = predict(network, data.features)?;
    let targets = data.targets.t();
    let loss = cost.value(outputs.view(), targets)? as f64;
    Ok((loss, metrics::accuracy(outputs.view(), targets, cost)?))
}

/// Copies example `indices[j]` (a row of `features`) into column `j` of `input`, split by
/// examples across the product threads. Consecutive columns write the same cache lines of
/// `input`, which therefore stay in cache from one example to the next.
fn gather_columns(input: ArrayViewMut2<'_, f32>, features: ArrayView2<'_, f32>, indices: &[usize]) {
    rows::map_row_blocks(input.reversed_axes(), &|range, mut block| {
        for (mut column, &example) in block.rows_mut().into_iter().zip(&indices[range]) {
            column.assign(&features.row(example));
        }
    });
}

/// Returns the network's outputs, `n[L] x m`, for features given one example per row
/// (`m x n[0]`), computed in chunks of 1,024 examples that share one set of
/// [`InferenceBuffers`].
///
/// NOTE: a chunk of one example (all of `m = 1`, or a last chunk of one) takes the
/// matrix-vector path of [`Network::forward_into`], whose sums can differ in the last bits from
/// the same example in a larger chunk. [`crate::Predictor`] keeps those bits in `f32` with AVX2
/// and FMA.
///
/// # Errors
///
/// [`Error::Shape`] when the feature count differs from the network's inputs.
pub fn predict(network: &Network<f32>, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
    let m = features.nrows();
    let mut outputs = Array2::zeros((network.outputs(), m));
    let mut buffers = InferenceBuffers::with_capacity(network, PREDICT_CHUNK.min(m));
    for (chunk, rows) in features
        .axis_chunks_iter(Axis(0), PREDICT_CHUNK)
        .enumerate()
    {
        let start = chunk * PREDICT_CHUNK;
        let output = network.forward_into(rows.t(), &mut buffers)?;
        outputs
            .slice_mut(s![.., start..start + rows.nrows()])
            .assign(&output);
    }
    Ok(outputs)
}

/// Encodes targets as `cost` expects them, one row per example (`m x n[L]`): one-hot rows over
/// the classes for categorical cross-entropy, the class index 0 or 1 for binary cross-entropy,
/// and the values unchanged for mean squared error.
///
/// # Errors
///
/// [`Error::Config`] when the targets do not suit the cost: binary cross-entropy with other
/// than two classes, multi-label cross-entropy (which needs a 0/1 column per label, not one
/// class per example), mean squared error on classes, or a cross-entropy on regression values.
/// [`Error::Shape`] when a class index is not below the number of class names.
pub fn encode_targets(targets: &Targets, cost: Cost) -> Result<Array2<f32>> {
    if let Targets::Classes {
        labels,
        class_names,
    } = targets
        && let Some((row, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &label)| label >= class_names.len())
    {
        return Err(Error::Shape(format!(
            "example {} has class index {label}, but there are only {} class names",
            row + 1,
            class_names.len()
        )));
    }
    match (targets, cost) {
        (
            Targets::Classes {
                labels,
                class_names,
            },
            Cost::CategoricalCrossEntropy,
        ) => {
            let mut encoded = Array2::zeros((labels.len(), class_names.len()));
            for (row, &label) in labels.iter().enumerate() {
                encoded[[row, label]] = 1.0;
            }
            Ok(encoded)
        }
        (
            Targets::Classes {
                labels,
                class_names,
            },
            Cost::BinaryCrossEntropy,
        ) => {
            if class_names.len() != 2 {
                return Err(Error::Config(format!(
                    "binary cross-entropy needs exactly 2 classes, the data has {}",
                    class_names.len()
                )));
            }
            Ok(Array2::from_shape_fn((labels.len(), 1), |(row, _)| {
                labels[row] as f32
            }))
        }
        (Targets::Values(values), Cost::MeanSquaredError) => Ok(values.clone()),
        (Targets::Classes { .. }, cost) => Err(Error::Config(format!(
            "{cost} cannot be trained on one class label per example"
        ))),
        (Targets::Values(_), cost) => Err(Error::Config(format!(
            "{cost} needs class labels, but the targets are regression values"
        ))),
    }
}

mod zero_order;

#[cfg(test)]
mod tests;
