//! [`Predictor`]: a network prepared for repeated inference, with a batch-of-one path that skips
//! zero inputs. The type's documentation gives the method, the numerics and an example.

use std::fmt;

use ndarray::ArrayView2;

use super::{InferenceBuffers, add_bias_and_activate, bias_slice, contiguous_column};
use crate::error::Result;
use crate::float::Float;
use crate::linalg::columns::{ColumnPanels, all_columns, nonzero_columns};
use crate::linalg::{self, PackedB, multiply_columns};
use crate::network::Network;

/// A network prepared for inference: a column-ordered copy of its weights and reusable buffers.
///
/// A batch of one column reads every weight once, so its latency is the time to stream the
/// weights from the cache. The predictor keeps a copy of each `W[l]` (`n[l] x n[l-1]`) stored
/// column by column, and computes `Z[l] = Σ_{k : A[l-1][k] ≠ 0} A[l-1][k] W[l][:, k] + b[l]`.
/// Columns of `W[l]` whose input is zero are never read. Image backgrounds, one-hot features
/// and the zeros of ReLU outputs all gain from this, while inputs with few zeros (standardized
/// features, for instance) cost the same as a dense product.
///
/// Batches of more than one column take the path of [`Network::forward_into`]. In `f32` on
/// x86-64 with AVX2 and FMA, the predictor also keeps each `W[l]^T` packed as the matrix
/// product reads it. A batch whose examples are contiguous in memory (`X = rows.t()`) then
/// does not pack the weights in each chunk of each product. The product sums in the same
/// order, so the bits are those of [`Network::forward_into`]. On the Ice Lake server of
/// BENCHMARKS.md, at batch 10,000 on two threads, that took 1.5 to 3.5% off the time of
/// 784-1024-1024-10 and 1.5 to 3% off that of 784-256-128-10. On one thread it changed
/// neither, because the product packed the weights only once anyway.
///
/// The predictor borrows the network, so the network cannot change while the predictor lives,
/// and the copy cannot go stale. The copy takes as much memory as the weights, plus up to 7
/// rows of zeros per layer, because each layer's outputs are stored in panels of 64 and the
/// last panel is rounded up to a multiple of 8. The packed copy for batches takes as much
/// again, plus up to 15 columns of zeros per layer. It is made by the first batch of more than
/// one column with contiguous examples, or at once by [`Predictor::with_capacity`] for a
/// `batch` above one.
///
/// Numerics, in `f32` on x86-64 with AVX2 and FMA: each output is summed in the same order and
/// with the same rounding as the matrix product of a larger batch, for layers of up to 1,024
/// inputs. A batch of one then gives the same bits as that column in any batch. The one
/// exception is the sign of an exact zero: a skipped term can turn `-0.0` into `+0.0`. A layer
/// with a non-finite weight reads every column, because `0 * inf` is NaN and skipping it would
/// change the result. In other types and on other CPUs the order is the same but the kernel's
/// rounding may differ from the product's.
///
/// ```
/// use feedforward::inference::Predictor;
/// use feedforward::{Activation, Network, Rng};
/// use ndarray::Array2;
///
/// let network = Network::<f32>::random(&[4, 8, 3], &[Activation::Relu, Activation::Softmax], &mut Rng::new(0))?;
/// let mut predictor = Predictor::new(&network);
/// let x = Array2::from_shape_vec((4, 1), vec![0.0, 0.5, 0.0, 1.0]).unwrap();
/// let y = predictor.predict(x.view())?;
/// assert_eq!(y.dim(), (3, 1));
/// assert!((y.sum() - 1.0).abs() < 1e-6);
/// # Ok::<(), feedforward::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Predictor<'n, T> {
    network: &'n Network<T>,
    /// `W[l]` of each layer, stored for the batch-of-one path.
    panels: Vec<ColumnPanels<T>>,
    buffers: InferenceBuffers<T>,
    /// Indices of the inputs a layer sums, rebuilt for each layer.
    columns: Vec<u32>,
    /// `W[l]^T` of each layer packed for the matrix product (`None` where the product does not
    /// take a packed copy), made for the first batch that reads it.
    packed: Option<Vec<Option<PackedB>>>,
}

