//! Model files: a trained network with everything needed to use it, in one `.safetensors` file.
//!
//! The tensors are `layers.{i}.weight` (`n[i+1] x n[i]`, the layout of PyTorch's `nn.Linear`)
//! and `layers.{i}.bias` (`n[i+1]`), little-endian `F32`, for `i = 0 .. L-1`. The file's
//! metadata holds one key, `feedforward`, whose value is a JSON [`ModelMetadata`]: the format
//! version, the layer sizes and activations, the cost, the feature scaler, the class labels and
//! the training settings. Python reads the weights with `safetensors.numpy.load_file` and the
//! description with `safe_open(path, "np").metadata()`.
//!
//! A model is data, never code: loading parses the safetensors header and the JSON description
//! and checks every tensor's dtype and shape against the description before copying it. Tensor
//! allocations are bounded by the file's own size, since the file is read whole and each tensor
//! is copied out of it.
//!
//! The JSON description is bounded separately: parsed into `serde_json::Value`s and vectors,
//! its text can take tens of times its own size (a 10 MB description holding an array of 2.5
//! million `[0]` peaked at 474 MB resident; see `docs/fuzzing.md`). So the format version is
//! read without building a tree, and a description over [`MAX_DESCRIPTION_BYTES`] is rejected
//! before it is parsed: at that ratio a file can make the loader allocate at most about 200 MB.
//!
//! Writes are atomic: the file is written under a temporary name in the same directory, synced
//! and renamed over the target, so an interrupted save leaves either the old file or the new
//! one, never half of one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayView2};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::cost::Cost;
use crate::data::Scaler;
use crate::error::{Error, Result};
use crate::layer::Dense;
use crate::network::Network;
use crate::train;

/// The version of the metadata layout that this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The largest JSON description a model file may hold. A description lists layer sizes, class
/// and feature names and a per-epoch history, a few kilobytes for typical models; 4 MiB leaves
/// room for 100,000 feature names.
pub const MAX_DESCRIPTION_BYTES: usize = 4 << 20;

/// The metadata key that contains the JSON description.
pub const METADATA_KEY: &str = "feedforward";

/// The JSON description stored in a model file's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Layout version; this build reads [`FORMAT_VERSION`] only.
    pub format_version: u32,
    /// Widths `[n[0], .., n[L]]`.
    pub layer_sizes: Vec<usize>,
    /// One activation per layer.
    pub activations: Vec<Activation>,
    /// The cost the network was trained with; it decides how outputs become predictions.
    pub cost: Cost,
    /// Class labels as written in the training data, indexed by output row; `None` for
    /// regression.
    pub class_names: Option<Vec<String>>,
    /// Feature names from the training file's header, when it had one.
    pub feature_names: Option<Vec<String>>,
    /// Feature scaling fitted on the training set, applied before the network.
    pub scaler: Scaler,
    /// Training settings and results, free-form for display; `null` when unknown.
    pub training: serde_json::Value,
}

/// A trained network with its preprocessing and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The network.
    pub network: Network<f32>,
    /// The cost it was trained with.
    pub cost: Cost,
    /// Class labels by output row; `None` for regression.
    pub class_names: Option<Vec<String>>,
    /// Feature names, when known.
    pub feature_names: Option<Vec<String>>,
    /// Feature scaling applied before the network.
    pub scaler: Scaler,
    /// Training settings and results, for display.
    pub training: serde_json::Value,
}

impl Model {
    /// The JSON description of this model.
    pub fn metadata(&self) -> ModelMetadata {
        ModelMetadata {
            format_version: FORMAT_VERSION,
            layer_sizes: self.network.sizes(),
            activations: self.network.activations(),
            cost: self.cost,
            class_names: self.class_names.clone(),
            feature_names: self.feature_names.clone(),
            scaler: self.scaler.clone(),
            training: self.training.clone(),
        }
    }

