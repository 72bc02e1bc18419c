//! Compares f32 matrix-multiply backends on this crate's layer shapes.
//!
//! Each dense layer with `n_in` inputs and `n_out` units, on a batch of `m` columns, computes
//! three products, all with row-major arrays and transposes passed as strided views:
//!
//! - forward: `Z = W A_prev` (`n_out x n_in` times `n_in x m`)
//! - weight gradient: `dW = dZ A_prev^T` (`n_out x m` times a transposed `n_in x m`)
//! - input gradient: `dA_prev = W^T dZ` (a transposed `n_out x n_in` times `n_out x m`)
//!
//! Backends, each on one and on two threads:
//!
//! - `matrixmultiply`: ndarray's `general_mat_mul`, which calls `matrixmultiply::sgemm`. Its
//!   thread count is read once per process from `MATMUL_NUM_THREADS` (needs the crate's
//!   `threading` feature, a dev-dependency here), so one process measures only one count. This
//!   binary sets the variable to 1 when it is unset; run it again with `MATMUL_NUM_THREADS=2`
//!   and the filter `matrixmultiply` for the two-thread figures. matrixmultiply also decides by
//!   itself whether a product is large enough to split.
//! - `linalg`: `feedforward::linalg::gemm` after `linalg::set_threads(n)`: for `f32` on a CPU
//!   with AVX2 and FMA, the crate's own product (`src/linalg/sgemm.rs`). It splits a product
//!   only above its own threshold, so its two-thread figures show the policy as shipped.
//! - `gemm`: the `gemm` crate called as `linalg::gemm` calls it on other CPUs, with
//!   `Parallelism::Rayon(2)` for every product on two threads, so no threshold applies.
//! - `faer`: `faer::linalg::matmul::matmul` on `MatRef`/`MatMut` built from the ndarray
//!   pointers and strides, with `Par::Seq` or `Par::rayon(2)`. faer itself runs products of
//!   fewer than 16384 f32 multiply-adds on one thread (faer 0.24.4).
//!
//! Groups:
//!
//! - `products`: every product of every layer shape. Throughput is `2 M N K` floating-point
//!   operations, so criterion's `Gelem/s` reads as GFLOP/s.
//! - `step`: all products of one training step of a network (the forward product of every
//!   layer, then `dW` and `dA_prev` of every layer, the first included) under a thread policy:
//!   `1t`, `2t`, or `split<T>`, which runs products of fewer than `2^T` multiply-adds on one
//!   thread and the rest on two.
//! - `threshold`: square products between 2^18 and 2^22 multiply-adds on one and two threads,
//!   to place the parallel threshold.
//!
//! Run both invocations with `benches/run_gemm_backends.sh`, or by hand:
//!
//! ```text
//! MATMUL_NUM_THREADS=1 cargo bench --bench gemm_backends
//! MATMUL_NUM_THREADS=2 cargo bench --bench gemm_backends -- matrixmultiply
//! ```
//!
//! `benches/gemm_report.py` turns the criterion results into the tables of BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use feedforward::Rng;
use feedforward::linalg;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// One dense layer on one batch.
#[derive(Clone, Copy)]
struct LayerShape {
    inputs: usize,
    outputs: usize,
    batch: usize,
}

impl LayerShape {
    const fn new(inputs: usize, outputs: usize, batch: usize) -> Self {
        LayerShape {
            inputs,
            outputs,
            batch,
        }
    }

    /// Multiply-adds of each of the layer's three products.
    fn multiply_adds(self) -> usize {
        self.inputs * self.outputs * self.batch
    }

    fn label(self) -> String {
        format!("{}-{}_m{}", self.inputs, self.outputs, self.batch)
    }
}

