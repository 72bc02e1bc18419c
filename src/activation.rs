//! Activation functions `A = g(Z)` and their backward passes `dZ = dA ⊙ g'(Z)`.
//!
//! Shapes: `Z`, `A`, `dA` and `dZ` are all `n x m`, one column per example. Every function but
//! softmax acts on each element alone; softmax acts on each column.
//!
//! Each backward pass is written in terms of the output `A` where the derivative can be, as
//! scikit-learn does: `A` is kept for the next layer's `dW` anyway, so the forward pass need not
//! also keep `Z`. Only GELU and SiLU need `Z` ([`Activation::needs_pre_activation`]).
//!
//! | activation | `A = g(Z)` | `dZ` from `dA` |
//! |---|---|---|
//! | identity | `z` | `dA` |
//! | ReLU | `max(z, 0)` | `dA ⊙ I(Z > 0)`, so the derivative at 0 is 0 |
//! | leaky ReLU | `z` if `z > 0`, else `slope z` | `dA` if `a > 0`, else `slope dA` |
//! | ELU | `z` if `z > 0`, else `alpha (e^z - 1)` | `dA` if `a > 0`, else `dA (a + alpha)` |
//! | GELU | `z Φ(z)` (exact, with `erf`) | `dA (Φ(z) + z φ(z))` |
//! | SiLU | `z σ(z)` | `dA σ(z) (1 + z (1 - σ(z)))` |
//! | softplus | `ln(1 + e^z)` | `dA (1 - e^(-a))`, which is `dA σ(z)` |
//! | sigmoid | `1 / (1 + e^(-z))` | `dA ⊙ A ⊙ (1 - A)` |
//! | tanh | `tanh z` | `dA ⊙ (1 - A ⊙ A)` |
//! | softmax | `e^(z_i) / Σ_k e^(z_k)` per column | `A ⊙ (dA - broadcast(Σ_rows dA ⊙ A))` |
//!
//! Numerical care: softmax subtracts each column's maximum before `exp`, so softmax of
//! `[1000, 0, -1000]` is `[1, 0, 0]`; sigmoid takes `exp` of `-|z|` only, so sigmoid(±1000) is 1
//! or 0 and never NaN; softplus is computed as `max(z, 0) + ln(1 + e^(-|z|))`; ELU and softplus
//! use `expm1` and `ln_1p` near zero. All outputs are finite for finite inputs.
//!
//! ```
//! use feedforward::Activation;
//! use ndarray::array;
//!
//! let z = array![[1000.0f64, 0.0], [0.0, 1.0], [-1000.0, 0.0]];
//! let a = Activation::Softmax.forward(z.view());
//! assert_eq!(a[[0, 0]], 1.0);
//! assert!(a.iter().all(|x| x.is_finite()));
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::rows;

/// An activation function applied after a layer's affine map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `g(z) = z`; the output of a regression network.
    Identity,
    /// Rectified linear unit, `max(z, 0)`.
    Relu,
    /// `z` for positive `z`, `slope z` otherwise. PyTorch's default slope is 0.01.
    LeakyRelu {
        /// Slope for negative inputs, in `[0, 1)`.
        slope: f64,
    },
    /// Exponential linear unit, `z` for positive `z`, `alpha (e^z - 1)` otherwise.
    Elu {
        /// Value the output approaches as `z → -∞` is `-alpha`; positive. PyTorch's default is 1.
        alpha: f64,
    },
    /// Gaussian error linear unit, `z Φ(z)` with the exact normal CDF `Φ` (PyTorch's default
    /// form, not the tanh approximation).
    Gelu,
    /// Sigmoid linear unit (swish), `z σ(z)`.
    Silu,
    /// `ln(1 + e^z)`, a smooth ReLU.
    Softplus,
    /// Logistic sigmoid `σ(z) = 1 / (1 + e^(-z))`; the output for binary and multi-label
    /// classification.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Per-column softmax; the output for multi-class classification.
    Softmax,
}

impl Activation {
    /// Leaky ReLU with PyTorch's default slope, 0.01.
    pub const LEAKY_RELU_DEFAULT: Activation = Activation::LeakyRelu { slope: 0.01 };
    /// ELU with PyTorch's default alpha, 1.
    pub const ELU_DEFAULT: Activation = Activation::Elu { alpha: 1.0 };

