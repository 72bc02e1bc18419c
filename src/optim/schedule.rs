//! Learning rate schedules: the rate of each epoch as a function of the base rate `γ0` and the
//! 0-based epoch `e`.
//!
//! | schedule | `γ(e)` | PyTorch equivalent |
//! |---|---|---|
//! | constant | `γ0` | none |
//! | step | `γ0 · gamma^⌊e / every_epochs⌋` | `StepLR(step_size=every_epochs, gamma)`, default gamma 0.1 |
//! | cosine | `min_lr + (γ0 - min_lr) (1 + cos(π e / T)) / 2` for `e ≤ T`, `min_lr` after | `CosineAnnealingLR(T_max=T, eta_min=min_lr)`, default `eta_min` 0 |
//!
//! The cosine formula is the closed form that PyTorch's `CosineAnnealingLR` documentation
//! (version 2.9) gives. Past `T` epochs this schedule stays at `min_lr`, whereas that closed
//! form would rise again. Each schedule gives the rate at `e = 0` as `γ0`, as PyTorch's
//! schedulers do before their first `step()`.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A learning rate schedule over epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The base rate at every epoch.
    Constant,
    /// The rate multiplied by `gamma` every `every_epochs` epochs.
    Step {
        /// Epochs between two decays, at least 1.
        every_epochs: usize,
        /// Multiplier per decay, positive and finite.
        gamma: f64,
    },
    /// Cosine annealing from the base rate down to `min_lr` over `total_epochs` epochs.
    Cosine {
        /// `T`, the epoch at which the rate reaches `min_lr`. `None` is the number of epochs of
        /// the training run, which [`Schedule::with_total_epochs`] fills in.
        total_epochs: Option<usize>,
        /// The final rate, finite and non-negative.
        min_lr: f64,
    },
}

impl Schedule {
    /// `gamma` of a step schedule written without one, PyTorch's `StepLR` default.
    pub const DEFAULT_STEP_GAMMA: f64 = 0.1;

    /// Returns this schedule with `epochs` as a cosine schedule's `total_epochs` where that is
    /// `None`. Every other schedule is returned unchanged.
    pub fn with_total_epochs(self, epochs: usize) -> Self {
        match self {
            Schedule::Cosine {
                total_epochs: None,
                min_lr,
            } => Schedule::Cosine {
                total_epochs: Some(epochs),
                min_lr,
            },
            other => other,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a step schedule with `every_epochs` of 0 or a `gamma` that is not
    /// positive and finite, or a cosine schedule with `total_epochs` of `Some(0)` or a
    /// negative or non-finite `min_lr`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                if every_epochs == 0 {
                    return Err(Error::Config(
                        "a step schedule needs at least 1 epoch between decays, such as step:10:0.5"
                            .into(),
                    ));
                }
                if !(gamma > 0.0 && gamma.is_finite()) {
                    return Err(Error::Config(format!(
                        "step schedule gamma {gamma:?} must be positive and finite, such as 0.5"
                    )));
                }
                Ok(())
            }
            Schedule::Cosine {
                total_epochs,
                min_lr,
            } => {
                if total_epochs == Some(0) {
                    return Err(Error::Config(
                        "a cosine schedule needs at least 1 epoch, such as cosine:100".into(),
                    ));
                }
                if !(min_lr >= 0.0 && min_lr.is_finite()) {
                    return Err(Error::Config(format!(
                        "cosine schedule min_lr {min_lr:?} must be finite and non-negative, \
                         such as 0 or 1e-5"
                    )));
                }
                Ok(())
            }
        }
    }

    /// Returns the learning rate of 0-based `epoch` for base rate `base_lr`, by the formulas in
    /// the module documentation.
    ///
    /// # Panics
    ///
    /// For a cosine schedule whose `total_epochs` is `None`; call
    /// [`Schedule::with_total_epochs`] first.
    pub fn lr_at(&self, base_lr: f64, epoch: usize) -> f64 {
        match *self {
            Schedule::Constant => base_lr,
            Schedule::Step {
                every_epochs,
                gamma,
            } => {
                let decays = (epoch / every_epochs.max(1)) as f64;
                base_lr * gamma.powf(decays)
            }
            Schedule::Cosine {
                total_epochs,
                min_lr,
            } => {
                let total = total_epochs.expect(
                    "a cosine schedule needs total_epochs; call Schedule::with_total_epochs first",
                );
                let progress = epoch.min(total) as f64 / total.max(1) as f64;
                min_lr + (base_lr - min_lr) * (1.0 + (PI * progress).cos()) / 2.0
            }
        }
    }
}

