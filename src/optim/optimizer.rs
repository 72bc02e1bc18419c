//! The optimizer state and its update step.
//!
//! [`Optimizer`] stores the step count `t` and, for every layer's `W` and `b`, the buffers its
//! [`OptimizerConfig`] needs, each shaped like its parameter and zero at the start:
//!
//! | optimizer | buffers, under PyTorch's state names |
//! |---|---|
//! | SGD | none |
//! | SGD with momentum or Nesterov momentum | `momentum_buffer` (`b`) |
//! | RMSprop | `square_avg` (`s`), and `momentum_buffer` (`b`) when the momentum is positive |
//! | Adam, AdamW | `exp_avg` (`m`), `exp_avg_sq` (`v`) |
//!
//! [`Optimizer::step`] applies the update rule of the [`OptimizerConfig`] documentation to every
//! parameter in place, without allocating. Adam's step is computed in PyTorch's arrangement,
//! `θ ← θ - (γ / (1 - β1^t)) m / (√v / √(1 - β2^t) + ε)`, which equals
//! `θ ← θ - γ m̂ / (√v̂ + ε)` up to rounding.
//!
//! Every buffer value that would be subnormal (below `1.2e-38` in magnitude in `f32`, but not
//! zero) is stored as zero instead ([`flush_subnormal`]). Buffers of parameters whose gradient
//! stays at zero decay through that range, and on Intel CPUs each subnormal result costs a
//! microcode assist, which made training up to 45% slower an epoch.
//!
//! A checkpoint stores [`Optimizer::step_count`], [`Optimizer::state_tensors`] and the
//! configuration. [`Optimizer::restore_state`] loads the first two into an optimizer built from
//! the same configuration, and the resumed steps then equal the uninterrupted ones bit for bit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array1, Array2, ArrayViewD, ArrayViewMutD, Zip};
use serde::{Deserialize, Serialize};

use super::config::{OptimizerConfig, check_lr};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::network::{Gradients, Network};

/// One buffer of one layer's parameter, in a form a checkpoint can store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateTensor<T> {
    /// `{buffer}.{layer}.weight` or `{buffer}.{layer}.bias`, with PyTorch's buffer name and the
    /// 0-based layer index, such as `exp_avg.0.weight`.
    pub name: String,
    /// `[n_out, n_in]` for a weight buffer, `[n_out]` for a bias buffer.
    pub shape: Vec<usize>,
    /// The entries in row-major order.
    pub data: Vec<T>,
}

/// A stateful optimizer for one network: its configuration, step count and buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<T> {
    config: OptimizerConfig,
    /// `(n_out, n_in)` of every layer, first to last.
    shapes: Vec<(usize, usize)>,
    step_count: u64,
    state: State<T>,
}

/// The buffers of each optimizer kind, with the hyperparameters their update needs.
#[derive(Clone, Debug, PartialEq)]
enum State<T> {
    Sgd {
        momentum: f64,
        nesterov: bool,
        /// `None` when the momentum is 0.
        momentum_buffer: Option<Buffer<T>>,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
        momentum: f64,
        square_avg: Buffer<T>,
        /// `None` when the momentum is 0.
        momentum_buffer: Option<Buffer<T>>,
    },
    /// Adam, and AdamW when `weight_decay` is positive.
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        exp_avg: Buffer<T>,
        exp_avg_sq: Buffer<T>,
    },
}

/// One buffer for the whole network: an array shaped like each layer's `W` and one like its `b`.
#[derive(Clone, Debug, PartialEq)]
struct Buffer<T> {
    weights: Vec<Array2<T>>,
    biases: Vec<Array1<T>>,
}

#[derive(Clone, Copy, Debug)]
enum Part {
    Weights,
    Bias,
}

impl Part {
    fn suffix(self) -> &'static str {
        match self {
            Part::Weights => "weight",
            Part::Bias => "bias",
        }
    }
}

impl<T: Float> Buffer<T> {
    fn zeros(shapes: &[(usize, usize)]) -> Self {
        Buffer {
            weights: shapes.iter().map(|&shape| Array2::zeros(shape)).collect(),
            biases: shapes
                .iter()
                .map(|&(rows, _)| Array1::zeros(rows))
                .collect(),
        }
    }

    fn view_mut(&mut self, layer: usize, part: Part) -> ArrayViewMutD<'_, T> {
        match part {
            Part::Weights => self.weights[layer].view_mut().into_dyn(),
            Part::Bias => self.biases[layer].view_mut().into_dyn(),
        }
    }
}

