//! A network: a stack of [`Dense`] layers, with forward and backward passes over mini-batches.
//!
//! Columns are examples. For layers `l = 1..L` with widths `n[0] .. n[L]` and a batch of `m`:
//! `A[0] = X` is `n[0] x m`, `Z[l] = W[l] A[l-1] + broadcast(b[l])`, `A[l] = g[l](Z[l])`, and
//! the output `Ŷ = A[L]` is `n[L] x m`.
//!
//! The training forward pass ([`Network::forward_train`]) fills a [`ForwardCache`] with what the
//! backward pass needs and no more: every `A[l]`, since `dW[l+1] = dZ[l+1] A[l]^T` and most
//! activations differentiate from their output, and `Z[l]` only for the layers whose activation
//! [needs it](Activation::needs_pre_activation). [`Network::backward`] then fills
//! [`Gradients`] with `dW[l]`, `db[l]` for every layer and, on request, `dA[0]`. Both reuse
//! their buffers from batch to batch, so a training loop allocates only while the batch grows.
//!
//! ```
//! use feedforward::{Activation, Cost, ForwardCache, Gradients, Network, Rng};
//! use ndarray::Array2;
//!
//! let mut rng = Rng::new(0);
//! let network = Network::<f64>::random(&[4, 8, 3], &[Activation::Relu, Activation::Softmax], &mut rng)?;
//! let x = Array2::from_shape_fn((4, 5), |(i, j)| (i + j) as f64 / 10.0);
//! let mut y = Array2::zeros((3, 5));
//! for j in 0..5 {
//!     y[[j % 3, j]] = 1.0;
//! }
//! let mut cache = ForwardCache::new();
//! network.forward_train(x.view(), &mut cache)?;
//! let loss = Cost::CategoricalCrossEntropy.value(cache.output(), y.view())?;
//! let mut grads = Gradients::new(&network);
//! network.backward(&cache, y.view(), Cost::CategoricalCrossEntropy, &mut grads)?;
//! assert!(loss > 0.0);
//! assert_eq!(grads.weights[0].dim(), (8, 4));
//! # Ok::<(), feedforward::Error>(())
//! ```

use std::fmt;

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, ShapeBuilder, Zip};

use crate::activation::Activation;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::inference::InferenceBuffers;
use crate::init::Init;
use crate::layer::Dense;
use crate::linalg::rows;
use crate::rng::Rng;

/// A feedforward network: dense layers of any depth and widths, one activation per layer.
#[derive(Debug, PartialEq)]
pub struct Network<T> {
    layers: Vec<Dense<T>>,
}

impl<T: Clone> Clone for Network<T> {
    fn clone(&self) -> Self {
        Network {
            layers: self.layers.clone(),
        }
    }

    /// Copies into the existing layers' arrays when the shapes agree, so keeping the best
    /// weights during training allocates nothing.
    fn clone_from(&mut self, source: &Self) {
        self.layers.clone_from(&source.layers);
    }
}

