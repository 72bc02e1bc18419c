use super::*;
use crate::activation::Activation;
use crate::cost::Cost;
use crate::layer::Dense;
use crate::network::ForwardCache;
use crate::optim::{Schedule, add_l2_penalty};
use crate::rng::Rng;
use ndarray::{Array1, Array2, Axis, array, s};

// Exact first steps on one weight and one bias.
//
// The network is `y = w x + b` with `w = 1`, `b = -2`. Two steps use the gradients
// `(dw, db) = (0.5, 0.1)` then `(-0.25, 0.3)` and the learning rates 0.1 then 0.05. The expected
// values were computed apart from this crate, in plain Python floats, from the update rules of
// PyTorch's documentation that the `config` module lists.

fn scalar_network() -> Network<f64> {
    let layer = Dense::new(array![[1.0]], array![-2.0], Activation::Identity).unwrap();
    Network::new(vec![layer]).unwrap()
}

/// Returns `[w, b]` after each of the two steps.
fn two_steps(config: OptimizerConfig) -> [[f64; 2]; 2] {
    let mut network = scalar_network();
    let mut optimizer = Optimizer::new(config, &network).unwrap();
    let mut grads = Gradients::new(&network);
    let mut after = [[0.0; 2]; 2];
    for (step, ((dw, db), lr)) in [(0.5, 0.1), (-0.25, 0.3)]
        .into_iter()
        .zip([0.1, 0.05])
        .enumerate()
    {
        grads.weights[0][[0, 0]] = dw;
        grads.biases[0][0] = db;
        optimizer.step(&mut network, &grads, lr).unwrap();
        let layer = &network.layers()[0];
        after[step] = [layer.weights()[[0, 0]], layer.bias()[0]];
    }
    after
}

fn assert_two_steps(config: OptimizerConfig, expected: [[f64; 2]; 2]) {
    let got = two_steps(config);
    for step in 0..2 {
        for (index, name) in ["w", "b"].into_iter().enumerate() {
            let (g, e) = (got[step][index], expected[step][index]);
            assert!(
                (g - e).abs() < 1e-12,
                "{config}: {name} after step {} is {g}, expected {e}",
                step + 1
            );
        }
    }
}

#[test]
fn sgd_first_steps() {
    // w: 1 - 0.1·0.5 = 0.95, then 0.95 + 0.05·0.25 = 0.9625.
    // b: -2 - 0.1·0.1 = -2.01, then -2.01 - 0.05·0.3 = -2.025.
    assert_two_steps(OptimizerConfig::sgd(), [[0.95, -2.01], [0.9625, -2.025]]);
}

#[test]
fn momentum_first_steps() {
    // w: b1 = 0.5, w = 0.95; b2 = 0.9·0.5 - 0.25 = 0.2, w = 0.95 - 0.05·0.2 = 0.94.
    // b: b1 = 0.1, b = -2.01; b2 = 0.09 + 0.3 = 0.39, b = -2.01 - 0.05·0.39 = -2.0295.
    assert_two_steps(
        OptimizerConfig::momentum(),
        [[0.95, -2.01], [0.94, -2.0295]],
    );
}

#[test]
fn nesterov_first_steps() {
    // w: b1 = 0.5, w = 1 - 0.1 (0.5 + 0.45) = 0.905;
    //    b2 = 0.2, w = 0.905 - 0.05 (-0.25 + 0.18) = 0.9085.
    // b: b1 = 0.1, b = -2 - 0.1 (0.1 + 0.09) = -2.019;
    //    b2 = 0.39, b = -2.019 - 0.05 (0.3 + 0.351) = -2.05155.
    assert_two_steps(
        OptimizerConfig::nesterov(),
        [[0.905, -2.019], [0.9085, -2.05155]],
    );
}

