//! Training checkpoints: the state of a [`Trainer`] after an epoch, in one `.safetensors` file,
//! from which [`Trainer::resume`] continues the run.
//!
//! The file's tensors are little-endian `F32`:
//!
//! - `layers.{i}.weight` (`n[i+1] x n[i]`) and `layers.{i}.bias` (`n[i+1]`): the current
//!   network, named and laid out as in model files ([`crate::model`]);
//! - `optimizer.{buffer}.{i}.weight` and `optimizer.{buffer}.{i}.bias`: the optimizer's buffers
//!   under the names of [`StateTensor::name`], such as `optimizer.exp_avg.0.weight`; plain SGD
//!   has none;
//! - `best.layers.{i}.weight` and `best.layers.{i}.bias`: the weights of the best epoch, present
//!   only when early stopping has recorded one.
//!
//! The metadata key [`METADATA_KEY`] contains a JSON object with the format version, the layer
//! sizes and activations, the cost, the [`TrainConfig`], the [`History`], the generator's state,
//! the optimizer's step count, the early-stopping state (`stale_epochs` and the best epoch and
//! loss), and `extra`, a JSON value that the caller stores and gets back unchanged. The
//! command-line tool keeps there what it needs to reload the same data and write the same
//! model file.
//!
//! The trainer builds each epoch's example order from the generator and the data alone (the
//! shuffle, then the order within each batch that `TrainConfig::order_by_zeros` sets), so this
//! is the whole state of a run. Resuming with the same training and validation data gives
//! bit-identical weights and history (apart from the timings) to a run that never stopped.
//! That holds for any thread count where [`crate::linalg`] uses its own `f32` product (x86-64
//! with AVX2 and FMA), and for the same thread count elsewhere. The checkpoint does not identify
//! the data, so the caller must pass the same data to [`Trainer::run_epoch`] after resuming.
//!
//! Loading is as strict as [`Model::load`](crate::model::Model::load): it checks the format
//! version, every tensor's dtype and shape against the description, rejects tensors the
//! description does not account for, and checks that the history and early-stopping state
//! agree. Every allocation is bounded by the file's size. Writes go through
//! [`write_atomically`](crate::model::write_atomically), so a process killed while saving
//! leaves the previous checkpoint in place.
//!
//! ```
//! use feedforward::train::{TrainConfig, TrainData, Trainer};
//! use feedforward::{Activation, Cost, Network, Rng};
//! use ndarray::array;
//!
//! let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let y = array![[0.0f32], [1.0], [1.0], [0.0]];
//! let data = TrainData::new(x.view(), y.view())?;
//! let network = Network::random(&[2, 4, 1], &[Activation::Tanh, Activation::Sigmoid], &mut Rng::new(1))?;
//! let config = TrainConfig { epochs: 4, batch_size: 2, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(network, Cost::BinaryCrossEntropy, config)?;
//! trainer.run_epoch(data, None, &mut ())?;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("run.ckpt");
//! trainer.save_checkpoint(&path, &serde_json::json!({"note": "kept as is"}))?;
//! let (mut resumed, extra) = Trainer::resume(&path)?;
//! assert_eq!((resumed.epochs_done(), extra["note"].as_str()), (1, Some("kept as is")));
//!
//! trainer.fit(data, None, &mut ())?;
//! resumed.fit(data, None, &mut ())?;
//! assert_eq!(resumed.finish(), trainer.finish());
//! # Ok::<(), feedforward::Error>(())
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::cost::Cost;
use crate::error::{Error, Result};
use crate::model::{self, F32Tensor};
use crate::optim::StateTensor;
use crate::rng::Rng;
use crate::train::{BestState, History, TrainConfig, Trainer};

/// The version of the checkpoint layout that this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The metadata key that contains the JSON description of a checkpoint.
pub const METADATA_KEY: &str = "feedforward_checkpoint";

/// Prefix of the optimizer's state tensors.
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Prefix of the best epoch's weights.
const BEST_PREFIX: &str = "best.";

/// Name used in errors when a checkpoint is encoded in memory rather than saved to a file.
const IN_MEMORY: &str = "<checkpoint>";

/// The JSON description stored under [`METADATA_KEY`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointMetadata {
    format_version: u32,
    layer_sizes: Vec<usize>,
    activations: Vec<Activation>,
    cost: Cost,
    config: TrainConfig,
    history: History,
    rng: Rng,
    optimizer_step_count: u64,
    stale_epochs: usize,
    /// The best epoch and its monitored loss; its weights are the `best.` tensors.
    best: Option<BestRecord>,
    extra: serde_json::Value,
}

/// The early-stopping record of the best epoch, without its weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BestRecord {
    epoch: usize,
    loss: f64,
}

impl Trainer {
    /// Writes the run's state after its last completed epoch to `path` atomically, with
    /// `extra` stored unchanged for [`Trainer::resume`] to return.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written; [`Error::Model`] when a weight is NaN or
    /// infinite or the state cannot be encoded.
    pub fn save_checkpoint(&self, path: &Path, extra: &serde_json::Value) -> Result<()> {
        let bytes = self.encode_checkpoint(extra, path)?;
        model::write_atomically(path, &bytes)
    }

