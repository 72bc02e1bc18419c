use ndarray::{Array1, Array2, ShapeBuilder, s};

use super::*;
use crate::error::Error;
use crate::rng::Rng;

const ACTIVATIONS: [Activation; 8] = [
    Activation::Relu,
    Activation::LEAKY_RELU_DEFAULT,
    Activation::Identity,
    Activation::Tanh,
    Activation::Gelu,
    Activation::Sigmoid,
    Activation::ELU_DEFAULT,
    Activation::Softmax,
];

/// Builds a network of widths 19-37-9-...-5 with one layer per activation in `ACTIVATIONS`,
/// and nonzero biases so that the bias add is exercised.
fn network<T: Float>(seed: u64) -> Network<T> {
    let mut rng = Rng::new(seed);
    let mut sizes = vec![19, 37];
    sizes.extend([9, 12, 17, 8, 11, 6]);
    sizes.push(5);
    let mut network = Network::random(&sizes, &ACTIVATIONS, &mut rng).unwrap();
    for layer in network.layers_mut() {
        layer.bias_mut().mapv_inplace(|_| T::of(0.1 * rng.normal()));
    }
    network
}

fn input<T: Float>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| T::of(rng.normal()))
}

/// Runs the forward pass layer by layer through `Dense::forward`, which allocates per layer.
fn layer_chain<T: Float>(network: &Network<T>, x: ArrayView2<'_, T>) -> Array2<T> {
    let mut a = x.to_owned();
    for layer in network.layers() {
        a = layer.forward(a.view()).unwrap();
    }
    a
}

fn assert_close<T: Float>(got: ArrayView2<'_, T>, want: ArrayView2<'_, T>, tolerance: f64) {
    assert_eq!(got.dim(), want.dim());
    for ((index, &p), &q) in got.indexed_iter().zip(want.iter()) {
        let (p, q) = (p.to_f64().unwrap(), q.to_f64().unwrap());
        assert!(
            (p - q).abs() <= tolerance * (1.0 + q.abs()),
            "{index:?}: {p} vs {q}"
        );
    }
}

#[test]
fn batch_matches_layer_chain_exactly() {
    let network = network::<f64>(1);
    let mut buffers = InferenceBuffers::new();
    for batch in [2, 3, 17, 64] {
        let x = input::<f64>(19, batch, batch as u64);
        let output = network.forward_into(x.view(), &mut buffers).unwrap();
        assert_eq!(output, layer_chain(&network, x.view()), "batch {batch}");
    }
}

#[test]
fn examples_as_rows_match_layer_chain() {
    // Examples stored as rows, as data sets store them: `X = rows.t()` takes the transposed
    // orientation, `Z^T = A^T W^T`. In `f32` on AVX2 and FMA the own product sums each
    // element in the same order in both orientations, so the outputs are equal bit for bit.
    let own_product = crate::linalg::sgemm_available();
    let network32 = network::<f32>(7);
    let network64 = network::<f64>(7);
    let mut buffers32 = InferenceBuffers::new();
    let mut buffers64 = InferenceBuffers::new();
    for batch in [2, 7, 64, 301] {
        let rows = input::<f32>(batch, 19, 40 + batch as u64);
        let output = network32.forward_into(rows.t(), &mut buffers32).unwrap();
        assert_eq!(output.dim(), (5, batch));
        assert_eq!(
            output.strides(),
            &[1, 5],
            "batch {batch} took the other orientation"
        );
        let want = layer_chain(&network32, rows.t());
        if own_product {
            assert_eq!(output, want, "batch {batch}");
        } else {
            assert_close(output, want.view(), 1e-5);
        }

        let rows = input::<f64>(batch, 19, 40 + batch as u64);
        let output = network64.forward_into(rows.t(), &mut buffers64).unwrap();
        assert_close(output, layer_chain(&network64, rows.t()).view(), 1e-12);
    }
}

#[test]
fn forward_returns_standard_layout() {
    let network = network::<f32>(8);
    let rows = input::<f32>(40, 19, 50);
    let output = network.forward(rows.t()).unwrap();
    assert!(output.is_standard_layout());
    let mut buffers = InferenceBuffers::new();
    assert_eq!(
        output,
        network.forward_into(rows.t(), &mut buffers).unwrap()
    );
}

