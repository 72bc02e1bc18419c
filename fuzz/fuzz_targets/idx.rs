//! Fuzzes the IDX loader with an images file and a labels file cut from one input:
//!
//! - byte 0: bit 0 names the images source `images.gz`, bit 1 names the labels source
//!   `labels.gz` (a `.gz` name must hold gzip data);
//! - bytes 1-2: the length of the images file, a little-endian `u16`, cut to what follows;
//! - then the images file, and the labels file to the end of the input.

#![no_main]

use std::path::Path;

use feedforward::data::load_idx_pair_reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [flags, length_low, length_high, files @ ..] = input else {
        return;
    };

    let images_length = usize::from(u16::from_le_bytes([*length_low, *length_high]));
    let (images, labels) = files.split_at(images_length.min(files.len()));
    let images_source = if flags & 1 == 0 {
        "images"
    } else {
        "images.gz"
    };
    let labels_source = if flags & 2 == 0 {
        "labels"
    } else {
        "labels.gz"
    };
    let _ = load_idx_pair_reader(
        images,
        Path::new(images_source),
        labels,
        Path::new(labels_source),
    );
});