    /// All activations, with default parameters; for tests and help text.
    pub const ALL: [Activation; 10] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LEAKY_RELU_DEFAULT,
        Activation::ELU_DEFAULT,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ];

    /// Checks the parameters: a leaky-ReLU slope in `[0, 1)` and a positive, finite ELU alpha.
    ///
    /// The backward passes of leaky ReLU and ELU read the sign of `z` off the output `a`, which
    /// is only valid for these ranges.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Activation::LeakyRelu { slope } if !(0.0..1.0).contains(&slope) => Err(Error::Config(
                format!("leaky ReLU slope {slope} is outside [0, 1); use a value such as 0.01"),
            )),
            Activation::Elu { alpha } if !(alpha > 0.0 && alpha.is_finite()) => Err(Error::Config(
                format!("ELU alpha {alpha} must be positive, such as 1.0"),
            )),
            _ => Ok(()),
        }
    }

    /// True when the backward pass needs the pre-activation `Z` as well as `A` (GELU and SiLU).
    pub fn needs_pre_activation(&self) -> bool {
        matches!(self, Activation::Gelu | Activation::Silu)
    }

    /// Returns `A = g(Z)` as a new array; see [`Activation::forward_inplace`].
    pub fn forward<T: Float>(&self, z: ArrayView2<'_, T>) -> Array2<T> {
        let mut a = z.to_owned();
        self.forward_inplace(a.view_mut());
        a
    }

    /// Overwrites `Z` with `A = g(Z)`. Shape `n x m`, one column per example.
    pub fn forward_inplace<T: Float>(&self, x: ArrayViewMut2<'_, T>) {
        match *self {
            Activation::Identity => {}
            Activation::Relu => map_parallel(x, relu),
            Activation::LeakyRelu { slope } => {
                let slope = T::of(slope);
                map_parallel(x, |z| leaky_relu(z, slope));
            }
            Activation::Elu { alpha } => {
                let alpha = T::of(alpha);
                map_parallel(x, |z| elu(z, alpha));
            }
            Activation::Gelu => map_parallel(x, gelu),
            Activation::Silu => map_parallel(x, silu),
            Activation::Softplus => map_parallel(x, softplus),
            Activation::Sigmoid => map_parallel(x, sigmoid),
            Activation::Tanh => map_parallel(x, T::tanh),
            Activation::Softmax => softmax_columns_inplace(x),
        }
    }

    /// Returns `dZ` from `dA`, the output `A` and, for GELU and SiLU, the pre-activation `Z`.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the shapes differ, or when `z` is `None` for an activation that
    /// [needs it](Activation::needs_pre_activation).
    pub fn backward<T: Float>(
        &self,
        z: Option<ArrayView2<'_, T>>,
        a: ArrayView2<'_, T>,
        da: ArrayView2<'_, T>,
    ) -> Result<Array2<T>> {
        let mut dz = da.to_owned();
        self.backward_inplace(z, a, dz.view_mut())?;
        Ok(dz)
    }

    /// Overwrites `dA` with `dZ`; see [`Activation::backward`].
    pub fn backward_inplace<T: Float>(
        &self,
        z: Option<ArrayView2<'_, T>>,
        a: ArrayView2<'_, T>,
        grad: ArrayViewMut2<'_, T>,
    ) -> Result<()> {
        if a.dim() != grad.dim() {
            return Err(Error::Shape(format!(
                "{self} backward: A is {:?} but dA is {:?}",
                a.dim(),
                grad.dim()
            )));
        }
        if self.needs_pre_activation() {
            let z = match z {
                Some(z) if z.dim() == a.dim() => z,
                Some(z) => {
                    return Err(Error::Shape(format!(
                        "{self} backward: Z is {:?} but A is {:?}",
                        z.dim(),
                        a.dim()
                    )));
                }
                None => {
                    return Err(Error::Shape(format!(
                        "{self} backward needs the pre-activation Z, which was not kept"
                    )));
                }
            };
            let derivative: fn(T) -> T = match self {
                Activation::Gelu => gelu_derivative,
                _ => silu_derivative,
            };
            scale_parallel(grad, z, derivative);
            return Ok(());
        }
        match *self {
            Activation::Identity => {}
            Activation::Relu => {
                scale_parallel(grad, a, |a| relu_derivative_from_output(a));
            }
            Activation::LeakyRelu { slope } => {
                let slope = T::of(slope);
                scale_parallel(grad, a, |a| leaky_relu_derivative_from_output(a, slope));
            }
            Activation::Elu { alpha } => {
                let alpha = T::of(alpha);
                scale_parallel(grad, a, |a| elu_derivative_from_output(a, alpha));
            }
            Activation::Softplus => {
                scale_parallel(grad, a, |a| softplus_derivative_from_output(a));
            }
            Activation::Sigmoid => {
                scale_parallel(grad, a, |a| sigmoid_derivative_from_output(a));
            }
            Activation::Tanh => {
                scale_parallel(grad, a, |a| tanh_derivative_from_output(a));
            }
            Activation::Softmax => softmax_backward_inplace(a, grad),
            Activation::Gelu | Activation::Silu => unreachable!("handled above"),
        }
        Ok(())
    }
}

