//! `feedforward train`: fits a network to labeled data, reports test accuracy and saves the
//! model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use feedforward::data::{Dataset, Scaler, ScalerKind, Targets};
use feedforward::model::Model;
use feedforward::optim::{OptimizerConfig, Schedule};
use feedforward::train::{self, EarlyStopping, TrainConfig, TrainData, Trainer};
use feedforward::{Activation, Cost, Init, Network, Rng};
use ndarray::Array2;
use serde_json::json;

use super::data::{DataArgs, Loaded};
use super::evaluate::print_report;
use super::{UsageError, data, plot, progress};

/// Options of `feedforward train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,

    /// A separate CSV test set, read like --data; without it a CSV's test set is --test-split
    /// of its rows.
    #[arg(long, value_name = "PATH")]
    test_data: Option<PathBuf>,

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

    /// Where to save the trained model (.safetensors).
    #[arg(long, default_value = "model.safetensors", value_name = "PATH")]
    model: PathBuf,

    /// Draw the loss and accuracy curves to this SVG file.
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
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

/// Runs `train`.
pub fn run(args: Args, quiet: bool) -> Result<ExitCode> {
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
    let Loaded {
        train: mut train_set,
        test: mut test_set,
        spec,
    } = data::load_for_training(
        &args.data,
        args.test_data.as_deref(),
        args.test_split,
        args.seed,
    )?;
    data::check_finite(&train_set, &spec.source)?;
    data::check_finite(&test_set, &spec.source)?;

    let mut validation_set = None;
    if args.validation_split > 0.0 {
        let mut rng = Rng::new(args.seed.wrapping_add(1));
        let (rest, validation) =
            train_set
                .split(args.validation_split, &mut rng)
                .map_err(|error| {
                    data::split_error(
                        error,
                        &spec.source,
                        "validation",
                        "--validation-split",
                        args.validation_split,
                    )
                })?;
        train_set = rest;
        validation_set = Some(validation);
    }

    let scaler = Scaler::fit(args.scale, train_set.features.view());
    scaler.transform(&mut train_set.features)?;
    scaler.transform(&mut test_set.features)?;
    if let Some(validation) = validation_set.as_mut() {
        scaler.transform(&mut validation.features)?;
    }

    let (outputs, output_activation, cost) = output_for(&train_set.targets);
    let mut sizes = vec![train_set.n_features()];
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
    };

    let train_targets = encode(&train_set, cost)?;
    let test_targets = encode(&test_set, cost)?;
    let validation_targets = validation_set
        .as_ref()
        .map(|v| encode(v, cost))
        .transpose()?;
    let train_data = TrainData::new(train_set.features.view(), train_targets.view())?;
    let validation_data = match (&validation_set, &validation_targets) {
        (Some(set), Some(targets)) => Some(TrainData::new(set.features.view(), targets.view())?),
        _ => None,
    };

    log::info!(
        "training {network} with {cost} on {} ({} training, {} validation, {} test examples)",
        spec.source,
        train_set.len(),
        validation_set.as_ref().map_or(0, Dataset::len),
        test_set.len()
    );
    let start = Instant::now();
    let mut trainer = Trainer::new(network, cost, config.clone())?;
    let mut observer = progress::Progress::new(config.epochs, quiet);
    trainer.fit(train_data, validation_data, &mut observer)?;
    let seconds = start.elapsed().as_secs_f64();
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
        scaler,
        training: json!({
            "data": spec,
            "config": config,
            "history": history,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
            "test_examples": test_set.len(),
            "feedforward_version": env!("CARGO_PKG_VERSION"),
        }),
    };
    model.save(&args.model)?;
    if let Some(plot_path) = &args.plot {
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
    print_report(&model, &test_set, outputs.view(), test_targets.t())?;
    println!("model saved to {}", args.model.display());
    Ok(ExitCode::SUCCESS)
}

/// The targets as the network's cost expects them, one row per example: one-hot rows for
/// categorical cross-entropy, the class index (0 or 1) for binary cross-entropy, the values
/// for regression.
pub fn encode(dataset: &Dataset, cost: Cost) -> Result<Array2<f32>> {
    Ok(train::encode_targets(&dataset.targets, cost)?)
}
