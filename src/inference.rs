//! Inference without allocation: [`Network::forward_into`] runs the forward pass in
//! [`InferenceBuffers`] that are reused from call to call.
//!
//! For layers `l = 1..L` and a batch of `m` columns, `A[0] = X` (`n[0] x m`),
//! `A[l] = g[l](W[l] A[l-1] + broadcast(b[l]))` (`n[l] x m`), and the output is `A[L]`. Layer
//! outputs alternate between two row-major buffers of at least `max(n[1..L]) * m` elements
//! each, so the buffers grow to fit the largest batch seen and never shrink. Once they fit,
//! a call allocates nothing beyond what [`linalg::gemm`] allocates inside, which for `f32` on
//! x86-64 with AVX2 and FMA is nothing.
//!
//! A batch of one column with row-major weights (as every [`Dense`] built from a
//! standard-layout array has) takes the matrix-vector product [`linalg::gemv()`]; other
//! batches take [`linalg::gemm`]. [`Predictor`] prepares a copy of the weights, with which a
//! batch of one skips zero inputs and runs faster. When the examples are contiguous in memory, as in
//! `X = rows.t()` for a data set stored one example per row, each layer computes
//! `Z[l]^T = A[l-1]^T W[l]^T` (`m x n[l]`, row-major) instead. The product then reads the
//! examples in place rather than gathering them, and the output is returned as a column-major
//! view. In `f32` with AVX2 and FMA both orientations sum each element in the same order, so
//! they give the same bits. The bias is added and the activation applied in one pass over `Z[l]` for
//! the identity, ReLU and leaky ReLU; the other activations add the bias first and then run
//! [`Activation::forward_inplace`]. Softmax subtracts each column's maximum as always. In the
//! transposed orientation, `linalg::gemm_then` runs that pass on blocks of examples. When the
//! product is split by rows (examples), as a batch much larger than the layer is, each block
//! gets it as soon as the product has summed it, while the block is still in cache. On the Ice
//! Lake server of BENCHMARKS.md, that took 4 to 6% off batch inference of 784-256-128-10 at
//! batch 10,000 on 2 threads, against a pass over the whole output after the product.
//!
//! ```
//! use feedforward::inference::InferenceBuffers;
//! use feedforward::{Activation, Network, Rng};
//! use ndarray::Array2;
//!
//! let network = Network::<f32>::random(&[4, 8, 3], &[Activation::Relu, Activation::Softmax], &mut Rng::new(0))?;
//! let mut buffers = InferenceBuffers::with_capacity(&network, 16);
//! for batch in [16, 1, 5] {
//!     let x = Array2::from_shape_fn((4, batch), |(i, j)| (i + j) as f32 / 10.0);
//!     let output = network.forward_into(x.view(), &mut buffers)?;
//!     assert_eq!(output.dim(), (3, batch));
//! }
//! # Ok::<(), feedforward::Error>(())
//! ```

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis};

use crate::activation::{Activation, leaky_relu, relu};
use crate::error::Result;
use crate::float::Float;
use crate::layer::Dense;
use crate::linalg;
use crate::network::Network;

/// Reusable buffers for [`Network::forward_into`]: two layer outputs used in turn, and room
/// for a copy of a strided single-column input and of a strided bias.
///
/// One set of buffers serves any network and batch size. A call that needs more room grows
/// them, and later calls reuse that room.
#[derive(Clone, Debug, Default)]
pub struct InferenceBuffers<T> {
    outputs: [Vec<T>; 2],
    input: Vec<T>,
    bias: Vec<T>,
}

impl<T: Float> InferenceBuffers<T> {
    /// Creates empty buffers, which the first call to [`Network::forward_into`] sizes.
    pub fn new() -> Self {
        InferenceBuffers {
            outputs: [Vec::new(), Vec::new()],
            input: Vec::new(),
            bias: Vec::new(),
        }
    }

    /// Creates buffers sized for `network` and batches of up to `batch` columns, so that even
    /// the first call allocates nothing.
    pub fn with_capacity(network: &Network<T>, batch: usize) -> Self {
        let mut buffers = InferenceBuffers::new();
        buffers.reserve(network, batch);
        buffers
    }

