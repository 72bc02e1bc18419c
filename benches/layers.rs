//! Times the forward and backward pass of single `Dense<f32>` layers through the public API.
//!
//! Shapes are the layers of 784-256-128-10 at batch 128 and of 784-1024-1024-10 at batch 512.
//! Each pass runs with `linalg::set_threads(1)` and `linalg::set_threads(2)`.
//!
//! - `forward`: `Dense::forward`, which allocates the output, computes `W A_prev + b` with
//!   `affine_into` and applies the activation (ReLU).
//! - `affine_into`: the affine part alone, into a preallocated `Z`.
//! - `backward`: `backward_into` with `dW`, `db` and `dA_prev` into preallocated arrays.
//!
//! Run: `cargo bench --bench layers` (about three minutes).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use feedforward::{Activation, Dense, Init, Rng, linalg};
use ndarray::{Array1, Array2};

/// `(n_in, n_out, batch)` of each layer measured.
const SHAPES: [(usize, usize, usize); 6] = [
    (784, 256, 128),
    (256, 128, 128),
    (128, 10, 128),
    (784, 1024, 512),
    (1024, 1024, 512),
    (1024, 10, 512),
];

fn random(rows: usize, cols: usize, rng: &mut Rng) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| rng.normal() as f32)
}

fn bench_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("dense");
    let mut rng = Rng::new(1);
    for (inputs, outputs, batch) in SHAPES {
        let layer =
            Dense::<f32>::random(inputs, outputs, Activation::Relu, Init::HeNormal, &mut rng)
                .expect("layer widths are positive");
        let input = random(inputs, batch, &mut rng);
        let output_grad = random(outputs, batch, &mut rng);
        let mut z = Array2::zeros((outputs, batch));
        let mut weights_grad = Array2::zeros((outputs, inputs));
        let mut bias_grad = Array1::zeros(outputs);
        let mut input_grad = Array2::zeros((inputs, batch));
        let shape = format!("{inputs}-{outputs}_m{batch}");
        // One matrix product forward and two backward, of 2 n_in n_out m FLOP each; the bias and
        // activation work is not counted.
        let product_flop = 2 * (inputs * outputs * batch) as u64;

        for threads in [1, 2] {
            linalg::set_threads(threads);

            group.throughput(Throughput::Elements(product_flop));
            group.bench_function(
                BenchmarkId::new(format!("forward_{threads}t"), &shape),
                |b| {
                    b.iter(|| {
                        layer
                            .forward(black_box(input.view()))
                            .expect("shapes agree")
                    })
                },
            );
            group.bench_function(
                BenchmarkId::new(format!("affine_into_{threads}t"), &shape),
                |b| {
                    b.iter(|| {
                        layer
                            .affine_into(black_box(input.view()), &mut z.view_mut())
                            .expect("shapes agree")
                    })
                },
            );

            group.throughput(Throughput::Elements(2 * product_flop));
            group.bench_function(
                BenchmarkId::new(format!("backward_{threads}t"), &shape),
                |b| {
                    b.iter(|| {
                        layer
                            .backward_into(
                                black_box(input.view()),
                                black_box(output_grad.view()),
                                &mut weights_grad.view_mut(),
                                &mut bias_grad.view_mut(),
                                Some(&mut input_grad.view_mut()),
                            )
                            .expect("shapes agree")
                    })
                },
            );
        }
    }
    group.finish();
}

fn main() {
    // The first call sizes rayon's global pool; later calls only lower the count.
    linalg::set_threads(2);
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_layers(&mut criterion);
    criterion.final_summary();
}
