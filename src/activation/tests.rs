use super::*;
use ndarray::{Array2, array};
use proptest::prelude::*;

use crate::rng::Rng;

fn random_matrix(rows: usize, cols: usize, scale: f64, seed: u64) -> Array2<f64> {
    let mut rng = Rng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| scale * rng.normal())
}

/// Checks the extreme inputs in one element type.
fn check_extremes<T: Float>(tolerance: f64) {
    let close = |x: T, y: f64| (x.to_f64().unwrap() - y).abs() <= tolerance;

    let z = array![[T::of(1000.0)], [T::of(0.0)], [T::of(-1000.0)]];
    let a = Activation::Softmax.forward(z.view());
    assert_eq!(a.column(0).to_vec(), vec![T::one(), T::zero(), T::zero()]);

    let batch = array![[T::of(1000.0), T::of(0.0)], [T::of(1000.0), T::of(1.0)]];
    let a = Activation::Softmax.forward(batch.view());
    assert!(close(a[[0, 0]], 0.5) && close(a[[1, 0]], 0.5), "{a:?}");
    assert!(close(a[[0, 1]], 0.268_941_4), "{a:?}");
    assert!(close(a[[1, 1]], 0.731_058_6), "{a:?}");

    assert_eq!(sigmoid(T::of(-1000.0)), T::zero());
    assert_eq!(sigmoid(T::of(1000.0)), T::one());
    assert_eq!(T::of(1000.0).tanh(), T::one());
    assert_eq!(T::of(-1000.0).tanh(), -T::one());
    assert_eq!(softplus(T::of(1000.0)), T::of(1000.0));
    assert_eq!(softplus(T::of(-1000.0)), T::zero());
    assert_eq!(gelu(T::of(-1000.0)), T::zero());
    assert_eq!(gelu(T::of(1000.0)), T::of(1000.0));
    assert_eq!(silu(T::of(-1000.0)), T::zero());
    assert_eq!(elu(T::of(-1000.0), T::one()), -T::one());

    let big = array![[T::of(1000.0), T::of(-1000.0), T::of(0.0)]];
    for activation in Activation::ALL {
        let a = activation.forward(big.view());
        assert!(a.iter().all(|x| x.is_finite()), "{activation}: {a:?}");
        let da = Array2::from_elem(a.dim(), T::one());
        let dz = activation
            .backward(Some(big.view()), a.view(), da.view())
            .unwrap();
        assert!(dz.iter().all(|x| x.is_finite()), "{activation}: {dz:?}");
    }
}

#[test]
fn extremes_f32() {
    check_extremes::<f32>(1e-6);
}

#[test]
fn extremes_f64() {
    check_extremes::<f64>(1e-7);
}

/// Every elementwise backward pass against a central difference of its forward pass, away from
/// the kinks of ReLU, leaky ReLU and ELU at 0.
#[test]
fn elementwise_derivatives_match_central_differences() {
    let h: f64 = 1e-6;
    let points: [f64; 9] = [-30.0, -4.0, -1.3, -0.2, 0.3, 0.9, 2.5, 7.0, 30.0];
    for activation in Activation::ALL {
        if activation == Activation::Softmax {
            continue;
        }
        for &point in &points {
            let z: Array2<f64> = array![[point]];
            let a = activation.forward(z.view());
            let dz = activation
                .backward(Some(z.view()), a.view(), array![[1.0]].view())
                .unwrap()[[0, 0]];
            let plus = activation.forward(array![[point + h]].view())[[0, 0]];
            let minus = activation.forward(array![[point - h]].view())[[0, 0]];
            let numeric = (plus - minus) / (2.0 * h);
            let error = (dz - numeric).abs() / dz.abs().max(numeric.abs()).max(1e-300);
            assert!(
                error < 1e-6 || (dz - numeric).abs() < 1e-10,
                "{activation} at {point}: analytic {dz}, numeric {numeric}"
            );
        }
    }
}

#[test]
fn relu_derivative_at_zero_is_zero() {
    let z = array![[0.0f64]];
    let a = Activation::Relu.forward(z.view());
    let dz = Activation::Relu
        .backward(None, a.view(), array![[1.0]].view())
        .unwrap();
    assert_eq!(dz[[0, 0]], 0.0);
}

