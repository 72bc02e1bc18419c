//! Argument parsing and dispatch to one file per subcommand.

mod bench;
mod data;
mod evaluate;
mod gradcheck;
mod inspect;
mod plot;
mod predict;
mod progress;
mod resume;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Feedforward neural networks (multilayer perceptrons) on the CPU.
#[derive(Debug, Parser)]
#[command(name = "feedforward", version, about, long_about = None)]
struct Cli {
    /// Threads for matrix products and the optimizer update; 0 uses every core. With AVX2 and
    /// FMA, the results are the same for any count.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    threads: usize,

    /// Print only results and errors: no progress bar, no log lines below warnings.
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network on labeled data and save it; without --data, on the embedded digits.
    Train(Box<train::Args>),
    /// Report a saved model's loss, accuracy, confusion matrix and per-class scores.
    Evaluate(evaluate::Args),
    /// Write the predicted label and class probabilities of every example as CSV.
    Predict(predict::Args),
    /// Show a model file's layers, parameter count and training settings.
    Inspect(inspect::Args),
    /// Measure training and inference speed on an IDX data set against the matrix-multiply peak.
    Bench(bench::Args),
    /// Compare backpropagation's gradients with central finite differences on random data.
    Gradcheck(gradcheck::Args),
}

/// Errors the tool reports with exit status 2 (usage) rather than 1 (data or a failed check).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the arguments, runs the subcommand and turns its outcome into an exit status.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet { "warn" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
    feedforward::linalg::set_threads(cli.threads);

    let outcome = match cli.command {
        Command::Train(args) => train::run(*args, cli.quiet),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Gradcheck(args) => gradcheck::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            if is_usage_error(&error) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Reads the model file of `evaluate`, `predict` and `inspect`. When the file does not exist,
/// the error adds how to make one, since `--model` falls back to `model.safetensors`, which a
/// user who has not trained yet does not have.
fn load_model(path: &std::path::Path) -> anyhow::Result<feedforward::Model> {
    feedforward::Model::load(path).map_err(|error| {
        let missing = matches!(
            &error,
            feedforward::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound
        );
        if missing {
            anyhow::anyhow!(
                "{error}. Train a model first with `feedforward train --model {}`, or pass \
                 --model with the path of an existing one",
                path.display()
            )
        } else {
            error.into()
        }
    })
}

/// Joins the error and its causes as `error: cause: cause`, leaving out a cause whose text
/// already ends the message, since [`feedforward::Error::Io`] shows its source itself.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// True for errors in what the user typed, as opposed to errors in the data they named.
fn is_usage_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<UsageError>()
            || matches!(
                cause.downcast_ref::<feedforward::Error>(),
                Some(feedforward::Error::Config(_))
            )
    })
}