/// The layer shapes of the two networks below; every product of a network step is among them.
const LAYER_SHAPES: [LayerShape; 6] = [
    LayerShape::new(784, 256, 128),
    LayerShape::new(256, 128, 128),
    LayerShape::new(128, 10, 128),
    LayerShape::new(784, 1024, 512),
    LayerShape::new(1024, 1024, 512),
    LayerShape::new(1024, 10, 512),
];

/// Networks for the whole-step group: layer widths and batch size.
const NETWORKS: [(&[usize], usize); 2] =
    [(&[784, 256, 128, 10], 128), (&[784, 1024, 1024, 10], 512)];

/// Thresholds, as powers of two of the multiply-add count, for the `split` step policies.
/// Between 2^18 and 2^22 no product of these networks changes side, so 2^20 stands for that
/// range; 2^23 also moves 256-128 at m=128 and 1024-10 at m=512 to one thread.
const SPLIT_EXPONENTS: [u32; 2] = [20, 23];

/// Sides of the square products in the `threshold` group: about 2^18 to 2^22 multiply-adds.
const SQUARE_SIDES: [usize; 5] = [64, 80, 101, 128, 161];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Product {
    Forward,
    WeightsGrad,
    InputGrad,
}

impl Product {
    const ALL: [Product; 3] = [Product::Forward, Product::WeightsGrad, Product::InputGrad];

    fn label(self) -> &'static str {
        match self {
            Product::Forward => "forward",
            Product::WeightsGrad => "dW",
            Product::InputGrad => "dA",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Matrixmultiply,
    Linalg,
    Gemm,
    Faer,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Matrixmultiply => "matrixmultiply",
            Backend::Linalg => "linalg",
            Backend::Gemm => "gemm",
            Backend::Faer => "faer",
        }
    }
}

/// Computes `C = A B` with `backend` on `threads` threads (1 or 2).
///
/// For [`Backend::Matrixmultiply`] the thread count comes from `MATMUL_NUM_THREADS` and
/// `threads` is ignored. For [`Backend::Linalg`] the caller sets it with `linalg::set_threads`,
/// because that call also touches rayon's global pool.
fn multiply(
    backend: Backend,
    threads: usize,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
) {
    match backend {
        Backend::Matrixmultiply => general_mat_mul(1.0, &a, &b, 0.0, c),
        Backend::Linalg => linalg::gemm(1.0, a, b, 0.0, c).expect("operand shapes agree"),
        Backend::Gemm => gemm_crate(a, b, c, threads),
        Backend::Faer => faer_matmul(a, b, c, threads),
    }
}

/// Calls the `gemm` crate with the arguments `linalg::gemm` passes to it, without its threshold.
fn gemm_crate(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
    threads: usize,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "operand shapes disagree");
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let c_strides = c.strides().to_vec();
    // SAFETY: the views are valid for their shapes (checked above) and strides, `c` is borrowed
    // mutably so it aliases neither operand, and with `read_dst = false` the crate only writes
    // the m x n elements of `c`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_strides[1],
            c_strides[0],
            false,
            a.as_ptr(),
            a.strides()[1],
            a.strides()[0],
            b.as_ptr(),
            b.strides()[1],
            b.strides()[0],
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Calls faer's matmul on the ndarray buffers, without copying them.
fn faer_matmul(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    c: &mut ArrayViewMut2<'_, f32>,
    threads: usize,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "operand shapes disagree");
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let (a_strides, b_strides, c_strides) = (a.strides(), b.strides(), c.strides().to_vec());
    // SAFETY: each pointer, shape and pair of element strides comes from a live ndarray view,
    // so every addressed element is in bounds and initialized. `c` is borrowed mutably for the
    // whole call, so nothing else reads or writes it, and it aliases neither operand.
    let (lhs, rhs, dst) = unsafe {
        (
            MatRef::<f32>::from_raw_parts(a.as_ptr(), m, k, a_strides[0], a_strides[1]),
            MatRef::<f32>::from_raw_parts(b.as_ptr(), k, n, b_strides[0], b_strides[1]),
            MatMut::<f32>::from_raw_parts_mut(c.as_mut_ptr(), m, n, c_strides[0], c_strides[1]),
        )
    };
    matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, par);
}