#[test]
fn rmsprop_first_steps() {
    // w: s1 = 0.01·0.25 = 0.0025, √s1 = 0.05, w = 1 - 0.1·0.5 / (0.05 + 1e-8).
    assert_two_steps(
        OptimizerConfig::rmsprop(),
        [
            [1.9999996048181146e-07, -2.9999990000009995],
            [0.22450678721085562, -3.4745778477271463],
        ],
    );
}

#[test]
fn rmsprop_momentum_first_steps() {
    let config = OptimizerConfig::RmsProp {
        lr: 0.01,
        alpha: 0.99,
        eps: 1e-8,
        momentum: 0.5,
    };
    assert_two_steps(
        config,
        [
            [1.9999996059283376e-07, -2.9999990000009995],
            [-0.025493162789154145, -3.724577597727396],
        ],
    );
}

#[test]
fn adam_first_steps() {
    // Step 1: m̂ = g and v̂ = g², so each parameter moves by 0.1 g / (|g| + 1e-8).
    assert_two_steps(
        OptimizerConfig::adam(),
        [
            [0.900000002, -2.099999990000001],
            [0.8866831503539232, -2.145889043897206],
        ],
    );
}

#[test]
fn adamw_first_steps() {
    // Step 1 first decays w to 1 - 0.1·0.1·1 = 0.99 and b to -2 (1 - 0.01) = -1.98, biases
    // included as in PyTorch, then takes the Adam step.
    let config = OptimizerConfig::AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    assert_two_steps(
        config,
        [
            [0.890000002, -2.079999990000001],
            [0.8722331503439232, -2.1154890439472056],
        ],
    );
}

