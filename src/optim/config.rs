//! Optimizer settings: the update rule and its hyperparameters, as stored in model files and
//! checkpoints.
//!
//! For a parameter `θ` with gradient `g`, learning rate `γ` of the current step and 1-based step
//! count `t`, with every buffer (`b`, `s`, `m`, `v`) starting at zero:
//!
//! | optimizer | update | defaults |
//! |---|---|---|
//! | SGD | `θ ← θ - γ g` | `γ = 0.01` |
//! | SGD with momentum `μ` | `b ← μ b + g`, `θ ← θ - γ b` | `γ = 0.01`, `μ = 0.9` |
//! | Nesterov momentum | `b ← μ b + g`, `θ ← θ - γ (g + μ b)` | `γ = 0.01`, `μ = 0.9` |
//! | RMSprop | `s ← α s + (1 - α) g²`, `θ ← θ - γ g / (√s + ε)` | `γ = 0.01`, `α = 0.99`, `ε = 1e-8`, `μ = 0` |
//! | RMSprop with momentum `μ` | `s` as above, `b ← μ b + g / (√s + ε)`, `θ ← θ - γ b` | as RMSprop |
//! | Adam | `m ← β1 m + (1 - β1) g`, `v ← β2 v + (1 - β2) g²`, `m̂ = m / (1 - β1^t)`, `v̂ = v / (1 - β2^t)`, `θ ← θ - γ m̂ / (√v̂ + ε)` | `γ = 1e-3`, `β1 = 0.9`, `β2 = 0.999`, `ε = 1e-8` |
//! | AdamW | `θ ← θ - γ λ θ`, then the Adam update | as Adam, `λ = 0.01` |
//!
//! The formulas and the RMSprop, Adam and AdamW defaults are those of the `torch.optim`
//! documentation on pytorch.org (`SGD` 2.0, `RMSprop` 1.13, `Adam` and `AdamW` stable), without
//! their dampening, coupled weight decay, centered RMSprop, AMSGrad and `maximize` options.
//! PyTorch's `SGD` has no default learning rate and a default momentum of 0. Here plain SGD
//! uses 0.01, and the names `momentum` and `nesterov` use a momentum of 0.9, the value in the
//! example of PyTorch's `SGD` documentation. AdamW decays every parameter, biases included, as
//! PyTorch does for a single parameter group.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An optimizer and its hyperparameters. [`crate::optim::Optimizer`] stores the state it needs.
///
/// `lr` is the base learning rate, from which [`crate::optim::Schedule`] derives each epoch's
/// rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Stochastic gradient descent, with optional (Nesterov) momentum.
    Sgd {
        /// Learning rate `γ`.
        lr: f64,
        /// Momentum `μ` in `[0, 1)`, where 0 turns momentum off.
        momentum: f64,
        /// Nesterov momentum, `θ ← θ - γ (g + μ b)`, which needs a positive `momentum`.
        nesterov: bool,
    },
    /// RMSprop: each gradient divided by a running root mean square of its past values.
    RmsProp {
        /// Learning rate `γ`.
        lr: f64,
        /// Smoothing constant `α` of the squared-gradient average, in `[0, 1)`.
        alpha: f64,
        /// `ε`, a positive constant added to `√s` in the denominator.
        eps: f64,
        /// Momentum `μ` in `[0, 1)`, where 0 turns momentum off.
        momentum: f64,
    },
    /// Adam with bias-corrected moment estimates.
    Adam {
        /// Learning rate `γ`.
        lr: f64,
        /// Decay rate `β1` of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay rate `β2` of the second moment, in `[0, 1)`.
        beta2: f64,
        /// `ε`, a positive constant added to `√v̂` in the denominator.
        eps: f64,
    },
    /// Adam with decoupled weight decay `θ ← θ - γ λ θ` before each update.
    AdamW {
        /// Learning rate `γ`.
        lr: f64,
        /// Decay rate `β1` of the first moment, in `[0, 1)`.
        beta1: f64,
        /// Decay rate `β2` of the second moment, in `[0, 1)`.
        beta2: f64,
        /// `ε`, a positive constant added to `√v̂` in the denominator.
        eps: f64,
        /// Weight decay `λ`, non-negative.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// The names [`FromStr`] accepts, for help text.
    pub const NAMES: [&'static str; 6] =
        ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"];

    /// Learning rate of plain SGD and SGD with momentum when none is given.
    pub const DEFAULT_SGD_LR: f64 = 0.01;
    /// Momentum of the `momentum` and `nesterov` optimizers when none is given.
    pub const DEFAULT_MOMENTUM: f64 = 0.9;

    /// Plain SGD with a learning rate of 0.01.
    pub fn sgd() -> Self {
        OptimizerConfig::Sgd {
            lr: Self::DEFAULT_SGD_LR,
            momentum: 0.0,
            nesterov: false,
        }
    }

    /// SGD with (heavy-ball) momentum 0.9 and a learning rate of 0.01.
    pub fn momentum() -> Self {
        OptimizerConfig::Sgd {
            lr: Self::DEFAULT_SGD_LR,
            momentum: Self::DEFAULT_MOMENTUM,
            nesterov: false,
        }
    }

    /// SGD with Nesterov momentum 0.9 and a learning rate of 0.01.
    pub fn nesterov() -> Self {
        OptimizerConfig::Sgd {
            lr: Self::DEFAULT_SGD_LR,
            momentum: Self::DEFAULT_MOMENTUM,
            nesterov: true,
        }
    }

    /// RMSprop with PyTorch's defaults: `lr = 0.01`, `alpha = 0.99`, `eps = 1e-8`, no momentum.
    pub fn rmsprop() -> Self {
        OptimizerConfig::RmsProp {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
        }
    }

    /// Adam with PyTorch's defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`.
    pub fn adam() -> Self {
        OptimizerConfig::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// AdamW with PyTorch's defaults: those of Adam and `weight_decay = 0.01`.
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    /// The base learning rate `γ`.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::RmsProp { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. } => lr,
        }
    }

    /// Returns this configuration with base learning rate `new_lr`, for a command-line `--lr`.
    pub fn with_lr(mut self, new_lr: f64) -> Self {
        match &mut self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::RmsProp { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. } => *lr = new_lr,
        }
        self
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a negative or non-finite learning rate or weight decay, a momentum,
    /// `alpha`, `beta1` or `beta2` outside `[0, 1)`, an `eps` that is not positive and finite,
    /// or Nesterov momentum with a momentum of 0.
    ///
    /// The ranges are narrower than PyTorch's, which accepts the values rejected here for
    /// three reasons. A momentum of 1 or more sums past gradients without decay. An `alpha` of
    /// 1 leaves `s` at 0, so that every RMSprop step divides by `ε` alone. An `eps` of 0 turns
    /// a zero gradient into `0 / 0 = NaN` under RMSprop and Adam.
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr())?;
        match *self {
            OptimizerConfig::Sgd {
                momentum, nesterov, ..
            } => {
                check_unit_interval("momentum", momentum, 0.9)?;
                if nesterov && momentum == 0.0 {
                    return Err(Error::Config(
                        "Nesterov momentum needs a positive momentum, such as 0.9".into(),
                    ));
                }
            }
            OptimizerConfig::RmsProp {
                alpha,
                eps,
                momentum,
                ..
            } => {
                check_unit_interval("alpha", alpha, 0.99)?;
                check_eps(eps)?;
                check_unit_interval("momentum", momentum, 0.9)?;
            }
            OptimizerConfig::Adam {
                beta1, beta2, eps, ..
            } => check_adam(beta1, beta2, eps)?,
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => {
                check_adam(beta1, beta2, eps)?;
                if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
                    return Err(Error::Config(format!(
                        "weight decay {weight_decay:?} must be finite and non-negative, such as 0.01"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Checks a learning rate: finite and non-negative.
pub(crate) fn check_lr(lr: f64) -> Result<()> {
    if lr >= 0.0 && lr.is_finite() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "learning rate {lr:?} must be finite and non-negative, such as 0.01"
        )))
    }
}

fn check_unit_interval(name: &str, value: f64, example: f64) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{name} {value:?} is outside [0, 1); use a value such as {example}"
        )))
    }
}