impl<T: Float> Network<T> {
    /// Creates a network from layers whose widths chain: each layer's inputs equal the previous
    /// layer's outputs.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an empty list; [`Error::Shape`] where the widths do not chain.
    pub fn new(layers: Vec<Dense<T>>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::Config("a network needs at least one layer".into()));
        }
        for (index, pair) in layers.windows(2).enumerate() {
            if pair[0].outputs() != pair[1].inputs() {
                return Err(Error::Shape(format!(
                    "layer {} has {} outputs but layer {} expects {} inputs",
                    index + 1,
                    pair[0].outputs(),
                    index + 2,
                    pair[1].inputs()
                )));
            }
        }
        Ok(Network { layers })
    }

    /// Creates a network with widths `sizes = [n[0], .., n[L]]` and one activation per layer,
    /// each layer initialized with [`Init::default_for`] its activation and zero biases.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `sizes` has fewer than two entries, a width is zero, or the
    /// number of activations is not `sizes.len() - 1`.
    pub fn random(sizes: &[usize], activations: &[Activation], rng: &mut Rng) -> Result<Self> {
        Network::random_with_init(sizes, activations, None, rng)
    }

    /// As [`Network::random`], with `init` for every layer instead of each activation's default
    /// when it is `Some`.
    ///
    /// # Errors
    ///
    /// As [`Network::random`].
    pub fn random_with_init(
        sizes: &[usize],
        activations: &[Activation],
        init: Option<Init>,
        rng: &mut Rng,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::Config(format!(
                "a network needs an input width and at least one layer width, got {sizes:?}"
            )));
        }
        if activations.len() != sizes.len() - 1 {
            return Err(Error::Config(format!(
                "{} layers need {} activations, got {}",
                sizes.len() - 1,
                sizes.len() - 1,
                activations.len()
            )));
        }
        let layers = sizes
            .windows(2)
            .zip(activations)
            .map(|(pair, &activation)| {
                let init = init.unwrap_or_else(|| Init::default_for(activation));
                Dense::random(pair[0], pair[1], activation, init, rng)
            })
            .collect::<Result<Vec<_>>>()?;
        Network::new(layers)
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Dense<T>] {
        &self.layers
    }

    /// The layers for in-place parameter updates.
    pub fn layers_mut(&mut self) -> &mut [Dense<T>] {
        &mut self.layers
    }

    /// The widths `[n[0], .., n[L]]`.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.inputs()];
        sizes.extend(self.layers.iter().map(Dense::outputs));
        sizes
    }

    /// Returns the activations `[g[1], .., g[L]]`, one per layer.
    pub fn activations(&self) -> Vec<Activation> {
        self.layers.iter().map(Dense::activation).collect()
    }

    /// True when `sizes` equals [`Network::sizes`]; compares without building that vector, so
    /// the per-batch shape checks allocate nothing.
    fn has_sizes(&self, sizes: &[usize]) -> bool {
        sizes.len() == self.layers.len() + 1
            && sizes[0] == self.inputs()
            && self
                .layers
                .iter()
                .zip(&sizes[1..])
                .all(|(layer, &width)| layer.outputs() == width)
    }

    /// Number of inputs, `n[0]`.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs()
    }

    /// Number of outputs, `n[L]`.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs()
    }

    /// The output layer's activation.
    pub fn output_activation(&self) -> Activation {
        self.layers[self.layers.len() - 1].activation()
    }

    /// Total number of weights and biases.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(Dense::parameter_count).sum()
    }

    pub(crate) fn check_input(&self, x: &ArrayView2<'_, T>) -> Result<()> {
        if x.nrows() != self.inputs() {
            return Err(Error::Shape(format!(
                "the network expects {} features (rows) per example, got a {:?} input",
                self.inputs(),
                x.dim()
            )));
        }
        Ok(())
    }

    /// Returns the output `A[L]` (`n[L] x m`) for an input `X` (`n[0] x m`), keeping nothing
    /// for a backward pass.
    ///
    /// This allocates its buffers on every call. [`Network::forward_into`] computes the same
    /// values into buffers that a caller reuses. The result is always in standard (row-major)
    /// layout, even when `forward_into` returns a column-major view.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `X` does not have `n[0]` rows.
    pub fn forward(&self, x: ArrayView2<'_, T>) -> Result<Array2<T>> {
        let mut buffers = InferenceBuffers::new();
        Ok(self
            .forward_into(x, &mut buffers)?
            .as_standard_layout()
            .into_owned())
    }

    /// Runs the forward pass on `X` (`n[0] x m`) and keeps in `cache` what
    /// [`Network::backward`] needs.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `X` does not have `n[0]` rows.
    pub fn forward_train(&self, x: ArrayView2<'_, T>, cache: &mut ForwardCache<T>) -> Result<()> {
        self.check_input(&x)?;
        cache.prepare(self, x.ncols(), None)?;
        cache.input_mut().assign(&x);
        self.run_forward(cache, None)
    }

    /// As [`Network::forward_train`], with inverted dropout after each hidden layer: an output
    /// of layer `l` is kept with probability `1 - rates[l]` and scaled by `1 / (1 - rates[l])`,
    /// so that its expectation is unchanged and inference needs no rescaling.
    ///
    /// `rates` has one entry per hidden layer (`L - 1`); 0 turns dropout off for that layer.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] for a wrong input height; [`Error::Config`] for the wrong number of
    /// rates or a rate outside `[0, 1)`.
    pub fn forward_train_dropout(
        &self,
        x: ArrayView2<'_, T>,
        cache: &mut ForwardCache<T>,
        rates: &[f64],
        rng: &mut Rng,
    ) -> Result<()> {
        self.check_input(&x)?;
        cache.prepare(self, x.ncols(), Some(rates))?;
        cache.input_mut().assign(&x);
        self.run_forward(cache, Some(rng))
    }

    /// Runs the forward pass on the input already written through
    /// [`ForwardCache::prepare_input`], which lets a training loop gather a batch straight into
    /// the cache.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the cache was prepared for another network.
    pub fn forward_prepared(
        &self,
        cache: &mut ForwardCache<T>,
        rng: Option<&mut Rng>,
    ) -> Result<()> {
        if !self.has_sizes(&cache.sizes) {
            return Err(Error::Shape(format!(
                "the cache was prepared for widths {:?}, not {:?}",
                cache.sizes,
                self.sizes()
            )));
        }
        self.run_forward(cache, rng)
    }

    fn run_forward(&self, cache: &mut ForwardCache<T>, mut rng: Option<&mut Rng>) -> Result<()> {
        let m = cache.batch;
        for (index, layer) in self.layers.iter().enumerate() {
            let (done, rest) = cache.activations.split_at_mut(index + 1);
            let input = if index == 0 {
                input_view(&done[0], cache.sizes[0], m)
            } else {
                cache_input(&done[index], &cache.dropped[index], cache.sizes[index], m)
            };
            let mut output = view_mut(&mut rest[0], layer.outputs(), m);
            layer.affine_into(input, &mut output)?;
            if let Some(z) = cache.pre_activations[index + 1].as_mut() {
                view_mut(z, layer.outputs(), m).assign(&output);
            }
            layer.activation().forward_inplace(output);

            let rate = cache.dropout_rates.get(index + 1).copied().unwrap_or(0.0);
            if rate > 0.0 {
                let rng = rng.as_deref_mut().ok_or_else(|| {
                    Error::Config("dropout needs a random-number generator".into())
                })?;
                let scale = T::of(1.0 / (1.0 - rate));
                let n = layer.outputs() * m;
                let mask = &mut cache.masks[index + 1][..n];
                for value in mask.iter_mut() {
                    *value = if rng.uniform() >= rate {
                        scale
                    } else {
                        T::zero()
                    };
                }
                let source = &rest[0][..n];
                let target = &mut cache.dropped[index + 1][..n];
                for ((t, &s), &k) in target.iter_mut().zip(source).zip(mask.iter()) {
                    *t = s * k;
                }
            }
        }
        Ok(())
    }

    /// Computes the gradients of `cost` at the targets `Y` (`n[L] x m`) from a cache filled by
    /// a forward pass.
    ///
    /// `dZ[L]` is the fused `(A - Y)/m` form when the output activation is the cost's
    /// [partner](Cost::fused_activation), and `g'(Z[L]) ⊙ dA[L]` otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `Y`'s shape differs from the output's or `grads` belongs to a
    /// network of other widths; [`Error::Config`] when `cost` cannot follow the output layer
    /// (see [`Cost::check_output`]).
    pub fn backward(
        &self,
        cache: &ForwardCache<T>,
        y: ArrayView2<'_, T>,
        cost: Cost,
        grads: &mut Gradients<T>,
    ) -> Result<()> {
        cost.check_output(self.output_activation(), self.outputs())?;
        self.check_cache(cache, grads)?;
        let last = self.layers.len();
        let m = cache.batch;
        let output = cache.activation(last);
        let mut delta = view_mut(&mut grads.delta, self.outputs(), m);
        if !cost.output_delta(self.output_activation(), output, y, delta.view_mut())? {
            cost.gradient(output, y, delta.view_mut())?;
            self.output_activation()
                .backward_inplace(cache.pre_activation(last), output, delta)?;
        }
        self.backpropagate(cache, grads)
    }

    /// Computes the gradients from a given `dA[L] = ∂J/∂A[L]` (`n[L] x m`), for costs defined
    /// outside this crate; the output activation's backward pass is applied to it, never fused.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `dA[L]`'s shape differs from the output's or `grads` belongs to
    /// a network of other widths.
    pub fn backward_from_output_gradient(
        &self,
        cache: &ForwardCache<T>,
        output_gradient: ArrayView2<'_, T>,
        grads: &mut Gradients<T>,
    ) -> Result<()> {
        self.check_cache(cache, grads)?;
        let last = self.layers.len();
        let output = cache.activation(last);
        if output_gradient.dim() != output.dim() {
            return Err(Error::Shape(format!(
                "dA[L] is {:?} but the output is {:?}",
                output_gradient.dim(),
                output.dim()
            )));
        }
        let mut delta = view_mut(&mut grads.delta, self.outputs(), cache.batch);
        delta.assign(&output_gradient);
        self.output_activation()
            .backward_inplace(cache.pre_activation(last), output, delta)?;
        self.backpropagate(cache, grads)
    }

    fn check_cache(&self, cache: &ForwardCache<T>, grads: &mut Gradients<T>) -> Result<()> {
        if !self.has_sizes(&cache.sizes) {
            return Err(Error::Shape(format!(
                "the cache holds a forward pass of widths {:?}, not {:?}; run forward_train first",
                cache.sizes,
                self.sizes()
            )));
        }
        if !self.has_sizes(&grads.sizes) {
            return Err(Error::Shape(format!(
                "the gradients are for widths {:?}, not {:?}",
                grads.sizes,
                self.sizes()
            )));
        }
        let sizes = &grads.sizes;
        let scratch = sizes.iter().max().copied().unwrap_or(0) * cache.batch;
        for buffer in [&mut grads.delta, &mut grads.next_delta] {
            if buffer.len() < scratch {
                buffer.resize(scratch, T::zero());
            }
        }
        if grads.compute_input && grads.input.dim() != (sizes[0], cache.batch) {
            grads.input = Array2::zeros((sizes[0], cache.batch));
        }
        Ok(())
    }

    /// Backpropagates `dZ[L]`, held in `grads.delta`, through every layer.
    fn backpropagate(&self, cache: &ForwardCache<T>, grads: &mut Gradients<T>) -> Result<()> {
        let m = cache.batch;
        for index in (0..self.layers.len()).rev() {
            let layer = &self.layers[index];
            let input = cache.layer_input(index);
            let dz = view(&grads.delta, layer.outputs(), m);
            let mut weights_grad = grads.weights[index].view_mut();
            let mut bias_grad = grads.biases[index].view_mut();
            if index == 0 {
                let input_grad = grads.compute_input.then(|| grads.input.view_mut());
                let mut input_grad = input_grad;
                layer.backward_into(
                    input,
                    dz,
                    &mut weights_grad,
                    &mut bias_grad,
                    input_grad.as_mut(),
                )?;
                break;
            }
            let mut previous = view_mut(&mut grads.next_delta, layer.inputs(), m);
            layer.backward_into(
                input,
                dz,
                &mut weights_grad,
                &mut bias_grad,
                Some(&mut previous),
            )?;
            if cache.dropout_rates.get(index).copied().unwrap_or(0.0) > 0.0 {
                let mask = view(&cache.masks[index], layer.inputs(), m);
                Zip::from(&mut previous).and(mask).for_each(|g, &k| *g *= k);
            }
            self.layers[index - 1].activation().backward_inplace(
                cache.pre_activation(index),
                cache.activation(index),
                previous,
            )?;
            std::mem::swap(&mut grads.delta, &mut grads.next_delta);
        }
        Ok(())
    }
}

