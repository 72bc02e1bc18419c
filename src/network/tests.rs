use super::*;
use crate::rng::Rng;
use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

fn small_network(seed: u64) -> Network<f64> {
    let mut rng = Rng::new(seed);
    Network::random(
        &[3, 5, 2],
        &[Activation::Relu, Activation::Softmax],
        &mut rng,
    )
    .unwrap()
}

fn one_hot(classes: usize, batch: usize) -> Array2<f64> {
    let mut y = Array2::zeros((classes, batch));
    for j in 0..batch {
        y[[j % classes, j]] = 1.0;
    }
    y
}

#[test]
fn sizes_and_activations_list_layers() {
    let network = small_network(1);
    assert_eq!(network.sizes(), [3, 5, 2]);
    assert_eq!(
        network.activations(),
        [Activation::Relu, Activation::Softmax]
    );
}

#[test]
fn forward_matches_layer_by_layer() {
    let network = small_network(1);
    let x = Array2::from_shape_fn((3, 4), |(i, j)| i as f64 - j as f64 / 2.0);
    let mut a = x.clone();
    for layer in network.layers() {
        let z = layer.weights().dot(&a) + layer.bias().insert_axis(ndarray::Axis(1));
        a = layer.activation().forward(z.view());
    }
    let output = network.forward(x.view()).unwrap();
    for (p, q) in output.iter().zip(a.iter()) {
        assert!((p - q).abs() < 1e-14);
    }
    let mut cache = ForwardCache::new();
    network.forward_train(x.view(), &mut cache).unwrap();
    assert_eq!(cache.output(), output);
    assert_eq!(cache.activation(0), x);
}

#[test]
fn training_forward_keeps_layer_bits() {
    // Batch 256 splits the products by columns (examples), and batch 8 against 300 outputs
    // is tall, split by rows. Both must give the bits of `Dense::forward`, layer by layer.
    let mut rng = Rng::new(21);
    let network = Network::<f32>::random(
        &[20, 300, 40, 7],
        &[Activation::Relu, Activation::Sigmoid, Activation::Softmax],
        &mut rng,
    )
    .unwrap();
    let mut cache = ForwardCache::new();
    for batch in [8, 256] {
        let x = Array2::from_shape_simple_fn((20, batch), || rng.normal() as f32);
        network.forward_train(x.view(), &mut cache).unwrap();
        let mut a = x;
        for (index, layer) in network.layers().iter().enumerate() {
            a = layer.forward(a.view()).unwrap();
            assert_eq!(
                cache.activation(index + 1),
                a,
                "batch {batch}, layer {}",
                index + 1
            );
        }
    }
}

#[test]
fn cache_keeps_pre_activation_only_when_needed() {
    let mut rng = Rng::new(2);
    let network = Network::<f64>::random(
        &[3, 4, 4, 2],
        &[Activation::Gelu, Activation::Tanh, Activation::Softmax],
        &mut rng,
    )
    .unwrap();
    let mut cache = ForwardCache::new();
    network
        .forward_train(Array2::zeros((3, 2)).view(), &mut cache)
        .unwrap();
    assert!(cache.pre_activation(1).is_some());
    assert!(cache.pre_activation(2).is_none());
    assert!(cache.pre_activation(3).is_none());
}

#[test]
fn smaller_batch_reuses_cache() {
    let network = small_network(3);
    let mut cache = ForwardCache::new();
    let mut grads = Gradients::new(&network);
    for batch in [8, 3, 8, 1] {
        let x = Array2::from_elem((3, batch), 0.5);
        network.forward_train(x.view(), &mut cache).unwrap();
        assert_eq!(cache.output().dim(), (2, batch));
        network
            .backward(
                &cache,
                one_hot(2, batch).view(),
                Cost::CategoricalCrossEntropy,
                &mut grads,
            )
            .unwrap();
        assert_eq!(grads.input().unwrap().dim(), (3, batch));
    }
}