#[test]
fn adamw_without_decay_equals_adam() {
    let adamw = OptimizerConfig::AdamW {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    assert_eq!(two_steps(adamw), two_steps(OptimizerConfig::adam()));
}

// Convergence to the least-squares solution.
//
// A one-layer identity network `Ŷ = W X + b` under mean squared error is linear least squares,
// whose minimum the normal equations give in closed form. Each optimizer runs full-batch steps
// through the library's forward and backward passes and must end within a tight tolerance of
// that minimum.

const INPUTS: usize = 3;
const OUTPUTS: usize = 2;
const EXAMPLES: usize = 40;

/// Inputs `X` (`3 x 40`, standard normal) and targets `Y = W* X + b* + 0.1 N(0, 1)`.
fn least_squares_data(seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = Rng::new(seed);
    let x = Array2::from_shape_fn((INPUTS, EXAMPLES), |_| rng.normal());
    let true_weights = array![[1.5, -2.0, 0.5], [0.3, 0.8, -1.2]];
    let true_bias = array![0.7, -0.4];
    let mut y = true_weights.dot(&x) + true_bias.insert_axis(Axis(1));
    y.mapv_inplace(|value| value + 0.1 * rng.normal());
    (x, y)
}

/// Solves `a z = b` for `z` by Gaussian elimination with partial pivoting, for an `n x n` `a`.
fn solve(mut a: Array2<f64>, mut b: Array2<f64>) -> Array2<f64> {
    let n = a.nrows();
    for column in 0..n {
        let pivot = (column..n)
            .max_by(|&i, &j| a[[i, column]].abs().total_cmp(&a[[j, column]].abs()))
            .unwrap();
        assert!(a[[pivot, column]].abs() > 1e-12, "singular system");
        for k in 0..n {
            a.swap([column, k], [pivot, k]);
        }
        for k in 0..b.ncols() {
            b.swap([column, k], [pivot, k]);
        }
        for row in column + 1..n {
            let factor = a[[row, column]] / a[[column, column]];
            for k in column..n {
                a[[row, k]] -= factor * a[[column, k]];
            }
            for k in 0..b.ncols() {
                b[[row, k]] -= factor * b[[column, k]];
            }
        }
    }
    let mut z = Array2::zeros(b.dim());
    for row in (0..n).rev() {
        for k in 0..b.ncols() {
            let known: f64 = (row + 1..n).map(|j| a[[row, j]] * z[[j, k]]).sum();
            z[[row, k]] = (b[[row, k]] - known) / a[[row, row]];
        }
    }
    z
}

/// Returns the minimizer `(W, b)` of `1/(m n) ‖W X + b - Y‖² + (λ / 2) ‖W‖²`.
///
/// With `X̃ = [X; 1]` and `Θ = [W b]`, setting the gradient to zero gives the normal equations
/// `(X̃ X̃ᵀ + (λ m n / 2) D) Θᵀ = X̃ Yᵀ`, where `D` is the identity with a 0 in the bias row.
fn least_squares_solution(
    x: &Array2<f64>,
    y: &Array2<f64>,
    lambda: f64,
) -> (Array2<f64>, Array1<f64>) {
    let mut augmented = Array2::ones((INPUTS + 1, EXAMPLES));
    augmented.slice_mut(s![..INPUTS, ..]).assign(x);
    let mut gram = augmented.dot(&augmented.t());
    let ridge = lambda * (EXAMPLES * OUTPUTS) as f64 / 2.0;
    for i in 0..INPUTS {
        gram[[i, i]] += ridge;
    }
    let theta = solve(gram, augmented.dot(&y.t())).reversed_axes();
    let weights = theta.slice(s![.., ..INPUTS]).to_owned();
    let bias = theta.column(INPUTS).to_owned();
    (weights, bias)
}

fn start_network<T: Float>() -> Network<T> {
    Network::random(
        &[INPUTS, OUTPUTS],
        &[Activation::Identity],
        &mut Rng::new(3),
    )
    .unwrap()
}

/// Runs `steps` full-batch steps with learning rate `schedule.lr_at(config.lr(), step)` and,
/// when `lambda` is positive, the L2 penalty.
fn train<T: Float>(
    network: &mut Network<T>,
    config: OptimizerConfig,
    schedule: Schedule,
    steps: usize,
    lambda: f64,
) {
    let (x, y) = least_squares_data(1);
    let x = x.mapv(T::of);
    let y = y.mapv(T::of);
    let mut optimizer = Optimizer::new(config, network).unwrap();
    let mut cache = ForwardCache::new();
    let mut grads = Gradients::new(network).with_input_gradient(false);
    for step in 0..steps {
        network.forward_train(x.view(), &mut cache).unwrap();
        network
            .backward(&cache, y.view(), Cost::MeanSquaredError, &mut grads)
            .unwrap();
        if lambda > 0.0 {
            add_l2_penalty(network, &mut grads, lambda).unwrap();
        }
        let lr = schedule.lr_at(config.lr(), step);
        optimizer.step(network, &grads, lr).unwrap();
    }
    assert_eq!(optimizer.step_count(), steps as u64);
}

/// Returns the largest absolute difference between the network's parameters and `(W, b)`.
fn distance<T: Float>(network: &Network<T>, solution: &(Array2<f64>, Array1<f64>)) -> f64 {
    let layer = &network.layers()[0];
    let weights = layer.weights().into_iter().zip(solution.0.iter());
    let bias = layer.bias().into_iter().zip(solution.1.iter());
    weights
        .chain(bias)
        .map(|(&got, &want)| (got.to_f64().unwrap() - want).abs())
        .fold(0.0, f64::max)
}

fn assert_converges(config: OptimizerConfig, schedule: Schedule, steps: usize, tolerance: f64) {
    let (x, y) = least_squares_data(1);
    let solution = least_squares_solution(&x, &y, 0.0);
    let mut network = start_network::<f64>();
    let start = distance(&network, &solution);
    train(&mut network, config, schedule, steps, 0.0);
    let end = distance(&network, &solution);
    assert!(
        end < tolerance,
        "{config} with {schedule}: distance {start:.3e} -> {end:.3e} after {steps} steps"
    );
}

fn cosine(steps: usize) -> Schedule {
    Schedule::Cosine {
        total_epochs: Some(steps),
        min_lr: 0.0,
    }
}

#[test]
fn closed_form_is_stationary() {
    let (x, y) = least_squares_data(1);
    let (weights, bias) = least_squares_solution(&x, &y, 0.0);
    assert!(
        (&weights - &array![[1.5, -2.0, 0.5], [0.3, 0.8, -1.2]])
            .iter()
            .all(|d| d.abs() < 0.1)
    );
    let layer = Dense::new(weights, bias, Activation::Identity).unwrap();
    let network = Network::new(vec![layer]).unwrap();
    let mut cache = ForwardCache::new();
    let mut grads = Gradients::new(&network);
    network.forward_train(x.view(), &mut cache).unwrap();
    network
        .backward(&cache, y.view(), Cost::MeanSquaredError, &mut grads)
        .unwrap();
    assert!(grads.global_norm() < 1e-13, "{}", grads.global_norm());
}

#[test]
fn sgd_reaches_least_squares() {
    assert_converges(
        OptimizerConfig::sgd().with_lr(0.5),
        Schedule::Constant,
        300,
        1e-9,
    );
}

#[test]
fn momentum_reaches_least_squares() {
    assert_converges(
        OptimizerConfig::momentum().with_lr(0.1),
        Schedule::Constant,
        600,
        1e-9,
    );
}

#[test]
fn nesterov_reaches_least_squares() {
    assert_converges(
        OptimizerConfig::nesterov().with_lr(0.1),
        Schedule::Constant,
        600,
        1e-9,
    );
}

// At a constant rate, RMSprop's step `γ g / √s` stays near `γ` in size because `√s` shrinks with
// `|g|`, so it circles the minimum: 3000 steps at γ = 0.01 end 5e-3 away. The cosine schedule
// lets it settle.
#[test]
fn rmsprop_reaches_least_squares() {
    assert_converges(OptimizerConfig::rmsprop(), cosine(3000), 3000, 1e-9);
}

#[test]
fn rmsprop_momentum_reaches_least_squares() {
    let config = OptimizerConfig::RmsProp {
        lr: 0.01,
        alpha: 0.99,
        eps: 1e-8,
        momentum: 0.5,
    };
    assert_converges(config, cosine(3000), 3000, 1e-9);
}

#[test]
fn adam_reaches_least_squares() {
    assert_converges(
        OptimizerConfig::adam().with_lr(0.05),
        Schedule::Constant,
        3000,
        1e-9,
    );
}

#[test]
fn adamw_without_decay_reaches_least_squares() {
    let config = OptimizerConfig::AdamW {
        lr: 0.05,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    assert_converges(config, Schedule::Constant, 3000, 1e-9);
}

#[test]
fn sgd_with_l2_reaches_ridge_solution() {
    let lambda = 0.05;
    let (x, y) = least_squares_data(1);
    let ridge = least_squares_solution(&x, &y, lambda);
    let plain = least_squares_solution(&x, &y, 0.0);
    assert!(
        distance(&start_network::<f64>(), &ridge) > 0.1,
        "the ridge solution should differ from the start"
    );
    let mut network = start_network::<f64>();
    train(
        &mut network,
        OptimizerConfig::sgd().with_lr(0.5),
        Schedule::Constant,
        300,
        lambda,
    );
    let error = distance(&network, &ridge);
    assert!(error < 1e-9, "distance to the ridge solution {error:.3e}");
    let shrinkage = distance(&network, &plain);
    assert!(
        shrinkage > 1e-3,
        "L2 moved the solution by only {shrinkage:.3e}"
    );
}

#[test]
fn f32_sgd_reaches_least_squares() {
    let (x, y) = least_squares_data(1);
    let solution = least_squares_solution(&x, &y, 0.0);
    let mut network = start_network::<f32>();
    train(
        &mut network,
        OptimizerConfig::sgd().with_lr(0.5),
        Schedule::Constant,
        300,
        0.0,
    );
    let error = distance(&network, &solution);
    assert!(error < 1e-5, "f32 distance {error:.3e}");
}

#[test]
fn f32_adam_reaches_least_squares() {
    let (x, y) = least_squares_data(1);
    let solution = least_squares_solution(&x, &y, 0.0);
    let mut network = start_network::<f32>();
    train(
        &mut network,
        OptimizerConfig::adam().with_lr(0.05),
        cosine(3000),
        3000,
        0.0,
    );
    let error = distance(&network, &solution);
    assert!(error < 1e-5, "f32 distance {error:.3e}");
}

// State, checkpoints and errors.

fn all_configs() -> [OptimizerConfig; 7] {
    [
        OptimizerConfig::sgd().with_lr(0.05),
        OptimizerConfig::momentum().with_lr(0.05),
        OptimizerConfig::nesterov().with_lr(0.05),
        OptimizerConfig::rmsprop(),
        OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 0.9,
            eps: 1e-8,
            momentum: 0.5,
        },
        OptimizerConfig::adam(),
        OptimizerConfig::adamw(),
    ]
}

fn deep_network() -> Network<f64> {
    Network::random(
        &[3, 4, 2],
        &[Activation::Tanh, Activation::Identity],
        &mut Rng::new(8),
    )
    .unwrap()
}

fn random_gradients(network: &Network<f64>, rng: &mut Rng) -> Gradients<f64> {
    let mut grads = Gradients::new(network);
    for dw in &mut grads.weights {
        dw.mapv_inplace(|_| rng.normal());
    }
    for db in &mut grads.biases {
        db.mapv_inplace(|_| rng.normal());
    }
    grads
}

#[test]
fn restored_state_continues_identically() {
    for config in all_configs() {
        let mut rng = Rng::new(9);
        let mut network = deep_network();
        let grads: Vec<_> = (0..6)
            .map(|_| random_gradients(&network, &mut rng))
            .collect();
        let mut optimizer = Optimizer::new(config, &network).unwrap();
        for g in &grads[..3] {
            optimizer.step(&mut network, g, 0.05).unwrap();
        }

        let saved = optimizer.state_tensors();
        let mut resumed_network = network.clone();
        let mut resumed = Optimizer::new(config, &resumed_network).unwrap();
        resumed
            .restore_state(optimizer.step_count(), &saved)
            .unwrap();
        assert_eq!(resumed, optimizer, "{config}");

        let mut fresh_network = network.clone();
        let mut fresh = Optimizer::new(config, &fresh_network).unwrap();
        for g in &grads[3..] {
            optimizer.step(&mut network, g, 0.05).unwrap();
            resumed.step(&mut resumed_network, g, 0.05).unwrap();
            fresh.step(&mut fresh_network, g, 0.05).unwrap();
        }
        assert_eq!(resumed_network, network, "{config}");
        assert_eq!(resumed.step_count(), 6);
        let stateful = !saved.is_empty();
        assert_eq!(fresh_network != network, stateful, "{config}");
    }
}

#[test]
fn state_tensor_names_and_shapes() {
    let network = deep_network();
    let adam = Optimizer::new(OptimizerConfig::adam(), &network).unwrap();
    let listed: Vec<(String, Vec<usize>)> = adam
        .state_tensors()
        .into_iter()
        .map(|tensor| (tensor.name, tensor.shape))
        .collect();
    let expected: Vec<(String, Vec<usize>)> = [
        ("exp_avg.0.weight", vec![4, 3]),
        ("exp_avg.0.bias", vec![4]),
        ("exp_avg.1.weight", vec![2, 4]),
        ("exp_avg.1.bias", vec![2]),
        ("exp_avg_sq.0.weight", vec![4, 3]),
        ("exp_avg_sq.0.bias", vec![4]),
        ("exp_avg_sq.1.weight", vec![2, 4]),
        ("exp_avg_sq.1.bias", vec![2]),
    ]
    .into_iter()
    .map(|(name, shape)| (name.to_string(), shape))
    .collect();
    assert_eq!(listed, expected);

    let names = |config: OptimizerConfig| -> Vec<String> {
        let optimizer = Optimizer::new(config, &network).unwrap();
        let tensors = optimizer.state_tensors();
        tensors.into_iter().map(|tensor| tensor.name).collect()
    };
    assert!(names(OptimizerConfig::sgd().with_lr(0.1)).is_empty());
    assert!(
        names(OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false
        })
        .is_empty()
    );
    assert_eq!(
        names(OptimizerConfig::nesterov().with_lr(0.1))[0],
        "momentum_buffer.0.weight"
    );
    let rmsprop = names(OptimizerConfig::rmsprop());
    assert_eq!(rmsprop.len(), 4);
    assert!(rmsprop.iter().all(|name| name.starts_with("square_avg.")));
    let rmsprop_momentum = names(OptimizerConfig::RmsProp {
        lr: 0.01,
        alpha: 0.99,
        eps: 1e-8,
        momentum: 0.9,
    });
    assert_eq!(rmsprop_momentum.len(), 8);
    assert_eq!(rmsprop_momentum[4], "momentum_buffer.0.weight");
}