/// Applies `f` to every element of `x`, split by rows across the product threads when `x` is
/// large ([`rows::map_row_blocks`]). Each element is computed alone, so the split does not
/// change the result.
fn map_parallel<T: Float>(x: ArrayViewMut2<'_, T>, f: impl Fn(T) -> T + Sync) {
    rows::map_row_blocks(x, &|_, mut block| block.mapv_inplace(&f));
}

/// Sets `g = g ⊙ f(v)` elementwise, split by rows like [`map_parallel`].
fn scale_parallel<T: Float>(
    g: ArrayViewMut2<'_, T>,
    v: ArrayView2<'_, T>,
    f: impl Fn(T) -> T + Sync,
) {
    rows::zip_row_blocks(g, v, &|mut g, v| {
        Zip::from(&mut g).and(&v).for_each(|g, &v| *g *= f(v));
    });
}

impl fmt::Display for Activation {
    /// Writes the name that [`FromStr`] parses back, for instance `relu` or `leaky_relu(0.01)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => f.write_str("identity"),
            Activation::Relu => f.write_str("relu"),
            Activation::LeakyRelu { slope } => write!(f, "leaky_relu({slope})"),
            Activation::Elu { alpha } => write!(f, "elu({alpha})"),
            Activation::Gelu => f.write_str("gelu"),
            Activation::Silu => f.write_str("silu"),
            Activation::Softplus => f.write_str("softplus"),
            Activation::Sigmoid => f.write_str("sigmoid"),
            Activation::Tanh => f.write_str("tanh"),
            Activation::Softmax => f.write_str("softmax"),
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses a name, case-insensitively, with `-` and `_` alike: `identity` (or `linear`),
    /// `relu`, `leaky_relu` (slope 0.01) or `leaky_relu(0.2)`, `elu` (alpha 1) or `elu(0.5)`,
    /// `gelu`, `silu` (or `swish`), `softplus`, `sigmoid` (or `logistic`), `tanh`, `softmax`.
    fn from_str(text: &str) -> Result<Self> {
        let normalized = text.trim().to_ascii_lowercase();
        let (name, parameter) = match normalized.split_once('(') {
            Some((name, rest)) => {
                let value = rest.strip_suffix(')').ok_or_else(|| {
                    Error::Config(format!("activation '{text}' is missing its closing ')'"))
                })?;
                let value: f64 = value.trim().parse().map_err(|_| {
                    Error::Config(format!(
                        "activation '{text}': '{value}' is not a number; write for instance leaky_relu(0.01)"
                    ))
                })?;
                (name.trim().replace('-', "_"), Some(value))
            }
            None => (normalized.replace('-', "_"), None),
        };
        let activation = match (name.as_str(), parameter) {
            ("identity" | "linear", None) => Activation::Identity,
            ("relu", None) => Activation::Relu,
            ("leaky_relu" | "leakyrelu", slope) => Activation::LeakyRelu {
                slope: slope.unwrap_or(0.01),
            },
            ("elu", alpha) => Activation::Elu {
                alpha: alpha.unwrap_or(1.0),
            },
            ("gelu", None) => Activation::Gelu,
            ("silu" | "swish", None) => Activation::Silu,
            ("softplus", None) => Activation::Softplus,
            ("sigmoid" | "logistic", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("softmax", None) => Activation::Softmax,
            _ => {
                return Err(Error::Config(format!(
                    "unknown activation '{text}'; expected one of identity, relu, leaky_relu, \
                     leaky_relu(SLOPE), elu, elu(ALPHA), gelu, silu, softplus, sigmoid, tanh, softmax"
                )));
            }
        };
        activation.validate()?;
        Ok(activation)
    }
}

/// `max(z, 0)`.
pub fn relu<T: Float>(z: T) -> T {
    if z > T::zero() { z } else { T::zero() }
}

/// ReLU's derivative from its output: 1 where `a > 0` (exactly where `z > 0`), else 0.
pub fn relu_derivative_from_output<T: Float>(a: T) -> T {
    if a > T::zero() { T::one() } else { T::zero() }
}

/// `z` for `z > 0`, else `slope z`.
pub fn leaky_relu<T: Float>(z: T, slope: T) -> T {
    if z > T::zero() { z } else { slope * z }
}

/// Leaky ReLU's derivative from its output; for a slope in `[0, 1)`, `a > 0` exactly where
/// `z > 0`.
pub fn leaky_relu_derivative_from_output<T: Float>(a: T, slope: T) -> T {
    if a > T::zero() { T::one() } else { slope }
}

/// `z` for `z > 0`, else `alpha (e^z - 1)`, computed with `expm1` so small `|z|` keeps its
/// precision.
pub fn elu<T: Float>(z: T, alpha: T) -> T {
    if z > T::zero() { z } else { alpha * z.exp_m1() }
}

/// ELU's derivative from its output: 1 for `a > 0`, else `alpha e^z = a + alpha`.
pub fn elu_derivative_from_output<T: Float>(a: T, alpha: T) -> T {
    if a > T::zero() { T::one() } else { a + alpha }
}

/// The standard normal CDF `Φ(z) = (1 + erf(z / √2)) / 2`, evaluated in `f64`.
fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2))
}

