//! `feedforward inspect`: what a model file holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

/// Options of `feedforward inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model file.
    #[arg(default_value = "model.safetensors", value_name = "PATH")]
    model: PathBuf,
}

/// Prints the layers, parameter count, cost, scaler, classes and training settings.
pub fn run(args: Args) -> Result<ExitCode> {
    let model = super::load_model(&args.model)?;
    println!("model: {}", args.model.display());
    println!("format version: {}", feedforward::model::FORMAT_VERSION);
    println!("{}", model.network);
    for (index, layer) in model.network.layers().iter().enumerate() {
        println!(
            "  layer {}: {layer}, {} parameters",
            index + 1,
            layer.parameter_count()
        );
    }
    println!("parameters: {}", model.network.parameter_count());
    println!("cost: {}", model.cost);
    println!("feature scaling: {}", model.scaler.kind());
    match &model.class_names {
        Some(names) => println!("classes ({}): {}", names.len(), names.join(", ")),
        None => println!("task: regression"),
    }
    if !model.training.is_null() {
        println!(
            "training: {}",
            serde_json::to_string_pretty(&model.training)?
        );
    }
    Ok(ExitCode::SUCCESS)
}