impl<T: Float> fmt::Display for Network<T> {
    /// A one-line summary such as `Network(784 -> 256 relu -> 10 softmax; 203,530 parameters)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Network({}", self.inputs())?;
        for layer in &self.layers {
            write!(f, " -> {} {}", layer.outputs(), layer.activation())?;
        }
        write!(
            f,
            "; {} parameters)",
            group_thousands(self.parameter_count())
        )
    }
}

fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

fn view<T>(buffer: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols), &buffer[..rows * cols]).expect("buffer sized by prepare")
}

fn view_mut<T>(buffer: &mut [T], rows: usize, cols: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((rows, cols), &mut buffer[..rows * cols])
        .expect("buffer sized by prepare")
}

/// Returns the input `A[0]`, stored column-major so that a training loop copies each example as
/// one contiguous run. The matrix products take either layout.
fn input_view<T>(buffer: &[T], rows: usize, cols: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((rows, cols).f(), &buffer[..rows * cols])
        .expect("buffer sized by prepare")
}

/// Returns a layer's input: the previous activation, or its dropped-out copy.
fn cache_input<'a, T>(
    activation: &'a [T],
    dropped: &'a [T],
    rows: usize,
    cols: usize,
) -> ArrayView2<'a, T> {
    if dropped.is_empty() {
        view(activation, rows, cols)
    } else {
        view(dropped, rows, cols)
    }
}

