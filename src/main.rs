//! The `feedforward` command-line tool: train, evaluate, predict, inspect and gradient-check
//! multilayer perceptrons.
//!
//! Exit status: 0 on success, 1 when the data, a model file or a check fails, 2 for usage
//! errors (unknown options, invalid values).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
