//! Regression of `y = sin(3x)` on `[-1, 1]` with a 1-32-32-1 tanh network and mean squared
//! error, reporting R² on held-out points.
//!
//! Run with `cargo run --release --example regression`.

use feedforward::metrics::r2_score;
use feedforward::train::{self, TrainConfig, TrainData, Trainer};
use feedforward::{Activation, Cost, Network, Rng};
use ndarray::Array2;

fn sample(count: usize, rng: &mut Rng) -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_simple_fn((count, 1), || rng.uniform_range(-1.0, 1.0) as f32);
    let y = x.mapv(|v| (3.0 * v).sin());
    (x, y)
}

fn main() -> Result<(), feedforward::Error> {
    let mut rng = Rng::new(7);
    let (x_train, y_train) = sample(512, &mut rng);
    let (x_test, y_test) = sample(256, &mut rng);

    let activations = [Activation::Tanh, Activation::Tanh, Activation::Identity];
    let network = Network::random(&[1, 32, 32, 1], &activations, &mut rng)?;
    let config = TrainConfig {
        epochs: 300,
        ..TrainConfig::default()
    }
    .with_learning_rate(0.01);
    let mut trainer = Trainer::new(network, Cost::MeanSquaredError, config)?;
    trainer.fit(
        TrainData::new(x_train.view(), y_train.view())?,
        None,
        &mut (),
    )?;
    let network = trainer.finish();

    let predictions = train::predict(&network, x_test.view())?;
    let r2 = r2_score(predictions.view(), y_test.t())?;
    println!("test R² = {r2:.4} on {} held-out points", x_test.nrows());
    for (x, y) in [-0.9f32, -0.3, 0.0, 0.5]
        .iter()
        .map(|&v| (v, (3.0 * v).sin()))
    {
        let predicted = network.forward(Array2::from_elem((1, 1), x).view())?[[0, 0]];
        println!("sin(3 * {x:+.1}) = {y:+.4}, network {predicted:+.4}");
    }
    Ok(())
}