#[test]
fn state_tensor_data_is_row_major() {
    let network = deep_network();
    let mut optimizer = Optimizer::new(OptimizerConfig::momentum().with_lr(0.1), &network).unwrap();
    let mut grads = Gradients::new(&network);
    grads.weights[0] = Array2::from_shape_fn((4, 3), |(i, j)| (10 * i + j) as f64);
    let mut stepped = network.clone();
    optimizer.step(&mut stepped, &grads, 0.1).unwrap();
    let first = &optimizer.state_tensors()[0];
    assert_eq!(first.name, "momentum_buffer.0.weight");
    assert_eq!(&first.data[..4], &[0.0, 1.0, 2.0, 10.0]);
}

#[test]
fn restore_rejects_mismatched_tensors() {
    let network = deep_network();
    let mut adam = Optimizer::new(OptimizerConfig::adam(), &network).unwrap();
    let mut stepped = network.clone();
    adam.step(
        &mut stepped,
        &random_gradients(&network, &mut Rng::new(4)),
        0.01,
    )
    .unwrap();
    let saved = adam.state_tensors();
    let untouched = Optimizer::new(OptimizerConfig::adam(), &network).unwrap();

    let mut missing = saved.clone();
    missing.remove(3);
    let mut target = untouched.clone();
    let error = target.restore_state(1, &missing).unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(
        error.to_string().contains("'exp_avg.1.bias' is missing"),
        "{error}"
    );
    assert_eq!(target, untouched);

    let mut duplicated = saved.clone();
    duplicated.push(saved[0].clone());
    let error = target.restore_state(1, &duplicated).unwrap_err();
    assert!(error.to_string().contains("appears twice"), "{error}");

    let mut reshaped = saved.clone();
    reshaped[0].shape = vec![3, 4];
    let error = target.restore_state(1, &reshaped).unwrap_err();
    assert!(matches!(error, Error::Shape(_)), "{error}");
    assert!(error.to_string().contains("has shape [3, 4]"), "{error}");

    let mut truncated = saved.clone();
    truncated[1].data.pop();
    let error = target.restore_state(1, &truncated).unwrap_err();
    assert!(matches!(error, Error::Shape(_)), "{error}");
    assert!(
        error.to_string().contains("needs 4 values, got 3"),
        "{error}"
    );
    assert_eq!(target, untouched);

    let mut rmsprop = Optimizer::new(OptimizerConfig::rmsprop(), &network).unwrap();
    let error = rmsprop.restore_state(1, &saved).unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("square_avg.0.weight"), "{error}");

    let mut sgd = Optimizer::new(OptimizerConfig::sgd().with_lr(0.1), &network).unwrap();
    let error = sgd.restore_state(1, &saved).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("unexpected optimizer state tensors"),
        "{error}"
    );
    sgd.restore_state(7, &[]).unwrap();
    assert_eq!(sgd.step_count(), 7);
}