/// What the forward pass keeps for the backward pass, in buffers reused from batch to batch.
///
/// Holds `A[0] .. A[L]` (each `n[l] x m`), `Z[l]` only for layers whose activation needs it,
/// and with dropout the mask and the dropped-out copy of each hidden output.
#[derive(Clone, Debug, Default)]
pub struct ForwardCache<T> {
    sizes: Vec<usize>,
    batch: usize,
    activations: Vec<Vec<T>>,
    pre_activations: Vec<Option<Vec<T>>>,
    dropout_rates: Vec<f64>,
    masks: Vec<Vec<T>>,
    dropped: Vec<Vec<T>>,
}

impl<T: Float> ForwardCache<T> {
    /// Creates an empty cache; the first forward pass sizes it.
    pub fn new() -> Self {
        ForwardCache {
            sizes: Vec::new(),
            batch: 0,
            activations: Vec::new(),
            pre_activations: Vec::new(),
            dropout_rates: Vec::new(),
            masks: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Sizes the buffers for `network` and a batch of `batch` columns, and returns the input
    /// `A[0]` (`n[0] x batch`) to fill before [`Network::forward_prepared`].
    ///
    /// `dropout` has one rate per hidden layer, or is `None` for no dropout.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a wrong number of rates or a rate outside `[0, 1)`.
    pub fn prepare_input(
        &mut self,
        network: &Network<T>,
        batch: usize,
        dropout: Option<&[f64]>,
    ) -> Result<ArrayViewMut2<'_, T>> {
        self.prepare(network, batch, dropout)?;
        Ok(self.input_mut())
    }

    fn prepare(
        &mut self,
        network: &Network<T>,
        batch: usize,
        dropout: Option<&[f64]>,
    ) -> Result<()> {
        let layers = network.layers();
        let hidden = layers.len() - 1;
        if let Some(dropout) = dropout {
            if dropout.len() != hidden {
                return Err(Error::Config(format!(
                    "{hidden} hidden layers need {hidden} dropout rates, got {}",
                    dropout.len()
                )));
            }
            for (index, &rate) in dropout.iter().enumerate() {
                if !(0.0..1.0).contains(&rate) {
                    return Err(Error::Config(format!(
                        "dropout rate {rate} of hidden layer {} is outside [0, 1)",
                        index + 1
                    )));
                }
            }
        }
        if !network.has_sizes(&self.sizes) {
            let sizes = network.sizes();
            self.activations = vec![Vec::new(); sizes.len()];
            self.pre_activations = (0..sizes.len())
                .map(|l| {
                    (l > 0 && layers[l - 1].activation().needs_pre_activation()).then(Vec::new)
                })
                .collect();
            self.masks = vec![Vec::new(); sizes.len()];
            self.dropped = vec![Vec::new(); sizes.len()];
            self.dropout_rates = vec![0.0; sizes.len()];
            self.sizes = sizes;
        }

        // The rates are written in place. A mask buffer that dropout no longer uses is cleared
        // but keeps its capacity, so switching between dropout and dropout-free passes
        // allocates nothing once the buffers have grown.
        self.dropout_rates.fill(0.0);
        if let Some(dropout) = dropout {
            self.dropout_rates[1..=hidden].copy_from_slice(dropout);
        }
        for (l, &width) in self.sizes.iter().enumerate() {
            let n = width * batch;
            grow(&mut self.activations[l], n);
            if let Some(z) = self.pre_activations[l].as_mut() {
                grow(z, n);
            }
            if self.dropout_rates[l] > 0.0 {
                grow(&mut self.masks[l], n);
                grow(&mut self.dropped[l], n);
            } else {
                self.masks[l].clear();
                self.dropped[l].clear();
            }
        }
        self.batch = batch;
        Ok(())
    }

    fn input_mut(&mut self) -> ArrayViewMut2<'_, T> {
        let (rows, cols) = (self.sizes[0], self.batch);
        ArrayViewMut2::from_shape((rows, cols).f(), &mut self.activations[0][..rows * cols])
            .expect("buffer sized by prepare")
    }

