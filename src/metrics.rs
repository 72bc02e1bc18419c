//! Evaluation metrics: accuracy, the confusion matrix, per-class precision, recall and F1, and
//! R² and mean absolute error for regression.
//!
//! Outputs and targets follow the network's layout: `n_out x m`, one column per example.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::cost::Cost;
use crate::error::{Error, Result};

/// Returns the predicted class of each column: the row of the largest output for a multi-class output,
/// `a > 0.5` for a single sigmoid output. Multi-label and regression outputs have no single
/// class, so they return `None`, as do multi-class outputs without rows and binary outputs
/// with other than one row.
pub fn predicted_classes(outputs: ArrayView2<'_, f32>, cost: Cost) -> Option<Vec<usize>> {
    names_single_class(outputs.nrows(), cost).then(|| {
        outputs
            .axis_iter(Axis(1))
            .map(|column| column_class(column, cost))
            .collect()
    })
}

/// True when outputs of `rows` rows under `cost` name one class per column: multi-class
/// outputs with at least one row and a single binary output.
fn names_single_class(rows: usize, cost: Cost) -> bool {
    match cost {
        Cost::CategoricalCrossEntropy => rows > 0,
        Cost::BinaryCrossEntropy => rows == 1,
        Cost::MultiLabelBinaryCrossEntropy | Cost::MeanSquaredError => false,
    }
}

/// Returns the predicted class of one column, for outputs where [`names_single_class`] is true.
fn column_class(column: ArrayView1<'_, f32>, cost: Cost) -> usize {
    match cost {
        Cost::BinaryCrossEntropy => usize::from(column[0] > 0.5),
        _ => argmax(column.iter().copied()),
    }
}

/// Index of the largest value; the first one on ties; NaN never wins.
pub fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (index, value) in values.enumerate() {
        if value > best.1 {
            best = (index, value);
        }
    }
    best.0
}

/// Returns the fraction of examples predicted right, or `None` for regression, for an empty batch and
/// for outputs that name no single class (see [`predicted_classes`]).
///
/// Multi-class and binary: the predicted class equals the target's. Multi-label: every output
/// thresholded at 0.5 equals its target (subset accuracy, as scikit-learn's `accuracy_score`).
///
/// # Errors
///
/// [`Error::Shape`] when `outputs` and `targets` differ in shape.
pub fn accuracy(
    outputs: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
    cost: Cost,
) -> Result<Option<f64>> {
    check_same_shape(outputs, targets)?;
    let m = outputs.ncols();
    if m == 0 {
        return Ok(None);
    }
    let correct = match cost {
        Cost::MeanSquaredError => return Ok(None),
        Cost::MultiLabelBinaryCrossEntropy => outputs
            .axis_iter(Axis(1))
            .zip(targets.axis_iter(Axis(1)))
            .filter(|(a, y)| {
                a.iter()
                    .zip(y.iter())
                    .all(|(&a, &y)| (a > 0.5) == (y > 0.5))
            })
            .count(),
        // Compared column by column rather than through `predicted_classes`, so that the
        // per-batch accuracy in training allocates nothing.
        Cost::CategoricalCrossEntropy | Cost::BinaryCrossEntropy => {
            if !names_single_class(outputs.nrows(), cost) {
                return Ok(None);
            }
            outputs
                .axis_iter(Axis(1))
                .zip(targets.axis_iter(Axis(1)))
                .filter(|(a, y)| column_class(a.view(), cost) == column_class(y.view(), cost))
                .count()
        }
    };
    Ok(Some(correct as f64 / m as f64))
}

fn check_same_shape(outputs: ArrayView2<'_, f32>, targets: ArrayView2<'_, f32>) -> Result<()> {
    if outputs.dim() != targets.dim() {
        return Err(Error::Shape(format!(
            "the outputs are {:?} but the targets are {:?}",
            outputs.dim(),
            targets.dim()
        )));
    }
    Ok(())
}

