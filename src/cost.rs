//! Cost functions `J(A, Y)` and their gradients `dA = ∂J/∂A`, averaged over the batch.
//!
//! Shapes: the output `A = A[L]` and the target `Y` are both `n x m`, one column per example.
//! For categorical cross-entropy `Y` is one-hot; for the binary costs it holds 0 or 1 (soft
//! targets in `[0, 1]` also work).
//!
//! | cost | `J` | `dA` |
//! |---|---|---|
//! | binary cross-entropy (`n = 1`) | `-1/m Σ (y ln a + (1-y) ln(1-a))` | `1/m ((1-Y)/(1-A) - Y/A)` |
//! | multi-label binary cross-entropy | the same sum over all `n` outputs | the same |
//! | categorical cross-entropy | `-1/m ΣΣ y ln a` | `-1/m Y/A` |
//! | mean squared error | `1/(m n) ΣΣ (a - y)²` | `2/(m n) (A - Y)` |
//!
//! Mean squared error averages over outputs as well as examples, as PyTorch's `MSELoss` and
//! Keras do, so its value does not grow with the number of outputs.
//!
//! **Fused output gradients.** When the output activation matches its cost (sigmoid with either
//! binary cross-entropy, softmax with categorical cross-entropy, identity with mean squared
//! error), [`Cost::output_delta`] computes `dZ[L]` directly: `(A - Y)/m` for the first two and
//! `2/(m n) (A - Y)` for the last. The chained form `g'(Z) dA` divides by `A` and `1 - A`, which
//! loses all precision as `A` saturates; the fused form has no division.
//!
//! **Numerical care.** `ln 0 = -∞`, so every log term is clamped at -100, the bound PyTorch's
//! `BCELoss` uses: a confidently wrong prediction costs at most 100 per output, and `J` stays
//! finite. The unfused `dA` divides by `A` and `1 - A` clamped to at least the element type's
//! machine epsilon, so it is finite too; it is exact whenever `ε ≤ A ≤ 1 - ε`.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayView2, ArrayViewMut2, Zip};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;

/// Lower bound on every log term of the cross-entropies.
const MIN_LOG: f64 = -100.0;

/// A cost function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cost {
    /// Binary cross-entropy for one sigmoid output (`n = 1`).
    BinaryCrossEntropy,
    /// Categorical cross-entropy for a softmax output over `n` classes.
    CategoricalCrossEntropy,
    /// The sum of binary cross-entropies over `n` independent sigmoid outputs.
    MultiLabelBinaryCrossEntropy,
    /// Mean squared error, for regression.
    MeanSquaredError,
}

impl Cost {
    /// All costs; for tests and help text.
    pub const ALL: [Cost; 4] = [
        Cost::BinaryCrossEntropy,
        Cost::CategoricalCrossEntropy,
        Cost::MultiLabelBinaryCrossEntropy,
        Cost::MeanSquaredError,
    ];

    /// The output activation whose pairing with this cost has a fused `dZ[L]`.
    pub fn fused_activation(&self) -> Activation {
        match self {
            Cost::BinaryCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => Activation::Sigmoid,
            Cost::CategoricalCrossEntropy => Activation::Softmax,
            Cost::MeanSquaredError => Activation::Identity,
        }
    }

    /// Checks that this cost can follow `activation` in an output layer of `outputs` units.
    ///
    /// The cross-entropies take logarithms of `A` (and `1 - A`), so they need outputs that are
    /// probabilities: sigmoid for the binary ones, softmax for the categorical one. Binary
    /// cross-entropy needs exactly one output. Mean squared error accepts any activation.
    pub fn check_output(&self, activation: Activation, outputs: usize) -> Result<()> {
        if *self == Cost::BinaryCrossEntropy && outputs != 1 {
            return Err(Error::Config(format!(
                "binary cross-entropy needs 1 output unit, not {outputs}; use \
                 multi-label binary cross-entropy for several independent labels or \
                 categorical cross-entropy with softmax for several classes"
            )));
        }
        if *self != Cost::MeanSquaredError && activation != self.fused_activation() {
            return Err(Error::Config(format!(
                "{self} needs a {} output layer, not {activation}",
                self.fused_activation()
            )));
        }
        Ok(())
    }

    fn check_shapes<T>(&self, a: &ArrayView2<'_, T>, y: &ArrayView2<'_, T>) -> Result<()> {
        if a.dim() != y.dim() {
            return Err(Error::Shape(format!(
                "{self}: the output A is {:?} but the target Y is {:?}",
                a.dim(),
                y.dim()
            )));
        }
        if a.ncols() == 0 {
            return Err(Error::Shape(format!("{self}: the batch is empty")));
        }
        Ok(())
    }