    /// Number of columns of the last forward pass.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// `A[l]` of the last forward pass, `n[l] x m`, before any dropout; `A[0]` is the input.
    ///
    /// # Panics
    ///
    /// When `l` exceeds the number of layers, and for every `l` before the first forward pass.
    pub fn activation(&self, l: usize) -> ArrayView2<'_, T> {
        if l == 0 {
            return input_view(&self.activations[0], self.sizes[0], self.batch);
        }
        view(&self.activations[l], self.sizes[l], self.batch)
    }

    /// Returns the output `A[L]`, `n[L] x m`, or an empty `0 x 0` view before the first forward
    /// pass.
    pub fn output(&self) -> ArrayView2<'_, T> {
        match self.sizes.len().checked_sub(1) {
            Some(last) => self.activation(last),
            None => ArrayView2::from_shape((0, 0), &[]).expect("an empty slice fits 0 x 0"),
        }
    }

    /// `Z[l]` when layer `l`'s activation needs it, otherwise `None`, as for an `l` beyond the
    /// last layer.
    pub fn pre_activation(&self, l: usize) -> Option<ArrayView2<'_, T>> {
        self.pre_activations
            .get(l)?
            .as_ref()
            .map(|z| view(z, self.sizes[l], self.batch))
    }

    /// The input of 0-based layer `index`: `A[index]`, or its dropped-out copy.
    fn layer_input(&self, index: usize) -> ArrayView2<'_, T> {
        if index == 0 {
            return self.activation(0);
        }
        cache_input(
            &self.activations[index],
            &self.dropped[index],
            self.sizes[index],
            self.batch,
        )
    }
}

