//! Feedforward neural networks (multilayer perceptrons) on the CPU.

pub mod activation;
pub mod cost;
pub mod error;
pub mod float;
pub mod gradcheck;
pub mod init;
pub mod layer;
pub mod linalg;
pub mod network;
pub mod optim;
pub mod rng;

pub use activation::Activation;
pub use cost::Cost;
pub use error::{Error, Result};
pub use float::Float;
pub use gradcheck::{TensorCheck, check_gradients};
pub use init::Init;
pub use layer::Dense;
pub use network::{ForwardCache, Gradients, Network};
pub use optim::{
    Optimizer, OptimizerConfig, Schedule, StateTensor, add_l2_penalty, clip_global_norm,
};
pub use rng::Rng;
