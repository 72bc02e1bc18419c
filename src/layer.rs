//! A dense (fully connected) layer: `Z = W A_prev + broadcast(b)`, `A = g(Z)`.
//!
//! Shapes for a layer of `n_out` units after a layer of `n_in`, on a batch of `m` columns:
//! `W` is `n_out x n_in`, `b` has `n_out` entries, `A_prev` is `n_in x m`, and `Z`, `A` are
//! `n_out x m`. The backward pass, given `dZ = ∂J/∂Z`:
//!
//! - `dW = dZ A_prev^T` (`n_out x n_in`)
//! - `db = Σ over columns of dZ` (`n_out`)
//! - `dA_prev = W^T dZ` (`n_in x m`)
//!
//! The transposes are strided views passed to [`crate::linalg::gemm`], never copies.
//!
//! ```
//! use feedforward::{Activation, Dense};
//! use ndarray::array;
//!
//! let layer = Dense::new(array![[1.0, -1.0]], array![0.5], Activation::Relu).unwrap();
//! let a = layer.forward(array![[3.0, 1.0], [1.0, 2.0]].view()).unwrap();
//! assert_eq!(a, array![[2.5, 0.0]]);
//! ```

use std::fmt;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, Zip, s};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::Init;
use crate::linalg::{gemm, gemm_finite_a, rows};
use crate::rng::Rng;

/// A dense layer: weights `W` (`n_out x n_in`), bias `b` (`n_out`) and an activation.
#[derive(Debug)]
pub struct Dense<T> {
    weights: Array2<T>,
    bias: Array1<T>,
    activation: Activation,
    /// Whether every weight is known to be finite. Products with `W` may then leave out the
    /// zero steps of the other operand without checking `W` first
    /// (`crate::linalg::gemm_finite_a`). [`Dense::new`] checks the weights, and
    /// [`Dense::weights_mut`] clears the flag. An Adam or AdamW step sets it again when its
    /// update loop found every new weight finite, and other optimizers leave it cleared.
    finite_weights: bool,
}

/// Compares weights, biases and activations. The flag of finite weights only caches a check
/// of the weights, so it takes no part.
impl<T: PartialEq> PartialEq for Dense<T> {
    fn eq(&self, other: &Self) -> bool {
        self.weights == other.weights
            && self.bias == other.bias
            && self.activation == other.activation
    }
}

impl<T: Clone> Clone for Dense<T> {
    fn clone(&self) -> Self {
        Dense {
            weights: self.weights.clone(),
            bias: self.bias.clone(),
            activation: self.activation,
            finite_weights: self.finite_weights,
        }
    }

    /// Copies into the existing arrays, which ndarray reuses when they are large enough.
    fn clone_from(&mut self, source: &Self) {
        self.weights.clone_from(&source.weights);
        self.bias.clone_from(&source.bias);
        self.activation = source.activation;
        self.finite_weights = source.finite_weights;
    }
}

impl<T: Float> Dense<T> {
    /// Creates a layer from its parameters.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `bias` does not have one entry per row of `weights` or a
    /// dimension is zero; [`Error::Config`] for invalid activation parameters.
    pub fn new(weights: Array2<T>, bias: Array1<T>, activation: Activation) -> Result<Self> {
        if weights.nrows() != bias.len() {
            return Err(Error::Shape(format!(
                "a {:?} weight matrix needs {} biases, not {}",
                weights.dim(),
                weights.nrows(),
                bias.len()
            )));
        }
        if weights.is_empty() {
            return Err(Error::Shape(format!(
                "a layer needs at least one input and one output, not a {:?} weight matrix",
                weights.dim()
            )));
        }
        activation.validate()?;
        let finite_weights = weights.iter().all(|w| w.is_finite());
        Ok(Dense {
            weights,
            bias,
            activation,
            finite_weights,
        })
    }

    /// Creates a layer of `n_out` units after `n_in`, with weights from `init` and zero biases.
    ///
    /// # Errors
    ///
    /// As [`Dense::new`]: zero widths and invalid activation parameters.
    pub fn random(
        n_in: usize,
        n_out: usize,
        activation: Activation,
        init: Init,
        rng: &mut Rng,
    ) -> Result<Self> {
        if n_in == 0 || n_out == 0 {
            return Err(Error::Config(format!(
                "a layer needs at least one input and one output, not {n_in} -> {n_out}"
            )));
        }
        Dense::new(
            init.weights(n_in, n_out, rng),
            Array1::zeros(n_out),
            activation,
        )
    }

    /// Number of inputs, `n_in`.
    pub fn inputs(&self) -> usize {
        self.weights.ncols()
    }

    /// Number of units, `n_out`.
    pub fn outputs(&self) -> usize {
        self.weights.nrows()
    }