impl fmt::Display for Schedule {
    /// Writes the form that [`FromStr`] parses back: `constant`, `step:10:0.5`, `cosine`,
    /// `cosine:100` or `cosine:100:1e-5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Step {
                every_epochs,
                gamma,
            } => write!(f, "step:{every_epochs}:{gamma:?}"),
            Schedule::Cosine {
                total_epochs: None,
                min_lr: 0.0,
            } => f.write_str("cosine"),
            Schedule::Cosine {
                total_epochs: None,
                min_lr,
            } => write!(f, "cosine::{min_lr:?}"),
            Schedule::Cosine {
                total_epochs: Some(total),
                min_lr: 0.0,
            } => write!(f, "cosine:{total}"),
            Schedule::Cosine {
                total_epochs: Some(total),
                min_lr,
            } => write!(f, "cosine:{total}:{min_lr:?}"),
        }
    }
}

impl FromStr for Schedule {
    type Err = Error;

    /// Parses `constant`, `step:EVERY`, `step:EVERY:GAMMA`, `cosine`, `cosine:TOTAL`,
    /// `cosine:TOTAL:MIN_LR` or `cosine::MIN_LR`, case-insensitively. An omitted GAMMA is 0.1
    /// and an omitted MIN_LR is 0. An omitted TOTAL is `None`, the run's epoch count.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown name, a field that is not a number, too many fields, or
    /// values that [`Schedule::validate`] rejects.
    fn from_str(text: &str) -> Result<Self> {
        let normalized = text.trim().to_ascii_lowercase();
        let mut fields = normalized.split(':').map(str::trim);
        let name = fields.next().unwrap_or_default();
        let arguments: Vec<&str> = fields.collect();
        let schedule = match (name, arguments.as_slice()) {
            ("constant", []) => Schedule::Constant,
            ("step", [every]) => Schedule::Step {
                every_epochs: parse_field(text, "the epochs between decays", every)?,
                gamma: Self::DEFAULT_STEP_GAMMA,
            },
            ("step", [every, gamma]) => Schedule::Step {
                every_epochs: parse_field(text, "the epochs between decays", every)?,
                gamma: parse_field(text, "gamma", gamma)?,
            },
            ("cosine", []) => Schedule::Cosine {
                total_epochs: None,
                min_lr: 0.0,
            },
            ("cosine", [total]) => Schedule::Cosine {
                total_epochs: parse_total(text, total)?,
                min_lr: 0.0,
            },
            ("cosine", [total, min_lr]) => Schedule::Cosine {
                total_epochs: parse_total(text, total)?,
                min_lr: parse_field(text, "min_lr", min_lr)?,
            },
            _ => {
                return Err(Error::Config(format!(
                    "unknown learning rate schedule '{text}'; expected constant, \
                     step:EVERY[:GAMMA] or cosine[:TOTAL[:MIN_LR]], such as step:10:0.5"
                )));
            }
        };
        schedule.validate()?;
        Ok(schedule)
    }
}

fn parse_field<V: FromStr>(text: &str, what: &str, field: &str) -> Result<V> {
    field.parse().map_err(|_| {
        Error::Config(format!(
            "learning rate schedule '{text}': {what} '{field}' is not a valid number"
        ))
    })
}