impl<T: Float> Optimizer<T> {
    /// Creates an optimizer for `network` with zero buffers and a step count of 0.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when [`OptimizerConfig::validate`] rejects `config`.
    pub fn new(config: OptimizerConfig, network: &Network<T>) -> Result<Self> {
        config.validate()?;
        let shapes: Vec<(usize, usize)> = network
            .layers()
            .iter()
            .map(|layer| (layer.outputs(), layer.inputs()))
            .collect();
        let buffer_if = |positive: f64| (positive > 0.0).then(|| Buffer::zeros(&shapes));
        let state = match config {
            OptimizerConfig::Sgd {
                momentum, nesterov, ..
            } => State::Sgd {
                momentum,
                nesterov,
                momentum_buffer: buffer_if(momentum),
            },
            OptimizerConfig::RmsProp {
                alpha,
                eps,
                momentum,
                ..
            } => State::RmsProp {
                alpha,
                eps,
                momentum,
                square_avg: Buffer::zeros(&shapes),
                momentum_buffer: buffer_if(momentum),
            },
            OptimizerConfig::Adam {
                beta1, beta2, eps, ..
            } => State::Adam {
                beta1,
                beta2,
                eps,
                weight_decay: 0.0,
                exp_avg: Buffer::zeros(&shapes),
                exp_avg_sq: Buffer::zeros(&shapes),
            },
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => State::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                exp_avg: Buffer::zeros(&shapes),
                exp_avg_sq: Buffer::zeros(&shapes),
            },
        };
        Ok(Optimizer {
            config,
            shapes,
            step_count: 0,
            state,
        })
    }

    /// The configuration this optimizer was built from.
    pub fn config(&self) -> OptimizerConfig {
        self.config
    }

    /// Number of steps taken, `t`. The next step's Adam bias correction uses `t + 1`.
    pub fn step_count(&self) -> u64 {
        self.step_count
    }

    /// Updates every weight and bias of `network` from `grads` with learning rate `lr`, and
    /// counts the step.
    ///
    /// `lr` replaces the configuration's learning rate for this step, so that a schedule can
    /// change it; pass [`OptimizerConfig::lr`] for a constant rate. Nothing is allocated.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a negative or non-finite `lr`; [`Error::Shape`] when `network` or
    /// `grads` has other layer shapes than the network this optimizer was built for. On error,
    /// neither the network nor the state has changed.
    pub fn step(&mut self, network: &mut Network<T>, grads: &Gradients<T>, lr: f64) -> Result<()> {
        check_lr(lr)?;
        self.check_shapes(network, grads)?;
        self.step_count += 1;
        let t = self.step_count as f64;
        let lr_t = T::of(lr);
        for (index, layer) in network.layers_mut().iter_mut().enumerate() {
            for part in [Part::Weights, Part::Bias] {
                let (theta, g) = match part {
                    Part::Weights => (
                        layer.weights_mut().into_dyn(),
                        grads.weights[index].view().into_dyn(),
                    ),
                    Part::Bias => (
                        layer.bias_mut().into_dyn(),
                        grads.biases[index].view().into_dyn(),
                    ),
                };
                // Whether the update found every value it wrote finite. Only Adam's loop over
                // slices checks, and the others return `false`.
                let finite = match &mut self.state {
                    State::Sgd {
                        momentum,
                        nesterov,
                        momentum_buffer,
                    } => {
                        match momentum_buffer {
                            None => sgd(theta, g, lr_t),
                            Some(buffer) => sgd_momentum(
                                theta,
                                g,
                                buffer.view_mut(index, part),
                                lr_t,
                                T::of(*momentum),
                                *nesterov,
                            ),
                        }
                        false
                    }
                    State::RmsProp {
                        alpha,
                        eps,
                        momentum,
                        square_avg,
                        momentum_buffer,
                    } => {
                        rmsprop(
                            theta,
                            g,
                            square_avg.view_mut(index, part),
                            momentum_buffer
                                .as_mut()
                                .map(|buffer| buffer.view_mut(index, part)),
                            RmsPropStep {
                                lr: lr_t,
                                alpha: T::of(*alpha),
                                eps: T::of(*eps),
                                momentum: T::of(*momentum),
                            },
                        );
                        false
                    }
                    State::Adam {
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        exp_avg,
                        exp_avg_sq,
                    } => adam(
                        theta,
                        g,
                        exp_avg.view_mut(index, part),
                        exp_avg_sq.view_mut(index, part),
                        AdamStep {
                            decay: T::of(1.0 - lr * *weight_decay),
                            beta1: T::of(*beta1),
                            beta2: T::of(*beta2),
                            step_size: T::of(lr / (1.0 - beta1.powf(t))),
                            bias_correction2_sqrt: T::of((1.0 - beta2.powf(t)).sqrt()),
                            eps: T::of(*eps),
                        },
                    ),
                };
                if let Part::Weights = part {
                    layer.set_finite_weights(finite);
                }
            }
        }
        Ok(())
    }

    fn check_shapes(&self, network: &Network<T>, grads: &Gradients<T>) -> Result<()> {
        let layers = network.layers();
        let expected = self.shapes.len();
        if layers.len() != expected
            || grads.weights.len() != expected
            || grads.biases.len() != expected
        {
            return Err(Error::Shape(format!(
                "the optimizer was built for {expected} layers, but the network has {} and the \
                 gradients have {} dW and {} db",
                layers.len(),
                grads.weights.len(),
                grads.biases.len()
            )));
        }
        for (index, (&(rows, cols), layer)) in self.shapes.iter().zip(layers).enumerate() {
            let number = index + 1;
            if (layer.outputs(), layer.inputs()) != (rows, cols) {
                return Err(Error::Shape(format!(
                    "layer {number} has a {}x{} weight matrix, but the optimizer was built for \
                     {rows}x{cols}",
                    layer.outputs(),
                    layer.inputs()
                )));
            }
            if grads.weights[index].dim() != (rows, cols) {
                return Err(Error::Shape(format!(
                    "dW of layer {number} is {:?}, but the layer's weights are {rows}x{cols}",
                    grads.weights[index].dim()
                )));
            }
            if grads.biases[index].len() != rows {
                return Err(Error::Shape(format!(
                    "db of layer {number} has {} entries, but the layer has {rows} biases",
                    grads.biases[index].len()
                )));
            }
        }
        Ok(())
    }

    /// The buffers with their PyTorch state names, in a fixed order.
    fn buffers(&self) -> Vec<(&'static str, &Buffer<T>)> {
        match &self.state {
            State::Sgd {
                momentum_buffer, ..
            } => momentum_buffer
                .iter()
                .map(|buffer| ("momentum_buffer", buffer))
                .collect(),
            State::RmsProp {
                square_avg,
                momentum_buffer,
                ..
            } => std::iter::once(("square_avg", square_avg))
                .chain(
                    momentum_buffer
                        .iter()
                        .map(|buffer| ("momentum_buffer", buffer)),
                )
                .collect(),
            State::Adam {
                exp_avg,
                exp_avg_sq,
                ..
            } => vec![("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)],
        }
    }

    /// As [`Optimizer::buffers`], for writing.
    fn buffers_mut(&mut self) -> Vec<(&'static str, &mut Buffer<T>)> {
        match &mut self.state {
            State::Sgd {
                momentum_buffer, ..
            } => momentum_buffer
                .iter_mut()
                .map(|buffer| ("momentum_buffer", buffer))
                .collect(),
            State::RmsProp {
                square_avg,
                momentum_buffer,
                ..
            } => std::iter::once(("square_avg", square_avg))
                .chain(
                    momentum_buffer
                        .iter_mut()
                        .map(|buffer| ("momentum_buffer", buffer)),
                )
                .collect(),
            State::Adam {
                exp_avg,
                exp_avg_sq,
                ..
            } => vec![("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)],
        }
    }

    /// Returns a copy of every buffer, named as [`StateTensor::name`] describes: for each
    /// buffer, layer by layer, the weight buffer and then the bias buffer. Plain SGD returns
    /// none.
    pub fn state_tensors(&self) -> Vec<StateTensor<T>> {
        let mut tensors = Vec::new();
        for (name, buffer) in self.buffers() {
            for (index, (weights, biases)) in buffer.weights.iter().zip(&buffer.biases).enumerate()
            {
                tensors.push(StateTensor {
                    name: tensor_name(name, index, Part::Weights),
                    shape: weights.shape().to_vec(),
                    data: weights.iter().copied().collect(),
                });
                tensors.push(StateTensor {
                    name: tensor_name(name, index, Part::Bias),
                    shape: biases.shape().to_vec(),
                    data: biases.iter().copied().collect(),
                });
            }
        }
        tensors
    }

    /// Replaces the step count and every buffer with those saved from an optimizer of the same
    /// configuration and network shapes, in any order.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a tensor this optimizer needs is missing, or one it does not have
    /// is present, as happens with a checkpoint written by another optimizer. [`Error::Shape`]
    /// when a tensor's shape differs from its parameter's, or its data length from its shape.
    /// On error, nothing has changed.
    pub fn restore_state(&mut self, step_count: u64, tensors: &[StateTensor<T>]) -> Result<()> {
        let mut by_name: HashMap<&str, &StateTensor<T>> = HashMap::new();
        for tensor in tensors {
            if by_name.insert(tensor.name.as_str(), tensor).is_some() {
                return Err(Error::Config(format!(
                    "optimizer state tensor '{}' appears twice",
                    tensor.name
                )));
            }
        }

        let expected = self.expected_tensors();
        for (name, shape) in &expected {
            let tensor = by_name.get(name.as_str()).ok_or_else(|| {
                Error::Config(format!(
                    "optimizer state tensor '{name}' is missing; {} needs {}",
                    self.config,
                    list_names(&expected)
                ))
            })?;
            if &tensor.shape != shape {
                return Err(Error::Shape(format!(
                    "optimizer state tensor '{name}' has shape {:?}, but its parameter has \
                     shape {shape:?}",
                    tensor.shape
                )));
            }
            let length: usize = shape.iter().product();
            if tensor.data.len() != length {
                return Err(Error::Shape(format!(
                    "optimizer state tensor '{name}' of shape {shape:?} needs {length} values, \
                     got {}",
                    tensor.data.len()
                )));
            }
        }
        if tensors.len() != expected.len() {
            let unexpected: Vec<&str> = tensors
                .iter()
                .map(|tensor| tensor.name.as_str())
                .filter(|name| !expected.iter().any(|(known, _)| known == name))
                .collect();
            return Err(Error::Config(format!(
                "unexpected optimizer state tensors {unexpected:?}; {} needs {}",
                self.config,
                list_names(&expected)
            )));
        }

        for (name, buffer) in self.buffers_mut() {
            for index in 0..buffer.weights.len() {
                for part in [Part::Weights, Part::Bias] {
                    let source = by_name[tensor_name(name, index, part).as_str()];
                    let mut target = buffer.view_mut(index, part);
                    for (value, &saved) in target.iter_mut().zip(&source.data) {
                        *value = saved;
                    }
                }
            }
        }
        self.step_count = step_count;
        Ok(())
    }

    /// The names and shapes [`Optimizer::state_tensors`] returns, in the same order.
    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut expected = Vec::new();
        for (name, _) in self.buffers() {
            for (index, &(rows, cols)) in self.shapes.iter().enumerate() {
                expected.push((tensor_name(name, index, Part::Weights), vec![rows, cols]));
                expected.push((tensor_name(name, index, Part::Bias), vec![rows]));
            }
        }
        expected
    }
}

fn tensor_name(buffer: &str, layer: usize, part: Part) -> String {
    format!("{buffer}.{layer}.{}", part.suffix())
}

fn list_names(expected: &[(String, Vec<usize>)]) -> String {
    if expected.is_empty() {
        return "no state tensors".into();
    }
    let names: Vec<&str> = expected.iter().map(|(name, _)| name.as_str()).collect();
    names.join(", ")
}

/// `θ ← θ - γ g`.
fn sgd<T: Float>(theta: ArrayViewMutD<'_, T>, g: ArrayViewD<'_, T>, lr: T) {
    Zip::from(theta).and(g).for_each(|p, &g| *p -= lr * g);
}

/// `b ← μ b + g`, then `θ ← θ - γ b`, or `θ ← θ - γ (g + μ b)` for Nesterov momentum.
///
/// PyTorch sets `b ← g` on the first step. Because `b` starts at zero, `μ b + g` is the same
/// value exactly.
fn sgd_momentum<T: Float>(
    theta: ArrayViewMutD<'_, T>,
    g: ArrayViewD<'_, T>,
    buffer: ArrayViewMutD<'_, T>,
    lr: T,
    momentum: T,
    nesterov: bool,
) {
    Zip::from(theta).and(g).and(buffer).for_each(|p, &g, b| {
        *b = flush_subnormal(momentum * *b + g);
        let direction = if nesterov { g + momentum * *b } else { *b };
        *p -= lr * direction;
    });
}

#[derive(Clone, Copy)]
struct RmsPropStep<T> {
    lr: T,
    alpha: T,
    eps: T,
    momentum: T,
}

/// `s ← α s + (1 - α) g²`, then `θ ← θ - γ g / (√s + ε)`, or with a momentum buffer
/// `b ← μ b + g / (√s + ε)` and `θ ← θ - γ b`.
fn rmsprop<T: Float>(
    theta: ArrayViewMutD<'_, T>,
    g: ArrayViewD<'_, T>,
    square_avg: ArrayViewMutD<'_, T>,
    momentum_buffer: Option<ArrayViewMutD<'_, T>>,
    step: RmsPropStep<T>,
) {
    let RmsPropStep {
        lr,
        alpha,
        eps,
        momentum,
    } = step;
    let one_minus_alpha = T::one() - alpha;
    match momentum_buffer {
        None => Zip::from(theta)
            .and(g)
            .and(square_avg)
            .for_each(|p, &g, s| {
                *s = flush_subnormal(alpha * *s + one_minus_alpha * g * g);
                *p -= lr * (g / (s.sqrt() + eps));
            }),
        Some(buffer) => Zip::from(theta)
            .and(g)
            .and(square_avg)
            .and(buffer)
            .for_each(|p, &g, s, b| {
                *s = flush_subnormal(alpha * *s + one_minus_alpha * g * g);
                *b = flush_subnormal(momentum * *b + g / (s.sqrt() + eps));
                *p -= lr * *b;
            }),
    }
}

/// The per-step constants of Adam and AdamW.
#[derive(Clone, Copy)]
struct AdamStep<T> {
    /// `1 - γ λ`, the decoupled weight decay factor, which is exactly 1 for Adam.
    decay: T,
    beta1: T,
    beta2: T,
    /// `γ / (1 - β1^t)`.
    step_size: T,
    /// `√(1 - β2^t)`.
    bias_correction2_sqrt: T,
    eps: T,
}

/// `θ ← (1 - γ λ) θ`, `m ← β1 m + (1 - β1) g`, `v ← β2 v + (1 - β2) g²`, then
/// `θ ← θ - (γ / (1 - β1^t)) m / (√v / √(1 - β2^t) + ε)`.
///
/// The update is elementwise, so large tensors are split across the matrix products' threads
/// (see [`crate::linalg::set_threads`]). Each element gets the same arithmetic either way.
///
/// Returns whether every new `θ` is finite, which the loop over slices tests as it writes
/// them. With the test, an update of 1.86 million parameters on two threads took as long as
/// without it (BENCHMARKS.md). The fallback for other layouts returns `false`, which only
/// means "not known".
fn adam<T: Float>(
    mut theta: ArrayViewMutD<'_, T>,
    g: ArrayViewD<'_, T>,
    mut exp_avg: ArrayViewMutD<'_, T>,
    mut exp_avg_sq: ArrayViewMutD<'_, T>,
    step: AdamStep<T>,
) -> bool {
    let len = theta.len();
    // Slices in logical order, so that element i of each is the same parameter. A layer built
    // from a column-major weight array has none; it takes the one-thread elementwise loop.
    let all_standard = theta.is_standard_layout()
        && g.is_standard_layout()
        && exp_avg.is_standard_layout()
        && exp_avg_sq.is_standard_layout();
    let (true, Some(p), Some(g), Some(m), Some(v)) = (
        all_standard,
        theta.as_slice_mut(),
        g.as_slice(),
        exp_avg.as_slice_mut(),
        exp_avg_sq.as_slice_mut(),
    ) else {
        Zip::from(theta)
            .and(g)
            .and(exp_avg)
            .and(exp_avg_sq)
            .for_each(|p, &g, m, v| adam_element(p, g, m, v, step));
        return false;
    };
    let slices = AdamSlices {
        p: p.as_mut_ptr(),
        g: g.as_ptr(),
        m: m.as_mut_ptr(),
        v: v.as_mut_ptr(),
    };
    let non_finite = AtomicBool::new(false);
    crate::linalg::for_each_range(len, 1 << 15, &|range| {
        // SAFETY: the four slices have `len` elements (the shapes were checked), the ranges are
        // disjoint, and the slices stay borrowed for the duration of this call.
        let (p, g, m, v) = unsafe { slices.range(range) };
        if !adam_elements(p, g, m, v, step) {
            non_finite.store(true, Ordering::Relaxed);
        }
    });
    !non_finite.into_inner()
}

/// Pointers to the four tensors of an Adam update, shared by the threads of one update.
struct AdamSlices<T> {
    p: *mut T,
    g: *const T,
    m: *mut T,
    v: *mut T,
}

// SAFETY: the threads of one update touch disjoint ranges through these pointers.
unsafe impl<T: Send> Sync for AdamSlices<T> {}

impl<T> AdamSlices<T> {
    /// Returns the four tensors' elements in `range`.
    ///
    /// # Safety
    ///
    /// `range` must lie inside the tensors, which must outlive the returned slices, and no
    /// other live slice may overlap it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, range: std::ops::Range<usize>) -> (&mut [T], &[T], &mut [T], &mut [T]) {
        let (start, len) = (range.start, range.len());
        // SAFETY: guaranteed by the caller.
        unsafe {
            (
                std::slice::from_raw_parts_mut(self.p.add(start), len),
                std::slice::from_raw_parts(self.g.add(start), len),
                std::slice::from_raw_parts_mut(self.m.add(start), len),
                std::slice::from_raw_parts_mut(self.v.add(start), len),
            )
        }
    }
}

/// Applies one Adam update to a range of elements. For `f32` on a CPU with AVX2 the same loop is
/// compiled for 8-lane vectors instead of the baseline's 4 (the square root and two divisions
/// per element dominate). Rust never fuses a multiply and an add by itself, so both builds
/// round identically.
///
/// Returns whether every new `p` is finite.
fn adam_elements<T: Float>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    step: AdamStep<T>,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && is_x86_feature_detected!("avx2")
    {
        // SAFETY: `T` is `f32`, so the casts only rename the element type of the same memory
        // (`AdamStep<T>` is then `AdamStep<f32>`); the CPU has AVX2.
        unsafe {
            let cast =
                |s: &mut [T]| std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len());
            let g = std::slice::from_raw_parts(g.as_ptr().cast::<f32>(), g.len());
            let step = std::mem::transmute_copy::<AdamStep<T>, AdamStep<f32>>(&step);
            return adam_elements_avx2(cast(p), g, cast(m), cast(v), step);
        }
    }
    adam_loop(p, g, m, v, step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn adam_elements_avx2(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: AdamStep<f32>,
) -> bool {
    // The largest magnitude as bits, as `sgemm` checks blocks. An integer maximum per lane
    // vectorizes without the mask packing that a folded comparison needs.
    let mut largest = 0;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam_element(p, g, m, v, step);
        largest = largest.max(p.to_bits() & 0x7fff_ffff);
    }
    largest < f32::INFINITY.to_bits()
}