/// The softmax backward pass equals the full Jacobian `∂a_p/∂z_j = a_p (δ_pj - a_j)` applied to
/// `dA`.
#[test]
fn softmax_backward_matches_full_jacobian() {
    for seed in 0..20 {
        let n = 2 + (seed as usize % 7);
        let z = random_matrix(n, 3, 3.0, seed);
        let da = random_matrix(n, 3, 1.0, seed + 100);
        let a = Activation::Softmax.forward(z.view());
        let dz = Activation::Softmax
            .backward(None, a.view(), da.view())
            .unwrap();
        for column in 0..3 {
            for j in 0..n {
                let mut expected = 0.0;
                for p in 0..n {
                    let delta = if p == j { 1.0 } else { 0.0 };
                    expected += da[[p, column]] * a[[p, column]] * (delta - a[[j, column]]);
                }
                assert!(
                    (dz[[j, column]] - expected).abs() < 1e-12,
                    "seed {seed}: {} vs {expected}",
                    dz[[j, column]]
                );
            }
        }
    }
}

#[test]
fn backward_needs_pre_activation_for_gelu_and_silu() {
    let z = array![[0.5f64]];
    for activation in [Activation::Gelu, Activation::Silu] {
        let a = activation.forward(z.view());
        let err = activation.backward(None, a.view(), a.view()).unwrap_err();
        assert!(err.to_string().contains("pre-activation"), "{err}");
    }
}

#[test]
fn parse_round_trips_display() {
    for activation in Activation::ALL {
        let parsed: Activation = activation.to_string().parse().unwrap();
        assert_eq!(parsed, activation);
    }
    assert_eq!(
        "Leaky-ReLU(0.2)".parse::<Activation>().unwrap(),
        Activation::LeakyRelu { slope: 0.2 }
    );
    assert_eq!("swish".parse::<Activation>().unwrap(), Activation::Silu);
}

#[test]
fn parse_rejects_unknown_and_bad_parameters() {
    let err = "relux".parse::<Activation>().unwrap_err().to_string();
    assert!(err.contains("unknown activation 'relux'"), "{err}");
    let err = "leaky_relu(2)"
        .parse::<Activation>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside [0, 1)"), "{err}");
    let err = "elu(-1)".parse::<Activation>().unwrap_err().to_string();
    assert!(err.contains("must be positive"), "{err}");
    let err = "elu(x)".parse::<Activation>().unwrap_err().to_string();
    assert!(err.contains("not a number"), "{err}");
}

fn matrix_strategy() -> impl Strategy<Value = Array2<f64>> {
    (1usize..6, 1usize..6).prop_flat_map(|(rows, cols)| {
        proptest::collection::vec(-50.0f64..50.0, rows * cols)
            .prop_map(move |values| Array2::from_shape_vec((rows, cols), values).unwrap())
    })
}

/// An activation's derivative as a function of `z`.
type Derivative = fn(f64) -> f64;

proptest! {
    #[test]
    fn softmax_columns_sum_to_one(z in matrix_strategy()) {
        let a = Activation::Softmax.forward(z.view());
        for column in a.columns() {
            prop_assert!((column.sum() - 1.0).abs() < 1e-12);
            prop_assert!(column.iter().all(|&p| (0.0..=1.0).contains(&p)));
        }
    }

    #[test]
    fn softmax_ignores_column_shift(z in matrix_strategy(), shift in -100.0f64..100.0) {
        let a = Activation::Softmax.forward(z.view());
        let shifted = Activation::Softmax.forward((&z + shift).view());
        for (x, y) in a.iter().zip(shifted.iter()) {
            prop_assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn elementwise_backward_is_derivative_times_da(z in matrix_strategy(), seed in 0u64..1000) {
        let da = random_matrix(z.nrows(), z.ncols(), 1.0, seed);
        let cases: [(Activation, Derivative); 3] = [
            (Activation::Relu, |z| if z > 0.0 { 1.0 } else { 0.0 }),
            (Activation::Sigmoid, |z| { let s = 1.0 / (1.0 + (-z).exp()); s * (1.0 - s) }),
            (Activation::Tanh, |z| 1.0 - z.tanh().powi(2)),
        ];
        for (activation, derivative) in cases {
            let a = activation.forward(z.view());
            let dz = activation.backward(None, a.view(), da.view()).unwrap();
            for ((&dz, &z), &da) in dz.iter().zip(z.iter()).zip(da.iter()) {
                prop_assert!((dz - derivative(z) * da).abs() < 1e-12, "{activation} at {z}");
            }
        }
    }

    #[test]
    fn backward_shape_mismatch_is_error(rows in 1usize..5, cols in 1usize..5, extra in 1usize..3) {
        let a = Array2::<f64>::zeros((rows, cols));
        let da = Array2::<f64>::zeros((rows + extra, cols));
        for activation in Activation::ALL {
            let z = Some(a.view());
            prop_assert!(matches!(
                activation.backward(z, a.view(), da.view()),
                Err(Error::Shape(_))
            ));
        }
    }
}
