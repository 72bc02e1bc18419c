//! Class labels: their order, and matching a new file's labels to a model's classes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::error::{Error, Result};

/// Maximum number of names that an error message lists before it shortens the list.
const MAX_LISTED_NAMES: usize = 20;

/// Sorts distinct class labels into class order.
///
/// When every label parses as a finite number, labels are sorted numerically, so "2" comes
/// before "10". Otherwise they are sorted by their text (Unicode code point order). Labels
/// that are equal as numbers but differ as text, such as "1" and "1.0", stay separate classes
/// and are ordered by their text.
pub(crate) fn sorted_class_names<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let distinct: BTreeSet<&str> = labels.into_iter().collect();
    let numbers: Option<Vec<f64>> = distinct
        .iter()
        .map(|label| label.parse::<f64>().ok().filter(|value| value.is_finite()))
        .collect();

    match numbers {
        Some(numbers) => {
            let mut pairs: Vec<(f64, &str)> = numbers.into_iter().zip(distinct).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            pairs
                .into_iter()
                .map(|(_, label)| label.to_owned())
                .collect()
        }
        // A BTreeSet iterates in text order already.
        None => distinct.into_iter().map(str::to_owned).collect(),
    }
}

/// Maps each label in `raw` to its index in `class_names`, for instance to evaluate a trained
/// model on a new file whose labels must use the model's class indexes.
///
/// Labels match by exact text. The returned vector has one index per entry of `raw`.
///
/// # Errors
///
/// [`Error::Data`] for `path` naming the first label that is not in `class_names` and its
/// example number (1-based position in `raw`).
pub fn map_labels(raw: &[String], class_names: &[String], path: &Path) -> Result<Vec<usize>> {
    let index_of: HashMap<&str, usize> = class_names
        .iter()
        .enumerate()
        .map(|(index, name)| (name.as_str(), index))
        .collect();

    raw.iter()
        .enumerate()
        .map(|(row, label)| {
            index_of.get(label.as_str()).copied().ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "example {}: class label \"{label}\" is not one of the model's {} \
                         classes ({}); the model can only be evaluated on the classes it was \
                         trained on",
                        row + 1,
                        class_names.len(),
                        quoted_list(class_names)
                    ),
                )
            })
        })
        .collect()
}

/// Formats names as `"a", "b", "c"`, shortened to the first few when there are many.
pub(crate) fn quoted_list(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(MAX_LISTED_NAMES)
        .map(|name| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED_NAMES {
        text.push_str(&format!(" and {} more", names.len() - MAX_LISTED_NAMES));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|&label| label.to_owned()).collect()
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let sorted = sorted_class_names(["10", "2", "1", "2", "-3", "0.5"]);
        assert_eq!(sorted, names(&["-3", "0.5", "1", "2", "10"]));
    }

    #[test]
    fn text_labels_sort_by_text() {
        let sorted = sorted_class_names(["dog", "cat", "10", "2", "cat"]);
        assert_eq!(sorted, names(&["10", "2", "cat", "dog"]));
    }

    #[test]
    fn equal_numbers_stay_separate() {
        let sorted = sorted_class_names(["1.0", "1", "01"]);
        assert_eq!(sorted, names(&["01", "1", "1.0"]));
    }

    #[test]
    fn nan_label_sorts_as_text() {
        let sorted = sorted_class_names(["nan", "1"]);
        assert_eq!(sorted, names(&["1", "nan"]));
    }

    #[test]
    fn map_labels_maps_by_text() {
        let classes = names(&["cat", "dog"]);
        let raw = names(&["dog", "cat", "dog"]);
        assert_eq!(
            map_labels(&raw, &classes, Path::new("t.csv")).unwrap(),
            vec![1, 0, 1]
        );
    }

    #[test]
    fn map_labels_names_unseen_label() {
        let classes = names(&["cat", "dog"]);
        let raw = names(&["dog", "cat", "bird"]);
        let error = map_labels(&raw, &classes, Path::new("t.csv"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("t.csv: "), "{error}");
        assert!(error.contains("example 3"), "{error}");
        assert!(error.contains("\"bird\""), "{error}");
        assert!(error.contains("\"cat\", \"dog\""), "{error}");
    }

    #[test]
    fn quoted_list_shortens_long_lists() {
        let many: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        let text = quoted_list(&many);
        assert!(text.starts_with("\"0\", \"1\""), "{text}");
        assert!(text.ends_with("\"19\" and 5 more"), "{text}");
    }
}
