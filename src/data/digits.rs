//! The UCI "Optical Recognition of Handwritten Digits" test set, compiled into the library so
//! that examples and tests run without a download.
//!
//! The bytes are `data/digits.csv.gz` as scikit-learn ships it: 1,797 rows of 65 integers, no
//! header, 64 pixel counts of an 8x8 image (each 0 to 16) followed by the digit 0 to 9.
//! `data/README.md` gives the source, the licence (CC BY 4.0) and the file's SHA-256.

use std::path::Path;

use flate2::read::GzDecoder;

use super::Dataset;
use super::csv::{CsvOptions, Task, load_csv_reader};

/// The gzip-compressed CSV file, about 57 KB.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Returns the embedded digits data set: 1,797 examples of 8x8 handwritten digit images.
///
/// `features` is `1797 x 64`, row-major pixels with values 0 to 16 as `f32` (unscaled), and the
/// targets are 10 classes named "0" to "9", with 174 to 183 examples each. There are no feature
/// names. Each call decompresses and parses the data anew.
pub fn digits() -> Dataset {
    let options = CsvOptions {
        target: None,
        task: Task::Classification,
        has_header: Some(false),
        delimiter: b',',
        class_names: None,
    };
    // The embedded bytes are fixed at compile time and the tests below parse them, so this
    // cannot fail.
    load_csv_reader(
        GzDecoder::new(DIGITS_CSV_GZ),
        Path::new("<embedded digits.csv.gz>"),
        &options,
    )
    .expect("the embedded digits data parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;

    #[test]
    fn digits_shape() {
        let data = digits();
        assert_eq!(data.len(), 1797);
        assert_eq!(data.n_features(), 64);
        assert_eq!(data.n_classes(), Some(10));
        assert_eq!(data.feature_names, None);
    }

    #[test]
    fn digits_class_names_and_counts() {
        let data = digits();
        let Targets::Classes {
            labels,
            class_names,
        } = &data.targets
        else {
            panic!("digits must have class targets");
        };
        let expected: Vec<String> = (0..10).map(|digit| digit.to_string()).collect();
        assert_eq!(class_names, &expected);

        let mut counts = [0usize; 10];
        for &label in labels {
            counts[label] += 1;
        }
        // The counts of each label in the last column of data/digits.csv.gz.
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    }

    #[test]
    fn digits_pixel_range() {
        let data = digits();
        assert!(
            data.features
                .iter()
                .all(|&value| { (0.0..=16.0).contains(&value) && value.fract() == 0.0 })
        );
        assert_eq!(data.features.iter().copied().fold(0.0, f32::max), 16.0);
    }

    #[test]
    fn digits_first_row() {
        let data = digits();
        // The first line of the file, a zero.
        let first: Vec<f32> = [
            0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4,
            12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10,
            12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
        ]
        .iter()
        .map(|&value| value as f32)
        .collect();
        assert_eq!(data.features.row(0).to_vec(), first);
        let Targets::Classes { labels, .. } = &data.targets else {
            panic!("digits must have class targets");
        };
        assert_eq!(labels[0], 0);
    }
}
