//! Feature scaling. A [`Scaler`] is fitted on the training set only, stored with the model, and
//! applied unchanged to validation, test and prediction data.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The kind of scaling that [`Scaler::fit`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalerKind {
    /// No scaling.
    None,
    /// Standardization to mean 0 and standard deviation 1.
    Standard,
    /// Min-max scaling of the training range to `[0, 1]`.
    MinMax,
}

impl FromStr for ScalerKind {
    type Err = Error;

    /// Parses "none", "standard", or "minmax" (also "min-max"), ignoring ASCII case.
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ScalerKind::None),
            "standard" => Ok(ScalerKind::Standard),
            "minmax" | "min-max" => Ok(ScalerKind::MinMax),
            _ => Err(Error::Config(format!(
                "unknown scaler \"{text}\"; expected \"none\", \"standard\" or \"minmax\""
            ))),
        }
    }
}

impl fmt::Display for ScalerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScalerKind::None => "none",
            ScalerKind::Standard => "standard",
            ScalerKind::MinMax => "minmax",
        })
    }
}

/// Per-feature scaling statistics, fitted on training data. Each vector has one entry per
/// feature column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Scaler {
    /// Leaves features unchanged.
    None,
    /// Standardization: `x' = (x - mean) / std` per column.
    ///
    /// `std` is the population standard deviation, `sqrt(sum((x - mean)^2) / m)`, as in
    /// scikit-learn's `StandardScaler`. A column whose `std` is 0 (a constant column) is divided
    /// by 1 instead, so it becomes all zeros.
    Standard {
        /// Mean of each column over the training rows.
        mean: Vec<f32>,
        /// Population standard deviation of each column over the training rows.
        std: Vec<f32>,
    },
    /// Min-max scaling: `x' = (x - min) / (max - min)` per column, which maps the training
    /// range to `[0, 1]`; other data may fall outside it.
    ///
    /// A column with `max == min` is divided by 1 instead, so it becomes all zeros on the
    /// training data.
    MinMax {
        /// Minimum of each column over the training rows.
        min: Vec<f32>,
        /// Maximum of each column over the training rows.
        max: Vec<f32>,
    },
}

impl Scaler {
    /// Computes the statistics of `kind` over `features` (`m x n_features`, the training set
    /// only).
    ///
    /// The sums run in `f64`. A column whose values are all equal gets `std` exactly 0. With
    /// no rows, every statistic is 0, so the fitted scaler leaves data unchanged. The features
    /// should be finite, as the loaders guarantee: a NaN makes its column's statistics NaN.
    pub fn fit(kind: ScalerKind, features: ArrayView2<f32>) -> Scaler {
        match kind {
            ScalerKind::None => Scaler::None,
            ScalerKind::Standard => {
                let (mean, std) = features
                    .axis_iter(Axis(1))
                    .map(|column| mean_and_std(column.iter().copied()))
                    .unzip();
                Scaler::Standard { mean, std }
            }
            ScalerKind::MinMax => {
                let (min, max) = features
                    .axis_iter(Axis(1))
                    .map(|column| min_and_max(column.iter().copied()).unwrap_or((0.0, 0.0)))
                    .unzip();
                Scaler::MinMax { min, max }
            }
        }
    }

    /// Returns the kind of scaling.
    pub fn kind(&self) -> ScalerKind {
        match self {
            Scaler::None => ScalerKind::None,
            Scaler::Standard { .. } => ScalerKind::Standard,
            Scaler::MinMax { .. } => ScalerKind::MinMax,
        }
    }

    /// Returns the number of feature columns the scaler was fitted on, or `None` for
    /// [`Scaler::None`], which accepts any number.
    pub fn n_features(&self) -> Option<usize> {
        match self {
            Scaler::None => None,
            Scaler::Standard { mean, .. } => Some(mean.len()),
            Scaler::MinMax { min, .. } => Some(min.len()),
        }
    }