fn check_eps(eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "eps {eps:?} must be positive and finite, such as 1e-8"
        )))
    }
}

fn check_adam(beta1: f64, beta2: f64, eps: f64) -> Result<()> {
    check_unit_interval("beta1", beta1, 0.9)?;
    check_unit_interval("beta2", beta2, 0.999)?;
    check_eps(eps)
}

impl fmt::Display for OptimizerConfig {
    /// Writes the form that [`FromStr`] parses back, with every hyperparameter, such as
    /// `adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` prints the shortest text that parses back to the same f64, and uses an
        // exponent for small values (`1e-8`) where `{}` would print `0.00000001`.
        match *self {
            OptimizerConfig::Sgd {
                lr,
                momentum,
                nesterov: true,
            } => write!(f, "nesterov(lr={lr:?}, momentum={momentum:?})"),
            OptimizerConfig::Sgd { lr, momentum, .. } if momentum > 0.0 => {
                write!(f, "momentum(lr={lr:?}, momentum={momentum:?})")
            }
            OptimizerConfig::Sgd { lr, .. } => write!(f, "sgd(lr={lr:?})"),
            OptimizerConfig::RmsProp {
                lr,
                alpha,
                eps,
                momentum,
            } => write!(
                f,
                "rmsprop(lr={lr:?}, alpha={alpha:?}, eps={eps:?}, momentum={momentum:?})"
            ),
            OptimizerConfig::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => write!(
                f,
                "adam(lr={lr:?}, beta1={beta1:?}, beta2={beta2:?}, eps={eps:?})"
            ),
            OptimizerConfig::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => write!(
                f,
                "adamw(lr={lr:?}, beta1={beta1:?}, beta2={beta2:?}, eps={eps:?}, \
                 weight_decay={weight_decay:?})"
            ),
        }
    }
}