/// Grows `buffer` to at least `n` elements; it never shrinks, so smaller batches reuse it.
fn grow<T: Float>(buffer: &mut Vec<T>, n: usize) {
    if buffer.len() < n {
        buffer.resize(n, T::zero());
    }
}

/// The gradients of one backward pass: `dW[l]` and `db[l]` for every layer, and `dA[0]` when
/// requested.
#[derive(Clone, Debug)]
pub struct Gradients<T> {
    /// `dW[l]`, shaped as `W[l]` (`n[l] x n[l-1]`); index 0 is the first layer.
    pub weights: Vec<Array2<T>>,
    /// `db[l]`, shaped as `b[l]` (`n[l]`).
    pub biases: Vec<Array1<T>>,
    input: Array2<T>,
    compute_input: bool,
    sizes: Vec<usize>,
    delta: Vec<T>,
    next_delta: Vec<T>,
}

impl<T: Float> Gradients<T> {
    /// Creates zero gradients for `network`, computing `dA[0]` as well.
    pub fn new(network: &Network<T>) -> Self {
        Gradients {
            weights: network
                .layers()
                .iter()
                .map(|l| Array2::zeros((l.outputs(), l.inputs())))
                .collect(),
            biases: network
                .layers()
                .iter()
                .map(|l| Array1::zeros(l.outputs()))
                .collect(),
            input: Array2::zeros((network.inputs(), 0)),
            compute_input: true,
            sizes: network.sizes(),
            delta: Vec::new(),
            next_delta: Vec::new(),
        }
    }

