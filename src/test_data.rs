//! Small synthetic data sets shared by the unit tests of several modules.

use ndarray::Array2;

use crate::rng::Rng;

/// Draws `m` examples (one per row) of three Gaussian blobs in 2-D, centred at (-2, 0),
/// (2, 0) and (0, 2.5) with standard deviation `spread`, and their labels one-hot over 3
/// classes. Example `i` belongs to class `i % 3`.
pub(crate) fn blobs(m: usize, seed: u64, spread: f64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = Rng::new(seed);
    let centers = [(-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)];
    let mut x = Array2::zeros((m, 2));
    let mut y = Array2::zeros((m, 3));
    for i in 0..m {
        let class = i % 3;
        x[[i, 0]] = (centers[class].0 + spread * rng.normal()) as f32;
        x[[i, 1]] = (centers[class].1 + spread * rng.normal()) as f32;
        y[[i, class]] = 1.0;
    }
    (x, y)
}