    /// Returns the network's outputs (`n[L] x m`) for raw features, one example per row
    /// (`m x n[0]`): the stored scaler is applied first.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when the feature count differs from the model's.
    pub fn predict(&self, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut scaled = features.to_owned();
        self.scaler.transform(&mut scaled)?;
        train::predict(&self.network, scaled.view())
    }

    /// Writes the model to `path` atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written; [`Error::Model`] when a weight is NaN or
    /// infinite (a diverged network is never saved), or when the class names or the scaler do
    /// not fit the network, which [`Model::load`] would reject.
    pub fn save(&self, path: &Path) -> Result<()> {
        check_finite(&self.network, path)?;
        let metadata = self.metadata();
        check_classes(&metadata, path)?;
        check_scaler(&metadata, path)?;
        let metadata = serde_json::to_string(&metadata)
            .map_err(|e| Error::model(path, format!("cannot encode the description: {e}")))?;
        let bytes = encode(
            &self.network,
            HashMap::from([(METADATA_KEY.to_string(), metadata)]),
        )
        .map_err(|e| Error::model(path, format!("cannot encode the tensors: {e}")))?;
        write_atomically(path, &bytes)
    }

    /// Reads a model written by [`Model::save`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Model`] when it is not a
    /// safetensors file, lacks the `feedforward` description, has another format version, or
    /// holds tensors whose names, dtypes or shapes disagree with the description.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        Model::from_bytes(&bytes, path)
    }

    /// Parses a model from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Model::load`].
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
            let message = match truncation(bytes) {
                Some(place) => format!(
                    "not a valid safetensors file: it is truncated, because {place}; copy the \
                     whole file again, or train a new model with `feedforward train --model FILE`"
                ),
                None => format!(
                    "not a valid safetensors file ({e}); it may be truncated or of another \
                     format: train a model with `feedforward train --model FILE`"
                ),
            };
            Error::model(path, message)
        })?;
        let description = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                Error::model(
                    path,
                    format!(
                        "the safetensors file has no '{METADATA_KEY}' metadata, so it was not \
                         written by feedforward; it holds tensors but no description of the network"
                    ),
                )
            })?;
        if description.len() > MAX_DESCRIPTION_BYTES {
            return Err(Error::model(
                path,
                format!(
                    "the model description is {} bytes, more than the {MAX_DESCRIPTION_BYTES} that feedforward reads; the file is damaged or was not written by feedforward",
                    description.len()
                ),
            ));
        }
        /// Only the version, so that other fields are skipped without building a tree.
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<u64>,
        }
        let version = serde_json::from_str::<Version>(description)
            .ok()
            .and_then(|v| v.format_version);
        match version {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(Error::model(
                    path,
                    format!(
                        "format version {v} is not supported; this build of feedforward reads \
                         version {FORMAT_VERSION}: use the feedforward version that wrote it"
                    ),
                ));
            }
            None => {
                return Err(Error::model(
                    path,
                    "the description has no format_version; the file is damaged or not a \
                     feedforward model",
                ));
            }
        }
        let metadata: ModelMetadata = serde_json::from_str(description)
            .map_err(|e| Error::model(path, format!("invalid model description: {e}")))?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        let network = decode(&tensors, &metadata, path)?;
        check_classes(&metadata, path)?;
        check_scaler(&metadata, path)?;
        Ok(Model {
            network,
            cost: metadata.cost,
            class_names: metadata.class_names,
            feature_names: metadata.feature_names,
            scaler: metadata.scaler,
            training: metadata.training,
        })
    }
}

/// Describes where a safetensors file that failed to parse was cut short, or returns `None`
/// when it does not look like a cut safetensors file.
///
/// A safetensors file is an 8-byte little-endian header length `n`, an `n`-byte JSON header
/// whose entries give each tensor's `data_offsets` from the end of the header, and the data.
fn truncation(bytes: &[u8]) -> Option<String> {
    let header_len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header_end = header_len.checked_add(8)?;
    let size = bytes.len() as u64;
    if size < header_end {
        // Any 8 bytes read as a length, so only a JSON object after them marks a safetensors
        // header rather than another format.
        return (bytes.get(8) == Some(&b'{')).then(|| {
            format!("it ends at byte offset {size}, inside its {header_len}-byte JSON header")
        });
    }
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..usize::try_from(header_end).ok()?)?).ok()?;
    let data_len = header
        .as_object()?
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, tensor)| tensor.get("data_offsets")?.get(1)?.as_u64())
        .max()?;
    let expected = header_end.checked_add(data_len)?;
    (size < expected).then(|| {
        format!("its header describes {expected} bytes, but the file ends at byte offset {size}")
    })
}

