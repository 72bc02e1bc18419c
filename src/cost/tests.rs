use super::*;
use ndarray::{Array2, array};

use crate::rng::Rng;

/// Random probabilities in `[0.05, 0.95]`, away from the clamps.
fn probabilities(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.uniform_range(0.05, 0.95))
}

fn one_hot(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    let mut y = Array2::zeros((rows, cols));
    for j in 0..cols {
        y[[rng.below(rows), j]] = 1.0;
    }
    y
}

fn binary(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.below(2) as f64)
}

/// `dA` against central differences of `J` in each entry of `A`.
#[test]
fn gradients_match_central_differences() {
    let h = 1e-6;
    for cost in Cost::ALL {
        let rows = if cost == Cost::BinaryCrossEntropy {
            1
        } else {
            4
        };
        let mut a = probabilities(rows, 5, 1);
        if cost == Cost::CategoricalCrossEntropy {
            a /= &a.sum_axis(ndarray::Axis(0));
        }
        let y = match cost {
            Cost::CategoricalCrossEntropy => one_hot(rows, 5, 2),
            Cost::MeanSquaredError => probabilities(rows, 5, 3),
            _ => binary(rows, 5, 2),
        };
        let mut da = Array2::zeros(a.dim());
        cost.gradient(a.view(), y.view(), da.view_mut()).unwrap();
        for index in 0..a.len() {
            let (i, j) = (index / a.ncols(), index % a.ncols());
            let mut plus = a.clone();
            plus[[i, j]] += h;
            let mut minus = a.clone();
            minus[[i, j]] -= h;
            let numeric = (cost.value(plus.view(), y.view()).unwrap()
                - cost.value(minus.view(), y.view()).unwrap())
                / (2.0 * h);
            let analytic = da[[i, j]];
            assert!(
                (analytic - numeric).abs() <= 1e-7 * analytic.abs().max(1.0),
                "{cost} at ({i}, {j}): analytic {analytic}, numeric {numeric}"
            );
        }
    }
}

#[test]
fn values_match_formulas() {
    let a = array![[0.9, 0.2]];
    let y = array![[1.0, 0.0]];
    let expected = -(0.9f64.ln() + 0.8f64.ln()) / 2.0;
    let value = Cost::BinaryCrossEntropy.value(a.view(), y.view()).unwrap();
    assert!((value - expected).abs() < 1e-15);

    let a = array![[0.7, 0.1], [0.2, 0.3], [0.1, 0.6]];
    let y = array![[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]];
    let expected = -(0.7f64.ln() + 0.6f64.ln()) / 2.0;
    let value = Cost::CategoricalCrossEntropy
        .value(a.view(), y.view())
        .unwrap();
    assert!((value - expected).abs() < 1e-15);

    let a: Array2<f64> = array![[1.0, 2.0], [3.0, 5.0]];
    let y = array![[0.0, 2.0], [1.0, 1.0]];
    let value = Cost::MeanSquaredError.value(a.view(), y.view()).unwrap();
    assert!((value - (1.0 + 0.0 + 4.0 + 16.0) / 4.0).abs() < 1e-15);
}

#[test]
fn multi_label_is_sum_of_binary_costs() {
    let a = probabilities(3, 4, 5);
    let y = binary(3, 4, 6);
    let total = Cost::MultiLabelBinaryCrossEntropy
        .value(a.view(), y.view())
        .unwrap();
    let sum: f64 = (0..3)
        .map(|row| {
            let a_row = a.slice(ndarray::s![row..row + 1, ..]);
            let y_row = y.slice(ndarray::s![row..row + 1, ..]);
            Cost::BinaryCrossEntropy.value(a_row, y_row).unwrap()
        })
        .sum();
    assert!((total - sum).abs() < 1e-14);
}

#[test]
fn log_zero_is_finite() {
    for cost in [
        Cost::BinaryCrossEntropy,
        Cost::CategoricalCrossEntropy,
        Cost::MultiLabelBinaryCrossEntropy,
    ] {
        let a = array![[0.0f32, 1.0]];
        let y = array![[1.0f32, 0.0]];
        let value = cost.value(a.view(), y.view()).unwrap();
        assert!(value.is_finite(), "{cost}: {value}");
        assert!(
            value > 40.0,
            "{cost}: a wrong, certain prediction must cost a lot"
        );
        let mut da = Array2::zeros(a.dim());
        cost.gradient(a.view(), y.view(), da.view_mut()).unwrap();
        assert!(da.iter().all(|d| d.is_finite()), "{cost}: {da:?}");
    }
}

#[test]
fn shape_mismatch_is_error() {
    let a = Array2::<f64>::zeros((2, 3));
    let y = Array2::<f64>::zeros((3, 2));
    for cost in Cost::ALL {
        assert!(matches!(
            cost.value(a.view(), y.view()),
            Err(Error::Shape(_))
        ));
        let mut da = Array2::zeros((2, 3));
        assert!(cost.gradient(a.view(), y.view(), da.view_mut()).is_err());
    }
    let empty = Array2::<f64>::zeros((2, 0));
    assert!(
        Cost::MeanSquaredError
            .value(empty.view(), empty.view())
            .is_err()
    );
}

#[test]
fn check_output_pairs() {
    assert!(
        Cost::CategoricalCrossEntropy
            .check_output(Activation::Softmax, 10)
            .is_ok()
    );
    assert!(
        Cost::CategoricalCrossEntropy
            .check_output(Activation::Sigmoid, 10)
            .is_err()
    );
    let err = Cost::BinaryCrossEntropy
        .check_output(Activation::Sigmoid, 3)
        .unwrap_err();
    assert!(err.to_string().contains("needs 1 output unit"), "{err}");
    assert!(
        Cost::MeanSquaredError
            .check_output(Activation::Tanh, 3)
            .is_ok()
    );
}

#[test]
fn parse_round_trips_display() {
    for cost in Cost::ALL {
        assert_eq!(cost.to_string().parse::<Cost>().unwrap(), cost);
    }
    assert!("hinge".parse::<Cost>().is_err());
}
