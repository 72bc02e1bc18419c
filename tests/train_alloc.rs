//! Checks that a training epoch after the first allocates nothing. The count covers batch
//! gathering and ordering, the forward and backward passes with their matrix products, the
//! cost, the accuracy, the L2 penalty, gradient clipping, dropout, the optimizer step, the
//! validation pass, early stopping and the epoch's record.
//!
//! The global allocator counts allocations on every thread, including the threads of the matrix
//! products, so this file contains a single test: a second test running in parallel would add its
//! own allocations to the count.

use feedforward::train::{EarlyStopping, TrainConfig, TrainData, Trainer};
use feedforward::{Activation, Cost, Network, OptimizerConfig, Rng, linalg};
use ndarray::{Array2, s};

mod counting_allocator;

use counting_allocator::{CountingAllocator, allocations_on_all_threads};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Examples in the synthetic set: two full batches of 128 and a last batch of 44, or one batch
/// of 256 and one of 44.
const EXAMPLES: usize = 300;
const CLASSES: usize = 10;
const FEATURES: usize = 784;
/// Examples of the validation set, taken from the start of the training set.
const VALIDATION_EXAMPLES: usize = 100;

/// Features from a standard normal, with the negative half set to zero, and one-hot targets
/// whose class is the largest of the first ten features, so that the network has something
/// to learn.
fn synthetic_data() -> (Array2<f32>, Array2<f32>) {
    let mut rng = Rng::new(21);
    let features =
        Array2::from_shape_simple_fn((EXAMPLES, FEATURES), || rng.normal().max(0.0) as f32);
    let mut targets = Array2::zeros((EXAMPLES, CLASSES));
    for (row, example) in features.rows().into_iter().enumerate() {
        let class = feedforward::metrics::argmax(example.iter().take(CLASSES).copied());
        targets[[row, class]] = 1.0;
    }
    (features, targets)
}

#[test]
fn later_epochs_allocate_nothing() {
    linalg::set_threads(2);
    let (features, targets) = synthetic_data();
    let data = TrainData::new(features.view(), targets.view()).unwrap();
    let validation = TrainData::new(
        features.slice(s![..VALIDATION_EXAMPLES, ..]),
        targets.slice(s![..VALIDATION_EXAMPLES, ..]),
    )
    .unwrap();

    let plain = TrainConfig {
        epochs: 3,
        batch_size: 128,
        ..TrainConfig::default()
    };
    let regularized = TrainConfig {
        dropout: 0.2,
        clip_norm: Some(1.0),
        l2: 1e-4,
        // A patience above the epoch count keeps every epoch running, and the validation loss
        // usually improves, which copies the weights into the best state.
        early_stopping: Some(EarlyStopping {
            patience: 10,
            min_delta: 0.0,
        }),
        ..plain.clone()
    };
    let momentum = TrainConfig {
        optimizer: OptimizerConfig::momentum().with_lr(0.01),
        dropout: 0.1,
        ..plain.clone()
    };
    // A batch of 256 is ordered by its inputs, and its products skip zero steps.
    let ordered = TrainConfig {
        batch_size: 256,
        ..plain.clone()
    };
    let cases = [
        ("Adam", plain, None),
        ("Adam, batches of 256", ordered, None),
        (
            "Adam with dropout, clipping, L2, validation, early stopping",
            regularized,
            Some(validation),
        ),
        ("SGD with momentum and dropout", momentum, None),
    ];

    for (name, config, validation) in cases {
        let network = Network::<f32>::random(
            &[FEATURES, 256, 128, CLASSES],
            &[Activation::Relu, Activation::Relu, Activation::Softmax],
            &mut Rng::new(4),
        )
        .unwrap();
        let mut trainer = Trainer::new(network, Cost::CategoricalCrossEntropy, config).unwrap();
        trainer.run_epoch(data, validation, &mut ()).unwrap();

        let mut counts = Vec::with_capacity(2);
        let mut losses = Vec::with_capacity(2);
        for _ in 0..2 {
            let mut loss = f64::NAN;
            let count = allocations_on_all_threads(|| {
                loss = trainer
                    .run_epoch(data, validation, &mut ())
                    .unwrap()
                    .train_loss;
            });
            counts.push(count);
            losses.push(loss);
        }

        assert_eq!(trainer.epochs_done(), 3, "{name}");
        assert!(
            losses.iter().all(|loss| loss.is_finite()),
            "{name}: training losses of epochs 2 and 3 are {losses:?}"
        );
        assert_eq!(
            counts,
            [0, 0],
            "{name}: allocations in epochs 2 and 3 are {counts:?}, expected none"
        );
    }
}