fn check_scaler(metadata: &ModelMetadata, path: &Path) -> Result<()> {
    if let Some(n) = metadata.scaler.n_features()
        && n != metadata.layer_sizes[0]
    {
        return Err(Error::model(
            path,
            format!(
                "the scaler is for {n} features but the network has {} inputs",
                metadata.layer_sizes[0]
            ),
        ));
    }
    Ok(())
}

fn check_classes(metadata: &ModelMetadata, path: &Path) -> Result<()> {
    let outputs = metadata.layer_sizes[metadata.layer_sizes.len() - 1];
    let expected = match metadata.cost {
        Cost::BinaryCrossEntropy => Some(2),
        Cost::CategoricalCrossEntropy | Cost::MultiLabelBinaryCrossEntropy => Some(outputs),
        Cost::MeanSquaredError => None,
    };
    match (&metadata.class_names, expected) {
        (Some(names), Some(n)) if names.len() != n => Err(Error::model(
            path,
            format!(
                "{} class names for a {} network with {outputs} outputs",
                names.len(),
                metadata.cost
            ),
        )),
        _ => Ok(()),
    }
}

/// Serializes the weights and biases with `metadata`.
pub(crate) fn encode(
    network: &Network<f32>,
    metadata: HashMap<String, String>,
) -> std::result::Result<Vec<u8>, safetensors::SafeTensorError> {
    serialize_f32(&network_tensors(network, ""), metadata)
}

/// A named `F32` tensor as stored: name, shape and little-endian bytes.
pub(crate) type F32Tensor = (String, Vec<usize>, Vec<u8>);

/// Returns the tensors `{prefix}layers.{i}.weight` and `{prefix}layers.{i}.bias` of every layer.
pub(crate) fn network_tensors(network: &Network<f32>, prefix: &str) -> Vec<F32Tensor> {
    let mut buffers = Vec::new();
    for (index, layer) in network.layers().iter().enumerate() {
        buffers.push((
            format!("{prefix}layers.{index}.weight"),
            vec![layer.outputs(), layer.inputs()],
            le_bytes(layer.weights().iter().copied()),
        ));
        buffers.push((
            format!("{prefix}layers.{index}.bias"),
            vec![layer.outputs()],
            le_bytes(layer.bias().iter().copied()),
        ));
    }
    buffers
}

/// Serializes `F32` tensors with `metadata` into the bytes of a safetensors file.
pub(crate) fn serialize_f32(
    buffers: &[F32Tensor],
    metadata: HashMap<String, String>,
) -> std::result::Result<Vec<u8>, safetensors::SafeTensorError> {
    let views = buffers
        .iter()
        .map(|(name, shape, data)| {
            Ok((
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data)?,
            ))
        })
        .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()?;
    safetensors::serialize(views, Some(metadata))
}

/// Little-endian bytes of `values`.
pub(crate) fn le_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

