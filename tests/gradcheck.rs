//! Gradient checks of whole networks in `f64`: every activation as a hidden layer, every
//! supported (output activation, cost) pair, depths 1 to 4 with odd widths, batches of 1 and
//! 17. The maximum relative error must stay below 1e-6 everywhere.

use feedforward::gradcheck::{DEFAULT_STEP, DEFAULT_TOLERANCE};
use feedforward::{
    Activation, Cost, ForwardCache, Gradients, Network, Rng, TensorCheck, check_gradients,
};
use ndarray::Array2;

/// Targets that suit `cost`: 0/1 labels, one-hot columns or real values.
fn targets(cost: Cost, outputs: usize, batch: usize, rng: &mut Rng) -> Array2<f64> {
    match cost {
        Cost::BinaryCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => {
            Array2::from_shape_simple_fn((outputs, batch), || rng.below(2) as f64)
        }
        Cost::CategoricalCrossEntropy => {
            let mut y = Array2::zeros((outputs, batch));
            for j in 0..batch {
                y[[rng.below(outputs), j]] = 1.0;
            }
            y
        }
        Cost::MeanSquaredError => Array2::from_shape_simple_fn((outputs, batch), || rng.uniform()),
    }
}

/// A random network with random biases. With the usual zero biases, an example whose ReLU
/// units are all inactive reaches the next layer as `Z = 0` exactly, where ReLU has a kink: the
/// analytic derivative there is 0 by definition, the central difference 1/2.
fn random_network(sizes: &[usize], activations: &[Activation], rng: &mut Rng) -> Network<f64> {
    let mut network = Network::random(sizes, activations, rng).unwrap();
    for layer in network.layers_mut() {
        layer.bias_mut().mapv_inplace(|_| 0.1 * rng.normal());
    }
    network
}

fn run(sizes: &[usize], activations: &[Activation], cost: Cost, batch: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let network = random_network(sizes, activations, &mut rng);
    let x = Array2::from_shape_simple_fn((sizes[0], batch), || rng.normal());
    let y = targets(cost, sizes[sizes.len() - 1], batch, &mut rng);
    let checks = check_gradients(&network, x.view(), y.view(), cost, DEFAULT_STEP).unwrap();
    assert_eq!(checks.len(), 2 * activations.len());
    for TensorCheck {
        name,
        max_relative_error,
        worst_entry,
        ..
    } in &checks
    {
        assert!(
            *max_relative_error < DEFAULT_TOLERANCE,
            "{network} with {cost}, batch {batch}, seed {seed}: {name} has relative error \
             {max_relative_error:e} at entry {worst_entry}"
        );
    }
}

#[test]
fn every_hidden_activation() {
    for activation in Activation::ALL {
        for batch in [1, 17] {
            run(
                &[5, 7, 4],
                &[activation, Activation::Softmax],
                Cost::CategoricalCrossEntropy,
                batch,
                11,
            );
        }
    }
}

#[test]
fn every_output_and_cost_pair() {
    let mut pairs = vec![
        (Activation::Sigmoid, Cost::BinaryCrossEntropy, 1),
        (Activation::Sigmoid, Cost::MultiLabelBinaryCrossEntropy, 3),
        (Activation::Softmax, Cost::CategoricalCrossEntropy, 4),
    ];
    for activation in Activation::ALL {
        pairs.push((activation, Cost::MeanSquaredError, 3));
    }
    for (output, cost, outputs) in pairs {
        for batch in [1, 17] {
            run(
                &[6, 5, outputs],
                &[Activation::Tanh, output],
                cost,
                batch,
                12,
            );
        }
    }
}

#[test]
fn depths_one_to_four_with_odd_widths() {
    let shapes: [&[usize]; 4] = [&[7, 4], &[7, 5, 4], &[7, 5, 3, 4], &[7, 9, 5, 3, 4]];
    for sizes in shapes {
        let mut activations = vec![Activation::Relu; sizes.len() - 2];
        activations.push(Activation::Softmax);
        for batch in [1, 17] {
            run(
                sizes,
                &activations,
                Cost::CategoricalCrossEntropy,
                batch,
                13,
            );
        }
    }
}