/// Returns an array of normal values scaled by `scale`.
fn random(rows: usize, cols: usize, scale: f32, rng: &mut Rng) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| rng.normal() as f32 * scale)
}

/// The operands and outputs of one layer's three products.
struct LayerBuffers {
    weights: Array2<f32>,
    input: Array2<f32>,
    output_grad: Array2<f32>,
    output: Array2<f32>,
    weights_grad: Array2<f32>,
    input_grad: Array2<f32>,
}

impl LayerBuffers {
    fn new(shape: LayerShape, rng: &mut Rng) -> Self {
        let LayerShape {
            inputs,
            outputs,
            batch,
        } = shape;
        // Weights scaled as He initialization does, so that values stay near 1.
        let scale = (2.0 / inputs as f32).sqrt();
        LayerBuffers {
            weights: random(outputs, inputs, scale, rng),
            input: random(inputs, batch, 1.0, rng),
            output_grad: random(outputs, batch, 1.0, rng),
            output: Array2::zeros((outputs, batch)),
            weights_grad: Array2::zeros((outputs, inputs)),
            input_grad: Array2::zeros((inputs, batch)),
        }
    }

    /// Returns `(A, B, C)` of `product`, with the transposes as views.
    fn operands(
        &mut self,
        product: Product,
    ) -> (
        ArrayView2<'_, f32>,
        ArrayView2<'_, f32>,
        ArrayViewMut2<'_, f32>,
    ) {
        match product {
            Product::Forward => (
                self.weights.view(),
                self.input.view(),
                self.output.view_mut(),
            ),
            Product::WeightsGrad => (
                self.output_grad.view(),
                self.input.t(),
                self.weights_grad.view_mut(),
            ),
            Product::InputGrad => (
                self.weights.t(),
                self.output_grad.view(),
                self.input_grad.view_mut(),
            ),
        }
    }
}

/// The variants measured in the `products` group, as (backend, threads).
fn product_variants(matmul_threads: usize) -> [(Backend, usize); 5] {
    [
        (Backend::Matrixmultiply, matmul_threads),
        (Backend::Linalg, 1),
        (Backend::Gemm, 2),
        (Backend::Faer, 1),
        (Backend::Faer, 2),
    ]
}

/// Panics unless every backend computes every product like matrixmultiply does.
///
/// A wrong stride in the raw-pointer calls would otherwise go unnoticed as a fast wrong result.
fn check_backends_agree(matmul_threads: usize) {
    let mut rng = Rng::new(7);
    for shape in LAYER_SHAPES {
        let mut buffers = LayerBuffers::new(shape, &mut rng);
        for product in Product::ALL {
            let (a, b, mut c) = buffers.operands(product);
            general_mat_mul(1.0, &a, &b, 0.0, &mut c);
            let expected = c.to_owned();
            let scale = expected.iter().fold(0.0f32, |max, x| max.max(x.abs()));
            for (backend, threads) in product_variants(matmul_threads) {
                c.fill(f32::NAN);
                linalg::set_threads(threads);
                multiply(backend, threads, a, b, &mut c);
                let error = c
                    .iter()
                    .zip(expected.iter())
                    .fold(0.0f32, |max, (x, y)| max.max((x - y).abs()));
                assert!(
                    error <= 1e-4 * scale,
                    "{} on {} threads differs from matrixmultiply by {error} on {} {}",
                    backend.label(),
                    threads,
                    shape.label(),
                    product.label()
                );
            }
        }
    }
}