#[test]
fn construction_errors() {
    let mut rng = Rng::new(4);
    assert!(Network::<f64>::random(&[3], &[], &mut rng).is_err());
    assert!(
        Network::<f64>::random(
            &[3, 0, 2],
            &[Activation::Relu, Activation::Softmax],
            &mut rng
        )
        .is_err()
    );
    assert!(
        Network::<f64>::random(&[3, 2], &[Activation::Relu, Activation::Relu], &mut rng).is_err()
    );
    assert!(Network::<f64>::new(Vec::new()).is_err());
    let a = Dense::<f64>::random(3, 4, Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let b = Dense::<f64>::random(5, 2, Activation::Relu, Init::HeNormal, &mut rng).unwrap();
    let err = Network::new(vec![a, b]).unwrap_err().to_string();
    assert!(
        err.contains("layer 1 has 4 outputs but layer 2 expects 5 inputs"),
        "{err}"
    );
}

#[test]
fn backward_rejects_wrong_cost_and_target_shape() {
    let network = small_network(5);
    let mut cache = ForwardCache::new();
    network
        .forward_train(Array2::zeros((3, 4)).view(), &mut cache)
        .unwrap();
    let mut grads = Gradients::new(&network);
    let err = network
        .backward(
            &cache,
            one_hot(2, 4).view(),
            Cost::BinaryCrossEntropy,
            &mut grads,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let err = network
        .backward(
            &cache,
            one_hot(2, 5).view(),
            Cost::CategoricalCrossEntropy,
            &mut grads,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Shape(_)), "{err}");
}

#[test]
fn backward_rejects_foreign_cache() {
    let network = small_network(6);
    let other = Network::<f64>::random(
        &[3, 4, 2],
        &[Activation::Relu, Activation::Softmax],
        &mut Rng::new(1),
    )
    .unwrap();
    let mut cache = ForwardCache::new();
    other
        .forward_train(Array2::zeros((3, 2)).view(), &mut cache)
        .unwrap();
    let mut grads = Gradients::new(&network);
    let err = network
        .backward(
            &cache,
            one_hot(2, 2).view(),
            Cost::CategoricalCrossEntropy,
            &mut grads,
        )
        .unwrap_err();
    assert!(err.to_string().contains("run forward_train first"), "{err}");
}

#[test]
fn dropout_scales_kept_units_and_is_unbiased() {
    let mut rng = Rng::new(7);
    let network = Network::<f64>::random(
        &[2, 400, 1],
        &[Activation::Relu, Activation::Identity],
        &mut rng,
    )
    .unwrap();
    let x = Array2::from_elem((2, 50), 1.0);
    let mut plain = ForwardCache::new();
    network.forward_train(x.view(), &mut plain).unwrap();
    let mut dropped = ForwardCache::new();
    network
        .forward_train_dropout(x.view(), &mut dropped, &[0.5], &mut rng)
        .unwrap();
    let hidden = plain.activation(1);
    let input = dropped.layer_input(1);
    let (mut active, mut kept) = (0usize, 0usize);
    for (&a, &d) in hidden.iter().zip(input.iter()) {
        assert!(d == 0.0 || (d - 2.0 * a).abs() < 1e-12, "{a} -> {d}");
        if a != 0.0 {
            active += 1;
            kept += usize::from(d != 0.0);
        }
    }
    let fraction = kept as f64 / active as f64;
    assert!((0.45..0.6).contains(&fraction), "kept {fraction}");
    // The activation kept for the backward pass is the one before dropout.
    assert_eq!(dropped.activation(1), hidden);
}

#[test]
fn dropout_gradient_matches_differences_with_fixed_mask() {
    // With the mask fixed (same generator state), the network is a fixed function, so its
    // gradient can be checked by central differences.
    let mut rng = Rng::new(8);
    let network = Network::<f64>::random(
        &[3, 6, 2],
        &[Activation::Tanh, Activation::Softmax],
        &mut rng,
    )
    .unwrap();
    let x = Array2::from_shape_simple_fn((3, 5), || rng.normal());
    let y = one_hot(2, 5);
    let cost = Cost::CategoricalCrossEntropy;
    let seed_state = rng.clone();
    let cost_with = |net: &Network<f64>| {
        let mut cache = ForwardCache::new();
        net.forward_train_dropout(x.view(), &mut cache, &[0.3], &mut seed_state.clone())
            .unwrap();
        cost.value(cache.output(), y.view()).unwrap()
    };
    let mut cache = ForwardCache::new();
    network
        .forward_train_dropout(x.view(), &mut cache, &[0.3], &mut seed_state.clone())
        .unwrap();
    let mut grads = Gradients::new(&network);
    network
        .backward(&cache, y.view(), cost, &mut grads)
        .unwrap();
    let h = 1e-6;
    let mut perturbed = network.clone();
    for i in 0..6 {
        for j in 0..3 {
            let original = network.layers()[0].weights()[[i, j]];
            perturbed.layers_mut()[0].weights_mut()[[i, j]] = original + h;
            let plus = cost_with(&perturbed);
            perturbed.layers_mut()[0].weights_mut()[[i, j]] = original - h;
            let minus = cost_with(&perturbed);
            perturbed.layers_mut()[0].weights_mut()[[i, j]] = original;
            let numerical = (plus - minus) / (2.0 * h);
            let analytic = grads.weights[0][[i, j]];
            assert!(
                (analytic - numerical).abs() < 1e-8,
                "{analytic} vs {numerical}"
            );
        }
    }
}

#[test]
fn dropout_rate_validation() {
    let network = small_network(9);
    let mut cache = ForwardCache::new();
    let x = Array2::zeros((3, 2));
    let mut rng = Rng::new(1);
    assert!(
        network
            .forward_train_dropout(x.view(), &mut cache, &[1.0], &mut rng)
            .is_err()
    );
    assert!(
        network
            .forward_train_dropout(x.view(), &mut cache, &[0.1, 0.1], &mut rng)
            .is_err()
    );
}

#[test]
fn display_summarizes() {
    let network = small_network(10);
    assert_eq!(
        network.to_string(),
        "Network(3 -> 5 relu -> 2 softmax; 32 parameters)"
    );
    assert_eq!(group_thousands(1_234_567), "1,234,567");
}

proptest! {
    #[test]
    fn mismatched_shapes_are_errors(rows in 0usize..8, cols in 0usize..6) {
        let network = small_network(11);
        let x = Array2::<f64>::zeros((rows, cols));
        let result = network.forward(x.view());
        prop_assert_eq!(result.is_ok(), rows == 3);
        let mut cache = ForwardCache::new();
        prop_assert_eq!(network.forward_train(x.view(), &mut cache).is_ok(), rows == 3);
        if rows == 3 {
            let y = Array2::<f64>::zeros((2, cols + 1));
            let mut grads = Gradients::new(&network);
            prop_assert!(network.backward(&cache, y.view(), Cost::CategoricalCrossEntropy, &mut grads).is_err());
        }
    }
}

#[test]
fn global_norm_matches_definition() {
    let network = Network::<f64>::random(
        &[13, 7, 3],
        &[Activation::Tanh, Activation::Softmax],
        &mut Rng::new(12),
    )
    .unwrap();
    let mut grads = Gradients::new(&network);
    let mut rng = Rng::new(13);
    let mut expected = 0.0;
    for w in grads.weights.iter_mut() {
        w.mapv_inplace(|_| rng.normal());
        expected += w.iter().map(|x| x * x).sum::<f64>();
    }
    for b in grads.biases.iter_mut() {
        b.mapv_inplace(|_| rng.normal());
        expected += b.iter().map(|x| x * x).sum::<f64>();
    }
    assert!((grads.global_norm() - expected.sqrt()).abs() < 1e-12);
    assert_eq!(
        sum_of_squares(ndarray::array![[1.0, 2.0], [3.0, 4.0]].t()),
        30.0
    );
}

#[test]
fn fresh_cache_output_is_empty() {
    let cache = ForwardCache::<f64>::new();
    assert_eq!(cache.output().dim(), (0, 0));
    assert!(cache.pre_activation(0).is_none());
    let y = Array2::<f64>::zeros((0, 0));
    assert!(
        Cost::CategoricalCrossEntropy
            .value(cache.output(), y.view())
            .is_err()
    );
}

#[test]
fn pre_activation_beyond_last_layer_is_none() {
    let network = Network::<f64>::random(
        &[3, 4, 2],
        &[Activation::Gelu, Activation::Softmax],
        &mut Rng::new(3),
    )
    .unwrap();
    let mut cache = ForwardCache::new();
    network
        .forward_train(Array2::zeros((3, 2)).view(), &mut cache)
        .unwrap();
    assert_eq!(cache.pre_activation(1).map(|z| z.dim()), Some((4, 2)));
    assert!(cache.pre_activation(3).is_none());
    assert!(cache.pre_activation(usize::MAX).is_none());
}