impl FromStr for OptimizerConfig {
    type Err = Error;

    /// Parses a name, optionally followed by `key=value` overrides in parentheses:
    /// `sgd`, `momentum`, `nesterov`, `rmsprop`, `adam`, `adamw`, or for instance
    /// `adam(lr=0.01, beta2=0.99)` and `sgd(lr=0.1, momentum=0.9, nesterov=true)`.
    ///
    /// Names and keys are case-insensitive, with `-` and `_` alike. The three SGD names take the
    /// keys `lr`, `momentum` and `nesterov`. `rmsprop` takes `lr`, `alpha`, `eps` and
    /// `momentum`, `adam` takes `lr`, `beta1`, `beta2` and `eps`, and `adamw` takes those and
    /// `weight_decay`. Omitted keys take the defaults in the module documentation.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown name or key, a value that is not a number (or `true` /
    /// `false` for `nesterov`), or a value that [`OptimizerConfig::validate`] rejects.
    fn from_str(text: &str) -> Result<Self> {
        let normalized = text.trim().to_ascii_lowercase();
        let (name, arguments) = match normalized.split_once('(') {
            Some((name, rest)) => {
                let arguments = rest.trim_end().strip_suffix(')').ok_or_else(|| {
                    Error::Config(format!("optimizer '{text}' is missing its closing ')'"))
                })?;
                (name.trim(), arguments)
            }
            None => (normalized.as_str(), ""),
        };
        let mut config = match name.replace(['-', '_'], "").as_str() {
            "sgd" => OptimizerConfig::sgd(),
            "momentum" => OptimizerConfig::momentum(),
            "nesterov" => OptimizerConfig::nesterov(),
            "rmsprop" => OptimizerConfig::rmsprop(),
            "adam" => OptimizerConfig::adam(),
            "adamw" => OptimizerConfig::adamw(),
            _ => {
                return Err(Error::Config(format!(
                    "unknown optimizer '{text}'; expected one of {}",
                    Self::NAMES.join(", ")
                )));
            }
        };
        for argument in arguments.split(',').map(str::trim) {
            if argument.is_empty() {
                continue;
            }
            let (key, value) = argument.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "optimizer '{text}': '{argument}' is not of the form key=value, such as lr=0.01"
                ))
            })?;
            config.set(text, &key.trim().replace('-', "_"), value.trim())?;
        }
        config.validate()?;
        Ok(config)
    }
}

