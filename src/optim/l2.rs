//! The L2 penalty on the weights (ridge regularization, coupled weight decay).
//!
//! With penalty strength `λ`, the cost becomes
//!
//! `J + (λ / 2) Σ_l ‖W[l]‖²_F`, so that `dW[l] ← dW[l] + λ W[l]`,
//!
//! summed over the weight matrices of every layer. Biases are not penalized.
//!
//! The factor `1/2` makes the gradient term exactly `λ W`, so `λ` here equals the
//! `weight_decay` of PyTorch's `torch.optim.SGD`, which adds `λ θ` to each gradient (for every
//! parameter, biases included, unless they are put in a separate group). Other conventions
//! convert as follows:
//!
//! - Keras `kernel_regularizer=l2(c)` adds `c ‖W‖²` without the `1/2`, whose gradient is
//!   `2 c W`, so it equals `λ = 2c` here.
//! - The `(λ' / 2m) Σ ‖W‖²` of many course notes, with `m` the batch size, equals `λ = λ' / m`
//!   here, because this crate's costs already average over the batch.
//!
//! The penalty couples to the optimizer: under Adam it is divided by `√v̂` like any gradient.
//! For weight decay that does not pass through the moment estimates, use
//! [`OptimizerConfig::AdamW`](crate::optim::OptimizerConfig::AdamW) instead.

use ndarray::Zip;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::network::{Gradients, Network};

/// Adds `λ W[l]` to every `dW[l]` in `grads` and returns the penalty `(λ / 2) Σ_l ‖W[l]‖²_F`
/// to add to the cost.
///
/// A `lambda` of 0 returns 0 and leaves `grads` unchanged.
///
/// # Errors
///
/// [`Error::Config`] for a negative or non-finite `lambda`; [`Error::Shape`] when `grads` does
/// not match the network's weight shapes. On error, `grads` is unchanged.
pub fn add_l2_penalty<T: Float>(
    network: &Network<T>,
    grads: &mut Gradients<T>,
    lambda: f64,
) -> Result<T> {
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(Error::Config(format!(
            "L2 penalty {lambda:?} must be finite and non-negative, such as 1e-4"
        )));
    }
    let layers = network.layers();
    if grads.weights.len() != layers.len() {
        return Err(Error::Shape(format!(
            "the network has {} layers but the gradients have {} dW",
            layers.len(),
            grads.weights.len()
        )));
    }
    for (index, (layer, dw)) in layers.iter().zip(&grads.weights).enumerate() {
        if layer.weights().dim() != dw.dim() {
            return Err(Error::Shape(format!(
                "dW of layer {} is {:?}, but the layer's weights are {:?}",
                index + 1,
                dw.dim(),
                layer.weights().dim()
            )));
        }
    }
    if lambda == 0.0 {
        return Ok(T::zero());
    }

    let lambda_t = T::of(lambda);
    let mut squares = T::zero();
    for (layer, dw) in layers.iter().zip(grads.weights.iter_mut()) {
        Zip::from(dw).and(layer.weights()).for_each(|g, &w| {
            squares += w * w;
            *g += lambda_t * w;
        });
    }
    Ok(T::of(lambda / 2.0) * squares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::layer::Dense;
    use ndarray::{Array2, array};

    fn two_layer_network() -> Network<f64> {
        Network::new(vec![
            Dense::new(
                array![[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]],
                array![10.0, 20.0, 30.0],
                Activation::Relu,
            )
            .unwrap(),
            Dense::new(array![[2.0, -1.0, 0.5]], array![-5.0], Activation::Identity).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn penalty_value_and_gradient() {
        let network = two_layer_network();
        let mut grads = Gradients::new(&network);
        grads.weights[0].fill(1.0);
        grads.biases[0].fill(7.0);
        let penalty = add_l2_penalty(&network, &mut grads, 0.1).unwrap();

        // ‖W[1]‖² = 1 + 4 + 0.25 + 9 + 0 + 1 = 15.25; ‖W[2]‖² = 4 + 1 + 0.25 = 5.25.
        assert!((penalty - 0.05 * 20.5).abs() < 1e-15, "{penalty}");
        let expected_first = array![[1.1, 0.8], [1.05, 1.3], [1.0, 1.1]];
        for (got, want) in grads.weights[0].iter().zip(expected_first.iter()) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        assert_eq!(grads.weights[1], array![[0.2, -0.1, 0.05]]);
    }

    #[test]
    fn biases_are_not_penalized() {
        let network = two_layer_network();
        let mut grads = Gradients::new(&network);
        grads.biases[0].fill(7.0);
        add_l2_penalty(&network, &mut grads, 0.5).unwrap();
        assert_eq!(grads.biases[0], array![7.0, 7.0, 7.0]);
        assert_eq!(grads.biases[1], array![0.0]);
    }

    #[test]
    fn gradient_matches_finite_difference() {
        let network = two_layer_network();
        let lambda = 0.3;
        let mut grads = Gradients::new(&network);
        add_l2_penalty(&network, &mut grads, lambda).unwrap();
        let h = 1e-6;
        for (row, col) in [(0, 0), (1, 1), (2, 0)] {
            let mut shifted = network.clone();
            shifted.layers_mut()[0].weights_mut()[[row, col]] += h;
            let mut scratch = Gradients::new(&shifted);
            let above = add_l2_penalty(&shifted, &mut scratch, lambda).unwrap();
            shifted.layers_mut()[0].weights_mut()[[row, col]] -= 2.0 * h;
            let mut scratch = Gradients::new(&shifted);
            let below = add_l2_penalty(&shifted, &mut scratch, lambda).unwrap();
            let numeric = (above - below) / (2.0 * h);
            let analytic = grads.weights[0][[row, col]];
            assert!((numeric - analytic).abs() < 1e-8, "{numeric} vs {analytic}");
        }
    }

    #[test]
    fn zero_lambda_changes_nothing() {
        let network = two_layer_network();
        let mut grads = Gradients::new(&network);
        grads.weights[1].fill(3.0);
        let before = grads.weights.clone();
        assert_eq!(add_l2_penalty(&network, &mut grads, 0.0).unwrap(), 0.0);
        assert_eq!(grads.weights, before);
    }

    #[test]
    fn invalid_lambda_is_error() {
        let network = two_layer_network();
        let mut grads = Gradients::new(&network);
        for lambda in [-0.1, f64::NAN, f64::INFINITY] {
            let error = add_l2_penalty(&network, &mut grads, lambda).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{lambda}: {error}");
        }
    }

    #[test]
    fn mismatched_gradients_are_error() {
        let network = two_layer_network();
        let mut grads = Gradients::new(&network);
        grads.weights[1] = Array2::zeros((2, 3));
        let error = add_l2_penalty(&network, &mut grads, 0.1).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
        assert!(error.to_string().contains("dW of layer 2"), "{error}");
    }
}
