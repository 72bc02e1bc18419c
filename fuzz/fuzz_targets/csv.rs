//! Fuzzes the CSV loaders. The first input byte selects the options and the rest is the file:
//!
//! - bit 0: the task, classification or regression;
//! - bits 1-2: the header setting, detect (0 and 3), yes (1) or no (2);
//! - bits 3-4: the delimiter, `,` `;` tab or space;
//! - bits 5-6: the target column, the last one, index 0, index 1 or the name "y";
//! - bit 7: the feature count that `load_csv_features_reader` expects, any or 2.

#![no_main]

use std::path::Path;

use feedforward::data::{
    CsvOptions, TargetColumn, Task, load_csv_features_reader, load_csv_reader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, file)) = input.split_first() else {
        return;
    };

    let task = if selector & 1 == 0 {
        Task::Classification
    } else {
        Task::Regression
    };
    let has_header = match (selector >> 1) & 0b11 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let delimiter = [b',', b';', b'\t', b' '][usize::from((selector >> 3) & 0b11)];
    let target = match (selector >> 5) & 0b11 {
        0 => None,
        1 => Some(TargetColumn::Index(0)),
        2 => Some(TargetColumn::Index(1)),
        _ => Some(TargetColumn::Name("y".into())),
    };
    let n_features_expected = (selector & 0x80 != 0).then_some(2);

    let source = Path::new("fuzz.csv");
    let options = CsvOptions {
        target,
        task,
        has_header,
        delimiter,
    };
    let _ = load_csv_reader(file, source, &options);
    let _ = load_csv_features_reader(file, source, n_features_expected, has_header, delimiter);
});