#[test]
fn step_rejects_other_shapes() {
    let network = deep_network();
    let mut optimizer = Optimizer::new(OptimizerConfig::adam(), &network).unwrap();

    let mut wider = Network::<f64>::random(
        &[3, 5, 2],
        &[Activation::Tanh, Activation::Identity],
        &mut Rng::new(1),
    )
    .unwrap();
    let wider_before = wider.clone();
    let grads = Gradients::new(&wider);
    let error = optimizer.step(&mut wider, &grads, 0.01).unwrap_err();
    assert!(matches!(error, Error::Shape(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("layer 1 has a 5x3 weight matrix"),
        "{error}"
    );
    assert_eq!(wider, wider_before);

    let mut same = network.clone();
    let error = optimizer.step(&mut same, &grads, 0.01).unwrap_err();
    assert!(
        error.to_string().contains("dW of layer 1 is (5, 3)"),
        "{error}"
    );
    assert_eq!(same, network);

    let mut short = Gradients::new(&network);
    short.biases[1] = Array1::zeros(3);
    let error = optimizer.step(&mut same, &short, 0.01).unwrap_err();
    assert!(
        error.to_string().contains("db of layer 2 has 3 entries"),
        "{error}"
    );

    let mut shallow =
        Network::<f64>::random(&[3, 2], &[Activation::Identity], &mut Rng::new(1)).unwrap();
    let shallow_grads = Gradients::new(&shallow);
    let error = optimizer
        .step(&mut shallow, &shallow_grads, 0.01)
        .unwrap_err();
    assert!(error.to_string().contains("built for 2 layers"), "{error}");

    assert_eq!(optimizer.step_count(), 0);
    assert_eq!(
        optimizer,
        Optimizer::new(OptimizerConfig::adam(), &network).unwrap()
    );
}

#[test]
fn step_rejects_invalid_learning_rate() {
    let mut network = deep_network();
    let before = network.clone();
    let grads = random_gradients(&network, &mut Rng::new(2));
    let mut optimizer = Optimizer::new(OptimizerConfig::sgd().with_lr(0.1), &network).unwrap();
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        let error = optimizer.step(&mut network, &grads, lr).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{lr}: {error}");
    }
    assert_eq!(network, before);
    assert_eq!(optimizer.step_count(), 0);
}

#[test]
fn new_rejects_invalid_config() {
    let network = deep_network();
    let config = OptimizerConfig::Adam {
        lr: 1e-3,
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
    };
    let error = Optimizer::new(config, &network).unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    assert!(error.to_string().contains("beta1"), "{error}");
}

/// A layer built from a column-major weight array must get the same Adam update, element by
/// element, as one built from the same values in row-major order.
#[test]
fn adam_column_major_weights_match() {
    use ndarray::ShapeBuilder;
    let values = |(i, j): (usize, usize)| (i * 7 + j) as f64 / 10.0 - 1.0;
    let row_major = Array2::from_shape_fn((3, 5), values);
    let column_major = Array2::from_shape_fn((3, 5).f(), values);
    let run = |weights: Array2<f64>| {
        let layer = Dense::new(weights, Array1::zeros(3), Activation::Identity).unwrap();
        let mut network = Network::new(vec![layer]).unwrap();
        let mut optimizer = Optimizer::new(OptimizerConfig::adam(), &network).unwrap();
        let mut grads = Gradients::new(&network);
        grads.weights[0] = Array2::from_shape_fn((3, 5), |(i, j)| (i as f64) - (j as f64) / 3.0);
        for _ in 0..3 {
            optimizer.step(&mut network, &grads, 0.01).unwrap();
        }
        network.layers()[0].weights().to_owned()
    };
    assert_eq!(run(row_major), run(column_major));
}

#[test]
fn flush_subnormal_keeps_normal_values() {
    let smallest = f32::MIN_POSITIVE;
    assert_eq!(flush_subnormal(smallest), smallest);
    assert_eq!(flush_subnormal(-smallest), -smallest);
    assert_eq!(flush_subnormal(smallest / 2.0), 0.0);
    assert_eq!(flush_subnormal(-f32::from_bits(1)), 0.0);
    assert_eq!(flush_subnormal(1.5f32), 1.5);
    assert!(flush_subnormal(f32::NAN).is_nan());
    assert_eq!(flush_subnormal(f32::NEG_INFINITY), f32::NEG_INFINITY);
}

#[test]
fn decaying_buffers_skip_subnormals() {
    // One gradient of 1e-30, then zeros: every buffer decays geometrically through the
    // subnormal range, where each value must become zero instead.
    for config in [
        OptimizerConfig::momentum(),
        OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.9,
        },
        OptimizerConfig::adam(),
    ] {
        let layer = Dense::new(array![[1.0f32]], array![0.0f32], Activation::Identity).unwrap();
        let mut network = Network::new(vec![layer]).unwrap();
        let mut optimizer = Optimizer::new(config, &network).unwrap();
        let mut grads = Gradients::new(&network);
        grads.weights[0][[0, 0]] = 1e-30;
        let mut reached_zero = false;
        for _ in 0..2000 {
            optimizer.step(&mut network, &grads, 1e-3).unwrap();
            grads.weights[0][[0, 0]] = 0.0;
            for tensor in optimizer.state_tensors() {
                for &value in &tensor.data {
                    assert!(
                        value == 0.0 || value.abs() >= f32::MIN_POSITIVE,
                        "{} contains the subnormal {value:e}",
                        tensor.name
                    );
                    reached_zero |= tensor.name.ends_with("weight") && value == 0.0;
                }
            }
        }
        assert!(reached_zero, "{config:?}: no buffer decayed to zero");
    }
}

