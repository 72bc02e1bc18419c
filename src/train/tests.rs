use super::*;
use crate::activation::Activation;
use crate::optim::OptimizerConfig;
use ndarray::array;

/// Draws three Gaussian blobs in 2-D with standard deviation 0.5, labels one-hot over 3 classes.
fn blobs(m: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    crate::test_data::blobs(m, seed, 0.5)
}

fn classifier(seed: u64) -> Network<f32> {
    Network::random(
        &[2, 16, 3],
        &[Activation::Relu, Activation::Softmax],
        &mut Rng::new(seed),
    )
    .unwrap()
}

#[test]
fn learns_separable_blobs() {
    let (x, y) = blobs(300, 1);
    let config = TrainConfig {
        epochs: 30,
        batch_size: 32,
        ..TrainConfig::default()
    }
    .with_learning_rate(0.01);
    let mut trainer = Trainer::new(classifier(2), Cost::CategoricalCrossEntropy, config).unwrap();
    let data = TrainData::new(x.view(), y.view()).unwrap();
    trainer.fit(data, None, &mut ()).unwrap();
    let history = trainer.history().clone();
    assert_eq!(history.epochs.len(), 30);
    let first = &history.epochs[0];
    let last = &history.epochs[29];
    assert!(
        last.train_loss < first.train_loss / 3.0,
        "{first:?} -> {last:?}"
    );
    let network = trainer.finish();
    let (_, accuracy) = evaluate(&network, Cost::CategoricalCrossEntropy, data).unwrap();
    assert!(accuracy.unwrap() > 0.97, "{accuracy:?}");
}