    /// Scales `features` (`m x n_features`) in place with the fitted statistics.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `features` has a different number of columns than the scaler was
    /// fitted on, or when the scaler's two vectors differ in length (a damaged model file).
    pub fn transform(&self, features: &mut Array2<f32>) -> Result<()> {
        // Every kind computes (x - shift) / divisor per column.
        let (shifts, divisors): (&[f32], Vec<f32>) = match self {
            Scaler::None => return Ok(()),
            Scaler::Standard { mean, std } => {
                self.check_lengths(mean.len(), std.len())?;
                (mean, std.clone())
            }
            Scaler::MinMax { min, max } => {
                self.check_lengths(min.len(), max.len())?;
                (
                    min,
                    min.iter().zip(max).map(|(low, high)| high - low).collect(),
                )
            }
        };
        if features.ncols() != shifts.len() {
            return Err(Error::Shape(format!(
                "the {} scaler was fitted on {} features, but the data has {}",
                self.kind(),
                shifts.len(),
                features.ncols()
            )));
        }

        // A constant training column has divisor 0; dividing by 1 instead keeps it finite.
        let divisors: Vec<f32> = divisors
            .into_iter()
            .map(|divisor| if divisor == 0.0 { 1.0 } else { divisor })
            .collect();
        for mut row in features.axis_iter_mut(Axis(0)) {
            for ((value, &shift), &divisor) in row.iter_mut().zip(shifts).zip(&divisors) {
                *value = (*value - shift) / divisor;
            }
        }
        Ok(())
    }

    fn check_lengths(&self, first: usize, second: usize) -> Result<()> {
        if first == second {
            return Ok(());
        }
        Err(Error::Shape(format!(
            "the {} scaler has {first} and {second} entries in its two vectors, which must be \
             equal; the stored scaler is damaged",
            self.kind()
        )))
    }
}

/// Returns the mean and the population standard deviation, with the standard deviation exactly
/// 0 when all values are equal.
fn mean_and_std(values: impl Iterator<Item = f32> + Clone) -> (f32, f32) {
    let Some((low, high)) = min_and_max(values.clone()) else {
        return (0.0, 0.0);
    };
    if low == high {
        return (low, 0.0);
    }

    let mut count = 0usize;
    let mut sum = 0.0f64;
    for value in values.clone() {
        count += 1;
        sum += f64::from(value);
    }
    let mean = sum / count as f64;
    let squares: f64 = values.map(|value| (f64::from(value) - mean).powi(2)).sum();
    let std = (squares / count as f64).sqrt();
    (mean as f32, std as f32)
}

