//! `feedforward train`: fits a network to labeled data, reports test accuracy and saves the
//! model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use feedforward::data::{Dataset, Scaler, ScalerKind, Targets};
use feedforward::model::Model;
use feedforward::optim::{OptimizerConfig, Schedule};
use feedforward::train::{self, EarlyStopping, TrainConfig, TrainData, Trainer};
use feedforward::{Activation, Cost, Init, Network, Rng};
use ndarray::Array2;
use serde_json::json;

use super::data::{DataArgs, DataSpec, Loaded};
use super::evaluate::print_report;
use super::resume::RunRecord;
use super::{UsageError, data, plot, progress};

/// The model file of a run without --model or --resume.
const DEFAULT_MODEL: &str = "model.safetensors";

/// Options of `feedforward train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,

    /// A separate CSV test set, read like --data; without it a CSV's test set is --test-split
    /// of its rows.
    #[arg(long, value_name = "PATH")]
    test_data: Option<PathBuf>,

    /// A separate CSV validation set, read like --data, evaluated after every epoch; an
    /// alternative to --validation-split.
    #[arg(long, value_name = "PATH", conflicts_with = "validation_split")]
    validation_data: Option<PathBuf>,

    /// Fraction of the examples held out as the test set when the data has no test set of its
    /// own (CSV files and the embedded digits).
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.2,
        value_name = "FRACTION"
    )]
    test_split: f64,

    /// Fraction of the training examples held out for validation after every epoch; 0 turns
    /// validation off. Early stopping watches the validation loss when there is one.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "FRACTION"
    )]
    validation_split: f64,

    /// Hidden-layer widths, comma-separated; the input and output widths come from the data.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100",
        value_name = "WIDTHS"
    )]
    layers: Vec<usize>,

    /// Hidden-layer activation: relu, leaky_relu, leaky_relu(SLOPE), elu, elu(ALPHA), gelu,
    /// silu, softplus, sigmoid, tanh or identity.
    #[arg(long, default_value = "relu")]
    activation: Activation,

    /// Weight initializer: he-normal, he-uniform, xavier-normal or xavier-uniform [default:
    /// he-normal for ReLU-like layers, xavier-normal for the others].
    #[arg(long)]
    init: Option<Init>,

    /// Optimizer, optionally with settings: sgd, momentum, nesterov, rmsprop, adam, adamw, or
    /// for instance "sgd(lr=0.1, momentum=0.9)". Defaults are PyTorch's.
    #[arg(long, default_value = "adam")]
    optimizer: OptimizerConfig,

    /// Learning rate; overrides the optimizer's [default: 0.001 for adam and adamw, 0.01 for
    /// the others].
    #[arg(long, allow_negative_numbers = true, value_name = "RATE")]
    lr: Option<f64>,

    /// Learning-rate schedule over epochs: constant, step:EVERY[:GAMMA] (multiply by GAMMA,
    /// default 0.1, every EVERY epochs), or cosine[:TOTAL[:MIN_LR]] (cosine annealing to MIN_LR
    /// over TOTAL epochs, default all of them).
    #[arg(long, default_value = "constant")]
    schedule: Schedule,

    /// Maximum number of passes over the training set.
    #[arg(long, default_value_t = 20)]
    epochs: usize,

    /// Examples per mini-batch; the last batch of an epoch may be smaller.
    #[arg(long, default_value_t = 32, value_name = "M")]
    batch_size: usize,

    /// L2 penalty λ: adds (λ/2)·Σ‖W‖² to the cost and λ·W to each weight gradient.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "LAMBDA"
    )]
    l2: f64,

    /// Clip the global gradient norm to this value [default: no clipping].
    #[arg(long, allow_negative_numbers = true, value_name = "NORM")]
    clip_norm: Option<f64>,

    /// Inverted-dropout rate after every hidden layer, in [0, 1); off at inference.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_name = "RATE"
    )]
    dropout: f64,

    /// Stop when the monitored loss has not improved for --patience epochs, and keep the best
    /// epoch's weights.
    #[arg(long)]
    early_stopping: bool,

    /// Epochs without improvement before early stopping ends training.
    #[arg(long, default_value_t = 10, value_name = "EPOCHS")]
    patience: usize,

    /// Smallest loss decrease that counts as an improvement for early stopping.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 1e-4,
        value_name = "DELTA"
    )]
    min_delta: f64,

    /// Feature scaling fitted on the training set and stored in the model: none, standard
    /// (zero mean, unit variance) or minmax (to [0, 1]).
    #[arg(long, default_value = "standard")]
    scale: ScalerKind,

    /// Seed for the initial weights, the test and validation splits, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Keep each mini-batch in its shuffled order. By default, on x86-64 CPUs with AVX2 and
    /// FMA, a batch of at least 256 is ordered so that similar inputs are neighbours, which
    /// speeds up the matrix products. That changes only the rounding of the gradient, and with
    /// --dropout the examples also get other masks.
    #[arg(long)]
    no_zero_order: bool,

    /// Where to save the trained model (.safetensors) [default: model.safetensors, or with
    /// --resume the file the checkpointed run would have written].
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,

    /// Draw the loss and accuracy curves to this SVG file.
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,

    /// Save a checkpoint after every N epochs (after epochs N, 2N, ...) for --resume; 0 saves
    /// none [default: 0, or with --resume the interval of the checkpointed run].
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,

    /// Checkpoint file, replaced atomically at each checkpoint and kept after training
    /// [default: the --model path with the extension .ckpt, or with --resume the checkpoint
    /// resumed from].
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,

    /// Continue the run saved in this checkpoint file and save the model it would have saved.
    /// The data and every training option come from the checkpoint, so only --data (which
    /// must name the recorded data), --model, --plot, --checkpoint and --checkpoint-every may
    /// be given with it. The result is bit-identical to an uninterrupted run (on CPUs without
    /// AVX2 and FMA, when --threads is the same as in that run).
    #[arg(
        long,
        value_name = "CHECKPOINT",
        conflicts_with_all = [
            "test_data", "test_split", "validation_split", "validation_data", "layers", "activation", "init",
            "optimizer", "lr", "schedule", "epochs", "batch_size", "l2", "clip_norm", "dropout",
            "early_stopping", "patience", "min_delta", "scale", "seed", "target", "task",
            "header", "no_zero_order",
        ]
    )]
    resume: Option<PathBuf>,
}