/// Updates each element, and returns whether every new `p` is finite. The test is a
/// comparison folded without a branch, so the loop still vectorizes. `|p| < ∞` is false for
/// an infinity and for NaN alike.
#[inline(always)]
fn adam_loop<T: Float>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], step: AdamStep<T>) -> bool {
    let mut finite = true;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        adam_element(p, g, m, v, step);
        finite &= p.abs() < T::infinity();
    }
    finite
}

/// Applies the update of [`adam`] to one parameter `p` with gradient `g` and moments `m`, `v`.
#[inline(always)]
fn adam_element<T: Float>(p: &mut T, g: T, m: &mut T, v: &mut T, step: AdamStep<T>) {
    *p *= step.decay;
    *m = flush_subnormal(step.beta1 * *m + (T::one() - step.beta1) * g);
    *v = flush_subnormal(step.beta2 * *v + (T::one() - step.beta2) * g * g);
    let denominator = v.sqrt() / step.bias_correction2_sqrt + step.eps;
    *p -= step.step_size * (*m / denominator);
}

/// Returns `x`, or zero when `x` is subnormal: nonzero, and smaller in magnitude than the
/// smallest normal number (`1.2e-38` in `f32`). NaN and infinities pass unchanged.
///
/// Every buffer update goes through it. A buffer whose gradient stays at zero, such as those
/// of the weights of a pixel that is zero in every image, decays geometrically (`m ← β1 m`) and
/// would spend about 150 steps in the subnormal range before it reached zero. On Intel CPUs
/// each subnormal result costs a microcode assist. Without the flush, training 784-256-128-10
/// on one thread took about 45% longer an epoch from the third epoch on (BENCHMARKS.md). A
/// flushed value differs from the exact one by less than `1.2e-38`. Adam divides it by at
/// least `ε`, so an update changes by less than `γ 1.2e-38 / ε`, about `1e-33` at its defaults.
#[inline(always)]
fn flush_subnormal<T: Float>(x: T) -> T {
    if x.abs() < T::min_positive_value() {
        T::zero()
    } else {
        x
    }
}

#[cfg(test)]
mod tests;