    /// The activation `g`.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The weights `W`, `n_out x n_in`.
    pub fn weights(&self) -> ArrayView2<'_, T> {
        self.weights.view()
    }

    /// The bias `b`, `n_out` entries.
    pub fn bias(&self) -> ArrayView1<'_, T> {
        self.bias.view()
    }

    /// The weights for in-place updates; the shape cannot change.
    pub fn weights_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.finite_weights = false;
        self.weights.view_mut()
    }

    /// Records whether every weight is finite. Pass `true` only after checking every weight
    /// written since [`Dense::weights_mut`], as Adam's update loop does.
    pub(crate) fn set_finite_weights(&mut self, finite: bool) {
        self.finite_weights = finite;
    }

    /// Returns whether every weight is known to be finite.
    #[cfg(test)]
    pub(crate) fn finite_weights(&self) -> bool {
        self.finite_weights
    }

    /// The bias for in-place updates; the shape cannot change.
    pub fn bias_mut(&mut self) -> ArrayViewMut1<'_, T> {
        self.bias.view_mut()
    }

    /// Number of parameters, `n_out (n_in + 1)`.
    pub fn parameter_count(&self) -> usize {
        self.weights.len() + self.bias.len()
    }

    fn check_input(&self, input: &ArrayView2<'_, T>) -> Result<()> {
        if input.nrows() != self.inputs() {
            return Err(Error::Shape(format!(
                "layer {self} expects {} input rows, got a {:?} batch",
                self.inputs(),
                input.dim()
            )));
        }
        Ok(())
    }

    /// Writes `Z = W A_prev + broadcast(b)` into `z` (`n_out x m`).
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `input` is not `n_in x m` or `z` is not `n_out x m`.
    pub fn affine_into(
        &self,
        input: ArrayView2<'_, T>,
        z: &mut ArrayViewMut2<'_, T>,
    ) -> Result<()> {
        self.check_input(&input)?;
        let finite = self.finite_weights;
        gemm_finite_a(T::one(), self.weights.view(), input, T::zero(), z, finite)?;
        let bias = self.bias.view();
        rows::map_row_blocks(z.view_mut(), &|range, mut block| {
            for (mut row, &b) in block.rows_mut().into_iter().zip(bias.slice(s![range])) {
                row.mapv_inplace(|x| x + b);
            }
        });
        Ok(())
    }

    /// Returns `A = g(W A_prev + b)` for an `n_in x m` input.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `input` does not have `n_in` rows.
    pub fn forward(&self, input: ArrayView2<'_, T>) -> Result<Array2<T>> {
        let mut a = Array2::zeros((self.outputs(), input.ncols()));
        self.affine_into(input, &mut a.view_mut())?;
        self.activation.forward_inplace(a.view_mut());
        Ok(a)
    }

    /// Computes `dW = dZ A_prev^T`, `db = Σ_columns dZ` and, when `input_grad` is given,
    /// `dA_prev = W^T dZ`.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when a shape disagrees with `n_in`, `n_out` or the batch size.
    pub fn backward_into(
        &self,
        input: ArrayView2<'_, T>,
        dz: ArrayView2<'_, T>,
        weights_grad: &mut ArrayViewMut2<'_, T>,
        bias_grad: &mut ArrayViewMut1<'_, T>,
        input_grad: Option<&mut ArrayViewMut2<'_, T>>,
    ) -> Result<()> {
        self.check_input(&input)?;
        if dz.nrows() != self.outputs() || dz.ncols() != input.ncols() {
            return Err(Error::Shape(format!(
                "layer {self}: dZ is {:?} but should be {:?}",
                dz.dim(),
                (self.outputs(), input.ncols())
            )));
        }
        if bias_grad.len() != self.outputs() {
            return Err(Error::Shape(format!(
                "layer {self}: db has {} entries but should have {}",
                bias_grad.len(),
                self.outputs()
            )));
        }
        gemm(T::one(), dz, input.t(), T::zero(), weights_grad)?;
        let bias_grad = bias_grad.view_mut().insert_axis(Axis(1));
        rows::zip_row_blocks(bias_grad, dz, &|mut db, dz| {
            Zip::from(db.column_mut(0))
                .and(dz.lanes(Axis(1)))
                .for_each(|db, row| *db = row.sum());
        });
        if let Some(input_grad) = input_grad {
            let finite = self.finite_weights;
            gemm_finite_a(
                T::one(),
                self.weights.t(),
                dz,
                T::zero(),
                input_grad,
                finite,
            )?;
        }
        Ok(())
    }
}