impl<'n, T: Float> Predictor<'n, T> {
    /// Prepares `network` for inference, with buffers sized for a batch of one.
    pub fn new(network: &'n Network<T>) -> Self {
        Predictor::with_capacity(network, 1)
    }

    /// Prepares `network` for inference, with buffers sized for batches of up to `batch`
    /// columns, and with the packed weights when `batch` is above one. Calls up to that size
    /// then allocate nothing themselves. The first call may still start the product threads,
    /// and batches above one allocate wherever [`Network::forward_into`] does.
    pub fn with_capacity(network: &'n Network<T>, batch: usize) -> Self {
        let panels = network
            .layers()
            .iter()
            .map(|layer| ColumnPanels::new(layer.weights()))
            .collect();
        let widest_input = network
            .layers()
            .iter()
            .map(|layer| layer.inputs())
            .max()
            .unwrap_or(0);
        let mut predictor = Predictor {
            network,
            panels,
            buffers: InferenceBuffers::with_capacity(network, batch.max(1)),
            columns: vec![0; widest_input],
            packed: None,
        };
        if batch > 1 {
            predictor.pack_weights();
        }
        predictor
    }

    /// Packs each layer's `W[l]^T` for batches, once.
    fn pack_weights(&mut self) {
        self.packed.get_or_insert_with(|| {
            self.network
                .layers()
                .iter()
                .map(|layer| linalg::pack_b(layer.weights().t()))
                .collect()
        });
    }

    /// Returns the network this predictor runs.
    pub fn network(&self) -> &'n Network<T> {
        self.network
    }

    /// Returns whether every layer skips zero inputs in a batch of one. A layer with a
    /// non-finite weight reads every column, while the other layers still skip zeros.
    pub fn skips_zeros(&self) -> bool {
        self.panels.iter().all(ColumnPanels::all_finite)
    }

    /// Returns the output `A[L]` (`n[L] x m`) for an input `X` (`n[0] x m`, any strides),
    /// borrowed from the predictor's buffers.
    ///
    /// A batch of one takes the column path described under [`Predictor`]. Other
    /// batches call [`Network::forward_into`], whose output is column-major when the examples
    /// are contiguous in memory (`X = rows.t()`). Once the buffers fit the batch, a call
    /// allocates nothing beyond what [`Network::forward_into`] does.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Shape`] when `X` does not have `n[0]` rows.
    pub fn predict(&mut self, x: ArrayView2<'_, T>) -> Result<ArrayView2<'_, T>> {
        if x.ncols() != 1 {
            // Only a batch with contiguous examples reads the packed copy.
            if x.ncols() > 1 && x.strides()[0] == 1 {
                self.pack_weights();
            }
            let packed = self.packed.as_deref().unwrap_or_default();
            return self.network.forward_packed(x, &mut self.buffers, packed);
        }
        self.network.check_input(&x)?;
        self.buffers.reserve(self.network, 1);

        let InferenceBuffers {
            outputs: [even, odd],
            input,
            bias,
        } = &mut self.buffers;
        let x = contiguous_column(x, input);
        for (index, (layer, panels)) in self.network.layers().iter().zip(&self.panels).enumerate() {
            let (previous, current) = if index % 2 == 0 {
                (&*odd, &mut *even)
            } else {
                (&*even, &mut *odd)
            };
            let input = if index == 0 {
                x
            } else {
                &previous[..layer.inputs()]
            };
            let count = if panels.all_finite() {
                nonzero_columns(input, &mut self.columns)
            } else {
                all_columns(input, &mut self.columns)
            };
            let z = &mut current[..layer.outputs()];
            multiply_columns(panels, input, &self.columns[..count], z);
            add_bias_and_activate(z, bias_slice(layer, bias), 1, layer.activation());
        }

        let last = self.network.layers().len() - 1;
        let n = self.network.outputs();
        let output = &self.buffers.outputs[last % 2][..n];
        Ok(ArrayView2::from_shape((n, 1), output).expect("buffer sized by reserve"))
    }
}

