//! Fashion-MNIST with a 784-256-128-10 network, through the library alone.
//!
//! Needs the IDX files, for instance from Debian's `dataset-fashion-mnist` package:
//!
//! ```sh
//! cargo run --release --example fashion_mnist -- /usr/share/datasets/fashion-mnist
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use feedforward::data::{Scaler, ScalerKind, load_idx_dir};
use feedforward::train::{self, TrainConfig, TrainData, TrainObserver, Trainer, encode_targets};
use feedforward::{Activation, Cost, Network, Rng};

/// Prints one line per epoch.
struct EpochLog;

impl TrainObserver for EpochLog {
    fn epoch_finished(&mut self, record: &train::EpochRecord) {
        println!(
            "epoch {:>2}: loss {:.4}, training accuracy {:.4}, {:.1} s",
            record.epoch,
            record.train_loss,
            record.train_accuracy.unwrap_or(f64::NAN),
            record.seconds
        );
    }
}

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    match run(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: PathBuf) -> Result<(), feedforward::Error> {
    let (mut train_set, mut test_set) = load_idx_dir(&dir)?;
    let scaler = Scaler::fit(ScalerKind::Standard, train_set.features.view());
    scaler.transform(&mut train_set.features)?;
    scaler.transform(&mut test_set.features)?;

    let cost = Cost::CategoricalCrossEntropy;
    let train_targets = encode_targets(&train_set.targets, cost)?;
    let test_targets = encode_targets(&test_set.targets, cost)?;

    let activations = [Activation::Relu, Activation::Relu, Activation::Softmax];
    let network = Network::random(&[784, 256, 128, 10], &activations, &mut Rng::new(1))?;
    let config = TrainConfig {
        epochs: 15,
        batch_size: 128,
        schedule: "cosine".parse()?,
        dropout: 0.2,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(network, cost, config)?;
    let data = TrainData::new(train_set.features.view(), train_targets.view())?;
    trainer.fit(data, None, &mut EpochLog)?;
    let network = trainer.finish();

    let test = TrainData::new(test_set.features.view(), test_targets.view())?;
    let (loss, accuracy) = train::evaluate(&network, cost, test)?;
    println!(
        "test loss {loss:.4}, test accuracy {:.4} on {} images",
        accuracy.unwrap_or(f64::NAN),
        test_set.len()
    );
    Ok(())
}