fn bench_products(c: &mut Criterion, matmul_threads: usize) {
    let mut group = c.benchmark_group("products");
    // Every sample runs the same number of iterations, so that products of tens of
    // milliseconds fit the measurement time.
    group.sampling_mode(SamplingMode::Flat);
    let mut rng = Rng::new(1);
    for shape in LAYER_SHAPES {
        let mut buffers = LayerBuffers::new(shape, &mut rng);
        group.throughput(Throughput::Elements(2 * shape.multiply_adds() as u64));
        for product in Product::ALL {
            let parameter = format!("{}_{}", shape.label(), product.label());
            for (backend, threads) in product_variants(matmul_threads) {
                linalg::set_threads(threads);
                let id = BenchmarkId::new(format!("{}_{threads}t", backend.label()), &parameter);
                let (a, b, mut out) = buffers.operands(product);
                group.bench_function(id, |bencher| {
                    bencher
                        .iter(|| multiply(backend, threads, black_box(a), black_box(b), &mut out))
                });
            }
        }
    }
    group.finish();
}

/// How a network step assigns threads to its products.
#[derive(Clone, Copy)]
enum ThreadPolicy {
    /// Every product on this many threads.
    Fixed(usize),
    /// Products of fewer than `2^exponent` multiply-adds on one thread, the rest on two.
    Split { exponent: u32 },
}

impl ThreadPolicy {
    fn threads(self, multiply_adds: usize) -> usize {
        match self {
            ThreadPolicy::Fixed(threads) => threads,
            ThreadPolicy::Split { exponent } if multiply_adds < 1 << exponent => 1,
            ThreadPolicy::Split { .. } => 2,
        }
    }

    fn label(self) -> String {
        match self {
            ThreadPolicy::Fixed(threads) => format!("{threads}t"),
            ThreadPolicy::Split { exponent } => format!("split{exponent}"),
        }
    }
}

/// The buffers of one network step; `activations[l]` is the input of layer `l`.
struct StepBuffers {
    batch: usize,
    weights: Vec<Array2<f32>>,
    weights_grads: Vec<Array2<f32>>,
    activations: Vec<Array2<f32>>,
    activation_grads: Vec<Array2<f32>>,
}

impl StepBuffers {
    fn new(widths: &[usize], batch: usize, rng: &mut Rng) -> Self {
        let layers = widths.windows(2);
        StepBuffers {
            batch,
            weights: layers
                .clone()
                .map(|w| random(w[1], w[0], (2.0 / w[0] as f32).sqrt(), rng))
                .collect(),
            weights_grads: layers.map(|w| Array2::zeros((w[1], w[0]))).collect(),
            activations: widths.iter().map(|&n| random(n, batch, 1.0, rng)).collect(),
            activation_grads: widths.iter().map(|&n| random(n, batch, 1.0, rng)).collect(),
        }
    }

    /// Runs the forward products of all layers, then `dW` and `dA_prev` of all layers from the
    /// last to the first. Each product's output is the next one's operand, as in training.
    fn run(&mut self, backend: Backend, policy: ThreadPolicy) {
        let layers = self.weights.len();
        for l in 0..layers {
            let (before, after) = self.activations.split_at_mut(l + 1);
            let threads = policy.threads(self.weights[l].len() * self.batch);
            multiply(
                backend,
                threads,
                self.weights[l].view(),
                before[l].view(),
                &mut after[0].view_mut(),
            );
        }
        for l in (0..layers).rev() {
            let threads = policy.threads(self.weights[l].len() * self.batch);
            let (before, after) = self.activation_grads.split_at_mut(l + 1);
            multiply(
                backend,
                threads,
                after[0].view(),
                self.activations[l].t(),
                &mut self.weights_grads[l].view_mut(),
            );
            multiply(
                backend,
                threads,
                self.weights[l].t(),
                after[0].view(),
                &mut before[l].view_mut(),
            );
        }
    }
}