/// The standard normal density `φ(z) = e^(-z²/2) / √(2π)`.
fn normal_pdf(z: f64) -> f64 {
    const INV_SQRT_TAU: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_TAU * (-0.5 * z * z).exp()
}

/// `z Φ(z)`; exact for large `|z|`: `Φ` saturates at 0 and 1 without overflow.
pub fn gelu<T: Float>(z: T) -> T {
    let x = z.to_f64().unwrap_or(f64::NAN);
    T::of(x * normal_cdf(x))
}

/// GELU's derivative `Φ(z) + z φ(z)`; it needs `z`, since `z Φ(z)` has no closed-form inverse.
pub fn gelu_derivative<T: Float>(z: T) -> T {
    let x = z.to_f64().unwrap_or(f64::NAN);
    T::of(normal_cdf(x) + x * normal_pdf(x))
}

/// `z σ(z)`.
pub fn silu<T: Float>(z: T) -> T {
    z * sigmoid(z)
}

/// SiLU's derivative `σ(z) (1 + z (1 - σ(z)))`; it needs `z`, since `z σ(z)` is not invertible.
pub fn silu_derivative<T: Float>(z: T) -> T {
    let s = sigmoid(z);
    s * (T::one() + z * (T::one() - s))
}

/// `ln(1 + e^z)` as `max(z, 0) + ln(1 + e^(-|z|))`, so `exp` never overflows and
/// softplus(1000) = 1000.
pub fn softplus<T: Float>(z: T) -> T {
    relu(z) + (-z.abs()).exp().ln_1p()
}

/// Softplus's derivative from its output, `σ(z) = 1 - e^(-a)`, with `expm1` so that tiny
/// outputs (very negative `z`) keep their precision.
pub fn softplus_derivative_from_output<T: Float>(a: T) -> T {
    -(-a).exp_m1()
}

/// `σ(z) = 1 / (1 + e^(-z))`. For negative `z` it is computed as `e^z / (1 + e^z)`, so `exp`
/// only receives non-positive arguments: σ(-1000) = 0 and σ(1000) = 1, never NaN.
pub fn sigmoid<T: Float>(z: T) -> T {
    if z >= T::zero() {
        T::one() / (T::one() + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::one() + e)
    }
}

/// Sigmoid's derivative from its output, `a (1 - a)`.
pub fn sigmoid_derivative_from_output<T: Float>(a: T) -> T {
    a * (T::one() - a)
}

/// Tanh's derivative from its output, `1 - a²`.
pub fn tanh_derivative_from_output<T: Float>(a: T) -> T {
    T::one() - a * a
}

/// Softmax of each column in place: `a_i = e^(z_i - max_k z_k) / Σ_j e^(z_j - max_k z_k)`.
///
/// Subtracting the column maximum leaves the result unchanged and keeps every `exp` argument
/// at most 0, so nothing overflows and the denominator is at least 1. A column holding `+inf`
/// or NaN gives NaN, as the formula does.
pub fn softmax_columns_inplace<T: Float>(mut x: ArrayViewMut2<'_, T>) {
    for mut column in x.columns_mut() {
        let max = column.fold(T::neg_infinity(), |m, &v| m.max(v));
        let mut sum = T::zero();
        column.mapv_inplace(|v| {
            let e = (v - max).exp();
            sum += e;
            e
        });
        column.mapv_inplace(|e| e / sum);
    }
}

/// Softmax's backward pass per column, in place: `dZ = A ⊙ (dA - Σ_rows (dA ⊙ A))`.
///
/// This is the Jacobian-vector product with `∂a_p/∂z_j = a_p (δ_pj - a_j)`, computed in
/// `O(n)` per column without forming the `n x n` Jacobian.
pub fn softmax_backward_inplace<T: Float>(a: ArrayView2<'_, T>, mut grad: ArrayViewMut2<'_, T>) {
    for (a_column, mut g_column) in a.columns().into_iter().zip(grad.columns_mut()) {
        let dot = a_column
            .iter()
            .zip(g_column.iter())
            .fold(T::zero(), |s, (&a, &g)| s + a * g);
        Zip::from(&mut g_column)
            .and(&a_column)
            .for_each(|g, &a| *g = a * (*g - dot));
    }
}

#[cfg(test)]
mod tests;