    /// Grows the buffers to fit `network` at `batch` columns. They never shrink.
    pub fn reserve(&mut self, network: &Network<T>, batch: usize) {
        let widest = network
            .layers()
            .iter()
            .map(Dense::outputs)
            .max()
            .unwrap_or(0);
        for output in &mut self.outputs {
            grow(output, widest * batch);
        }
        grow(&mut self.input, network.inputs());
        grow(&mut self.bias, widest);
    }
}

fn grow<T: Float>(buffer: &mut Vec<T>, n: usize) {
    if buffer.len() < n {
        buffer.resize(n, T::zero());
    }
}

impl<T: Float> Network<T> {
    /// Returns the output `A[L]` (`n[L] x m`) for an input `X` (`n[0] x m`, any strides),
    /// computed in `buffers` and borrowed from them. The output is row-major, except for a
    /// batch whose examples are contiguous in memory (`X = rows.t()`), whose output is
    /// column-major: one example's outputs side by side.
    ///
    /// The result is bit-identical to [`Network::forward`], which calls this method. A batch
    /// of one column uses the matrix-vector kernel, whose summation order differs from
    /// [`linalg::gemm`]'s, so a column's output can differ in the last bits between a batch of
    /// one and a larger batch. For repeated single examples, [`Predictor`] is faster, and in
    /// `f32` with AVX2 and FMA, for layers of up to 1,024 inputs, it keeps the bits of the
    /// larger batch.
    ///
    /// Once `buffers` fit the network and batch size (after the first call at the largest
    /// batch, or from the start with [`InferenceBuffers::with_capacity`]), this method
    /// allocates nothing itself, and a batch of one allocates nothing at all. Larger batches
    /// call the matrix product once per layer ([`linalg::gemm`], or the same product with a
    /// callback per block of examples when the examples are contiguous).
    // NOTE: for other element types, or on CPUs without AVX2 and FMA, `linalg::gemm` takes the
    // `gemm` crate 0.19, which allocates a few times per product, so batches above one still
    // allocate there (tests/inference_alloc.rs counts them).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Shape`] when `X` does not have `n[0]` rows.
    pub fn forward_into<'b>(
        &self,
        x: ArrayView2<'_, T>,
        buffers: &'b mut InferenceBuffers<T>,
    ) -> Result<ArrayView2<'b, T>> {
        self.forward_packed(x, buffers, &[])
    }

    /// Computes what [`Network::forward_into`] does. With examples contiguous in memory,
    /// layer `l` whose `packed[l - 1]` is given reads that copy of `W[l]^T` ([`linalg::pack_b`])
    /// instead of packing the weights in each chunk of its product. `packed` is empty or has
    /// one entry per layer, packed from this network's current weights.
    pub(crate) fn forward_packed<'b>(
        &self,
        x: ArrayView2<'_, T>,
        buffers: &'b mut InferenceBuffers<T>,
        packed: &[Option<linalg::PackedB>],
    ) -> Result<ArrayView2<'b, T>> {
        self.check_input(&x)?;
        let m = x.ncols();
        buffers.reserve(self, m);
        let row_major = self
            .layers()
            .iter()
            .all(|layer| layer.weights().as_slice().is_some());
        let examples_contiguous = m > 1 && x.strides()[0] == 1;
        if m == 1 && row_major {
            self.forward_column(x, buffers)?;
        } else {
            self.forward_batch(x, buffers, examples_contiguous, packed)?;
        }

        let last = self.layers().len() - 1;
        let n = self.outputs();
        let output = &buffers.outputs[last % 2][..n * m];
        if examples_contiguous {
            let transposed =
                ArrayView2::from_shape((m, n), output).expect("buffer sized by reserve");
            Ok(transposed.reversed_axes())
        } else {
            Ok(ArrayView2::from_shape((n, m), output).expect("buffer sized by reserve"))
        }
    }

    /// Runs the layers on a batch with [`linalg::gemm`] (or `linalg::gemm_then` with the
    /// examples as rows). Layer `index` writes `buffers.outputs[index % 2]`.
    ///
    /// With `examples_as_rows` (the examples are contiguous in memory, `X = rows.t()`), each
    /// layer computes `Z[l]^T = A[l-1]^T W[l]^T`, so that every layer output is `m x n[l]`,
    /// row-major, and the examples are read in place. Otherwise each layer output is
    /// `n[l] x m`, row-major. There, `packed` is as for [`Network::forward_packed`].
    fn forward_batch(
        &self,
        x: ArrayView2<'_, T>,
        buffers: &mut InferenceBuffers<T>,
        examples_as_rows: bool,
        packed: &[Option<linalg::PackedB>],
    ) -> Result<()> {
        let m = x.ncols();
        let shape = |n: usize| if examples_as_rows { (m, n) } else { (n, m) };
        let [even, odd] = &mut buffers.outputs;
        for (index, layer) in self.layers().iter().enumerate() {
            let (previous, current) = if index % 2 == 0 {
                (&*odd, &mut *even)
            } else {
                (&*even, &mut *odd)
            };
            let n_in = layer.inputs();
            let n_out = layer.outputs();
            let input = match (index, examples_as_rows) {
                (0, true) => x.reversed_axes(),
                (0, false) => x,
                _ => ArrayView2::from_shape(shape(n_in), &previous[..n_in * m])
                    .expect("buffer sized by reserve"),
            };
            let z = &mut current[..n_out * m];
            let bias = bias_slice(layer, &mut buffers.bias);
            let activation = layer.activation();
            if examples_as_rows {
                // Each block of examples gets its bias and activation as soon as the product
                // has summed it, while it is still in cache.
                let finish = |_: usize, rows: &mut [T]| {
                    add_bias_and_activate_examples(rows, bias, activation);
                };
                let weights = layer.weights();
                let packed = packed.get(index).and_then(Option::as_ref);
                linalg::gemm_then(T::one(), input, weights.t(), T::zero(), z, &finish, packed)?;
            } else {
                let mut z_view = ArrayViewMut2::from_shape(shape(n_out), &mut *z)
                    .expect("buffer sized by reserve");
                linalg::gemm(T::one(), layer.weights(), input, T::zero(), &mut z_view)?;
                add_bias_and_activate(z, bias, m, activation);
            }
        }
        Ok(())
    }

    /// Runs the layers on one column with [`linalg::gemv()`]. Every weight matrix must be
    /// row-major.
    fn forward_column(
        &self,
        x: ArrayView2<'_, T>,
        buffers: &mut InferenceBuffers<T>,
    ) -> Result<()> {
        let x = contiguous_column(x, &mut buffers.input);
        let [even, odd] = &mut buffers.outputs;
        for (index, layer) in self.layers().iter().enumerate() {
            let (previous, current) = if index % 2 == 0 {
                (&*odd, &mut *even)
            } else {
                (&*even, &mut *odd)
            };
            let n_out = layer.outputs();
            let input = if index == 0 {
                x
            } else {
                &previous[..layer.inputs()]
            };
            let weights = layer.weights();
            let weights = weights
                .as_slice()
                .expect("checked row-major by forward_into");
            let z = &mut current[..n_out];
            linalg::gemv(weights, layer.inputs(), input, z)?;
            let bias = bias_slice(layer, &mut buffers.bias);
            add_bias_and_activate(z, bias, 1, layer.activation());
        }
        Ok(())
    }
}

