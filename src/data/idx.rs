//! Loading the IDX format in which MNIST and similar image sets are distributed.
//!
//! An IDX file starts with a 4-byte magic number: two zero bytes, a type code and the number of
//! dimensions `d`. Then come `d` big-endian `u32` dimension sizes and the data in row-major
//! order. Only type code 0x08 (unsigned byte) is supported, which is what MNIST, Fashion-MNIST
//! and KMNIST use for both images and labels. Files may be gzip-compressed.
//!
//! The loaders never allocate more than the data really present: the header's sizes are
//! checked against the bytes that follow before they are trusted.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;
use ndarray::Array2;

use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The IDX type code for unsigned bytes.
const TYPE_UNSIGNED_BYTE: u8 = 0x08;

/// The four files of an MNIST-style directory, each also looked for with a `.gz` suffix and
/// with a dot before `idx`, as some mirrors name them (`train-images.idx3-ubyte`).
const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Loads an images file and its labels file into a [`Dataset`].
///
/// The images file must have at least 2 dimensions: the number of images, then the shape of
/// one image. Each image becomes one row of `features`, flattened in row-major order, with
/// pixel values divided by 255 so that they lie in `[0, 1]`. The labels file must have 1
/// dimension. The class names are "0", "1", ... up to the largest label in the file, so every
/// label value is its own class index, even when some values below the largest are absent.
/// Either file may be gzip-compressed.
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be read. [`Error::Data`] when the two files contain
/// different numbers of examples, or when a file:
/// - is not IDX (the message shows its first bytes),
/// - has a type code other than 0x08,
/// - has zero dimensions or a dimension of size 0,
/// - is truncated (the message gives the byte offset where the data ends),
/// - has bytes past the declared data,
/// - is named `.gz` but is not gzip, or fails to decompress.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset> {
    let (features, labels) = read_pair(images, labels)?;
    let n_classes = class_count(&labels);
    Ok(build_dataset(features, &labels, n_classes))
}

/// Loads an images file and its labels file from readers, as [`load_idx_pair`] does.
///
/// `images_source` and `labels_source` name the data in error messages. As with files, data is
/// gunzipped when it starts with the gzip magic `1f 8b`, and a source whose name ends in `.gz`
/// must be gzip. The images reader is read to the end of its data before the labels reader is
/// read.
///
/// # Errors
///
/// As [`load_idx_pair`]; read failures of a reader are [`Error::Io`].
pub fn load_idx_pair_reader<I: Read, L: Read>(
    images: I,
    images_source: &Path,
    labels: L,
    labels_source: &Path,
) -> Result<Dataset> {
    let images = read_idx_from(images, images_source, None)?;
    check_images_dims(&images, images_source)?;
    let labels = read_idx_from(labels, labels_source, None)?;
    let (features, labels) = join_pair(images, images_source, labels, labels_source)?;
    let n_classes = class_count(&labels);
    Ok(build_dataset(features, &labels, n_classes))
}

/// Loads the MNIST training and test sets from `dir` and returns `(train, test)`.
///
/// The files are `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
/// and `t10k-labels-idx1-ubyte`, each uncompressed or with a `.gz` suffix. The spelling with a
/// dot before `idx` (`train-images.idx3-ubyte`) is also found. Both sets get the same class
/// names, "0" up to the largest label in either set, so a test set that lacks a class still has
/// the training set's class count.
///
/// # Errors
///
/// [`Error::Data`] when `dir` is not a directory or a file is missing (the message lists the
/// names looked for), and the errors of [`load_idx_pair`].
pub fn load_idx_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    if !dir.is_dir() {
        return Err(Error::data(
            dir,
            "is not a directory; expected a directory that contains the MNIST files \
             train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
             t10k-labels-idx1-ubyte (each may end in .gz)",
        ));
    }

    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let candidates = candidate_names(name);
        match candidates
            .iter()
            .map(|file| dir.join(file))
            .find(|path| path.is_file())
        {
            Some(path) => found.push(path),
            None => missing.push(format!("{name}[.gz] or {}[.gz]", dotted_name(name))),
        }
    }
    if !missing.is_empty() {
        return Err(Error::data(
            dir,
            format!(
                "{} of the 4 MNIST files are missing; looked for {}",
                missing.len(),
                missing.join(", and for ")
            ),
        ));
    }

    let (train_features, train_labels) = read_pair(&found[0], &found[1])?;
    let (test_features, test_labels) = read_pair(&found[2], &found[3])?;
    let n_classes = class_count(&train_labels).max(class_count(&test_labels));
    Ok((
        build_dataset(train_features, &train_labels, n_classes),
        build_dataset(test_features, &test_labels, n_classes),
    ))
}

