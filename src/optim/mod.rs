//! Training tools around the gradients of a backward pass: optimizers, the L2 penalty, learning
//! rate schedules and gradient clipping.
//!
//! A full-batch or mini-batch training step uses them in this order:
//!
//! ```
//! use feedforward::optim::{add_l2_penalty, clip_global_norm};
//! use feedforward::optim::{Optimizer, OptimizerConfig, Schedule};
//! use feedforward::{Activation, Cost, ForwardCache, Gradients, Network, Rng};
//! use ndarray::Array2;
//!
//! let mut rng = Rng::new(0);
//! let mut network = Network::<f64>::random(&[2, 1], &[Activation::Identity], &mut rng)?;
//! let x = Array2::from_shape_fn((2, 8), |(i, j)| (i + j) as f64 / 8.0);
//! let y = Array2::from_shape_fn((1, 8), |(_, j)| j as f64 / 4.0);
//!
//! let config: OptimizerConfig = "adam(lr=0.01)".parse()?;
//! let schedule: Schedule = "step:10:0.5".parse()?;
//! let mut optimizer = Optimizer::new(config, &network)?;
//! let mut cache = ForwardCache::new();
//! let mut grads = Gradients::new(&network).with_input_gradient(false);
//! for epoch in 0..20 {
//!     network.forward_train(x.view(), &mut cache)?;
//!     let cost = Cost::MeanSquaredError.value(cache.output(), y.view())?;
//!     network.backward(&cache, y.view(), Cost::MeanSquaredError, &mut grads)?;
//!     let penalty = add_l2_penalty(&network, &mut grads, 1e-4)?;
//!     let _norm_before_clipping = clip_global_norm(&mut grads, 5.0)?;
//!     optimizer.step(&mut network, &grads, schedule.lr_at(config.lr(), epoch))?;
//!     assert!((cost + penalty).is_finite());
//! }
//! assert_eq!(optimizer.step_count(), 20);
//! # Ok::<(), feedforward::Error>(())
//! ```

mod clip;
mod config;
mod l2;
mod optimizer;
mod schedule;

pub use clip::clip_global_norm;
pub use config::OptimizerConfig;
pub use l2::add_l2_penalty;
pub use optimizer::{Optimizer, StateTensor};
pub use schedule::Schedule;
