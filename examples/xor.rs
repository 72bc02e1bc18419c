//! XOR with a 2-8-1 network: the smallest problem a linear model cannot solve.
//!
//! Run with `cargo run --release --example xor`.

use feedforward::train::{TrainConfig, TrainData, Trainer};
use feedforward::{Activation, Cost, Network, Rng};
use ndarray::array;

fn main() -> Result<(), feedforward::Error> {
    // One example per row, as in a file; the network sees the transposes.
    let inputs = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let targets = array![[0.0f32], [1.0], [1.0], [0.0]];

    let network = Network::random(
        &[2, 8, 1],
        &[Activation::Tanh, Activation::Sigmoid],
        &mut Rng::new(1),
    )?;
    let config = TrainConfig {
        epochs: 1000,
        batch_size: 4,
        ..TrainConfig::default()
    }
    .with_learning_rate(0.05);
    let mut trainer = Trainer::new(network, Cost::BinaryCrossEntropy, config)?;
    trainer.fit(
        TrainData::new(inputs.view(), targets.view())?,
        None,
        &mut (),
    )?;
    let final_loss = trainer
        .history()
        .epochs
        .last()
        .map_or(f64::NAN, |r| r.train_loss);
    let network = trainer.finish();

    let outputs = network.forward(inputs.t())?;
    println!("final binary cross-entropy: {final_loss:.5}");
    for (input, output) in inputs.rows().into_iter().zip(outputs.row(0)) {
        println!("{} XOR {} -> {output:.4}", input[0], input[1]);
    }
    Ok(())
}