#[test]
fn mixed_activations_deep() {
    let activations = [
        Activation::Gelu,
        Activation::Elu { alpha: 0.7 },
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Sigmoid,
    ];
    for batch in [1, 17] {
        run(
            &[7, 5, 3, 5, 3],
            &activations,
            Cost::MultiLabelBinaryCrossEntropy,
            batch,
            14,
        );
    }
}

/// The fused `dZ[L] = (A - Y)/m` and the chained `g'(Z) dA` give the same gradients where the
/// outputs stay away from 0 and 1.
#[test]
fn fused_and_unfused_paths_agree() {
    let pairs = [
        (Activation::Sigmoid, Cost::BinaryCrossEntropy, 1),
        (Activation::Sigmoid, Cost::MultiLabelBinaryCrossEntropy, 3),
        (Activation::Softmax, Cost::CategoricalCrossEntropy, 4),
        (Activation::Identity, Cost::MeanSquaredError, 2),
    ];
    for (output, cost, outputs) in pairs {
        let mut rng = Rng::new(21);
        let network = random_network(&[5, 6, outputs], &[Activation::Tanh, output], &mut rng);
        let x = Array2::from_shape_simple_fn((5, 9), || 0.5 * rng.normal());
        let y = targets(cost, outputs, 9, &mut rng);
        let mut cache = ForwardCache::new();
        network.forward_train(x.view(), &mut cache).unwrap();
        assert!(
            cache
                .output()
                .iter()
                .all(|&a| output == Activation::Identity || (0.01..0.99).contains(&a)),
            "{cost}: outputs too close to 0 or 1 for this comparison"
        );

        let mut fused = Gradients::new(&network);
        network
            .backward(&cache, y.view(), cost, &mut fused)
            .unwrap();

        let mut da = Array2::zeros(cache.output().dim());
        cost.gradient(cache.output(), y.view(), da.view_mut())
            .unwrap();
        let mut chained = Gradients::new(&network);
        network
            .backward_from_output_gradient(&cache, da.view(), &mut chained)
            .unwrap();

        for (f, c) in fused.weights.iter().zip(&chained.weights) {
            for (a, b) in f.iter().zip(c.iter()) {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    "{cost}: {a} vs {b}"
                );
            }
        }
        for (f, c) in fused.biases.iter().zip(&chained.biases) {
            for (a, b) in f.iter().zip(c.iter()) {
                assert!(
                    (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                    "{cost}: {a} vs {b}"
                );
            }
        }
        let (fi, ci) = (fused.input().unwrap(), chained.input().unwrap());
        for (a, b) in fi.iter().zip(ci.iter()) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{cost}: dA[0] {a} vs {b}"
            );
        }
    }
}

/// `dA[0]` against central differences of `J` in each input entry.
#[test]
fn input_gradient_matches_differences() {
    let mut rng = Rng::new(22);
    let network = random_network(
        &[4, 5, 3],
        &[Activation::Silu, Activation::Softmax],
        &mut rng,
    );
    let x = Array2::from_shape_simple_fn((4, 3), || rng.normal());
    let y = targets(Cost::CategoricalCrossEntropy, 3, 3, &mut rng);
    let cost = Cost::CategoricalCrossEntropy;
    let mut cache = ForwardCache::new();
    network.forward_train(x.view(), &mut cache).unwrap();
    let mut grads = Gradients::new(&network);
    network
        .backward(&cache, y.view(), cost, &mut grads)
        .unwrap();
    let h = 1e-6;
    for ((i, j), &analytic) in grads.input().unwrap().indexed_iter() {
        let mut plus = x.clone();
        plus[[i, j]] += h;
        let mut minus = x.clone();
        minus[[i, j]] -= h;
        let j_plus = cost
            .value(network.forward(plus.view()).unwrap().view(), y.view())
            .unwrap();
        let j_minus = cost
            .value(network.forward(minus.view()).unwrap().view(), y.view())
            .unwrap();
        let numerical = (j_plus - j_minus) / (2.0 * h);
        assert!(
            (analytic - numerical).abs() < 1e-8,
            "dA[0][{i},{j}]: {analytic} vs {numerical}"
        );
    }
}