/// The output layer and cost for the data's targets: softmax and categorical cross-entropy
/// for more than two classes, one sigmoid unit and binary cross-entropy for two, identity and
/// mean squared error for regression.
fn output_for(targets: &Targets) -> (usize, Activation, Cost) {
    match targets {
        Targets::Classes { class_names, .. } if class_names.len() == 2 => {
            (1, Activation::Sigmoid, Cost::BinaryCrossEntropy)
        }
        Targets::Classes { class_names, .. } => (
            class_names.len(),
            Activation::Softmax,
            Cost::CategoricalCrossEntropy,
        ),
        Targets::Values(values) => (values.ncols(), Activation::Identity, Cost::MeanSquaredError),
    }
}

/// Runs `train`: a new run, or with --resume the continuation of a checkpointed one.
pub fn run(args: Args, quiet: bool) -> Result<ExitCode> {
    match args.resume.clone() {
        Some(checkpoint) => continue_run(args, &checkpoint, quiet),
        None => start_run(args, quiet),
    }
}

/// Loads the data, builds a new network and trains it.
fn start_run(args: Args, quiet: bool) -> Result<ExitCode> {
    if args.layers.contains(&0) {
        return Err(UsageError(format!(
            "--layers {:?} has a zero width; every hidden-layer width must be at least 1",
            args.layers
        ))
        .into());
    }
    if !(0.0..1.0).contains(&args.validation_split) {
        return Err(UsageError(format!(
            "--validation-split must be at least 0 and below 1, not {}; 0 turns validation off",
            args.validation_split
        ))
        .into());
    }
    if args.checkpoint.is_some() && args.checkpoint_every.unwrap_or(0) == 0 {
        return Err(UsageError(
            "--checkpoint names a checkpoint file, but no checkpoint is saved without \
             --checkpoint-every N"
                .into(),
        )
        .into());
    }
    let model_path = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    let checkpoints = Checkpoints {
        every: args.checkpoint_every.unwrap_or(0),
        path: args
            .checkpoint
            .clone()
            .unwrap_or_else(|| model_path.with_extension("ckpt")),
    };
    checkpoints.check_distinct(&model_path)?;

    let data_options = DataOptions {
        data: &args.data,
        test_data: args.test_data.as_deref(),
        validation_data: args.validation_data.as_deref(),
        test_split: args.test_split,
        validation_split: args.validation_split,
        seed: args.seed,
        scale: args.scale,
    };
    let prepared = prepare_data(&data_options)?;

    let (outputs, output_activation, cost) = output_for(&prepared.train.targets);
    let mut sizes = vec![prepared.train.n_features()];
    sizes.extend(&args.layers);
    sizes.push(outputs);
    let mut activations = vec![args.activation; args.layers.len()];
    activations.push(output_activation);
    let network =
        Network::random_with_init(&sizes, &activations, args.init, &mut Rng::new(args.seed))?;

    let mut optimizer = args.optimizer;
    if let Some(lr) = args.lr {
        optimizer = optimizer.with_lr(lr);
    }
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        schedule: args.schedule,
        l2: args.l2,
        clip_norm: args.clip_norm,
        dropout: args.dropout,
        seed: args.seed,
        early_stopping: args.early_stopping.then_some(EarlyStopping {
            patience: args.patience,
            min_delta: args.min_delta,
        }),
        order_by_zeros: !args.no_zero_order,
    };

    log::info!(
        "training {network} with {cost} on {} ({} training, {} validation, {} test examples)",
        prepared.spec.source,
        prepared.train.len(),
        prepared.validation.as_ref().map_or(0, Dataset::len),
        prepared.test.len()
    );
    let record = RunRecord::new(
        &prepared,
        &data_options,
        config.clone(),
        &model_path,
        checkpoints.every,
    )?;
    let trainer = Trainer::new(network, cost, config)?;
    train_and_save(
        trainer,
        &prepared,
        record,
        &checkpoints,
        &model_path,
        args.plot.as_deref(),
        quiet,
    )
}