/// The (backend, policy) pairs measured in the `step` group.
fn step_variants(matmul_threads: usize) -> Vec<(Backend, ThreadPolicy)> {
    let mut variants = vec![
        (Backend::Matrixmultiply, ThreadPolicy::Fixed(matmul_threads)),
        // linalg::gemm on one thread, and on two with its own threshold deciding per product.
        (Backend::Linalg, ThreadPolicy::Fixed(1)),
        (Backend::Linalg, ThreadPolicy::Fixed(2)),
    ];
    for backend in [Backend::Gemm, Backend::Faer] {
        variants.push((backend, ThreadPolicy::Fixed(1)));
        variants.push((backend, ThreadPolicy::Fixed(2)));
        for exponent in SPLIT_EXPONENTS {
            variants.push((backend, ThreadPolicy::Split { exponent }));
        }
    }
    variants
}

fn bench_steps(c: &mut Criterion, matmul_threads: usize) {
    let mut group = c.benchmark_group("step");
    group.sampling_mode(SamplingMode::Flat);
    let mut rng = Rng::new(2);
    for (widths, batch) in NETWORKS {
        let multiply_adds: usize = widths.windows(2).map(|w| w[0] * w[1] * batch).sum();
        group.throughput(Throughput::Elements(3 * 2 * multiply_adds as u64));
        let network = widths.iter().map(usize::to_string).collect::<Vec<_>>();
        let parameter = format!("{}_m{batch}", network.join("-"));
        let mut buffers = StepBuffers::new(widths, batch, &mut rng);
        for (backend, policy) in step_variants(matmul_threads) {
            if let (Backend::Linalg, ThreadPolicy::Fixed(threads)) = (backend, policy) {
                linalg::set_threads(threads);
            }
            let id = BenchmarkId::new(
                format!("{}_{}", backend.label(), policy.label()),
                &parameter,
            );
            group.bench_function(id, |bencher| bencher.iter(|| buffers.run(backend, policy)));
        }
    }
    group.finish();
}

fn bench_threshold(c: &mut Criterion) {
    let mut group = c.benchmark_group("threshold");
    group.sampling_mode(SamplingMode::Flat);
    let mut rng = Rng::new(3);
    for side in SQUARE_SIDES {
        let a = random(side, side, (1.0 / side as f32).sqrt(), &mut rng);
        let b = random(side, side, 1.0, &mut rng);
        let mut out = Array2::zeros((side, side));
        group.throughput(Throughput::Elements(2 * (side * side * side) as u64));
        for backend in [Backend::Gemm, Backend::Faer] {
            for threads in [1, 2] {
                let id = BenchmarkId::new(
                    format!("{}_{threads}t", backend.label()),
                    format!("{side}x{side}x{side}"),
                );
                group.bench_function(id, |bencher| {
                    bencher.iter(|| {
                        multiply(
                            backend,
                            threads,
                            black_box(a.view()),
                            black_box(b.view()),
                            &mut out.view_mut(),
                        )
                    })
                });
            }
        }
    }
    group.finish();
}

/// Returns the thread count matrixmultiply will use, after setting `MATMUL_NUM_THREADS` to 1
/// when it is unset.
fn matrixmultiply_threads() -> usize {
    match std::env::var("MATMUL_NUM_THREADS") {
        // matrixmultiply 0.3 clamps the count to 1..=4.
        Ok(value) => value
            .parse::<usize>()
            .unwrap_or_else(|_| panic!("MATMUL_NUM_THREADS={value:?} is not a thread count"))
            .clamp(1, 4),
        Err(_) => {
            // SAFETY: called first in `main`, before this process starts any other thread.
            unsafe { std::env::set_var("MATMUL_NUM_THREADS", "1") };
            1
        }
    }
}

fn main() {
    let matmul_threads = matrixmultiply_threads();
    // The first call sizes rayon's global pool, which the gemm crate and faer both use.
    linalg::set_threads(2);
    check_backends_agree(matmul_threads);

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    bench_products(&mut criterion, matmul_threads);
    bench_steps(&mut criterion, matmul_threads);
    bench_threshold(&mut criterion);
    criterion.final_summary();
}
