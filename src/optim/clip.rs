//! Gradient clipping by global norm, as PyTorch's `torch.nn.utils.clip_grad_norm_` with the
//! default 2-norm.
//!
//! With `‖g‖ = √(Σ dW² + Σ db²)` over every layer ([`Gradients::global_norm`]), every `dW` and
//! `db` is multiplied by `max_norm / (‖g‖ + 1e-6)` when that coefficient is below 1. The
//! gradient then points in the same direction with norm just under `max_norm`. The `1e-6`
//! guards the division and is PyTorch's constant. The coefficient drops below 1 as soon as
//! `‖g‖ > max_norm - 1e-6`, so a norm equal to `max_norm` is scaled very slightly, as in
//! PyTorch.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::network::Gradients;

/// Scales `grads` down to a global norm of about `max_norm` when it exceeds that, and returns
/// the norm before clipping.
///
/// A non-finite norm (from a NaN or infinite gradient entry) is returned with `grads` left
/// unchanged, so that the caller can detect the divergence. PyTorch would scale by the
/// coefficient, which turns every entry into NaN or 0.
///
/// # Errors
///
/// [`Error::Config`] when `max_norm` is not positive and finite.
pub fn clip_global_norm<T: Float>(grads: &mut Gradients<T>, max_norm: f64) -> Result<T> {
    if !(max_norm > 0.0 && max_norm.is_finite()) {
        return Err(Error::Config(format!(
            "gradient clipping max norm {max_norm:?} must be positive and finite, such as 1.0"
        )));
    }
    let norm = grads.global_norm();
    let Some(norm_f64) = norm.to_f64().filter(|value| value.is_finite()) else {
        return Ok(norm);
    };
    let coefficient = max_norm / (norm_f64 + 1e-6);
    if coefficient < 1.0 {
        let coefficient = T::of(coefficient);
        for dw in &mut grads.weights {
            dw.mapv_inplace(|g| g * coefficient);
        }
        for db in &mut grads.biases {
            db.mapv_inplace(|g| g * coefficient);
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::network::Network;
    use crate::rng::Rng;

    /// Gradients of a 2-3-1 network filled with 3 in every `dW` and 4 in every `db` entry.
    fn filled_gradients() -> Gradients<f64> {
        let network = Network::<f64>::random(
            &[2, 3, 1],
            &[Activation::Tanh, Activation::Identity],
            &mut Rng::new(5),
        )
        .unwrap();
        let mut grads = Gradients::new(&network);
        for dw in &mut grads.weights {
            dw.fill(3.0);
        }
        for db in &mut grads.biases {
            db.fill(4.0);
        }
        grads
    }

    #[test]
    fn large_norm_is_scaled_to_max() {
        let mut grads = filled_gradients();
        let original = grads.clone();
        // 9 weights of 3 and 4 biases of 4: √(9·9 + 4·16) = √145.
        let norm = clip_global_norm(&mut grads, 2.0).unwrap();
        assert!((norm - 145f64.sqrt()).abs() < 1e-12, "{norm}");

        let coefficient = 2.0 / (145f64.sqrt() + 1e-6);
        let after = grads.global_norm();
        assert!((after - 2.0).abs() < 1e-6, "{after}");
        assert!(after < 2.0, "{after}");
        for (clipped, before) in grads.weights.iter().zip(&original.weights) {
            for (&c, &b) in clipped.iter().zip(before.iter()) {
                assert!(
                    (c - b * coefficient).abs() < 1e-15,
                    "{c} vs {}",
                    b * coefficient
                );
            }
        }
        for (clipped, before) in grads.biases.iter().zip(&original.biases) {
            for (&c, &b) in clipped.iter().zip(before.iter()) {
                assert!(
                    (c - b * coefficient).abs() < 1e-15,
                    "{c} vs {}",
                    b * coefficient
                );
            }
        }
    }

    #[test]
    fn small_norm_is_unchanged() {
        let mut grads = filled_gradients();
        let original = grads.clone();
        let norm = clip_global_norm(&mut grads, 100.0).unwrap();
        assert!((norm - 145f64.sqrt()).abs() < 1e-12);
        assert_eq!(grads.weights, original.weights);
        assert_eq!(grads.biases, original.biases);
    }

    #[test]
    fn non_finite_norm_is_returned_unchanged() {
        let mut grads = filled_gradients();
        grads.weights[0][[0, 0]] = f64::NAN;
        let norm = clip_global_norm(&mut grads, 1.0).unwrap();
        assert!(norm.is_nan());
        assert_eq!(grads.biases[0][0], 4.0);

        grads.weights[0][[0, 0]] = f64::INFINITY;
        let norm = clip_global_norm(&mut grads, 1.0).unwrap();
        assert_eq!(norm, f64::INFINITY);
        assert_eq!(grads.weights[1][[0, 0]], 3.0);
    }

    #[test]
    fn clipping_works_in_f32() {
        let network =
            Network::<f32>::random(&[4, 2], &[Activation::Identity], &mut Rng::new(6)).unwrap();
        let mut grads = Gradients::new(&network);
        grads.weights[0].fill(10.0);
        let norm = clip_global_norm(&mut grads, 1.0).unwrap();
        // 8 weights of 10: √800.
        assert!((norm - 800f32.sqrt()).abs() < 1e-4, "{norm}");
        assert!((grads.global_norm() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn invalid_max_norm_is_error() {
        let mut grads = filled_gradients();
        for max_norm in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = clip_global_norm(&mut grads, max_norm).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{max_norm}: {error}");
        }
    }
}