/// A confusion matrix: `counts[[true_class, predicted_class]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    /// `k x k` counts, rows are true classes, columns predicted ones.
    pub counts: Array2<usize>,
}

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// Of the examples predicted as this class, the fraction that are; 0 when none were
    /// predicted (scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// Of the examples of this class, the fraction predicted as it; 0 when there are none.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Number of examples of this class.
    pub support: usize,
}

impl ConfusionMatrix {
    /// Counts `(truth, predicted)` pairs over `classes` classes.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the two lists differ in length or hold a class `>= classes`.
    pub fn new(truth: &[usize], predicted: &[usize], classes: usize) -> Result<Self> {
        if truth.len() != predicted.len() {
            return Err(Error::Shape(format!(
                "{} true labels but {} predictions",
                truth.len(),
                predicted.len()
            )));
        }
        let mut counts = Array2::zeros((classes, classes));
        for (&t, &p) in truth.iter().zip(predicted) {
            if t >= classes || p >= classes {
                return Err(Error::Shape(format!(
                    "class {} is outside the {classes} classes",
                    t.max(p)
                )));
            }
            counts[[t, p]] += 1;
        }
        Ok(ConfusionMatrix { counts })
    }

    /// Overall accuracy: the diagonal over the total; 0 for no examples.
    pub fn accuracy(&self) -> f64 {
        let total = self.counts.sum();
        if total == 0 {
            return 0.0;
        }
        self.counts.diag().sum() as f64 / total as f64
    }

