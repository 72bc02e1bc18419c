//! Weight initializers; biases always start at zero.
//!
//! For a layer with `fan_in = n[l-1]` inputs and `fan_out = n[l]` outputs:
//!
//! | initializer | distribution of each `W[l]` entry |
//! |---|---|
//! | He normal | `N(0, 2 / fan_in)` |
//! | He uniform | `U(-√(6 / fan_in), √(6 / fan_in))` |
//! | Xavier (Glorot) normal | `N(0, 2 / (fan_in + fan_out))` |
//! | Xavier (Glorot) uniform | `U(-√(6 / (fan_in + fan_out)), √(6 / (fan_in + fan_out)))` |
//!
//! He keeps the variance of ReLU-like activations constant from layer to layer (He et al.,
//! 2015), so it is the default for ReLU, leaky ReLU, ELU, GELU, SiLU and softplus layers. Xavier
//! keeps it for activations that are linear near zero (Glorot and Bengio, 2010), so it is the
//! default for sigmoid, tanh, softmax and identity layers.

use std::fmt;
use std::str::FromStr;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::rng::Rng;

/// A weight initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `N(0, 2 / fan_in)`.
    HeNormal,
    /// `U(-√(6 / fan_in), √(6 / fan_in))`.
    HeUniform,
    /// `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// `U(-√(6 / (fan_in + fan_out)), √(6 / (fan_in + fan_out)))`.
    XavierUniform,
}

impl Init {
    /// The default for a layer with `activation`: He normal for ReLU-like activations, Xavier
    /// normal for the others.
    pub fn default_for(activation: Activation) -> Init {
        match activation {
            Activation::Relu
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. }
            | Activation::Gelu
            | Activation::Silu
            | Activation::Softplus => Init::HeNormal,
            Activation::Sigmoid | Activation::Tanh | Activation::Softmax | Activation::Identity => {
                Init::XavierNormal
            }
        }
    }

    /// Returns a `fan_out x fan_in` weight matrix drawn from `rng`.
    pub fn weights<T: Float>(&self, fan_in: usize, fan_out: usize, rng: &mut Rng) -> Array2<T> {
        let fan_in_f = fan_in.max(1) as f64;
        let fan_sum = (fan_in + fan_out).max(1) as f64;
        // Row-major fill order, so the same seed gives the same matrix on every platform.
        match self {
            Init::HeNormal => {
                let std = (2.0 / fan_in_f).sqrt();
                Array2::from_shape_simple_fn((fan_out, fan_in), || T::of(std * rng.normal()))
            }
            Init::XavierNormal => {
                let std = (2.0 / fan_sum).sqrt();
                Array2::from_shape_simple_fn((fan_out, fan_in), || T::of(std * rng.normal()))
            }
            Init::HeUniform => {
                let limit = (6.0 / fan_in_f).sqrt();
                Array2::from_shape_simple_fn((fan_out, fan_in), || {
                    T::of(rng.uniform_range(-limit, limit))
                })
            }
            Init::XavierUniform => {
                let limit = (6.0 / fan_sum).sqrt();
                Array2::from_shape_simple_fn((fan_out, fan_in), || {
                    T::of(rng.uniform_range(-limit, limit))
                })
            }
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Init::HeNormal => "he-normal",
            Init::HeUniform => "he-uniform",
            Init::XavierNormal => "xavier-normal",
            Init::XavierUniform => "xavier-uniform",
        })
    }
}

impl FromStr for Init {
    type Err = Error;

    /// Parses `he-normal`, `he-uniform`, `xavier-normal` (or `glorot-normal`), `xavier-uniform`
    /// (or `glorot-uniform`); case-insensitive, with `-` and `_` alike.
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "he-normal" | "kaiming-normal" => Ok(Init::HeNormal),
            "he-uniform" | "kaiming-uniform" => Ok(Init::HeUniform),
            "xavier-normal" | "glorot-normal" => Ok(Init::XavierNormal),
            "xavier-uniform" | "glorot-uniform" => Ok(Init::XavierUniform),
            _ => Err(Error::Config(format!(
                "unknown initializer '{text}'; expected he-normal, he-uniform, xavier-normal \
                 or xavier-uniform"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variance(w: &Array2<f64>) -> f64 {
        let mean = w.mean().unwrap();
        w.mapv(|x| (x - mean).powi(2)).mean().unwrap()
    }

    #[test]
    fn variances_match_formulas() {
        let mut rng = Rng::new(1);
        let (fan_in, fan_out) = (400, 300);
        let cases = [
            (Init::HeNormal, 2.0 / 400.0),
            (Init::HeUniform, 2.0 / 400.0),
            (Init::XavierNormal, 2.0 / 700.0),
            (Init::XavierUniform, 2.0 / 700.0),
        ];
        for (init, expected) in cases {
            let w: Array2<f64> = init.weights(fan_in, fan_out, &mut rng);
            assert_eq!(w.dim(), (fan_out, fan_in));
            let v = variance(&w);
            assert!(
                (v / expected - 1.0).abs() < 0.02,
                "{init}: {v} vs {expected}"
            );
            assert!(w.mean().unwrap().abs() < 0.002, "{init}");
        }
    }

    #[test]
    fn uniform_stays_within_limit() {
        let mut rng = Rng::new(2);
        let w: Array2<f64> = Init::HeUniform.weights(6, 50, &mut rng);
        assert!(w.iter().all(|x| x.abs() <= 1.0));
    }

    #[test]
    fn same_seed_same_weights() {
        let a: Array2<f32> = Init::HeNormal.weights(10, 5, &mut Rng::new(3));
        let b: Array2<f32> = Init::HeNormal.weights(10, 5, &mut Rng::new(3));
        assert_eq!(a, b);
    }

    #[test]
    fn defaults_follow_activation() {
        assert_eq!(Init::default_for(Activation::Relu), Init::HeNormal);
        assert_eq!(Init::default_for(Activation::Tanh), Init::XavierNormal);
        assert_eq!(Init::default_for(Activation::Softmax), Init::XavierNormal);
    }

    #[test]
    fn parse_round_trips_display() {
        for init in [
            Init::HeNormal,
            Init::HeUniform,
            Init::XavierNormal,
            Init::XavierUniform,
        ] {
            assert_eq!(init.to_string().parse::<Init>().unwrap(), init);
        }
        assert!("lecun".parse::<Init>().is_err());
    }
}