impl OptimizerConfig {
    /// Sets hyperparameter `key` from its text `value`. `text` is the whole input, for messages.
    fn set(&mut self, text: &str, key: &str, value: &str) -> Result<()> {
        if key == "nesterov" {
            let OptimizerConfig::Sgd { nesterov, .. } = self else {
                return Err(self.unknown_key(text, key));
            };
            *nesterov = value.parse().map_err(|_| {
                Error::Config(format!(
                    "optimizer '{text}': nesterov must be true or false, not '{value}'"
                ))
            })?;
            return Ok(());
        }
        let number: f64 = value.parse().map_err(|_| {
            Error::Config(format!(
                "optimizer '{text}': {key} '{value}' is not a number"
            ))
        })?;
        let slot = match (&mut *self, key) {
            (OptimizerConfig::Sgd { lr, .. }, "lr")
            | (OptimizerConfig::RmsProp { lr, .. }, "lr")
            | (OptimizerConfig::Adam { lr, .. }, "lr")
            | (OptimizerConfig::AdamW { lr, .. }, "lr") => lr,
            (OptimizerConfig::Sgd { momentum, .. }, "momentum")
            | (OptimizerConfig::RmsProp { momentum, .. }, "momentum") => momentum,
            (OptimizerConfig::RmsProp { alpha, .. }, "alpha") => alpha,
            (OptimizerConfig::RmsProp { eps, .. }, "eps")
            | (OptimizerConfig::Adam { eps, .. }, "eps")
            | (OptimizerConfig::AdamW { eps, .. }, "eps") => eps,
            (OptimizerConfig::Adam { beta1, .. }, "beta1")
            | (OptimizerConfig::AdamW { beta1, .. }, "beta1") => beta1,
            (OptimizerConfig::Adam { beta2, .. }, "beta2")
            | (OptimizerConfig::AdamW { beta2, .. }, "beta2") => beta2,
            (OptimizerConfig::AdamW { weight_decay, .. }, "weight_decay") => weight_decay,
            _ => return Err(self.unknown_key(text, key)),
        };
        *slot = number;
        Ok(())
    }

    fn unknown_key(&self, text: &str, key: &str) -> Error {
        let keys = match self {
            OptimizerConfig::Sgd { .. } => "lr, momentum, nesterov",
            OptimizerConfig::RmsProp { .. } => "lr, alpha, eps, momentum",
            OptimizerConfig::Adam { .. } => "lr, beta1, beta2, eps",
            OptimizerConfig::AdamW { .. } => "lr, beta1, beta2, eps, weight_decay",
        };
        Error::Config(format!(
            "optimizer '{text}' has no parameter '{key}'; its parameters are {keys}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(text: &str) -> String {
        match text.parse::<OptimizerConfig>() {
            Ok(config) => panic!("'{text}' parsed as {config:?}"),
            Err(Error::Config(message)) => message,
            Err(other) => panic!("'{text}' gave a non-config error: {other}"),
        }
    }

    #[test]
    fn names_parse_to_defaults() {
        let cases = [
            ("sgd", OptimizerConfig::sgd()),
            ("momentum", OptimizerConfig::momentum()),
            ("nesterov", OptimizerConfig::nesterov()),
            ("rmsprop", OptimizerConfig::rmsprop()),
            ("RMS_Prop", OptimizerConfig::rmsprop()),
            ("adam", OptimizerConfig::adam()),
            (" AdamW ", OptimizerConfig::adamw()),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<OptimizerConfig>().unwrap(), expected, "{text}");
        }
        for name in OptimizerConfig::NAMES {
            assert!(name.parse::<OptimizerConfig>().is_ok(), "{name}");
        }
    }

    #[test]
    fn defaults_match_pytorch() {
        assert_eq!(
            OptimizerConfig::rmsprop(),
            OptimizerConfig::RmsProp {
                lr: 0.01,
                alpha: 0.99,
                eps: 1e-8,
                momentum: 0.0
            }
        );
        assert_eq!(
            OptimizerConfig::adam(),
            OptimizerConfig::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8
            }
        );
        assert_eq!(
            OptimizerConfig::adamw(),
            OptimizerConfig::AdamW {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01
            }
        );
    }