    /// Returns the cost `J` of the outputs `A` against the targets `Y`, averaged over the `m`
    /// columns.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `A` and `Y` differ in shape or the batch is empty.
    pub fn value<T: Float>(&self, a: ArrayView2<'_, T>, y: ArrayView2<'_, T>) -> Result<T> {
        self.check_shapes(&a, &y)?;
        let m = T::of(a.ncols() as f64);
        let min_log = T::of(MIN_LOG);
        let log = |x: T| x.ln().max(min_log);
        let total = match self {
            Cost::BinaryCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => {
                Zip::from(&a).and(&y).fold(T::zero(), |sum, &a, &y| {
                    sum - (y * log(a) + (T::one() - y) * log(T::one() - a))
                })
            }
            Cost::CategoricalCrossEntropy => Zip::from(&a)
                .and(&y)
                .fold(T::zero(), |sum, &a, &y| sum - y * log(a)),
            Cost::MeanSquaredError => {
                let sum = Zip::from(&a)
                    .and(&y)
                    .fold(T::zero(), |sum, &a, &y| sum + (a - y) * (a - y));
                sum / T::of(a.nrows() as f64)
            }
        };
        Ok(total / m)
    }

    /// Writes `dA = ∂J/∂A` into `da`; see the module table for the formulas.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the three shapes differ or the batch is empty.
    pub fn gradient<T: Float>(
        &self,
        a: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        mut da: ArrayViewMut2<'_, T>,
    ) -> Result<()> {
        self.check_shapes(&a, &y)?;
        check_destination(&a, &da)?;
        let m = T::of(a.ncols() as f64);
        let eps = T::epsilon();
        let clamp = |x: T| x.max(eps);
        match self {
            Cost::BinaryCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => {
                Zip::from(&mut da).and(&a).and(&y).for_each(|d, &a, &y| {
                    *d = ((T::one() - y) / clamp(T::one() - a) - y / clamp(a)) / m;
                });
            }
            Cost::CategoricalCrossEntropy => {
                Zip::from(&mut da)
                    .and(&a)
                    .and(&y)
                    .for_each(|d, &a, &y| *d = -y / clamp(a) / m);
            }
            Cost::MeanSquaredError => {
                let factor = T::of(2.0) / (m * T::of(a.nrows() as f64));
                Zip::from(&mut da)
                    .and(&a)
                    .and(&y)
                    .for_each(|d, &a, &y| *d = factor * (a - y));
            }
        }
        Ok(())
    }

    /// Writes the fused `dZ[L]` into `dz` when `activation` is [this cost's
    /// partner](Cost::fused_activation) and returns `true`; otherwise leaves `dz` alone and
    /// returns `false`.
    ///
    /// `dZ[L] = (A - Y)/m` for sigmoid with the binary cross-entropies and softmax with
    /// categorical cross-entropy; `dZ[L] = 2/(m n) (A - Y)` for identity with mean squared
    /// error.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the shapes differ or the batch is empty.
    pub fn output_delta<T: Float>(
        &self,
        activation: Activation,
        a: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        mut dz: ArrayViewMut2<'_, T>,
    ) -> Result<bool> {
        self.check_shapes(&a, &y)?;
        check_destination(&a, &dz)?;
        if activation != self.fused_activation() {
            return Ok(false);
        }
        let m = T::of(a.ncols() as f64);
        let factor = match self {
            Cost::MeanSquaredError => T::of(2.0) / (m * T::of(a.nrows() as f64)),
            _ => T::one() / m,
        };
        Zip::from(&mut dz)
            .and(&a)
            .and(&y)
            .for_each(|d, &a, &y| *d = factor * (a - y));
        Ok(true)
    }
}

fn check_destination<T>(a: &ArrayView2<'_, T>, out: &ArrayViewMut2<'_, T>) -> Result<()> {
    if a.dim() != out.dim() {
        return Err(Error::Shape(format!(
            "the gradient buffer is {:?} but the output A is {:?}",
            out.dim(),
            a.dim()
        )));
    }
    Ok(())
}

impl fmt::Display for Cost {
    /// Writes the name that [`FromStr`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cost::BinaryCrossEntropy => "binary-cross-entropy",
            Cost::CategoricalCrossEntropy => "cross-entropy",
            Cost::MultiLabelBinaryCrossEntropy => "multi-label-cross-entropy",
            Cost::MeanSquaredError => "mse",
        })
    }
}

impl FromStr for Cost {
    type Err = Error;

    /// Parses `cross-entropy` (or `categorical-cross-entropy`), `binary-cross-entropy` (or
    /// `bce`), `multi-label-cross-entropy` (or `multi-label-binary-cross-entropy`), `mse` (or
    /// `mean-squared-error`); case-insensitive, with `-` and `_` alike.
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "cross-entropy" | "categorical-cross-entropy" | "cce" => {
                Ok(Cost::CategoricalCrossEntropy)
            }
            "binary-cross-entropy" | "bce" => Ok(Cost::BinaryCrossEntropy),
            "multi-label-cross-entropy" | "multi-label-binary-cross-entropy" | "multilabel" => {
                Ok(Cost::MultiLabelBinaryCrossEntropy)
            }
            "mse" | "mean-squared-error" => Ok(Cost::MeanSquaredError),
            _ => Err(Error::Config(format!(
                "unknown cost '{text}'; expected cross-entropy, binary-cross-entropy, \
                 multi-label-cross-entropy or mse"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