/// Returns the flag of finite weights after one step of `config` on a layer with weights `w`,
/// zero biases and every weight gradient -1, from a flag cleared by `weights_mut`.
fn finite_flag_after_step<T: Float>(config: OptimizerConfig, w: Array2<T>, lr: f64) -> bool {
    let zeros = Array2::zeros(w.dim());
    let layer = Dense::new(zeros, Array1::zeros(w.nrows()), Activation::Identity).unwrap();
    let mut network = Network::new(vec![layer]).unwrap();
    network.layers_mut()[0].weights_mut().assign(&w);
    assert!(!network.layers()[0].finite_weights());
    let mut optimizer = Optimizer::new(config, &network).unwrap();
    let mut grads = Gradients::new(&network);
    grads.weights[0].fill(T::of(-1.0));
    optimizer.step(&mut network, &grads, lr).unwrap();
    network.layers()[0].finite_weights()
}

#[test]
fn adam_records_finite_weights() {
    let scalar = |w: f32| array![[w]];
    let adam = OptimizerConfig::adam;
    assert!(finite_flag_after_step(adam(), scalar(0.5), 1e-3));
    // Adam's first step moves each weight by about `lr`, here past the largest float.
    assert!(!finite_flag_after_step(adam(), scalar(f32::MAX), 1e37));
    assert!(!finite_flag_after_step(adam(), scalar(f32::NAN), 1e-3));
    assert!(!finite_flag_after_step(adam(), array![[f64::MAX]], 1e300));
    // 65,536 weights take two ranges of the update, and the overflow is in the second.
    let mut wide = Array2::<f32>::zeros((256, 256));
    wide[[255, 255]] = f32::MAX;
    assert!(!finite_flag_after_step(adam(), wide, 1e37));
    // Other optimizers leave the flag unknown.
    assert!(!finite_flag_after_step(
        OptimizerConfig::sgd(),
        scalar(0.5),
        1e-3
    ));
    assert!(!finite_flag_after_step(
        OptimizerConfig::rmsprop(),
        scalar(0.5),
        1e-3
    ));
}