    /// Returns the bytes [`Trainer::save_checkpoint`] would write.
    ///
    /// # Errors
    ///
    /// As [`Trainer::save_checkpoint`], without the I/O errors.
    pub fn checkpoint_bytes(&self, extra: &serde_json::Value) -> Result<Vec<u8>> {
        self.encode_checkpoint(extra, Path::new(IN_MEMORY))
    }

    /// Reads a checkpoint written by [`Trainer::save_checkpoint`] and returns the trainer,
    /// ready for the next epoch, with the checkpoint's `extra` value.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read; [`Error::Model`] when it is not a
    /// safetensors file, is a model rather than a checkpoint, has another format version, or
    /// contains tensors or a state that disagree with its description.
    pub fn resume(path: &Path) -> Result<(Trainer, serde_json::Value)> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        Trainer::resume_from_bytes(&bytes, path)
    }

    /// Parses a checkpoint from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Trainer::resume`].
    pub fn resume_from_bytes(bytes: &[u8], path: &Path) -> Result<(Trainer, serde_json::Value)> {
        let metadata = read_description(bytes, path)?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        check_tensor_names(&tensors, &metadata, path)?;
        let sizes = &metadata.layer_sizes;
        let network = model::decode_layers(
            &tensors,
            "",
            sizes,
            &metadata.activations,
            metadata.cost,
            path,
        )?;
        let best = match metadata.best {
            Some(record) => Some(BestState {
                network: model::decode_layers(
                    &tensors,
                    BEST_PREFIX,
                    sizes,
                    &metadata.activations,
                    metadata.cost,
                    path,
                )?,
                epoch: record.epoch,
                loss: record.loss,
            }),
            None => None,
        };
        let optimizer_state = read_optimizer_state(&tensors, path)?;
        check_progress(&metadata, path)?;
        if metadata.rng.has_zero_state() {
            return Err(Error::model(
                path,
                "the random-number generator's state is all zeros, which no seed produces; \
                 the checkpoint is damaged",
            ));
        }

        let mut trainer = Trainer::new(network, metadata.cost, metadata.config)
            .map_err(|e| Error::model(path, e.to_string()))?;
        trainer
            .optimizer
            .restore_state(metadata.optimizer_step_count, &optimizer_state)
            .map_err(|e| Error::model(path, e.to_string()))?;
        trainer.rng = metadata.rng;
        trainer.history = metadata.history;
        trainer.stale_epochs = metadata.stale_epochs;
        trainer.best = best;
        Ok((trainer, metadata.extra))
    }

    fn encode_checkpoint(&self, extra: &serde_json::Value, path: &Path) -> Result<Vec<u8>> {
        model::check_finite(&self.network, path)?;
        if let Some(best) = &self.best {
            model::check_finite(&best.network, path)?;
        }
        let metadata = CheckpointMetadata {
            format_version: FORMAT_VERSION,
            layer_sizes: self.network.sizes(),
            activations: self.network.activations(),
            cost: self.cost,
            config: self.config.clone(),
            history: self.history.clone(),
            rng: self.rng.clone(),
            optimizer_step_count: self.optimizer.step_count(),
            stale_epochs: self.stale_epochs,
            best: self.best.as_ref().map(|best| BestRecord {
                epoch: best.epoch,
                loss: best.loss,
            }),
            extra: extra.clone(),
        };
        let description = serde_json::to_string(&metadata)
            .map_err(|e| Error::model(path, format!("cannot encode the description: {e}")))?;

        let mut buffers: Vec<F32Tensor> = model::network_tensors(&self.network, "");
        for tensor in self.optimizer.state_tensors() {
            buffers.push((
                format!("{OPTIMIZER_PREFIX}{}", tensor.name),
                tensor.shape,
                model::le_bytes(tensor.data.into_iter()),
            ));
        }
        if let Some(best) = &self.best {
            buffers.extend(model::network_tensors(&best.network, BEST_PREFIX));
        }
        model::serialize_f32(
            &buffers,
            HashMap::from([(METADATA_KEY.to_string(), description)]),
        )
        .map_err(|e| Error::model(path, format!("cannot encode the tensors: {e}")))
    }
}

/// Parses the JSON description after checking that it exists and has this build's version.
fn read_description(bytes: &[u8], path: &Path) -> Result<CheckpointMetadata> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        Error::model(
            path,
            format!(
                "not a valid safetensors file ({e}); it may be truncated or of another format: \
                 write a checkpoint with `feedforward train --checkpoint-every N`"
            ),
        )
    })?;
    let entries = header.metadata().as_ref();
    let Some(description) = entries.and_then(|m| m.get(METADATA_KEY)) else {
        let message = if entries.is_some_and(|m| m.contains_key(model::METADATA_KEY)) {
            "this is a feedforward model file, not a checkpoint; a checkpoint is written by \
             `feedforward train --checkpoint-every N`"
                .to_string()
        } else {
            format!(
                "the safetensors file has no '{METADATA_KEY}' metadata, so it is not a \
                 feedforward checkpoint"
            )
        };
        return Err(Error::model(path, message));
    };
    let version = serde_json::from_str::<serde_json::Value>(description)
        .ok()
        .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()));
    match version {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(Error::model(
                path,
                format!(
                    "checkpoint format version {v} is not supported; this build of feedforward \
                     reads version {FORMAT_VERSION}: resume with the feedforward version that \
                     wrote it"
                ),
            ));
        }
        None => {
            return Err(Error::model(
                path,
                "the checkpoint description has no format_version; the file is damaged",
            ));
        }
    }
    serde_json::from_str(description)
        .map_err(|e| Error::model(path, format!("invalid checkpoint description: {e}")))
}

