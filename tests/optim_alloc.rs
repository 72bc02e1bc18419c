//! Checks that `Optimizer::step` allocates nothing, with a global allocator that counts the
//! allocations made on the test's own thread while counting is on.

use feedforward::{
    Activation, Cost, ForwardCache, Gradients, Network, Optimizer, OptimizerConfig, Rng,
};
use ndarray::Array2;

mod counting_allocator;

use counting_allocator::{CountingAllocator, allocations_on_this_thread};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn optimizer_step_allocates_nothing() {
    let configs = [
        OptimizerConfig::sgd().with_lr(0.1),
        OptimizerConfig::momentum().with_lr(0.1),
        OptimizerConfig::nesterov().with_lr(0.1),
        OptimizerConfig::rmsprop(),
        OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.9,
        },
        OptimizerConfig::adam(),
        OptimizerConfig::adamw(),
    ];
    let mut rng = Rng::new(12);
    let x = Array2::from_shape_fn((6, 10), |_| rng.normal());
    let y = Array2::from_shape_fn((3, 10), |_| rng.normal());
    for config in configs {
        let mut network = Network::<f64>::random(
            &[6, 8, 3],
            &[Activation::Relu, Activation::Identity],
            &mut rng,
        )
        .unwrap();
        let mut cache = ForwardCache::new();
        let mut grads = Gradients::new(&network).with_input_gradient(false);
        network.forward_train(x.view(), &mut cache).unwrap();
        network
            .backward(&cache, y.view(), Cost::MeanSquaredError, &mut grads)
            .unwrap();
        let mut optimizer = Optimizer::new(config, &network).unwrap();

        let count = allocations_on_this_thread(|| {
            for _ in 0..5 {
                optimizer.step(&mut network, &grads, 0.01).unwrap();
            }
        });
        assert_eq!(count, 0, "{config} allocated {count} times in 5 steps");
        assert_eq!(optimizer.step_count(), 5);
    }
}

#[test]
fn allocation_counter_counts() {
    let count = allocations_on_this_thread(|| {
        let buffer: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
        drop(buffer);
    });
    assert_eq!(count, 1);
}
