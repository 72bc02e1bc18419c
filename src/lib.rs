//! Feedforward neural networks (multilayer perceptrons) on the CPU.

pub mod data;
pub mod error;
pub mod float;
pub mod linalg;
pub mod rng;

pub use data::{Dataset, Targets};
pub use error::{Error, Result};
pub use float::Float;
pub use rng::Rng;
