//! `feedforward predict`: the predicted label and each class's probability for every example,
//! as CSV on stdout or in a file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use feedforward::Cost;
use feedforward::data as dataset;
use feedforward::metrics;
use feedforward::model::{Model, write_atomically};
use ndarray::{Array2, ArrayView2, Axis};

use super::data::{self, DataArgs, HeaderArg};
use super::evaluate::recorded_spec;

/// Options of `feedforward predict`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file written by `feedforward train`.
    #[arg(long, default_value = "model.safetensors", value_name = "PATH")]
    model: PathBuf,

    /// Input: a CSV file of features (add --target COLUMN when it also contains a column of the
    /// model's labels, or numbers for a regression model, which is then ignored), or an IDX
    /// directory, whose t10k images are used. Without it, the model's recorded test set.
    #[command(flatten)]
    data: DataArgs,

    /// Write the CSV here instead of stdout; the file appears only when complete.
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Runs `predict`.
pub fn run(args: Args) -> Result<ExitCode> {
    let model = super::load_model(&args.model)?;
    let features = load_features(&args, &model)?;
    let outputs = model.predict(features.view())?;
    let csv = format_predictions(&model, outputs.view());
    match &args.output {
        Some(path) => {
            write_atomically(path, csv.as_bytes())?;
            log::info!(
                "wrote {} predictions to {}",
                features.nrows(),
                path.display()
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(csv.as_bytes())
                .context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_features(args: &Args, model: &Model) -> Result<Array2<f32>> {
    let expected = model.network.inputs();
    let features = match &args.data.data {
        Some(path) if path.is_dir() => dataset::load_idx_dir(path)?.1.features,
        Some(path) if args.data.target.is_some() => {
            let mut args = args.data.clone();
            if model.class_names.is_none() {
                args.task = data::TaskArg::Regression;
            }
            data::load_for_evaluation(&args, None, model.class_names.as_deref())?
                .0
                .features
        }
        Some(path) => {
            let header = match args.data.header {
                HeaderArg::Auto => None,
                HeaderArg::Yes => Some(true),
                HeaderArg::No => Some(false),
            };
            dataset::load_csv_features(path, Some(expected), header, b',')?.0
        }
        None => {
            data::load_for_evaluation(&args.data, recorded_spec(model).as_ref(), None)?
                .0
                .features
        }
    };
    let source = args
        .data
        .data
        .clone()
        .unwrap_or_else(|| "<recorded test set>".into());
    if features.ncols() != expected {
        anyhow::bail!(feedforward::Error::data(
            &source,
            format!(
                "the model expects {expected} features but the input has {}; pass data with the \
                 training set's feature columns (and --target COLUMN if it has a label column)",
                features.ncols()
            ),
        ));
    }
    if let Some((row, column)) = features
        .indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(index, _)| index)
    {
        anyhow::bail!(feedforward::Error::data(
            &source,
            format!(
                "example {} has a NaN or infinite value in column {}",
                row + 1,
                column + 1
            ),
        ));
    }
    Ok(features)
}

/// One CSV line per example: the predicted label and each class's probability, or the
/// predicted values for regression.
fn format_predictions(model: &Model, outputs: ArrayView2<'_, f32>) -> String {
    let mut csv = String::new();
    match (&model.class_names, model.cost) {
        (Some(names), Cost::BinaryCrossEntropy) => {
            let _ = writeln!(csv, "label,{}", probability_columns(names));
            for &p in outputs.row(0) {
                let label = &names[usize::from(p > 0.5)];
                let _ = writeln!(csv, "{},{},{}", quote(label), 1.0 - p, p);
            }
        }
        (Some(names), Cost::MultiLabelBinaryCrossEntropy) => {
            let _ = writeln!(csv, "labels,{}", probability_columns(names));
            for column in outputs.axis_iter(Axis(1)) {
                let on: Vec<&str> = names
                    .iter()
                    .zip(column.iter())
                    .filter(|(_, p)| **p > 0.5)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let probabilities: Vec<String> = column.iter().map(f32::to_string).collect();
                let _ = writeln!(csv, "{},{}", quote(&on.join(";")), probabilities.join(","));
            }
        }
        (Some(names), _) => {
            let _ = writeln!(csv, "label,{}", probability_columns(names));
            for column in outputs.axis_iter(Axis(1)) {
                let label = &names[metrics::argmax(column.iter().copied())];
                let probabilities: Vec<String> = column.iter().map(f32::to_string).collect();
                let _ = writeln!(csv, "{},{}", quote(label), probabilities.join(","));
            }
        }
        (None, _) => {
            let header: Vec<String> = if outputs.nrows() == 1 {
                vec!["prediction".into()]
            } else {
                (0..outputs.nrows())
                    .map(|k| format!("prediction_{k}"))
                    .collect()
            };
            let _ = writeln!(csv, "{}", header.join(","));
            for column in outputs.axis_iter(Axis(1)) {
                let values: Vec<String> = column.iter().map(f32::to_string).collect();
                let _ = writeln!(csv, "{}", values.join(","));
            }
        }
    }
    csv
}

fn probability_columns(names: &[String]) -> String {
    names
        .iter()
        .map(|n| quote(&format!("p_{n}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Quotes a CSV field when it contains a comma, quote or line break.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