impl<T: Float> fmt::Display for Dense<T> {
    /// A one-line summary such as `Dense(784 -> 256, relu)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dense({} -> {}, {})",
            self.inputs(),
            self.outputs(),
            self.activation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn layer() -> Dense<f64> {
        Dense::new(
            array![[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]],
            array![0.5, -1.0],
            Activation::Identity,
        )
        .unwrap()
    }

    #[test]
    fn forward_matches_formula() {
        let input = array![[1.0, 0.0], [2.0, 1.0], [-1.0, 1.0]];
        let a = layer().forward(input.view()).unwrap();
        assert_eq!(
            a,
            array![[1.0 + 4.0 - 3.0 + 0.5, 5.0 + 0.5], [-1.0 + 1.0 - 1.0, -0.5]]
        );
    }

    /// Returns `(dW, db, dA_prev)` from [`Dense::backward_into`].
    fn backward<T: Float>(
        layer: &Dense<T>,
        input: &Array2<T>,
        dz: &Array2<T>,
    ) -> (Array2<T>, Array1<T>, Array2<T>) {
        let mut dw = Array2::zeros(layer.weights().dim());
        let mut db = Array1::zeros(layer.outputs());
        let mut da = Array2::zeros(input.dim());
        layer
            .backward_into(
                input.view(),
                dz.view(),
                &mut dw.view_mut(),
                &mut db.view_mut(),
                Some(&mut da.view_mut()),
            )
            .unwrap();
        (dw, db, da)
    }

    #[test]
    fn backward_matches_formulas() {
        let layer = layer();
        let input = array![[1.0, 0.0], [2.0, 1.0], [-1.0, 1.0]];
        let dz = array![[1.0, 2.0], [0.5, -1.0]];
        let (dw, db, da) = backward(&layer, &input, &dz);
        assert_eq!(dw, dz.dot(&input.t()));
        assert_eq!(db, array![3.0, -0.5]);
        assert_eq!(da, layer.weights().t().dot(&dz));
    }

    #[test]
    fn wrong_input_rows_is_error() {
        let err = layer().forward(Array2::zeros((4, 2)).view()).unwrap_err();
        assert!(err.to_string().contains("expects 3 input rows"), "{err}");
    }

    #[test]
    fn bias_length_and_zero_width_are_errors() {
        assert!(
            Dense::new(
                Array2::<f64>::zeros((2, 3)),
                Array1::zeros(3),
                Activation::Relu
            )
            .is_err()
        );
        assert!(
            Dense::<f64>::random(0, 3, Activation::Relu, Init::HeNormal, &mut Rng::new(1)).is_err()
        );
    }

    #[test]
    fn display_is_one_line() {
        assert_eq!(layer().to_string(), "Dense(3 -> 2, identity)");
    }

    /// Returns a `rows x 260` operand whose rows `zero` are zero in every column. Four zero
    /// rows in 40 or 50 are enough (one step in 16) for the product to sum each panel of
    /// columns over its nonzero steps only.
    fn with_zero_rows(rows: usize, zero: [usize; 4]) -> Array2<f32> {
        let mut x =
            Array2::from_shape_fn((rows, 260), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        for r in zero {
            x.row_mut(r).fill(0.0);
        }
        x
    }

    fn weights_40x50() -> Array2<f32> {
        Array2::from_shape_fn((40, 50), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.1 - 0.6)
    }

    #[test]
    fn infinite_weight_at_skipped_step_gives_nan() {
        // `inf * 0` is NaN, so an output that meets the infinite weight `W[3, 1]` only at a
        // zero step must still come out NaN. In `W A_prev` that is unit 3 (input 1 is zero),
        // and in `W^T dZ` input 1 (row 3 of `dZ` is zero).
        let input = with_zero_rows(50, [1, 11, 21, 31]);
        let dz = with_zero_rows(40, [3, 13, 23, 33]);
        let mut built = weights_40x50();
        built[[3, 1]] = f32::INFINITY;
        let from_new = Dense::new(built, Array1::zeros(40), Activation::Identity).unwrap();
        assert!(!from_new.finite_weights());
        let mut changed =
            Dense::new(weights_40x50(), Array1::zeros(40), Activation::Identity).unwrap();
        assert!(changed.finite_weights());
        changed.weights_mut()[[3, 1]] = f32::INFINITY;
        assert!(!changed.finite_weights());

        for layer in [&from_new, &changed] {
            let z = layer.forward(input.view()).unwrap();
            assert!(z.row(3).iter().all(|value| value.is_nan()));
            assert_eq!(z.iter().filter(|value| value.is_finite()).count(), 39 * 260);

            let (_, _, da) = backward(layer, &input, &dz);
            assert!(da.row(1).iter().all(|value| value.is_nan()));
            assert_eq!(
                da.iter().filter(|value| value.is_finite()).count(),
                49 * 260
            );
        }
    }
}
