//! Checks that `Network::forward_into` and `Predictor::predict` allocate nothing of their own
//! once their buffers are sized, with a global allocator that counts the allocations made on
//! the test's own thread.

use feedforward::{Activation, InferenceBuffers, Network, Predictor, Rng, linalg};
use ndarray::{Array2, Axis, s};

mod counting_allocator;

use counting_allocator::{CountingAllocator, allocations_on_this_thread};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn forward_into_allocates_nothing_itself() {
    // The sanity check first: the counter counts an allocation.
    let count = allocations_on_this_thread(|| {
        let buffer: Vec<u64> = std::hint::black_box(Vec::with_capacity(16));
        drop(buffer);
    });
    assert_eq!(count, 1, "the counting allocator missed an allocation");

    let mut rng = Rng::new(21);
    let activations = [Activation::Relu, Activation::Tanh, Activation::Softmax];
    let network = Network::<f32>::random(&[40, 32, 16, 10], &activations, &mut rng).unwrap();
    // One example per row, as data sets store them.
    let examples = Array2::from_shape_fn((64, 40), |_| rng.normal() as f32);
    let batch = examples.slice(s![..48, ..]);
    let single = examples.slice(s![5..6, ..]);
    let column = examples.slice(s![7, ..]).insert_axis(Axis(1));
    let mut buffers = InferenceBuffers::new();
    network.forward_into(batch.t(), &mut buffers).unwrap();

    // A batch of one runs the matrix-vector kernel and must not allocate at all.
    let mut checksum = 0.0;
    let count = allocations_on_this_thread(|| {
        for _ in 0..3 {
            checksum += network.forward_into(single.t(), &mut buffers).unwrap()[[0, 0]];
            checksum += network.forward_into(column, &mut buffers).unwrap()[[0, 0]];
        }
    });
    assert_eq!(
        count, 0,
        "forward_into allocated {count} times in 6 one-column calls"
    );

    // A larger batch may allocate only inside linalg::gemm (the gemm crate's path does), so it
    // allocates at most as often as the same products alone.
    let mut products: Vec<Array2<f32>> = network
        .layers()
        .iter()
        .map(|layer| Array2::zeros((layer.outputs(), 48)))
        .collect();
    let inputs = [
        batch.t().to_owned(),
        products[0].clone(),
        products[1].clone(),
    ];
    let product_count = allocations_on_this_thread(|| {
        for ((layer, input), product) in network.layers().iter().zip(&inputs).zip(&mut products) {
            linalg::gemm(
                1.0,
                layer.weights(),
                input.view(),
                0.0,
                &mut product.view_mut(),
            )
            .unwrap();
        }
    });
    let count = allocations_on_this_thread(|| {
        checksum += network.forward_into(batch.t(), &mut buffers).unwrap()[[0, 0]];
    });
    assert!(
        count <= product_count,
        "forward_into allocated {count} times on a batch of 48, its products alone {product_count}"
    );
    // The crate's own f32 product (x86-64 with AVX2 and FMA) allocates nothing once its
    // buffers exist, so there the whole pass allocates nothing.
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        assert_eq!(count, 0, "forward_into allocated on a batch of 48");
    }
    assert!(checksum.is_finite());
}

#[test]
fn predictor_batch_of_one_allocates_nothing() {
    // 784 x 256 is large enough for the first layer to be split over the product threads.
    let mut rng = Rng::new(22);
    let activations = [Activation::Relu, Activation::Relu, Activation::Softmax];
    let network = Network::<f32>::random(&[784, 256, 128, 10], &activations, &mut rng).unwrap();
    let examples = Array2::from_shape_fn((4, 784), |_| (rng.normal() as f32).max(0.0));
    let mut predictor = Predictor::new(&network);
    // The first call may start the product threads.
    predictor.predict(examples.slice(s![0..1, ..]).t()).unwrap();

    let mut checksum = 0.0;
    let count = allocations_on_this_thread(|| {
        for row in 0..4 {
            let single = examples.slice(s![row..row + 1, ..]);
            checksum += predictor.predict(single.t()).unwrap()[[0, 0]];
        }
    });
    assert_eq!(
        count, 0,
        "Predictor::predict allocated {count} times in 4 calls"
    );
    assert!(checksum.is_finite());
}
