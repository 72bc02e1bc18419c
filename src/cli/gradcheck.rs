//! `feedforward gradcheck`: builds a network on random data and compares every parameter
//! tensor's backpropagated gradient with central finite differences, in `f64`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use feedforward::gradcheck::{DEFAULT_STEP, DEFAULT_TOLERANCE};
use feedforward::{Activation, Cost, Network, Rng, check_gradients};
use ndarray::Array2;

use super::UsageError;

/// Options of `feedforward gradcheck`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Layer widths from input to output, comma-separated, such as 784,64,10.
    #[arg(long, value_delimiter = ',', required = true, value_name = "WIDTHS")]
    layers: Vec<usize>,

    /// Activation of every hidden layer: identity, relu, leaky_relu, leaky_relu(SLOPE), elu,
    /// elu(ALPHA), gelu, silu, softplus, sigmoid, tanh or softmax.
    #[arg(long, default_value = "relu")]
    activation: Activation,

    /// Activation of the output layer; any of the hidden-layer names.
    #[arg(long, default_value = "softmax")]
    output: Activation,

    /// Cost: cross-entropy, binary-cross-entropy, multi-label-cross-entropy or mse.
    #[arg(long, default_value = "cross-entropy")]
    cost: Cost,

    /// Seed for the weights, biases, inputs and targets.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Number of random examples in the batch.
    #[arg(long, default_value_t = 4, value_name = "M")]
    batch: usize,

    /// Finite-difference step h.
    #[arg(long, default_value_t = DEFAULT_STEP)]
    step: f64,

    /// Largest maximum relative error that passes.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    tolerance: f64,
}

/// Runs the check and prints one line per parameter tensor; exit status 1 when any fails.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.layers.len() < 2 {
        return Err(UsageError(format!(
            "--layers needs at least an input and an output width, got {:?}",
            args.layers
        ))
        .into());
    }
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    let outputs = args.layers[args.layers.len() - 1];
    args.cost.check_output(args.output, outputs)?;

    let mut activations = vec![args.activation; args.layers.len() - 2];
    activations.push(args.output);
    let mut rng = Rng::new(args.seed);
    let mut network = Network::<f64>::random(&args.layers, &activations, &mut rng)?;
    // Random biases keep every Z away from exactly 0, where ReLU's derivative is 0 by
    // definition but its central difference is 1/2 (zero biases give Z = 0 exactly for an
    // example whose ReLU units are all inactive).
    for layer in network.layers_mut() {
        layer.bias_mut().mapv_inplace(|_| 0.1 * rng.normal());
    }
    let x = Array2::from_shape_simple_fn((args.layers[0], args.batch), || rng.normal());
    let y = random_targets(args.cost, outputs, args.batch, &mut rng);

    println!(
        "{network}, cost {}, batch {}, step {:e}, seed {}",
        args.cost, args.batch, args.step, args.seed
    );
    let checks = check_gradients(&network, x.view(), y.view(), args.cost, args.step)
        .context("gradient check failed to run")?;

    println!(
        "{:<8} {:>12} {:>22} {:>22}  result",
        "tensor", "shape", "max relative error", "max absolute error"
    );
    let mut all_pass = true;
    for check in &checks {
        let pass = check.max_relative_error < args.tolerance;
        all_pass &= pass;
        let shape = check
            .shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x");
        println!(
            "{:<8} {:>12} {:>22.3e} {:>22.3e}  {}",
            check.name,
            shape,
            check.max_relative_error,
            check.max_absolute_error,
            if pass { "PASS" } else { "FAIL" }
        );
    }
    if all_pass {
        println!(
            "PASS: every tensor's maximum relative error is below {:e}",
            args.tolerance
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "FAIL: some tensor's maximum relative error is at least {:e}",
            args.tolerance
        );
        Ok(ExitCode::from(1))
    }
}

/// Targets that suit `cost`: 0/1 labels, one-hot columns, or values in [0, 1).
fn random_targets(cost: Cost, outputs: usize, batch: usize, rng: &mut Rng) -> Array2<f64> {
    match cost {
        Cost::CategoricalCrossEntropy => {
            let mut y = Array2::zeros((outputs, batch));
            for j in 0..batch {
                y[[rng.below(outputs), j]] = 1.0;
            }
            y
        }
        Cost::BinaryCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => {
            Array2::from_shape_simple_fn((outputs, batch), || rng.below(2) as f64)
        }
        Cost::MeanSquaredError => Array2::from_shape_simple_fn((outputs, batch), || rng.uniform()),
    }
}