fn min_and_max(values: impl Iterator<Item = f32>) -> Option<(f32, f32)> {
    values.fold(None, |range, value| match range {
        None => Some((value, value)),
        Some((low, high)) => Some((low.min(value), high.max(value))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn kind_parses_names() {
        assert_eq!("none".parse::<ScalerKind>().unwrap(), ScalerKind::None);
        assert_eq!(
            "Standard".parse::<ScalerKind>().unwrap(),
            ScalerKind::Standard
        );
        assert_eq!("minmax".parse::<ScalerKind>().unwrap(), ScalerKind::MinMax);
        assert_eq!("min-max".parse::<ScalerKind>().unwrap(), ScalerKind::MinMax);
        let error = "zscore".parse::<ScalerKind>().unwrap_err().to_string();
        assert!(error.contains("\"zscore\""), "{error}");
    }

    #[test]
    fn kind_display_parses_back() {
        for kind in [ScalerKind::None, ScalerKind::Standard, ScalerKind::MinMax] {
            assert_eq!(kind.to_string().parse::<ScalerKind>().unwrap(), kind);
        }
    }

    #[test]
    fn standard_uses_population_std() {
        // Column 0: mean 2.5, population variance 1.25. Column 1: mean 20, variance 50.
        let features = array![[1.0f32, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 20.0]];
        let scaler = Scaler::fit(ScalerKind::Standard, features.view());
        let Scaler::Standard { mean, std } = &scaler else {
            panic!("expected a standard scaler, got {scaler:?}");
        };
        assert_eq!(mean, &vec![2.5, 20.0]);
        assert!((std[0] - 1.25f32.sqrt()).abs() < 1e-6, "{std:?}");
        assert!((std[1] - 50f32.sqrt()).abs() < 1e-5, "{std:?}");
    }

    #[test]
    fn standard_gives_zero_mean_unit_std() {
        let mut features = array![[1.0f32, -5.0], [2.0, 0.0], [6.0, 5.0], [7.0, 8.0]];
        let scaler = Scaler::fit(ScalerKind::Standard, features.view());
        scaler.transform(&mut features).unwrap();
        let refit = Scaler::fit(ScalerKind::Standard, features.view());
        let Scaler::Standard { mean, std } = refit else {
            panic!("expected a standard scaler");
        };
        for (m, s) in mean.iter().zip(&std) {
            assert!(m.abs() < 1e-6, "mean {m}");
            assert!((s - 1.0).abs() < 1e-6, "std {s}");
        }
    }

    #[test]
    fn standard_constant_column_is_zero() {
        let mut features = array![[0.1f32, 1.0], [0.1, 2.0], [0.1, 3.0]];
        let scaler = Scaler::fit(ScalerKind::Standard, features.view());
        let Scaler::Standard { std, .. } = &scaler else {
            panic!("expected a standard scaler");
        };
        assert_eq!(std[0], 0.0);
        scaler.transform(&mut features).unwrap();
        assert_eq!(features.column(0).to_vec(), vec![0.0, 0.0, 0.0]);
        assert!(features.iter().all(|value| value.is_finite()));
    }

    #[test]
    fn minmax_maps_training_range() {
        let mut features = array![[2.0f32, -1.0], [4.0, 1.0], [6.0, 0.0]];
        let scaler = Scaler::fit(ScalerKind::MinMax, features.view());
        assert_eq!(
            scaler,
            Scaler::MinMax {
                min: vec![2.0, -1.0],
                max: vec![6.0, 1.0],
            }
        );
        scaler.transform(&mut features).unwrap();
        assert_eq!(features, array![[0.0, 0.0], [0.5, 1.0], [1.0, 0.5]]);
    }

    #[test]
    fn minmax_constant_column_is_zero() {
        let mut features = array![[3.0f32, 1.0], [3.0, 2.0]];
        let scaler = Scaler::fit(ScalerKind::MinMax, features.view());
        scaler.transform(&mut features).unwrap();
        assert_eq!(features, array![[0.0, 0.0], [0.0, 1.0]]);
    }

    #[test]
    fn transform_uses_training_statistics() {
        let train = array![[0.0f32], [10.0]];
        let scaler = Scaler::fit(ScalerKind::MinMax, train.view());
        let mut test = array![[5.0f32], [20.0], [-10.0]];
        scaler.transform(&mut test).unwrap();
        assert_eq!(test, array![[0.5], [2.0], [-1.0]]);
    }

    #[test]
    fn none_leaves_data_unchanged() {
        let mut features = array![[1.0f32, 2.0, 3.0]];
        let scaler = Scaler::fit(ScalerKind::None, features.view());
        assert_eq!(scaler, Scaler::None);
        assert_eq!(scaler.n_features(), None);
        scaler.transform(&mut features).unwrap();
        assert_eq!(features, array![[1.0, 2.0, 3.0]]);
    }

    #[test]
    fn fit_on_no_rows_is_identity() {
        let empty = Array2::<f32>::zeros((0, 2));
        for kind in [ScalerKind::Standard, ScalerKind::MinMax] {
            let scaler = Scaler::fit(kind, empty.view());
            let mut features = array![[1.5f32, -2.0]];
            scaler.transform(&mut features).unwrap();
            assert_eq!(features, array![[1.5, -2.0]], "{kind}");
        }
    }

    #[test]
    fn transform_rejects_wrong_width() {
        let scaler = Scaler::fit(ScalerKind::Standard, array![[1.0f32, 2.0]].view());
        let mut features = array![[1.0f32, 2.0, 3.0]];
        let error = scaler.transform(&mut features).unwrap_err().to_string();
        assert!(error.contains("fitted on 2 features"), "{error}");
        assert!(error.contains("has 3"), "{error}");
    }

    #[test]
    fn transform_rejects_damaged_scaler() {
        let scaler = Scaler::MinMax {
            min: vec![0.0, 0.0],
            max: vec![1.0],
        };
        let mut features = array![[1.0f32, 2.0]];
        let error = scaler.transform(&mut features).unwrap_err().to_string();
        assert!(error.contains("damaged"), "{error}");
    }

    #[test]
    fn serde_round_trip() {
        for scaler in [
            Scaler::None,
            Scaler::Standard {
                mean: vec![1.0, 2.0],
                std: vec![0.5, 0.0],
            },
            Scaler::MinMax {
                min: vec![-1.0],
                max: vec![3.0],
            },
        ] {
            let json = serde_json::to_string(&scaler).unwrap();
            let back: Scaler = serde_json::from_str(&json).unwrap();
            assert_eq!(back, scaler);
        }
    }
}