    /// Turns the `dA[0] = W[1]^T dZ[1]` product on or off; training does not need it, and it
    /// costs as much as the first layer's `dW`.
    pub fn with_input_gradient(mut self, compute: bool) -> Self {
        self.compute_input = compute;
        self
    }

    /// `dA[0] = ∂J/∂X` (`n[0] x m`) of the last backward pass, or `None` when turned off.
    pub fn input(&self) -> Option<ArrayView2<'_, T>> {
        self.compute_input.then(|| self.input.view())
    }

    /// The global L2 norm over every `dW` and `db` entry, `√(Σ dW² + Σ db²)`.
    pub fn global_norm(&self) -> T {
        let weights = self.weights.iter().map(|w| sum_of_squares(w.view()));
        let biases = self.biases.iter().map(|b| sum_of_squares(b.view()));
        weights
            .chain(biases)
            .fold(T::zero(), |sum, s| sum + s)
            .sqrt()
    }
}

/// `Σ x²` over an array. A contiguous array is summed in blocks fixed by its length
/// ([`rows::sum_blocks`]), on the product threads when it is large, and each block in 32
/// independent partial sums so that the loop vectorizes. The blocks do not depend on the
/// thread count, so neither does the result. A strided array falls back to a plain fold.
fn sum_of_squares<T: Float, D: ndarray::Dimension>(values: ndarray::ArrayView<'_, T, D>) -> T {
    let Some(slice) = values.as_slice_memory_order() else {
        return values.fold(T::zero(), |sum, &x| sum + x * x);
    };
    let total = rows::sum_blocks(slice.len(), &|range| {
        sum_of_squares_slice(&slice[range])
            .to_f64()
            .unwrap_or(f64::NAN)
    });
    T::of(total)
}

/// `Σ x²` over a slice, in 32 independent partial sums. They make eight chains of SSE
/// additions, each waiting for its previous addition, where eight partial sums made two. The
/// norm of 784-1024-1024-10's gradients took 0.07 to 0.09 ms instead of 0.14 on two threads,
/// in a scratch timing (BENCHMARKS.md).
fn sum_of_squares_slice<T: Float>(slice: &[T]) -> T {
    let mut partial = [T::zero(); 32];
    let chunks = slice.chunks_exact(32);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (p, &x) in partial.iter_mut().zip(chunk) {
            *p += x * x;
        }
    }
    let tail = rest.iter().fold(T::zero(), |sum, &x| sum + x * x);
    partial.iter().fold(tail, |sum, &p| sum + p)
}

#[cfg(test)]
mod tests;