/// Returns the first column of `x` as a slice, copied into `scratch` when it is strided.
fn contiguous_column<'a, T: Float>(x: ArrayView2<'a, T>, scratch: &'a mut [T]) -> &'a [T] {
    contiguous(x.index_axis_move(Axis(1), 0), scratch)
}

/// Returns the layer's bias as a slice, copied into `scratch` when it is strided.
fn bias_slice<'a, T: Float>(layer: &'a Dense<T>, scratch: &'a mut [T]) -> &'a [T] {
    contiguous(layer.bias(), scratch)
}

/// Returns `vector` as a slice, copied into the front of `scratch` when it is strided.
fn contiguous<'a, T: Float>(vector: ArrayView1<'a, T>, scratch: &'a mut [T]) -> &'a [T] {
    match vector.to_slice() {
        Some(contiguous) => contiguous,
        None => {
            let copy = &mut scratch[..vector.len()];
            for (target, &value) in copy.iter_mut().zip(vector.iter()) {
                *target = value;
            }
            copy
        }
    }
}

/// Overwrites `Z` (`n x m`, row-major in `z`, `n = bias.len()`) with `g(Z + broadcast(b))`.
///
/// Each element gets the same operations as in [`Dense::forward`], `g(z + b)` in that order,
/// so the results are equal bit for bit.
fn add_bias_and_activate<T: Float>(z: &mut [T], bias: &[T], m: usize, activation: Activation) {
    match activation {
        Activation::Identity => map_rows_parallel(z, bias, m, |v| v),
        Activation::Relu => map_rows_parallel(z, bias, m, relu),
        Activation::LeakyRelu { slope } => {
            let slope = T::of(slope);
            map_rows_parallel(z, bias, m, |v| leaky_relu(v, slope));
        }
        other => {
            map_rows(z, bias, m, |v| v);
            let view = ArrayViewMut2::from_shape((bias.len(), m), z)
                .expect("z has bias.len() rows of m values");
            other.forward_inplace(view);
        }
    }
}

