//! Gradient checking: the analytic gradients of [`Network::backward`] against central finite
//! differences of the cost.
//!
//! For every parameter `θ` (each entry of each `W[l]` and `b[l]`) the numerical derivative is
//! `(J(θ + h) - J(θ - h)) / 2h`, whose error is `O(h²)`. Each entry's relative error is
//!
//! `|analytic - numerical| / max(|analytic| + |numerical|, floor)`
//!
//! where `floor` is `1e-3` times the largest `|analytic| + |numerical|` of the same tensor.
//! Without that floor an entry whose true gradient is, say, `1e-12` would report a relative
//! error near 1 from rounding alone: `J` is a sum of terms near 1, so the difference quotient
//! carries an absolute error of about `1e-16 / h`. Entries at least a thousandth of the
//! tensor's largest are measured purely relatively.
//!
//! Run it in `f64`. In `f32` the rounding error of the difference quotient, about
//! `1e-7 / h`, swamps the comparison.
//!
//! Kinks (ReLU and leaky ReLU at 0, ELU's second derivative at 0) break the comparison where
//! `θ ± h` moves some `Z` across 0, and where a `Z` is exactly 0: ReLU's derivative there is 0
//! by definition, the central difference gives 1/2. Zero biases make exact zeros likely (an
//! example whose ReLU units are all inactive gives the next layer `Z = 0`), so check at random
//! biases. A kink shows up as one entry with a large error.

use ndarray::{Array2, ArrayView2};

use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::network::{ForwardCache, Gradients, Network};

/// Default step `h`: the truncation error `h² |J'''| / 6` is about `2e-11 |J'''|` and the
/// rounding error about `1e-16 / h = 1e-11`, both well below the tolerance for gradients of
/// order `1e-3` and up.
pub const DEFAULT_STEP: f64 = 1e-5;

/// Default pass threshold on the maximum relative error.
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

/// The result for one parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorCheck {
    /// The tensor's name: `W[l]` or `b[l]`, with `l` counted from 1.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The largest relative error over its entries; see the module documentation.
    pub max_relative_error: f64,
    /// The largest absolute difference `|analytic - numerical|`.
    pub max_absolute_error: f64,
    /// The index (flattened, row-major) of the entry with the largest relative error.
    pub worst_entry: usize,
}

/// Compares the analytic gradient of every parameter with central finite differences of `cost`
/// on the batch `X` (`n[0] x m`), `Y` (`n[L] x m`), with step `step`.
///
/// Returns one [`TensorCheck`] per parameter tensor, in the order `W[1], b[1], W[2], ...`.
/// The network is cloned for the perturbations; the caller's copy is not changed.
///
/// # Errors
///
/// [`Error::Shape`] when `X` or `Y` do not fit the network; [`Error::Config`] for a cost that
/// cannot follow the output layer or a step that is not positive and finite.
pub fn check_gradients(
    network: &Network<f64>,
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    cost: Cost,
    step: f64,
) -> Result<Vec<TensorCheck>> {
    if !(step > 0.0 && step.is_finite()) {
        return Err(Error::Config(format!(
            "the finite-difference step must be positive, not {step}"
        )));
    }
    let mut cache = ForwardCache::new();
    network.forward_train(x, &mut cache)?;
    let mut grads = Gradients::new(network).with_input_gradient(false);
    network.backward(&cache, y, cost, &mut grads)?;

    let mut perturbed = network.clone();
    let cost_at = |net: &Network<f64>| -> Result<f64> { cost.value(net.forward(x)?.view(), y) };
    let mut checks = Vec::new();
    for l in 0..network.layers().len() {
        let mut numerical = Array2::zeros(grads.weights[l].dim());
        for index in 0..numerical.len() {
            let (i, j) = (index / numerical.ncols(), index % numerical.ncols());
            let original = network.layers()[l].weights()[[i, j]];
            perturbed.layers_mut()[l].weights_mut()[[i, j]] = original + step;
            let plus = cost_at(&perturbed)?;
            perturbed.layers_mut()[l].weights_mut()[[i, j]] = original - step;
            let minus = cost_at(&perturbed)?;
            perturbed.layers_mut()[l].weights_mut()[[i, j]] = original;
            numerical[[i, j]] = (plus - minus) / (2.0 * step);
        }
        checks.push(compare(
            format!("W[{}]", l + 1),
            grads.weights[l].shape().to_vec(),
            grads.weights[l].iter().copied(),
            numerical.iter().copied(),
        ));

        let mut numerical = Vec::with_capacity(grads.biases[l].len());
        for i in 0..grads.biases[l].len() {
            let original = network.layers()[l].bias()[i];
            perturbed.layers_mut()[l].bias_mut()[i] = original + step;
            let plus = cost_at(&perturbed)?;
            perturbed.layers_mut()[l].bias_mut()[i] = original - step;
            let minus = cost_at(&perturbed)?;
            perturbed.layers_mut()[l].bias_mut()[i] = original;
            numerical.push((plus - minus) / (2.0 * step));
        }
        checks.push(compare(
            format!("b[{}]", l + 1),
            vec![grads.biases[l].len()],
            grads.biases[l].iter().copied(),
            numerical.into_iter(),
        ));
    }
    Ok(checks)
}

fn compare(
    name: String,
    shape: Vec<usize>,
    analytic: impl Iterator<Item = f64>,
    numerical: impl Iterator<Item = f64>,
) -> TensorCheck {
    let pairs: Vec<(f64, f64)> = analytic.zip(numerical).collect();
    let scale = pairs
        .iter()
        .map(|(a, n)| a.abs() + n.abs())
        .fold(0.0, f64::max);
    let floor = (1e-3 * scale).max(f64::MIN_POSITIVE);
    let mut check = TensorCheck {
        name,
        shape,
        max_relative_error: 0.0,
        max_absolute_error: 0.0,
        worst_entry: 0,
    };
    for (index, (a, n)) in pairs.into_iter().enumerate() {
        let difference = (a - n).abs();
        // A NaN anywhere must fail the check, so it is carried through as NaN, not dropped
        // by max.
        let relative = difference / (a.abs() + n.abs()).max(floor);
        if relative.is_nan() || relative > check.max_relative_error {
            check.max_relative_error = relative;
            check.worst_entry = index;
        }
        if difference.is_nan() || difference > check.max_absolute_error {
            check.max_absolute_error = difference;
        }
        if check.max_relative_error.is_nan() {
            break;
        }
    }
    check
}

#[cfg(test)]
mod tests;