/// Returns the file names under which `name` is looked for, in order of preference.
fn candidate_names(name: &str) -> Vec<String> {
    let dotted = dotted_name(name);
    vec![
        name.to_owned(),
        format!("{name}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ]
}

/// Returns the spelling of `name` with a dot before `idx`: `train-images.idx3-ubyte`.
fn dotted_name(name: &str) -> String {
    name.replacen("-idx", ".idx", 1)
}

/// Reads an images file and a labels file; returns the `count x pixels` features in `[0, 1]`
/// and the raw labels.
fn read_pair(images_path: &Path, labels_path: &Path) -> Result<(Array2<f32>, Vec<u8>)> {
    let images = read_idx(images_path)?;
    check_images_dims(&images, images_path)?;
    let labels = read_idx(labels_path)?;
    join_pair(images, images_path, labels, labels_path)
}

fn check_images_dims(images: &IdxArray, images_path: &Path) -> Result<()> {
    if images.dims.len() < 2 {
        return Err(Error::data(
            images_path,
            format!(
                "an images file needs at least 2 dimensions (the image count, then the image \
                 shape), but this file has {}; check that the images and labels files are not \
                 swapped",
                images.dims.len()
            ),
        ));
    }
    Ok(())
}

/// Checks that `labels` has one label per image of `images`, whose dimensions have passed
/// [`check_images_dims`], and returns the `count x pixels` features in `[0, 1]` with the raw
/// labels.
fn join_pair(
    images: IdxArray,
    images_path: &Path,
    labels: IdxArray,
    labels_path: &Path,
) -> Result<(Array2<f32>, Vec<u8>)> {
    if labels.dims.len() != 1 {
        return Err(Error::data(
            labels_path,
            format!(
                "a labels file needs exactly 1 dimension, but this file has {}; check that the \
                 images and labels files are not swapped",
                labels.dims.len()
            ),
        ));
    }

    let count = images.dims[0];
    if labels.dims[0] != count {
        return Err(Error::data(
            images_path,
            format!(
                "the file has {count} images, but the labels file {} has {} labels; both files \
                 must come from the same set",
                labels_path.display(),
                labels.dims[0]
            ),
        ));
    }

    let pixels = images.data.len() / count;
    let values: Vec<f32> = images
        .data
        .iter()
        .map(|&byte| f32::from(byte) / 255.0)
        .collect();
    let features = Array2::from_shape_vec((count, pixels), values)
        .expect("read_idx checked that the data has exactly count x pixels bytes");
    Ok((features, labels.data))
}

/// Returns the number of classes that `labels` needs: one more than the largest label, or 0.
fn class_count(labels: &[u8]) -> usize {
    labels
        .iter()
        .copied()
        .max()
        .map_or(0, |max| usize::from(max) + 1)
}

/// Builds a classification data set whose class names are "0" to `n_classes - 1`; every label
/// must be below `n_classes`.
fn build_dataset(features: Array2<f32>, labels: &[u8], n_classes: usize) -> Dataset {
    Dataset {
        features,
        targets: Targets::Classes {
            labels: labels.iter().map(|&label| usize::from(label)).collect(),
            class_names: (0..n_classes).map(|class| class.to_string()).collect(),
        },
        feature_names: None,
    }
}

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug)]
struct IdxArray {
    /// Dimension sizes, each at least 1.
    dims: Vec<usize>,
    /// The elements in row-major order; the length is the product of `dims`.
    data: Vec<u8>,
}

fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|error| Error::io(path, error))?;
    let file_len = file.metadata().ok().map(|metadata| metadata.len());
    read_idx_from(file, path, file_len)
}

/// Reads an IDX array from `reader`, decompressing it when it starts with the gzip magic.
/// `file_len` is the size of the source, when known, to reserve memory for the data.
fn read_idx_from<R: Read>(mut reader: R, path: &Path, file_len: Option<u64>) -> Result<IdxArray> {
    let mut prefix = Vec::with_capacity(2);
    read_up_to(&mut reader, 2, &mut prefix).map_err(|error| Error::io(path, error))?;
    let is_gzip = prefix == GZIP_MAGIC;
    let named_gz = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("gz"));
    if named_gz && !is_gzip && !prefix.is_empty() {
        return Err(Error::data(
            path,
            format!(
                "the name ends in .gz, but the file is not gzip: it starts with {} instead of \
                 1f 8b; if it is an uncompressed IDX file, remove .gz from its name",
                hex(&prefix)
            ),
        ));
    }

    let stream = prefix.as_slice().chain(reader);
    let parser = IdxParser {
        path,
        compressed: is_gzip,
    };
    if is_gzip {
        parser.parse(MultiGzDecoder::new(stream), None)
    } else {
        parser.parse(stream, file_len)
    }
}