/// Resumes the run saved in `checkpoint`: reloads the recorded data, checks that it is the
/// data the run started with, and trains the remaining epochs.
fn continue_run(args: Args, checkpoint: &Path, quiet: bool) -> Result<ExitCode> {
    let (trainer, extra) = Trainer::resume(checkpoint)?;
    let record = RunRecord::from_checkpoint(extra, checkpoint)?;
    record.check_data_path(args.data.data.as_deref())?;
    let model_path = args.model.clone().unwrap_or_else(|| record.model.clone());
    let checkpoints = Checkpoints {
        every: args.checkpoint_every.unwrap_or(record.checkpoint_every),
        path: args
            .checkpoint
            .clone()
            .unwrap_or_else(|| checkpoint.to_path_buf()),
    };
    checkpoints.check_distinct(&model_path)?;

    let data_args = record.data_args();
    let mut prepared = prepare_data(&DataOptions {
        data: &data_args,
        test_data: record.test_data.as_deref(),
        validation_data: record.validation_data.as_deref(),
        test_split: record.test_split,
        validation_split: record.validation_split,
        seed: record.seed,
        scale: record.scaler.kind(),
    })
    .with_context(|| {
        format!(
            "cannot reload the training data {} of {}",
            record.data.source,
            checkpoint.display()
        )
    })?;
    record.check_same_data(&prepared)?;
    // The model file records the data as the original run named it, which may be a relative
    // path that differs from the absolute one just loaded.
    prepared.spec = record.data.clone();

    log::info!(
        "resuming the training of {} from {} after epoch {} of {}",
        trainer.network(),
        checkpoint.display(),
        trainer.epochs_done(),
        trainer.config().epochs
    );
    train_and_save(
        trainer,
        &prepared,
        record,
        &checkpoints,
        &model_path,
        args.plot.as_deref(),
        quiet,
    )
}

/// The checkpoint file and interval of a run.
struct Checkpoints {
    /// Epochs between checkpoints; 0 saves none.
    every: usize,
    path: PathBuf,
}

impl Checkpoints {
    /// Rejects a checkpoint path equal to the model path, since one file would replace the
    /// other. Paths are compared after making them absolute, without resolving links.
    fn check_distinct(&self, model_path: &Path) -> Result<()> {
        let same = match (
            std::path::absolute(&self.path),
            std::path::absolute(model_path),
        ) {
            (Ok(checkpoint), Ok(model)) => checkpoint == model,
            _ => self.path == model_path,
        };
        if self.every > 0 && same {
            return Err(UsageError(format!(
                "the checkpoint and the model would both be written to {}; name another file \
                 with --checkpoint",
                model_path.display()
            ))
            .into());
        }
        Ok(())
    }
}

/// The options that decide which examples a run trains, validates and tests on.
pub struct DataOptions<'a> {
    pub data: &'a DataArgs,
    pub test_data: Option<&'a Path>,
    pub validation_data: Option<&'a Path>,
    pub test_split: f64,
    pub validation_split: f64,
    pub seed: u64,
    pub scale: ScalerKind,
}

/// A run's data, split and scaled.
pub struct PreparedData {
    pub train: Dataset,
    pub validation: Option<Dataset>,
    pub test: Dataset,
    pub spec: DataSpec,
    /// Fitted on `train` and already applied to all three sets.
    pub scaler: Scaler,
}