/// One line: the layer widths and which layers skip zero inputs in a batch of one, as in
/// `Predictor(784-256-128-10, skips zeros)` or `Predictor(784-256-10, skips zeros in 1 of 2
/// layers)`.
impl<T: Float> fmt::Display for Predictor<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut widths = vec![self.network.inputs().to_string()];
        widths.extend(
            self.network
                .layers()
                .iter()
                .map(|l| l.outputs().to_string()),
        );
        let layers = self.panels.len();
        let skipping = self.panels.iter().filter(|p| p.all_finite()).count();
        let zeros = if skipping == layers {
            "skips zeros".to_string()
        } else if skipping == 0 {
            "reads every column".to_string()
        } else {
            format!("skips zeros in {skipping} of {layers} layers")
        };
        write!(f, "Predictor({}, {zeros})", widths.join("-"))
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ShapeBuilder};

    use super::*;
    use crate::activation::Activation;
    use crate::error::Error;
    use crate::rng::Rng;

    /// Builds a 784-256-128-10 network like the benchmark's, with nonzero biases.
    fn network(seed: u64) -> Network<f32> {
        let mut rng = Rng::new(seed);
        let activations = [Activation::Relu, Activation::Relu, Activation::Softmax];
        let mut network = Network::random(&[784, 256, 128, 10], &activations, &mut rng).unwrap();
        for layer in network.layers_mut() {
            layer.bias_mut().mapv_inplace(|_| 0.1 * rng.normal() as f32);
        }
        network
    }

    /// Draws inputs with about half their values zero, like the pixels of an image.
    fn sparse_input(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = Rng::new(seed);
        Array2::from_shape_fn((rows, cols), |_| {
            let value = rng.normal() as f32;
            if value < 0.0 { 0.0 } else { value }
        })
    }

    /// Runs `x` through [`Network::forward_into`] as one batch.
    fn forward_batch<T: Float>(network: &Network<T>, x: ArrayView2<'_, T>) -> Array2<T> {
        let mut buffers = InferenceBuffers::new();
        network.forward_into(x, &mut buffers).unwrap().to_owned()
    }

    #[test]
    fn batch_of_one_matches_batch_bits() {
        let network = network(3);
        let x = sparse_input(784, 12, 4);
        let batch = forward_batch(&network, x.view());
        let mut predictor = Predictor::new(&network);
        assert!(predictor.skips_zeros());

        for j in 0..x.ncols() {
            let single = predictor
                .predict(x.slice(ndarray::s![.., j..j + 1]))
                .unwrap();
            for i in 0..network.outputs() {
                let (got, want) = (single[[i, 0]], batch[[i, j]]);
                if crate::linalg::sgemm_available() {
                    assert_eq!(got.to_bits(), want.to_bits(), "output {i} of column {j}");
                } else {
                    assert!((got - want).abs() <= 1e-5, "output {i} of column {j}");
                }
            }
        }
    }

    #[test]
    fn strided_column_matches_contiguous() {
        let network = network(7);
        let x = sparse_input(784, 1, 8);
        let mut strided = Array2::<f32>::zeros((784, 3).f());
        strided.column_mut(1).assign(&x.column(0));
        let mut predictor = Predictor::new(&network);
        let want = predictor.predict(x.view()).unwrap().to_owned();
        let got = predictor
            .predict(strided.slice(ndarray::s![.., 1..2]))
            .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn infinite_weight_meets_zero_input_as_nan() {
        let mut network =
            Network::<f32>::random(&[784, 10], &[Activation::Identity], &mut Rng::new(9)).unwrap();
        network.layers_mut()[0].weights_mut()[[0, 5]] = f32::INFINITY;
        let mut x = sparse_input(784, 1, 10);
        x[[5, 0]] = 0.0;
        let mut predictor = Predictor::new(&network);
        assert!(!predictor.skips_zeros());
        let single = predictor.predict(x.view()).unwrap().to_owned();
        let dense = forward_batch(&network, x.view());
        assert!(dense[[0, 0]].is_nan(), "0 * inf in the dense product");
        assert!(
            single[[0, 0]].is_nan(),
            "0 * inf in the column path: {single:?}"
        );
        for i in 1..10 {
            let (got, want) = (single[[i, 0]], dense[[i, 0]]);
            assert!(
                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "output {i}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn larger_batch_matches_forward_into() {
        let network = network(11);
        let x = sparse_input(784, 5, 12);
        let mut predictor = Predictor::with_capacity(&network, 5);
        let got = predictor.predict(x.view()).unwrap().to_owned();
        assert_eq!(got, forward_batch(&network, x.view()));
    }

    #[test]
    fn packed_weights_keep_batch_bits() {
        // Examples as rows, so that the batch path reads the packed weights. With 1,200
        // examples, every product is tall and split by rows on two threads.
        let network = network(17);
        let rows = sparse_input(1200, 784, 18);
        let want = forward_batch(&network, rows.t());
        let mut lazy = Predictor::new(&network);
        assert!(
            lazy.packed.is_none(),
            "a predictor for single examples packs nothing"
        );
        let eager = Predictor::with_capacity(&network, 1200);
        let available = crate::linalg::sgemm_available();
        let blocks = || crate::linalg::PACKED_B_BLOCKS.with(std::cell::Cell::get);
        for mut predictor in [lazy.clone(), eager] {
            let before = blocks();
            let got = predictor.predict(rows.t()).unwrap().to_owned();
            assert_eq!(got, want);
            assert_eq!(
                blocks() > before,
                available,
                "the products read the packed copy"
            );
            let packed = predictor.packed.as_ref().expect("packed by a batch");
            assert!(packed.iter().all(|layer| layer.is_some() == available));
        }
        // A batch whose examples are the columns of a row-major array does not read the copy,
        // so the lazy predictor still packs nothing.
        let columns = rows.t().as_standard_layout().into_owned();
        let got = lazy.predict(columns.view()).unwrap().to_owned();
        assert_eq!(got, want);
        assert!(
            lazy.packed.is_none(),
            "packed for a batch that does not read it"
        );

        // The lazy predictor packs on its first batch with contiguous examples.
        let got = lazy.predict(rows.t()).unwrap().to_owned();
        assert_eq!(got, want);
        assert!(lazy.packed.is_some());
    }

    #[test]
    fn wrong_input_rows_is_error() {
        let network = network(13);
        let mut predictor = Predictor::new(&network);
        let err = predictor
            .predict(Array2::zeros((783, 1)).view())
            .unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err}");
    }

    #[test]
    fn display_names_widths() {
        let network = network(15);
        let predictor = Predictor::new(&network);
        assert_eq!(
            predictor.to_string(),
            "Predictor(784-256-128-10, skips zeros)"
        );

        let mut network = network.clone();
        network.layers_mut()[1].weights_mut()[[0, 0]] = f32::NAN;
        let predictor = Predictor::new(&network);
        assert_eq!(
            predictor.to_string(),
            "Predictor(784-256-128-10, skips zeros in 2 of 3 layers)"
        );
    }

    #[test]
    fn f64_batch_of_one_matches_batch() {
        let mut rng = Rng::new(17);
        let activations = [Activation::Tanh, Activation::Sigmoid];
        let network = Network::<f64>::random(&[30, 70, 4], &activations, &mut rng).unwrap();
        let x = sparse_input(30, 3, 18).mapv(f64::from);
        let batch = forward_batch(&network, x.view());
        let mut predictor = Predictor::new(&network);
        for j in 0..3 {
            let single = predictor
                .predict(x.slice(ndarray::s![.., j..j + 1]))
                .unwrap();
            for i in 0..4 {
                assert!((single[[i, 0]] - batch[[i, j]]).abs() < 1e-12, "output {i}");
            }
        }
    }
}