/// Parses the IDX header and data from a raw or decompressed stream.
struct IdxParser<'a> {
    path: &'a Path,
    /// Whether the stream is decompressed gzip, so that offsets are offsets in the
    /// decompressed data and read failures are decompression failures.
    compressed: bool,
}

impl IdxParser<'_> {
    fn parse<R: Read>(&self, mut stream: R, file_len: Option<u64>) -> Result<IdxArray> {
        let mut magic = Vec::with_capacity(4);
        self.read(&mut stream, 4, &mut magic)?;
        if magic.is_empty() {
            return Err(self.error("the file is empty; expected an IDX file".into()));
        }
        if magic.len() < 4 || magic[0] != 0 || magic[1] != 0 {
            return Err(self.error(format!(
                "not an IDX file: it starts with {}, but an IDX file starts with 00 00, a type \
                 code and the number of dimensions (00 00 08 03 for MNIST images, 00 00 08 01 \
                 for labels)",
                hex(&magic)
            )));
        }
        let type_code = magic[2];
        if type_code != TYPE_UNSIGNED_BYTE {
            return Err(self.error(format!(
                "unsupported IDX type code 0x{type_code:02x} ({}); only 0x08 (unsigned byte) is \
                 supported",
                type_name(type_code)
            )));
        }
        let n_dims = usize::from(magic[3]);
        if n_dims == 0 {
            return Err(self.error(
                "the IDX header declares zero dimensions (byte 3 is 0); an images file has 3 \
                 and a labels file 1"
                    .into(),
            ));
        }

        let header_len = 4 + 4 * n_dims;
        let mut size_bytes = Vec::with_capacity(4 * n_dims);
        self.read(&mut stream, 4 * n_dims as u64, &mut size_bytes)?;
        if size_bytes.len() < 4 * n_dims {
            return Err(self.error(format!(
                "truncated header: {n_dims} dimensions need a {header_len}-byte header, but the \
                 {}ends at byte offset {}",
                self.stream_name(),
                4 + size_bytes.len()
            )));
        }

        let mut dims = Vec::with_capacity(n_dims);
        for (index, chunk) in size_bytes.chunks_exact(4).enumerate() {
            let size = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if size == 0 {
                return Err(self.error(format!(
                    "dimension {index} (0-based) has size 0, so the file contains no data"
                )));
            }
            // A u32 always fits in usize on the 32- and 64-bit targets Rust supports with std.
            dims.push(size as usize);
        }
        let Some(expected) = dims
            .iter()
            .try_fold(1usize, |total, &size| total.checked_mul(size))
        else {
            return Err(self.error(format!(
                "the dimensions {dims:?} multiply to more elements than this machine can address"
            )));
        };

        // Reserve at most the bytes the file has left. A damaged header cannot force a large
        // allocation, because the reads below stop at the real end of the data.
        let available = file_len.map_or(0, |len| len.saturating_sub(header_len as u64));
        let mut data = Vec::with_capacity(expected.min(usize::try_from(available).unwrap_or(0)));
        self.read(&mut stream, expected as u64 + 1, &mut data)?;
        if data.len() < expected {
            return Err(self.error(format!(
                "truncated data: the header ({dims:?}) declares {expected} bytes after the \
                 {header_len}-byte header, but only {} follow; the {}ends at byte offset {}",
                data.len(),
                self.stream_name(),
                header_len + data.len()
            )));
        }
        if data.len() > expected {
            return Err(self.error(format!(
                "the {}continues past the end of the declared data at byte offset {}; the \
                 header ({dims:?}) or the file is damaged",
                self.stream_name(),
                header_len + expected
            )));
        }
        data.truncate(expected);
        Ok(IdxArray { dims, data })
    }

    /// Appends up to `limit` bytes of `stream` to `buffer`; fewer at the end of the stream.
    fn read<R: Read>(&self, stream: &mut R, limit: u64, buffer: &mut Vec<u8>) -> Result<()> {
        let start = buffer.len();
        read_up_to(stream, limit, buffer).map_err(|error| {
            if self.compressed {
                self.error(format!(
                    "gzip decompression failed after {} decompressed bytes: {error}; the file is \
                     truncated or damaged",
                    buffer.len() - start
                ))
            } else {
                Error::io(self.path, error)
            }
        })
    }

    fn stream_name(&self) -> &'static str {
        if self.compressed {
            "decompressed data "
        } else {
            "file "
        }
    }

    fn error(&self, message: String) -> Error {
        Error::data(self.path, message)
    }
}