#[test]
fn same_seed_gives_identical_weights() {
    let (x, y) = blobs(100, 3);
    let run = |seed| {
        let config = TrainConfig {
            epochs: 3,
            batch_size: 16,
            dropout: 0.2,
            seed,
            ..TrainConfig::default()
        };
        let mut trainer =
            Trainer::new(classifier(4), Cost::CategoricalCrossEntropy, config).unwrap();
        let data = TrainData::new(x.view(), y.view()).unwrap();
        trainer.fit(data, None, &mut ()).unwrap();
        trainer.finish()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// A batch of 300 examples is ordered by its inputs' signs, which changes the order of the
/// gradient's sums and so its rounding, and nothing more.
#[test]
fn ordered_batch_changes_only_rounding() {
    if !linalg::skips_zero_steps(300) {
        eprintln!("skipped: batches are ordered only where the product skips zero steps");
        return;
    }
    let mut rng = Rng::new(8);
    // Half the features are zero, as after a ReLU or in an image's background.
    let x = Array2::from_shape_simple_fn((300, 64), || rng.normal().max(0.0) as f32);
    let mut y = Array2::zeros((300, 3));
    for mut row in y.rows_mut() {
        row[rng.below(3)] = 1.0;
    }
    let run = |order_by_zeros| {
        let config = TrainConfig {
            epochs: 1,
            batch_size: 300,
            optimizer: OptimizerConfig::sgd(),
            order_by_zeros,
            ..TrainConfig::default()
        };
        let network = Network::random(
            &[64, 32, 3],
            &[Activation::Relu, Activation::Softmax],
            &mut Rng::new(9),
        )
        .unwrap();
        let mut trainer = Trainer::new(network, Cost::CategoricalCrossEntropy, config).unwrap();
        trainer
            .fit(TrainData::new(x.view(), y.view()).unwrap(), None, &mut ())
            .unwrap();
        trainer.finish()
    };
    let (ordered, shuffled) = (run(true), run(false));
    assert_ne!(ordered, shuffled, "the order changed no bit of the weights");
    for (a, b) in ordered.layers().iter().zip(shuffled.layers()) {
        for (p, q) in a.weights().iter().zip(b.weights()) {
            assert!((p - q).abs() <= 1e-6, "weights {p} and {q}");
        }
        for (p, q) in a.bias().iter().zip(b.bias()) {
            assert!((p - q).abs() <= 1e-6, "biases {p} and {q}");
        }
    }
}

#[test]
fn batch_larger_than_data_is_one_batch() {
    let (x, y) = blobs(10, 5);
    struct Count(usize);
    impl TrainObserver for Count {
        fn epoch_started(&mut self, _epoch: usize, batches: usize) {
            self.0 = batches;
        }
    }
    let config = TrainConfig {
        epochs: 1,
        batch_size: 1000,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(classifier(6), Cost::CategoricalCrossEntropy, config).unwrap();
    let mut count = Count(0);
    trainer
        .fit(
            TrainData::new(x.view(), y.view()).unwrap(),
            None,
            &mut count,
        )
        .unwrap();
    assert_eq!(count.0, 1);
}

#[test]
fn last_batch_is_smaller() {
    let (x, y) = blobs(10, 7);
    struct Sizes(Vec<usize>);
    impl TrainObserver for Sizes {
        fn epoch_started(&mut self, _epoch: usize, batches: usize) {
            self.0.push(batches);
        }
    }
    let config = TrainConfig {
        epochs: 1,
        batch_size: 4,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(classifier(8), Cost::CategoricalCrossEntropy, config).unwrap();
    let mut sizes = Sizes(Vec::new());
    trainer
        .fit(
            TrainData::new(x.view(), y.view()).unwrap(),
            None,
            &mut sizes,
        )
        .unwrap();
    assert_eq!(sizes.0, vec![3]);
}

#[test]
fn early_stopping_restores_best_weights() {
    let (x, y) = blobs(90, 9);
    let (vx, vy) = blobs(60, 10);
    // A learning rate this large makes the validation loss rise after a few epochs.
    let config = TrainConfig {
        epochs: 40,
        batch_size: 8,
        early_stopping: Some(EarlyStopping {
            patience: 3,
            min_delta: 0.0,
        }),
        ..TrainConfig::default()
    }
    .with_learning_rate(0.05);
    let mut trainer = Trainer::new(classifier(11), Cost::CategoricalCrossEntropy, config).unwrap();
    let train = TrainData::new(x.view(), y.view()).unwrap();
    let validation = TrainData::new(vx.view(), vy.view()).unwrap();
    trainer.fit(train, Some(validation), &mut ()).unwrap();
    let (network, history) = trainer.finish_with_history();
    let best_epoch = history.best_epoch.unwrap();
    let best_loss = history.epochs[best_epoch - 1].validation_loss.unwrap();
    for record in &history.epochs {
        assert!(record.validation_loss.unwrap() >= best_loss);
    }
    let (loss, _) = evaluate(&network, Cost::CategoricalCrossEntropy, validation).unwrap();
    assert!(
        (loss - best_loss).abs() < 1e-9,
        "restored {loss}, best {best_loss}"
    );
    if history.stopped_early {
        assert_eq!(history.epochs.len(), best_epoch + 3);
    }
}

#[test]
fn early_stopping_restores_best_at_epoch_limit() {
    let (x, y) = blobs(90, 12);
    let config = TrainConfig {
        epochs: 15,
        batch_size: 8,
        early_stopping: Some(EarlyStopping {
            patience: 100,
            min_delta: 0.0,
        }),
        ..TrainConfig::default()
    }
    .with_learning_rate(0.2);
    let mut trainer = Trainer::new(classifier(13), Cost::CategoricalCrossEntropy, config).unwrap();
    let train = TrainData::new(x.view(), y.view()).unwrap();
    trainer.fit(train, None, &mut ()).unwrap();
    let last_network = trainer.network().clone();
    let (network, history) = trainer.finish_with_history();
    assert!(!history.stopped_early);
    let best_epoch = history.best_epoch.unwrap();
    let best_loss = history.epochs[best_epoch - 1].train_loss;
    assert!(history.epochs.iter().all(|r| r.train_loss >= best_loss));
    if best_epoch < 15 {
        assert_ne!(network, last_network);
    }
}

#[test]
fn divergence_names_epoch_and_batch() {
    let x = array![[1e20f32, -1e20], [3e20, 1e20], [-2e20, 5e19], [1e20, 1e20]];
    let y = array![[1e20f32], [-1e20], [2e20], [0.0]];
    let network = Network::random(
        &[2, 4, 1],
        &[Activation::Relu, Activation::Identity],
        &mut Rng::new(1),
    )
    .unwrap();
    let config = TrainConfig {
        epochs: 5,
        batch_size: 2,
        ..TrainConfig::default()
    }
    .with_learning_rate(1e10);
    let mut trainer = Trainer::new(network, Cost::MeanSquaredError, config).unwrap();
    let err = trainer
        .fit(TrainData::new(x.view(), y.view()).unwrap(), None, &mut ())
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Diverged { .. }), "{message}");
    assert!(message.contains("epoch 1, batch"), "{message}");
    assert!(message.contains("lower the learning rate"), "{message}");
    for layer in trainer.network().layers() {
        assert!(layer.weights().iter().all(|w| w.is_finite()));
    }
}

#[test]
fn mismatched_data_is_error() {
    let (x, y) = blobs(10, 14);
    let mut trainer = Trainer::new(
        classifier(15),
        Cost::CategoricalCrossEntropy,
        TrainConfig::default(),
    )
    .unwrap();
    let wide = Array2::zeros((10, 5));
    let err = trainer
        .fit(
            TrainData::new(wide.view(), y.view()).unwrap(),
            None,
            &mut (),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("5 features but the network expects 2"),
        "{err}"
    );
    assert!(TrainData::new(x.view(), Array2::zeros((9, 3)).view()).is_err());
    assert!(TrainData::new(Array2::zeros((0, 2)).view(), Array2::zeros((0, 3)).view()).is_err());
}

#[test]
fn invalid_config_is_error() {
    for config in [
        TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            dropout: 1.0,
            ..TrainConfig::default()
        },
        TrainConfig {
            clip_norm: Some(0.0),
            ..TrainConfig::default()
        },
    ] {
        assert!(matches!(
            Trainer::new(classifier(16), Cost::CategoricalCrossEntropy, config),
            Err(Error::Config(_))
        ));
    }
}

#[test]
fn negative_or_nan_l2_is_config_error() {
    for l2 in [-1e-4, f64::NAN, f64::INFINITY] {
        let config = TrainConfig {
            l2,
            ..TrainConfig::default()
        };
        let error = Trainer::new(classifier(17), Cost::CategoricalCrossEntropy, config)
            .err()
            .unwrap_or_else(|| panic!("L2 penalty {l2} was accepted"));
        assert!(matches!(error, Error::Config(_)), "{l2}: {error}");
        assert!(error.to_string().contains("L2 penalty"), "{error}");
    }
}

#[test]
fn encode_targets_rejects_class_index_out_of_range() {
    for cost in [Cost::CategoricalCrossEntropy, Cost::BinaryCrossEntropy] {
        let targets = Targets::Classes {
            labels: vec![0, 2],
            class_names: vec!["a".into(), "b".into()],
        };
        let error = encode_targets(&targets, cost).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{cost}: {error}");
        assert!(error.to_string().contains("example 2"), "{error}");
        assert!(error.to_string().contains("class index 2"), "{error}");
    }
}