/// Overwrites rows of `Z^T` (examples `j` as rows of `n = bias.len()` values, row-major in
/// `z`) with `g(Z + broadcast(b))^T`, with the same operations on each element as
/// [`add_bias_and_activate`]. Softmax treats each row, one example, on its own, so any block
/// of whole rows gives the same values as the whole matrix.
fn add_bias_and_activate_examples<T: Float>(z: &mut [T], bias: &[T], activation: Activation) {
    match activation {
        Activation::Identity => map_examples(z, bias, |v| v),
        Activation::Relu => map_examples(z, bias, relu),
        Activation::LeakyRelu { slope } => {
            let slope = T::of(slope);
            map_examples(z, bias, |v| leaky_relu(v, slope));
        }
        other => {
            map_examples(z, bias, |v| v);
            let n = bias.len().max(1);
            let view = ArrayViewMut2::from_shape((z.len() / n, bias.len()), z)
                .expect("z has whole rows of bias.len() values");
            other.forward_inplace(view.reversed_axes());
        }
    }
}

/// Sets `z[j, i] = f(z[j, i] + b[i])` over the rows of a row-major matrix with rows of
/// `n = bias.len()` values.
fn map_examples<T: Float>(z: &mut [T], bias: &[T], f: impl Fn(T) -> T) {
    for row in z.chunks_exact_mut(bias.len().max(1)) {
        for (value, &b) in row.iter_mut().zip(bias) {
            *value = f(*value + b);
        }
    }
}

/// Runs [`map_rows`], splitting large matrices by rows across the product threads. Each row is
/// independent, so the split does not change the result.
fn map_rows_parallel<T: Float>(z: &mut [T], bias: &[T], m: usize, f: impl Fn(T) -> T + Sync) {
    let m = m.max(1);
    linalg::for_each_row_block(z, m, ROWS_PARALLEL_MIN, &|first, block| {
        map_rows(block, &bias[first..first + block.len() / m], m, &f);
    });
}

/// Values from which adding the bias and activating is split across threads.
const ROWS_PARALLEL_MIN: usize = 1 << 16;

/// Sets `z[i, j] = f(z[i, j] + b[i])` over the rows of a row-major `n x m` matrix.
#[inline(always)]
fn map_rows<T: Float>(z: &mut [T], bias: &[T], m: usize, f: impl Fn(T) -> T) {
    if m == 1 {
        // One column: a single pass over `z` and `b` together, which vectorizes.
        for (value, &b) in z.iter_mut().zip(bias) {
            *value = f(*value + b);
        }
        return;
    }
    for (row, &b) in z.chunks_exact_mut(m.max(1)).zip(bias) {
        for value in row {
            *value = f(*value + b);
        }
    }
}

mod predictor;

pub use predictor::Predictor;

#[cfg(test)]
mod tests;
