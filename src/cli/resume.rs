//! The run record that `train --resume` needs besides the trainer's own state: how to reload
//! and prepare the same data, the model file's pieces, and a fingerprint that shows whether the
//! data changed. `train` stores it as the `extra` value of every checkpoint.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use feedforward::Dataset;
use feedforward::data::{Scaler, Targets};
use feedforward::train::TrainConfig;
use serde::{Deserialize, Serialize};

use super::UsageError;
use super::data::{DataArgs, DataSpec, EMBEDDED};
use super::train::{DataOptions, PreparedData};

/// The run record stored in a checkpoint by `feedforward train --checkpoint-every N`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// The data as the model file names it.
    pub data: DataSpec,
    /// The --data path made absolute, so that a resume from another directory reloads the same
    /// file; `None` for the embedded digits.
    pub data_path: Option<PathBuf>,
    /// The --test-data path made absolute.
    pub test_data: Option<PathBuf>,
    /// --test-split as given; unused when the data has its own test set or --test-data.
    pub test_split: f64,
    /// --validation-split as given.
    pub validation_split: f64,
    /// The --validation-data path made absolute.
    #[serde(default)]
    pub validation_data: Option<PathBuf>,
    /// --seed, which also seeds the test and validation splits.
    pub seed: u64,
    /// The scaler fitted on the training set, written into the model file.
    pub scaler: Scaler,
    /// Training, validation and test examples.
    pub examples: [usize; 3],
    /// FNV-1a hash of the prepared features and targets of all three sets, in hexadecimal.
    pub fingerprint: String,
    /// The settings as given, written into the model file. The trainer's own copy has a cosine
    /// schedule's total epochs filled in.
    pub config: TrainConfig,
    /// Absolute path of the model file that the run saves.
    pub model: PathBuf,
    /// --checkpoint-every of the run.
    pub checkpoint_every: usize,
    /// Wall-clock seconds of training up to the checkpoint, summed over resumed runs.
    pub train_seconds: f64,
}

impl RunRecord {
    /// Records a new run before its first epoch.
    pub fn new(
        prepared: &PreparedData,
        options: &DataOptions<'_>,
        config: TrainConfig,
        model: &Path,
        checkpoint_every: usize,
    ) -> Result<RunRecord> {
        Ok(RunRecord {
            data: prepared.spec.clone(),
            data_path: options.data.data.as_deref().map(absolute).transpose()?,
            test_data: options.test_data.map(absolute).transpose()?,
            test_split: options.test_split,
            validation_split: options.validation_split,
            validation_data: options.validation_data.map(absolute).transpose()?,
            seed: options.seed,
            scaler: prepared.scaler.clone(),
            examples: examples(prepared),
            fingerprint: fingerprint(prepared),
            config,
            model: std::path::absolute(model)
                .with_context(|| format!("cannot make {} absolute", model.display()))?,
            checkpoint_every,
            train_seconds: 0.0,
        })
    }

    /// Reads the record from a checkpoint's `extra` value.
    pub fn from_checkpoint(extra: serde_json::Value, checkpoint: &Path) -> Result<RunRecord> {
        serde_json::from_value(extra).with_context(|| {
            format!(
                "{}: the checkpoint holds no valid `feedforward train` run record, so the \
                 command-line tool cannot resume it",
                checkpoint.display()
            )
        })
    }

    /// Returns the data options that reload the recorded data.
    pub fn data_args(&self) -> DataArgs {
        DataArgs {
            data: self.data_path.clone(),
            target: self.data.target.clone(),
            task: self.data.task,
            header: self.data.header,
        }
    }

    /// Checks that an explicit --data names the recorded data file or directory.
    pub fn check_data_path(&self, explicit_data: Option<&Path>) -> Result<()> {
        let Some(given) = explicit_data else {
            return Ok(());
        };
        let matches = match &self.data_path {
            Some(recorded) => absolute(given).is_ok_and(|given| &given == recorded),
            None => false,
        };
        if !matches {
            let recorded = match &self.data_path {
                Some(path) => path.display().to_string(),
                None => format!("the {EMBEDDED} set"),
            };
            return Err(UsageError(format!(
                "--data {} is not the checkpoint's training data, {recorded}; omit --data to \
                 reload the recorded data",
                given.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Checks that the reloaded data is the data the run started with.
    pub fn check_same_data(&self, prepared: &PreparedData) -> Result<()> {
        let mut differences = Vec::new();
        let found = examples(prepared);
        if found != self.examples {
            differences.push(format!(
                "{} training, {} validation and {} test examples instead of {}, {} and {}",
                found[0], found[1], found[2], self.examples[0], self.examples[1], self.examples[2]
            ));
        }
        if prepared.scaler != self.scaler {
            differences.push("other feature statistics".to_string());
        }
        if fingerprint(prepared) != self.fingerprint {
            differences.push("other feature or target values".to_string());
        }
        if differences.is_empty() {
            return Ok(());
        }
        Err(anyhow!(
            "the training data {} has changed since the checkpoint was saved ({}); resuming \
             needs the same data",
            self.data.source,
            differences.join(", ")
        ))
    }
}

/// `path` as an absolute path with symbolic links resolved, or only made absolute when it
/// cannot be resolved.
fn absolute(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .with_context(|| format!("cannot make {} absolute", path.display()))
}

fn examples(prepared: &PreparedData) -> [usize; 3] {
    [
        prepared.train.len(),
        prepared.validation.as_ref().map_or(0, Dataset::len),
        prepared.test.len(),
    ]
}

/// FNV-1a (64-bit) over the shapes, feature names, features and targets of the three sets.
/// It detects a changed data file; it is not a cryptographic hash.
fn fingerprint(prepared: &PreparedData) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    let mut add = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    let sets = [
        Some(&prepared.train),
        prepared.validation.as_ref(),
        Some(&prepared.test),
    ];
    for set in sets.into_iter().flatten() {
        add(&(set.features.nrows() as u64).to_le_bytes());
        add(&(set.features.ncols() as u64).to_le_bytes());
        for name in set.feature_names.iter().flatten() {
            add(name.as_bytes());
            add(&[0]);
        }
        for value in &set.features {
            add(&value.to_le_bytes());
        }
        match &set.targets {
            Targets::Classes {
                labels,
                class_names,
            } => {
                for label in labels {
                    add(&(*label as u64).to_le_bytes());
                }
                for name in class_names {
                    add(name.as_bytes());
                    add(&[0]);
                }
            }
            Targets::Values(values) => {
                for value in values {
                    add(&value.to_le_bytes());
                }
            }
        }
    }
    format!("{hash:016x}")
}