/// Reads tensor `name` as `F32` of exactly `shape`, or explains what is wrong.
pub(crate) fn read_tensor(
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f32>> {
    let view = tensors.tensor(name).map_err(|_| {
        Error::model(
            path,
            format!("tensor '{name}' is missing; the file is damaged"),
        )
    })?;
    if view.dtype() != Dtype::F32 {
        return Err(Error::model(
            path,
            format!(
                "tensor '{name}' is {:?}, but feedforward models are F32",
                view.dtype()
            ),
        ));
    }
    if view.shape() != shape {
        return Err(Error::model(
            path,
            format!(
                "tensor '{name}' has shape {:?} but the description says {shape:?}; the file is damaged",
                view.shape()
            ),
        ));
    }
    // The safetensors parser has checked that the data length matches the shape and dtype.
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Builds the network that `metadata` describes from `tensors`, which must contain the
/// network's tensors and nothing else.
pub(crate) fn decode(
    tensors: &SafeTensors<'_>,
    metadata: &ModelMetadata,
    path: &Path,
) -> Result<Network<f32>> {
    let sizes = &metadata.layer_sizes;
    check_layer_lists(sizes, &metadata.activations, path)?;
    let expected_tensors = 2 * (sizes.len() - 1);
    if tensors.len() != expected_tensors {
        return Err(Error::model(
            path,
            format!(
                "the file holds {} tensors but the description's {} layers need {expected_tensors}",
                tensors.len(),
                sizes.len() - 1
            ),
        ));
    }
    decode_layers(
        tensors,
        "",
        sizes,
        &metadata.activations,
        metadata.cost,
        path,
    )
}

/// Rejects layer lists that cannot describe a network: fewer than 2 sizes, or not one
/// activation per layer.
pub(crate) fn check_layer_lists(
    sizes: &[usize],
    activations: &[Activation],
    path: &Path,
) -> Result<()> {
    if sizes.len() < 2 || activations.len() != sizes.len() - 1 {
        return Err(Error::model(
            path,
            format!(
                "the description lists {} layer sizes and {} activations; a network needs \
                 at least 2 sizes and one activation per layer",
                sizes.len(),
                activations.len()
            ),
        ));
    }
    Ok(())
}

/// Builds a network from the tensors `{prefix}layers.{i}.weight` and `{prefix}layers.{i}.bias`
/// with the given `sizes` and `activations`, and checks that `cost` can follow its output
/// layer and that every value is finite. Other tensors in `tensors` are ignored.
pub(crate) fn decode_layers(
    tensors: &SafeTensors<'_>,
    prefix: &str,
    sizes: &[usize],
    activations: &[Activation],
    cost: Cost,
    path: &Path,
) -> Result<Network<f32>> {
    check_layer_lists(sizes, activations, path)?;
    let mut layers = Vec::with_capacity(sizes.len() - 1);
    for (index, (pair, &activation)) in sizes.windows(2).zip(activations).enumerate() {
        let weights = read_tensor(
            tensors,
            &format!("{prefix}layers.{index}.weight"),
            &[pair[1], pair[0]],
            path,
        )?;
        let bias = read_tensor(
            tensors,
            &format!("{prefix}layers.{index}.bias"),
            &[pair[1]],
            path,
        )?;
        let weights = Array2::from_shape_vec((pair[1], pair[0]), weights)
            .map_err(|e| Error::model(path, e.to_string()))?;
        let layer = Dense::new(weights, Array1::from(bias), activation)
            .map_err(|e| Error::model(path, format!("layer {}: {e}", index + 1)))?;
        layers.push(layer);
    }
    let network = Network::new(layers).map_err(|e| Error::model(path, e.to_string()))?;
    cost.check_output(network.output_activation(), network.outputs())
        .map_err(|e| Error::model(path, e.to_string()))?;
    check_finite(&network, path)?;
    Ok(network)
}

/// Rejects a network with a NaN or infinite weight or bias.
pub(crate) fn check_finite(network: &Network<f32>, path: &Path) -> Result<()> {
    for (index, layer) in network.layers().iter().enumerate() {
        if !layer
            .weights()
            .iter()
            .chain(layer.bias().iter())
            .all(|v| v.is_finite())
        {
            return Err(Error::model(
                path,
                format!(
                    "layer {} has a NaN or infinite weight; a diverged network is not saved or used",
                    index + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`.
///
/// # Errors
///
/// [`Error::Io`] naming `path`; the temporary file is removed on failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(error) = result {
        let _ = fs::remove_file(&temporary);
        return Err(Error::io(path, error));
    }
    Ok(())
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests;