    #[test]
    fn parameters_override_defaults() {
        let config: OptimizerConfig = "adam(lr=0.01, beta2 = 0.99)".parse().unwrap();
        assert_eq!(
            config,
            OptimizerConfig::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-8
            }
        );
        let config: OptimizerConfig = "sgd(lr=0.1, momentum=0.5, nesterov=true)".parse().unwrap();
        assert_eq!(
            config,
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.5,
                nesterov: true
            }
        );
        let config: OptimizerConfig = "adamw(weight-decay=0)".parse().unwrap();
        assert_eq!(
            config,
            OptimizerConfig::AdamW {
                lr: 1e-3,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0
            }
        );
    }

    #[test]
    fn display_parses_back() {
        let configs = [
            OptimizerConfig::sgd().with_lr(0.25),
            OptimizerConfig::momentum(),
            OptimizerConfig::Sgd {
                lr: 0.003,
                momentum: 0.95,
                nesterov: true,
            },
            OptimizerConfig::RmsProp {
                lr: 1e-4,
                alpha: 0.9,
                eps: 1e-6,
                momentum: 0.5,
            },
            OptimizerConfig::adam(),
            OptimizerConfig::adamw(),
        ];
        for config in configs {
            let text = config.to_string();
            assert_eq!(text.parse::<OptimizerConfig>().unwrap(), config, "{text}");
        }
        assert_eq!(
            OptimizerConfig::adam().to_string(),
            "adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)"
        );
        assert_eq!(OptimizerConfig::sgd().to_string(), "sgd(lr=0.01)");
    }

    #[test]
    fn serde_round_trip() {
        for config in [
            OptimizerConfig::nesterov().with_lr(0.1),
            OptimizerConfig::rmsprop(),
            OptimizerConfig::adam(),
            OptimizerConfig::adamw(),
        ] {
            let json = serde_json::to_string(&config).unwrap();
            let back: OptimizerConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, config, "{json}");
        }
        let json = serde_json::to_string(&OptimizerConfig::sgd().with_lr(0.5)).unwrap();
        assert_eq!(
            json,
            r#"{"sgd":{"lr":0.5,"momentum":0.0,"nesterov":false}}"#
        );
    }

    #[test]
    fn unknown_name_and_key_are_errors() {
        let message = config_error("adagrad");
        assert!(message.contains("unknown optimizer 'adagrad'"), "{message}");
        assert!(message.contains("rmsprop"), "{message}");

        let message = config_error("adam(alpha=0.9)");
        assert!(message.contains("no parameter 'alpha'"), "{message}");
        assert!(message.contains("beta1"), "{message}");

        let message = config_error("rmsprop(nesterov=true)");
        assert!(message.contains("no parameter 'nesterov'"), "{message}");
    }

    #[test]
    fn malformed_arguments_are_errors() {
        let message = config_error("adam(lr=0.1");
        assert!(message.contains("closing ')'"), "{message}");
        let message = config_error("adam(lr)");
        assert!(message.contains("key=value"), "{message}");
        let message = config_error("adam(lr=fast)");
        assert!(message.contains("'fast' is not a number"), "{message}");
        let message = config_error("sgd(nesterov=yes)");
        assert!(message.contains("true or false"), "{message}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        let cases = [
            ("sgd(lr=-0.1)", "learning rate -0.1"),
            ("sgd(lr=inf)", "learning rate inf"),
            ("sgd(lr=NaN)", "learning rate NaN"),
            ("momentum(momentum=-0.5)", "momentum -0.5 is outside [0, 1)"),
            ("momentum(momentum=1)", "momentum 1.0 is outside [0, 1)"),
            (
                "nesterov(momentum=0)",
                "Nesterov momentum needs a positive momentum",
            ),
            ("rmsprop(alpha=1)", "alpha 1.0 is outside [0, 1)"),
            ("rmsprop(eps=0)", "eps 0.0 must be positive"),
            ("rmsprop(eps=-1e-8)", "eps -1e-8 must be positive"),
            ("rmsprop(momentum=2)", "momentum 2.0 is outside"),
            ("adam(beta1=1)", "beta1 1.0 is outside [0, 1)"),
            ("adam(beta1=-0.1)", "beta1 -0.1 is outside"),
            ("adam(beta2=1.5)", "beta2 1.5 is outside"),
            ("adam(eps=inf)", "eps inf must be positive and finite"),
            ("adamw(weight_decay=-0.01)", "weight decay -0.01"),
            ("adamw(weight_decay=inf)", "weight decay inf"),
        ];
        for (text, expected) in cases {
            let message = config_error(text);
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn validate_accepts_edges() {
        assert!(OptimizerConfig::sgd().with_lr(0.0).validate().is_ok());
        assert!(
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.0,
                nesterov: false
            }
            .validate()
            .is_ok()
        );
        assert!(
            OptimizerConfig::Adam {
                lr: 1e-3,
                beta1: 0.0,
                beta2: 0.0,
                eps: 1e-12
            }
            .validate()
            .is_ok()
        );
        assert!("adamw(weight_decay=0)".parse::<OptimizerConfig>().is_ok());
    }

    #[test]
    fn with_lr_replaces_rate_only() {
        let config = OptimizerConfig::rmsprop().with_lr(0.5);
        assert_eq!(config.lr(), 0.5);
        assert_eq!(
            config,
            OptimizerConfig::RmsProp {
                lr: 0.5,
                alpha: 0.99,
                eps: 1e-8,
                momentum: 0.0
            }
        );
    }
}