    /// Precision, recall, F1 and support per class.
    pub fn class_scores(&self) -> Vec<ClassScores> {
        let k = self.counts.nrows();
        (0..k)
            .map(|c| {
                let true_positive = self.counts[[c, c]] as f64;
                let predicted = self.counts.column(c).sum() as f64;
                let support = self.counts.row(c).sum();
                let precision = if predicted > 0.0 {
                    true_positive / predicted
                } else {
                    0.0
                };
                let recall = if support > 0 {
                    true_positive / support as f64
                } else {
                    0.0
                };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }
}

/// Coefficient of determination `R² = 1 - Σ(y - ŷ)² / Σ(y - ȳ)²`, averaged uniformly over
/// outputs (scikit-learn's `r2_score` default). An output whose targets are constant scores 1
/// when predicted exactly and 0 otherwise, as in scikit-learn. Empty arrays score 0.
///
/// # Errors
///
/// [`Error::Shape`] when `outputs` and `targets` differ in shape.
pub fn r2_score(outputs: ArrayView2<'_, f32>, targets: ArrayView2<'_, f32>) -> Result<f64> {
    check_same_shape(outputs, targets)?;
    let rows = outputs.nrows();
    if rows == 0 || outputs.ncols() == 0 {
        return Ok(0.0);
    }
    let mut total = 0.0;
    for (a, y) in outputs.axis_iter(Axis(0)).zip(targets.axis_iter(Axis(0))) {
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        let residual: f64 = a
            .iter()
            .zip(y.iter())
            .map(|(&a, &y)| (y as f64 - a as f64).powi(2))
            .sum();
        let spread: f64 = y.iter().map(|&y| (y as f64 - mean).powi(2)).sum();
        total += if spread > 0.0 {
            1.0 - residual / spread
        } else if residual == 0.0 {
            1.0
        } else {
            0.0
        };
    }
    Ok(total / rows as f64)
}

/// Mean absolute error over every output of every example; 0 for empty arrays.
///
/// # Errors
///
/// [`Error::Shape`] when `outputs` and `targets` differ in shape.
pub fn mean_absolute_error(
    outputs: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
) -> Result<f64> {
    check_same_shape(outputs, targets)?;
    if outputs.is_empty() {
        return Ok(0.0);
    }
    let sum: f64 = outputs
        .iter()
        .zip(targets.iter())
        .map(|(&a, &y)| (a as f64 - y as f64).abs())
        .sum();
    Ok(sum / outputs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn accuracy_multiclass_binary_multilabel() {
        let outputs = array![[0.7f32, 0.1, 0.3], [0.2, 0.8, 0.3], [0.1, 0.1, 0.4]];
        let targets = array![[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]];
        let value = accuracy(
            outputs.view(),
            targets.view(),
            Cost::CategoricalCrossEntropy,
        );
        assert_eq!(value.unwrap(), Some(2.0 / 3.0));

        let outputs = array![[0.7f32, 0.4, 0.6, 0.2]];
        let targets = array![[1.0f32, 0.0, 0.0, 0.0]];
        assert_eq!(
            accuracy(outputs.view(), targets.view(), Cost::BinaryCrossEntropy).unwrap(),
            Some(0.75)
        );

        let outputs = array![[0.7f32, 0.4], [0.6, 0.9]];
        let targets = array![[1.0f32, 0.0], [0.0, 1.0]];
        let value = accuracy(
            outputs.view(),
            targets.view(),
            Cost::MultiLabelBinaryCrossEntropy,
        );
        assert_eq!(value.unwrap(), Some(0.5));
        assert_eq!(
            accuracy(outputs.view(), targets.view(), Cost::MeanSquaredError).unwrap(),
            None
        );
    }

    #[test]
    fn accuracy_rejects_shape_mismatch() {
        let outputs = Array2::<f32>::zeros((2, 3));
        let targets = Array2::<f32>::zeros((2, 1));
        let error = accuracy(
            outputs.view(),
            targets.view(),
            Cost::CategoricalCrossEntropy,
        )
        .unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
        assert!(error.to_string().contains("(2, 3)"), "{error}");
    }

    #[test]
    fn accuracy_without_single_class_rows() {
        // A binary output needs exactly one row and a multi-class output at least one.
        for (rows, cost) in [
            (0, Cost::BinaryCrossEntropy),
            (2, Cost::BinaryCrossEntropy),
            (0, Cost::CategoricalCrossEntropy),
        ] {
            let outputs = Array2::<f32>::zeros((rows, 3));
            assert_eq!(
                predicted_classes(outputs.view(), cost),
                None,
                "{rows} {cost}"
            );
            let value = accuracy(outputs.view(), outputs.view(), cost).unwrap();
            assert_eq!(value, None, "{rows} {cost}");
        }
    }

    #[test]
    fn confusion_matrix_scores() {
        let truth = [0, 0, 1, 1, 1, 2];
        let predicted = [0, 1, 1, 1, 0, 1];
        let matrix = ConfusionMatrix::new(&truth, &predicted, 3).unwrap();
        assert_eq!(matrix.counts, array![[1, 1, 0], [1, 2, 0], [0, 1, 0]]);
        assert!((matrix.accuracy() - 0.5).abs() < 1e-12);
        let scores = matrix.class_scores();
        assert!((scores[1].precision - 0.5).abs() < 1e-12);
        assert!((scores[1].recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((scores[1].f1 - 4.0 / 7.0).abs() < 1e-12);
        assert_eq!(scores[2].support, 1);
        assert_eq!(scores[2].precision, 0.0);
        assert!(ConfusionMatrix::new(&[3], &[0], 3).is_err());
        assert!(ConfusionMatrix::new(&[0, 1], &[0], 3).is_err());
    }

    #[test]
    fn regression_scores() {
        let targets = array![[1.0f32, 2.0, 3.0, 4.0]];
        let outputs = array![[1.5f32, 2.0, 2.5, 4.0]];
        let r2 = r2_score(outputs.view(), targets.view()).unwrap();
        assert!((r2 - (1.0 - 0.5 / 5.0)).abs() < 1e-9, "{r2}");
        let mae = mean_absolute_error(outputs.view(), targets.view()).unwrap();
        assert!((mae - 0.25).abs() < 1e-9);
        assert_eq!(r2_score(targets.view(), targets.view()).unwrap(), 1.0);
    }

    #[test]
    fn regression_scores_reject_shape_mismatch() {
        let outputs = Array2::<f32>::zeros((2, 3));
        let targets = Array2::<f32>::zeros((1, 3));
        let error = r2_score(outputs.view(), targets.view()).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
        let error = mean_absolute_error(outputs.view(), targets.view()).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
    }

    #[test]
    fn argmax_ignores_nan_and_takes_first_tie() {
        assert_eq!(argmax([f32::NAN, 1.0, 3.0, 3.0].into_iter()), 2);
    }
}
