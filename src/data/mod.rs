//! Data sets: loading CSV and IDX (MNIST) files, the embedded digits set, splitting and feature
//! scaling.
//!
//! Every loader returns a [`Dataset`]: an `m x n_features` matrix of `f32` features, one row per
//! example, and the targets, either class indexes or regression values. Loaders reject bad input
//! with an [`Error::Data`] that names the file, the line or byte offset and
//! the column, and they do not panic on any file content.

pub mod csv;
pub mod digits;
pub mod idx;
mod labels;
pub mod scale;

use std::path::Path;

use ndarray::{Array2, Axis};

use crate::error::{Error, Result};
use crate::rng::Rng;

pub use self::csv::{
    CsvOptions, TargetColumn, Task, load_csv, load_csv_features, load_csv_features_reader,
    load_csv_reader,
};
pub use self::digits::digits;
pub use self::idx::{load_idx_dir, load_idx_pair, load_idx_pair_reader};
pub use self::labels::map_labels;
pub use self::scale::{Scaler, ScalerKind};

/// A set of examples: features and their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// m x n_features, one row per example, f32.
    pub features: Array2<f32>,
    /// The target of each example, in row order.
    pub targets: Targets,
    /// Column names when the source had a header; otherwise None.
    pub feature_names: Option<Vec<String>>,
}

/// The targets of a [`Dataset`].
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class index per example (`0..class_names.len()`); `class_names[i]` is the label as written
    /// in the file (e.g. "cat", "7").
    Classes {
        /// Class index of each example, in row order.
        labels: Vec<usize>,
        /// Label text of each class, indexed by class index.
        class_names: Vec<String>,
    },
    /// Regression targets, m x n_outputs.
    Values(Array2<f32>),
}

impl Targets {
    /// Returns the number of examples the targets cover.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values(values) => values.nrows(),
        }
    }

    /// Returns `true` when there are no targets.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the targets of the examples at `indices`, in that order.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] naming the first index that is not below [`Targets::len`].
    pub fn select(&self, indices: &[usize]) -> Result<Targets> {
        check_indices(indices, self.len())?;
        Ok(match self {
            Targets::Classes {
                labels,
                class_names,
            } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                class_names: class_names.clone(),
            },
            Targets::Values(values) => Targets::Values(values.select(Axis(0), indices)),
        })
    }
}

/// Checks that every index is below `len`.
fn check_indices(indices: &[usize], len: usize) -> Result<()> {
    match indices.iter().find(|&&index| index >= len) {
        Some(index) => Err(Error::Shape(format!(
            "example index {index} is out of range for {len} examples"
        ))),
        None => Ok(()),
    }
}

impl Dataset {
    /// Builds a data set after checking that its parts agree.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `targets` covers a different number of examples than
    /// `features` has rows, when a class index is not below the number of class names, or when
    /// `feature_names` has a different length than `features` has columns.
    pub fn new(
        features: Array2<f32>,
        targets: Targets,
        feature_names: Option<Vec<String>>,
    ) -> Result<Dataset> {
        if targets.len() != features.nrows() {
            return Err(Error::Shape(format!(
                "the features have {} rows but there are {} targets",
                features.nrows(),
                targets.len()
            )));
        }
        if let Targets::Classes {
            labels,
            class_names,
        } = &targets
            && let Some((row, &label)) = labels
                .iter()
                .enumerate()
                .find(|&(_, &label)| label >= class_names.len())
        {
            return Err(Error::Shape(format!(
                "example {} has class index {label}, but there are only {} class names",
                row + 1,
                class_names.len()
            )));
        }
        if let Some(names) = &feature_names
            && names.len() != features.ncols()
        {
            return Err(Error::Shape(format!(
                "there are {} feature names for {} feature columns",
                names.len(),
                features.ncols()
            )));
        }
        Ok(Dataset {
            features,
            targets,
            feature_names,
        })
    }

    /// Returns the number of examples (rows).
    pub fn len(&self) -> usize {
        self.features.nrows()
    }

