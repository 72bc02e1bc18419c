//! `feedforward evaluate`: loss, accuracy, confusion matrix and per-class scores of a saved
//! model on labeled data; R² and mean absolute error for regression.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use feedforward::data::{Dataset, Targets};
use feedforward::metrics::{self, ConfusionMatrix};
use feedforward::model::Model;
use feedforward::train;
use ndarray::ArrayView2;

use super::data::{self, DataArgs, DataSpec};

/// Options of `feedforward evaluate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file written by `feedforward train`.
    #[arg(long, default_value = "model.safetensors", value_name = "PATH")]
    model: PathBuf,

    #[command(flatten)]
    data: DataArgs,
}

/// The training data spec recorded in a model file, if any.
pub fn recorded_spec(model: &Model) -> Option<DataSpec> {
    serde_json::from_value(model.training.get("data")?.clone()).ok()
}

/// Runs `evaluate`.
pub fn run(args: Args) -> Result<ExitCode> {
    let model = super::load_model(&args.model)?;
    let (mut dataset, description) = data::load_for_evaluation(
        &args.data,
        recorded_spec(&model).as_ref(),
        model.class_names.as_deref(),
    )?;
    data::check_finite(&dataset, &description)?;
    let source = args
        .data
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(&description));
    if dataset.n_features() != model.network.inputs() {
        return Err(feedforward::Error::data(
            &source,
            format!(
                "the model expects {} features but the data has {}; evaluate on data with the \
                 training set's columns",
                model.network.inputs(),
                dataset.n_features()
            ),
        )
        .into());
    }
    match (&model.class_names, &dataset.targets) {
        (Some(names), Targets::Classes { .. }) => dataset.align_classes(names, &source)?,
        (None, Targets::Values(_)) => {}
        (Some(_), Targets::Values(_)) => {
            anyhow::bail!(feedforward::Error::data(
                &source,
                "the model is a classifier but the data was read for regression; drop --task regression"
            ))
        }
        (None, Targets::Classes { .. }) => {
            anyhow::bail!(feedforward::Error::data(
                &source,
                "the model is a regression model; read the data with --task regression"
            ))
        }
    }

    let outputs = model.predict(dataset.features.view())?;
    let targets = train::encode_targets(&dataset.targets, model.cost)
        .with_context(|| format!("cannot encode the targets of {description}"))?;
    println!("model {}: {}", args.model.display(), model.network);
    println!("data {description}: {} examples", dataset.len());
    print_report(&model, &dataset, outputs.view(), targets.t())?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the loss and the task's metrics for `outputs` (`n_out x m`) against `targets`
/// (`n_out x m`).
pub fn print_report(
    model: &Model,
    dataset: &Dataset,
    outputs: ArrayView2<'_, f32>,
    targets: ArrayView2<'_, f32>,
) -> Result<()> {
    let loss = model.cost.value(outputs, targets)?;
    println!("test loss ({}): {loss:.4}", model.cost);
    match (&dataset.targets, &model.class_names) {
        (Targets::Classes { labels, .. }, Some(names)) => {
            let predicted = metrics::predicted_classes(outputs, model.cost)
                .context("the model's outputs do not name single classes")?;
            let matrix = ConfusionMatrix::new(labels, &predicted, names.len())?;
            println!("test accuracy: {:.4}", matrix.accuracy());
            print_confusion(&matrix, names);
        }
        _ => {
            println!("test R²: {:.4}", metrics::r2_score(outputs, targets)?);
            println!(
                "test mean absolute error: {:.4}",
                metrics::mean_absolute_error(outputs, targets)?
            );
        }
    }
    Ok(())
}

fn print_confusion(matrix: &ConfusionMatrix, names: &[String]) {
    let width = names.iter().map(String::len).max().unwrap_or(1).max(5);
    println!("\nconfusion matrix (rows: true class, columns: predicted class)");
    print!("{:>width$}", "");
    for name in names {
        print!(" {name:>width$}");
    }
    println!();
    for (name, row) in names.iter().zip(matrix.counts.rows()) {
        print!("{name:>width$}");
        for count in row {
            print!(" {count:>width$}");
        }
        println!();
    }
    println!(
        "\n{:>width$} {:>9} {:>9} {:>9} {:>9}",
        "class", "precision", "recall", "f1", "support"
    );
    for (name, scores) in names.iter().zip(matrix.class_scores()) {
        println!(
            "{name:>width$} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            scores.precision, scores.recall, scores.f1, scores.support
        );
    }
}