#[test]
fn single_column_matches_layer_chain() {
    let network64 = network::<f64>(2);
    let network32 = network::<f32>(2);
    let mut buffers64 = InferenceBuffers::new();
    let mut buffers32 = InferenceBuffers::new();
    for seed in 0..5 {
        let x64 = input::<f64>(19, 1, seed);
        let output = network64.forward_into(x64.view(), &mut buffers64).unwrap();
        assert_close(output, layer_chain(&network64, x64.view()).view(), 1e-12);

        let x32 = input::<f32>(19, 1, seed);
        let output = network32.forward_into(x32.view(), &mut buffers32).unwrap();
        assert_close(output, layer_chain(&network32, x32.view()).view(), 1e-5);
    }
}

#[test]
fn forward_equals_forward_into() {
    let network = network::<f32>(3);
    let mut buffers = InferenceBuffers::new();
    for batch in [1, 4, 33] {
        let x = input::<f32>(19, batch, 10 + batch as u64);
        let reused = network.forward_into(x.view(), &mut buffers).unwrap();
        assert_eq!(reused, network.forward(x.view()).unwrap(), "batch {batch}");
    }
}

#[test]
fn reused_buffers_give_fresh_results() {
    let network = network::<f32>(4);
    let mut buffers = InferenceBuffers::with_capacity(&network, 50);
    for batch in [50, 7, 1, 50, 1, 120] {
        let x = input::<f32>(19, batch, 20 + batch as u64);
        let reused = network
            .forward_into(x.view(), &mut buffers)
            .unwrap()
            .to_owned();
        let fresh = network
            .forward_into(x.view(), &mut InferenceBuffers::new())
            .unwrap()
            .to_owned();
        assert_eq!(reused, fresh, "batch {batch}");
    }
}

#[test]
fn strided_inputs_match_contiguous() {
    let network = network::<f32>(5);
    let mut buffers = InferenceBuffers::new();

    // One example per row, as data sets store them: the transpose has strided columns.
    let rows = input::<f32>(6, 19, 30);
    let single = rows.slice(s![2..3, ..]);
    let output = network.forward_into(single.t(), &mut buffers).unwrap();
    assert_eq!(
        output,
        network.forward(single.t().to_owned().view()).unwrap()
    );

    // Every second column of a wider batch.
    let wide = input::<f32>(19, 10, 31);
    let every_second = wide.slice(s![.., ..;2]);
    let output = network.forward_into(every_second, &mut buffers).unwrap();
    assert_eq!(
        output,
        network.forward(every_second.to_owned().view()).unwrap()
    );
}

#[test]
fn column_major_weights_take_gemm() {
    let mut rng = Rng::new(6);
    let weights = Array2::from_shape_fn((7, 13).f(), |_| rng.normal());
    let bias = Array1::from_shape_fn(7, |_| rng.normal());
    let layer = Dense::new(weights, bias, Activation::Tanh).unwrap();
    let network = Network::new(vec![layer]).unwrap();
    let x = input::<f64>(13, 1, 32);
    let mut buffers = InferenceBuffers::new();
    let output = network.forward_into(x.view(), &mut buffers).unwrap();
    assert_eq!(output, layer_chain(&network, x.view()));
}

#[test]
fn softmax_output_is_stable() {
    let weights = ndarray::array![[1000.0f32, 0.0], [0.0, 1.0], [-1000.0, 0.0]];
    let layer = Dense::new(weights, Array1::zeros(3), Activation::Softmax).unwrap();
    let network = Network::new(vec![layer]).unwrap();
    let mut buffers = InferenceBuffers::new();
    for batch in [1, 3] {
        let x = Array2::from_elem((2, batch), 1.0f32);
        let output = network.forward_into(x.view(), &mut buffers).unwrap();
        for column in output.columns() {
            assert!(column.iter().all(|p| p.is_finite()), "{column}");
            assert_eq!(column[0], 1.0);
            assert_eq!(column.sum(), 1.0);
        }
    }
}

#[test]
fn empty_batch_gives_empty_output() {
    let network = network::<f64>(7);
    let x = Array2::<f64>::zeros((19, 0));
    let mut buffers = InferenceBuffers::new();
    let output = network.forward_into(x.view(), &mut buffers).unwrap();
    assert_eq!(output.dim(), (5, 0));
}

#[test]
fn wrong_input_height_is_error() {
    let network = network::<f32>(8);
    let x = Array2::<f32>::zeros((18, 1));
    let error = network
        .forward_into(x.view(), &mut InferenceBuffers::new())
        .unwrap_err();
    assert!(matches!(error, Error::Shape(_)), "{error}");
}