    /// Returns `true` when the data set has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the number of features (columns of [`Dataset::features`]).
    pub fn n_features(&self) -> usize {
        self.features.ncols()
    }

    /// Returns the number of classes for classification targets, or `None` for regression
    /// targets.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.targets {
            Targets::Classes { class_names, .. } => Some(class_names.len()),
            Targets::Values(_) => None,
        }
    }

    /// Returns the examples at `indices`, in that order. An index may repeat. Feature names and
    /// class names are kept.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] naming the first index that is not below [`Dataset::len`], or when the
    /// targets cover a different number of examples than the features have rows, which only a
    /// data set built without [`Dataset::new`] can do.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        if self.targets.len() != self.len() {
            return Err(Error::Shape(format!(
                "the features have {} rows but there are {} targets",
                self.len(),
                self.targets.len()
            )));
        }
        check_indices(indices, self.len())?;
        Ok(Dataset {
            features: self.features.select(Axis(0), indices),
            targets: self.targets.select(indices)?,
            feature_names: self.feature_names.clone(),
        })
    }

    /// Splits the examples at random into two parts, for instance training and validation sets.
    ///
    /// The second part gets `round(fraction * len())` examples and the first part gets the rest.
    /// Both parts are in shuffled order, drawn from one permutation of `rng`, so the same seed
    /// gives the same split. The split is not stratified by class.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `fraction` is not strictly between 0 and 1, or when either part
    /// would be empty. [`Error::Shape`] when the targets cover a different number of examples
    /// than the features have rows.
    pub fn split(&self, fraction: f64, rng: &mut Rng) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::Config(format!(
                "the split fraction must be between 0 and 1 (exclusive), got {fraction}"
            )));
        }

        let total = self.len();
        let second_len = (fraction * total as f64).round() as usize;
        let first_len = total.saturating_sub(second_len);
        if second_len == 0 || first_len == 0 {
            return Err(Error::Config(format!(
                "splitting {total} examples with fraction {fraction} gives parts of {first_len} \
                 and {second_len} examples; both need at least one, so change the fraction or \
                 use more data"
            )));
        }

        let order = rng.permutation(total);
        let (first, second) = order.split_at(first_len);
        Ok((self.select(first)?, self.select(second)?))
    }

    /// Checks that every feature and regression target is finite.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] for `path` naming the first NaN or infinite value: its example number
    /// (1-based row) and its column (0-based index, and name when known).
    pub fn check_finite(&self, path: &Path) -> Result<()> {
        if let Some(((row, column), value)) = self
            .features
            .indexed_iter()
            .find(|&(_, value)| !value.is_finite())
        {
            let column_text = match self
                .feature_names
                .as_ref()
                .and_then(|names| names.get(column))
            {
                Some(name) => format!("feature column {column} (\"{name}\")"),
                None => format!("feature column {column}"),
            };
            return Err(Error::data(
                path,
                format!(
                    "example {}, {column_text}: the value is {value}; \
                     remove or replace non-finite values",
                    row + 1
                ),
            ));
        }

        if let Targets::Values(values) = &self.targets
            && let Some(((row, column), value)) =
                values.indexed_iter().find(|&(_, value)| !value.is_finite())
        {
            return Err(Error::data(
                path,
                format!(
                    "example {}, target column {column}: the value is {value}; \
                     remove or replace non-finite values",
                    row + 1
                ),
            ));
        }
        Ok(())
    }

    /// Re-indexes the class labels onto `class_names`, the classes of a trained model, so that
    /// a file read at evaluation time uses the model's class indexes. The labels are matched by
    /// their text, so "7" and "07" are different classes.
    ///
    /// Regression targets are left unchanged.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] for `path` when an example has a label that is not in `class_names`; see
    /// [`map_labels`]. [`Error::Shape`] when a class index of the data set is not below its own
    /// number of class names.
    pub fn align_classes(&mut self, class_names: &[String], path: &Path) -> Result<()> {
        if let Targets::Classes {
            labels,
            class_names: own_names,
        } = &mut self.targets
        {
            let raw = labels
                .iter()
                .enumerate()
                .map(|(row, &label)| {
                    own_names.get(label).cloned().ok_or_else(|| {
                        Error::Shape(format!(
                            "example {} has class index {label}, but there are only {} class \
                             names",
                            row + 1,
                            own_names.len()
                        ))
                    })
                })
                .collect::<Result<Vec<String>>>()?;
            *labels = map_labels(&raw, class_names, path)?;
            *own_names = class_names.to_vec();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn small() -> Dataset {
        Dataset::new(
            array![[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]],
            Targets::Classes {
                labels: vec![0, 1, 0, 1, 1],
                class_names: vec!["a".into(), "b".into()],
            },
            Some(vec!["x".into(), "y".into()]),
        )
        .unwrap()
    }

    #[test]
    fn sizes() {
        let data = small();
        assert_eq!(data.len(), 5);
        assert!(!data.is_empty());
        assert_eq!(data.n_features(), 2);
        assert_eq!(data.n_classes(), Some(2));
    }

    #[test]
    fn regression_has_no_classes() {
        let data = Dataset::new(
            array![[1.0], [2.0]],
            Targets::Values(array![[0.5], [1.5]]),
            None,
        )
        .unwrap();
        assert_eq!(data.n_classes(), None);
        assert_eq!(data.targets.len(), 2);
    }

    #[test]
    fn new_rejects_row_mismatch() {
        let error = Dataset::new(array![[1.0], [2.0]], Targets::Values(array![[0.5]]), None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("2 rows"), "{error}");
        assert!(error.contains("1 targets"), "{error}");
    }

    #[test]
    fn new_rejects_label_out_of_range() {
        let targets = Targets::Classes {
            labels: vec![0, 2],
            class_names: vec!["a".into(), "b".into()],
        };
        let error = Dataset::new(array![[1.0], [2.0]], targets, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("example 2"), "{error}");
        assert!(error.contains("class index 2"), "{error}");
    }

    #[test]
    fn new_rejects_wrong_name_count() {
        let error = Dataset::new(
            array![[1.0, 2.0]],
            Targets::Values(array![[0.0]]),
            Some(vec!["x".into()]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("1 feature names for 2"), "{error}");
    }

    #[test]
    fn select_keeps_order_and_names() {
        let picked = small().select(&[4, 0, 4]).unwrap();
        assert_eq!(picked.features, array![[8.0, 9.0], [0.0, 1.0], [8.0, 9.0]]);
        assert_eq!(
            picked.targets,
            Targets::Classes {
                labels: vec![1, 0, 1],
                class_names: vec!["a".into(), "b".into()],
            }
        );
        assert_eq!(picked.feature_names, Some(vec!["x".into(), "y".into()]));
    }

    #[test]
    fn select_regression_rows() {
        let data = Dataset::new(
            array![[1.0], [2.0], [3.0]],
            Targets::Values(array![[10.0, 11.0], [20.0, 21.0], [30.0, 31.0]]),
            None,
        )
        .unwrap();
        let picked = data.select(&[2, 1]).unwrap();
        assert_eq!(
            picked.targets,
            Targets::Values(array![[30.0, 31.0], [20.0, 21.0]])
        );
    }

    #[test]
    fn select_rejects_out_of_range() {
        let error = small().select(&[0, 5, 7]).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
        assert!(error.to_string().contains("index 5"), "{error}");
        assert!(error.to_string().contains("5 examples"), "{error}");

        let error = small().targets.select(&[9]).unwrap_err();
        assert!(error.to_string().contains("index 9"), "{error}");
    }

    #[test]
    fn split_rejects_targets_of_other_length() {
        // The fields are public, so a data set can bypass the checks of Dataset::new.
        let mut data = small();
        data.targets = Targets::Values(Array2::zeros((2, 1)));
        let error = data.split(0.4, &mut Rng::new(1)).unwrap_err();
        assert!(matches!(error, Error::Shape(_)), "{error}");
        assert!(
            error.to_string().contains("5 rows but there are 2 targets"),
            "{error}"
        );
    }

    #[test]
    fn split_sizes_and_coverage() {
        let features = Array2::from_shape_fn((100, 1), |(i, _)| i as f32);
        let data = Dataset::new(features, Targets::Values(Array2::zeros((100, 1))), None).unwrap();
        let (train, validation) = data.split(0.2, &mut Rng::new(1)).unwrap();
        assert_eq!(train.len(), 80);
        assert_eq!(validation.len(), 20);

        let mut seen: Vec<f32> = train
            .features
            .iter()
            .chain(validation.features.iter())
            .copied()
            .collect();
        seen.sort_by(f32::total_cmp);
        let expected: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn split_is_shuffled_and_seeded() {
        let features = Array2::from_shape_fn((50, 1), |(i, _)| i as f32);
        let data = Dataset::new(features, Targets::Values(Array2::zeros((50, 1))), None).unwrap();
        let (first_a, _) = data.split(0.5, &mut Rng::new(9)).unwrap();
        let (first_b, _) = data.split(0.5, &mut Rng::new(9)).unwrap();
        let (first_c, _) = data.split(0.5, &mut Rng::new(10)).unwrap();
        assert_eq!(first_a, first_b);
        assert_ne!(first_a, first_c);
        let in_order = Array2::from_shape_fn((25, 1), |(i, _)| i as f32);
        assert_ne!(first_a.features, in_order);
    }

    #[test]
    fn split_rejects_bad_fraction() {
        for fraction in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let error = small()
                .split(fraction, &mut Rng::new(1))
                .unwrap_err()
                .to_string();
            assert!(error.contains("between 0 and 1"), "{fraction}: {error}");
        }
    }

    #[test]
    fn split_rejects_empty_part() {
        let error = small()
            .split(0.05, &mut Rng::new(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains("parts of 5 and 0"), "{error}");

        let error = small()
            .split(0.95, &mut Rng::new(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains("parts of 0 and 5"), "{error}");
    }

    #[test]
    fn check_finite_accepts_finite() {
        small().check_finite(Path::new("x.csv")).unwrap();
    }

    #[test]
    fn check_finite_names_feature() {
        let mut data = small();
        data.features[[2, 1]] = f32::NAN;
        data.features[[3, 0]] = f32::INFINITY;
        let error = data
            .check_finite(Path::new("x.csv"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("x.csv: "), "{error}");
        assert!(error.contains("example 3"), "{error}");
        assert!(error.contains("feature column 1 (\"y\")"), "{error}");
        assert!(error.contains("NaN"), "{error}");
    }

    #[test]
    fn check_finite_names_target() {
        let data = Dataset::new(
            array![[1.0], [2.0]],
            Targets::Values(array![[0.0], [f32::NEG_INFINITY]]),
            None,
        )
        .unwrap();
        let error = data
            .check_finite(Path::new("y.csv"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("example 2"), "{error}");
        assert!(error.contains("target column 0"), "{error}");
        assert!(error.contains("-inf"), "{error}");
    }

    #[test]
    fn align_classes_reindexes() {
        let mut data = small();
        let model_classes: Vec<String> = vec!["c".into(), "b".into(), "a".into()];
        data.align_classes(&model_classes, Path::new("e.csv"))
            .unwrap();
        assert_eq!(
            data.targets,
            Targets::Classes {
                labels: vec![2, 1, 2, 1, 1],
                class_names: model_classes,
            }
        );
    }

    #[test]
    fn align_classes_rejects_unseen() {
        let mut data = small();
        let model_classes: Vec<String> = vec!["a".into()];
        let error = data
            .align_classes(&model_classes, Path::new("e.csv"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("example 2"), "{error}");
        assert!(error.contains("\"b\""), "{error}");
    }
}