/// Loads the data, holds out the test and validation sets, and fits and applies the scaler.
fn prepare_data(options: &DataOptions<'_>) -> Result<PreparedData> {
    let Loaded {
        train: mut train_set,
        test: mut test_set,
        spec,
    } = data::load_for_training(
        options.data,
        options.test_data,
        options.test_split,
        options.seed,
    )?;
    data::check_finite(&train_set, &spec.source)?;
    data::check_finite(&test_set, &spec.source)?;

    let mut validation_set = None;
    if let Some(path) = options.validation_data {
        let validation = data::load_companion(options.data, path, &train_set)?;
        data::check_finite(&validation, &path.display().to_string())?;
        validation_set = Some(validation);
    } else if options.validation_split > 0.0 {
        let mut rng = Rng::new(options.seed.wrapping_add(1));
        let (rest, validation) = train_set
            .split(options.validation_split, &mut rng)
            .map_err(|error| {
                data::split_error(
                    error,
                    &spec.source,
                    "validation",
                    "--validation-split",
                    options.validation_split,
                )
            })?;
        train_set = rest;
        validation_set = Some(validation);
    }

    let scaler = Scaler::fit(options.scale, train_set.features.view());
    scaler.transform(&mut train_set.features)?;
    scaler.transform(&mut test_set.features)?;
    if let Some(validation) = validation_set.as_mut() {
        scaler.transform(&mut validation.features)?;
    }
    Ok(PreparedData {
        train: train_set,
        validation: validation_set,
        test: test_set,
        spec,
        scaler,
    })
}

/// Trains until the trainer is finished, saving checkpoints on the way, then evaluates on the
/// test set and saves the model.
fn train_and_save(
    mut trainer: Trainer,
    prepared: &PreparedData,
    mut record: RunRecord,
    checkpoints: &Checkpoints,
    model_path: &Path,
    plot_path: Option<&Path>,
    quiet: bool,
) -> Result<ExitCode> {
    let PreparedData {
        train: train_set,
        validation: validation_set,
        test: test_set,
        spec,
        scaler,
    } = prepared;
    let cost = trainer.cost();
    let train_targets = encode(train_set, cost)?;
    let test_targets = encode(test_set, cost)?;
    let validation_targets = validation_set
        .as_ref()
        .map(|v| encode(v, cost))
        .transpose()?;
    let train_data = TrainData::new(train_set.features.view(), train_targets.view())?;
    let validation_data = match (validation_set, &validation_targets) {
        (Some(set), Some(targets)) => Some(TrainData::new(set.features.view(), targets.view())?),
        _ => None,
    };

    // Seconds spent before the checkpoint this run resumed from, if any.
    let earlier_seconds = record.train_seconds;
    let start = Instant::now();
    let mut observer = progress::Progress::new(trainer.config().epochs, quiet);
    while !trainer.is_finished() {
        trainer.run_epoch(train_data, validation_data, &mut observer)?;
        if checkpoints.every > 0 && trainer.epochs_done().is_multiple_of(checkpoints.every) {
            record.train_seconds = earlier_seconds + start.elapsed().as_secs_f64();
            let extra = serde_json::to_value(&record).context("cannot encode the run record")?;
            trainer.save_checkpoint(&checkpoints.path, &extra)?;
            log::info!(
                "checkpoint of epoch {} saved to {}",
                trainer.epochs_done(),
                checkpoints.path.display()
            );
        }
    }
    let seconds = earlier_seconds + start.elapsed().as_secs_f64();
    let (network, history) = trainer.finish_with_history();

    let test_data = TrainData::new(test_set.features.view(), test_targets.view())?;
    let (test_loss, test_accuracy) = train::evaluate(&network, cost, test_data)?;

    let model = Model {
        network,
        cost,
        class_names: match &train_set.targets {
            Targets::Classes { class_names, .. } => Some(class_names.clone()),
            Targets::Values(_) => None,
        },
        feature_names: train_set.feature_names.clone(),
        scaler: scaler.clone(),
        training: json!({
            "data": spec,
            "config": record.config,
            "history": history,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "test_examples": test_set.len(),
            "feedforward_version": env!("CARGO_PKG_VERSION"),
        }),
    };
    model.save(model_path)?;
    if let Some(plot_path) = plot_path {
        plot::draw(&history, plot_path)?;
    }

    println!(
        "trained {} in {:.1} s ({} epochs{})",
        model.network,
        seconds,
        history.epochs.len(),
        match history.best_epoch {
            Some(best) => format!(", weights of epoch {best} kept"),
            None => String::new(),
        }
    );
    let outputs = model.network.forward(test_set.features.t())?;
    print_report(&model, test_set, outputs.view(), test_targets.t())?;
    println!("model saved to {}", model_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The targets as the network's cost expects them, one row per example: one-hot rows for
/// categorical cross-entropy, the class index (0 or 1) for binary cross-entropy, the values
/// for regression.
pub fn encode(dataset: &Dataset, cost: Cost) -> Result<Array2<f32>> {
    Ok(train::encode_targets(&dataset.targets, cost)?)
}