fn parse_total(text: &str, field: &str) -> Result<Option<usize>> {
    if field.is_empty() {
        Ok(None)
    } else {
        parse_field(text, "the total epochs", field).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn constant_is_base_rate() {
        for epoch in [0, 1, 1000] {
            assert_eq!(Schedule::Constant.lr_at(0.3, epoch), 0.3);
        }
    }

    #[test]
    fn step_decays_every_interval() {
        let schedule = Schedule::Step {
            every_epochs: 3,
            gamma: 0.5,
        };
        let expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125];
        for (epoch, &want) in expected.iter().enumerate() {
            assert_eq!(schedule.lr_at(1.0, epoch), want, "epoch {epoch}");
        }
        assert!(close(schedule.lr_at(0.1, 7), 0.025));
    }

    #[test]
    fn cosine_matches_closed_form() {
        let schedule = Schedule::Cosine {
            total_epochs: Some(4),
            min_lr: 0.0,
        };
        // (1 + cos(π e / 4)) / 2 for e = 0..4: 1, (2 + √2) / 4, 1/2, (2 - √2) / 4, 0.
        let root2 = 2f64.sqrt();
        let expected = [1.0, (2.0 + root2) / 4.0, 0.5, (2.0 - root2) / 4.0, 0.0];
        for (epoch, &want) in expected.iter().enumerate() {
            let got = schedule.lr_at(0.1, epoch);
            assert!(close(got, 0.1 * want), "epoch {epoch}: {got}");
        }
    }

    #[test]
    fn cosine_with_floor_stays_at_min() {
        let schedule = Schedule::Cosine {
            total_epochs: Some(10),
            min_lr: 0.01,
        };
        assert_eq!(schedule.lr_at(0.1, 0), 0.1);
        assert!(close(schedule.lr_at(0.1, 5), 0.055));
        assert!(close(schedule.lr_at(0.1, 10), 0.01));
        assert!(close(schedule.lr_at(0.1, 25), 0.01));
        let mut previous = f64::INFINITY;
        for epoch in 0..=10 {
            let lr = schedule.lr_at(0.1, epoch);
            assert!(lr <= previous, "epoch {epoch}: {lr} > {previous}");
            previous = lr;
        }
    }

    #[test]
    fn with_total_epochs_fills_only_missing() {
        let open: Schedule = "cosine".parse().unwrap();
        assert_eq!(
            open.with_total_epochs(50),
            Schedule::Cosine {
                total_epochs: Some(50),
                min_lr: 0.0
            }
        );
        let fixed: Schedule = "cosine:20".parse().unwrap();
        assert_eq!(fixed.with_total_epochs(50), fixed);
        assert_eq!(Schedule::Constant.with_total_epochs(50), Schedule::Constant);
    }

    #[test]
    #[should_panic(expected = "with_total_epochs")]
    fn cosine_without_total_panics() {
        "cosine".parse::<Schedule>().unwrap().lr_at(0.1, 3);
    }

    #[test]
    fn names_parse() {
        let cases = [
            ("constant", Schedule::Constant),
            (
                "step:10:0.5",
                Schedule::Step {
                    every_epochs: 10,
                    gamma: 0.5,
                },
            ),
            (
                "Step:7",
                Schedule::Step {
                    every_epochs: 7,
                    gamma: 0.1,
                },
            ),
            (
                "cosine",
                Schedule::Cosine {
                    total_epochs: None,
                    min_lr: 0.0,
                },
            ),
            (
                "cosine:100",
                Schedule::Cosine {
                    total_epochs: Some(100),
                    min_lr: 0.0,
                },
            ),
            (
                "cosine:100:1e-5",
                Schedule::Cosine {
                    total_epochs: Some(100),
                    min_lr: 1e-5,
                },
            ),
            (
                "cosine::0.001",
                Schedule::Cosine {
                    total_epochs: None,
                    min_lr: 0.001,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Schedule>().unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn display_parses_back() {
        for text in [
            "constant",
            "step:10:0.5",
            "cosine",
            "cosine:100",
            "cosine:100:1e-5",
            "cosine::0.001",
        ] {
            let schedule: Schedule = text.parse().unwrap();
            assert_eq!(schedule.to_string(), text);
        }
        let schedule = Schedule::Step {
            every_epochs: 5,
            gamma: 0.1,
        };
        assert_eq!(schedule.to_string(), "step:5:0.1");
    }

    #[test]
    fn serde_round_trip() {
        for schedule in [
            Schedule::Constant,
            Schedule::Step {
                every_epochs: 10,
                gamma: 0.5,
            },
            Schedule::Cosine {
                total_epochs: Some(30),
                min_lr: 1e-4,
            },
        ] {
            let json = serde_json::to_string(&schedule).unwrap();
            let back: Schedule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, schedule, "{json}");
        }
    }

    #[test]
    fn invalid_text_is_error() {
        let cases = [
            ("linear", "unknown learning rate schedule"),
            ("step", "unknown learning rate schedule"),
            ("step:1:2:3", "unknown learning rate schedule"),
            ("constant:3", "unknown learning rate schedule"),
            ("step:ten", "'ten' is not a valid number"),
            ("step:-1", "'-1' is not a valid number"),
            ("step:0", "at least 1 epoch between decays"),
            ("step:10:0", "gamma 0.0 must be positive"),
            ("step:10:inf", "gamma inf must be positive"),
            ("cosine:0", "needs at least 1 epoch"),
            ("cosine:10:-0.1", "min_lr -0.1"),
            ("cosine:10:x", "min_lr 'x' is not a valid number"),
        ];
        for (text, expected) in cases {
            let error = text.parse::<Schedule>().unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{text}: {error}");
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }
}
