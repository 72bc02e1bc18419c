//! Checks that `Optimizer::step` allocates nothing, with a global allocator that counts the
//! allocations made on the test's own thread while counting is on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use feedforward::{
    Activation, Cost, ForwardCache, Gradients, Network, Optimizer, OptimizerConfig, Rng,
};
use ndarray::Array2;

struct CountingAllocator;

// Both are per thread, so tests running in parallel do not count each other's allocations.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator. Counting only touches
// const-initialized thread-locals without destructors, which do not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Returns the number of allocations `work` makes on this thread.
fn allocations_in(work: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|flag| flag.set(true));
    work();
    COUNTING.with(|flag| flag.set(false));
    ALLOCATIONS.with(Cell::get)
}

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

        let count = allocations_in(|| {
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
    let count = allocations_in(|| {
        let buffer: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
        drop(buffer);
    });
    assert_eq!(count, 1);
}
