//! Feedforward neural networks (multilayer perceptrons) on the CPU.
//!
//! Columns are examples. For a network of `L` dense layers with widths `n[0] .. n[L]` and a
//! mini-batch of `m` examples:
//!
//! - forward: `A[0] = X` (`n[0] x m`), `Z[l] = W[l] A[l-1] + broadcast(b[l])`,
//!   `A[l] = g[l](Z[l])`, `Ŷ = A[L]` (`n[L] x m`), with `W[l]` of shape `n[l] x n[l-1]`;
//! - backward: `dW[l] = dZ[l] A[l-1]^T`, `db[l] = Σ over columns of dZ[l]`,
//!   `dA[l-1] = W[l]^T dZ[l]`, and `dZ[l] = dA[l] ⊙ g[l]'(Z[l])` from each [`Activation`];
//! - at the output, `dZ[L] = (A[L] - Y)/m` for a sigmoid output under (multi-label) binary
//!   cross-entropy and a softmax output under categorical cross-entropy ([`Cost`]).
//!
//! The math lives in [`activation`], [`cost`], [`layer`] and [`network`], and [`gradcheck`]
//! proves it against central finite differences. Training is [`init`], [`optim`] and
//! [`train`]; data loading is [`data`]; model files are [`model`] and training checkpoints
//! [`checkpoint`]; evaluation is [`metrics`]. Inference into reusable buffers is [`inference`],
//! with the matrix-vector product for a batch of one in [`linalg::gemv()`]. For repeated
//! single examples, [`Predictor`] keeps a copy of the weights stored by column and skips the
//! columns whose input is zero.
//!
//! Numerically, softmax subtracts each column's maximum, sigmoid never takes `exp` of a large
//! positive number, and the cross-entropies clamp their log terms at -100, so softmax of
//! `[1000, 0, -1000]`, sigmoid of ±1000 and `ln 0` all stay finite.
//!
//! # Example: one forward and backward pass
//!
//! ```
//! use feedforward::{Activation, Cost, ForwardCache, Gradients, Network, Rng};
//! use ndarray::array;
//!
//! // 2 inputs -> 3 ReLU units -> 2 softmax outputs, on a batch of 4 examples (columns).
//! let mut rng = Rng::new(42);
//! let network = Network::<f64>::random(&[2, 3, 2], &[Activation::Relu, Activation::Softmax], &mut rng)?;
//! let x = array![[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.7, 1.0]];
//! let y = array![[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]];
//!
//! let mut cache = ForwardCache::new();
//! network.forward_train(x.view(), &mut cache)?;
//! let cost = Cost::CategoricalCrossEntropy.value(cache.output(), y.view())?;
//!
//! let mut grads = Gradients::new(&network);
//! network.backward(&cache, y.view(), Cost::CategoricalCrossEntropy, &mut grads)?;
//!
//! assert!(cost > 0.0);
//! assert_eq!(grads.weights[0].dim(), (3, 2)); // dW[1] is shaped like W[1]
//! assert_eq!(grads.biases[1].len(), 2); // db[2]
//! assert_eq!(grads.input().unwrap().dim(), (2, 4)); // dA[0] is shaped like X
//! # Ok::<(), feedforward::Error>(())
//! ```

#![warn(missing_docs)]

pub mod activation;
pub mod checkpoint;
pub mod cost;
pub mod data;
pub mod error;
pub mod float;
pub mod gradcheck;
pub mod inference;
pub mod init;
pub mod layer;
pub mod linalg;
pub mod metrics;
pub mod model;
pub mod network;
pub mod optim;
pub mod rng;
pub mod train;

#[cfg(test)]
mod test_data;

pub use activation::Activation;
pub use cost::Cost;
pub use data::{Dataset, Targets};
pub use error::{Error, Result};
pub use float::Float;
pub use gradcheck::{TensorCheck, check_gradients};
pub use inference::{InferenceBuffers, Predictor};
pub use init::Init;
pub use layer::Dense;
pub use model::Model;
pub use network::{ForwardCache, Gradients, Network};
pub use optim::{
    Optimizer, OptimizerConfig, Schedule, StateTensor, add_l2_penalty, clip_global_norm,
};
pub use rng::Rng;
pub use train::{TrainConfig, TrainData, Trainer};