/// Appends up to `limit` bytes of `reader` to `buffer`, stopping early at the end of the input.
/// The buffer grows with the bytes actually read, never to `limit` up front.
fn read_up_to<R: Read>(reader: &mut R, limit: u64, buffer: &mut Vec<u8>) -> io::Result<()> {
    reader.take(limit).read_to_end(buffer).map(|_| ())
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "no bytes".into();
    }
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names the IDX type codes for error messages.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "16-bit integer",
        0x0c => "32-bit integer",
        0x0d => "32-bit float",
        0x0e => "64-bit float",
        _ => "not an IDX type",
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;

    use super::*;

    /// Encodes an IDX file of unsigned bytes.
    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, TYPE_UNSIGNED_BYTE, dims.len() as u8];
        for size in dims {
            bytes.extend_from_slice(&size.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// Three 2x2 images with pixels 0, 51, 102 and 255, and labels 2, 0, 2.
    fn images() -> Vec<u8> {
        idx(&[3, 2, 2], &[0, 51, 102, 255, 255, 0, 0, 0, 51, 51, 51, 51])
    }

    fn labels() -> Vec<u8> {
        idx(&[3], &[2, 0, 2])
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn parse_error(name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), name, bytes);
        read_idx(&path).unwrap_err().to_string()
    }

    fn pair_error(image_bytes: &[u8], label_bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let images = write(dir.path(), "images", image_bytes);
        let labels = write(dir.path(), "labels", label_bytes);
        load_idx_pair(&images, &labels).unwrap_err().to_string()
    }

    fn check_pair(data: &Dataset) {
        assert_eq!(data.len(), 3);
        assert_eq!(data.n_features(), 4);
        assert_eq!(
            data.features.row(0).to_vec(),
            vec![0.0, 0.2, 0.4, 1.0],
            "pixels are divided by 255"
        );
        assert_eq!(
            data.targets,
            Targets::Classes {
                labels: vec![2, 0, 2],
                class_names: vec!["0".into(), "1".into(), "2".into()],
            }
        );
        assert_eq!(data.feature_names, None);
    }

    #[test]
    fn pair_raw() {
        let dir = tempfile::tempdir().unwrap();
        let images = write(dir.path(), "images-idx3-ubyte", &images());
        let labels = write(dir.path(), "labels-idx1-ubyte", &labels());
        check_pair(&load_idx_pair(&images, &labels).unwrap());
    }

    #[test]
    fn pair_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let images = write(dir.path(), "images-idx3-ubyte.gz", &gzip(&images()));
        let labels = write(dir.path(), "labels-idx1-ubyte.GZ", &gzip(&labels()));
        check_pair(&load_idx_pair(&images, &labels).unwrap());
    }

    #[test]
    fn pair_from_readers() {
        let data = load_idx_pair_reader(
            &images()[..],
            Path::new("images"),
            &gzip(&labels())[..],
            Path::new("labels.gz"),
        )
        .unwrap();
        check_pair(&data);

        let error = load_idx_pair_reader(
            &images()[..],
            Path::new("images"),
            &labels()[..],
            Path::new("labels.gz"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("labels.gz: "), "{error}");
        assert!(error.contains("not gzip"), "{error}");
    }

    #[test]
    fn gzip_without_gz_name() {
        let dir = tempfile::tempdir().unwrap();
        let images = write(dir.path(), "images", &gzip(&images()));
        let labels = write(dir.path(), "labels", &labels());
        check_pair(&load_idx_pair(&images, &labels).unwrap());
    }

    #[test]
    fn multi_dimensional_images_flatten() {
        let array = read_idx_from(&idx(&[1, 2, 3, 2], &[1; 12])[..], Path::new("x"), None).unwrap();
        assert_eq!(array.dims, vec![1, 2, 3, 2]);
        assert_eq!(array.data.len(), 12);
    }

    fn mnist_dir(train_labels: &[u8], test_labels: &[u8], gz: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let count = |labels: &[u8]| labels.len() as u32;
        let files = [
            (
                TRAIN_IMAGES,
                idx(
                    &[count(train_labels), 1, 2],
                    &vec![7; train_labels.len() * 2],
                ),
            ),
            (TRAIN_LABELS, idx(&[count(train_labels)], train_labels)),
            (
                TEST_IMAGES,
                idx(&[count(test_labels), 1, 2], &vec![9; test_labels.len() * 2]),
            ),
            (TEST_LABELS, idx(&[count(test_labels)], test_labels)),
        ];
        for (name, bytes) in files {
            if gz {
                write(dir.path(), &format!("{name}.gz"), &gzip(&bytes));
            } else {
                write(dir.path(), name, &bytes);
            }
        }
        dir
    }

    #[test]
    fn dir_raw_and_gzip() {
        for gz in [false, true] {
            let dir = mnist_dir(&[0, 1, 2, 1], &[1, 0], gz);
            let (train, test) = load_idx_dir(dir.path()).unwrap();
            assert_eq!(train.len(), 4, "gz {gz}");
            assert_eq!(test.len(), 2, "gz {gz}");
            assert_eq!(train.n_features(), 2);
            assert_eq!(train.features[[0, 0]], 7.0 / 255.0);
            assert_eq!(test.features[[0, 0]], 9.0 / 255.0);
        }
    }

    #[test]
    fn dir_shares_class_names() {
        // The test set lacks class 2 and the training set lacks class 3.
        let dir = mnist_dir(&[0, 1, 2, 1], &[3, 0], false);
        let (train, test) = load_idx_dir(dir.path()).unwrap();
        assert_eq!(train.n_classes(), Some(4));
        assert_eq!(test.n_classes(), Some(4));
        assert_eq!(
            test.targets,
            Targets::Classes {
                labels: vec![3, 0],
                class_names: vec!["0".into(), "1".into(), "2".into(), "3".into()],
            }
        );
    }

    #[test]
    fn dir_accepts_dotted_names() {
        let dir = mnist_dir(&[0, 1], &[1, 0], false);
        for name in [TRAIN_IMAGES, TEST_LABELS] {
            let from = dir.path().join(name);
            let to = dir.path().join(name.replacen("-idx", ".idx", 1));
            std::fs::rename(from, to).unwrap();
        }
        let (train, test) = load_idx_dir(dir.path()).unwrap();
        assert_eq!((train.len(), test.len()), (2, 2));
    }

    #[test]
    fn error_dir_missing_files() {
        let dir = mnist_dir(&[0, 1], &[1, 0], true);
        std::fs::remove_file(dir.path().join(format!("{TEST_IMAGES}.gz"))).unwrap();
        std::fs::remove_file(dir.path().join(format!("{TRAIN_LABELS}.gz"))).unwrap();
        let error = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("2 of the 4 MNIST files are missing"),
            "{error}"
        );
        assert!(
            error.contains("t10k-images-idx3-ubyte[.gz] or t10k-images.idx3-ubyte[.gz]"),
            "{error}"
        );
        assert!(error.contains("train-labels-idx1-ubyte[.gz]"), "{error}");
        assert!(!error.contains("train-images"), "{error}");
    }

    #[test]
    fn error_dir_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let error = load_idx_dir(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not a directory"), "{error}");
    }

    #[test]
    fn error_missing_file_is_io() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent");
        let error = load_idx_pair(&absent, &absent).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
    }

    #[test]
    fn error_empty_file() {
        let error = parse_error("x", &[]);
        assert!(error.contains("the file is empty"), "{error}");
        let error = parse_error("x.gz", &[]);
        assert!(error.contains("the file is empty"), "{error}");
    }

    #[test]
    fn error_wrong_magic() {
        let error = parse_error("x", b"PK\x03\x04rest");
        assert!(error.contains("not an IDX file"), "{error}");
        assert!(error.contains("starts with 50 4b 03 04"), "{error}");

        let error = parse_error("x", &[0, 0, 8]);
        assert!(error.contains("starts with 00 00 08,"), "{error}");
    }

    #[test]
    fn error_unsupported_type() {
        let mut bytes = idx(&[1], &[0, 0, 0, 0]);
        bytes[2] = 0x0d;
        let error = parse_error("x", &bytes);
        assert!(error.contains("type code 0x0d (32-bit float)"), "{error}");
        assert!(error.contains("only 0x08"), "{error}");
    }

    #[test]
    fn error_zero_dimensions() {
        let error = parse_error("x", &[0, 0, 8, 0]);
        assert!(error.contains("zero dimensions"), "{error}");

        let error = parse_error("x", &idx(&[3, 0, 2], &[]));
        assert!(
            error.contains("dimension 1 (0-based) has size 0"),
            "{error}"
        );
    }

    #[test]
    fn error_truncated_header() {
        let bytes = idx(&[3, 28, 28], &[]);
        let error = parse_error("x", &bytes[..10]);
        assert!(error.contains("truncated header"), "{error}");
        assert!(error.contains("16-byte header"), "{error}");
        assert!(error.contains("file ends at byte offset 10"), "{error}");
    }

    #[test]
    fn error_truncated_data() {
        let bytes = idx(&[3, 2, 2], &[1; 7]);
        let error = parse_error("x", &bytes);
        assert!(error.contains("truncated data"), "{error}");
        assert!(
            error.contains("declares 12 bytes after the 16-byte header"),
            "{error}"
        );
        assert!(error.contains("only 7 follow"), "{error}");
        assert!(error.contains("file ends at byte offset 23"), "{error}");
    }

    #[test]
    fn error_truncated_data_gzip() {
        let bytes = gzip(&idx(&[3, 2, 2], &[1; 7]));
        let error = parse_error("x.gz", &bytes);
        assert!(error.contains("only 7 follow"), "{error}");
        assert!(
            error.contains("decompressed data ends at byte offset 23"),
            "{error}"
        );
    }

    #[test]
    fn error_huge_header_small_file() {
        // The header declares 4 GiB x 4 GiB x 255 bytes; the loader must not try to allocate it.
        let bytes = idx(&[u32::MAX, u32::MAX, 255], &[1; 10]);
        let error = parse_error("x", &bytes);
        assert!(
            error.contains("truncated data") || error.contains("more elements"),
            "{error}"
        );

        let bytes = gzip(&idx(&[60_000, 28, 28], &[1; 100]));
        let error = parse_error("x.gz", &bytes);
        assert!(error.contains("declares 47040000 bytes"), "{error}");
        assert!(error.contains("only 100 follow"), "{error}");
    }

    #[test]
    fn error_trailing_data() {
        let bytes = idx(&[2], &[1, 2, 3]);
        let error = parse_error("x", &bytes);
        assert!(
            error.contains("past the end of the declared data"),
            "{error}"
        );
        assert!(error.contains("byte offset 10"), "{error}");
    }

    #[test]
    fn error_gz_name_not_gzip() {
        let error = parse_error("labels.gz", &labels());
        assert!(error.contains("not gzip"), "{error}");
        assert!(error.contains("starts with 00 00"), "{error}");
        assert!(error.contains("remove .gz"), "{error}");
    }

    #[test]
    fn error_damaged_gzip() {
        let mut bytes = gzip(&images());
        let middle = bytes.len() / 2;
        bytes.truncate(middle);
        let error = parse_error("x.gz", &bytes);
        assert!(error.contains("x.gz"), "{error}");
        assert!(
            error.contains("gzip decompression failed") || error.contains("truncated"),
            "{error}"
        );

        let mut bytes = gzip(&images());
        for byte in &mut bytes[10..20] {
            *byte ^= 0xff;
        }
        let error = parse_error("x.gz", &bytes);
        assert!(error.contains("x.gz"), "{error}");
    }

    #[test]
    fn error_count_mismatch() {
        let error = pair_error(&images(), &idx(&[2], &[0, 1]));
        assert!(error.contains("3 images"), "{error}");
        assert!(error.contains("has 2 labels"), "{error}");
    }

    #[test]
    fn error_swapped_files() {
        let error = pair_error(&labels(), &images());
        assert!(error.contains("at least 2 dimensions"), "{error}");
        assert!(error.contains("swapped"), "{error}");

        let error = pair_error(&images(), &images());
        assert!(error.contains("exactly 1 dimension"), "{error}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..256),
            header in proptest::collection::vec(any::<u8>(), 0..4),
            gz in any::<bool>(),
        ) {
            // Mostly valid-looking headers reach the dimension and data checks.
            let mut input = vec![0, 0, 8];
            input.extend(header);
            input.append(&mut bytes);
            let input = if gz { gzip(&input) } else { input };
            let _ = read_idx_from(&input[..], Path::new("p"), Some(input.len() as u64));
            let _ = read_idx_from(&input[..], Path::new("p.gz"), None);
        }

        #[test]
        fn raw_arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = read_idx_from(&bytes[..], Path::new("p"), Some(bytes.len() as u64));
        }
    }
}
