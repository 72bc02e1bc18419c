//! Loading the data a subcommand names: the embedded digits, an IDX directory or a CSV file,
//! with the test split that makes a run reproducible from the model file alone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use feedforward::data::{self, CsvOptions, Dataset, TargetColumn, Task};
use feedforward::{Error, Rng};
use serde::{Deserialize, Serialize};

use super::UsageError;

/// Options shared by `train`, `evaluate` and `predict` to name and read data.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// A CSV file, or a directory holding the IDX files train-images-idx3-ubyte[.gz],
    /// train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and
    /// t10k-labels-idx1-ubyte[.gz]. Without it, `train` uses the embedded digits set and
    /// `evaluate` and `predict` use the data the model was trained on.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,

    /// CSV target column, by header name or 0-based index [default: the last column].
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,

    /// Whether the CSV target contains class labels or numbers.
    #[arg(long, value_enum, default_value_t = TaskArg::Classification)]
    pub task: TaskArg,

    /// Whether line 1 of a CSV file is a header: auto detects it from its cells.
    #[arg(long, value_enum, default_value_t = HeaderArg::Auto)]
    pub header: HeaderArg,
}

/// The CSV target's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskArg {
    /// Class labels: strings or integers.
    Classification,
    /// Real numbers.
    Regression,
}

/// Whether a CSV file starts with a header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderArg {
    /// Detect it: line 1 is a header when a feature cell holds text there and a number on line 2.
    Auto,
    /// Line 1 is a header.
    Yes,
    /// Line 1 is data.
    No,
}

/// Where training data came from and how the test set was taken from it, stored in the model
/// file so that `evaluate` and `predict` can find the same test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// `embedded-digits`, an IDX directory or a CSV file.
    pub source: String,
    /// CSV target column as given, if any.
    pub target: Option<String>,
    /// CSV target kind.
    pub task: TaskArg,
    /// CSV header setting.
    pub header: HeaderArg,
    /// Fraction held out as the test set, when the data has no test set of its own.
    pub test_split: Option<f64>,
    /// Seed of the test split.
    pub seed: u64,
}

/// The name of the embedded data set in a [`DataSpec`].
pub const EMBEDDED: &str = "embedded-digits";

/// A labeled data set split into training and test parts.
pub struct Loaded {
    /// Training examples.
    pub train: Dataset,
    /// Test examples.
    pub test: Dataset,
    /// How to load the same split again.
    pub spec: DataSpec,
}

impl DataArgs {
    /// Returns the CSV options these arguments set, reading the labels as `class_names` (the
    /// classes of a trained model or of the training set) when given.
    fn csv_options(&self, class_names: Option<&[String]>) -> Result<CsvOptions> {
        let target = match &self.target {
            Some(text) => Some(text.parse::<TargetColumn>()?),
            None => None,
        };
        Ok(CsvOptions {
            target,
            task: match self.task {
                TaskArg::Classification => Task::Classification,
                TaskArg::Regression => Task::Regression,
            },
            has_header: header_setting(self.header),
            class_names: class_names.map(<[String]>::to_vec),
            ..CsvOptions::default()
        })
    }
}

fn header_setting(header: HeaderArg) -> Option<bool> {
    match header {
        HeaderArg::Auto => None,
        HeaderArg::Yes => Some(true),
        HeaderArg::No => Some(false),
    }
}

/// Loads training and test data: the IDX directory's own test files, `test_data` when given,
/// or else a seeded `test_split` of the data.
pub fn load_for_training(
    args: &DataArgs,
    test_data: Option<&Path>,
    test_split: f64,
    seed: u64,
) -> Result<Loaded> {
    let mut spec = DataSpec {
        source: args
            .data
            .as_ref()
            .map_or_else(|| EMBEDDED.to_string(), |p| p.display().to_string()),
        target: args.target.clone(),
        task: args.task,
        header: args.header,
        test_split: None,
        seed,
    };
    let whole = match &args.data {
        None => data::digits(),
        Some(path) if path.is_dir() => {
            if test_data.is_some() {
                return Err(UsageError(format!(
                    "{} is an IDX directory with its own test files; drop --test-data",
                    path.display()
                ))
                .into());
            }
            let (train, test) = data::load_idx_dir(path)?;
            return Ok(Loaded { train, test, spec });
        }
        Some(path) => data::load_csv(path, &args.csv_options(None)?)?,
    };
    if let Some(test_path) = test_data {
        let test = load_companion(args, test_path, &whole)?;
        return Ok(Loaded {
            train: whole,
            test,
            spec,
        });
    }
    if !(test_split > 0.0 && test_split < 1.0) {
        return Err(UsageError(format!(
            "--test-split must be between 0 and 1 (exclusive), not {test_split}; the data has no test set of its own"
        ))
        .into());
    }
    let (train, test) = whole
        .split(test_split, &mut Rng::new(seed))
        .map_err(|error| split_error(error, &spec.source, "test", "--test-split", test_split))?;
    spec.test_split = Some(test_split);
    Ok(Loaded { train, test, spec })
}

/// Loads the labeled test set for `evaluate`: from `args.data` when given (an IDX directory's
/// test files or a whole CSV file, whose labels are read as `class_names` when given),
/// otherwise the test split recorded in the model.
pub fn load_for_evaluation(
    args: &DataArgs,
    recorded: Option<&DataSpec>,
    class_names: Option<&[String]>,
) -> Result<(Dataset, String)> {
    match &args.data {
        Some(path) if path.is_dir() => {
            let (_, test) = data::load_idx_dir(path)?;
            Ok((test, format!("{} (t10k files)", path.display())))
        }
        Some(path) => Ok((
            data::load_csv(path, &args.csv_options(class_names)?)?,
            path.display().to_string(),
        )),
        None => {
            let spec = recorded.ok_or_else(|| {
                UsageError(
                    "the model does not record its training data; name the data with --data".into(),
                )
            })?;
            let args = DataArgs {
                data: (spec.source != EMBEDDED).then(|| PathBuf::from(&spec.source)),
                target: spec.target.clone(),
                task: spec.task,
                header: spec.header,
            };
            let loaded = load_for_training(&args, None, spec.test_split.unwrap_or(0.2), spec.seed)
                .with_context(|| format!("cannot reload the training data {}", spec.source))?;
            let description = match spec.test_split {
                Some(split) => format!(
                    "{} (test split {split} with seed {})",
                    spec.source, spec.seed
                ),
                None => format!("{} (test files)", spec.source),
            };
            Ok((loaded.test, description))
        }
    }
}

/// Turns the error of [`Dataset::split`] at a `fraction` already known to be in (0, 1), which
/// means that `source` has too few examples for it, into a data error naming `source`.
pub fn split_error(error: Error, source: &str, part: &str, option: &str, fraction: f64) -> Error {
    match error {
        Error::Config(message) => Error::data(
            source,
            format!("cannot hold out a {part} set with {option} {fraction}: {message}"),
        ),
        other => other,
    }
}

/// Checks that no feature is NaN or infinite before any training starts.
pub fn check_finite(dataset: &Dataset, source: &str) -> Result<(), Error> {
    dataset.check_finite(Path::new(source))
}

/// Loads a CSV file read like `args` names the training data, such as --test-data or
/// --validation-data, with its labels read as the training set's classes.
pub fn load_companion(args: &DataArgs, path: &Path, train: &Dataset) -> Result<Dataset> {
    let class_names = match &train.targets {
        data::Targets::Classes { class_names, .. } => Some(class_names.as_slice()),
        data::Targets::Values(_) => None,
    };
    Ok(data::load_csv(path, &args.csv_options(class_names)?)?)
}