/// Rejects every tensor that is neither an optimizer tensor nor a layer tensor of the network
/// or, when the description has a best epoch, of the best weights. Missing tensors are found
/// when they are read.
fn check_tensor_names(
    tensors: &SafeTensors<'_>,
    metadata: &CheckpointMetadata,
    path: &Path,
) -> Result<()> {
    let layers = metadata.layer_sizes.len().saturating_sub(1);
    let mut prefixes = vec![""];
    if metadata.best.is_some() {
        prefixes.push(BEST_PREFIX);
    }
    let is_layer_tensor = |name: &str| {
        prefixes.iter().any(|prefix| {
            (0..layers).any(|index| {
                name == format!("{prefix}layers.{index}.weight")
                    || name == format!("{prefix}layers.{index}.bias")
            })
        })
    };
    let mut names = tensors.names();
    names.sort();
    for name in names {
        if !name.starts_with(OPTIMIZER_PREFIX) && !is_layer_tensor(name) {
            return Err(Error::model(
                path,
                format!(
                    "unexpected tensor '{name}': the description's {layers} layers{} do not \
                     account for it; the file is damaged",
                    if metadata.best.is_some() {
                        " and best epoch"
                    } else {
                        ", without a best epoch,"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Reads every `optimizer.` tensor as `F32` with the prefix removed. Whether the names and
/// shapes fit the optimizer is checked when they are restored into it.
fn read_optimizer_state(tensors: &SafeTensors<'_>, path: &Path) -> Result<Vec<StateTensor<f32>>> {
    let mut state = Vec::new();
    for (name, view) in tensors.tensors() {
        let Some(buffer_name) = name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let shape = view.shape().to_vec();
        let data = model::read_tensor(tensors, &name, &shape, path)?;
        if !data.iter().all(|value| value.is_finite()) {
            return Err(Error::model(
                path,
                format!("optimizer tensor '{name}' holds a NaN or infinite value"),
            ));
        }
        state.push(StateTensor {
            name: buffer_name.to_string(),
            shape,
            data,
        });
    }
    Ok(state)
}

/// Checks that the history, the best epoch and the early-stopping counter describe one run,
/// as [`Trainer::run_epoch`] leaves them after every epoch.
fn check_progress(metadata: &CheckpointMetadata, path: &Path) -> Result<()> {
    let history = &metadata.history;
    let done = history.epochs.len();
    let invalid = |message: String| Err(Error::model(path, message));
    for (index, record) in history.epochs.iter().enumerate() {
        if record.epoch != index + 1 {
            return invalid(format!(
                "history record {} is numbered epoch {}; the checkpoint is damaged",
                index + 1,
                record.epoch
            ));
        }
    }
    if history.best_epoch != metadata.best.map(|best| best.epoch) {
        return invalid(format!(
            "the history's best epoch {:?} differs from the stored best epoch {:?}",
            history.best_epoch,
            metadata.best.map(|best| best.epoch)
        ));
    }

    let Some(stopping) = metadata.config.early_stopping else {
        if metadata.best.is_some() || metadata.stale_epochs != 0 || history.stopped_early {
            return invalid(
                "the checkpoint has early-stopping state but early stopping is off".into(),
            );
        }
        return Ok(());
    };
    let best_epoch = match metadata.best {
        None if done == 0 => 0,
        None => {
            return invalid(format!(
                "early stopping is on and {done} epochs are done, but no best epoch is stored"
            ));
        }
        Some(best) if (1..=done).contains(&best.epoch) => best.epoch,
        Some(best) => {
            return invalid(format!(
                "the best epoch {} is outside the {done} epochs done",
                best.epoch
            ));
        }
    };
    // Every epoch after the best one counted as stale, and the run is marked as stopped
    // early once the count reaches the patience (or after the first stale epoch when the
    // patience is 0). The mark stays when a caller runs more epochs, so only this direction
    // is checked.
    let expected_stale = done - best_epoch;
    if metadata.stale_epochs != expected_stale {
        return invalid(format!(
            "stale_epochs is {} but {expected_stale} epochs followed the best epoch {best_epoch}",
            metadata.stale_epochs
        ));
    }
    if expected_stale >= stopping.patience.max(1) && !history.stopped_early {
        return invalid(format!(
            "{expected_stale} epochs without improvement reach the patience of {}, but the \
             run is not marked as stopped early",
            stopping.patience
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
