//! Feedforward neural networks (multilayer perceptrons) on the CPU.

pub mod error;
pub mod float;
pub mod linalg;
pub mod rng;

pub use error::{Error, Result};
pub use float::Float;
pub use rng::Rng;
